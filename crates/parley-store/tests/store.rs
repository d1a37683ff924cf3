//! The store against SPEC §4–§8 and the order-independence property.

use parley_core::report::{Filters, Log, Report};
use parley_core::time::{parse_date, parse_zone, Range};
use parley_store::{DuckStore, Query, Store, StoreError, Workspace};
use proptest::prelude::*;
use serde_json::{json, Value};

fn store(tz: &str) -> DuckStore {
    store_parts(tz, u64::MAX)
}

/// A store that derives at most `part` contacts together, so that even a handful of
/// contacts spans several hash ranges and group chunks.
fn store_parts(tz: &str, part: u64) -> DuckStore {
    let s = DuckStore::in_memory().unwrap().with_part_contacts(part);
    s.create_workspace(&Workspace {
        id: "w".into(),
        timezone: tz.into(),
        name: "w".into(),
    })
    .unwrap();
    s
}

fn ingest(s: &DuckStore, lines: &[String]) -> Result<parley_store::IngestSummary, StoreError> {
    let text = lines.join("\n");
    s.ingest("w", &mut text.as_bytes(), &mut |_| {})
}

fn query(s: &DuckStore, report: Report, from: &str, to: &str, filters: &[&str]) -> Query {
    let workspace = s.workspace("w").unwrap();
    let tz = parse_zone(&workspace.timezone).unwrap();
    Query {
        report,
        range: Range::custom(parse_date(from).unwrap(), parse_date(to).unwrap(), &tz).unwrap(),
        filters: Filters::parse(report, filters).unwrap(),
        workspace,
    }
}

fn report(s: &DuckStore, r: Report, from: &str, to: &str, filters: &[&str]) -> Value {
    serde_json::to_value(s.report(&query(s, r, from, to, filters)).unwrap()).unwrap()
}

fn log(
    s: &DuckStore,
    r: Report,
    l: Log,
    (from, to): (&str, &str),
    filters: &[&str],
    page: u64,
    per: u64,
) -> Value {
    serde_json::to_value(
        s.log_page(&query(s, r, from, to, filters), l, page, per)
            .unwrap(),
    )
    .unwrap()
}

fn recv(id: &str, at: &str, contact: &str, ch: &str) -> String {
    json!({"id": id, "type": "message.received", "at": at, "message_id": id, "contact_id": contact,
           "channel_id": ch, "content": {"type": "text", "text": "hola"}})
    .to_string()
}

fn sent(id: &str, at: &str, contact: &str, ch: &str, source: &str, user: Option<&str>) -> String {
    json!({"id": id, "type": "message.sent", "at": at, "message_id": id, "contact_id": contact,
           "channel_id": ch, "source": source, "user_id": user, "message_type": "session",
           "content": {"type": "image"}})
    .to_string()
}

fn user(id: &str, at: &str, user: &str, name: &str, team: Option<&str>) -> String {
    json!({"id": id, "type": "user.upserted", "at": at, "user": {"id": user, "name": name, "team_id": team}}).to_string()
}

fn value(doc: &Value, component: &str) -> i64 {
    doc["components"][component]["value"].as_i64().unwrap()
}

fn total(doc: &Value, component: &str) -> i64 {
    doc["components"][component]["total"].as_i64().unwrap()
}

#[test]
fn s5_filters_or_within_and_across() {
    let s = store("UTC");
    ingest(
        &s,
        &[
            sent("m1", "2026-01-05T10:00:00Z", "c1", "wa", "user", Some("u1")),
            sent("m2", "2026-01-05T10:00:00Z", "c1", "tg", "user", Some("u2")),
            sent(
                "m3",
                "2026-01-05T10:00:00Z",
                "c1",
                "sms",
                "user",
                Some("u1"),
            ),
            sent("m4", "2026-01-05T10:00:00Z", "c1", "wa", "bot", None),
        ],
    )
    .unwrap();
    let d = |f: &[&str]| report(&s, Report::Messages, "2026-01-05", "2026-01-07", f);
    assert_eq!(total(&d(&[]), "outgoing_by_channel"), 4);
    assert_eq!(
        total(&d(&["channel=wa", "channel=tg"]), "outgoing_by_channel"),
        3,
        "OR inside a filter"
    );
    assert_eq!(
        total(
            &d(&["channel=wa", "channel=tg", "source=user"]),
            "outgoing_by_channel"
        ),
        2,
        "AND across"
    );
    assert_eq!(
        total(&d(&["user=-"]), "outgoing_by_source"),
        1,
        "- matches a missing user"
    );
    assert_eq!(
        d(&["channel=wa", "channel=tg", "channel=wa"])["filters"],
        json!({"channel": ["wa", "tg"]})
    );
    let none = d(&["channel=nowhere"]);
    assert_eq!(
        none["components"]["outgoing_by_channel"]["status"],
        "no_data"
    );
    assert_eq!(none["components"]["delivery"]["status"], "no_data");
    assert_eq!(
        none["components"]["delivery"]["rows"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "the line keeps four rows"
    );
}

#[test]
fn s5_contact_filter_is_unicode_case_insensitive() {
    let s = store("UTC");
    ingest(
        &s,
        &[
            json!({"id": "a1", "type": "contact.added", "at": "2026-01-05T09:00:00Z",
                   "contact": {"id": "c1", "name": "Straße 12"}, "source": "user"})
            .to_string(),
            recv("m1", "2026-01-05T10:00:00Z", "c1", "wa"),
            recv("m2", "2026-01-05T10:00:00Z", "c2", "wa"),
        ],
    )
    .unwrap();
    let n = |f: &str| {
        total(
            &report(&s, Report::Messages, "2026-01-05", "2026-01-05", &[f]),
            "incoming_by_channel",
        )
    };
    assert_eq!(n("contact=STRASSE"), 1, "full case folding: ß is ss");
    assert_eq!(n("contact=aße 1"), 1, "a substring");
    assert_eq!(n("contact=c2"), 1, "an exact id");
    assert_eq!(n("contact=C2"), 0, "ids match exactly");
    assert_eq!(n("contact=-"), 0, "a contact is never missing");
}

#[test]
fn s5_not_applicable_components_have_only_kind_and_status() {
    let s = store("UTC");
    let d = report(
        &s,
        Report::Conversations,
        "2026-01-05",
        "2026-01-05",
        &["category=Sales"],
    );
    assert_eq!(
        d["components"]["opened"],
        json!({"kind": "metric", "status": "filters_not_applicable"})
    );
    assert_eq!(
        d["components"]["open_vs_closed"]["status"],
        "filters_not_applicable"
    );
    assert_eq!(
        d["components"]["closed"],
        json!({"kind": "metric", "status": "no_data", "value": 0})
    );
    assert_eq!(
        d["components"]["closed_heatmap"]["values"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let d = report(
        &s,
        Report::Contacts,
        "2026-01-05",
        "2026-01-05",
        &["channel=wa"],
    );
    assert_eq!(d["components"]["added"]["status"], "filters_not_applicable");
    assert_eq!(d["components"]["connected_by_channel"]["status"], "no_data");
}

#[test]
fn s6_5_log_paging_is_capped_but_export_is_not() {
    let s = store("UTC");
    let lines: Vec<String> = (0..10_050)
        .map(|i| {
            recv(
                &format!("m{i:05}"),
                &format!("2026-01-05T{:02}:{:02}:00Z", i / 600 % 24, i / 10 % 60),
                "c",
                "wa",
            )
        })
        .collect();
    assert_eq!(ingest(&s, &lines).unwrap().accepted, 10_050);
    let p = log(
        &s,
        Report::Messages,
        Log::Incoming,
        ("2026-01-05", "2026-01-05"),
        &[],
        200,
        50,
    );
    assert_eq!(p["total"], 10_050);
    assert_eq!(p["truncated"], true);
    assert_eq!(p["rows"].as_array().unwrap().len(), 50);
    let p = log(
        &s,
        Report::Messages,
        Log::Incoming,
        ("2026-01-05", "2026-01-05"),
        &[],
        201,
        50,
    );
    assert_eq!(
        p["rows"].as_array().unwrap().len(),
        0,
        "rows past 10,000 cannot be paged"
    );
    let p = log(
        &s,
        Report::Messages,
        Log::Incoming,
        ("2026-01-05", "2026-01-05"),
        &[],
        11,
        1000,
    );
    assert_eq!(p["rows"].as_array().unwrap().len(), 0);
    let mut rows = Vec::new();
    let q = query(&s, Report::Messages, "2026-01-05", "2026-01-05", &[]);
    let n = s.export(&q, Log::Incoming, &mut |r| {
        rows.push(r[0].clone());
        Ok(())
    });
    assert_eq!(n.unwrap(), 10_050);
    assert_eq!(rows.len(), 10_050);
    let mut sorted = rows.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(rows, sorted, "newest first across export batches");
}

#[test]
fn s6_5_log_ties_order_by_row_id_ascending() {
    let s = store("UTC");
    ingest(
        &s,
        &[
            recv("e927", "2026-01-05T10:00:00Z", "c", "wa"),
            recv("e5941", "2026-01-05T10:00:00Z", "d", "wa"),
        ],
    )
    .unwrap();
    let p = log(
        &s,
        Report::Messages,
        Log::Incoming,
        ("2026-01-05", "2026-01-05"),
        &[],
        1,
        50,
    );
    assert_eq!(p["rows"][0]["contact_id"], "d", "e5941 < e927 byte by byte");
}

#[test]
fn s1_deleted_users_show_by_id_and_deleted_channels_stay() {
    let s = store("UTC");
    ingest(
        &s,
        &[
            user("d1", "2026-01-01T00:00:00Z", "u1", "Ann", None),
            json!({"id": "ch", "type": "channel.upserted", "at": "2026-01-01T00:00:00Z",
                   "channel": {"id": "wa", "name": "WhatsApp Main", "kind": "whatsapp"}})
            .to_string(),
            sent("m1", "2026-01-05T10:00:00Z", "c1", "wa", "user", Some("u1")),
        ],
    )
    .unwrap();
    let row = |s: &DuckStore| {
        log(
            s,
            Report::Messages,
            Log::Outgoing,
            ("2026-01-05", "2026-01-05"),
            &[],
            1,
            50,
        )["rows"][0]
            .clone()
    };
    assert_eq!(row(&s)["user"], "Ann");
    ingest(
        &s,
        &[
            json!({"id": "d2", "type": "user.deleted", "at": "2026-01-06T00:00:00Z", "user_id": "u1"}).to_string(),
            json!({"id": "d3", "type": "channel.deleted", "at": "2026-01-06T00:00:00Z", "channel_id": "wa"}).to_string(),
        ],
    )
    .unwrap();
    assert_eq!(
        row(&s)["user"],
        "u1",
        "a deleted user is shown by id, older rows included"
    );
    assert_eq!(
        row(&s)["channel"],
        "WhatsApp Main",
        "a deleted channel's data stays"
    );
    let d = report(
        &s,
        Report::Messages,
        "2026-01-05",
        "2026-01-05",
        &["channel=wa"],
    );
    assert_eq!(
        total(&d, "outgoing_by_channel"),
        1,
        "a deleted channel is still accepted as a filter"
    );
    ingest(
        &s,
        &[user("d4", "2026-01-07T00:00:00Z", "u1", "Ann B", None)],
    )
    .unwrap();
    assert_eq!(row(&s)["user"], "Ann B", "a later upsert restores the user");
}

#[test]
fn s3_5_a_messages_team_is_its_users_team_at_the_message() {
    let s = store("UTC");
    ingest(
        &s,
        &[
            user("d1", "2026-01-01T00:00:00Z", "u1", "Ann", Some("t1")),
            user("d2", "2026-01-05T12:00:00Z", "u1", "Ann", Some("t2")),
            sent("m1", "2026-01-05T11:59:59Z", "c1", "wa", "user", Some("u1")),
            sent("m2", "2026-01-05T12:00:00Z", "c1", "wa", "user", Some("u1")),
            sent("m3", "2026-01-05T13:00:00Z", "c1", "wa", "bot", Some("u1")),
        ],
    )
    .unwrap();
    let n = |f: &[&str]| {
        total(
            &report(&s, Report::Messages, "2026-01-05", "2026-01-05", f),
            "outgoing_by_source",
        )
    };
    assert_eq!(n(&["team=t1"]), 1);
    assert_eq!(
        n(&["team=t2"]),
        1,
        "an upsert at the message's instant applies first"
    );
    assert_eq!(n(&["team=-"]), 1, "a bot message has no user, so no team");
}

#[test]
fn s4_heatmap_and_buckets_in_kolkata_and_new_york() {
    let s = store("Asia/Kolkata");
    ingest(
        &s,
        &[
            recv("m1", "2026-11-02T18:30:00Z", "c", "wa"),
            recv("m2", "2026-11-02T18:29:59Z", "c", "wa"),
        ],
    )
    .unwrap();
    let d = report(&s, Report::Messages, "2026-11-03", "2026-11-03", &[]);
    let rows = &d["components"]["incoming_by_channel"]["rows"];
    assert_eq!(rows[0]["count"], 1, "m2 is still Monday in Kolkata");
    assert_eq!(rows[0]["values"][0], 1);
    assert_eq!(d["buckets"][0], "2026-11-03T00:00+05:30");
    let s = store("America/New_York");
    ingest(
        &s,
        &[
            recv("m1", "2026-03-08T07:30:00Z", "c", "wa"),
            recv("m2", "2026-03-08T06:30:00Z", "c", "wa"),
        ],
    )
    .unwrap();
    let d = report(&s, Report::Messages, "2026-03-08", "2026-03-08", &[]);
    assert_eq!(d["buckets"].as_array().unwrap().len(), 23);
    assert_eq!(
        d["components"]["incoming_by_channel"]["rows"][0]["values"][1], 1,
        "01:30-05:00"
    );
    assert_eq!(
        d["components"]["incoming_by_channel"]["rows"][0]["values"][2], 1,
        "03:30-04:00"
    );
    let s2 = store("America/New_York");
    ingest(
        &s2,
        &[sent("m1", "2026-03-08T07:30:00Z", "c", "wa", "bot", None)],
    )
    .unwrap();
    let log = log(
        &s2,
        Report::Messages,
        Log::Outgoing,
        ("2026-03-08", "2026-03-08"),
        &[],
        1,
        5,
    );
    assert_eq!(log["rows"][0]["at"], "2026-03-08T03:30:00-04:00");
}

#[test]
fn s4_conversation_heatmap_counts_the_repeated_hour_twice() {
    let s = store("Europe/Madrid");
    let open = |id: &str, at: &str, c: &str| {
        json!({"id": id, "type": "conversation.opened", "at": at, "conversation_id": id, "contact_id": c, "source": "contact"}).to_string()
    };
    ingest(
        &s,
        &[
            open("v1", "2025-10-26T02:30:00+02:00", "a"),
            open("v2", "2025-10-26T02:30:00+01:00", "b"),
        ],
    )
    .unwrap();
    let d = report(&s, Report::Conversations, "2025-10-26", "2025-10-26", &[]);
    assert_eq!(
        d["components"]["opened_heatmap"]["values"][6][2], 2,
        "Sunday, 02:00 column"
    );
    assert_eq!(
        d["components"]["open_vs_closed"]["series"][0]["values"][2],
        1
    );
    assert_eq!(
        d["components"]["open_vs_closed"]["series"][0]["values"][3],
        1
    );
    assert_eq!(
        d["components"]["opened_by_contact_type"]["rows"][0]["key"],
        "new"
    );
    assert_eq!(value(&d, "closed"), 0);
}

#[test]
fn s2_3_an_invalid_batch_leaves_the_store_untouched() {
    let s = store("UTC");
    ingest(&s, &[recv("m1", "2026-01-05T10:00:00Z", "c", "wa")]).unwrap();
    let err = ingest(
        &s,
        &[
            recv("m2", "2026-01-05T10:00:00Z", "c", "wa"),
            "{not json".to_string(),
        ],
    )
    .unwrap_err();
    match err {
        StoreError::InvalidBatch(e) => assert_eq!((e.line, e.index), (2, 1)),
        other => panic!("unexpected {other}"),
    }
    let p = log(
        &s,
        Report::Messages,
        Log::Incoming,
        ("2026-01-05", "2026-01-05"),
        &[],
        1,
        50,
    );
    assert_eq!(p["total"], 1);
    assert_eq!(
        ingest(&s, &[recv("m2", "2026-01-05T10:00:00Z", "c", "wa")])
            .unwrap()
            .accepted,
        1,
        "m2 was not stored"
    );
}

fn madrid_lines() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../parley/tests/examples/madrid-dst/events.ndjson"
    );
    let text = std::fs::read_to_string(path).unwrap();
    // Unique ids only: order independence is promised for such sets (SPEC §2).
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            seen.insert(
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .map(str::to_string)
        .collect()
}

fn all_documents(s: &DuckStore) -> Vec<Value> {
    let (from, to) = ("2025-09-01", "2025-11-30");
    let mut docs = Vec::new();
    for r in Report::ALL {
        docs.push(report(s, *r, from, to, &[]));
        for l in r.logs() {
            docs.push(log(s, *r, *l, (from, to), &[], 1, 1000));
        }
    }
    docs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    /// Any permutation and any batching of the same events gives identical documents;
    /// re-ingesting them is a no-op.
    #[test]
    fn order_and_batching_never_change_documents(seed in any::<u64>(), cuts in prop::collection::vec(1usize..480, 0..5)) {
        let lines = madrid_lines();
        let baseline = {
            let s = store("Europe/Madrid");
            ingest(&s, &lines).unwrap();
            all_documents(&s)
        };
        let mut shuffled = lines.clone();
        let mut rng = seed;
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(shuffled.len())).collect();
        bounds.push(0);
        bounds.push(shuffled.len());
        bounds.sort();
        let s = store("Europe/Madrid");
        for w in bounds.windows(2) {
            ingest(&s, &shuffled[w[0]..w[1]]).unwrap();
        }
        prop_assert_eq!(&all_documents(&s), &baseline);
        let again = ingest(&s, &lines).unwrap();
        prop_assert_eq!(again.accepted, 0);
        prop_assert_eq!(&all_documents(&s), &baseline);
    }
}

/// One small workspace that touches every filter dimension of SPEC §5.
fn every_dimension() -> DuckStore {
    let s = store("UTC");
    let e = |v: Value| v.to_string();
    ingest(
        &s,
        &[
            user("d1", "2026-01-01T00:00:00Z", "u1", "Ann", Some("t1")),
            user("d2", "2026-01-01T00:00:00Z", "u2", "Bob", Some("t2")),
            e(json!({"id": "a1", "type": "contact.added", "at": "2026-01-05T09:00:00Z", "contact": {"id": "a", "name": "Alice"}, "source": "user", "user_id": "u1"})),
            e(json!({"id": "a2", "type": "contact.added", "at": "2026-01-05T09:00:00Z", "contact": {"id": "b", "name": "Bea"}, "source": "zapier", "user_id": "u1"})),
            e(json!({"id": "o1", "type": "conversation.opened", "at": "2026-01-05T10:00:00Z", "conversation_id": "v1", "contact_id": "a", "source": "contact", "channel_id": "wa"})),
            e(json!({"id": "s1", "type": "contact.assigned", "at": "2026-01-05T10:01:00Z", "contact_id": "a", "assignee_id": "u1", "source": "workflow"})),
            recv("m1", "2026-01-05T10:02:00Z", "a", "wa"),
            sent("m2", "2026-01-05T10:03:00Z", "a", "wa", "user", Some("u2")),
            e(json!({"id": "m3", "type": "message.sent", "at": "2026-01-05T10:05:00Z", "message_id": "m3", "contact_id": "a", "channel_id": "wa", "source": "broadcast", "message_type": "whatsapp_template", "subtype": "promo", "broadcast": {"id": "bc1", "name": "Black Friday"}, "content": {"type": "template"}})),
            e(json!({"id": "c1", "type": "conversation.closed", "at": "2026-01-05T10:10:00Z", "conversation_id": "v1", "source": "user", "user_id": "u1", "category": "Sales"})),
            e(json!({"id": "o2", "type": "conversation.opened", "at": "2026-01-05T11:00:00Z", "conversation_id": "v2", "contact_id": "b", "source": "user"})),
            e(json!({"id": "s2", "type": "contact.assigned", "at": "2026-01-05T11:01:00Z", "contact_id": "b", "assignee_id": "u2", "source": "user", "by_user_id": "u1"})),
            e(json!({"id": "s3", "type": "contact.assigned", "at": "2026-01-05T11:02:00Z", "contact_id": "b", "assignee_id": null, "source": "bot"})),
            e(json!({"id": "c2", "type": "conversation.closed", "at": "2026-01-05T11:10:00Z", "conversation_id": "v2", "source": "bot"})),
            e(json!({"id": "g1", "type": "contact.merged", "at": "2026-01-05T12:00:00Z", "primary_contact_id": "a", "merged_contact_id": "b", "user_id": "u2"})),
            e(json!({"id": "s4", "type": "contact.assigned", "at": "2026-01-05T13:00:00Z", "contact_id": "a", "assignee_id": "u2", "source": "zapier"})),
        ],
    )
    .unwrap();
    s
}

#[test]
fn s5_conversation_filters_match_their_dimension() {
    let s = every_dimension();
    let closed = |f: &str| {
        value(
            &report(&s, Report::Conversations, "2026-01-05", "2026-01-05", &[f]),
            "closed",
        )
    };
    let opened = |f: &str| {
        value(
            &report(&s, Report::Conversations, "2026-01-05", "2026-01-05", &[f]),
            "opened",
        )
    };
    assert_eq!(closed("closed_by_team=t1"), 1, "u1's team at the close");
    assert_eq!(closed("closed_by_team=-"), 1);
    assert_eq!(closed("closed_by_user=u1"), 1);
    assert_eq!(closed("closed_source=bot"), 1);
    assert_eq!(closed("first_response_by=u2"), 1);
    assert_eq!(closed("first_response_by=-"), 1);
    assert_eq!(closed("first_assignee=u2"), 1);
    assert_eq!(closed("last_assignee=-"), 1, "an unassignment");
    assert_eq!(closed("last_assignee=u1"), 1);
    assert_eq!(closed("category=Sales"), 1);
    assert_eq!(closed("category=-"), 1);
    assert_eq!(closed("conversation=v2"), 1);
    assert_eq!(opened("opened_channel=-"), 1);
    assert_eq!(opened("opened_source=user"), 1);
    assert_eq!(opened("contact_type=new"), 2);
    assert_eq!(opened("contact=alice"), 1);
}

#[test]
fn s5_message_contact_and_assignment_filters_match_their_dimension() {
    let s = every_dimension();
    let out = |f: &str| {
        total(
            &report(&s, Report::Messages, "2026-01-05", "2026-01-05", &[f]),
            "outgoing_by_source",
        )
    };
    assert_eq!(out("broadcast=Black Friday"), 1, "by the broadcast's name");
    assert_eq!(out("broadcast=-"), 1);
    assert_eq!(out("team=t2"), 1);
    assert_eq!(out("type=whatsapp_template"), 1);
    let subtype = &report(&s, Report::Messages, "2026-01-05", "2026-01-05", &[])["components"]
        ["outgoing_by_subtype"];
    assert_eq!(subtype["total"], 1, "only tagged and template messages");
    assert_eq!(subtype["rows"][0]["key"], "promo");
    let a = |f: &str| {
        total(
            &report(&s, Report::Assignments, "2026-01-05", "2026-01-05", &[f]),
            "assignments_by_source",
        )
    };
    assert_eq!(a("source=-"), 0);
    assert_eq!(a("assignee=-"), 1, "assignee=- matches unassignments");
    assert_eq!(
        a("assigned_by=u1"),
        1,
        "the assigning user of a user-source assignment"
    );
    assert_eq!(a("assigned_by=-"), 3);
    assert_eq!(
        a("conversation=-"),
        1,
        "an assignment outside any conversation"
    );
    assert_eq!(a("contact=b"), 2);
    let c = |f: &[&str]| report(&s, Report::Contacts, "2026-01-05", "2026-01-05", f);
    assert_eq!(
        value(&c(&["contact=b"]), "merged"),
        1,
        "merge rows match the merged contact"
    );
    assert_eq!(value(&c(&["contact=a"]), "merged"), 1, "and the primary");
    assert_eq!(value(&c(&["source=user"]), "added"), 1);
    assert_eq!(
        value(&c(&["source=user"]), "merged"),
        1,
        "deleted and merged rows have source user"
    );
    assert_eq!(
        c(&["source=zapier"])["components"]["merged"]["status"],
        "no_data"
    );
    assert_eq!(
        value(&c(&["user=u1"]), "added"),
        1,
        "the user only when the source is user"
    );
    let merged = log(
        &s,
        Report::Contacts,
        Log::Merged,
        ("2026-01-05", "2026-01-05"),
        &["contact=Bea"],
        1,
        10,
    );
    assert_eq!(merged["rows"][0]["primary_contact_id"], "a");
    assert_eq!(merged["rows"][0]["contact_name"], "Alice");
    assert_eq!(merged["rows"][0]["user"], "Bob");
    let conn = log(
        &s,
        Report::Contacts,
        Log::Connected,
        ("2026-01-05", "2026-01-05"),
        &["source=incoming_message"],
        1,
        10,
    );
    assert_eq!(conn["total"], 1);
    let conv = log(
        &s,
        Report::Conversations,
        Log::Conversations,
        ("2026-01-05", "2026-01-05"),
        &["closed_by_team=t1"],
        1,
        10,
    );
    assert_eq!(
        conv["rows"][0]["closed_by_team"], "t1",
        "a team never upserted is shown by id"
    );
    assert_eq!(conv["rows"][0]["closed_by"], "Ann");
    assert_eq!(conv["rows"][0]["first_response_by"], "Bob");
    let v2 = log(
        &s,
        Report::Conversations,
        Log::Conversations,
        ("2026-01-05", "2026-01-05"),
        &["conversation=v2"],
        1,
        10,
    );
    assert_eq!(v2["rows"][0]["last_assignee"], "Unassigned");
    assert_eq!(v2["rows"][0]["closed_by"], Value::Null);
}

/// SPEC §8: the documents of a fixed scenario, snapshotted byte for byte.
#[test]
fn s8_documents_snapshot() {
    let s = every_dimension();
    let q = query(&s, Report::Conversations, "2026-01-05", "2026-01-05", &[]);
    insta::assert_snapshot!(
        "conversations_report",
        serde_json::to_string_pretty(&s.report(&q).unwrap()).unwrap()
    );
    let page = s.log_page(&q, Log::Conversations, 1, 50).unwrap();
    insta::assert_snapshot!(
        "conversations_log",
        serde_json::to_string_pretty(&page).unwrap()
    );
    let q = query(
        &s,
        Report::Assignments,
        "2026-01-05",
        "2026-01-05",
        &["source=user", "source=bot"],
    );
    let mut csv = Vec::new();
    s.export(&q, Log::Assignments, &mut |r| {
        csv.push(r.join(","));
        Ok(())
    })
    .unwrap();
    insta::assert_snapshot!("assignments_export", csv.join("\n"));
}

#[test]
fn s1_nothing_crosses_between_workspaces() {
    let s = store("UTC");
    s.create_workspace(&Workspace {
        id: "v".into(),
        timezone: "Asia/Kolkata".into(),
        name: "v".into(),
    })
    .unwrap();
    let batch = [
        recv("m1", "2026-01-05T10:00:00Z", "c", "wa"),
        user("d1", "2026-01-01T00:00:00Z", "u1", "Ann", None),
        sent("m2", "2026-01-05T10:01:00Z", "c", "wa", "user", Some("u1")),
    ];
    assert_eq!(ingest(&s, &batch).unwrap().accepted, 3);
    let other = batch[..1].join("\n");
    let summary = s.ingest("v", &mut other.as_bytes(), &mut |_| {}).unwrap();
    assert_eq!(
        summary.accepted, 1,
        "the same event id is new in another workspace"
    );
    let q = |ws: &str| {
        let workspace = s.workspace(ws).unwrap();
        let tz = parse_zone(&workspace.timezone).unwrap();
        let d = parse_date("2026-01-05").unwrap();
        Query {
            report: Report::Messages,
            range: Range::custom(d, d, &tz).unwrap(),
            filters: Filters::default(),
            workspace,
        }
    };
    let w = serde_json::to_value(s.report(&q("w")).unwrap()).unwrap();
    let v = serde_json::to_value(s.report(&q("v")).unwrap()).unwrap();
    assert_eq!(w["components"]["outgoing_by_source"]["total"], 1);
    assert_eq!(v["components"]["outgoing_by_source"]["total"], 0);
    assert_eq!(v["timezone"], "Asia/Kolkata");
    s.rebuild("v").unwrap();
    let w2 = serde_json::to_value(s.report(&q("w")).unwrap()).unwrap();
    assert_eq!(w, w2, "rebuilding one workspace leaves the other alone");
    let page = serde_json::to_value(s.log_page(&q("v"), Log::Incoming, 1, 10).unwrap()).unwrap();
    assert_eq!(page["total"], 1);
    assert!(matches!(
        s.ingest("nope", &mut "".as_bytes(), &mut |_| {}),
        Err(StoreError::UnknownWorkspace(_))
    ));
}

#[test]
fn s2_3_inconsistent_events_wait_for_the_missing_ones_across_batches() {
    let s = store("UTC");
    let e = |v: Value| v.to_string();
    // Batch 1: a close, receipts and an assignment-free conversation's pieces, all early.
    ingest(
        &s,
        &[
            e(json!({"id": "c1", "type": "conversation.closed", "at": "2026-01-05T10:30:00Z", "conversation_id": "v1", "source": "bot"})),
            e(json!({"id": "r1", "type": "message.status", "at": "2026-01-05T10:05:00Z", "message_id": "m1", "status": "read"})),
            e(json!({"id": "r2", "type": "message.status", "at": "2026-01-05T09:00:00Z", "message_id": "m1", "status": "failed"})),
        ],
    )
    .unwrap();
    let closed = |s: &DuckStore| {
        value(
            &report(s, Report::Conversations, "2026-01-05", "2026-01-05", &[]),
            "closed",
        )
    };
    assert_eq!(
        closed(&s),
        0,
        "a close for an unknown conversation counts nothing yet"
    );
    // Batch 2: the open and the message arrive.
    ingest(
        &s,
        &[
            e(json!({"id": "o1", "type": "conversation.opened", "at": "2026-01-05T10:00:00Z", "conversation_id": "v1", "contact_id": "c", "source": "contact"})),
            sent("m1", "2026-01-05T10:01:00Z", "c", "wa", "bot", None),
        ],
    )
    .unwrap();
    assert_eq!(closed(&s), 1, "the stored close now applies");
    let d = report(&s, Report::Messages, "2026-01-05", "2026-01-05", &[]);
    let delivery = &d["components"]["delivery"]["rows"];
    assert_eq!(delivery[0]["key"], "read", "the later receipt counts");
    assert_eq!(delivery[0]["count"], 1);
    let failed = log(
        &s,
        Report::Messages,
        Log::Failed,
        ("2026-01-05", "2026-01-05"),
        &[],
        1,
        10,
    );
    assert_eq!(
        failed["total"], 0,
        "a receipt dated before its message finds nothing, permanently"
    );
}

#[test]
fn ingest_reports_bytes_read_then_derivation() {
    let s = store("UTC");
    let text = [
        recv("m1", "2026-01-05T10:00:00Z", "c", "wa"),
        recv("m2", "2026-01-05T10:00:00Z", "c", "wa"),
    ]
    .join("\n");
    let mut seen = Vec::new();
    s.ingest("w", &mut text.as_bytes(), &mut |p| seen.push(p))
        .unwrap();
    assert_eq!(seen.last(), Some(&parley_store::Progress::Deriving));
    assert!(
        seen.contains(&parley_store::Progress::Read(text.len() as u64)),
        "{seen:?}"
    );
}

/// A random event from a small universe, so that ties, merges and ids shared between
/// contacts are frequent.
fn arb_event() -> impl Strategy<Value = Value> {
    let contact = || (0..5u8).prop_map(|c| format!("c{c}"));
    let at = (0..6u8).prop_map(|k| format!("2026-01-05T10:0{k}:00Z"));
    let conv = (0..5u8).prop_map(|c| format!("cv{c}"));
    let msg = (0..6u8).prop_map(|m| format!("m{m}"));
    prop_oneof![
        (at.clone(), conv.clone(), contact()).prop_map(|(at, v, c)| json!({"type": "conversation.opened", "at": at, "conversation_id": v, "contact_id": c, "source": "contact", "channel_id": "wa"})),
        (at.clone(), conv, prop::sample::select(vec!["bot", "user", "contact_merged"])).prop_map(|(at, v, s)| json!({"type": "conversation.closed", "at": at, "conversation_id": v, "source": s, "user_id": "u0", "category": "Sales"})),
        (at.clone(), contact(), prop::sample::select(vec![Some("u0"), Some("u1"), None])).prop_map(|(at, c, u)| json!({"type": "contact.assigned", "at": at, "contact_id": c, "assignee_id": u, "source": "user", "by_user_id": "u1"})),
        (at.clone(), msg.clone(), contact()).prop_map(|(at, m, c)| json!({"type": "message.received", "at": at, "message_id": m, "contact_id": c, "channel_id": "wa", "content": {"type": "text", "text": "q"}})),
        (at.clone(), msg.clone(), contact(), prop::sample::select(vec!["user", "bot", "broadcast"]), prop::sample::select(vec!["wa", "tg"])).prop_map(|(at, m, c, s, ch)| json!({"type": "message.sent", "at": at, "message_id": m, "contact_id": c, "channel_id": ch, "source": s, "user_id": "u0", "message_type": "session", "content": {"type": "image"}})),
        (at.clone(), msg, prop::sample::select(vec!["delivered", "read", "failed"])).prop_map(|(at, m, s)| json!({"type": "message.status", "at": at, "message_id": m, "status": s})),
        (at.clone(), contact(), contact()).prop_map(|(at, a, b)| json!({"type": "contact.merged", "at": at, "primary_contact_id": a, "merged_contact_id": b, "user_id": "u1"})),
        (at.clone(), contact()).prop_map(|(at, c)| json!({"type": "contact.deleted", "at": at, "contact_id": c, "user_id": "u1"})),
        (at, contact()).prop_map(|(at, c)| json!({"type": "contact.added", "at": at, "contact": {"id": c, "name": c}, "source": "user", "user_id": "u0"})),
    ]
}

/// Random events as lines, each with its own id.
fn numbered(events: Vec<Value>) -> Vec<String> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["id"] = json!(format!("e{i:03}"));
            e.to_string()
        })
        .collect()
}

/// Where batches of `n` lines start and end: 0, the cuts (sorted, at most `n`), `n`.
fn batch_bounds(cuts: Vec<usize>, n: usize) -> Vec<usize> {
    let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c.min(n)).collect();
    bounds.extend([0, n]);
    bounds.sort();
    bounds
}

fn day_documents(s: &DuckStore) -> Vec<Value> {
    let mut docs = Vec::new();
    for r in Report::ALL {
        docs.push(report(s, *r, "2026-01-05", "2026-01-05", &[]));
        for l in r.logs() {
            docs.push(log(s, *r, *l, ("2026-01-05", "2026-01-05"), &[], 1, 1000));
        }
    }
    docs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Batching never changes documents, even when merges and ids shared between
    /// contacts tie their histories together: each batch must re-derive the whole group.
    #[test]
    fn batching_random_events_never_changes_documents(
        events in prop::collection::vec(arb_event(), 1..60),
        cuts in prop::collection::vec(0usize..60, 0..6),
        modes in prop::collection::vec(0u8..4, 7),
    ) {
        let lines = numbered(events);
        let whole = store("UTC");
        ingest(&whole, &lines).unwrap();
        let bounds = batch_bounds(cuts, lines.len());
        // Each batch is derived at once, deferred, deferred then settled, or deferred
        // then read (a read settles first).
        let batched = store_parts("UTC", 2);
        for (w, mode) in bounds.windows(2).zip(&modes) {
            let text = lines[w[0]..w[1]].join("\n");
            if *mode == 0 {
                ingest(&batched, &lines[w[0]..w[1]]).unwrap();
                continue;
            }
            batched.ingest_deferred("w", &mut text.as_bytes(), &mut |_| {}).unwrap();
            if *mode == 2 {
                batched.settle("w").unwrap();
                prop_assert_eq!(batched.settle("w").unwrap(), 0, "nothing left to settle");
            } else if *mode == 3 {
                report(&batched, Report::Conversations, "2026-01-05", "2026-01-05", &[]);
            }
        }
        let want = day_documents(&whole);
        prop_assert_eq!(&day_documents(&batched), &want);
        batched.rebuild("w").unwrap();
        prop_assert_eq!(&day_documents(&batched), &want, "after rebuild");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// A group commit files its batches as ingesting them one after another does: the
    /// same outcome for each (accepted and duplicates, or the same refusal, nothing of
    /// it stored) and the same documents. Batches overlap (re-sent events count as the
    /// later batch's duplicates) and some end in a bad line (so some of their events
    /// were staged before the refusal).
    #[test]
    fn a_group_of_batches_is_filed_as_its_batches_one_after_another(
        events in prop::collection::vec(arb_event(), 1..50),
        cuts in prop::collection::vec(0usize..50, 0..5),
        bad in prop::collection::vec(0u8..4, 6),
        overlap in 0usize..8,
    ) {
        let lines = numbered(events);
        let bounds = batch_bounds(cuts, lines.len());
        let batches: Vec<String> = bounds
            .windows(2)
            .zip(&bad)
            .map(|(w, bad)| {
                let mut batch = lines[w[0].saturating_sub(overlap)..w[1]].to_vec();
                match bad {
                    0 => batch.push(r#"{"id":"x","type":"message.sent"}"#.into()),
                    1 => batch.insert(0, "not json".into()),
                    _ => {}
                }
                batch.join("\n")
            })
            .collect();
        let outcome = |r: Result<parley_store::IngestSummary, StoreError>| {
            r.map(|s| (s.accepted, s.duplicates)).map_err(|e| e.to_string())
        };
        let one_by_one = store("UTC");
        let want: Vec<_> = batches
            .iter()
            .map(|b| outcome(one_by_one.ingest_deferred("w", &mut b.as_bytes(), &mut |_| {})))
            .collect();
        let grouped = store_parts("UTC", 2);
        let mut bodies: Vec<&[u8]> = batches.iter().map(|b| b.as_bytes()).collect();
        let mut inputs: Vec<&mut dyn std::io::BufRead> =
            bodies.iter_mut().map(|b| b as &mut dyn std::io::BufRead).collect();
        let got: Vec<_> = grouped
            .ingest_deferred_group("w", &mut inputs)
            .unwrap()
            .into_iter()
            .map(outcome)
            .collect();
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(day_documents(&grouped), day_documents(&one_by_one));
    }
}

/// A batch of a group refused at a line past its first blocks (staged already, a block
/// per core at a time) leaves none of its events filed: a later batch of the group that
/// re-sends some of them files them as new.
#[test]
fn a_group_files_nothing_of_a_batch_refused_late() {
    let blocks = std::thread::available_parallelism().map_or(1, |n| n.get()) + 1;
    let mut big: Vec<String> = Vec::new();
    while big.iter().map(|l| l.len() + 1).sum::<usize>() <= blocks << 20 {
        let i = big.len();
        big.push(recv(
            &format!("m{i}"),
            "2026-01-05T10:00:00Z",
            &format!("c{}", i % 97),
            "wa",
        ));
    }
    let n = big.len() as u64;
    big.push(r#"{"id":"x","type":"message.sent"}"#.into());
    let good: Vec<String> = big[..10].to_vec();
    let (big, good) = (big.join("\n"), good.join("\n"));
    let grouped = store("UTC");
    let mut bodies: Vec<&[u8]> = vec![big.as_bytes(), good.as_bytes()];
    let mut inputs: Vec<&mut dyn std::io::BufRead> = bodies
        .iter_mut()
        .map(|b| b as &mut dyn std::io::BufRead)
        .collect();
    let outcomes = grouped.ingest_deferred_group("w", &mut inputs).unwrap();
    let refusal = outcomes[0].as_ref().unwrap_err().to_string();
    assert!(refusal.contains(&format!("line {}", n + 1)), "{refusal}");
    assert_eq!(outcomes[1].as_ref().unwrap().accepted, 10);
    let alone = store("UTC");
    alone
        .ingest_deferred("w", &mut good.as_bytes(), &mut |_| {})
        .unwrap();
    assert!(
        day_documents(&grouped) == day_documents(&alone),
        "the refused batch left events filed"
    );
}

/// One writer ingests batches while readers read reports and log pages: every read sees
/// whole batches only (each batch opens and closes one conversation, so a half-applied
/// batch would show more opened than closed), reads are never blocked until the writes
/// end (some read sees a state between the first and the last batch), and the final
/// state is every batch.
#[test]
fn readers_see_whole_batches_while_one_writer_ingests() {
    const BATCHES: usize = 40;
    let s = store("UTC");
    let batch = |i: usize| -> Vec<String> {
        let (v, c) = (format!("v{i}"), format!("c{i}"));
        let at = |m: usize| format!("2026-01-05T10:{:02}:{:02}Z", i % 60, m);
        vec![
            json!({"id": format!("o{i}"), "type": "conversation.opened", "at": at(0), "conversation_id": v, "contact_id": c, "source": "contact"}).to_string(),
            recv(&format!("m{i}"), &at(1), &c, "wa"),
            json!({"id": format!("x{i}"), "type": "conversation.closed", "at": at(2), "conversation_id": v, "source": "bot"}).to_string(),
        ]
    };
    /// Stops the readers when the writer ends, even by a panic.
    struct Done<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let done = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (s, done) = (&s, &done);
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        let d = report(s, Report::Conversations, "2026-01-05", "2026-01-05", &[]);
                        let (opened, closed) = (value(&d, "opened"), value(&d, "closed"));
                        assert_eq!(opened, closed, "reader {r} saw a half-applied batch");
                        let page = log(
                            s,
                            Report::Conversations,
                            Log::Conversations,
                            ("2026-01-05", "2026-01-05"),
                            &[],
                            1,
                            100,
                        );
                        assert!(
                            page["total"].as_i64().unwrap() >= opened,
                            "snapshots only grow"
                        );
                        seen.push(opened);
                    }
                    seen
                })
            })
            .collect();
        {
            let _done = Done(&done);
            for i in 0..BATCHES {
                let summary = ingest(&s, &batch(i)).unwrap();
                assert_eq!(summary.accepted, 3);
            }
        }
        readers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(
        seen.iter().any(|&n| n > 0 && n < BATCHES as i64),
        "no read ran while the batches were being written: {seen:?}"
    );
    let d = report(&s, Report::Conversations, "2026-01-05", "2026-01-05", &[]);
    assert_eq!(value(&d, "opened"), BATCHES as i64);
    assert_eq!(value(&d, "closed"), BATCHES as i64);
}

/// Puts together every page of `per_page` incoming messages of 2026-01-05, checking
/// each page's total and length, and checks them against the export's rows (instant and
/// contact, in order) of the same `n` messages; returns them.
fn pages_put_together_are_the_export(s: &DuckStore, n: usize, per_page: u64) -> Vec<String> {
    let q = query(s, Report::Messages, "2026-01-05", "2026-01-05", &[]);
    let mut exported = Vec::new();
    s.export(&q, Log::Incoming, &mut |r| {
        exported.push(format!("{},{}", r[0], r[1]));
        Ok(())
    })
    .unwrap();
    let pages = (n as u64).div_ceil(per_page);
    let mut paged = Vec::new();
    for page in 1..=pages {
        let p = log(
            s,
            Report::Messages,
            Log::Incoming,
            ("2026-01-05", "2026-01-05"),
            &[],
            page,
            per_page,
        );
        assert_eq!(p["total"], n);
        let rows = p["rows"].as_array().unwrap();
        let full = if page < pages {
            per_page
        } else {
            n as u64 - (pages - 1) * per_page
        };
        assert_eq!(rows.len() as u64, full, "page {page}");
        paged.extend(rows.iter().map(|r| {
            format!(
                "{},{}",
                r["at"].as_str().unwrap(),
                r["contact_id"].as_str().unwrap()
            )
        }));
    }
    assert_eq!(exported.len(), n);
    assert_eq!(paged, exported);
    paged
}

/// Pages read in two steps (the window's instants, then its rows) put together give the
/// export's order exactly, across instants shared by many rows and across page edges.
#[test]
fn s6_5_pages_put_together_are_the_export() {
    let s = store("UTC");
    let lines: Vec<String> = (0..300)
        .map(|i| {
            recv(
                &format!("m{:03}", (i * 37) % 300),
                &format!("2026-01-05T10:{:02}:00Z", i / 10),
                &format!("c{i:03}"),
                "wa",
            )
        })
        .collect();
    ingest(&s, &lines).unwrap();
    pages_put_together_are_the_export(&s, 300, 7);
}

/// 1,200 incoming messages of 2026-01-05, three per instant, over seven hours of
/// 15-minute slots, their ids and contacts shuffled.
fn three_to_an_instant() -> Vec<String> {
    (0..1200)
        .map(|i| {
            let minute = i / 3;
            recv(
                &format!("m{:04}", (i * 37) % 1200),
                &format!("2026-01-05T{:02}:{:02}:00Z", 10 + minute / 60, minute % 60),
                &format!("c{:04}", (i * 53) % 1200),
                "wa",
            )
        })
        .collect()
}

/// Deep pages, whose instants are bounded by the cube's counts per slot once a page ends
/// past 500 rows, put together give the export's order too, and the same pages as when
/// nothing is counted from the cubes: 1,200 messages, three per instant, over seven
/// hours of 15-minute slots, in pages of 70 that straddle slot and instant edges.
#[test]
fn deep_pages_bounded_by_the_cubes_are_the_export() {
    let lines = three_to_an_instant();
    let pages_each_way: Vec<Vec<String>> = [true, false]
        .into_iter()
        .map(|cubes| {
            let s = store("UTC").with_cubes(cubes);
            ingest(&s, &lines).unwrap();
            pages_put_together_are_the_export(&s, 1200, 70)
        })
        .collect();
    assert_eq!(pages_each_way[0], pages_each_way[1]);
}

/// A deferred batch is filed durably without its facts; the next read (even in another
/// process, after a restart) settles it first, and an invalid deferred batch files nothing.
#[test]
fn deferred_batches_are_durable_and_settled_before_any_read() {
    let dir = std::env::temp_dir().join(format!("parley-deferred-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let day = ("2026-01-05", "2026-01-05");
    {
        let s = DuckStore::open(&dir).unwrap();
        s.create_workspace(&parley_store::Workspace {
            id: "w".into(),
            timezone: "UTC".into(),
            name: "w".into(),
        })
        .unwrap();
        let batch = [
            recv("m1", "2026-01-05T10:00:00Z", "c", "wa"),
            recv("m2", "2026-01-05T10:01:00Z", "d", "wa"),
        ]
        .join("\n");
        let got = s
            .ingest_deferred("w", &mut batch.as_bytes(), &mut |_| {})
            .unwrap();
        assert_eq!((got.accepted, got.duplicates), (2, 0));
        let bad = [
            recv("m3", "2026-01-05T10:02:00Z", "e", "wa"),
            "{".to_string(),
        ]
        .join("\n");
        assert!(matches!(
            s.ingest_deferred("w", &mut bad.as_bytes(), &mut |_| {}),
            Err(StoreError::InvalidBatch(_))
        ));
        // Dropped without a settle or a read: the facts are not derived yet.
    }
    let s = DuckStore::open(&dir).unwrap();
    let p = log(&s, Report::Messages, Log::Incoming, day, &[], 1, 50);
    assert_eq!(p["total"], 2, "the read settled the deferred batch: {p}");
    assert_eq!(s.settle("w").unwrap(), 0, "the read left nothing to settle");
    let again = [recv("m1", "2026-01-05T10:00:00Z", "c", "wa")].join("\n");
    let got = s
        .ingest_deferred("w", &mut again.as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!((got.accepted, got.duplicates), (0, 1));
    assert_eq!(
        s.settle("w").unwrap(),
        0,
        "a batch of duplicates touches nobody"
    );
    let late = recv("m3", "2026-01-05T10:02:00Z", "e", "wa");
    s.ingest_deferred("w", &mut late.as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!(s.settle("w").unwrap(), 1, "one contact derived");
    let p = log(&s, Report::Messages, Log::Incoming, day, &[], 1, 50);
    assert_eq!(p["total"], 3);
    assert!(matches!(
        s.settle("nope"),
        Err(StoreError::UnknownWorkspace(_))
    ));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A read that fails midway (here its sink: a client that went away during an export)
/// leaves its connection fit for the next read: the pool rolls its transaction back.
#[test]
fn a_failed_read_leaves_the_reader_pool_usable() {
    let s = store("UTC");
    ingest(&s, &[recv("m1", "2026-01-05T10:00:00Z", "c", "wa")]).unwrap();
    let q = query(&s, Report::Messages, "2026-01-05", "2026-01-05", &[]);
    let err = s
        .export(&q, Log::Incoming, &mut |_| {
            Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone"))
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::Io(_)), "{err}");
    for _ in 0..3 {
        let p = log(
            &s,
            Report::Messages,
            Log::Incoming,
            ("2026-01-05", "2026-01-05"),
            &[],
            1,
            50,
        );
        assert_eq!(p["total"], 1);
    }
}

/// The event `v` with the id `id`, as a line.
fn e(id: &str, v: Value) -> String {
    let mut v = v;
    v["id"] = json!(id);
    v.to_string()
}

/// Batches of only closes or only receipts replace just the fact tables those can change
/// (a late close moves later messages and assignments out of its conversation; a failed,
/// then delivered receipt takes a connection away and back): every document must still
/// equal the whole ingest's, derived at once or deferred.
#[test]
fn close_only_and_receipt_only_batches_give_the_whole_ingests_documents() {
    let a = vec![
        e(
            "a1",
            json!({"type": "conversation.opened", "at": "2026-01-05T10:00:00Z", "conversation_id": "cv1", "contact_id": "c1", "source": "contact", "channel_id": "wa"}),
        ),
        e(
            "a2",
            json!({"type": "message.received", "at": "2026-01-05T10:01:00Z", "message_id": "m1", "contact_id": "c1", "channel_id": "wa", "content": {"type": "text", "text": "hi"}}),
        ),
        e(
            "a3",
            json!({"type": "contact.assigned", "at": "2026-01-05T10:02:00Z", "contact_id": "c1", "assignee_id": "u0", "source": "user", "by_user_id": "u1"}),
        ),
        e(
            "a4",
            json!({"type": "message.sent", "at": "2026-01-05T10:03:00Z", "message_id": "m2", "contact_id": "c1", "channel_id": "tg", "source": "user", "user_id": "u0", "message_type": "session", "content": {"type": "text", "text": "a"}}),
        ),
        e(
            "a5",
            json!({"type": "message.sent", "at": "2026-01-05T10:04:00Z", "message_id": "m3", "contact_id": "c1", "channel_id": "wa", "source": "bot", "message_type": "session", "content": {"type": "text", "text": "b"}}),
        ),
    ];
    let b = vec![e(
        "b1",
        json!({"type": "conversation.closed", "at": "2026-01-05T10:01:30Z", "conversation_id": "cv1", "source": "user", "user_id": "u0", "category": "Sales"}),
    )];
    let c = vec![
        e(
            "c1",
            json!({"type": "message.status", "at": "2026-01-05T10:05:00Z", "message_id": "m2", "status": "failed", "error": "131047"}),
        ),
        e(
            "c2",
            json!({"type": "message.status", "at": "2026-01-05T10:06:00Z", "message_id": "m3", "status": "read"}),
        ),
    ];
    let d = vec![e(
        "d1",
        json!({"type": "message.status", "at": "2026-01-05T10:07:00Z", "message_id": "m2", "status": "delivered"}),
    )];
    let batches = [&a, &b, &c, &d];
    // After each batch: the documents of one ingest of every event so far.
    let prefix = |k: usize| {
        let whole = store("UTC");
        let lines: Vec<String> = batches[..k]
            .iter()
            .flat_map(|x| x.iter().cloned())
            .collect();
        ingest(&whole, &lines).unwrap();
        day_documents(&whole)
    };
    let now = store("UTC");
    let mut seen = Vec::new();
    for (k, batch) in batches.iter().enumerate() {
        ingest(&now, batch).unwrap();
        seen.push(day_documents(&now));
        assert_eq!(seen[k], prefix(k + 1), "after batch {k}");
    }
    assert!(
        seen.windows(2).all(|w| w[0] != w[1]),
        "each batch changes some document"
    );
    let want = prefix(4);
    let deferred = store("UTC");
    ingest(&deferred, &a).unwrap();
    for batch in [&b, &c, &d] {
        let text = batch.join("\n");
        deferred
            .ingest_deferred("w", &mut text.as_bytes(), &mut |_| {})
            .unwrap();
    }
    assert_eq!(day_documents(&deferred), want);
}

/// A random event over three days and every hour, with several values of each cube
/// dimension (channels, sources, categories, message types and statuses).
fn arb_spread_event() -> impl Strategy<Value = Value> {
    let contact = || (0..6u8).prop_map(|c| format!("c{c}"));
    let at = || {
        (5..8u8, 0..24u8, 0..60u8).prop_map(|(d, h, m)| format!("2026-01-{d:02}T{h:02}:{m:02}:00Z"))
    };
    let conv = || (0..6u8).prop_map(|c| format!("cv{c}"));
    let msg = || (0..8u8).prop_map(|m| format!("m{m}"));
    let ch = || prop::sample::select(vec!["wa", "tg"]);
    prop_oneof![
        (at(), conv(), contact(), ch(), prop::sample::select(vec!["contact", "user"])).prop_map(|(at, v, c, ch, s)| json!({"type": "conversation.opened", "at": at, "conversation_id": v, "contact_id": c, "source": s, "channel_id": ch, "user_id": "u1"})),
        (at(), conv(), prop::sample::select(vec!["bot", "user"]), prop::sample::select(vec![Some("Sales"), Some("Help"), None])).prop_map(|(at, v, s, cat)| json!({"type": "conversation.closed", "at": at, "conversation_id": v, "source": s, "user_id": "u0", "category": cat})),
        (at(), contact(), prop::sample::select(vec![Some("u0"), Some("u1"), None]), prop::sample::select(vec!["user", "workflow"])).prop_map(|(at, c, u, s)| json!({"type": "contact.assigned", "at": at, "contact_id": c, "assignee_id": u, "source": s, "by_user_id": "u1"})),
        (at(), msg(), contact(), ch()).prop_map(|(at, m, c, ch)| json!({"type": "message.received", "at": at, "message_id": m, "contact_id": c, "channel_id": ch, "content": {"type": "text", "text": "q"}})),
        (at(), msg(), contact(), prop::sample::select(vec!["user", "bot", "broadcast"]), ch(), prop::sample::select(vec![("session", None), ("whatsapp_template", Some("promo")), ("whatsapp_template", None)])).prop_map(|(at, m, c, s, ch, (ty, sub))| json!({"type": "message.sent", "at": at, "message_id": m, "contact_id": c, "channel_id": ch, "source": s, "user_id": "u0", "message_type": ty, "subtype": sub, "content": {"type": "image"}})),
        (at(), msg(), prop::sample::select(vec!["delivered", "read", "failed"])).prop_map(|(at, m, s)| json!({"type": "message.status", "at": at, "message_id": m, "status": s})),
        (at(), contact(), contact()).prop_map(|(at, a, b)| json!({"type": "contact.merged", "at": at, "primary_contact_id": a, "merged_contact_id": b, "user_id": "u1"})),
        (at(), contact()).prop_map(|(at, c)| json!({"type": "contact.deleted", "at": at, "contact_id": c, "user_id": "u1"})),
        (at(), contact(), prop::sample::select(vec![("user", Some("u0")), ("zapier", None)])).prop_map(|(at, c, (s, u))| json!({"type": "contact.added", "at": at, "contact": {"id": c, "name": c}, "source": s, "user_id": u})),
    ]
}

/// Filters a report may take, some served by its cubes and some not.
fn cube_filters(r: Report) -> &'static [&'static str] {
    match r {
        Report::Conversations => &[
            "opened_channel=wa",
            "contact_type=new",
            "opened_source=contact",
            "category=Sales",
            "category=-",
            "closed_source=user",
            "last_assignee=u0",
            "contact=c1",
        ],
        Report::Messages => &["channel=wa", "source=bot", "type=session", "user=u0"],
        Report::Contacts => &[
            "source=user",
            "user=u0",
            "user=-",
            "channel=wa",
            "source=incoming_message",
            "contact=c1",
        ],
        Report::Assignments => &["source=user", "assignee=u0", "assignee=-"],
    }
}

/// Every report and log page over several ranges (hour, day and single-day buckets),
/// unfiltered and with the filter pairs `picks` selects.
fn cube_documents(s: &DuckStore, picks: &[(usize, usize)]) -> Vec<Value> {
    let ranges = [
        ("2026-01-04", "2026-01-08"),
        ("2026-01-05", "2026-01-06"),
        ("2026-01-06", "2026-01-06"),
        ("2026-01-07", "2026-01-07"),
    ];
    let mut docs = Vec::new();
    for r in Report::ALL {
        let all = cube_filters(*r);
        for (from, to) in ranges {
            docs.push(report(s, *r, from, to, &[]));
            for l in r.logs() {
                docs.push(log(s, *r, *l, (from, to), &[], 1, 1000));
            }
            for (a, b) in picks {
                let (a, b) = (all[a % all.len()], all[b % all.len()]);
                let filters: Vec<&str> = if a == b { vec![a] } else { vec![a, b] };
                docs.push(report(s, *r, from, to, &filters));
                // A log's total is summed from the cube where it can be.
                for l in r.logs() {
                    let name = |f: &str| f.split('=').next().unwrap().to_string();
                    if filters
                        .iter()
                        .all(|f| l.accepts().contains(&name(f).as_str()))
                    {
                        docs.push(log(s, *r, *l, (from, to), &filters, 1, 1000));
                    }
                }
            }
        }
    }
    docs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    /// Counting from the cubes gives the documents of counting the facts, in zones with
    /// whole-hour, half-hour and 45-minute offsets and DST, after random batches (each
    /// derived at once or deferred: the cubes follow every settle by deltas) and after a
    /// rebuild.
    #[test]
    fn cubes_count_what_the_facts_count(
        events in prop::collection::vec(arb_spread_event(), 1..80),
        cuts in prop::collection::vec(0usize..80, 0..5),
        deferred in prop::collection::vec(any::<bool>(), 6),
        zone in prop::sample::select(vec!["UTC", "Europe/Madrid", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe", "America/St_Johns"]),
        picks in prop::collection::vec((0usize..8, 0usize..8), 3),
    ) {
        let lines = numbered(events);
        let bounds = batch_bounds(cuts, lines.len());
        let s = store_parts(zone, 2);
        for (w, later) in bounds.windows(2).zip(&deferred) {
            let text = lines[w[0]..w[1]].join("\n");
            if *later {
                s.ingest_deferred("w", &mut text.as_bytes(), &mut |_| {}).unwrap();
            } else {
                s.ingest("w", &mut text.as_bytes(), &mut |_| {}).unwrap();
            }
        }
        let s = s.with_cubes(false);
        let facts = cube_documents(&s, &picks);
        let s = s.with_cubes(true);
        prop_assert_eq!(&cube_documents(&s, &picks), &facts);
        s.rebuild("w").unwrap();
        prop_assert_eq!(&cube_documents(&s, &picks), &facts, "after rebuild");
    }
}

/// A store that ingests several batches keeps filters of its stored ids and keys in
/// memory (built at its second batch, dropped by a batch too large to list, built
/// again): re-sent ids are still duplicates and a message id reused by another contact
/// still ties the two, at every step.
#[test]
fn re_sent_ids_and_reused_keys_are_found_across_many_batches() {
    // Filters dropped past 2,000 hashes in a batch.
    let s = store_parts("UTC", 2);
    let first = [
        recv("m1", "2026-01-05T10:00:00Z", "a", "wa"),
        recv("m2", "2026-01-05T10:01:00Z", "b", "wa"),
    ];
    assert_eq!(ingest(&s, &first).unwrap().accepted, 2);
    let second = [recv("m3", "2026-01-05T10:02:00Z", "c", "wa")];
    assert_eq!(ingest(&s, &second).unwrap().accepted, 1);
    // Third batch: the filters are built now; everything re-sent is a duplicate.
    let again: Vec<String> = first.iter().chain(&second).cloned().collect();
    let got = ingest(&s, &again).unwrap();
    assert_eq!((got.accepted, got.duplicates), (0, 3));
    // A batch of more ids than are listed (2,000) finds the stored ones by a join, and
    // more than the filters take (2,000 here) drops the filter of ids.
    let many: Vec<String> = (0..2_500)
        .map(|i| recv(&format!("x{i}"), "2026-01-05T11:00:00Z", "d", "wa"))
        .collect();
    assert_eq!(ingest(&s, &many).unwrap().accepted, 2_500);
    let got = ingest(&s, &[many[7].clone(), first[0].clone()]).unwrap();
    assert_eq!((got.accepted, got.duplicates), (0, 2));
    // Message id m3, first used by c, reused by e under a new event id: the first use
    // wins, so e's copy is not e's message (SPEC §2.3).
    let reuse = r#"{"id":"r3","type":"message.received","at":"2026-01-05T12:00:00Z","message_id":"m3","contact_id":"e","channel_id":"wa","content":{"type":"text","text":"q"}}"#;
    assert_eq!(ingest(&s, &[reuse.to_string()]).unwrap().accepted, 1);
    let incoming = |contact: &str| {
        let page = log(
            &s,
            Report::Messages,
            Log::Incoming,
            ("2026-01-05", "2026-01-05"),
            &[&format!("contact={contact}")],
            1,
            50,
        );
        page["total"].as_i64().unwrap()
    };
    assert_eq!(incoming("c"), 1);
    assert_eq!(incoming("e"), 0, "the reused id stays c's message");
}

/// Receipt-only batches are applied to their messages' rows in place when that gives
/// what a re-derivation would (SPEC §3.5: the earliest delivered and read instants win,
/// within 30 days of the message; an incoming message takes none; one applied before its
/// message finds nothing), and are derived otherwise: a failed receipt, a delivered
/// failed message (it connects its contact), a message whose row is not under the
/// receipt's owner. After each batch every document is the one of a whole ingest.
#[test]
fn receipt_batches_in_place_give_the_derived_documents() {
    let sent = |id: &str, at: &str, m: &str, c: &str, ch: &str| {
        e(
            id,
            json!({"type": "message.sent", "at": format!("2026-01-05T{at}:00Z"), "message_id": m, "contact_id": c, "channel_id": ch, "source": "user", "user_id": "u0", "message_type": "session", "content": {"type": "text", "text": "a"}}),
        )
    };
    let status = |id: &str, at: &str, m: &str, s: &str| {
        let at = if at.len() == 5 {
            format!("2026-01-05T{at}:00Z")
        } else {
            at.to_string()
        };
        e(
            id,
            json!({"type": "message.status", "at": at, "message_id": m, "status": s}),
        )
    };
    let base = vec![
        sent("s1", "10:00", "m1", "c1", "wa"),
        sent("s2", "10:05", "m2", "c1", "tg"),
        e(
            "s3",
            json!({"type": "message.received", "at": "2026-01-05T10:06:00Z", "message_id": "m3", "contact_id": "c2", "channel_id": "wa", "content": {"type": "text", "text": "q"}}),
        ),
        sent("s4", "11:00", "m4", "c2", "wa"),
        // m5 is c2's; c3's later use of the id is ignored, and c2 owns its receipts.
        sent("s5", "10:10", "m5", "c2", "wa"),
        sent("s6", "10:30", "m5", "c3", "tg"),
        // m6 is c9's; c1's later use is ignored, but c1 (the smaller id) owns its
        // receipts, and its row is not c1's.
        sent("s7", "10:10", "m6", "c9", "wa"),
        sent("s8", "10:20", "m6", "c1", "tg"),
        sent("s9", "12:00", "m7", "c3", "wa"),
    ];
    // (batch, applied in place)
    let batches: Vec<(Vec<String>, bool)> = vec![
        (vec![status("r1", "10:20", "m1", "delivered")], true),
        (
            vec![
                status("r2", "10:40", "m1", "read"),
                status("r3", "10:41", "m2", "delivered"),
                status("r4", "10:42", "m2", "delivered"),
            ],
            true,
        ),
        // An earlier delivery of m1 arrives late: it wins.
        (vec![status("r5", "10:15", "m1", "delivered")], true),
        // Incoming, before its message, past 30 days, `sent`: nothing changes.
        (
            vec![
                status("r6", "10:07", "m3", "read"),
                status("r7", "10:59", "m4", "read"),
                status("r8", "2026-02-05T11:00:01Z", "m4", "delivered"),
                status("r9", "11:30", "m4", "sent"),
            ],
            true,
        ),
        // Its message is unknown: the receipt waits, and the batch changes nothing.
        (vec![status("r10", "13:00", "m99", "read")], true),
        (vec![status("r11", "10:50", "m5", "read")], true),
        (vec![status("r12", "10:50", "m6", "read")], false),
        (vec![status("r13", "12:10", "m7", "failed")], false),
        (vec![status("r14", "12:20", "m7", "delivered")], false),
        (
            vec![
                status("r15", "2026-02-04T10:04:59Z", "m4", "delivered"),
                status("r16", "12:00", "m4", "read"),
            ],
            true,
        ),
        // m99 arrives and takes its waiting receipt.
        (vec![sent("s10", "12:30", "m99", "c4", "wa")], false),
        // Re-sent: duplicates, nothing stored.
        (vec![status("r1", "10:20", "m1", "delivered")], false),
    ];
    let now = store("UTC");
    ingest(&now, &base).unwrap();
    // A deferred batch waits while the first receipts are applied in place, and is
    // derived by that same ingest.
    let waiting = sent("s11", "13:00", "m8", "c5", "tg");
    now.ingest_deferred("w", &mut waiting.as_bytes(), &mut |_| {})
        .unwrap();
    let mut lines = base.clone();
    lines.push(waiting);
    let mut seen = vec![day_documents(&now)];
    for (k, (batch, in_place)) in batches.iter().enumerate() {
        let before = parley_store::receipt_batches_in_place();
        ingest(&now, batch).unwrap();
        assert_eq!(
            parley_store::receipt_batches_in_place() - before,
            u64::from(*in_place),
            "batch {k} applied in place"
        );
        lines.extend(batch.iter().cloned());
        let whole = store("UTC");
        ingest(&whole, &lines).unwrap();
        let docs = day_documents(&now);
        assert_eq!(docs, day_documents(&whole), "after batch {k}");
        // The same facts counted without the cubes.
        let facts = DuckStore::in_memory().unwrap().with_cubes(false);
        facts
            .create_workspace(&Workspace {
                id: "w".into(),
                timezone: "UTC".into(),
                name: "w".into(),
            })
            .unwrap();
        ingest(&facts, &lines).unwrap();
        assert_eq!(
            docs,
            day_documents(&facts),
            "after batch {k}, without cubes"
        );
        seen.push(docs);
    }
    // What is shown changes but for the receipts that count for nothing, the waiting
    // one and the duplicate (m4's late receipts count: within 30 days of it).
    let changed: Vec<usize> = (0..batches.len())
        .filter(|&k| seen[k] != seen[k + 1])
        .collect();
    assert_eq!(changed, [0, 1, 2, 5, 6, 7, 8, 9, 10]);
    let msgs = log(
        &now,
        Report::Messages,
        Log::Outgoing,
        ("2026-01-05", "2026-01-05"),
        &[],
        1,
        100,
    );
    // (sent at, delivered, read) as the log shows them, by the time each was sent.
    let instants: Vec<(String, Value, Value)> = msgs["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["at"].as_str().unwrap()[11..16].to_string(),
                r["delivered_at"].clone(),
                r["read_at"].clone(),
            )
        })
        .collect();
    let at = |t: &str| json!(format!("2026-01-05T{t}:00+00:00"));
    for (sent_at, delivered, read) in [
        ("10:00", at("10:15"), at("10:40")),
        ("10:05", at("10:41"), Value::Null),
        ("11:00", json!("2026-02-04T10:04:59+00:00"), at("12:00")),
        ("12:00", at("12:20"), Value::Null),
        ("12:30", Value::Null, at("13:00")),
    ] {
        assert!(
            instants.contains(&(sent_at.to_string(), delivered.clone(), read.clone())),
            "{sent_at} {delivered} {read} in {instants:?}"
        );
    }
}

#[test]
fn tokens_speak_for_one_workspace_and_scope_until_revoked() {
    use parley_store::{Principal, Scope};
    let dir = tempfile::tempdir().unwrap();
    let s = DuckStore::open(dir.path()).unwrap();
    for id in ["a", "b"] {
        s.create_workspace(&Workspace {
            id: id.into(),
            timezone: "UTC".into(),
            name: id.into(),
        })
        .unwrap();
    }
    let read = s.create_token("a", Scope::Read).unwrap();
    let ingest = s.create_token("a", Scope::Ingest).unwrap();
    let other = s.create_token("b", Scope::Read).unwrap();
    assert_ne!(read, ingest);
    let who = |t: &str| s.authenticate(t).unwrap();
    assert_eq!(
        who(&read),
        Some(Principal {
            workspace: "a".into(),
            scope: Scope::Read
        })
    );
    assert_eq!(who(&ingest).unwrap().scope, Scope::Ingest);
    assert_eq!(who(&other).unwrap().workspace, "b");
    // A token altered in its secret, or in its public id, or cut short, is nobody.
    let mut forged = read.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in [
        forged.as_str(),
        &read[..read.len() - 1],
        "",
        "parley_x",
        &read.replacen("parley_", "parley_0", 1),
    ] {
        assert_eq!(who(bad), None, "{bad}");
    }
    assert!(matches!(
        s.create_token("zz", Scope::Read),
        Err(StoreError::UnknownWorkspace(_))
    ));
    assert_eq!(s.revoke_token(&read).unwrap(), "a");
    assert_eq!(who(&read), None, "a revoked token stops working");
    assert!(matches!(
        s.revoke_token(&read),
        Err(StoreError::UnknownToken)
    ));
    assert!(matches!(
        s.revoke_token(&forged),
        Err(StoreError::UnknownToken)
    ));
    assert_eq!(who(&ingest).unwrap().workspace, "a", "others keep working");
    drop(s);
    // Stored as hashes alone: the database file never holds a token's text.
    let s = DuckStore::open(dir.path()).unwrap();
    assert_eq!(who_in(&s, &ingest), Some(Scope::Ingest), "durable");
    let mut files = 0;
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        files += 1;
        for t in [&read, &ingest, &other] {
            let secret = t.rsplit('_').next().unwrap().as_bytes();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "a token's secret is not stored"
            );
        }
    }
    assert!(files >= 1);
}

fn who_in(s: &DuckStore, token: &str) -> Option<parley_store::Scope> {
    s.authenticate(token).unwrap().map(|p| p.scope)
}

/// Every row of `log`'s export over the example's months, as CSV lines.
fn export_lines(s: &DuckStore, r: Report, l: Log) -> Vec<String> {
    let q = query(s, r, "2025-09-01", "2025-11-30", &[]);
    let mut rows = Vec::new();
    s.export(&q, l, &mut |fields| {
        rows.push(fields.join(","));
        Ok(())
    })
    .unwrap();
    rows
}

/// An export reads its rows a window of instants at a time (a few rows per window here,
/// 100,000 by default) and gives exactly the rows of one sort of them all, in order:
/// every log of the worked example, and 1,200 messages three to an instant.
#[test]
fn exports_read_a_window_at_a_time_in_log_order() {
    let lines = madrid_lines();
    let whole = store("Europe/Madrid");
    ingest(&whole, &lines).unwrap();
    let windowed = store_parts("Europe/Madrid", 1);
    ingest(&windowed, &lines).unwrap();
    let mut rows = 0;
    for r in Report::ALL {
        for l in r.logs() {
            let one = export_lines(&whole, *r, *l);
            rows += one.len();
            assert_eq!(export_lines(&windowed, *r, *l), one, "{r:?} {l:?}");
        }
    }
    assert!(rows > 300, "the example exports {rows} rows");
    let same_instants = three_to_an_instant();
    let exports: Vec<Vec<String>> = [u64::MAX, 1]
        .into_iter()
        .map(|part| {
            let s = store_parts("UTC", part);
            ingest(&s, &same_instants).unwrap();
            let q = query(&s, Report::Messages, "2026-01-05", "2026-01-05", &[]);
            let mut rows = Vec::new();
            s.export(&q, Log::Incoming, &mut |f| {
                rows.push(f.join(","));
                Ok(())
            })
            .unwrap();
            rows
        })
        .collect();
    assert_eq!(exports[0].len(), 1200);
    assert_eq!(exports[0], exports[1]);
}

/// With reads that do not settle, a deferred batch is invisible until it is settled, and
/// then visible whole: a read never sees it half-applied, nor settles it.
#[test]
fn reads_that_do_not_settle_see_settled_batches_whole() {
    let s = store("UTC").with_settled_reads(false).unwrap();
    let first: Vec<String> = (0..5)
        .map(|i| {
            recv(
                &format!("a{i}"),
                "2026-01-05T10:00:00Z",
                &format!("c{i}"),
                "wa",
            )
        })
        .collect();
    ingest(&s, &first).unwrap();
    let incoming = |s: &DuckStore| {
        report(s, Report::Messages, "2026-01-05", "2026-01-05", &[])["components"]
            ["incoming_by_channel"]["total"]
            .clone()
    };
    assert_eq!(incoming(&s), 5);
    let later: Vec<String> = (0..7)
        .map(|i| {
            recv(
                &format!("b{i}"),
                "2026-01-05T11:00:00Z",
                &format!("d{i}"),
                "wa",
            )
        })
        .collect();
    s.ingest_deferred("w", &mut later.join("\n").as_bytes(), &mut |_| {})
        .unwrap();
    assert_eq!(incoming(&s), 5, "not settled yet: the batch is not seen");
    assert_eq!(incoming(&s), 5, "and the read did not settle it");
    assert_eq!(s.settle("w").unwrap(), 7);
    assert_eq!(incoming(&s), 12, "settled: seen whole");
}

/// Settles on their own connection run while the writer files the next batches: after
/// both, every document is the whole ingest's (no lost dirty contact, no conflict).
#[test]
fn settles_beside_filings_give_the_whole_ingests_documents() {
    let lines = madrid_lines();
    let whole = store("Europe/Madrid");
    ingest(&whole, &lines).unwrap();
    let s = store("Europe/Madrid").with_settled_reads(false).unwrap();
    let filing_done = std::sync::atomic::AtomicBool::new(false);
    let mut settled = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for chunk in lines.chunks(25) {
                s.ingest_deferred("w", &mut chunk.join("\n").as_bytes(), &mut |_| {})
                    .unwrap();
            }
            filing_done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        while !filing_done.load(std::sync::atomic::Ordering::SeqCst) {
            settled += s.settle("w").unwrap();
        }
    });
    settled += s.settle("w").unwrap();
    assert!(settled > 0);
    assert_eq!(s.settle("w").unwrap(), 0, "nothing left");
    assert_eq!(all_documents(&s), all_documents(&whole));
}

/// Filters of stored hashes built at start (`know_stored`) hold every stored id and key:
/// a re-sent batch is all duplicates and a receipt finds its message, from a fresh
/// process's first batch on.
#[test]
fn filters_built_at_start_know_every_stored_id_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let lines = madrid_lines();
    {
        let s = DuckStore::open(dir.path()).unwrap();
        s.create_workspace(&Workspace {
            id: "w".into(),
            timezone: "Europe/Madrid".into(),
            name: "w".into(),
        })
        .unwrap();
        ingest(&s, &lines[..300]).unwrap();
    }
    let whole = store("Europe/Madrid");
    ingest(&whole, &lines).unwrap();
    let s = DuckStore::open(dir.path()).unwrap();
    s.know_stored("w").unwrap();
    let again = ingest(&s, &lines[..300]).unwrap();
    assert_eq!(again.accepted, 0, "every stored id is known");
    ingest(&s, &lines[300..]).unwrap();
    assert_eq!(all_documents(&s), all_documents(&whole));
    assert!(matches!(
        s.know_stored("zz"),
        Err(StoreError::UnknownWorkspace(_))
    ));
}

/// A close or receipt of a key this process filed as new finds its owner without a
/// lookup; a key used again (by a smaller contact id, who then owns it) is looked up.
#[test]
fn owners_of_keys_filed_here_are_known_until_the_key_is_used_again() {
    let sent = |id: &str, at: &str, m: &str, c: &str| {
        e(
            id,
            json!({"type": "message.sent", "at": format!("2026-01-05T{at}:00Z"), "message_id": m, "contact_id": c, "channel_id": "wa", "source": "user", "user_id": "u0", "message_type": "session", "content": {"type": "text", "text": "a"}}),
        )
    };
    let status = |id: &str, at: &str, m: &str, st: &str| {
        e(
            id,
            json!({"type": "message.status", "at": format!("2026-01-05T{at}:00Z"), "message_id": m, "status": st}),
        )
    };
    let opened = |id: &str, at: &str, conv: &str, c: &str| {
        e(
            id,
            json!({"type": "conversation.opened", "at": format!("2026-01-05T{at}:00Z"), "conversation_id": conv, "contact_id": c, "channel_id": "wa", "source": "contact"}),
        )
    };
    let closed = |id: &str, at: &str, conv: &str| {
        e(
            id,
            json!({"type": "conversation.closed", "at": format!("2026-01-05T{at}:00Z"), "conversation_id": conv, "source": "user", "user_id": "u0"}),
        )
    };
    let batches: Vec<(Vec<String>, u64)> = vec![
        (vec![sent("a0", "09:00", "m0", "c9")], 0), // the process's first batch: no filters
        (
            vec![
                sent("a1", "10:00", "m1", "c2"),
                opened("a2", "10:00", "k1", "c2"),
            ],
            0,
        ),
        (
            vec![
                status("a3", "10:01", "m1", "delivered"),
                closed("a4", "10:30", "k1"),
            ],
            2,
        ),
        (vec![sent("a5", "10:02", "m1", "c1")], 0), // m1 again, by a smaller id
        (vec![status("a6", "10:03", "m1", "read")], 0), // looked up: c1 owns it now
        (vec![status("a7", "10:04", "m0", "read")], 0), // filed in the first batch
    ];
    let whole = store("UTC");
    let all: Vec<String> = batches.iter().flat_map(|(b, _)| b.clone()).collect();
    ingest(&whole, &all).unwrap();
    let s = store("UTC");
    for (i, (batch, known)) in batches.iter().enumerate() {
        let before = parley_store::owners_known();
        ingest(&s, batch).unwrap();
        assert_eq!(parley_store::owners_known() - before, *known, "batch {i}");
    }
    assert_eq!(all_documents(&s), all_documents(&whole));
}

/// Batches spooled by a server that died before filing them are filed when the data dir
/// is opened next, whole records only (a record cut short was never acknowledged), and
/// the spool is emptied; filing a segment twice changes nothing.
#[test]
fn spooled_batches_are_filed_when_the_store_opens_next() {
    use parley_store::spool::{self, Spool};
    let lines = madrid_lines();
    let (first, second) = lines.split_at(lines.len() / 2);
    let d = tempfile::tempdir().unwrap();
    {
        let s = DuckStore::open(d.path()).unwrap();
        s.create_workspace(&Workspace {
            id: "w".into(),
            timezone: "Europe/Madrid".into(),
            name: "w".into(),
        })
        .unwrap();
        let mut spool = Spool::open(d.path()).unwrap();
        fn refs(l: &[String]) -> Vec<&str> {
            l.iter().map(String::as_str).collect()
        }
        spool.append("w", &refs(first)).unwrap();
        // A closed segment, and the current one with a record after it.
        let closed = spool.rotate().unwrap().unwrap();
        assert_eq!(spool::read_segment(&closed).unwrap().len(), 1);
        spool.append("w", &refs(second)).unwrap();
        spool.sync().unwrap();
    }
    // A record cut short at the end of the current segment: never acknowledged.
    let current = d.path().join("spool/current.ndjson");
    let mut text = std::fs::read_to_string(&current).unwrap();
    text.push_str("{\"spool\":9,\"workspace\":\"w\",\"lines\":2}\n");
    text.push_str(&recv("cut", "2025-10-26T10:00:00Z", "zz", "wa"));
    std::fs::write(&current, text).unwrap();

    let reopened = DuckStore::open(d.path()).unwrap();
    let want = store("Europe/Madrid");
    ingest(&want, &lines).unwrap();
    assert_eq!(all_documents(&reopened), all_documents(&want));
    let left: Vec<_> = std::fs::read_dir(d.path().join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "the spool is emptied: {left:?}");
    // Filing the same records again: every event a duplicate, nothing changes.
    let mut spool = Spool::open(d.path()).unwrap();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    spool.append("w", &refs).unwrap();
    let segment = spool.rotate().unwrap().unwrap();
    spool::file_segment(&reopened, &segment).unwrap();
    assert_eq!(all_documents(&reopened), all_documents(&want));
}

/// The server's duplicate check: the ids of a workspace that are stored, exactly, and
/// its filter of ids holds each of them.
#[test]
fn stored_ids_are_found_by_id_and_held_by_the_filter() {
    let s = store("UTC");
    let lines = [
        recv("m1", "2026-01-05T10:00:00Z", "a", "wa"),
        recv("m2", "2026-01-05T10:01:00Z", "b", "wa"),
    ];
    ingest(&s, &lines).unwrap();
    let ids: Vec<String> = parley_store::validate(lines.join("\n").as_bytes())
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let mut asked: Vec<&str> = ids.iter().map(String::as_str).collect();
    asked.push("never-sent");
    let found = s.stored_ids("w", &asked).unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(ids.iter().all(|id| found.contains(id)));
    let filter = s.id_filter("w", 10).unwrap();
    assert!(ids.iter().all(|id| filter.may_contain(id)));
    // Validation refuses what ingest refuses, with the same words.
    let bad = format!("{}\n\n{{\"id\":\"x\"}}", lines[0]);
    let refused = parley_store::validate(bad.as_bytes())
        .unwrap_err()
        .to_string();
    let by_ingest = s
        .ingest("w", &mut bad.as_bytes(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert_eq!(refused, by_ingest);
    assert!(refused.contains("line 3"), "{refused}");
}
