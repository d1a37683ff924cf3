//! SPEC §3, sentence by sentence: events in, facts out.

use parley_core::derive::{derive, Assignee, ConversationFact, Facts, MessageFact};
use parley_core::enums::{ContactType, DeliveryStatus};
use parley_core::event::parse_event;

/// `"10:05"` or `"10:05:30"` on 2026-01-05, UTC.
fn t(hm: &str) -> String {
    let full = if hm.len() == 5 {
        format!("{hm}:00")
    } else {
        hm.to_string()
    };
    format!("2026-01-05T{full}Z")
}

fn facts(lines: &[String]) -> Facts {
    let events = lines
        .iter()
        .enumerate()
        .map(|(i, l)| parse_event(l.as_bytes(), i + 1, i).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    derive(events)
}

fn open(id: &str, at: &str, conv: &str, contact: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"conversation.opened","at":"{}","conversation_id":"{conv}","contact_id":"{contact}","source":"contact","channel_id":"wa"}}"#,
        t(at)
    )
}
fn close(id: &str, at: &str, conv: &str, source: &str, user: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"conversation.closed","at":"{}","conversation_id":"{conv}","source":"{source}","user_id":"{user}","category":"Sales"}}"#,
        t(at)
    )
}
fn recv(id: &str, at: &str, msg: &str, contact: &str, ch: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"message.received","at":"{}","message_id":"{msg}","contact_id":"{contact}","channel_id":"{ch}","content":{{"type":"text","text":"hi"}}}}"#,
        t(at)
    )
}
fn sent(
    id: &str,
    at: &str,
    msg: &str,
    contact: &str,
    ch: &str,
    source: &str,
    user: &str,
) -> String {
    format!(
        r#"{{"id":"{id}","type":"message.sent","at":"{}","message_id":"{msg}","contact_id":"{contact}","channel_id":"{ch}","source":"{source}","user_id":"{user}","message_type":"session","content":{{"type":"image"}}}}"#,
        t(at)
    )
}
fn status(id: &str, at: &str, msg: &str, st: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"message.status","at":"{at}","message_id":"{msg}","status":"{st}","error":"E-{id}"}}"#
    )
}
fn assign(id: &str, at: &str, contact: &str, assignee: Option<&str>, source: &str) -> String {
    let a = assignee.map_or("null".to_string(), |a| format!("\"{a}\""));
    format!(
        r#"{{"id":"{id}","type":"contact.assigned","at":"{}","contact_id":"{contact}","assignee_id":{a},"source":"{source}","by_user_id":"boss"}}"#,
        t(at)
    )
}
fn merge(id: &str, at: &str, primary: &str, merged: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"contact.merged","at":"{}","primary_contact_id":"{primary}","merged_contact_id":"{merged}","user_id":"u9"}}"#,
        t(at)
    )
}
fn delete(id: &str, at: &str, contact: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"contact.deleted","at":"{}","contact_id":"{contact}","user_id":"u9"}}"#,
        t(at)
    )
}
fn added(id: &str, at: &str, contact: &str, source: &str) -> String {
    format!(
        r#"{{"id":"{id}","type":"contact.added","at":"{}","contact":{{"id":"{contact}","name":"N {id}"}},"source":"{source}","user_id":"u1"}}"#,
        t(at)
    )
}

fn conv<'a>(f: &'a Facts, id: &str) -> &'a ConversationFact {
    f.conversations
        .iter()
        .find(|c| c.conversation_id == id)
        .unwrap_or_else(|| panic!("no conversation {id}"))
}
fn msg<'a>(f: &'a Facts, id: &str) -> &'a MessageFact {
    f.messages
        .iter()
        .find(|m| m.message_id == id)
        .unwrap_or_else(|| panic!("no message {id}"))
}
fn closed(f: &Facts, id: &str) -> bool {
    conv(f, id).close.is_some()
}

// §3.1 ------------------------------------------------------------------------------

#[test]
fn s3_1_conversation_interval_is_closed_at_both_ends() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        recv("e2", "10:00", "m1", "c", "wa"),
        recv("e3", "10:30", "m2", "c", "wa"),
        close("e4", "10:30", "cv1", "bot", "u1"),
        recv("e5", "10:31", "m3", "c", "wa"),
    ]);
    assert_eq!(msg(&f, "m1").conversation_id.as_deref(), Some("cv1"));
    assert_eq!(msg(&f, "m2").conversation_id.as_deref(), Some("cv1"));
    assert_eq!(
        msg(&f, "m3").conversation_id,
        None,
        "outside every conversation"
    );
    assert_eq!(
        f.messages.len(),
        3,
        "a message outside conversations still exists"
    );
    assert_eq!(conv(&f, "cv1").incoming_messages, 2);
}

#[test]
fn s2_same_instant_close_is_applied_before_the_open() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        open("e2", "10:30", "cv2", "c"),
        recv("e3", "10:30", "m1", "c", "wa"),
        assign("e4", "10:30", "c", Some("u1"), "bot"),
        close("e5", "10:30", "cv1", "bot", "u1"),
    ]);
    assert!(closed(&f, "cv1"));
    assert_eq!(
        conv(&f, "cv1").close.as_ref().unwrap().at,
        conv(&f, "cv2").opened_at
    );
    assert_eq!(
        msg(&f, "m1").conversation_id.as_deref(),
        Some("cv2"),
        "events of that instant keep their rank"
    );
    assert_eq!(f.assignments[0].conversation_id.as_deref(), Some("cv2"));
    assert_eq!(conv(&f, "cv2").contact_type, ContactType::Returning);
}

#[test]
fn s2_a_merge_at_the_reopen_instant_is_not_a_close() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "b"),
        merge("e2", "10:30", "a", "b"),
        open("e3", "10:30", "cv2", "b"),
    ]);
    assert_eq!(
        f.conversations.len(),
        1,
        "the open is ignored: b still had cv1 open"
    );
    assert!(!closed(&f, "cv1"));
}

#[test]
fn s2_3_open_while_open_and_reused_ids_are_ignored() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        open("e2", "10:05", "cv2", "c"),
        open("e3", "10:06", "cv1", "d"),
        close("e4", "10:10", "cv1", "bot", "u1"),
        close("e5", "10:20", "cv1", "user", "u1"),
        close("e6", "10:20", "cv-unknown", "user", "u1"),
    ]);
    assert_eq!(f.conversations.len(), 1);
    let c = conv(&f, "cv1");
    assert_eq!(c.contact_id, "c", "the first open of an id wins");
    assert_eq!(
        c.close.as_ref().unwrap().source.wire(),
        "bot",
        "the first close wins"
    );
}

#[test]
fn s2_3_reused_message_ids_keep_the_first() {
    let f = facts(&[
        recv("e1", "10:00", "m1", "c", "wa"),
        sent("e2", "10:01", "m1", "d", "wa", "user", "u1"),
    ]);
    assert_eq!(f.messages.len(), 1);
    assert!(msg(&f, "m1").incoming);
}

#[test]
fn s3_1_merge_and_delete_end_conversations_without_a_counted_close() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "b"),
        open("e2", "10:00", "cv2", "a"),
        open("e3", "10:00", "cv3", "d"),
        merge("e4", "10:10", "a", "b"),
        delete("e5", "10:10", "d"),
        close("e6", "10:20", "cv1", "bot", "u1"),
        close("e7", "10:20", "cv3", "bot", "u1"),
        recv("e8", "10:30", "m1", "b", "wa"),
        recv("e9", "10:30", "m2", "a", "wa"),
    ]);
    assert!(
        !closed(&f, "cv1"),
        "later closes of a merged conversation are ignored"
    );
    assert!(
        !closed(&f, "cv3"),
        "later closes of a deleted contact's conversation are ignored"
    );
    assert_eq!(msg(&f, "m1").contact_id, "b", "ids are never redirected");
    assert_eq!(msg(&f, "m1").conversation_id, None);
    assert_eq!(
        msg(&f, "m2").conversation_id.as_deref(),
        Some("cv2"),
        "the primary's conversation is unaffected"
    );
}

#[test]
fn s3_1_merged_and_deleted_close_sources_are_never_counted() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        close("e2", "10:10", "cv1", "contact_merged", "u1"),
        recv("e3", "10:11", "m1", "c", "wa"),
        open("e4", "10:20", "cv2", "c"),
        close("e5", "10:30", "cv2", "contact_deleted", "u1"),
    ]);
    assert!(!closed(&f, "cv1") && !closed(&f, "cv2"));
    assert_eq!(
        msg(&f, "m1").conversation_id,
        None,
        "the close still ended cv1"
    );
}

// §3.2 ------------------------------------------------------------------------------

#[test]
fn s3_2_first_conversation_is_new_then_returning() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        close("e2", "10:10", "cv1", "bot", "u1"),
        open("e3", "10:20", "cv2", "c"),
    ]);
    assert_eq!(conv(&f, "cv1").contact_type, ContactType::New);
    assert_eq!(conv(&f, "cv2").contact_type, ContactType::Returning);
}

#[test]
fn s3_2_merge_brings_history_transitively_and_later_merged_conversations_stay_own() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "z"),
        merge("e2", "10:05", "b", "z"),
        merge("e3", "10:06", "a", "b"),
        open("e4", "10:10", "cv2", "a"),
        open("e5", "10:10", "cv3", "b"),
        open("e6", "10:10", "cv4", "z"),
        open("e7", "10:10", "cv5", "fresh"),
    ]);
    assert_eq!(
        conv(&f, "cv2").contact_type,
        ContactType::Returning,
        "z's history came through b"
    );
    assert_eq!(conv(&f, "cv3").contact_type, ContactType::Returning);
    assert_eq!(conv(&f, "cv5").contact_type, ContactType::New);
    assert_eq!(
        conv(&f, "cv4").contact_type,
        ContactType::Returning,
        "z's own history"
    );
    let f = facts(&[
        merge("e1", "10:00", "a", "b"),
        open("e2", "10:01", "cv1", "b"),
        open("e3", "10:02", "cv2", "a"),
    ]);
    assert_eq!(
        conv(&f, "cv2").contact_type,
        ContactType::New,
        "b's conversations after the merge stay its own"
    );
}

#[test]
fn s3_2_history_survives_delete() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        delete("e2", "10:05", "c"),
        added("e3", "10:10", "c", "user"),
        open("e4", "10:20", "cv2", "c"),
    ]);
    assert_eq!(conv(&f, "cv2").contact_type, ContactType::Returning);
    assert_eq!(
        f.conversations.len(),
        2,
        "a conversation ended by delete still counts as opened"
    );
}

// §3.3 ------------------------------------------------------------------------------

#[test]
fn s3_3_assignee_carries_over_without_activity() {
    let f = facts(&[
        assign("e1", "09:00", "c", Some("u1"), "bot"),
        open("e2", "10:00", "cv1", "c"),
        recv("e3", "10:01", "m1", "c", "wa"),
        sent("e4", "10:03", "m2", "c", "wa", "user", "u1"),
        close("e5", "10:10", "cv1", "bot", "x"),
    ]);
    let c = conv(&f, "cv1");
    assert_eq!(c.assignments, 0);
    assert_eq!(c.first_assignee.as_deref(), Some("u1"));
    assert_eq!(c.first_assignment_at, Some(c.opened_at));
    assert_eq!(
        c.time_to_first_assignment, None,
        "the assignee predates the conversation"
    );
    assert_eq!(c.last_assignee, Some(Assignee::User("u1".into())));
    assert_eq!(c.last_assignment_at, Some(c.opened_at));
    assert_eq!(
        c.last_assignment_to_response,
        Some(180),
        "carry-over is not a reassignment"
    );
    assert_eq!(
        f.assignments[0].conversation_id, None,
        "an assignment outside conversations"
    );
}

#[test]
fn s3_3_assignment_at_the_open_instant_is_inside_but_keeps_the_carried_first_assignee() {
    let f = facts(&[
        assign("e1", "09:00", "c", Some("u1"), "bot"),
        open("e2", "10:00", "cv1", "c"),
        assign("e3", "10:00", "c", Some("u2"), "bot"),
        close("e4", "10:10", "cv1", "bot", "x"),
    ]);
    let c = conv(&f, "cv1");
    assert_eq!(c.assignments, 1);
    assert_eq!(c.first_assignee.as_deref(), Some("u1"));
    assert_eq!(c.last_assignee, Some(Assignee::User("u2".into())));
    assert_eq!(f.assignments[1].conversation_id.as_deref(), Some("cv1"));
    assert_eq!(f.assignments[1].previous_assignee.as_deref(), Some("u1"));
}

#[test]
fn s3_3_same_assignee_and_unassignment_are_activities() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        assign("e2", "10:01", "c", Some("u1"), "user"),
        assign("e3", "10:02", "c", Some("u1"), "bot"),
        assign("e4", "10:03", "c", None, "bot"),
        close("e5", "10:10", "cv1", "bot", "x"),
    ]);
    let c = conv(&f, "cv1");
    assert_eq!(c.assignments, 3);
    assert_eq!(c.last_assignee, Some(Assignee::Unassigned));
    assert_eq!(c.time_to_first_assignment, Some(60));
    assert_eq!(c.last_assignment_to_close, Some(420));
    assert_eq!(
        f.assignments[0].assigned_by.as_deref(),
        Some("boss"),
        "source user keeps its user"
    );
    assert_eq!(
        f.assignments[1].assigned_by, None,
        "other sources have no user"
    );
    assert_eq!(f.assignments[2].new_assignee, None);
    assert_eq!(f.assignments[2].previous_assignee.as_deref(), Some("u1"));
}

// §3.4 ------------------------------------------------------------------------------

#[test]
fn s3_4_reassignment_needs_a_new_incoming_message() {
    // The source documents' example: incoming, assigned to A, reassigned to B, B replies: -.
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        recv("e2", "10:01", "m1", "c", "wa"),
        assign("e3", "10:02", "c", Some("A"), "bot"),
        assign("e4", "10:03", "c", Some("B"), "bot"),
        sent("e5", "10:04", "m2", "c", "wa", "user", "B"),
        close("e6", "10:10", "cv1", "bot", "x"),
    ]);
    assert_eq!(conv(&f, "cv1").last_assignment_to_response, None);
    // With an incoming message at or after the reassignment, B's reply counts.
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        recv("e2", "10:01", "m1", "c", "wa"),
        assign("e3", "10:02", "c", Some("A"), "bot"),
        assign("e4", "10:03", "c", Some("B"), "bot"),
        recv("e5", "10:03", "m3", "c", "wa"),
        sent("e6", "10:05", "m2", "c", "wa", "user", "B"),
        close("e7", "10:10", "cv1", "bot", "x"),
    ]);
    let c = conv(&f, "cv1");
    assert_eq!(c.last_assignment_to_response, Some(120));
    assert_eq!(c.responses, 1, "the second incoming joins the running wait");
    assert_eq!(c.average_response_time, Some(240));
}

#[test]
fn s3_4_first_assignment_response_by_the_last_assignee_only() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        assign("e2", "10:01", "c", Some("A"), "bot"),
        recv("e3", "10:02", "m1", "c", "wa"),
        sent("e4", "10:03", "m2", "c", "wa", "user", "X"),
        recv("e5", "10:04", "m3", "c", "wa"),
        sent("e6", "10:06", "m4", "c", "wa", "user", "A"),
        close("e7", "10:10", "cv1", "user", "A"),
    ]);
    let c = conv(&f, "cv1");
    assert_eq!(c.last_assignment_to_response, Some(300));
    assert_eq!(c.first_response_by.as_deref(), Some("X"));
    assert_eq!(c.first_assignment_to_first_response, Some(120));
    assert_eq!(
        c.close.as_ref().unwrap().by.as_deref(),
        Some("A"),
        "closed_by with source user"
    );
}

#[test]
fn s3_4_carry_over_then_different_user_is_a_reassignment() {
    let f = facts(&[
        assign("e0", "09:00", "c", Some("A"), "bot"),
        open("e1", "10:00", "cv1", "c"),
        recv("e2", "10:01", "m1", "c", "wa"),
        assign("e3", "10:02", "c", Some("B"), "bot"),
        sent("e4", "10:04", "m2", "c", "wa", "user", "B"),
        close("e5", "10:10", "cv1", "bot", "x"),
    ]);
    assert_eq!(conv(&f, "cv1").last_assignment_to_response, None);
}

#[test]
fn s3_4_responses_and_averages() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        sent("e2", "10:00:10", "m0", "c", "wa", "user", "u1"),
        recv("e3", "10:01", "m1", "c", "wa"),
        sent("e4", "10:01:30", "m2", "c", "wa", "bot", "u1"),
        sent("e5", "10:02", "m3", "c", "wa", "user", "u1"),
        recv("e6", "10:03", "m4", "c", "wa"),
        sent("e7", "10:04:01", "m5", "c", "wa", "user", "u2"),
        sent("e8", "10:05", "m6", "c", "wa", "broadcast", "u2"),
        recv("e9", "10:06", "m7", "c", "wa"),
        close("e10", "10:10", "cv1", "bot", "x"),
    ]);
    let c = conv(&f, "cv1");
    assert_eq!(c.responses, 2);
    assert_eq!(
        c.first_response_at.map(|t| t.0 % 60_000_000),
        Some(10_000_000),
        "first user message, nothing waiting"
    );
    assert_eq!(c.first_response_time, Some(10));
    assert_eq!(c.average_response_time, Some(60), "(60 + 61) / 2 truncated");
    assert_eq!(c.outgoing_messages, 4, "broadcast excluded");
    assert_eq!(c.incoming_messages, 3);
    assert_eq!(c.resolution_time, Some(600));
    assert_eq!(c.first_response_by.as_deref(), Some("u1"));
    assert_eq!(c.last_assignee, None);
    assert_eq!(c.first_assignment_to_close, None);
}

#[test]
fn s3_4_negative_first_assignment_to_first_response_is_missing() {
    let f = facts(&[
        open("e1", "10:00", "cv1", "c"),
        sent("e2", "10:01", "m1", "c", "wa", "user", "u1"),
        assign("e3", "10:02", "c", Some("A"), "bot"),
        close("e4", "10:10", "cv1", "bot", "x"),
    ]);
    assert_eq!(conv(&f, "cv1").first_assignment_to_first_response, None);
    assert_eq!(
        conv(&f, "cv1").close.as_ref().unwrap().by,
        None,
        "closed_by only with source user"
    );
}

// §3.5 ------------------------------------------------------------------------------

#[test]
fn s3_5_delivery_status_precedence_window_and_early_receipts() {
    let f = facts(&[
        sent("e1", "10:00", "m1", "c", "wa", "bot", "u"),
        status("s1", "2026-01-05T10:05:00Z", "m1", "failed"),
        status("s2", "2026-01-05T10:06:00Z", "m1", "delivered"),
        status("s3", "2026-01-05T10:07:00Z", "m1", "delivered"),
        status("s4", "2026-02-04T10:00:00Z", "m1", "read"),
        sent("e2", "10:00", "m2", "c", "wa", "bot", "u"),
        status("s5", "2026-02-04T10:00:01Z", "m2", "read"),
        status("s6", "2026-01-05T09:59:59Z", "m2", "delivered"),
        status("s7", "2026-01-05T10:01:00Z", "m2", "failed"),
        status("s8", "2026-01-05T10:02:00Z", "m2", "failed"),
        sent("e3", "10:00", "m3", "c", "wa", "bot", "u"),
        status("s9", "2026-01-05T10:00:00Z", "m3", "sent"),
        recv("e4", "10:00", "m4", "c", "wa"),
        status("s10", "2026-01-05T10:01:00Z", "m4", "read"),
        status("s11", "2026-01-05T10:01:00Z", "m-unknown", "read"),
    ]);
    let m1 = msg(&f, "m1");
    assert_eq!(
        m1.status,
        Some(DeliveryStatus::Read),
        "a read exactly 30 days later still counts"
    );
    assert_eq!(
        m1.delivered_at.map(|t| t.0 % 3_600_000_000 / 60_000_000),
        Some(6),
        "the earliest delivered"
    );
    let m2 = msg(&f, "m2");
    assert_eq!(
        m2.status,
        Some(DeliveryStatus::Failed),
        "late read and early delivered do not count"
    );
    assert_eq!(
        m2.error.as_deref(),
        Some("E-s7"),
        "the earliest counted failure's error"
    );
    assert_eq!(msg(&f, "m3").status, Some(DeliveryStatus::Sent));
    assert_eq!(
        msg(&f, "m4").status,
        None,
        "receipts for incoming messages count nothing"
    );
}

// §3.6 ------------------------------------------------------------------------------

#[test]
fn s3_6_connections_first_incoming_or_non_failed_outgoing_per_channel() {
    let f = facts(&[
        sent("e1", "10:00", "m1", "c", "wa", "user", "u1"),
        status("s1", "2026-01-05T10:01:00Z", "m1", "failed"),
        sent("e2", "10:02", "m2", "c", "wa", "workflow", "u1"),
        recv("e3", "10:03", "m3", "c", "wa"),
        sent("e4", "10:05", "m4", "c", "tg", "user", "u2"),
        recv("e5", "10:05", "m5", "c", "tg"),
        recv("e6", "10:06", "m6", "d", "tg"),
    ]);
    let mut got: Vec<_> = f
        .connections
        .iter()
        .map(|c| {
            (
                c.contact_id.as_str(),
                c.channel_id.as_str(),
                c.message_id.as_str(),
                c.source,
                c.user_id.as_deref(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("c", "tg", "m5", "incoming_message", None),
            ("c", "wa", "m2", "workflow", None),
            ("d", "tg", "m6", "incoming_message", None),
        ]
    );
}

#[test]
fn s3_6_every_added_deleted_merged_event_is_one_activity() {
    let f = facts(&[
        added("e1", "10:00", "c", "user"),
        added("e2", "10:01", "c", "zapier"),
        delete("e3", "10:02", "c"),
        merge("e4", "10:03", "a", "c"),
    ]);
    let kinds: Vec<_> = f
        .activities
        .iter()
        .map(|a| (a.kind.wire(), a.source, a.user_id.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("added", "user", Some("u1")),
            ("added", "zapier", None),
            ("deleted", "user", Some("u9")),
            ("merged", "user", Some("u9"))
        ]
    );
    assert_eq!(
        f.activities[3].contact_id, "a",
        "the merge row is the primary's"
    );
    let name = f
        .contacts
        .iter()
        .find(|c| c.contact_id == "c")
        .unwrap()
        .name
        .clone();
    assert_eq!(
        name.as_deref(),
        Some("N e2"),
        "the last added/updated names the contact"
    );
}

#[test]
fn s2_order_of_arrival_does_not_change_facts() {
    let lines = vec![
        open("e1", "10:00", "cv1", "c"),
        recv("e2", "10:01", "m1", "c", "wa"),
        assign("e3", "10:02", "c", Some("A"), "bot"),
        sent("e4", "10:03", "m2", "c", "wa", "user", "A"),
        close("e5", "10:10", "cv1", "bot", "x"),
        open("e6", "10:10", "cv2", "c"),
    ];
    let forward = facts(&lines);
    let mut rev = lines.clone();
    rev.reverse();
    assert_eq!(forward, facts(&rev));
}
