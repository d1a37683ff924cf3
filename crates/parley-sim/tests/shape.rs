//! The simulated workspace has the shape of a real business's (issue: `parley
//! simulate`): checked on the events and on the reports parley computes from them.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use parley_core::report::{Log, Report};
use parley_core::request::View;
use parley_sim::{simulate, Config, Stats};
use parley_store::{DuckStore, Store, Workspace};
use serde_json::Value;

/// A month of a small team, ending 2026-11-30 in Madrid (35 days, so that read receipts
/// after the 30 days of tracking fall inside it).
fn month() -> Config {
    Config {
        seed: 7,
        days: 35,
        end: Date::constant(2026, 11, 30),
        timezone: "Europe/Madrid".into(),
        contacts: 4_000,
        conversations: 6_000,
        agents: 12,
        until: None,
    }
}

fn run(config: &Config) -> (Vec<u8>, Stats) {
    let mut out = Vec::new();
    let stats = simulate(config, &mut out).unwrap();
    (out, stats)
}

/// The month ingested into a fresh store, with the ingest's summary.
fn ingested(events: &[u8]) -> (DuckStore, parley_store::IngestSummary) {
    let store = DuckStore::in_memory().unwrap();
    store
        .create_workspace(&Workspace {
            id: "w".into(),
            timezone: "Europe/Madrid".into(),
            name: "w".into(),
        })
        .unwrap();
    let summary = store.ingest("w", &mut &events[..], &mut |_| {}).unwrap();
    (store, summary)
}

fn november(store: &DuckStore, report: Report) -> Value {
    let view = View {
        from: Some("2026-11-01".into()),
        to: Some("2026-11-30".into()),
        ..View::default()
    };
    let q = parley_store::query(store, "w", report, &view).unwrap();
    serde_json::to_value(store.report(&q).unwrap()).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let (a, stats) = run(&month());
    let (b, _) = run(&month());
    assert!(a == b, "two runs of one seed differ");
    assert_eq!(
        stats.events,
        a.iter().filter(|&&c| c == b'\n').count() as u64
    );
    let (c, _) = run(&Config { seed: 8, ..month() });
    assert!(a != c, "another seed gives the same bytes");
}

#[test]
fn a_simulated_month_ingests_whole_and_its_resends_are_the_duplicates() {
    let (events, stats) = run(&month());
    // Every event valid: the batch is refused whole otherwise.
    let (_, summary) = ingested(&events);
    assert!(stats.resends > 0, "no event re-sent");
    assert_eq!(summary.duplicates, stats.resends);
    assert_eq!(summary.accepted + summary.duplicates, stats.events);
}

#[test]
fn every_source_close_source_channel_kind_and_status_occurs() {
    let (events, _) = run(&month());
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut add = |what: &'static str, v: &Value| {
        if let Some(s) = v.as_str() {
            seen.entry(what).or_default().insert(s.to_string());
        }
    };
    let (mut at_of, mut early, mut late) = (BTreeMap::new(), 0, 0);
    for line in events.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let e: Value = serde_json::from_slice(line).unwrap();
        match e["type"].as_str().unwrap() {
            "contact.added" => add("contact source", &e["source"]),
            "conversation.opened" => add("open source", &e["source"]),
            "conversation.closed" => add("close source", &e["source"]),
            "contact.assigned" => add("assign source", &e["source"]),
            "channel.upserted" => add("channel kind", &e["channel"]["kind"]),
            "channel.deleted" => add("deleted", &Value::from("channel")),
            "user.deleted" => add("deleted", &Value::from("user")),
            "contact.merged" => add("deleted", &Value::from("merge")),
            "contact.deleted" => add("deleted", &Value::from("contact")),
            "message.sent" => {
                add("message source", &e["source"]);
                add("message type", &e["message_type"]);
                at_of.insert(
                    e["message_id"].as_str().unwrap().to_string(),
                    e["at"].clone(),
                );
            }
            "message.status" => {
                add("status", &e["status"]);
                let m = e["message_id"].as_str().unwrap();
                match at_of.get(m) {
                    None => early += 1,
                    Some(at) => {
                        let at = at.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
                        let r = e["at"]
                            .as_str()
                            .unwrap()
                            .parse::<jiff::Timestamp>()
                            .unwrap();
                        if r.duration_since(at).as_secs() > 30 * 86_400 {
                            late += 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let all = |what: &str, want: &[&str]| {
        let got = seen.get(what).cloned().unwrap_or_default();
        for w in want {
            assert!(got.contains(*w), "no {what} {w:?} (got {got:?})");
        }
    };
    all(
        "contact source",
        &[
            "user",
            "contact_import",
            "developer_api",
            "incoming_message",
            "echo_message",
            "zapier",
            "make",
            "click_to_chat_ad",
        ],
    );
    all(
        "open source",
        &[
            "user",
            "contact",
            "workflow",
            "developer_api",
            "zapier",
            "make",
            "click_to_chat_ad",
        ],
    );
    all(
        "close source",
        &[
            "user",
            "bot",
            "workflow",
            "developer_api",
            "zapier",
            "make",
            "blocked",
            "contact_merged",
            "contact_deleted",
        ],
    );
    all("assign source", &["workflow", "user", "bot"]);
    all(
        "channel kind",
        &[
            "whatsapp",
            "messenger",
            "instagram",
            "telegram",
            "line",
            "viber",
            "webchat",
            "email",
            "sms",
            "google_business",
            "tiktok",
            "custom",
        ],
    );
    all("message source", &["user", "bot", "broadcast", "workflow"]);
    all(
        "message type",
        &["session", "facebook_message_tag", "whatsapp_template"],
    );
    all("status", &["sent", "delivered", "read", "failed"]);
    all("deleted", &["channel", "user", "merge", "contact"]);
    assert!(early > 0, "no receipt arrives before its message");
    assert!(late > 0, "no read receipt arrives after 30 days");
}

#[test]
fn opens_peak_in_local_business_hours_and_drop_at_weekends() {
    let (events, _) = run(&month());
    let (store, _) = ingested(&events);
    let doc = november(&store, Report::Conversations);
    let heat: Vec<Vec<i64>> =
        serde_json::from_value(doc["components"]["opened_heatmap"]["values"].clone()).unwrap();
    let by_hour: Vec<i64> = (0..24).map(|h| heat.iter().map(|d| d[h]).sum()).collect();
    let total: i64 = by_hour.iter().sum();
    let peak = (0..24).max_by_key(|h| by_hour[*h]).unwrap();
    assert!(
        (9..=17).contains(&peak),
        "opens peak at {peak}:00: {by_hour:?}"
    );
    let night: i64 = by_hour[0..6].iter().sum();
    assert!(
        night * 20 < total,
        "nights are not quiet: {night} of {total}"
    );
    let per_day = |d: &[i64]| d.iter().sum::<i64>();
    let weekday = heat[0..5].iter().map(|d| per_day(d)).sum::<i64>() as f64 / 5.0;
    let weekend = heat[5..7].iter().map(|d| per_day(d)).sum::<i64>() as f64 / 2.0;
    assert!(
        weekend < 0.6 * weekday,
        "weekends {weekend} vs weekdays {weekday}"
    );
    // Monday is the busiest day.
    let monday = per_day(&heat[0]);
    assert!(heat.iter().all(|d| per_day(d) <= monday), "{heat:?}");
}

#[test]
fn every_component_has_data_and_the_median_first_response_is_plausible() {
    let (events, _) = run(&month());
    let (store, _) = ingested(&events);
    for report in Report::ALL {
        let doc = november(&store, *report);
        for (name, c) in doc["components"].as_object().unwrap() {
            assert_eq!(c["status"], "ok", "{report:?} {name} has no data");
            if let Some(rows) = c["rows"].as_array() {
                assert!(!rows.is_empty(), "{name} is empty");
            }
        }
    }
    let delivery = &november(&store, Report::Messages)["components"]["delivery"]["rows"];
    for row in delivery.as_array().unwrap() {
        assert!(
            row["count"].as_i64().unwrap() > 0,
            "no {} message",
            row["key"]
        );
    }
    // First response times, from the conversations log's export.
    let view = View {
        from: Some("2026-11-01".into()),
        to: Some("2026-11-30".into()),
        ..View::default()
    };
    let q = parley_store::query(&store, "w", Report::Conversations, &view).unwrap();
    let column = Log::Conversations
        .columns()
        .iter()
        .position(|(n, _)| *n == "first_response_time")
        .unwrap();
    let mut seconds = Vec::new();
    store
        .export(&q, Log::Conversations, &mut |fields| {
            let parts: Vec<i64> = fields[column]
                .split(':')
                .filter_map(|p| p.parse().ok())
                .collect();
            if !parts.is_empty() {
                seconds.push(parts.iter().fold(0, |acc, p| acc * 60 + p));
            }
            Ok(())
        })
        .unwrap();
    seconds.sort_unstable();
    let median = seconds[seconds.len() / 2];
    assert!(
        (30..=1_800).contains(&median),
        "median first response {median} s"
    );
}
