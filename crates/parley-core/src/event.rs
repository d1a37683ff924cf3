//! Events (SPEC §2): the typed event, its application-order rank, and the validation of
//! one NDJSON line into it (SPEC §2.3). Past this module no string is re-checked.

use std::borrow::Cow;

use serde_json::Value;

use crate::enums::{
    AssignSource, ChannelKind, CloseSource, ContactSource, ContentType, DeliveryStatus,
    MessageSource, MessageType, OpenSource,
};
use crate::time::{parse_rfc3339, Instant};

/// The longest string an event may carry anywhere, in bytes of UTF-8.
pub const MAX_STRING_BYTES: usize = 65_536;
/// The longest event id, in Unicode code points.
pub const MAX_ID_CHARS: usize = 128;

/// One validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub at: Instant,
    pub body: Body,
}

/// A message's content: its type and, when present, its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub kind: ContentType,
    pub text: Option<String>,
}

impl Content {
    /// What logs show: the text when present (even empty), else `[type]`.
    pub fn display(&self) -> String {
        match &self.text {
            Some(t) => t.clone(),
            None => format!("[{}]", self.kind.wire()),
        }
    }
}

/// The payload of each event type of SPEC §2.1 and §2.2.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    UserUpserted {
        user_id: String,
        name: String,
        team_id: Option<String>,
    },
    UserDeleted {
        user_id: String,
    },
    TeamUpserted {
        team_id: String,
        name: String,
    },
    ChannelUpserted {
        channel_id: String,
        name: String,
        kind: ChannelKind,
    },
    ChannelDeleted {
        channel_id: String,
    },
    ContactAdded {
        contact_id: String,
        name: String,
        source: ContactSource,
        user_id: Option<String>,
    },
    ContactUpdated {
        contact_id: String,
        name: String,
    },
    ContactDeleted {
        contact_id: String,
        user_id: String,
    },
    ContactMerged {
        primary_contact_id: String,
        merged_contact_id: String,
        user_id: String,
    },
    ConversationOpened {
        conversation_id: String,
        contact_id: String,
        source: OpenSource,
        channel_id: Option<String>,
        user_id: Option<String>,
    },
    ConversationClosed {
        conversation_id: String,
        source: CloseSource,
        user_id: Option<String>,
        category: Option<String>,
        summary: Option<String>,
    },
    ContactAssigned {
        contact_id: String,
        assignee_id: Option<String>,
        source: AssignSource,
        by_user_id: Option<String>,
    },
    MessageReceived {
        message_id: String,
        contact_id: String,
        channel_id: String,
        content: Content,
    },
    MessageSent {
        message_id: String,
        contact_id: String,
        channel_id: String,
        source: MessageSource,
        user_id: Option<String>,
        message_type: MessageType,
        subtype: Option<String>,
        broadcast: Option<Broadcast>,
        content: Content,
    },
    MessageStatus {
        message_id: String,
        status: DeliveryStatus,
        error: Option<String>,
    },
}

/// The broadcast an outgoing message was part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    pub id: String,
    pub name: String,
}

/// Every event type's wire name, in type-rank order groups.
pub const EVENT_TYPES: &[&str] = &[
    "user.upserted",
    "user.deleted",
    "team.upserted",
    "channel.upserted",
    "channel.deleted",
    "contact.added",
    "contact.updated",
    "conversation.opened",
    "contact.assigned",
    "message.received",
    "message.sent",
    "message.status",
    "conversation.closed",
    "contact.merged",
    "contact.deleted",
];

impl Body {
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::UserUpserted { .. } => "user.upserted",
            Body::UserDeleted { .. } => "user.deleted",
            Body::TeamUpserted { .. } => "team.upserted",
            Body::ChannelUpserted { .. } => "channel.upserted",
            Body::ChannelDeleted { .. } => "channel.deleted",
            Body::ContactAdded { .. } => "contact.added",
            Body::ContactUpdated { .. } => "contact.updated",
            Body::ContactDeleted { .. } => "contact.deleted",
            Body::ContactMerged { .. } => "contact.merged",
            Body::ConversationOpened { .. } => "conversation.opened",
            Body::ConversationClosed { .. } => "conversation.closed",
            Body::ContactAssigned { .. } => "contact.assigned",
            Body::MessageReceived { .. } => "message.received",
            Body::MessageSent { .. } => "message.sent",
            Body::MessageStatus { .. } => "message.status",
        }
    }

    /// The type rank of SPEC §2, lowest applied first at equal instants.
    pub fn rank(&self) -> u8 {
        match self {
            Body::UserUpserted { .. }
            | Body::UserDeleted { .. }
            | Body::TeamUpserted { .. }
            | Body::ChannelUpserted { .. }
            | Body::ChannelDeleted { .. } => 0,
            Body::ContactAdded { .. } => 1,
            Body::ContactUpdated { .. } => 2,
            Body::ConversationOpened { .. } => 3,
            Body::ContactAssigned { .. } => 4,
            Body::MessageReceived { .. } => 5,
            Body::MessageSent { .. } => 6,
            Body::MessageStatus { .. } => 7,
            Body::ConversationClosed { .. } => 8,
            Body::ContactMerged { .. } => 9,
            Body::ContactDeleted { .. } => 10,
        }
    }

    pub fn is_directory(&self) -> bool {
        self.rank() == 0
    }

    /// The contacts an event names directly (a merge names two).
    pub fn contacts(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Body::ContactAdded { contact_id, .. }
            | Body::ContactUpdated { contact_id, .. }
            | Body::ContactDeleted { contact_id, .. }
            | Body::ConversationOpened { contact_id, .. }
            | Body::ContactAssigned { contact_id, .. }
            | Body::MessageReceived { contact_id, .. }
            | Body::MessageSent { contact_id, .. } => (Some(contact_id), None),
            Body::ContactMerged {
                primary_contact_id,
                merged_contact_id,
                ..
            } => (Some(primary_contact_id), Some(merged_contact_id)),
            _ => (None, None),
        }
    }

    /// The conversation id an event names, if any.
    pub fn conversation_id(&self) -> Option<&str> {
        match self {
            Body::ConversationOpened {
                conversation_id, ..
            }
            | Body::ConversationClosed {
                conversation_id, ..
            } => Some(conversation_id),
            _ => None,
        }
    }

    /// The message id an event names, if any.
    pub fn message_id(&self) -> Option<&str> {
        match self {
            Body::MessageReceived { message_id, .. }
            | Body::MessageSent { message_id, .. }
            | Body::MessageStatus { message_id, .. } => Some(message_id),
            _ => None,
        }
    }
}

/// Why one event of a batch was rejected (SPEC §2.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct EventError {
    /// 1-based line number in the batch.
    pub line: usize,
    /// 0-based index among the batch's events (blank lines skipped).
    pub index: usize,
    pub id: Option<String>,
    /// The dotted path of the field at fault, when one is.
    pub field: Option<String>,
    pub reason: String,
}

impl EventError {
    fn describe(&self) -> String {
        let mut s = format!("line {} (event {}", self.line, self.index);
        if let Some(id) = &self.id {
            s.push_str(&format!(", id {id:?}"));
        }
        s.push_str("): ");
        if let Some(f) = &self.field {
            s.push_str(&format!("field {f}: "));
        }
        s.push_str(&self.reason);
        s
    }
}

/// A rejection before line and index are known.
struct Fault {
    field: Option<String>,
    reason: String,
}

fn fault(field: &str, reason: impl Into<String>) -> Fault {
    Fault {
        field: Some(field.to_string()),
        reason: reason.into(),
    }
}

/// Parses and validates one non-blank NDJSON line.
pub fn parse_event(line_bytes: &[u8], line: usize, index: usize) -> Result<Event, EventError> {
    let wrap = |id: Option<String>, f: Fault| EventError {
        line,
        index,
        id,
        field: f.field,
        reason: f.reason,
    };
    let text = std::str::from_utf8(line_bytes).map_err(|e| {
        wrap(
            None,
            Fault {
                field: None,
                reason: format!("not valid UTF-8 ({e})"),
            },
        )
    })?;
    let value = strict_json(text).map_err(|(dup, e)| match dup {
        // A repeated key: name it, and the event's id as a lenient parser reads it.
        Some(path) => wrap(
            serde_json::from_str::<Value>(text)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string)),
            fault(&path, "the key appears twice in its object"),
        ),
        None => wrap(
            None,
            Fault {
                field: None,
                reason: format!("not valid JSON ({e})"),
            },
        ),
    })?;
    let J::Obj(obj) = value else {
        return Err(wrap(
            None,
            Fault {
                field: None,
                reason: "not a JSON object".into(),
            },
        ));
    };
    let id = match J::get(&obj, "id") {
        Some(J::Str(s)) => Some(s.to_string()),
        _ => None,
    };
    parse_object(&obj).map_err(|f| wrap(id, f))
}

/// A parsed JSON value whose strings borrow from the line wherever they hold no escape:
/// an event is read once, without a `serde_json::Value` and its owned copies.
#[derive(Debug)]
enum J<'a> {
    Null,
    /// A boolean or a number: present, and never a string.
    Scalar,
    Str(Cow<'a, str>),
    Arr(Vec<J<'a>>),
    /// Members in document order (keys are unique: [`strict_json`] refuses repeats).
    Obj(Vec<(Cow<'a, str>, J<'a>)>),
}

impl<'a> J<'a> {
    fn get(members: &'a [(Cow<'a, str>, J<'a>)], key: &str) -> Option<&'a J<'a>> {
        members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Parses JSON refusing an object with the same key twice, at any depth (SPEC §2.3:
/// parsers disagree on which one wins). On such a key, the error carries its dotted path.
fn strict_json(text: &str) -> Result<J<'_>, (Option<String>, serde_json::Error)> {
    use serde::de::DeserializeSeed;
    let dup = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict {
        at: None,
        dup: &dup,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    value.map_err(|e| (dup.take(), e))
}

/// Where a value sits: its key or index, inside its parent's place.
struct Place<'a> {
    parent: Option<&'a Place<'a>>,
    name: PlaceName<'a>,
}

enum PlaceName<'a> {
    Key(&'a str),
    Index(usize),
}

impl Place<'_> {
    fn path(&self) -> String {
        let name = match self.name {
            PlaceName::Key(k) => k.to_string(),
            PlaceName::Index(i) => i.to_string(),
        };
        match self.parent {
            Some(p) => join(&p.path(), &name),
            None => name,
        }
    }
}

/// A [`J`] reader that records the path of the first repeated key and fails there.
struct Strict<'a> {
    at: Option<&'a Place<'a>>,
    dup: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
    type Value = J<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<J<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

/// An object key, borrowed from the line when it holds no escape.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// Members past which an object's repeated keys are found by a hash set, not a scan.
const SCANNED_MEMBERS: usize = 16;

impl<'de> serde::de::Visitor<'de> for Strict<'_> {
    type Value = J<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<J<'de>, E> {
        Ok(J::Scalar)
    }

    fn visit_i64<E>(self, _: i64) -> Result<J<'de>, E> {
        Ok(J::Scalar)
    }

    fn visit_u64<E>(self, _: u64) -> Result<J<'de>, E> {
        Ok(J::Scalar)
    }

    fn visit_f64<E>(self, _: f64) -> Result<J<'de>, E> {
        Ok(J::Scalar)
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<J<'de>, E> {
        Ok(J::Str(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }

    fn visit_none<E>(self) -> Result<J<'de>, E> {
        Ok(J::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<J<'de>, A::Error> {
        let mut items = Vec::new();
        loop {
            let place = Place {
                parent: self.at,
                name: PlaceName::Index(items.len()),
            };
            let seed = Strict {
                at: Some(&place),
                dup: self.dup,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => items.push(v),
                None => return Ok(J::Arr(items)),
            }
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<J<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, J<'de>)> = Vec::new();
        let mut many: Option<std::collections::HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            let place = Place {
                parent: self.at,
                name: PlaceName::Key(&key),
            };
            let value = map.next_value_seed(Strict {
                at: Some(&place),
                dup: self.dup,
            })?;
            let repeated = match &mut many {
                Some(set) => !set.insert(key.clone()),
                None => members.iter().any(|(k, _)| *k == key),
            };
            if repeated {
                *self.dup.borrow_mut() = Some(place.path());
                return Err(serde::de::Error::custom("a key appears twice"));
            }
            members.push((key, value));
            if many.is_none() && members.len() > SCANNED_MEMBERS {
                many = Some(members.iter().map(|(k, _)| k.clone()).collect());
            }
        }
        Ok(J::Obj(members))
    }
}

/// Whether any key or string, at any depth, is longer than `MAX_STRING_BYTES`.
fn any_too_long(value: &J) -> bool {
    match value {
        J::Str(s) => s.len() > MAX_STRING_BYTES,
        J::Arr(items) => items.iter().any(any_too_long),
        J::Obj(members) => members
            .iter()
            .any(|(k, v)| k.len() > MAX_STRING_BYTES || any_too_long(v)),
        J::Null | J::Scalar => false,
    }
}

/// The first string longer than `MAX_STRING_BYTES`, visiting members in key order.
fn check_lengths(value: &J, path: &str) -> Result<(), Fault> {
    let too_long = |p: &str| {
        fault(
            if p.is_empty() { "(key)" } else { p },
            format!("string longer than {MAX_STRING_BYTES} bytes"),
        )
    };
    match value {
        J::Str(s) if s.len() > MAX_STRING_BYTES => Err(too_long(path)),
        J::Arr(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_lengths(v, &join(path, &i.to_string()))),
        J::Obj(members) => sorted(members).into_iter().try_for_each(|(k, v)| {
            let p = join(path, k);
            if k.len() > MAX_STRING_BYTES {
                return Err(too_long(&p));
            }
            check_lengths(v, &p)
        }),
        _ => Ok(()),
    }
}

/// An object's members in key order.
fn sorted<'a>(members: &'a [(Cow<'a, str>, J<'a>)]) -> Vec<(&'a str, &'a J<'a>)> {
    let mut out: Vec<(&str, &J)> = members.iter().map(|(k, v)| (k.as_ref(), v)).collect();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Typed access to one JSON object's fields, reporting dotted paths.
struct Fields<'a> {
    obj: &'a [(Cow<'a, str>, J<'a>)],
    /// The dotted path of this object inside the event (`""` at the top).
    prefix: String,
}

impl<'a> Fields<'a> {
    fn path(&self, key: &str) -> String {
        join(&self.prefix, key)
    }

    fn present(&self, key: &str) -> Option<&'a J<'a>> {
        J::get(self.obj, key).filter(|v| !matches!(v, J::Null))
    }

    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, Fault> {
        match self.present(key) {
            None => Ok(None),
            Some(J::Str(s)) => Ok(Some(s)),
            Some(_) => Err(fault(&self.path(key), "must be a string")),
        }
    }

    /// A required text (may be empty).
    fn text(&self, key: &str) -> Result<String, Fault> {
        self.opt_str(key)?
            .map(str::to_string)
            .ok_or_else(|| fault(&self.path(key), "required field is missing"))
    }

    /// A required id: a non-empty string.
    fn id(&self, key: &str) -> Result<String, Fault> {
        let s = self.text(key)?;
        if s.is_empty() {
            return Err(fault(&self.path(key), "must not be empty"));
        }
        Ok(s)
    }

    /// An optional id: absent or null, else a non-empty string.
    fn opt_id(&self, key: &str) -> Result<Option<String>, Fault> {
        match self.opt_str(key)? {
            Some("") => Err(fault(&self.path(key), "must not be empty")),
            other => Ok(other.map(str::to_string)),
        }
    }

    fn enumerated<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        expected: fn() -> String,
    ) -> Result<T, Fault> {
        let s = self.text(key)?;
        parse(&s).ok_or_else(|| {
            fault(
                &self.path(key),
                format!("unknown value {s:?} (expected one of {})", expected()),
            )
        })
    }

    fn object(&self, key: &str) -> Result<Option<Fields<'a>>, Fault> {
        match self.present(key) {
            None => Ok(None),
            Some(J::Obj(obj)) => Ok(Some(Fields {
                obj,
                prefix: self.path(key),
            })),
            Some(_) => Err(fault(&self.path(key), "must be an object")),
        }
    }

    fn required_object(&self, key: &str) -> Result<Fields<'a>, Fault> {
        self.object(key)?
            .ok_or_else(|| fault(&self.path(key), "required field is missing"))
    }
}

fn parse_object(obj: &[(Cow<'_, str>, J<'_>)]) -> Result<Event, Fault> {
    if obj
        .iter()
        .any(|(k, v)| k.len() > MAX_STRING_BYTES || any_too_long(v))
    {
        for (key, value) in sorted(obj) {
            if key.len() > MAX_STRING_BYTES {
                return Err(fault(
                    "(key)",
                    format!("string longer than {MAX_STRING_BYTES} bytes"),
                ));
            }
            check_lengths(value, key)?;
        }
    }
    let f = Fields {
        obj,
        prefix: String::new(),
    };
    let id = f.text("id")?;
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_ID_CHARS {
        return Err(fault(
            "id",
            format!("must be 1 to {MAX_ID_CHARS} characters, got {chars}"),
        ));
    }
    if id
        .chars()
        .any(|c| matches!(c as u32, 0x00..=0x1F | 0x7F..=0x9F))
    {
        return Err(fault("id", "must not contain control characters"));
    }
    let kind = f.text("type")?;
    if !EVENT_TYPES.contains(&kind.as_str()) {
        return Err(fault("type", format!("unknown event type {kind:?}")));
    }
    let at_text = f.text("at")?;
    let at = parse_rfc3339(&at_text).map_err(|e| fault("at", e.0))?;
    let body = parse_body(&kind, &f)?;
    Ok(Event { id, at, body })
}

fn content(f: &Fields) -> Result<Content, Fault> {
    let c = f.required_object("content")?;
    let kind = c.enumerated("type", ContentType::from_wire, ContentType::expected)?;
    let text = c.opt_str("text")?.map(str::to_string);
    Ok(Content { kind, text })
}

/// An optional text where empty counts as missing (`category`, `subtype`).
fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_string)
}

fn parse_body(kind: &str, f: &Fields) -> Result<Body, Fault> {
    Ok(match kind {
        "user.upserted" => {
            let u = f.required_object("user")?;
            Body::UserUpserted {
                user_id: u.id("id")?,
                name: u.text("name")?,
                team_id: u.opt_id("team_id")?,
            }
        }
        "user.deleted" => Body::UserDeleted {
            user_id: f.id("user_id")?,
        },
        "team.upserted" => {
            let t = f.required_object("team")?;
            Body::TeamUpserted {
                team_id: t.id("id")?,
                name: t.text("name")?,
            }
        }
        "channel.upserted" => {
            let c = f.required_object("channel")?;
            Body::ChannelUpserted {
                channel_id: c.id("id")?,
                name: c.text("name")?,
                kind: c.enumerated("kind", ChannelKind::from_wire, ChannelKind::expected)?,
            }
        }
        "channel.deleted" => Body::ChannelDeleted {
            channel_id: f.id("channel_id")?,
        },
        "contact.added" => {
            let c = f.required_object("contact")?;
            Body::ContactAdded {
                contact_id: c.id("id")?,
                name: c.text("name")?,
                source: f.enumerated(
                    "source",
                    ContactSource::from_wire,
                    ContactSource::expected,
                )?,
                user_id: f.opt_id("user_id")?,
            }
        }
        "contact.updated" => {
            let c = f.required_object("contact")?;
            Body::ContactUpdated {
                contact_id: c.id("id")?,
                name: c.text("name")?,
            }
        }
        "contact.deleted" => Body::ContactDeleted {
            contact_id: f.id("contact_id")?,
            user_id: f.id("user_id")?,
        },
        "contact.merged" => Body::ContactMerged {
            primary_contact_id: f.id("primary_contact_id")?,
            merged_contact_id: f.id("merged_contact_id")?,
            user_id: f.id("user_id")?,
        },
        "conversation.opened" => Body::ConversationOpened {
            conversation_id: f.id("conversation_id")?,
            contact_id: f.id("contact_id")?,
            source: f.enumerated("source", OpenSource::from_wire, OpenSource::expected)?,
            channel_id: f.opt_id("channel_id")?,
            user_id: f.opt_id("user_id")?,
        },
        "conversation.closed" => Body::ConversationClosed {
            conversation_id: f.id("conversation_id")?,
            source: f.enumerated("source", CloseSource::from_wire, CloseSource::expected)?,
            user_id: f.opt_id("user_id")?,
            category: non_empty(f.opt_str("category")?),
            summary: f.opt_str("summary")?.map(str::to_string),
        },
        "contact.assigned" => {
            if J::get(f.obj, "assignee_id").is_none() {
                return Err(fault(
                    "assignee_id",
                    "required field is missing (use null to unassign)",
                ));
            }
            Body::ContactAssigned {
                contact_id: f.id("contact_id")?,
                assignee_id: f.opt_id("assignee_id")?,
                source: f.enumerated("source", AssignSource::from_wire, AssignSource::expected)?,
                by_user_id: f.opt_id("by_user_id")?,
            }
        }
        "message.received" => Body::MessageReceived {
            message_id: f.id("message_id")?,
            contact_id: f.id("contact_id")?,
            channel_id: f.id("channel_id")?,
            content: content(f)?,
        },
        "message.sent" => {
            let message_type = f.enumerated(
                "message_type",
                MessageType::from_wire,
                MessageType::expected,
            )?;
            let broadcast = match f.object("broadcast")? {
                None => None,
                Some(b) => Some(Broadcast {
                    id: b.id("id")?,
                    name: b.text("name")?,
                }),
            };
            let subtype = non_empty(f.opt_str("subtype")?);
            Body::MessageSent {
                message_id: f.id("message_id")?,
                contact_id: f.id("contact_id")?,
                channel_id: f.id("channel_id")?,
                source: f.enumerated(
                    "source",
                    MessageSource::from_wire,
                    MessageSource::expected,
                )?,
                user_id: f.opt_id("user_id")?,
                // A session message has no subtype (SPEC §2.2): it is dropped here.
                subtype: if message_type == MessageType::Session {
                    None
                } else {
                    subtype
                },
                message_type,
                broadcast,
                content: content(f)?,
            }
        }
        "message.status" => Body::MessageStatus {
            message_id: f.id("message_id")?,
            status: f.enumerated(
                "status",
                DeliveryStatus::from_wire,
                DeliveryStatus::expected,
            )?,
            error: f.opt_str("error")?.map(str::to_string),
        },
        _ => unreachable!("type checked against EVENT_TYPES"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Event, EventError> {
        parse_event(s.as_bytes(), 3, 2)
    }

    fn err(s: &str) -> EventError {
        parse(s).expect_err("must be rejected")
    }

    const SENT: &str = r#"{"id":"e1","type":"message.sent","at":"2026-11-03T09:15:27.120+01:00","message_id":"m1","contact_id":"c1","channel_id":"wa","source":"user","user_id":"u1","message_type":"session","subtype":"x","content":{"type":"text","text":"hi"},"extra":1}"#;

    #[test]
    fn a_valid_sent_message_parses_into_typed_fields() {
        let e = parse(SENT).unwrap();
        assert_eq!(e.id, "e1");
        match e.body {
            Body::MessageSent {
                source,
                subtype,
                message_type,
                ..
            } => {
                assert_eq!(source, MessageSource::User);
                assert_eq!(message_type, MessageType::Session);
                assert_eq!(subtype, None, "a session message's subtype is dropped");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_json_names_line_and_index() {
        let e = err(r#"{"id": "e1", "type": "#);
        assert_eq!((e.line, e.index, e.id.as_deref()), (3, 2, None));
        assert!(e.reason.contains("not valid JSON"), "{}", e.reason);
        assert!(e
            .to_string()
            .starts_with("line 3 (event 2): not valid JSON"));
    }

    #[test]
    fn a_key_twice_at_any_depth_is_rejected_and_named() {
        let e = err(
            r#"{"id":"e1","type":"contact.updated","id":"e2","at":"2026-11-03T09:15:27Z","contact":{"id":"c","name":"A"}}"#,
        );
        assert_eq!(e.field.as_deref(), Some("id"));
        assert_eq!(e.reason, "the key appears twice in its object");
        let e = err(&SENT.replace(
            r#""content":{"type":"text""#,
            r#""content":{"type":"text","type":"image""#,
        ));
        assert_eq!(e.field.as_deref(), Some("content.type"));
        assert_eq!(
            e.id.as_deref(),
            Some("e1"),
            "the event is still named by its id"
        );
        let e = err(
            r#"{"id":"e1","type":"contact.updated","at":"2026-11-03T09:15:27Z","contact":{"id":"c","name":"A"},"extra":[{"k":1},{"k":1,"k":2}]}"#,
        );
        assert_eq!(e.field.as_deref(), Some("extra.1.k"));
        assert!(e
            .to_string()
            .starts_with("line 3 (event 2, id \"e1\"): field extra.1.k: "));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let e = parse_event(b"{\"id\":\"\xff\"}", 1, 0).unwrap_err();
        assert!(e.reason.contains("UTF-8"));
    }

    #[test]
    fn unknown_type_is_rejected_with_its_id() {
        let e = err(r#"{"id":"e9","type":"message.edited","at":"2026-11-03T09:15:27Z"}"#);
        assert_eq!(e.id.as_deref(), Some("e9"));
        assert_eq!(e.field.as_deref(), Some("type"));
        assert_eq!(
            e.to_string(),
            r#"line 3 (event 2, id "e9"): field type: unknown event type "message.edited""#
        );
    }

    #[test]
    fn missing_and_null_required_fields_are_rejected() {
        let e = err(&SENT.replace(r#""channel_id":"wa","#, ""));
        assert_eq!(e.field.as_deref(), Some("channel_id"));
        let e = err(&SENT.replace(r#""channel_id":"wa""#, r#""channel_id":null"#));
        assert_eq!(e.field.as_deref(), Some("channel_id"));
        assert!(e.reason.contains("missing"));
        let e = err(
            r#"{"id":"a1","type":"contact.assigned","at":"2026-11-03T09:15:27Z","contact_id":"c","source":"bot"}"#,
        );
        assert_eq!(e.field.as_deref(), Some("assignee_id"));
    }

    #[test]
    fn null_assignee_is_an_unassignment() {
        let e = parse(r#"{"id":"a1","type":"contact.assigned","at":"2026-11-03T09:15:27Z","contact_id":"c","assignee_id":null,"source":"bot"}"#).unwrap();
        assert!(matches!(
            e.body,
            Body::ContactAssigned {
                assignee_id: None,
                ..
            }
        ));
    }

    #[test]
    fn enum_values_outside_the_enumeration_name_the_nested_field() {
        let e = err(&SENT.replace(r#""type":"text""#, r#""type":"gif""#));
        assert_eq!(e.field.as_deref(), Some("content.type"));
        assert!(e.reason.contains("\"gif\""));
        let e = err(&SENT.replace(r#""source":"user""#, r#""source":"robot""#));
        assert_eq!(e.field.as_deref(), Some("source"));
    }

    #[test]
    fn a_bad_timestamp_is_rejected() {
        let e = err(&SENT.replace("2026-11-03T09:15:27.120+01:00", "2026-11-03 09:15:27Z"));
        assert_eq!(e.field.as_deref(), Some("at"));
    }

    #[test]
    fn an_over_long_string_anywhere_is_rejected() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        let e = err(&SENT.replace(r#""extra":1"#, &format!(r#""extra":{{"deep":["{long}"]}}"#)));
        assert_eq!(e.field.as_deref(), Some("extra.deep.0"));
        assert!(e.reason.contains("65536"));
        let exact = "x".repeat(MAX_STRING_BYTES);
        assert!(parse(&SENT.replace("\"hi\"", &format!("\"{exact}\""))).is_ok());
    }

    #[test]
    fn ids_are_bounded_and_free_of_control_characters() {
        assert_eq!(
            err(&SENT.replace(r#""id":"e1""#, r#""id":"""#))
                .field
                .as_deref(),
            Some("id")
        );
        let long = "é".repeat(129);
        assert_eq!(
            err(&SENT.replace(r#""id":"e1""#, &format!(r#""id":"{long}""#)))
                .field
                .as_deref(),
            Some("id")
        );
        assert!(
            parse(&SENT.replace(r#""id":"e1""#, &format!(r#""id":"{}""#, "é".repeat(128)))).is_ok()
        );
        assert_eq!(
            err(&SENT.replace(r#""id":"e1""#, r#""id":"a\u0085b""#))
                .field
                .as_deref(),
            Some("id")
        );
    }

    #[test]
    fn non_string_text_is_rejected_but_empty_text_is_kept() {
        let e = err(&SENT.replace(r#""text":"hi""#, r#""text":5"#));
        assert_eq!(e.field.as_deref(), Some("content.text"));
        let ok = parse(&SENT.replace(r#""text":"hi""#, r#""text":"""#)).unwrap();
        let Body::MessageSent { content, .. } = ok.body else {
            panic!()
        };
        assert_eq!(content.display(), "");
        assert_eq!(
            Content {
                kind: ContentType::Image,
                text: None
            }
            .display(),
            "[image]"
        );
    }

    #[test]
    fn empty_category_and_subtype_count_as_missing() {
        let e = parse(r#"{"id":"c","type":"conversation.closed","at":"2026-11-03T09:15:27Z","conversation_id":"cv","source":"bot","category":"","summary":""}"#).unwrap();
        let Body::ConversationClosed {
            category, summary, ..
        } = e.body
        else {
            panic!()
        };
        assert_eq!(category, None);
        assert_eq!(summary.as_deref(), Some(""));
    }

    #[test]
    fn ranks_follow_the_spec_order() {
        let order = [
            "user.upserted",
            "contact.added",
            "contact.updated",
            "conversation.opened",
            "contact.assigned",
            "message.received",
            "message.sent",
            "message.status",
            "conversation.closed",
            "contact.merged",
            "contact.deleted",
        ];
        let ranks: Vec<u8> = order.iter().map(|t| rank_of(t)).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
    }

    fn rank_of(t: &str) -> u8 {
        let body = match t {
            "user.upserted" => Body::UserUpserted {
                user_id: "u".into(),
                name: "n".into(),
                team_id: None,
            },
            "contact.added" => Body::ContactAdded {
                contact_id: "c".into(),
                name: "".into(),
                source: ContactSource::User,
                user_id: None,
            },
            "contact.updated" => Body::ContactUpdated {
                contact_id: "c".into(),
                name: "".into(),
            },
            "conversation.opened" => Body::ConversationOpened {
                conversation_id: "v".into(),
                contact_id: "c".into(),
                source: OpenSource::User,
                channel_id: None,
                user_id: None,
            },
            "contact.assigned" => Body::ContactAssigned {
                contact_id: "c".into(),
                assignee_id: None,
                source: AssignSource::Bot,
                by_user_id: None,
            },
            "message.received" => Body::MessageReceived {
                message_id: "m".into(),
                contact_id: "c".into(),
                channel_id: "w".into(),
                content: Content {
                    kind: ContentType::Text,
                    text: None,
                },
            },
            "message.sent" => Body::MessageSent {
                message_id: "m".into(),
                contact_id: "c".into(),
                channel_id: "w".into(),
                source: MessageSource::Bot,
                user_id: None,
                message_type: MessageType::Session,
                subtype: None,
                broadcast: None,
                content: Content {
                    kind: ContentType::Text,
                    text: None,
                },
            },
            "message.status" => Body::MessageStatus {
                message_id: "m".into(),
                status: DeliveryStatus::Read,
                error: None,
            },
            "conversation.closed" => Body::ConversationClosed {
                conversation_id: "v".into(),
                source: CloseSource::Bot,
                user_id: None,
                category: None,
                summary: None,
            },
            "contact.merged" => Body::ContactMerged {
                primary_contact_id: "a".into(),
                merged_contact_id: "b".into(),
                user_id: "u".into(),
            },
            "contact.deleted" => Body::ContactDeleted {
                contact_id: "c".into(),
                user_id: "u".into(),
            },
            _ => unreachable!(),
        };
        assert_eq!(body.type_name(), t);
        body.rank()
    }
}
