//! The SQL of every report, log and export. Rules of what to count live in
//! `parley_core::report`; this module only maps datasets and dimensions to columns and
//! lets DuckDB aggregate. Zones never reach SQL: bucket edges and UTC offsets are
//! computed in Rust and handed over as plain microsecond bounds.

use duckdb::types::Value;
use duckdb::Connection;
use parley_core::directory::Directory;
use parley_core::doc::{
    self, Cell, ComponentData, KeyedCounts, LogPage, RangeDoc, ReportDoc, RowFormatter,
};
use parley_core::fold_case;
use parley_core::report::{ColType, Dataset, Key, Log, Shape, MISSING};
use parley_core::time::{Bucket, Range};

use crate::ingest::load_directory_events;
use crate::{Query, StoreError};

const TEAM_JOIN_CLOSED: &str = "LEFT JOIN user_teams ut ON ut.workspace = x.workspace \
    AND ut.user_id = x.closed_by AND x.closed_at >= ut.valid_from AND x.closed_at < ut.valid_to";
const TEAM_JOIN_MESSAGE: &str = "LEFT JOIN user_teams ut ON ut.workspace = x.workspace \
    AND ut.user_id = x.user_id AND x.at_us >= ut.valid_from AND x.at_us < ut.valid_to";
const CONTACT_JOIN: &str =
    "LEFT JOIN contacts k ON k.workspace = x.workspace AND k.contact_id = x.contact_id";

/// Where a dataset's rows live: table (with joins), row filter, and row timestamp.
struct Source {
    from: String,
    rows: &'static str,
    t: &'static str,
}

fn source(ds: Dataset) -> Source {
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
        Dataset::Tagged => (
            "messages",
            TEAM_JOIN_MESSAGE,
            "NOT x.incoming AND x.message_type IN ('facebook_message_tag', 'whatsapp_template')",
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
    Source {
        from: format!("{table} x {join}"),
        rows,
        t,
    }
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
            let columns: &[&str] = if ds == Dataset::Merged {
                &["x.contact_id", "x.merged_contact_id"]
            } else {
                &["x.contact_id"]
            };
            if !given.is_empty() {
                for col in columns {
                    alternatives.push(format!("{col} IN ({})", placeholders(given.len())));
                    params.extend(given.iter().map(|v| Value::Text((*v).clone())));
                    let likes = vec!["contains(name_folded, ?)"; given.len()].join(" OR ");
                    alternatives.push(format!(
                        "{col} IN (SELECT contact_id FROM contacts WHERE workspace = ? AND ({likes}))"
                    ));
                    params.push(Value::Text(q.workspace.id.clone()));
                    params.extend(given.iter().map(|v| Value::Text(fold_case(v))));
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

fn count_by_bucket(
    conn: &Connection,
    q: &Query,
    buckets: &[Bucket],
    ds: Dataset,
    key: Option<Key>,
) -> Result<KeyedCounts, StoreError> {
    let src = source(ds);
    let (cond, params) = where_clause(q, ds, &src);
    let key_sql = key.map_or("NULL::VARCHAR", key_column);
    let sql = format!(
        "SELECT {key_sql} AS k, b.idx, count(*) FROM {} JOIN {} ON {t} >= b.s AND {t} < b.e WHERE {cond} GROUP BY 1, 2 ORDER BY 1, 2",
        src.from,
        buckets_sql(buckets),
        t = src.t
    );
    let n = buckets.len();
    let mut out: KeyedCounts = Vec::new();
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(duckdb::params_from_iter(params), |r| {
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (k, idx, count) = row?;
        if out.last().map(|(lk, _)| lk != &k).unwrap_or(true) {
            out.push((k.clone(), vec![0; n]));
        }
        out.last_mut().expect("pushed").1[idx as usize] = count;
    }
    Ok(out)
}

fn heatmap(conn: &Connection, q: &Query, ds: Dataset) -> Result<[[i64; 24]; 7], StoreError> {
    let src = source(ds);
    let (cond, params) = where_clause(q, ds, &src);
    let sql = format!(
        "SELECT ((l // 86400000000) + 3) % 7 AS wd, (l % 86400000000) // 3600000000 AS hr, count(*)
         FROM (SELECT {} AS l FROM {} WHERE {cond}) GROUP BY 1, 2",
        local_micros_sql(&q.range, src.t),
        src.from
    );
    let mut grid = [[0i64; 24]; 7];
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(duckdb::params_from_iter(params), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (wd, hr, n) = row?;
        grid[wd as usize][hr as usize] = n;
    }
    Ok(grid)
}

pub(crate) fn directory(conn: &Connection, ws: &str) -> Result<Directory, StoreError> {
    Ok(Directory::from_events(&load_directory_events(conn, ws)?))
}

pub(crate) fn report(conn: &Connection, q: &Query) -> Result<ReportDoc, StoreError> {
    let dir = directory(conn, &q.workspace.id)?;
    let buckets = q.range.buckets();
    // Per-bucket totals over every key.
    let sum = |rows: KeyedCounts| -> Vec<i64> {
        let mut total = vec![0; buckets.len()];
        for (_, v) in rows {
            for (t, n) in total.iter_mut().zip(v) {
                *t += n;
            }
        }
        total
    };
    let mut data = Vec::new();
    for c in q.report.components() {
        if !q.filters.applicable(c.accepts) {
            data.push(None);
            continue;
        }
        let d = match c.shape {
            Shape::Metric(ds) => ComponentData::Metric(
                sum(count_by_bucket(conn, q, &buckets, ds, None)?)
                    .iter()
                    .sum(),
            ),
            Shape::Bar(series) => ComponentData::Bar(
                series
                    .iter()
                    .map(|(_, _, ds)| count_by_bucket(conn, q, &buckets, *ds, None).map(sum))
                    .collect::<Result<_, _>>()?,
            ),
            Shape::Heatmap(ds) => ComponentData::Heatmap(Box::new(heatmap(conn, q, ds)?)),
            Shape::Breakdown(ds, key) | Shape::Line(ds, key) => {
                ComponentData::Breakdown(count_by_bucket(conn, q, &buckets, ds, Some(key))?)
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
                "k.name",
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
                "k.name",
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
                "k.name",
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
                "k.name",
                "x.channel_id",
                "x.message_type",
                "x.subtype",
                "x.content",
                "x.error",
            ],
            &["x.message_id"],
        ),
        Log::Added | Log::Deleted | Log::Merged => (
            &["x.at_us", "x.contact_id", "k.name", "x.source", "x.user_id"],
            &["x.event_id"],
        ),
        Log::Connected => (
            &[
                "x.at_us",
                "x.contact_id",
                "k.name",
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
                "k.name",
                "x.previous_assignee",
                "coalesce(x.new_assignee, '')",
                "x.source",
                "x.assigned_by",
            ],
            &["x.event_id"],
        ),
    }
}

fn check_log_filters(q: &Query, log: Log) -> Result<(), StoreError> {
    match q.filters.first_not_applicable(log.accepts()) {
        Some(filter) => Err(StoreError::FiltersNotApplicable {
            log: log.wire(),
            filter: filter.to_string(),
        }),
        None => Ok(()),
    }
}

/// Where a log row sits in log order: its timestamp and tie-break ids.
type LogKey = (i64, Vec<String>);

/// Reads log rows in log order: newest first, ties by row id ascending. `after` resumes
/// past a row (keyset paging) so exports never materialize the whole log.
fn log_rows(
    conn: &Connection,
    q: &Query,
    log: Log,
    offset: u64,
    limit: u64,
    after: Option<&LogKey>,
) -> Result<Vec<(Vec<Cell>, LogKey)>, StoreError> {
    let ds = log.dataset();
    let src = source(ds);
    let (mut cond, mut params) = where_clause(q, ds, &src);
    let (cols, ties) = log_columns(log);
    if let Some((t, keys)) = after {
        // (t, ties) strictly after the last row in (t DESC, ties ASC) order.
        let mut alts = vec![format!("{} < {t}", src.t)];
        for i in 0..ties.len() {
            let mut parts = vec![format!("{} = {t}", src.t)];
            for (j, tie) in ties.iter().enumerate().take(i) {
                parts.push(format!("{tie} = ?"));
                params.push(Value::Text(keys[j].clone()));
            }
            parts.push(format!("{} > ?", ties[i]));
            params.push(Value::Text(keys[i].clone()));
            alts.push(format!("({})", parts.join(" AND ")));
        }
        cond.push_str(&format!(" AND ({})", alts.join(" OR ")));
    }
    let order: Vec<String> = std::iter::once(format!("{} DESC", src.t))
        .chain(ties.iter().map(|t| format!("{t} ASC")))
        .collect();
    let sql = format!(
        "SELECT {}, {}, {} FROM {} {CONTACT_JOIN} WHERE {cond} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        cols.join(", "),
        src.t,
        ties.join(", "),
        src.from,
        order.join(", ")
    );
    let types = log.columns();
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(duckdb::params_from_iter(params), |r| {
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
        let t: i64 = r.get(types.len())?;
        let keys = (0..ties.len())
            .map(|j| r.get::<_, String>(types.len() + 1 + j))
            .collect::<Result<_, _>>()?;
        Ok((cells, (t, keys)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn count_rows(conn: &Connection, q: &Query, ds: Dataset) -> Result<u64, StoreError> {
    let src = source(ds);
    let (cond, params) = where_clause(q, ds, &src);
    let sql = format!("SELECT count(*) FROM {} WHERE {cond}", src.from);
    let n: i64 = conn.query_row(&sql, duckdb::params_from_iter(params), |r| r.get(0))?;
    Ok(n as u64)
}

pub(crate) fn log_page(
    conn: &Connection,
    q: &Query,
    log: Log,
    page: u64,
    per_page: u64,
) -> Result<LogPage, StoreError> {
    check_log_filters(q, log)?;
    let dir = directory(conn, &q.workspace.id)?;
    let total = count_rows(conn, q, log.dataset())?;
    let (offset, limit) = doc::page_window(page, per_page);
    let rows = if limit == 0 {
        Vec::new()
    } else {
        log_rows(conn, q, log, offset, limit, None)?
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
        rows: rows.iter().map(|(cells, _)| fmt.json(cells)).collect(),
    })
}

/// Rows fetched per round trip of an export.
const EXPORT_BATCH: u64 = 5_000;

pub(crate) fn export(
    conn: &Connection,
    q: &Query,
    log: Log,
    sink: &mut dyn FnMut(&[String]) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    check_log_filters(q, log)?;
    let dir = directory(conn, &q.workspace.id)?;
    let fmt = RowFormatter {
        log,
        range: &q.range,
        dir: &dir,
    };
    let mut after: Option<LogKey> = None;
    let mut n = 0;
    loop {
        let rows = log_rows(conn, q, log, 0, EXPORT_BATCH, after.as_ref())?;
        let done = (rows.len() as u64) < EXPORT_BATCH;
        for (cells, _) in &rows {
            sink(&fmt.csv(cells))?;
            n += 1;
        }
        match rows.into_iter().last() {
            Some((_, key)) if !done => after = Some(key),
            _ => return Ok(n),
        }
    }
}
