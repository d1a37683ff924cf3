//! Times each report, a log page and an export of a data dir's workspace `bench` several
//! times in one process, as a server would serve them (warm caches), over
//! `last_30_days` ending 2026-11-30T12:00:00+01:00: `cargo run --release --example warm
//! -- DIR [RUNS]`. Reports are timed counted from the cubes (as served) and from the
//! facts, unfiltered and with `bench.py`'s three filters, and each pair of documents is
//! checked byte-identical. A measuring aid for BENCHMARKS.md; not part of the product.

use parley_core::report::{Filters, Log, Report};
use parley_core::time::{parse_rfc3339, parse_zone, Preset, Range};
use parley_store::{DuckStore, Query, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).ok_or("usage: warm DIR [RUNS]")?;
    let runs: usize = args.get(2).map_or(Ok(5), |r| r.parse())?;
    let mut store = DuckStore::open(std::path::Path::new(dir))?;
    let workspace = store.workspace("bench")?;
    let tz = parse_zone(&workspace.timezone).ok_or("unknown zone")?;
    let now = parse_rfc3339("2026-11-30T12:00:00+01:00").map_err(|e| e.to_string())?;
    let range = Range::preset(Preset::Last30Days, now, &tz)?;
    let filtered = |report: Report, filters: &[&str]| -> Result<Query, String> {
        Ok(Query {
            workspace: workspace.clone(),
            report,
            range: range.clone(),
            filters: Filters::parse(report, filters).map_err(|e| e.to_string())?,
        })
    };
    let query = |report: Report| filtered(report, &[]).expect("no filters");
    let time = |what: &str, f: &mut dyn FnMut() -> Result<(), parley_store::StoreError>| {
        let mut ms = Vec::new();
        for _ in 0..runs {
            let t = std::time::Instant::now();
            f().expect("runs");
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let shown: Vec<String> = ms.iter().map(|m| format!("{m:.1}")).collect();
        println!("{what}: {} ms", shown.join(" "));
    };
    for report in Report::ALL {
        // bench.py's three filters of each report.
        let three: &[&str] = match report {
            Report::Conversations => &[
                "opened_channel=ch-whatsapp",
                "contact_type=returning",
                "opened_source=contact",
            ],
            Report::Messages => &["source=user", "channel=ch-whatsapp", "type=session"],
            Report::Contacts => &["source=incoming_message", "user=-", "contact=a"],
            Report::Assignments => &["source=user", "assignee=u01", "contact=a"],
        };
        for (label, q) in [
            ("", query(*report)),
            (", 3 filters", filtered(*report, three)?),
        ] {
            let mut docs = Vec::new();
            for cubes in [true, false] {
                store = store.with_cubes(cubes);
                let from = if cubes { "cubes" } else { "facts" };
                time(&format!("{}{label} ({from})", report.wire()), &mut || {
                    store.report(&q).map(|_| ())
                });
                docs.push(serde_json::to_string(&store.report(&q)?)?);
            }
            assert_eq!(
                docs[0],
                docs[1],
                "{}{label}: cubes and facts differ",
                report.wire()
            );
        }
    }
    store = store.with_cubes(true);
    let q = query(Report::Conversations);
    for page in [1, 200] {
        time(&format!("conversation log page {page}"), &mut || {
            store.log_page(&q, Log::Conversations, page, 50).map(|_| ())
        });
    }
    time("conversation log export", &mut || {
        store
            .export(&q, Log::Conversations, &mut |_| Ok(()))
            .map(|_| ())
    });
    Ok(())
}
