//! The SQL of every report, log and export. Rules of what to count live in
//! `parley_core::report`; this module only maps datasets and dimensions to columns and
//! lets DuckDB aggregate. Zones never reach SQL: bucket edges and UTC offsets are
//! computed in Rust and handed over as plain microsecond bounds.

use std::collections::BTreeMap;

use duckdb::types::Value;
use duckdb::Connection;
use parley_core::directory::Directory;
use parley_core::doc::{
    self, Cell, CellRef, ComponentData, KeyedCounts, LogPage, RangeDoc, ReportDoc, RowFormatter,
};
use parley_core::fold_case;
use parley_core::report::{ColType, Dataset, Filters, Key, Log, Shape, MISSING};
use parley_core::time::{Bucket, BucketKind, Instant, LocalClock, Range};

use crate::columns::plain_columns;
use crate::ingest::load_directory_events;
use crate::{FilterOptions, Query, StoreError};

const TEAM_JOIN_CLOSED: &str = "LEFT JOIN user_teams ut ON ut.workspace = x.workspace \
    AND ut.user_id = x.closed_by AND x.closed_at >= ut.valid_from AND x.closed_at < ut.valid_to";
const TEAM_JOIN_MESSAGE: &str = "LEFT JOIN user_teams ut ON ut.workspace = x.workspace \
    AND ut.user_id = x.user_id AND x.at_us >= ut.valid_from AND x.at_us < ut.valid_to";

/// The message types of the tagged dataset, as a condition on `x`.
macro_rules! tagged_types {
    () => {
        "x.message_type IN ('facebook_message_tag', 'whatsapp_template')"
    };
}

/// Where a dataset's rows live: table (joined to user teams only when a filter needs
/// them: the join costs a lookup per row), row filter, row timestamp, and the team join
/// for log columns, applied to a page's rows only.
struct Source {
    from: String,
    team_join: &'static str,
    rows: &'static str,
    t: &'static str,
    /// Whether `from` is a cube (`cubes.rs`): each row counts `x.n` fact rows.
    cube: bool,
}

impl Source {
    /// The team join a log's columns need after its rows are picked: only when they show
    /// a team.
    fn team_join_for(&self, cols: &[&str]) -> &'static str {
        if cols.contains(&"ut.team_id") {
            self.team_join
        } else {
            ""
        }
    }
}

fn source(ds: Dataset, filters: &Filters) -> Source {
    let (table, join, rows, t) = match ds {
        Dataset::Opened => ("conversations", "", "TRUE", "x.opened_at"),
        Dataset::Closed => (
            "conversations",
            TEAM_JOIN_CLOSED,
            "x.closed_at IS NOT NULL",
            "x.closed_at",
        ),
        Dataset::Incoming => ("messages", "", "x.incoming", "x.at_us"),
        Dataset::Outgoing => ("messages", TEAM_JOIN_MESSAGE, "NOT x.incoming", "x.at_us"),
        // Reports count tagged messages in the outgoing scan (`TAGGED`); no log reads
        // this dataset.
        Dataset::Tagged => (
            "messages",
            TEAM_JOIN_MESSAGE,
            concat!("NOT x.incoming AND ", tagged_types!()),
            "x.at_us",
        ),
        Dataset::Failed => (
            "messages",
            TEAM_JOIN_MESSAGE,
            "NOT x.incoming AND x.status = 'failed'",
            "x.failed_at",
        ),
        Dataset::Added => ("activities", "", "x.kind = 'added'", "x.at_us"),
        Dataset::Deleted => ("activities", "", "x.kind = 'deleted'", "x.at_us"),
        Dataset::Merged => ("activities", "", "x.kind = 'merged'", "x.at_us"),
        Dataset::Connected => ("connections", "", "TRUE", "x.at_us"),
        Dataset::Assignments => ("assignments", "", "TRUE", "x.at_us"),
    };
    let team_filter = filters.0.contains_key("team") || filters.0.contains_key("closed_by_team");
    Source {
        from: format!("{table} x {}", if team_filter { join } else { "" }),
        team_join: join,
        rows,
        t,
        cube: false,
    }
}

/// Whether every row's slot (`cubes::SLOT_MICROS`) lies in the same bucket, range and
/// local hour as the row: the range's ends, every bucket edge, every change of UTC
/// offset in the range and every offset fall on slot edges.
fn slot_aligned(range: &Range, buckets: &[Bucket]) -> bool {
    let edge = |micros: i64| micros.rem_euclid(crate::cubes::SLOT_MICROS) == 0;
    edge(range.start.micros())
        && edge(range.end.micros())
        && buckets
            .iter()
            .all(|b| edge(b.start.micros()) && edge(b.end.micros()))
        && range
            .offset_segments()
            .iter()
            .enumerate()
            .all(|(i, (from, off))| (i == 0 || edge(from.micros())) && edge(off * 1_000_000))
}

/// Where a dataset's rows are counted: its cube, when it has every filter's and every
/// key's dimension and the range falls on its slots (`aligned`), else its facts.
fn counted_source(q: &Query, ds: Dataset, needs: &Needs, aligned: bool) -> Source {
    cube_source(q, ds, needs, aligned).unwrap_or_else(|| source(ds, &q.filters))
}

fn cube_source(q: &Query, ds: Dataset, needs: &Needs, aligned: bool) -> Option<Source> {
    let cube = crate::cubes::of(ds)?;
    let served = aligned
        && q.filters
            .0
            .keys()
            .all(|name| name != "contact" && cube.has(dimension(ds, name)))
        && needs.keys.iter().all(|(key, tagged)| {
            cube.has(key_column(*key)) && (!tagged || cube.has("x.message_type"))
        });
    served.then(|| Source {
        from: format!("{} x", cube.table),
        team_join: "",
        rows: "TRUE",
        t: "x.slot",
        cube: true,
    })
}

/// The column of a filter's dimension in a dataset.
fn dimension(ds: Dataset, name: &str) -> &'static str {
    use Dataset::*;
    match (ds, name) {
        (Opened | Closed, "closed_source") => "x.closed_source",
        (Opened | Closed, "first_assignee") => "x.first_assignee",
        (Opened | Closed, "first_response_by") => "x.first_response_by",
        (Opened | Closed, "last_assignee") => "x.last_assignee",
        (Opened | Closed, "closed_by_team") => "ut.team_id",
        (Opened | Closed, "closed_by_user") => "x.closed_by",
        (Opened | Closed, "category") => "x.category",
        (Opened | Closed, "opened_channel") => "x.opened_channel",
        (Opened | Closed, "opened_source") => "x.opened_source",
        (Opened | Closed, "contact_type") => "x.contact_type",
        (Opened | Closed | Assignments, "conversation") => "x.conversation_id",
        (_, "contact") => "x.contact_id",
        (_, "channel") => "x.channel_id",
        (_, "source") => "x.source",
        (_, "user") => "x.user_id",
        (_, "type") => "x.message_type",
        (_, "team") => "ut.team_id",
        (_, "broadcast") => "x.broadcast",
        (_, "assignee") => "x.new_assignee",
        (_, "assigned_by") => "x.assigned_by",
        _ => unreachable!("filter {name} checked against the component's accepted filters"),
    }
}

fn key_column(key: Key) -> &'static str {
    match key {
        Key::ContactType => "x.contact_type",
        Key::OpenedSource => "x.opened_source",
        Key::OpenedChannel => "x.opened_channel",
        Key::Category => "x.category",
        Key::ClosedSource => "x.closed_source",
        Key::Channel => "x.channel_id",
        Key::MessageSource | Key::ContactSource | Key::AssignSource => "x.source",
        Key::MessageType => "x.message_type",
        Key::Subtype => "x.subtype",
        Key::Status => "x.status",
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The WHERE clause of a dataset over a range with filters, and its parameters.
fn where_clause(q: &Query, ds: Dataset, src: &Source) -> (String, Vec<Value>) {
    let mut params = vec![Value::Text(q.workspace.id.clone())];
    let mut sql = format!(
        "x.workspace = ? AND {} AND {t} >= {} AND {t} < {}",
        src.rows,
        q.range.start.micros(),
        q.range.end.micros(),
        t = src.t
    );
    for (name, values) in &q.filters.0 {
        let missing = values.iter().any(|v| v == MISSING);
        let given: Vec<&String> = values.iter().filter(|v| *v != MISSING).collect();
        let mut alternatives = Vec::new();
        if name == "contact" {
            // Each row carries its contacts' folded names (migration 8).
            let columns: &[(&str, &str)] = if ds == Dataset::Merged {
                &[
                    ("x.contact_id", "x.name_folded"),
                    ("x.merged_contact_id", "x.merged_name_folded"),
                ]
            } else {
                &[("x.contact_id", "x.name_folded")]
            };
            if !given.is_empty() {
                for (id, folded) in columns {
                    alternatives.push(format!("{id} IN ({})", placeholders(given.len())));
                    params.extend(given.iter().map(|v| Value::Text((*v).clone())));
                    for v in &given {
                        alternatives.push(format!("contains({folded}, ?)"));
                        params.push(Value::Text(fold_case(v)));
                    }
                }
            }
        } else {
            let col = dimension(ds, name);
            if !given.is_empty() {
                alternatives.push(format!("{col} IN ({})", placeholders(given.len())));
                params.extend(given.iter().map(|v| Value::Text((*v).clone())));
            }
            if missing {
                // '' is how an unassignment is kept as a last assignee.
                alternatives.push(if name == "last_assignee" {
                    format!("({col} IS NULL OR {col} = '')")
                } else {
                    format!("{col} IS NULL")
                });
            }
        }
        if alternatives.is_empty() {
            alternatives.push("FALSE".to_string());
        }
        sql.push_str(&format!(" AND ({})", alternatives.join(" OR ")));
    }
    (sql, params)
}

fn buckets_sql(buckets: &[Bucket]) -> String {
    let rows: Vec<String> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "({i}, {}::BIGINT, {}::BIGINT)",
                b.start.micros(),
                b.end.micros()
            )
        })
        .collect();
    format!("(VALUES {}) b(idx, s, e)", rows.join(", "))
}

/// Whole weeks added before taking weekday and hour, so that division never meets a
/// negative number; a whole number of weeks changes neither.
const WEEK_SHIFT_MICROS: i64 = 200_000 * 7 * 86_400 * 1_000_000;

fn local_micros_sql(range: &Range, t: &str) -> String {
    let segments = range.offset_segments();
    // The offset in force at t: the last segment starting at or before it.
    let mut offset = segments[0].1.to_string();
    if segments.len() > 1 {
        let mut case = String::from("CASE");
        for (from, off) in segments.iter().skip(1).rev() {
            case.push_str(&format!(" WHEN {t} >= {} THEN {off}", from.micros()));
        }
        offset = format!("{case} ELSE {offset} END");
    }
    format!("({t} + ({offset})::BIGINT * 1000000 + {WEEK_SHIFT_MICROS})")
}

/// How a dataset's rows find their bucket: by arithmetic on the local instant when that
/// provably agrees with `Range::buckets` everywhere in the range, else by a range join.
enum Bucketing {
    /// A SQL expression of `{t}` giving the bucket index.
    Arithmetic(String),
    Join,
}

const DAY_MICROS: i64 = 86_400_000_000;
const HOUR_MICROS: i64 = 3_600_000_000;

/// The local instant (shifted by `WEEK_SHIFT_MICROS`) as `local_micros_sql` computes it.
fn local_shifted(t: i64, segments: &[(Instant, i64)]) -> i64 {
    let offset = segments
        .iter()
        .rev()
        .find(|(from, _)| from.micros() <= t)
        .map_or(segments[0].1, |(_, off)| *off);
    t + offset * 1_000_000 + WEEK_SHIFT_MICROS
}

/// The bucket index the arithmetic form gives, unshifted by the first bucket's.
fn arithmetic_index(kind: BucketKind, range: &Range, segments: &[(Instant, i64)], t: i64) -> i64 {
    match kind {
        BucketKind::Hour => (t - range.start.micros()).div_euclid(HOUR_MICROS),
        BucketKind::Day => local_shifted(t, segments).div_euclid(DAY_MICROS),
        BucketKind::Week => (local_shifted(t, segments).div_euclid(DAY_MICROS) + 3).div_euclid(7),
    }
}

fn bucketing(range: &Range, buckets: &[Bucket]) -> Bucketing {
    let segments = range.offset_segments();
    let kind = range.bucket;
    let base = arithmetic_index(kind, range, &segments, range.start.micros());
    // Both functions are non-decreasing between consecutive bucket starts and offset
    // changes, so agreeing at both ends of every such piece means agreeing everywhere.
    let mut cuts: Vec<i64> = buckets.iter().map(|b| b.start.micros()).collect();
    cuts.extend(segments.iter().skip(1).map(|(from, _)| from.micros()));
    cuts.push(range.end.micros());
    cuts.sort_unstable();
    cuts.dedup();
    for w in cuts.windows(2) {
        let (p, q) = (w[0], w[1] - 1);
        let Some(idx) = buckets
            .iter()
            .position(|b| b.start.micros() <= p && p < b.end.micros())
        else {
            return Bucketing::Join;
        };
        for t in [p, q] {
            if arithmetic_index(kind, range, &segments, t) - base != idx as i64 {
                return Bucketing::Join;
            }
        }
    }
    let expr = match kind {
        BucketKind::Hour => format!("(({{t}} - {}) // {HOUR_MICROS})", range.start.micros()),
        BucketKind::Day => format!(
            "({} // {DAY_MICROS} - {base})",
            local_micros_sql(range, "{t}")
        ),
        BucketKind::Week => format!(
            "(({} // {DAY_MICROS} + 3) // 7 - {base})",
            local_micros_sql(range, "{t}")
        ),
    };
    Bucketing::Arithmetic(expr)
}

/// Per key its per-bucket counts, ordered as SQL's ORDER BY would: keys ascending, the
/// missing key (`(true, None)`) last.
type KeyedBuckets = BTreeMap<(bool, Option<String>), Vec<i64>>;

/// The outgoing messages of the tagged dataset (`outgoing_by_subtype`), counted by the
/// outgoing scan as a filtered count.
const TAGGED: &str = tagged_types!();

/// A breakdown's key, and whether it counts only the `TAGGED` rows of its dataset.
type KeySpec = (Key, bool);

/// Where a component's rows are counted: the dataset scanned, and for the tagged
/// dataset the outgoing scan with its filtered count.
fn scanned(ds: Dataset) -> (Dataset, bool) {
    match ds {
        Dataset::Tagged => (Dataset::Outgoing, true),
        other => (other, false),
    }
}

/// What the components of a report count in one dataset.
#[derive(Default)]
struct Needs {
    totals: bool,
    keys: Vec<KeySpec>,
    heatmap: bool,
}

/// One dataset's counts: per-bucket totals, per key its per-bucket counts, the heatmap.
struct Counts {
    totals: Vec<i64>,
    keyed: Vec<(KeySpec, KeyedCounts)>,
    heat: [[i64; 24]; 7],
}

/// Counts one dataset for every component that reads it, in one scan: one hash
/// aggregate over (bucket, every key), rolled up here into per-bucket totals and per-key
/// counts (a few thousand groups at most: keys are channels and enumerations), and, for
/// a heatmap, a second grouping set over the local weekday and hour. One aggregate
/// instead of a grouping set per key: DuckDB builds a hash table per grouping set.
fn count_dataset(
    conn: &Connection,
    q: &Query,
    buckets: &[Bucket],
    how: &Bucketing,
    ds: Dataset,
    needs: &Needs,
    aligned: bool,
) -> Result<Counts, StoreError> {
    let n = buckets.len();
    let src = counted_source(q, ds, needs, aligned);
    let (cond, params) = where_clause(q, ds, &src);
    let (bucket_expr, join) = match how {
        Bucketing::Arithmetic(expr) => (expr.replace("{t}", src.t), String::new()),
        Bucketing::Join => (
            "b.idx".to_string(),
            format!(
                "JOIN {} ON {t} >= b.s AND {t} < b.e",
                buckets_sql(buckets),
                t = src.t
            ),
        ),
    };
    let local = local_micros_sql(&q.range, src.t);
    let nk = needs.keys.len();
    let mut inner = vec![format!("{bucket_expr} AS b")];
    for (i, (key, _)) in needs.keys.iter().enumerate() {
        inner.push(format!("{} AS k{i}", key_column(*key)));
    }
    let (count, tagged_count) = if src.cube {
        inner.push("x.n AS n".to_string());
        (
            "sum(n)::BIGINT",
            "coalesce(sum(n) FILTER (WHERE tagged), 0)::BIGINT",
        )
    } else {
        ("count(*)", "count(*) FILTER (WHERE tagged)")
    };
    let tagged = needs.keys.iter().any(|(_, t)| *t);
    inner.push(if tagged {
        format!("{TAGGED} AS tagged")
    } else {
        "FALSE AS tagged".to_string()
    });
    let keys: String = (0..nk).map(|i| format!(", k{i}")).collect();
    let by_bucket = needs.totals || nk > 0;
    let (grouping, l) = if needs.heatmap {
        inner.push(format!(
            "((({local}) // {DAY_MICROS}) + 3) % 7 * 24 + (({local}) % {DAY_MICROS}) // {HOUR_MICROS} AS l"
        ));
        let sets = if by_bucket {
            format!("(b{keys}), (l)")
        } else {
            "(l)".to_string()
        };
        (format!("GROUPING SETS ({sets})"), "GROUPING(l), l")
    } else {
        (format!("b{keys}"), "1, NULL")
    };
    let b = if by_bucket { "b" } else { "NULL" };
    let sql = format!(
        "SELECT {l}, {b}{keys}, {count}, {tagged_count} FROM (
           SELECT {inner} FROM {from} {join} WHERE {cond}
         ) GROUP BY {grouping}",
        inner = inner.join(", "),
        from = src.from,
    );
    let mut out = Counts {
        totals: vec![0; n],
        keyed: needs.keys.iter().map(|k| (*k, Vec::new())).collect(),
        heat: [[0; 24]; 7],
    };
    let mut keyed: Vec<KeyedBuckets> = vec![BTreeMap::new(); nk];
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(duckdb::params_from_iter(params))?;
    // Columns: GROUPING(l) (0 for a heatmap row), l, b, k_i for each key, count, tagged
    // count.
    while let Some(r) = rows.next()? {
        let count: i64 = r.get(nk + 3)?;
        let tagged_count: i64 = r.get(nk + 4)?;
        if r.get::<_, i64>(0)? == 0 {
            let l: i64 = r.get(1)?;
            out.heat[(l / 24) as usize][(l % 24) as usize] = count;
            continue;
        }
        let b = r.get::<_, i64>(2)? as usize;
        out.totals[b] += count;
        for (i, (_, only_tagged)) in needs.keys.iter().enumerate() {
            let count = if *only_tagged { tagged_count } else { count };
            if count > 0 {
                let k: Option<String> = r.get(3 + i)?;
                keyed[i]
                    .entry((k.is_none(), k))
                    .or_insert_with(|| vec![0; n])[b] += count;
            }
        }
    }
    for (slot, map) in out.keyed.iter_mut().zip(keyed) {
        // Keys in order, the missing key last, as SQL's ORDER BY would give them.
        slot.1 = map.into_iter().map(|((_, k), v)| (k, v)).collect();
    }
    Ok(out)
}

pub(crate) fn directory(conn: &Connection, ws: &str) -> Result<Directory, StoreError> {
    Ok(Directory::from_events(&load_directory_events(conn, ws)?))
}

/// The values offered for the workspace's filters.
pub(crate) fn filter_options(conn: &Connection, ws: &str) -> Result<FilterOptions, StoreError> {
    let dir = directory(conn, ws)?;
    let max = FilterOptions::MAX;
    let distinct = |sql: &str| -> Result<Vec<String>, StoreError> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map(duckdb::params![ws, max as i64], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let mut channels = dir.offered_channels();
    channels.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let cap = |mut v: Vec<(String, String)>| {
        v.truncate(max);
        v
    };
    Ok(FilterOptions {
        users: cap(dir.offered_users()),
        teams: cap(dir.offered_teams()),
        channels: cap(channels),
        categories: distinct(
            "SELECT DISTINCT category FROM conversations WHERE workspace = ? \
             AND category IS NOT NULL ORDER BY 1 LIMIT ?",
        )?,
        broadcasts: distinct(
            "SELECT DISTINCT broadcast FROM messages WHERE workspace = ? \
             AND broadcast IS NOT NULL ORDER BY 1 LIMIT ?",
        )?,
    })
}

/// A report; `cubes` lets datasets be counted from their cubes where they can be.
pub(crate) fn report(conn: &Connection, q: &Query, cubes: bool) -> Result<ReportDoc, StoreError> {
    let dir = directory(conn, &q.workspace.id)?;
    let buckets = q.range.buckets();
    let how = bucketing(&q.range, &buckets);
    let aligned = cubes && slot_aligned(&q.range, &buckets);
    // What each dataset must count, for the components whose filters apply.
    let mut needs: Vec<(Dataset, Needs)> = Vec::new();
    fn need(needs: &mut Vec<(Dataset, Needs)>, ds: Dataset) -> &mut Needs {
        let i = match needs.iter().position(|(d, _)| *d == ds) {
            Some(i) => i,
            None => {
                needs.push((ds, Needs::default()));
                needs.len() - 1
            }
        };
        &mut needs[i].1
    }
    for c in q.report.components() {
        if !q.filters.applicable(c.accepts) {
            continue;
        }
        match c.shape {
            Shape::Metric(ds) => need(&mut needs, ds).totals = true,
            Shape::Bar(series) => {
                for (_, _, ds) in series {
                    need(&mut needs, *ds).totals = true;
                }
            }
            Shape::Heatmap(ds) => need(&mut needs, ds).heatmap = true,
            Shape::Breakdown(ds, key) | Shape::Line(ds, key) => {
                let (ds, tagged) = scanned(ds);
                let keys = &mut need(&mut needs, ds).keys;
                if !keys.contains(&(key, tagged)) {
                    keys.push((key, tagged));
                }
            }
        }
    }
    let counts: Vec<Counts> = needs
        .iter()
        .map(|(ds, n)| count_dataset(conn, q, &buckets, &how, *ds, n, aligned))
        .collect::<Result<_, _>>()?;
    let of = |ds: Dataset| -> &Counts {
        &counts[needs.iter().position(|(d, _)| *d == ds).expect("counted")]
    };
    let mut data = Vec::new();
    for c in q.report.components() {
        if !q.filters.applicable(c.accepts) {
            data.push(None);
            continue;
        }
        let d = match c.shape {
            Shape::Metric(ds) => ComponentData::Metric(of(ds).totals.iter().sum()),
            Shape::Bar(series) => ComponentData::Bar(
                series
                    .iter()
                    .map(|(_, _, ds)| of(*ds).totals.clone())
                    .collect(),
            ),
            Shape::Heatmap(ds) => ComponentData::Heatmap(Box::new(of(ds).heat)),
            Shape::Breakdown(ds, key) | Shape::Line(ds, key) => {
                let (ds, tagged) = scanned(ds);
                ComponentData::Breakdown(
                    of(ds)
                        .keyed
                        .iter()
                        .find(|(k, _)| *k == (key, tagged))
                        .map(|(_, v)| v.clone())
                        .expect("counted"),
                )
            }
        };
        data.push(Some(d));
    }
    Ok(doc::report_doc(
        q.report,
        &q.workspace.id,
        &q.workspace.timezone,
        &q.range,
        &q.filters,
        &data,
        &dir,
    ))
}

/// The SELECT list of a log, in its column order, and its tie-break columns.
fn log_columns(log: Log) -> (&'static [&'static str], &'static [&'static str]) {
    match log {
        Log::Conversations => (
            &[
                "x.closed_at",
                "x.closed_source",
                "x.closed_by",
                "ut.team_id",
                "x.opened_at",
                "x.opened_source",
                "x.opened_channel",
                "x.conversation_id",
                "x.contact_id",
                "x.contact_name",
                "x.first_assignment_at",
                "x.first_assignee",
                "x.first_response_at",
                "x.first_response_by",
                "x.last_assignment_at",
                "x.last_assignee",
                "x.time_to_first_assignment",
                "x.first_response_time",
                "x.first_assignment_to_first_response",
                "x.last_assignment_to_response",
                "x.resolution_time",
                "x.first_assignment_to_close",
                "x.last_assignment_to_close",
                "x.average_response_time",
                "x.assignments",
                "x.incoming_messages",
                "x.outgoing_messages",
                "x.responses",
                "x.category",
                "x.summary",
            ],
            &["x.conversation_id"],
        ),
        Log::Incoming => (
            &[
                "x.at_us",
                "x.contact_id",
                "x.contact_name",
                "x.channel_id",
                "x.content",
            ],
            &["x.message_id"],
        ),
        Log::Outgoing => (
            &[
                "x.at_us",
                "x.source",
                "x.user_id",
                "x.contact_id",
                "x.contact_name",
                "x.delivered_at",
                "x.read_at",
                "x.channel_id",
                "x.message_type",
                "x.subtype",
                "x.content",
            ],
            &["x.message_id"],
        ),
        Log::Failed => (
            &[
                "x.failed_at",
                "x.source",
                "x.user_id",
                "x.contact_id",
                "x.contact_name",
                "x.channel_id",
                "x.message_type",
                "x.subtype",
                "x.content",
                "x.error",
            ],
            &["x.message_id"],
        ),
        Log::Added | Log::Deleted | Log::Merged => (
            &[
                "x.at_us",
                "x.contact_id",
                "x.contact_name",
                "x.source",
                "x.user_id",
            ],
            &["x.event_id"],
        ),
        Log::Connected => (
            &[
                "x.at_us",
                "x.contact_id",
                "x.contact_name",
                "x.channel_id",
                "x.source",
                "x.user_id",
            ],
            &["x.contact_id", "x.channel_id"],
        ),
        Log::Assignments => (
            &[
                "x.at_us",
                "x.conversation_id",
                "x.contact_id",
                "x.contact_name",
                "x.previous_assignee",
                "coalesce(x.new_assignee, '')",
                "x.source",
                "x.assigned_by",
            ],
            &["x.event_id"],
        ),
    }
}

/// Refuses filters `log`'s rows have no dimension for (SPEC §5): a log page and an
/// export check it first; the HTTP API before it starts streaming an export.
pub fn check_log_filters(q: &Query, log: Log) -> Result<(), StoreError> {
    match q.filters.first_not_applicable(log.accepts()) {
        Some(filter) => Err(StoreError::FiltersNotApplicable {
            log: log.wire(),
            filter: filter.to_string(),
        }),
        None => Ok(()),
    }
}

/// Rows whose instants lie in `[oldest, newest]`: for a page, `limit` of them past the
/// first `skip` (as `log_rows` finds them); for an export, all.
struct Window {
    oldest: i64,
    newest: i64,
    limit: Option<u64>,
    skip: usize,
}

/// The SQL of a log's rows in `window`, in log order (newest first, ties by row id
/// ascending): one page's, or one of the export's windows.
fn log_sql(q: &Query, log: Log, window: Window) -> (String, Vec<Value>) {
    let ds = log.dataset();
    let src = source(ds, &q.filters);
    let (cond, params) = where_clause(q, ds, &src);
    let (cols, ties) = log_columns(log);
    let within = format!(
        " AND {} BETWEEN {} AND {}",
        src.t, window.oldest, window.newest
    );
    let tail = window.limit.map_or(String::new(), |limit| {
        format!(" LIMIT {limit} OFFSET {}", window.skip)
    });
    let sql = format!(
        "SELECT {cols} FROM (
           SELECT x.* FROM {from} WHERE {cond}{within}
         ) x {team} ORDER BY {order}{tail}",
        cols = cols.join(", "),
        from = src.from,
        team = src.team_join_for(cols),
        order = log_order(src.t, ties),
    );
    (sql, params)
}

/// Reads one window of a log's rows in two steps that each read little:
/// 1. the instants of the rows up to the window's end, newest first (one narrow column;
///    `from`, when the dataset's cube could tell it, bounds them to the newest slots that
///    hold enough rows);
/// 2. the window's rows whole: those between its first and last instant, ordered, past
///    the rows newer than its first instant (a page's rows lie scattered over the table,
///    which is laid out by contact, so only its instants find them cheaply). Rows carry
///    their contact's name, so no join reads the contacts.
fn log_rows(
    conn: &Connection,
    q: &Query,
    log: Log,
    (offset, limit): (u64, u64),
    bound: Bound,
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let ds = log.dataset();
    let src = source(ds, &q.filters);
    let (cond, params) = where_clause(q, ds, &src);
    let end = offset + limit;
    let instants = |from: Option<i64>| -> Result<Vec<i64>, StoreError> {
        let bound = from.map_or(String::new(), |f| format!(" AND {} >= {f}", src.t));
        let sql = format!(
            "SELECT {t} FROM {from} WHERE {cond}{bound} ORDER BY {t} DESC LIMIT {end}",
            t = src.t,
            from = src.from,
        );
        let mut stmt = conn.prepare(&sql)?;
        let v = stmt
            .query_map(duckdb::params_from_iter(&params), |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(v)
    };
    let times = match bound {
        Bound::Newest(times) => times,
        Bound::None => instants(None)?,
        Bound::From(from) => {
            let times = instants(Some(from))?;
            if (times.len() as u64) < end {
                // The cube promised more rows since `from`: count them all (never
                // wrong, only slower).
                instants(None)?
            } else {
                times
            }
        }
    };
    crate::phase("instants");
    let Some(&newest) = times.get(offset as usize) else {
        return Ok(Vec::new());
    };
    let oldest = *times.last().expect("a row");
    let newer = times.iter().take_while(|&&t| t > newest).count();
    let window = Window {
        oldest,
        newest,
        limit: Some(limit),
        skip: offset as usize - newer,
    };
    let (sql, params) = log_sql(q, log, window);
    let types = log.columns();
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(duckdb::params_from_iter(&params), |r| {
        let mut cells = Vec::with_capacity(types.len());
        for (i, (_, t)) in types.iter().enumerate() {
            cells.push(match t {
                ColType::Time | ColType::Duration | ColType::Int => {
                    r.get::<_, Option<i64>>(i)?.map_or(Cell::Null, Cell::Int)
                }
                _ => r
                    .get::<_, Option<String>>(i)?
                    .map_or(Cell::Null, Cell::Text),
            });
        }
        Ok(cells)
    })?;
    let out = rows.collect::<Result<_, _>>()?;
    crate::phase("rows");
    Ok(out)
}

/// A log's order: newest first, ties by row id ascending.
fn log_order(t: &str, ties: &[&str]) -> String {
    std::iter::once(format!("{t} DESC"))
        .chain(ties.iter().map(|t| format!("{t} ASC")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// From how many rows up to a page's end its instants are bounded by the cube's slots.
const SLOT_BOUND_FROM: u64 = 500;

/// A log's number of rows, summed from the dataset's cube where it can be (`cubes`),
/// and then also the start of the newest slots that hold at least `needed` rows.
fn count_rows(
    conn: &Connection,
    q: &Query,
    ds: Dataset,
    cubes: bool,
    needed: u64,
) -> Result<(u64, Bound), StoreError> {
    let aligned = cubes && slot_aligned(&q.range, &q.range.buckets());
    let src = counted_source(q, ds, &Needs::default(), aligned);
    let (cond, params) = where_clause(q, ds, &src);
    // Summed per slot only when the window reaches deep enough for the bound to pay
    // for the grouping (page 1 reads the newest rows cheaply anyway).
    if !src.cube {
        // One scan of the facts counts the rows and keeps the newest `needed` instants
        // (DuckDB's `max(x, n)`, newest first), which the page's rows are read by.
        let sql = format!(
            "SELECT count(*), max({t}, {newest}) FROM {from} WHERE {cond}",
            t = src.t,
            from = src.from,
            // A page past the cap reads no rows: it needs no instants either.
            newest = needed.clamp(1, doc::LOG_CAP),
        );
        let (n, newest): (i64, Value) =
            conn.query_row(&sql, duckdb::params_from_iter(params), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let instants = match newest {
            Value::List(v) => v
                .into_iter()
                .map(|t| match t {
                    Value::BigInt(t) => Ok(t),
                    other => Err(StoreError::Rows(format!("an instant {other:?}"))),
                })
                .collect::<Result<Vec<i64>, _>>()?,
            _ => Vec::new(),
        };
        return Ok((n as u64, Bound::Newest(instants)));
    }
    if needed < SLOT_BOUND_FROM {
        let sql = format!(
            "SELECT coalesce(sum(x.n), 0)::BIGINT FROM {} WHERE {cond}",
            src.from
        );
        let n: i64 = conn.query_row(&sql, duckdb::params_from_iter(params), |r| r.get(0))?;
        return Ok((n as u64, Bound::None));
    }
    let sql = format!(
        "SELECT x.slot, sum(x.n)::BIGINT FROM {} WHERE {cond} GROUP BY x.slot ORDER BY x.slot DESC",
        src.from
    );
    let mut stmt = conn.prepare(&sql)?;
    let (mut total, mut from) = (0u64, None);
    for slot in stmt.query_map(duckdb::params_from_iter(params), |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (slot, n) = slot?;
        total += n as u64;
        if from.is_none() && total >= needed {
            from = Some(slot);
        }
    }
    Ok((total, from.map_or(Bound::None, Bound::From)))
}

/// What counting a log's rows learnt of the instants its page needs.
enum Bound {
    None,
    /// The page's rows are no older than this instant (a cube's slot start).
    From(i64),
    /// The newest instants, newest first, as many as the page's end (or all).
    Newest(Vec<i64>),
}

/// A log page; `cubes` lets its total be summed from the dataset's cube.
pub(crate) fn log_page(
    conn: &Connection,
    q: &Query,
    log: Log,
    page: u64,
    per_page: u64,
    cubes: bool,
) -> Result<LogPage, StoreError> {
    check_log_filters(q, log)?;
    crate::phase("log start");
    let dir = directory(conn, &q.workspace.id)?;
    crate::phase("directory");
    let (offset, limit) = doc::page_window(page, per_page);
    let (total, bound) = count_rows(conn, q, log.dataset(), cubes, offset + limit)?;
    crate::phase("count");
    let rows = if limit == 0 || offset >= total {
        Vec::new()
    } else {
        log_rows(conn, q, log, (offset, limit), bound)?
    };
    let fmt = RowFormatter {
        log,
        range: &q.range,
        dir: &dir,
    };
    Ok(LogPage {
        report: q.report.wire(),
        log: log.wire(),
        range: RangeDoc::new(&q.range),
        filters: doc::filters_doc(&q.filters),
        total,
        truncated: total > doc::LOG_CAP,
        page,
        per_page,
        columns: log.columns().iter().map(|(n, _)| *n).collect(),
        rows: rows.iter().map(|cells| fmt.json(cells)).collect(),
    })
}

/// Rows an export sorts at once, about: its rows are read a window of instants at a time.
pub(crate) const EXPORT_WINDOW_ROWS: u64 = 100_000;

/// The export's windows of instants, newest first: inclusive `[oldest, newest]` bounds
/// that together cover every row of the log once, each holding about `rows` rows (cut at
/// approximate quantiles of the instants: one scan, in constant memory). Since a log is
/// ordered by instant first, the windows' rows, each window sorted, are the log in order.
fn export_windows(
    conn: &Connection,
    q: &Query,
    log: Log,
    rows: u64,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let ds = log.dataset();
    let src = source(ds, &q.filters);
    let (cond, params) = where_clause(q, ds, &src);
    let (n, oldest, newest): (i64, Option<i64>, Option<i64>) = conn.query_row(
        &format!(
            "SELECT count(*), min({t}), max({t}) FROM {from} WHERE {cond}",
            t = src.t,
            from = src.from
        ),
        duckdb::params_from_iter(&params),
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let (Some(oldest), Some(newest)) = (oldest, newest) else {
        return Ok(Vec::new());
    };
    let k = (n as u64).div_ceil(rows.max(1));
    let mut edges = vec![oldest - 1];
    if k > 1 {
        let fractions: Vec<String> = (1..k).map(|i| format!("{}", i as f64 / k as f64)).collect();
        let mut stmt = conn.prepare(&format!(
            "SELECT unnest(approx_quantile({t}, [{f}])) FROM {from} WHERE {cond}",
            t = src.t,
            f = fractions.join(", "),
            from = src.from
        ))?;
        let mut cuts = stmt
            .query_map(duckdb::params_from_iter(&params), |r| r.get::<_, i64>(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        cuts.sort_unstable();
        cuts.dedup();
        edges.extend(cuts.into_iter().filter(|&c| oldest <= c && c < newest));
    }
    edges.push(newest);
    Ok(edges.windows(2).rev().map(|w| (w[0] + 1, w[1])).collect())
}

/// Streams every row of a log as CSV fields: a window of instants at a time (about
/// `window_rows` rows, `export_windows`), each one query whose result DuckDB hands over in
/// Arrow batches as they are produced, so memory stays constant whatever the log's size
/// (one query for all sorted a million rows in DuckDB's memory at once).
///
/// Formatting (local times, durations, labels) costs more than DuckDB's sort and scan,
/// so `FORMATTERS` threads do it: this one pulls batches, hands them out in turn, and
/// feeds the sink their fields in the same order. A few batches are in flight at most,
/// and their field buffers are reused.
pub(crate) fn export(
    conn: &Connection,
    q: &Query,
    log: Log,
    window_rows: u64,
    sink: &mut dyn FnMut(&[String]) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    use duckdb::arrow::record_batch::RecordBatch;
    use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

    const FORMATTERS: usize = 2;
    /// Batches handed to one formatter and not yet fed to the sink, at most.
    const IN_FLIGHT: usize = 2;
    struct Formatter {
        batches: SyncSender<RecordBatch>,
        fields: Receiver<Result<Vec<String>, StoreError>>,
        recycle: Sender<Vec<String>>,
    }

    check_log_filters(q, log)?;
    let dir = directory(conn, &q.workspace.id)?;
    let fmt = RowFormatter {
        log,
        range: &q.range,
        dir: &dir,
    };
    let windows = export_windows(conn, q, log, window_rows)?;
    let width = log.columns().len();
    let mut n = 0u64;
    std::thread::scope(|scope| {
        let fmt = &fmt;
        let formatters: Vec<Formatter> = (0..FORMATTERS)
            .map(|_| {
                let (to_format, batches_in) = sync_channel::<RecordBatch>(IN_FLIGHT);
                let (to_sink, fields) = channel();
                let (recycle, recycled) = channel::<Vec<String>>();
                scope.spawn(move || {
                    for batch in batches_in {
                        let mut fields = recycled.try_recv().unwrap_or_default();
                        let done = format_batch(fmt, &batch, width, &mut fields).map(|()| fields);
                        if to_sink.send(done).is_err() {
                            break;
                        }
                    }
                });
                Formatter {
                    batches: to_format,
                    fields,
                    recycle,
                }
            })
            .collect();
        let (mut sent, mut fed) = (0usize, 0usize);
        // Feeds the sink the oldest batch's fields; `wait`: until they are formatted.
        let mut feed = |fed: &mut usize, wait: bool| -> Result<bool, StoreError> {
            let f = &formatters[*fed % FORMATTERS];
            let fields = if wait {
                f.fields.recv().expect("a formatter answers each batch")
            } else {
                match f.fields.try_recv() {
                    Ok(fields) => fields,
                    Err(_) => return Ok(false),
                }
            }?;
            for row in fields.chunks(width) {
                sink(row)?;
                n += 1;
            }
            // The formatter may be gone already (an error ends the export).
            let _ = f.recycle.send(fields);
            *fed += 1;
            Ok(true)
        };
        for (oldest, newest) in windows {
            let window = Window {
                oldest,
                newest,
                limit: None,
                skip: 0,
            };
            let (sql, params) = log_sql(q, log, window);
            let mut stmt = conn.prepare(&sql)?;
            for batch in stmt.stream_arrow(duckdb::params_from_iter(params))? {
                formatters[sent % FORMATTERS]
                    .batches
                    .send(batch?)
                    .expect("formatters live while batches are sent");
                sent += 1;
                while fed < sent {
                    let wait = sent - fed > FORMATTERS * IN_FLIGHT;
                    if !feed(&mut fed, wait)? {
                        break;
                    }
                }
            }
        }
        while fed < sent {
            feed(&mut fed, true)?;
        }
        crate::phase("export rows");
        Ok::<(), StoreError>(())
    })?;
    Ok(n)
}

/// The CSV fields of a batch's rows, one after another, written into `out`'s strings.
fn format_batch(
    fmt: &RowFormatter,
    batch: &duckdb::arrow::record_batch::RecordBatch,
    width: usize,
    out: &mut Vec<String>,
) -> Result<(), StoreError> {
    use duckdb::arrow::array::{Array, AsArray, Int64Array, StringArray};
    use duckdb::arrow::datatypes::{DataType, Int64Type};

    enum Col<'a> {
        Int(&'a Int64Array),
        Text(&'a StringArray),
    }
    let columns = plain_columns(batch.columns())?;
    let typed: Vec<Col> = columns
        .iter()
        .map(|c| {
            if c.data_type() == &DataType::Int64 {
                Col::Int(c.as_primitive::<Int64Type>())
            } else {
                Col::Text(c.as_string::<i32>())
            }
        })
        .collect();
    let rows = batch.num_rows();
    out.resize(rows * width, String::new());
    let mut clock = LocalClock::new(&fmt.range.tz);
    let mut cells = Vec::with_capacity(width);
    for (row, fields) in out.chunks_mut(width).enumerate() {
        cells.clear();
        cells.extend(typed.iter().map(|col| match col {
            Col::Int(a) if a.is_valid(row) => CellRef::Int(a.value(row)),
            Col::Text(a) if a.is_valid(row) => CellRef::Text(a.value(row)),
            _ => CellRef::Null,
        }));
        fmt.fields_into(&cells, fields, &mut clock);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_core::time::{parse_date, parse_zone};

    fn aligned(zone: &str, from: &str, to: &str) -> bool {
        let tz = parse_zone(zone).unwrap();
        let range = Range::custom(parse_date(from).unwrap(), parse_date(to).unwrap(), &tz).unwrap();
        slot_aligned(&range, &range.buckets())
    }

    /// Cubes count by 15-minute slots: ranges in zones whose offsets and changes fall on
    /// slot edges may use them (DST days, half-hour and 45-minute offsets, hour buckets),
    /// a zone with a local-mean-time offset may not.
    #[test]
    fn ranges_use_cubes_only_where_every_edge_is_a_slot_edge() {
        assert!(aligned("Europe/Madrid", "2026-03-29", "2026-03-29"));
        assert!(aligned("Europe/Madrid", "2026-10-01", "2026-11-30"));
        assert!(aligned("Asia/Kathmandu", "2026-01-05", "2026-01-06"));
        assert!(aligned("Australia/Lord_Howe", "2026-04-05", "2026-04-05"));
        assert!(aligned("America/St_Johns", "2025-01-01", "2026-12-31"));
        // Monrovia kept UTC-0:44:30 until 1972.
        assert!(!aligned("Africa/Monrovia", "1971-06-01", "1971-06-03"));
        // Amsterdam changed from +0:19:32 to +0:20 in 1937, mid-day.
        assert!(!aligned("Europe/Amsterdam", "1937-06-30", "1937-07-01"));
    }
}
