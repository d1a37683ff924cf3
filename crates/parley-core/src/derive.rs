//! The derivation rules of SPEC §3: an ordered walk over the events of a set of contacts
//! that produces the facts every report reads. Pure: events in, facts out.
//!
//! The caller hands in every event of a closed group of contacts (contacts joined by
//! merges or by shared conversation or message ids), in any order; `derive` sorts them
//! into application order (SPEC §2) itself.

use std::collections::{HashMap, HashSet};

use crate::enums::{
    AssignSource, CloseSource, ContactSource, ContactType, DeliveryStatus, MessageSource,
    MessageType, OpenSource,
};
use crate::event::{Body, Event};
use crate::time::Instant;

/// Receipts count only within 30 days of their message (SPEC §3.5).
pub const RECEIPT_WINDOW_MICROS: i64 = 30 * 86_400 * 1_000_000;

/// A contact's current name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFact {
    pub contact_id: String,
    pub name: Option<String>,
}

/// A counted close (sources other than `contact_merged`/`contact_deleted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub at: Instant,
    pub source: CloseSource,
    /// The closing user, only when the source is `user`.
    pub by: Option<String>,
    pub category: Option<String>,
    pub summary: Option<String>,
}

/// A conversation's last assignee: a user, or an unassignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    User(String),
    Unassigned,
}

/// One conversation, opened (and perhaps closed), with the fields of SPEC §3.4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationFact {
    pub conversation_id: String,
    pub contact_id: String,
    pub opened_at: Instant,
    pub opened_source: OpenSource,
    pub opened_channel: Option<String>,
    pub contact_type: ContactType,
    pub close: Option<Close>,
    pub first_assignment_at: Option<Instant>,
    pub first_assignee: Option<String>,
    /// True when the first assignee was carried over from before the opening.
    pub first_assignee_carried: bool,
    pub first_response_at: Option<Instant>,
    pub first_response_by: Option<String>,
    pub last_assignment_at: Option<Instant>,
    pub last_assignee: Option<Assignee>,
    pub time_to_first_assignment: Option<i64>,
    pub first_response_time: Option<i64>,
    pub first_assignment_to_first_response: Option<i64>,
    pub last_assignment_to_response: Option<i64>,
    pub resolution_time: Option<i64>,
    pub first_assignment_to_close: Option<i64>,
    pub last_assignment_to_close: Option<i64>,
    pub average_response_time: Option<i64>,
    pub assignments: i64,
    pub incoming_messages: i64,
    pub outgoing_messages: i64,
    pub responses: i64,
}

/// One message, incoming or outgoing (SPEC §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageFact {
    pub message_id: String,
    pub contact_id: String,
    pub conversation_id: Option<String>,
    pub incoming: bool,
    pub at: Instant,
    pub channel_id: String,
    /// `None` for incoming messages.
    pub source: Option<MessageSource>,
    /// The sending user, only when the source is `user`.
    pub user_id: Option<String>,
    pub message_type: Option<MessageType>,
    pub subtype: Option<String>,
    pub broadcast: Option<String>,
    pub content: String,
    /// The final delivery status; `None` for incoming messages.
    pub status: Option<DeliveryStatus>,
    pub delivered_at: Option<Instant>,
    pub read_at: Option<Instant>,
    pub failed_at: Option<Instant>,
    pub error: Option<String>,
}

/// The kind of a contact activity row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Added,
    Deleted,
    Merged,
}

impl ActivityKind {
    pub fn wire(self) -> &'static str {
        match self {
            ActivityKind::Added => "added",
            ActivityKind::Deleted => "deleted",
            ActivityKind::Merged => "merged",
        }
    }
}

/// An added, deleted or merged contact (SPEC §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityFact {
    pub event_id: String,
    pub kind: ActivityKind,
    pub at: Instant,
    /// The contact, or the primary contact of a merge.
    pub contact_id: String,
    pub merged_contact_id: Option<String>,
    /// A ContactSource wire value; always `user` for deletes and merges.
    pub source: &'static str,
    pub user_id: Option<String>,
}

/// A contact's first connection on a channel (SPEC §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFact {
    pub contact_id: String,
    pub channel_id: String,
    pub at: Instant,
    pub message_id: String,
    /// A MessageSource wire value, or `incoming_message`.
    pub source: &'static str,
    pub user_id: Option<String>,
}

/// One assignment activity (SPEC §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentFact {
    pub event_id: String,
    pub at: Instant,
    pub conversation_id: Option<String>,
    pub contact_id: String,
    pub previous_assignee: Option<String>,
    /// `None` for an unassignment.
    pub new_assignee: Option<String>,
    pub source: AssignSource,
    /// The assigning user, only when the source is `user`.
    pub assigned_by: Option<String>,
}

/// Everything derived from one group of contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub contacts: Vec<ContactFact>,
    pub conversations: Vec<ConversationFact>,
    pub messages: Vec<MessageFact>,
    pub activities: Vec<ActivityFact>,
    pub connections: Vec<ConnectionFact>,
    pub assignments: Vec<AssignmentFact>,
}

#[derive(Default)]
struct ContactState {
    name: Option<String>,
    open: Option<usize>,
    assignee: Option<String>,
    has_history: bool,
    /// Indexes into the message list, in application order.
    messages: Vec<usize>,
}

struct Activity {
    at: Instant,
    new: Option<String>,
    reassignment: bool,
}

struct Response {
    at: Instant,
    user: Option<String>,
    wait_last_incoming: Instant,
    time: i64,
}

struct ConvState {
    id: String,
    contact: String,
    opened_at: Instant,
    source: OpenSource,
    channel: Option<String>,
    contact_type: ContactType,
    carried: Option<String>,
    ended: bool,
    close: Option<Close>,
    activities: Vec<Activity>,
    first_response: Option<(Instant, Option<String>)>,
    responses: Vec<Response>,
    /// The running wait: (start, latest incoming message in it).
    wait: Option<(Instant, Instant)>,
    incoming: i64,
    outgoing: i64,
}

struct Receipts {
    delivered: Option<Instant>,
    read: Option<Instant>,
    failed: Option<(Instant, Option<String>)>,
}

/// Application order of SPEC §2: (`at`, type rank, id bytes).
pub fn sort_key(e: &Event) -> (Instant, u8, &[u8]) {
    (e.at, e.body.rank(), e.id.as_bytes())
}

fn secs_between(from: Option<Instant>, to: Option<Instant>) -> Option<i64> {
    let d = to?.0 - from?.0;
    (d >= 0).then_some(d / 1_000_000)
}

/// Derives the facts of a group of contacts from all of its events.
pub fn derive(mut events: Vec<Event>) -> Facts {
    events.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    let mut w = Walk::default();
    let mut consumed = vec![false; events.len()];
    for i in 0..events.len() {
        if consumed[i] {
            continue;
        }
        if let Body::ConversationOpened {
            conversation_id,
            contact_id,
            ..
        } = &events[i].body
        {
            // SPEC §2: a close of this contact's open conversation at the same instant
            // is applied immediately before the open.
            let open_conv = w.contacts.get(contact_id.as_str()).and_then(|c| c.open);
            if let (false, Some(open)) = (w.conv_index.contains_key(conversation_id), open_conv) {
                let open_id = w.convs[open].id.clone();
                let at = events[i].at;
                let moved = (i + 1..events.len())
                    .take_while(|&j| events[j].at == at)
                    .find(|&j| {
                        !consumed[j]
                            && matches!(&events[j].body,
                                Body::ConversationClosed { conversation_id, .. } if *conversation_id == open_id)
                    });
                if let Some(j) = moved {
                    consumed[j] = true;
                    w.apply(&events[j]);
                }
            }
        }
        w.apply(&events[i]);
    }
    w.finish()
}

#[derive(Default)]
struct Walk {
    contacts: HashMap<String, ContactState>,
    /// Contacts in order of first appearance, so output order is deterministic.
    contact_order: Vec<String>,
    convs: Vec<ConvState>,
    conv_index: HashMap<String, usize>,
    messages: Vec<MessageFact>,
    receipts: Vec<Option<Receipts>>,
    message_index: HashMap<String, usize>,
    activities: Vec<ActivityFact>,
    assignments: Vec<AssignmentFact>,
}

impl Walk {
    fn contact(&mut self, id: &str) -> &mut ContactState {
        if !self.contacts.contains_key(id) {
            self.contact_order.push(id.to_string());
        }
        self.contacts.entry(id.to_string()).or_default()
    }

    /// Ends a contact's open conversation without a counted close (merge, delete).
    fn end_open(&mut self, contact: &str) {
        if let Some(open) = self.contact(contact).open.take() {
            self.convs[open].ended = true;
        }
    }

    fn apply(&mut self, e: &Event) {
        match &e.body {
            Body::ContactAdded {
                contact_id,
                name,
                source,
                user_id,
            } => {
                self.contact(contact_id).name = Some(name.clone());
                self.activities.push(ActivityFact {
                    event_id: e.id.clone(),
                    kind: ActivityKind::Added,
                    at: e.at,
                    contact_id: contact_id.clone(),
                    merged_contact_id: None,
                    source: source.wire(),
                    user_id: user_id.clone().filter(|_| *source == ContactSource::User),
                });
            }
            Body::ContactUpdated { contact_id, name } => {
                self.contact(contact_id).name = Some(name.clone());
            }
            Body::ContactDeleted {
                contact_id,
                user_id,
            } => {
                self.end_open(contact_id);
                self.activities.push(ActivityFact {
                    event_id: e.id.clone(),
                    kind: ActivityKind::Deleted,
                    at: e.at,
                    contact_id: contact_id.clone(),
                    merged_contact_id: None,
                    source: "user",
                    user_id: Some(user_id.clone()),
                });
            }
            Body::ContactMerged {
                primary_contact_id,
                merged_contact_id,
                user_id,
            } => {
                self.end_open(merged_contact_id);
                let merged_history = self.contact(merged_contact_id).has_history;
                self.contact(primary_contact_id).has_history |= merged_history;
                self.activities.push(ActivityFact {
                    event_id: e.id.clone(),
                    kind: ActivityKind::Merged,
                    at: e.at,
                    contact_id: primary_contact_id.clone(),
                    merged_contact_id: Some(merged_contact_id.clone()),
                    source: "user",
                    user_id: Some(user_id.clone()),
                });
            }
            Body::ConversationOpened {
                conversation_id,
                contact_id,
                source,
                channel_id,
                ..
            } => {
                if self.conv_index.contains_key(conversation_id) {
                    return;
                }
                let idx = self.convs.len();
                let c = self.contact(contact_id);
                if c.open.is_some() {
                    return;
                }
                let contact_type = if c.has_history {
                    ContactType::Returning
                } else {
                    ContactType::New
                };
                c.has_history = true;
                c.open = Some(idx);
                let carried = c.assignee.clone();
                self.conv_index.insert(conversation_id.clone(), idx);
                self.convs.push(ConvState {
                    id: conversation_id.clone(),
                    contact: contact_id.clone(),
                    opened_at: e.at,
                    source: *source,
                    channel: channel_id.clone(),
                    contact_type,
                    carried,
                    ended: false,
                    close: None,
                    activities: Vec::new(),
                    first_response: None,
                    responses: Vec::new(),
                    wait: None,
                    incoming: 0,
                    outgoing: 0,
                });
            }
            Body::ConversationClosed {
                conversation_id,
                source,
                user_id,
                category,
                summary,
            } => {
                let Some(&idx) = self.conv_index.get(conversation_id) else {
                    return;
                };
                if self.convs[idx].ended {
                    return;
                }
                let contact = self.convs[idx].contact.clone();
                let c = self.contact(&contact);
                if c.open == Some(idx) {
                    c.open = None;
                }
                let conv = &mut self.convs[idx];
                conv.ended = true;
                if source.is_counted() {
                    conv.close = Some(Close {
                        at: e.at,
                        source: *source,
                        by: user_id.clone().filter(|_| *source == CloseSource::User),
                        category: category.clone(),
                        summary: summary.clone(),
                    });
                }
            }
            Body::ContactAssigned {
                contact_id,
                assignee_id,
                source,
                by_user_id,
            } => {
                let c = self.contact(contact_id);
                let previous = std::mem::replace(&mut c.assignee, assignee_id.clone());
                let open = c.open;
                if let Some(idx) = open {
                    let reassignment =
                        matches!((&previous, assignee_id), (Some(p), Some(n)) if p != n);
                    self.convs[idx].activities.push(Activity {
                        at: e.at,
                        new: assignee_id.clone(),
                        reassignment,
                    });
                }
                self.assignments.push(AssignmentFact {
                    event_id: e.id.clone(),
                    at: e.at,
                    conversation_id: open.map(|i| self.convs[i].id.clone()),
                    contact_id: contact_id.clone(),
                    previous_assignee: previous,
                    new_assignee: assignee_id.clone(),
                    source: *source,
                    assigned_by: by_user_id.clone().filter(|_| *source == AssignSource::User),
                });
            }
            Body::MessageReceived {
                message_id,
                contact_id,
                channel_id,
                content,
            } => {
                if self.message_index.contains_key(message_id) {
                    return;
                }
                let open = self.contact(contact_id).open;
                if let Some(idx) = open {
                    let conv = &mut self.convs[idx];
                    conv.incoming += 1;
                    conv.wait = Some(match conv.wait {
                        None => (e.at, e.at),
                        Some((start, _)) => (start, e.at),
                    });
                }
                self.push_message(MessageFact {
                    message_id: message_id.clone(),
                    contact_id: contact_id.clone(),
                    conversation_id: open.map(|i| self.convs[i].id.clone()),
                    incoming: true,
                    at: e.at,
                    channel_id: channel_id.clone(),
                    source: None,
                    user_id: None,
                    message_type: None,
                    subtype: None,
                    broadcast: None,
                    content: content.display(),
                    status: None,
                    delivered_at: None,
                    read_at: None,
                    failed_at: None,
                    error: None,
                });
            }
            Body::MessageSent {
                message_id,
                contact_id,
                channel_id,
                source,
                user_id,
                message_type,
                subtype,
                broadcast,
                content,
            } => {
                if self.message_index.contains_key(message_id) {
                    return;
                }
                let user = user_id.clone().filter(|_| *source == MessageSource::User);
                let open = self.contact(contact_id).open;
                if let Some(idx) = open {
                    let conv = &mut self.convs[idx];
                    if *source != MessageSource::Broadcast {
                        conv.outgoing += 1;
                    }
                    if *source == MessageSource::User {
                        if conv.first_response.is_none() {
                            conv.first_response = Some((e.at, user.clone()));
                        }
                        if let Some((start, last_incoming)) = conv.wait.take() {
                            conv.responses.push(Response {
                                at: e.at,
                                user: user.clone(),
                                wait_last_incoming: last_incoming,
                                time: e.at.0 - start.0,
                            });
                        }
                    }
                }
                self.push_message(MessageFact {
                    message_id: message_id.clone(),
                    contact_id: contact_id.clone(),
                    conversation_id: open.map(|i| self.convs[i].id.clone()),
                    incoming: false,
                    at: e.at,
                    channel_id: channel_id.clone(),
                    source: Some(*source),
                    user_id: user,
                    message_type: Some(*message_type),
                    subtype: subtype.clone(),
                    broadcast: broadcast
                        .as_ref()
                        .map(|b| b.name.clone())
                        .filter(|n| !n.is_empty()),
                    content: content.display(),
                    status: Some(DeliveryStatus::Sent),
                    delivered_at: None,
                    read_at: None,
                    failed_at: None,
                    error: None,
                });
            }
            Body::MessageStatus {
                message_id,
                status,
                error,
            } => {
                let Some(&idx) = self.message_index.get(message_id) else {
                    return;
                };
                let msg_at = self.messages[idx].at;
                if e.at < msg_at || e.at.0 > msg_at.0 + RECEIPT_WINDOW_MICROS {
                    return;
                }
                let Some(r) = self.receipts[idx].as_mut() else {
                    return;
                };
                match status {
                    DeliveryStatus::Sent => {}
                    DeliveryStatus::Delivered => {
                        r.delivered.get_or_insert(e.at);
                    }
                    DeliveryStatus::Read => {
                        r.read.get_or_insert(e.at);
                    }
                    DeliveryStatus::Failed => {
                        r.failed.get_or_insert((e.at, error.clone()));
                    }
                }
            }
            Body::UserUpserted { .. }
            | Body::UserDeleted { .. }
            | Body::TeamUpserted { .. }
            | Body::ChannelUpserted { .. }
            | Body::ChannelDeleted { .. } => {}
        }
    }

    fn push_message(&mut self, m: MessageFact) {
        let idx = self.messages.len();
        self.message_index.insert(m.message_id.clone(), idx);
        self.receipts.push((!m.incoming).then_some(Receipts {
            delivered: None,
            read: None,
            failed: None,
        }));
        self.contact(&m.contact_id).messages.push(idx);
        self.messages.push(m);
    }

    fn finish(mut self) -> Facts {
        for (m, r) in self.messages.iter_mut().zip(&self.receipts) {
            let Some(r) = r else { continue };
            m.delivered_at = r.delivered;
            m.read_at = r.read;
            m.failed_at = r.failed.as_ref().map(|f| f.0);
            m.error = r.failed.as_ref().and_then(|f| f.1.clone());
            m.status = Some(if r.read.is_some() {
                DeliveryStatus::Read
            } else if r.delivered.is_some() {
                DeliveryStatus::Delivered
            } else if r.failed.is_some() {
                DeliveryStatus::Failed
            } else {
                DeliveryStatus::Sent
            });
        }
        let mut connections = Vec::new();
        let mut contacts = Vec::new();
        for id in &self.contact_order {
            let state = &self.contacts[id];
            contacts.push(ContactFact {
                contact_id: id.clone(),
                name: state.name.clone(),
            });
            let mut seen = HashSet::new();
            for &mi in &state.messages {
                let m = &self.messages[mi];
                let counts = m.incoming || m.status != Some(DeliveryStatus::Failed);
                if counts && seen.insert(m.channel_id.clone()) {
                    connections.push(ConnectionFact {
                        contact_id: id.clone(),
                        channel_id: m.channel_id.clone(),
                        at: m.at,
                        message_id: m.message_id.clone(),
                        source: m.source.map_or("incoming_message", MessageSource::wire),
                        user_id: m.user_id.clone(),
                    });
                }
            }
        }
        let conversations = self.convs.iter().map(conversation_fact).collect();
        Facts {
            contacts,
            conversations,
            messages: self.messages,
            activities: self.activities,
            connections,
            assignments: self.assignments,
        }
    }
}

fn conversation_fact(c: &ConvState) -> ConversationFact {
    let (first_at, first_assignee) = match &c.carried {
        Some(u) => (Some(c.opened_at), Some(u.clone())),
        None => c
            .activities
            .iter()
            .find_map(|a| a.new.as_ref().map(|u| (Some(a.at), Some(u.clone()))))
            .unwrap_or((None, None)),
    };
    let (last_at, last_assignee, reassignment) = match c.activities.last() {
        Some(a) => (
            Some(a.at),
            Some(a.new.clone().map_or(Assignee::Unassigned, Assignee::User)),
            a.reassignment,
        ),
        None => (first_at, first_assignee.clone().map(Assignee::User), false),
    };
    let last_assignment_to_response = match (&last_assignee, last_at) {
        (Some(Assignee::User(u)), Some(at)) => c
            .responses
            .iter()
            .find(|r| {
                r.user.as_deref() == Some(u.as_str())
                    && r.at >= at
                    && (!reassignment || r.wait_last_incoming >= at)
            })
            .map(|r| (r.at.0 - at.0) / 1_000_000),
        _ => None,
    };
    let closed_at = c.close.as_ref().map(|x| x.at);
    let first_response_at = c.first_response.as_ref().map(|r| r.0);
    let n = c.responses.len() as i64;
    ConversationFact {
        conversation_id: c.id.clone(),
        contact_id: c.contact.clone(),
        opened_at: c.opened_at,
        opened_source: c.source,
        opened_channel: c.channel.clone(),
        contact_type: c.contact_type,
        close: c.close.clone(),
        first_assignment_at: first_at,
        first_assignee,
        first_assignee_carried: c.carried.is_some(),
        first_response_at,
        first_response_by: c.first_response.as_ref().and_then(|r| r.1.clone()),
        last_assignment_at: last_at,
        last_assignee,
        time_to_first_assignment: if c.carried.is_some() {
            None
        } else {
            secs_between(Some(c.opened_at), first_at)
        },
        first_response_time: secs_between(Some(c.opened_at), first_response_at),
        first_assignment_to_first_response: secs_between(first_at, first_response_at),
        last_assignment_to_response,
        resolution_time: secs_between(Some(c.opened_at), closed_at),
        first_assignment_to_close: secs_between(first_at, closed_at),
        last_assignment_to_close: secs_between(last_at, closed_at),
        average_response_time: (n > 0)
            .then(|| c.responses.iter().map(|r| r.time).sum::<i64>() / n / 1_000_000),
        assignments: c.activities.len() as i64,
        incoming_messages: c.incoming,
        outgoing_messages: c.outgoing,
        responses: n,
    }
}
