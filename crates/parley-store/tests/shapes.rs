//! The shapes that stress the store's grouping and chunking, at a scale CI runs: one
//! contact with a long history, a long chain of merges, and one conversation id reused
//! by many contacts. Each is ingested whole and in many batches (with tiny derivation
//! parts, so that hash ranges and group chunks are crossed), and rebuilt: the documents
//! must be identical every way, and hold the counts the rules give. Their memory at full
//! scale is measured by `scripts/bench.py --shapes`.

use parley_core::report::{Filters, Report};
use parley_core::time::{parse_date, parse_zone, Range};
use parley_store::{DuckStore, Query, Store, Workspace};
use serde_json::{json, Value};

fn store(part: u64) -> DuckStore {
    let s = DuckStore::in_memory().unwrap().with_part_contacts(part);
    s.create_workspace(&Workspace {
        id: "w".into(),
        timezone: "UTC".into(),
        name: "w".into(),
    })
    .unwrap();
    s
}

fn ingest(s: &DuckStore, lines: &[String]) {
    let text = lines.join("\n");
    s.ingest("w", &mut text.as_bytes(), &mut |_| {}).unwrap();
}

fn documents(s: &DuckStore) -> Vec<Value> {
    let tz = parse_zone("UTC").unwrap();
    let range = Range::custom(
        parse_date("2026-01-01").unwrap(),
        parse_date("2026-03-31").unwrap(),
        &tz,
    )
    .unwrap();
    let mut docs = Vec::new();
    for r in Report::ALL {
        let q = Query {
            workspace: s.workspace("w").unwrap(),
            report: *r,
            range: range.clone(),
            filters: Filters::parse::<&str>(*r, &[]).unwrap(),
        };
        docs.push(serde_json::to_value(s.report(&q).unwrap()).unwrap());
        for l in r.logs() {
            docs.push(serde_json::to_value(s.log_page(&q, *l, 1, 1000).unwrap()).unwrap());
            let mut rows = 0;
            s.export(&q, *l, &mut |_| {
                rows += 1;
                Ok(())
            })
            .unwrap();
            docs.push(json!({"log": l.wire(), "exported": rows}));
        }
    }
    docs
}

/// `n` seconds after 2026-01-05T00:00:00Z.
fn at(n: usize) -> String {
    let t = jiff::Timestamp::from_second(1_767_571_200 + n as i64).unwrap();
    t.to_string()
}

/// Ingested whole, in batches of `batch` lines (reversed, so that closes and receipts
/// often come before what they name), and rebuilt: always the same documents.
fn same_every_way(lines: &[String], batch: usize) -> Vec<Value> {
    let whole = store(3);
    ingest(&whole, lines);
    let want = documents(&whole);
    let batched = store(3);
    let reversed: Vec<String> = lines.iter().rev().cloned().collect();
    for chunk in reversed.chunks(batch) {
        ingest(&batched, chunk);
    }
    assert_eq!(documents(&batched), want, "batched");
    batched.rebuild("w").unwrap();
    assert_eq!(documents(&batched), want, "rebuilt");
    let one_part = store(u64::MAX);
    ingest(&one_part, lines);
    assert_eq!(documents(&one_part), want, "one derivation part");
    want
}

fn component<'a>(docs: &'a [Value], report: &str, id: &str) -> &'a Value {
    let doc = docs
        .iter()
        .find(|d| d["report"] == report && d.get("components").is_some())
        .unwrap();
    &doc["components"][id]
}

#[test]
fn one_contact_with_a_long_history() {
    let mut lines = Vec::new();
    for c in 0..300 {
        let t = c * 100;
        lines.push(json!({"id": format!("o{c}"), "type": "conversation.opened", "at": at(t),
            "conversation_id": format!("cv{c}"), "contact_id": "big", "source": "contact", "channel_id": "wa"}).to_string());
        for m in 0..8 {
            let id = format!("m{c}-{m}");
            lines.push(if m % 2 == 0 {
                json!({"id": id, "type": "message.received", "at": at(t + 1 + m), "message_id": id,
                       "contact_id": "big", "channel_id": "wa", "content": {"type": "text", "text": "q"}})
            } else {
                json!({"id": id, "type": "message.sent", "at": at(t + 1 + m), "message_id": id,
                       "contact_id": "big", "channel_id": "wa", "source": "user", "user_id": "u1",
                       "message_type": "session", "content": {"type": "text", "text": "a"}})
            }.to_string());
            lines.push(
                json!({"id": format!("r{c}-{m}"), "type": "message.status", "at": at(t + 20 + m),
                "message_id": id, "status": "read"})
                .to_string(),
            );
        }
        lines.push(
            json!({"id": format!("x{c}"), "type": "conversation.closed", "at": at(t + 50),
            "conversation_id": format!("cv{c}"), "source": "user", "user_id": "u1"})
            .to_string(),
        );
    }
    let docs = same_every_way(&lines, 97);
    assert_eq!(component(&docs, "conversations", "opened")["value"], 300);
    assert_eq!(component(&docs, "conversations", "closed")["value"], 300);
    assert_eq!(component(&docs, "messages", "delivery")["total"], 1200);
    let read = &component(&docs, "messages", "delivery")["rows"][0];
    assert_eq!(
        (read["key"].as_str(), read["count"].as_i64()),
        (Some("read"), Some(1200))
    );
}

#[test]
fn a_long_chain_of_merges() {
    // c0 is merged into c1, c1 into c2, ...: the last primary's history holds every
    // earlier one, so its next conversation is returning.
    let n = 120;
    let mut lines = Vec::new();
    for c in 0..n {
        lines.push(json!({"id": format!("a{c}"), "type": "contact.added", "at": at(c * 10),
            "contact": {"id": format!("c{c}"), "name": format!("Contact {c}")}, "source": "user", "user_id": "u1"}).to_string());
        if c > 0 {
            lines.push(json!({"id": format!("g{c}"), "type": "contact.merged", "at": at(c * 10 + 5),
                "primary_contact_id": format!("c{c}"), "merged_contact_id": format!("c{}", c - 1), "user_id": "u1"}).to_string());
        }
    }
    lines.push(
        json!({"id": "o0", "type": "conversation.opened", "at": at(1),
        "conversation_id": "first", "contact_id": "c0", "source": "contact"})
        .to_string(),
    );
    lines.push(
        json!({"id": "o1", "type": "conversation.opened", "at": at(n * 10 + 50),
        "conversation_id": "last", "contact_id": format!("c{}", n - 1), "source": "contact"})
        .to_string(),
    );
    let docs = same_every_way(&lines, 13);
    assert_eq!(
        component(&docs, "contacts", "merged")["value"],
        (n - 1) as i64
    );
    assert_eq!(component(&docs, "contacts", "added")["value"], n as i64);
    let by_type = &component(&docs, "conversations", "opened_by_contact_type")["rows"];
    let keys: Vec<(&str, i64)> = by_type
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        keys,
        [("new", 1), ("returning", 1)],
        "history follows the chain"
    );
}

#[test]
fn one_conversation_id_reused_by_many_contacts() {
    // Every contact opens "shared": only the first open wins (SPEC §2.3), and every
    // contact's messages still count; the close closes the winner's conversation.
    let n = 150;
    let mut lines = Vec::new();
    for c in 0..n {
        lines.push(
            json!({"id": format!("o{c}"), "type": "conversation.opened", "at": at(1000 + c),
            "conversation_id": "shared", "contact_id": format!("c{c}"), "source": "contact"})
            .to_string(),
        );
        lines.push(
            json!({"id": format!("m{c}"), "type": "message.received", "at": at(2000 + c),
            "message_id": format!("m{c}"), "contact_id": format!("c{c}"), "channel_id": "wa",
            "content": {"type": "text", "text": "q"}})
            .to_string(),
        );
    }
    lines.push(
        json!({"id": "x", "type": "conversation.closed", "at": at(5000),
        "conversation_id": "shared", "source": "bot"})
        .to_string(),
    );
    let docs = same_every_way(&lines, 11);
    assert_eq!(component(&docs, "conversations", "opened")["value"], 1);
    assert_eq!(component(&docs, "conversations", "closed")["value"], 1);
    assert_eq!(
        component(&docs, "messages", "incoming_by_channel")["total"],
        n as i64
    );
    let log = docs
        .iter()
        .find(|d| d["log"] == "conversations" && d.get("rows").is_some())
        .unwrap();
    assert_eq!(log["rows"][0]["contact_id"], "c0", "the first open wins");
    assert_eq!(log["rows"][0]["incoming_messages"], 1);
}

#[test]
fn a_large_export_streams_in_log_order() {
    // Enough rows for DuckDB to sort and stream them from several threads: the export
    // must still come out newest first, ties by message id ascending (SPEC §6.5).
    let n = 200_000;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            json!({"id": format!("m{i}"), "type": "message.received", "at": at(i / 3),
                   "message_id": format!("m{i}"), "contact_id": format!("c{}", i % 5000),
                   "channel_id": "wa", "content": {"type": "text", "text": "q"}})
            .to_string()
        })
        .collect();
    let s = store(2_000);
    ingest(&s, &lines);
    let tz = parse_zone("UTC").unwrap();
    let q = Query {
        workspace: s.workspace("w").unwrap(),
        report: Report::Messages,
        range: Range::custom(
            parse_date("2026-01-01").unwrap(),
            parse_date("2026-03-31").unwrap(),
            &tz,
        )
        .unwrap(),
        filters: Filters::parse::<&str>(Report::Messages, &[]).unwrap(),
    };
    let mut keys = Vec::new();
    let log = Report::Messages.log("incoming").unwrap();
    s.export(&q, log, &mut |r| {
        keys.push((r[0].clone(), r[1].clone()));
        Ok(())
    })
    .unwrap();
    assert_eq!(keys.len(), n);
    let inversions = keys.windows(2).filter(|w| w[0].0 < w[1].0).count();
    assert_eq!(inversions, 0, "newest first from the first row to the last");
}
