//! Ingest and derivation: stage a validated batch, keep the events whose ids are new,
//! find which contact's walk each one belongs to, then re-derive the facts of exactly
//! the contact groups that the new events touch.
//!
//! Every lookup into a big table (`event_ids`, `conv_keys`, `msg_keys`, `events`, the
//! fact tables) is a join on a hash column by which the table is appended in order, with
//! a small temp table on the other side: DuckDB pushes the join's keys into the scan and
//! skips the row groups whose min/max cannot match. So a batch costs what it touches,
//! not the size of the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{params, Appender, Connection};
use parley_core::derive::{derive, Assignee, Facts};
use parley_core::directory::team_spans;
use parley_core::event::{parse_event, Event};
use parley_core::fold_case;

use crate::columns::{unpack, StageBuilder};
use crate::seen::{Kind, Known};
use crate::{phase, phases_on, IngestSummary, Progress, StoreError};

/// Contacts derived together at most by default (a group tied by merges or shared ids is
/// never split, so one group may be larger). Tests lower it to cross every boundary.
pub(crate) const PART_CONTACTS: u64 = 2_000;

/// How much work one step takes on at most; tests lower both to cross every boundary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    /// Contacts derived together (see `PART_CONTACTS`).
    pub(crate) part_contacts: u64,
    /// Events appended to `events` in one sort (see `SORTED_AT_ONCE`).
    pub(crate) sorted_at_once: u64,
    /// Rows appended to a cube before it is compacted, at least (see `cubes::apply`).
    pub(crate) cube_tail: i64,
    /// Rows an export sorts at once, about (see `query::EXPORT_WINDOW_ROWS`).
    pub(crate) export_window: u64,
    /// Hashes a batch hands to the filters at most (see `FILTERED_KEYS`).
    pub(crate) filtered_keys: usize,
}

impl Default for Sizes {
    fn default() -> Sizes {
        Sizes {
            part_contacts: PART_CONTACTS,
            sorted_at_once: SORTED_AT_ONCE,
            cube_tail: crate::cubes::TAIL_MIN_ROWS,
            export_window: crate::query::EXPORT_WINDOW_ROWS,
            filtered_keys: FILTERED_KEYS,
        }
    }
}

/// Crash injection for the durability tests: when the environment variable
/// `PARLEY_KILL_AT` names this point, the process kills itself with SIGKILL in the
/// middle of the ingest's transaction, as an operator's `kill -9` would.
pub(crate) fn kill_point(name: &str) {
    if std::env::var("PARLEY_KILL_AT").is_ok_and(|v| v == name) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // Without kill(1), abort: for the database the same (no rollback, no flush).
        std::process::abort();
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Validates a batch exactly as its ingest would (the same parse, the same errors,
/// naming lines and events within it), without storing anything. Returns its event
/// lines (blank lines left out, line ends trimmed) and their ids, in order.
pub fn validate(batch: &[u8]) -> Result<Vec<(&[u8], String)>, StoreError> {
    let mut events = Vec::new();
    let (mut line_no, mut index) = (1usize, 0usize);
    for raw in batch.split_inclusive(|&b| b == b'\n') {
        let line = trim_eol(raw);
        if !line.iter().all(u8::is_ascii_whitespace) {
            let event = parse_event(line, line_no, index)?;
            events.push((line, event.id));
            index += 1;
        }
        line_no += 1;
    }
    Ok(events)
}

/// When the facts of a batch's contacts are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Derive {
    /// In the ingest's transaction, with those of every deferred batch before it.
    Now,
    /// Later, by `settle`: the contacts are left in `dirty`.
    Deferred,
}

/// Ingests a batch; `known` (a long-lived store's filters of stored hashes, `seen.rs`)
/// spares lookups of ids and keys that cannot be stored.
pub(crate) fn ingest(
    conn: &Connection,
    ws: &str,
    input: &mut dyn BufRead,
    progress: &mut dyn FnMut(Progress),
    sizes: Sizes,
    when: Derive,
    known: Option<&mut Known>,
) -> Result<IngestSummary, StoreError> {
    let mut outcomes = ingest_group(conn, ws, &mut [input], progress, sizes, when, known)?;
    outcomes.pop().expect("one outcome per input")
}

/// Ingests several batches at once, as a group commit does: each is validated alone
/// and refused alone (its outcome is its error, and none of its events is filed), the
/// others are filed together, in their order (an id in two of them is the earlier
/// one's; the later one counts it as a duplicate), as one ingest would file their
/// concatenation. Returns each batch's outcome; an `Err` of the whole (a database
/// error) means the caller must roll back.
pub(crate) fn ingest_group(
    conn: &Connection,
    ws: &str,
    inputs: &mut [&mut dyn BufRead],
    progress: &mut dyn FnMut(Progress),
    sizes: Sizes,
    when: Derive,
    mut known: Option<&mut Known>,
) -> Result<Vec<Result<IngestSummary, StoreError>>, StoreError> {
    phase("start");
    conn.execute_batch("DELETE FROM stage")?;
    // Each batch's events take the stage's indexes [start, end).
    let mut spans: Vec<Result<(u64, u64), StoreError>> = Vec::with_capacity(inputs.len());
    let (mut total, mut ranks) = (0u64, 0u16);
    for input in inputs.iter_mut() {
        match stage_batch(conn, &mut **input, progress, total) {
            Ok((n, r)) => {
                spans.push(Ok((total, total + n)));
                total += n;
                ranks |= r;
            }
            Err(e @ (StoreError::InvalidBatch(_) | StoreError::Io(_))) => {
                conn.execute("DELETE FROM stage WHERE idx >= ?", [total as i64])?;
                spans.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    phase("stage_batch");
    if spans.iter().all(Result::is_err) {
        return Ok(spans
            .into_iter()
            .map(|s| s.map(|_| unreachable!("every batch was refused")))
            .collect());
    }
    kill_point("staged");
    progress(Progress::Deriving);
    // Ids already stored, and later copies of an id inside the batch: the first wins.
    let limit = sizes.filtered_keys;
    let staged = few_hashes(conn, "SELECT DISTINCT hash(id) FROM stage", [], limit)?;
    let mut hashes = may_be_stored(conn, ws, known.as_deref_mut(), Kind::EventId, &staged)?;
    if hashes.as_ref().is_some_and(|h| h.len() > LISTED_KEYS) {
        // Too many to list: the join below finds the stored ones.
        hashes = None;
    }
    if hashes.as_ref().is_some_and(|h| !h.is_empty()) {
        // A few ids: first which of their hashes are stored at all, reading only the
        // hash column; the ids themselves are compared for those alone (usually none).
        hashes = few_hashes(
            conn,
            &format!(
                "SELECT DISTINCT e.h FROM event_ids e WHERE e.workspace = ?{}",
                in_list("e.h", &hashes)
            ),
            [ws],
            LISTED_KEYS,
        )?;
    }
    // No stored hash among the batch's and as many distinct hashes as lines: nothing to
    // drop, and no statement to run (the usual webhook batch).
    let none_stored = hashes.as_ref().is_some_and(|h| h.is_empty());
    let all_distinct = staged.as_ref().is_some_and(|h| h.len() as u64 == total);
    let rejected = if none_stored && all_distinct {
        0
    } else {
        let ids = in_list("e.h", &hashes);
        conn.execute(
            &format!(
                "DELETE FROM stage WHERE idx IN (
                   SELECT s.idx FROM stage s JOIN event_ids e ON e.h = hash(s.id) AND e.id = s.id
                   WHERE e.workspace = $1{ids}
                   UNION ALL
                   SELECT s.idx FROM stage s
                     JOIN (SELECT id, min(idx) AS keep FROM stage GROUP BY id HAVING count(*) > 1) d
                       ON s.id = d.id AND s.idx <> d.keep)"
            ),
            [ws],
        )?
    };
    phase("rejected");
    let accepted = total - rejected as u64;
    // With duplicates dropped from several batches, which events each one keeps.
    let filed_batches = spans.iter().filter(|s| s.is_ok()).count();
    let kept: Option<Vec<i64>> = if rejected == 0 || filed_batches == 1 {
        None
    } else {
        let mut stmt = conn.prepare("SELECT idx FROM stage ORDER BY idx")?;
        let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
        Some(rows.collect::<Result<_, _>>()?)
    };
    if accepted > 0 {
        store_batch(conn, ws, ranks, accepted, sizes, known.as_deref_mut())?;
        if let Some(k) = known.as_deref_mut() {
            k.stored(Kind::EventId, staged.as_deref());
        }
        phase("store_batch");
        kill_point("filed");
    }
    match when {
        Derive::Deferred => {
            if accepted > 0 {
                conn.execute(
                    &format!("INSERT INTO dirty SELECT $1, contact, {ranks} FROM touched"),
                    [ws],
                )?;
                conn.execute_batch("DROP TABLE touched")?;
            }
            phase("dirty");
        }
        Derive::Now => {
            // A batch of receipts alone is applied to its messages' rows, if it can be.
            let mut ranks = ranks;
            if accepted > 0 && ranks == R_STATUS && receipts_in_place(conn, ws, sizes.cube_tail)? {
                conn.execute_batch("DROP TABLE touched")?;
                IN_PLACE.with(|n| n.set(n.get() + 1));
                ranks = 0;
                phase("receipts in place");
            }
            settle(conn, ws, sizes, ranks)?;
            kill_point("derived");
            phase("derive");
        }
    }
    conn.execute_batch("DELETE FROM stage; DROP TABLE IF EXISTS resolved")?;
    if let Some(k) = known {
        k.batch_done();
    }
    Ok(spans
        .into_iter()
        .map(|span| {
            span.map(|(start, end)| {
                let accepted = match &kept {
                    None if rejected == 0 => end - start,
                    // The one batch filed.
                    None => accepted,
                    Some(kept) => {
                        let at = |i: u64| kept.partition_point(|&k| k < i as i64);
                        (at(end) - at(start)) as u64
                    }
                };
                IngestSummary {
                    accepted,
                    duplicates: end - start - accepted,
                }
            })
        })
        .collect())
}

/// Derives the facts of the contacts in `touched` (when an ingest left it, with events
/// of `ranks`; `ranks` is 0 when none did) and of those a deferred ingest left in
/// `dirty`; returns how many contacts that was, before groups.
pub(crate) fn settle(
    conn: &Connection,
    ws: &str,
    sizes: Sizes,
    ranks: u16,
) -> Result<u64, StoreError> {
    let (waiting, deferred): (Option<i64>, i64) = conn.query_row(
        "SELECT bit_or(ranks), count(*) FROM dirty WHERE workspace = $1",
        [ws],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if ranks == 0 && deferred == 0 {
        return Ok(0);
    }
    let ranks = ranks | waiting.unwrap_or(0) as u16;
    conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS touched (contact VARCHAR)")?;
    if deferred > 0 {
        conn.execute(
            "INSERT INTO touched SELECT contact FROM dirty WHERE workspace = $1",
            [ws],
        )?;
        conn.execute("DELETE FROM dirty WHERE workspace = $1", [ws])?;
    }
    let n: i64 = conn.query_row("SELECT count(DISTINCT contact) FROM touched", [], |r| {
        r.get(0)
    })?;
    if n == 0 {
        conn.execute_batch("DROP TABLE touched")?;
        return Ok(0);
    }
    derive_touched(
        conn,
        ws,
        sizes.part_contacts,
        &affected_tables(ranks),
        Some(sizes.cube_tail),
    )?;
    Ok(n as u64)
}

/// Bytes of NDJSON parsed by one thread in one round.
const BLOCK_BYTES: usize = 1 << 20;

/// A run of whole lines, with the line number and event index of its first line.
struct Block {
    bytes: Vec<u8>,
    first_line: usize,
    first_index: usize,
    /// The stage index of the batch's first event (batches filed as a group follow
    /// each other in `stage`); errors name lines and events within the batch.
    base: u64,
}

/// Parses every non-blank line of a block into the Arrow batch of `stage`; stops at the
/// first invalid line.
fn parse_block(block: &Block) -> Result<(RecordBatch, u16), StoreError> {
    let mut out = StageBuilder::new();
    let (mut line_no, mut index, mut pos) = (block.first_line, block.first_index, 0);
    while pos < block.bytes.len() {
        let end = block.bytes[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.bytes.len(), |i| pos + i + 1);
        let line = trim_eol(&block.bytes[pos..end]);
        if !line.iter().all(u8::is_ascii_whitespace) {
            let event = parse_event(line, line_no, index)?;
            let text = std::str::from_utf8(line).expect("validated as UTF-8");
            out.push((block.base + index as u64) as i64, &event, text);
            index += 1;
        }
        line_no += 1;
        pos = end;
    }
    let ranks = out.ranks();
    Ok((out.finish(), ranks))
}

/// Reads up to `BLOCK_BYTES` of whole lines (more if one line is longer).
fn read_block(
    input: &mut dyn BufRead,
    first_line: usize,
    first_index: usize,
    base: u64,
) -> Result<Option<(Block, usize, usize)>, StoreError> {
    let mut bytes = Vec::with_capacity(BLOCK_BYTES + 4096);
    let (mut lines, mut events) = (0, 0);
    while bytes.len() < BLOCK_BYTES {
        let start = bytes.len();
        if input.read_until(b'\n', &mut bytes)? == 0 {
            break;
        }
        lines += 1;
        if !trim_eol(&bytes[start..])
            .iter()
            .all(u8::is_ascii_whitespace)
        {
            events += 1;
        }
    }
    if bytes.is_empty() {
        return Ok(None);
    }
    let block = Block {
        bytes,
        first_line,
        first_index,
        base,
    };
    Ok(Some((block, lines, events)))
}

/// Validates every line into `stage`, parsing blocks of lines into Arrow batches on
/// every core and appending them in order; the first invalid event (in batch order) aborts the batch.
/// Returns the number of events and the ranks they have (see `StageBuilder::ranks`).
fn stage_batch(
    conn: &Connection,
    input: &mut dyn BufRead,
    progress: &mut dyn FnMut(Progress),
    base: u64,
) -> Result<(u64, u16), StoreError> {
    let mut app = conn.appender_to_catalog_and_db("stage", "temp", "main")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut line_no, mut index, mut bytes_read, mut ranks) = (1usize, 0usize, 0u64, 0u16);
    loop {
        let mut blocks = Vec::with_capacity(threads);
        while blocks.len() < threads {
            match read_block(input, line_no, index, base)? {
                Some((block, lines, events)) => {
                    line_no += lines;
                    index += events;
                    bytes_read += block.bytes.len() as u64;
                    blocks.push(block);
                }
                None => break,
            }
        }
        if blocks.is_empty() {
            break;
        }
        for parsed in on_threads(&blocks, parse_block) {
            let (batch, r) = parsed?;
            ranks |= r;
            app.append_record_batch(batch)?;
        }
        progress(Progress::Read(bytes_read));
    }
    app.flush()?;
    progress(Progress::Read(bytes_read));
    Ok((index as u64, ranks))
}

/// Keys looked up by an explicit list at most: past it, a join.
const LISTED_KEYS: usize = 2_000;

/// Hashes a batch hands to the filters of stored hashes at most (`seen.rs`): past it,
/// they are dropped and built again by the next batch. Well above `LISTED_KEYS`, so
/// that a group commit of several webhook batches keeps them (a rebuild scans a whole
/// table: about a second for L's 21M ids).
pub(crate) const FILTERED_KEYS: usize = 1 << 18;

/// The hashes `sql` yields (with `params`), or `None` when there are more than `limit`
/// of them.
fn few_hashes(
    conn: &Connection,
    sql: &str,
    params: impl duckdb::Params,
    limit: usize,
) -> Result<Option<Vec<u64>>, StoreError> {
    let mut stmt = conn.prepare(&format!("{sql} LIMIT {}", limit + 1))?;
    let hashes: Vec<u64> = stmt
        .query_map(params, |r| r.get::<_, u64>(0))?
        .collect::<Result<_, _>>()?;
    Ok((hashes.len() <= limit).then_some(hashes))
}

/// ` AND {column} IN (…)` with `hashes` when there are at most `LISTED_KEYS` of them
/// (` AND FALSE` for none), empty otherwise. DuckDB skips the row groups whose min/max excludes every
/// value of a constant list, while a join with a small table hands the scan only the
/// min and max of its keys, which random hashes spread over the whole table.
fn in_list(column: &str, hashes: &Option<Vec<u64>>) -> String {
    match hashes {
        None => String::new(),
        Some(h) if h.len() > LISTED_KEYS => String::new(),
        Some(h) if h.is_empty() => " AND FALSE".to_string(),
        Some(h) => {
            let list: Vec<String> = h.iter().map(u64::to_string).collect();
            format!(" AND {column} IN ({})", list.join(", "))
        }
    }
}

/// Of `hashes` (`None`: too many to list), those `known`'s filter of `kind` says may be
/// stored; all of them without filters.
fn may_be_stored(
    conn: &Connection,
    ws: &str,
    known: Option<&mut Known>,
    kind: Kind,
    hashes: &Option<Vec<u64>>,
) -> Result<Option<Vec<u64>>, StoreError> {
    match (known, hashes) {
        (Some(k), Some(h)) => Ok(Some(k.may_be_stored(conn, ws, kind, h)?)),
        _ => Ok(hashes.clone()),
    }
}

/// `in_list` of the hashes `sql` yields.
fn listed(conn: &Connection, column: &str, sql: &str) -> Result<String, StoreError> {
    Ok(in_list(column, &few_hashes(conn, sql, [], LISTED_KEYS)?))
}

/// Events appended to `events` in one sort at most; a larger batch is sorted a hash
/// range at a time. M's 2.19M packed events sort at once within the 1 GB limit, L's
/// 21.8M did not (out of memory instead of spilling); each range costs a scan of the
/// batch's packed events, so ranges are as large as is known to fit.
const SORTED_AT_ONCE: u64 = 2_000_000;

/// Bits of the ranks (`Body::rank`) a batch holds, as `StageBuilder::ranks` sets them.
const R_DIRECTORY: u16 = 1 << 0;
/// Events that use a conversation id (opened) or a message id (received, sent).
const R_KEYED: u16 = 1 << 3 | 1 << 5 | 1 << 6;
const R_STATUS: u16 = 1 << 7;
const R_CLOSED: u16 = 1 << 8;
const R_MERGED: u16 = 1 << 9;

/// Files the staged (new) events: ids, keys, owners, pending closes and receipts, the
/// directory; updates the contact groups and leaves the contacts to derive in `touched`.
/// `ranks` (the kinds of event the batch holds) skips the steps no event of it needs.
fn store_batch(
    conn: &Connection,
    ws: &str,
    ranks: u16,
    events: u64,
    sizes: Sizes,
    mut known: Option<&mut Known>,
) -> Result<(), StoreError> {
    let sorted_at_once = sizes.sorted_at_once;
    conn.execute(
        "INSERT INTO event_ids SELECT $1, hash(id) AS h, id FROM stage ORDER BY h",
        [ws],
    )?;
    let directory_changed = ranks & R_DIRECTORY != 0
        && conn.execute(
            "INSERT INTO directory_events SELECT $1, id, at_us, body FROM stage WHERE rank = 0",
            [ws],
        )? > 0;
    phase("event_ids");
    let keyed = ranks & R_KEYED != 0;
    let mut edges: Vec<(String, String)> = Vec::new();
    if keyed {
        file_keys(
            conn,
            ws,
            &mut edges,
            known.as_deref_mut(),
            sizes.filtered_keys,
        )?;
    }
    if ranks & R_MERGED != 0 {
        let mut stmt = conn.prepare(
            "SELECT contact_a, contact_b FROM stage
             WHERE type = 'contact.merged' AND contact_a <> contact_b",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            edges.push(row?);
        }
    }
    phase("edges keys");
    // The owner of each close and receipt of the batch, where its id is known by now:
    // from the keys this process filed (`Known::owner`), else from the key tables.
    let cached = if ranks & (R_CLOSED | R_STATUS) != 0 {
        known_owners(conn, known.as_deref())?
    } else {
        0
    };
    let uncached = if cached > 0 {
        " AND s.idx NOT IN (SELECT idx FROM cached_owner)"
    } else {
        ""
    };
    let mut resolve = Vec::new();
    for (bit, table, kind) in [
        (R_CLOSED, "conv_keys", "conversation.closed"),
        (R_STATUS, "msg_keys", "message.status"),
    ] {
        if ranks & bit != 0 {
            let hashes = few_hashes(
                conn,
                &format!(
                    "SELECT DISTINCT hash(s.key) FROM stage s WHERE s.type = '{kind}'{uncached}"
                ),
                [],
                LISTED_KEYS,
            )?;
            // All of this kind found in `known` (or dropped as repeats): nothing to look up.
            if hashes.as_ref().is_some_and(Vec::is_empty) {
                continue;
            }
            let keys = in_list("k.h", &hashes);
            resolve.push(format!(
                "SELECT s.idx, min(k.owner) AS owner FROM stage s
                   JOIN {table} k ON k.h = hash(s.key) AND k.key = s.key
                 WHERE k.workspace = $1 AND s.type = '{kind}'{uncached}{keys} GROUP BY s.idx"
            ));
        }
    }
    if cached > 0 {
        // Names the workspace too, as every branch takes the same parameter.
        resolve.push("SELECT idx, owner FROM cached_owner WHERE $1 IS NOT NULL".to_string());
    }
    if resolve.is_empty() {
        conn.execute_batch(
            "CREATE OR REPLACE TEMP TABLE resolved (idx BIGINT NOT NULL, owner VARCHAR NOT NULL)",
        )?;
    } else {
        conn.execute(
            &format!(
                "CREATE OR REPLACE TEMP TABLE resolved AS {}",
                resolve.join(" UNION ALL ")
            ),
            [ws],
        )?;
        // Closes and receipts whose conversation or message is still unknown wait.
        conn.execute(
            "INSERT INTO pending
             SELECT $1, s.id, s.type, s.key, s.payload FROM stage s LEFT JOIN resolved r ON r.idx = s.idx
             WHERE s.rank > 0 AND s.contact_a IS NULL AND r.owner IS NULL",
            [ws],
        )?;
    }
    phase("resolved pending");
    // Appended in hash order, so that one contact's events sit in few row groups; with
    // them the pending closes and receipts whose conversation or message has arrived.
    let unpended = if keyed {
        "UNION ALL SELECT owner, payload FROM unpended"
    } else {
        ""
    };
    let rows = format!(
        "SELECT owner, hash(owner) AS oh, payload FROM (
           SELECT coalesce(s.contact_a, r.owner) AS owner, s.payload
           FROM stage s LEFT JOIN resolved r ON r.idx = s.idx
           WHERE s.rank > 0 AND (s.contact_a IS NOT NULL OR r.owner IS NOT NULL)
           {unpended}
         )"
    );
    if events <= sorted_at_once {
        conn.execute(
            &format!("INSERT INTO events SELECT $1, * FROM ({rows}) ORDER BY oh, owner"),
            [ws],
        )?;
    } else {
        // Sorted a hash range at a time: one sort of millions of packed events (long
        // strings) ran out of DuckDB's memory limit at L instead of spilling. The
        // ranges follow each other, so the table ends up in hash order all the same.
        conn.execute_batch(&format!("CREATE OR REPLACE TEMP TABLE filed AS {rows}"))?;
        for (lo, hi) in hash_parts(events, sorted_at_once) {
            conn.execute(
                &format!(
                    "INSERT INTO events SELECT $1, * FROM filed
                     WHERE oh BETWEEN {lo} AND {hi} ORDER BY oh, owner"
                ),
                [ws],
            )?;
        }
        conn.execute_batch("DROP TABLE filed")?;
    }
    phase("events");
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE touched AS
         SELECT contact_a AS contact FROM stage WHERE contact_a IS NOT NULL
         UNION SELECT contact_b FROM stage WHERE contact_b IS NOT NULL
         UNION SELECT owner FROM resolved
         {};",
        if keyed {
            "UNION SELECT owner FROM unpended; DROP TABLE unpended; DROP TABLE nk; DROP TABLE IF EXISTS ek"
        } else {
            ""
        }
    ))?;
    join_groups(conn, ws, &edges)?;
    if directory_changed {
        rebuild_user_teams(conn, ws)?;
    }
    Ok(())
}

/// Applies a batch of receipts alone (each already filed, with its owner in `resolved`
/// if its message's id is known) to the rows of their messages, when that gives what a
/// re-derivation of their contacts would: returns `false`, having changed nothing, when
/// it may not.
///
/// A delivered or read receipt sets its instant on its message, the earliest winning,
/// and with it the status (SPEC §3.5: read, else delivered); it counts when it is dated
/// within `RECEIPT_WINDOW_MICROS` from its message on, and only for an outgoing
/// message. A message's id is used by one message row at most in a workspace (the first
/// use wins and every contact using an id is walked with the others), so the row found
/// by its id is the one the walk would apply the receipt to. Only the row's instants,
/// its status and the outgoing cube change, unless the message had failed: a delivered
/// failed message connects its contact (§3.6), so that batch is re-derived, as is any
/// batch with a `failed` receipt, or a receipt whose message's row is not its owner's.
/// A `sent` receipt changes nothing; one whose message is unknown waits in `pending`.
fn receipts_in_place(conn: &Connection, ws: &str, cube_tail: i64) -> Result<bool, StoreError> {
    use parley_core::derive::RECEIPT_WINDOW_MICROS;
    use parley_core::enums::DeliveryStatus;
    use parley_core::event::Body;
    // Each message's owner's hash and receipts: (instant, read rather than delivered).
    type Receipts = (u64, Vec<(i64, bool)>);
    let mut receipts: BTreeMap<String, Receipts> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT s.payload, hash(r.owner) FROM stage s JOIN resolved r ON r.idx = s.idx",
        )?;
        let rows: Vec<(String, u64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (payload, owner) in rows {
            let e = unpack(&payload)?;
            let Body::MessageStatus {
                message_id, status, ..
            } = e.body
            else {
                return Ok(false);
            };
            let read = match status {
                DeliveryStatus::Sent => continue,
                DeliveryStatus::Failed => return Ok(false),
                DeliveryStatus::Delivered => false,
                DeliveryStatus::Read => true,
            };
            let entry = receipts.entry(message_id).or_insert((owner, Vec::new()));
            entry.1.push((e.at.0, read));
        }
    }
    if receipts.is_empty() {
        return Ok(true);
    }
    if receipts.len() > RECEIPTS_IN_PLACE {
        return Ok(false);
    }
    phase("receipts read");
    // (row id, instants, status) of each message whose row changes, counted out of the
    // cubes as it was.
    let mut changed: Vec<(i64, Option<i64>, Option<i64>, &str)> = Vec::new();
    let mut deltas = crate::cubes::Deltas::new(conn, &["messages"], cube_tail)?;
    {
        // Each message looked up by its owner's hash and its id, both pushed into the
        // scan (which then reads the id column of the owner's rows alone), in one
        // statement: a constant list of either would leave DuckDB to read every row
        // of the row groups it selects.
        let mut names: Vec<String> = [
            "message_id",
            "rowid",
            "delivered_at",
            "read_at",
            "failed_at",
        ]
        .map(String::from)
        .to_vec();
        let by_cubes = crate::cubes::read_by_cubes("messages");
        // The cube deltas below change the status alone: a cube reading a receipt's
        // instants would need more, so such a cube sends every batch to derivation.
        if by_cubes.iter().any(|c| names.contains(c)) {
            return Ok(false);
        }
        names.extend(by_cubes);
        let Some(status_at) = names.iter().position(|n| n == "status") else {
            return Ok(false);
        };
        let lookups: Vec<String> = (0..receipts.len())
            .map(|i| {
                format!(
                    "SELECT {} FROM messages WHERE workspace = $1 AND ch = ${} AND message_id = ${}",
                    names.join(", "),
                    2 * i + 2,
                    2 * i + 3
                )
            })
            .collect();
        let mut values: Vec<duckdb::types::Value> = vec![ws.to_string().into()];
        for (id, (owner, _)) in &receipts {
            values.push((*owner).into());
            values.push(id.clone().into());
        }
        let batches: Vec<RecordBatch> = conn
            .prepare(&lookups.join(" UNION ALL "))?
            .query_arrow(duckdb::params_from_iter(values))?
            .collect();
        let col = |batch: &RecordBatch, name: &str| {
            let i = names.iter().position(|n| n == name).expect("selected");
            batch.column(i).clone()
        };
        for batch in &batches {
            let ids = col(batch, "message_id");
            let ids = ids.as_string::<i32>();
            let incoming = col(batch, "incoming");
            let incoming = incoming.as_boolean();
            let ints: Vec<_> = ["rowid", "delivered_at", "read_at", "failed_at", "at_us"]
                .iter()
                .map(|n| col(batch, n))
                .collect();
            for row in 0..batch.num_rows() {
                let int = |i: usize| {
                    let a = ints[i].as_primitive::<duckdb::arrow::datatypes::Int64Type>();
                    (!a.is_null(row)).then(|| a.value(row))
                };
                let (rowid, delivered, read, failed, at) = (int(0), int(1), int(2), int(3), int(4));
                let Some((_, list)) = receipts.remove(ids.value(row)) else {
                    return Ok(false);
                };
                if failed.is_some() {
                    return Ok(false);
                }
                if incoming.value(row) {
                    continue;
                }
                let at = at.unwrap_or_default();
                let (mut d, mut r) = (delivered, read);
                for (t, is_read) in list {
                    if t < at || t > at + RECEIPT_WINDOW_MICROS {
                        continue;
                    }
                    let slot = if is_read { &mut r } else { &mut d };
                    *slot = Some(slot.map_or(t, |old| old.min(t)));
                }
                if (d, r) != (delivered, read) {
                    let status = if r.is_some() {
                        DeliveryStatus::Read
                    } else {
                        DeliveryStatus::Delivered
                    };
                    let was = batch.slice(row, 1);
                    deltas.count("messages", &was, &names, -1)?;
                    let is = with_status(&was, status_at, status)?;
                    deltas.count("messages", &is, &names, 1)?;
                    changed.push((rowid.unwrap_or_default(), d, r, status.wire()));
                }
            }
        }
        // A message without its row under its owner (a second row was refused above):
        // derived instead.
        if !receipts.is_empty() {
            return Ok(false);
        }
    }
    phase("receipts' rows");
    if changed.is_empty() {
        return Ok(true);
    }
    // Each row by its id: the scan reads the row group holding it alone.
    let mut n = 0;
    let mut stmt = conn.prepare(
        "UPDATE messages SET delivered_at = $1, read_at = $2, status = $3 WHERE rowid = $4",
    )?;
    for (rowid, d, r, st) in &changed {
        n += stmt.execute(params![d, r, st, rowid])?;
    }
    phase("receipts updated");
    if n != changed.len() {
        return Err(StoreError::Rows(format!(
            "{n} message rows updated by receipts for {}",
            changed.len()
        )));
    }
    crate::cubes::apply(conn, ws, deltas)?;
    Ok(true)
}

thread_local! {
    /// Closes and receipts whose owners this thread's ingests found among the keys the
    /// process filed (tests check which way they went).
    pub(crate) static OWNERS_KNOWN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Receipt batches applied in place on this thread (tests check which way a batch
    /// took).
    pub(crate) static IN_PLACE: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `row` (one row of `messages`) with the status `status` in its column `i`.
fn with_status(
    row: &RecordBatch,
    i: usize,
    status: parley_core::enums::DeliveryStatus,
) -> Result<RecordBatch, StoreError> {
    let mut columns = row.columns().to_vec();
    columns[i] = std::sync::Arc::new(duckdb::arrow::array::StringArray::from(vec![status.wire()]));
    RecordBatch::try_new(row.schema(), columns).map_err(|e| StoreError::Rows(e.to_string()))
}

/// Messages a batch of receipts alone updates in place at most (each looked up alone);
/// a larger batch is derived.
const RECEIPTS_IN_PLACE: usize = 64;

/// Files the conversation ids (opened) and message ids (sent, received) of the batch:
/// `nk` holds them with the contact that uses them, `ek` who used the same ids before,
/// `unpended` the pending closes and receipts they resolve. Adds to `edges` the contacts
/// tied by sharing an id (SPEC §2.3: the first use wins, so both histories must be
/// walked as one).
fn file_keys(
    conn: &Connection,
    ws: &str,
    edges: &mut Vec<(String, String)>,
    mut known: Option<&mut Known>,
    limit: usize,
) -> Result<(), StoreError> {
    let used = conn.execute(
        "CREATE OR REPLACE TEMP TABLE nk AS
         SELECT DISTINCT type = 'conversation.opened' AS conv, key, contact_a AS owner
         FROM stage WHERE type IN ('conversation.opened', 'message.received', 'message.sent')",
        [],
    )?;
    let conv_hashes = few_hashes(
        conn,
        "SELECT DISTINCT hash(key) FROM nk WHERE conv",
        [],
        limit,
    )?;
    let msg_hashes = few_hashes(
        conn,
        "SELECT DISTINCT hash(key) FROM nk WHERE NOT conv",
        [],
        limit,
    )?;
    let stored_convs = may_be_stored(conn, ws, known.as_deref_mut(), Kind::ConvKey, &conv_hashes)?;
    let stored_msgs = may_be_stored(conn, ws, known.as_deref_mut(), Kind::MsgKey, &msg_hashes)?;
    // No key of the batch may be stored, and each is used by one contact of it (as many
    // distinct hashes as ids and users): no edge, nothing stored to look up (the usual
    // webhook batch), so two statements are saved.
    let none = |h: &Option<Vec<u64>>| h.as_ref().is_some_and(Vec::is_empty);
    let count = |h: &Option<Vec<u64>>| h.as_ref().map_or(usize::MAX, Vec::len);
    let alone = none(&stored_convs)
        && none(&stored_msgs)
        && count(&conv_hashes).saturating_add(count(&msg_hashes)) == used;
    let new_keys = if alone {
        "TRUE"
    } else {
        "NOT EXISTS (SELECT 1 FROM ek e WHERE e.conv = n.conv AND e.key = n.key AND e.owner = n.owner)"
    };
    if !alone {
        file_key_edges(conn, ws, edges, &stored_convs, &stored_msgs)?;
    }
    for (table, conv) in [("conv_keys", true), ("msg_keys", false)] {
        conn.execute(
            &format!(
                "INSERT INTO {table}
                 SELECT $1, hash(key) AS h, key, owner FROM nk n WHERE conv = {conv} AND {new_keys}
                 ORDER BY h"
            ),
            [ws],
        )?;
    }
    if let Some(k) = known {
        remember_owners(conn, k, &stored_convs, &stored_msgs)?;
        k.stored(Kind::ConvKey, conv_hashes.as_deref());
        k.stored(Kind::MsgKey, msg_hashes.as_deref());
    }
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE unpended AS
         SELECT p.*, n.owner FROM pending p
           JOIN (SELECT conv, key, min(owner) AS owner FROM nk GROUP BY ALL) n
             ON (p.type = 'conversation.closed') = n.conv AND p.key = n.key
         WHERE p.workspace = $1",
        [ws],
    )?;
    conn.execute(
        "DELETE FROM pending WHERE workspace = $1 AND id IN (SELECT id FROM unpended)",
        [ws],
    )?;
    Ok(())
}

/// Finds in `known` the owners of the batch's closes and receipts whose keys this
/// process filed, into the TEMP table `cached_owner`; returns how many.
fn known_owners(conn: &Connection, known: Option<&Known>) -> Result<usize, StoreError> {
    let Some(k) = known.filter(|k| k.warm()) else {
        return Ok(0);
    };
    let mut found: Vec<(i64, String)> = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT idx, type = 'conversation.closed', key FROM stage
             WHERE type IN ('conversation.closed', 'message.status')",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (idx, conv, key) = row?;
            if let Some(owner) = k.owner(conv, &key) {
                found.push((idx, owner.to_string()));
            }
        }
    }
    if found.is_empty() {
        return Ok(0);
    }
    OWNERS_KNOWN.with(|n| n.set(n.get() + found.len() as u64));
    conn.execute_batch(
        "CREATE OR REPLACE TEMP TABLE cached_owner (idx BIGINT NOT NULL, owner VARCHAR NOT NULL)",
    )?;
    let mut app = conn.appender_to_catalog_and_db("cached_owner", "temp", "main")?;
    for (idx, owner) in &found {
        app.append_row(params![idx, owner])?;
    }
    app.flush()?;
    Ok(found.len())
}

/// Keeps the first user of each key the batch files as new (its hash is in no filter, so
/// every use of it is in this batch: the least contact id among them is what a lookup
/// would answer), and forgets the keys it uses again. Without filters it knows nothing.
fn remember_owners(
    conn: &Connection,
    k: &mut Known,
    stored_convs: &Option<Vec<u64>>,
    stored_msgs: &Option<Vec<u64>>,
) -> Result<(), StoreError> {
    let (Some(convs), Some(msgs)) = (stored_convs, stored_msgs) else {
        k.forget_owners();
        return Ok(());
    };
    if !k.warm() {
        return Ok(());
    }
    let convs: HashSet<u64> = convs.iter().copied().collect();
    let msgs: HashSet<u64> = msgs.iter().copied().collect();
    let mut stmt =
        conn.prepare("SELECT conv, key, min(owner), hash(key) FROM nk GROUP BY conv, key")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, bool>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, u64>(3)?,
        ))
    })?;
    for row in rows {
        let (conv, key, owner, h) = row?;
        let stored = if conv {
            convs.contains(&h)
        } else {
            msgs.contains(&h)
        };
        if stored {
            k.forget_owner(conv, &key);
        } else {
            k.new_owner(conv, key, owner);
        }
    }
    Ok(())
}

/// Finds who used the batch's ids before (`ek`, looked up among the hashes that may be
/// stored) and adds to `edges` the contacts tied by an id: one of them used it before,
/// or two of them use it in the batch.
fn file_key_edges(
    conn: &Connection,
    ws: &str,
    edges: &mut Vec<(String, String)>,
    stored_convs: &Option<Vec<u64>>,
    stored_msgs: &Option<Vec<u64>>,
) -> Result<(), StoreError> {
    let convs = in_list("k.h", stored_convs);
    let msgs = in_list("k.h", stored_msgs);
    conn.execute(
        &format!(
            "CREATE OR REPLACE TEMP TABLE ek AS
         SELECT TRUE AS conv, k.key, k.owner FROM conv_keys k
           JOIN (SELECT DISTINCT key FROM nk WHERE conv) n ON k.h = hash(n.key) AND k.key = n.key
           WHERE k.workspace = $1{convs}
         UNION ALL
         SELECT FALSE, k.key, k.owner FROM msg_keys k
           JOIN (SELECT DISTINCT key FROM nk WHERE NOT conv) n ON k.h = hash(n.key) AND k.key = n.key
           WHERE k.workspace = $1{msgs}"
        ),
        [ws],
    )?;
    {
        let mut stmt = conn.prepare(
            "SELECT n.owner, e.owner FROM nk n JOIN ek e
               ON n.conv = e.conv AND n.key = e.key AND n.owner <> e.owner
             UNION
             SELECT m.first, n.owner FROM nk n
               JOIN (SELECT conv, key, min(owner) AS first FROM nk GROUP BY ALL HAVING count(*) > 1) m
                 ON n.conv = m.conv AND n.key = m.key AND n.owner <> m.first",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            edges.push(row?);
        }
    }
    Ok(())
}

/// Adds `edges` to the persisted union-find of contact groups.
fn join_groups(conn: &Connection, ws: &str, edges: &[(String, String)]) -> Result<(), StoreError> {
    if edges.is_empty() {
        return Ok(());
    }
    conn.execute_batch("CREATE OR REPLACE TEMP TABLE ends (contact VARCHAR)")?;
    {
        let mut app = conn.appender_to_catalog_and_db("ends", "temp", "main")?;
        for (a, b) in edges {
            app.append_row([a])?;
            app.append_row([b])?;
        }
        app.flush()?;
    }
    // Every member of every group an edge reaches.
    let members: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT contact_id, grp FROM contact_groups WHERE workspace = $1 AND grp IN (
               SELECT grp FROM contact_groups WHERE workspace = $1
                 AND contact_id IN (SELECT contact FROM ends))",
        )?;
        let rows = stmt.query_map([ws], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut uf = UnionFind::default();
    for (contact, grp) in &members {
        uf.union(contact, grp);
    }
    for (a, b) in edges {
        uf.union(a, b);
    }
    conn.execute(
        "DELETE FROM contact_groups WHERE workspace = $1 AND grp IN (
           SELECT grp FROM contact_groups WHERE workspace = $1
             AND contact_id IN (SELECT contact FROM ends))",
        [ws],
    )?;
    let mut app = conn.appender("contact_groups")?;
    for (contact, grp) in uf.components() {
        app.append_row(params![ws, contact, grp])?;
    }
    app.flush()?;
    conn.execute_batch("DROP TABLE ends")?;
    Ok(())
}

/// Union-find over contact ids; a component is named by its smallest id.
#[derive(Default)]
struct UnionFind {
    index: HashMap<String, usize>,
    names: Vec<String>,
    parent: Vec<usize>,
}

impl UnionFind {
    fn node(&mut self, id: &str) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.names.len();
        self.index.insert(id.to_string(), i);
        self.names.push(id.to_string());
        self.parent.push(i);
        i
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: &str, b: &str) {
        let (a, b) = (self.node(a), self.node(b));
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.parent[ra] = rb;
        }
    }

    /// Every node with its component's name (the smallest id in it).
    fn components(mut self) -> Vec<(String, String)> {
        let mut smallest: BTreeMap<usize, String> = BTreeMap::new();
        for i in 0..self.names.len() {
            let r = self.root(i);
            let name = &self.names[i];
            match smallest.get(&r) {
                Some(s) if s.as_str() <= name.as_str() => {}
                _ => {
                    smallest.insert(r, name.clone());
                }
            }
        }
        (0..self.names.len())
            .map(|i| {
                let r = self.root(i);
                (self.names[i].clone(), smallest[&r].clone())
            })
            .collect()
    }
}

/// Recomputes every fact of a workspace from its log.
pub(crate) fn rebuild(conn: &Connection, ws: &str, part: u64) -> Result<(), StoreError> {
    for table in crate::schema::FACT_TABLES {
        conn.execute(&format!("DELETE FROM {table} WHERE workspace = $1"), [ws])?;
    }
    conn.execute("DELETE FROM dirty WHERE workspace = $1", [ws])?;
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE touched AS
         SELECT DISTINCT owner AS contact FROM events WHERE workspace = $1",
        [ws],
    )?;
    // The facts deleted above were not counted out of the cubes: count them again.
    derive_touched(conn, ws, part, crate::schema::FACT_TABLES, None)?;
    rebuild_user_teams(conn, ws)?;
    Ok(())
}

/// The workspace's directory events (users, teams, channels), in any order.
pub(crate) fn load_directory_events(conn: &Connection, ws: &str) -> Result<Vec<Event>, StoreError> {
    load_events(
        conn,
        "SELECT body FROM directory_events WHERE workspace = $1",
        ws,
    )
}

fn rebuild_user_teams(conn: &Connection, ws: &str) -> Result<(), StoreError> {
    let events = load_directory_events(conn, ws)?;
    conn.execute("DELETE FROM user_teams WHERE workspace = $1", [ws])?;
    let mut app = conn.appender("user_teams")?;
    for s in team_spans(&events) {
        app.append_row(params![
            ws,
            s.user_id,
            s.from.micros(),
            s.to.micros(),
            s.team_id
        ])?;
    }
    app.flush()?;
    Ok(())
}

fn load_events(conn: &Connection, sql: &str, ws: &str) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let bodies = stmt.query_map([ws], |r| r.get::<_, String>(0))?;
    let mut events = Vec::new();
    for body in bodies {
        events.push(parse_stored(&body?)?);
    }
    Ok(events)
}

/// Parses a stored event body: it was validated when it was ingested.
fn parse_stored(body: &str) -> Result<Event, StoreError> {
    parse_event(body.as_bytes(), 0, 0).map_err(|e| StoreError::Corrupt {
        id: e.id.clone().unwrap_or_default(),
        reason: e.to_string(),
    })
}

/// Derives one part and stages its facts. `sql` yields a unit, then a packed event:
/// a unit (a contact walked alone, or a group) holds every event its walk needs, so
/// units are split between the cores, each reading and walking its own.
fn derive_part(
    conn: &Connection,
    ws: &str,
    sql: &str,
    staged: &mut usize,
    tables: &[&'static str],
    deltas: &mut Option<crate::cubes::Deltas>,
) -> Result<(), StoreError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    phase("part listed");
    let t0 = std::time::Instant::now();
    let batches: Vec<RecordBatch> = conn.prepare(sql)?.query_arrow([ws])?.collect();
    phase("part load");
    let t1 = std::time::Instant::now();
    // (batch, row) of each event, per share.
    let mut shares: Vec<Vec<(usize, usize)>> = vec![Vec::new(); threads];
    for (i, batch) in batches.iter().enumerate() {
        let units = batch.column(0).as_string::<i32>();
        for row in 0..batch.num_rows() {
            let h = units
                .value(row)
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
            shares[h % threads].push((i, row));
        }
    }
    let derived = on_threads(
        &shares,
        |rows| -> Result<Vec<(&str, RecordBatch)>, StoreError> {
            let events = rows
                .iter()
                .map(|&(b, row)| unpack(batches[b].column(1).as_string::<i32>().value(row)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(fact_batches(ws, &derive(events)))
        },
    );
    let t2 = std::time::Instant::now();
    phase("part walk");
    for batches in derived {
        stage_facts(conn, batches?, staged, tables, deltas)?;
    }
    phase("part staged");
    profile(&[(t1 - t0), (t2 - t1), t2.elapsed()]);
    Ok(())
}

/// With `PARLEY_PHASES`, the (load, derive, stage) times of derivation parts so far.
fn profile(d: &[std::time::Duration; 3]) {
    use std::sync::Mutex;
    static ACC: Mutex<[f64; 3]> = Mutex::new([0.0; 3]);
    if phases_on() {
        let mut acc = ACC.lock().unwrap();
        for (a, d) in acc.iter_mut().zip(d) {
            *a += d.as_secs_f64();
        }
        eprintln!(
            "  parts so far: load {:.3} derive {:.3} stage {:.3}",
            acc[0], acc[1], acc[2]
        );
    }
}

/// `f` of every item, each on its own thread (one item runs on this thread), in order.
fn on_threads<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|item| s.spawn(move || f(item))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    })
}

/// The hash ranges that split `n` contacts into parts of about `PART_CONTACTS`:
/// inclusive bounds over the whole `UBIGINT` range.
fn hash_parts(n: u64, part: u64) -> Vec<(u64, u64)> {
    let parts = n.div_ceil(part).max(1);
    let step = u64::MAX / parts;
    (0..parts)
        .map(|p| {
            let lo = p * step;
            let hi = if p + 1 == parts {
                u64::MAX
            } else {
                lo + step - 1
            };
            (lo, hi)
        })
        .collect()
}

/// The fact tables that events of `ranks` can change for the contacts walking them: a
/// receipt changes only its message (status, instants) and so the connections (a failed
/// message does not connect); a close changes its conversation and which conversation
/// later messages and assignments belong to. Any other kind may change every table
/// (new contacts, activities, ties between contacts), so all are replaced.
fn affected_tables(ranks: u16) -> Vec<&'static str> {
    if ranks & !(R_STATUS | R_CLOSED | R_DIRECTORY) != 0 || ranks == 0 {
        return crate::schema::FACT_TABLES.to_vec();
    }
    let status = ranks & R_STATUS != 0;
    let closed = ranks & R_CLOSED != 0;
    crate::schema::FACT_TABLES
        .iter()
        .copied()
        .filter(|t| match *t {
            "messages" => status || closed,
            "connections" => status,
            "conversations" | "assignments" => closed,
            _ => false,
        })
        .collect()
}

/// Re-derives the facts of every contact in `touched` and of everyone walked with them,
/// replacing their rows in `tables` (the others cannot have changed), and their counts
/// in the cubes: by deltas, compacting a cube past `cube_tail` appended rows, or, for
/// many contacts or without `cube_tail` (a rebuild, whose deleted facts were not
/// counted out), counted again from the facts.
fn derive_touched(
    conn: &Connection,
    ws: &str,
    part: u64,
    tables: &[&'static str],
    cube_tail: Option<i64>,
) -> Result<(), StoreError> {
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE dset AS
         SELECT t.contact, hash(t.contact) AS h, g.grp FROM (
           SELECT contact FROM touched
           UNION
           SELECT g2.contact_id FROM contact_groups g1
             JOIN contact_groups g2 ON g2.workspace = g1.workspace AND g2.grp = g1.grp
             WHERE g1.workspace = $1 AND g1.contact_id IN (SELECT contact FROM touched)
         ) t LEFT JOIN contact_groups g ON g.workspace = $1 AND g.contact_id = t.contact",
        [ws],
    )?;
    phase("dset");
    let contacts = listed(conn, "ch", "SELECT h FROM dset")?;
    phase("dset listed");
    // A derivation of many contacts (a bulk ingest) counts its cubes again from the
    // facts afterwards: one scan, instead of holding the changes of millions of rows.
    let walking: i64 = conn.query_row("SELECT count(*) FROM dset", [], |r| r.get(0))?;
    let mut deltas = match cube_tail {
        Some(tail) if walking <= RECOUNT_CONTACTS => {
            Some(crate::cubes::Deltas::new(conn, tables, tail)?)
        }
        _ => None,
    };
    let walked = format!(
        "workspace = $1{contacts}
         AND ch IN (SELECT h FROM dset) AND contact_id IN (SELECT contact FROM dset)"
    );
    for table in tables {
        match deltas.as_mut() {
            Some(d) => crate::cubes::delete(conn, d, table, &walked, ws)?,
            None => {
                conn.execute(&format!("DELETE FROM {table} WHERE {walked}"), [ws])?;
            }
        }
        phase(table);
    }
    // Message rows staged in `f_messages` since the last copy into the fact tables.
    let mut staged = 0;
    // Contacts walked alone, a range of hashes at a time: each range reads its own row
    // groups of `events`.
    let alone: i64 = conn.query_row("SELECT count(*) FROM dset WHERE grp IS NULL", [], |r| {
        r.get(0)
    })?;
    if alone > 0 {
        for (lo, hi) in hash_parts(alone as u64, part) {
            let owners = listed(
                conn,
                "e.oh",
                &format!("SELECT h FROM dset WHERE grp IS NULL AND h BETWEEN {lo} AND {hi}"),
            )?;
            derive_part(
                conn,
                ws,
                &format!(
                    "SELECT d.contact, e.payload FROM events e
                       JOIN (SELECT contact, h FROM dset WHERE grp IS NULL AND h BETWEEN {lo} AND {hi}) d
                         ON e.oh = d.h AND e.owner = d.contact
                     WHERE e.workspace = $1 AND e.oh BETWEEN {lo} AND {hi}{owners}"
                ),
                &mut staged,
                tables,
                &mut deltas,
            )?;
        }
    }
    // Groups walked together, whole, a few at a time.
    let groups: Vec<(String, i64)> = {
        let mut stmt = conn.prepare(
            "SELECT grp, count(*) FROM dset WHERE grp IS NOT NULL GROUP BY grp ORDER BY grp",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut start = 0;
    while start < groups.len() {
        let (mut end, mut size) = (start, 0);
        while end < groups.len() && (end == start || size + groups[end].1 <= part as i64) {
            size += groups[end].1;
            end += 1;
        }
        conn.execute_batch("CREATE OR REPLACE TEMP TABLE dgroups (grp VARCHAR)")?;
        {
            let mut app = conn.appender_to_catalog_and_db("dgroups", "temp", "main")?;
            for (grp, _) in &groups[start..end] {
                app.append_row([grp])?;
            }
            app.flush()?;
        }
        let owners = listed(
            conn,
            "e.oh",
            "SELECT h FROM dset WHERE grp IN (SELECT grp FROM dgroups)",
        )?;
        derive_part(
            conn,
            ws,
            &format!(
                "SELECT d.grp, e.payload FROM events e
                   JOIN (SELECT contact, h, grp FROM dset WHERE grp IN (SELECT grp FROM dgroups)) d
                     ON e.oh = d.h AND e.owner = d.contact
                 WHERE e.workspace = $1{owners}"
            ),
            &mut staged,
            tables,
            &mut deltas,
        )?;
        start = end;
    }
    flush_facts(conn, tables)?;
    match deltas {
        Some(d) => crate::cubes::apply(conn, ws, d)?,
        None => crate::cubes::recount(conn, ws)?,
    }
    phase("cubes");
    conn.execute_batch("DROP TABLE IF EXISTS dgroups; DROP TABLE dset; DROP TABLE touched;")?;
    Ok(())
}

/// Past this many contacts walked, a derivation counts the cubes again from the facts
/// instead of by deltas.
const RECOUNT_CONTACTS: i64 = 50_000;

/// Message rows (the most numerous facts) kept in the `f_*` scratch tables before they
/// are all copied out.
const FACT_FLUSH_ROWS: usize = 200_000;

/// Appends derived facts (as batches) to the scratch tables, copying them out when they
/// grow; `staged` counts the message rows staged since the last copy.
fn stage_facts(
    conn: &Connection,
    batches: Vec<(&str, RecordBatch)>,
    staged: &mut usize,
    tables: &[&'static str],
    deltas: &mut Option<crate::cubes::Deltas>,
) -> Result<(), StoreError> {
    for (table, batch) in batches {
        if !tables.contains(&&table[2..]) {
            continue;
        }
        if let Some(d) = deltas.as_mut() {
            d.stage(&table[2..], &batch)?;
        }
        if table == "f_messages" {
            *staged += batch.num_rows();
        }
        let mut app = scratch(conn, table)?;
        app.append_record_batch(batch)?;
        app.flush()?;
    }
    if *staged >= FACT_FLUSH_ROWS {
        flush_facts(conn, tables)?;
        *staged = 0;
    }
    Ok(())
}

/// Copies the staged facts into the fact tables with their contact hash, in hash order.
fn flush_facts(conn: &Connection, tables: &[&'static str]) -> Result<(), StoreError> {
    kill_point("flushing");
    phase("before flush");
    for table in tables {
        conn.execute_batch(&format!(
            "INSERT INTO {table} BY NAME SELECT *, hash(contact_id) AS ch FROM f_{table} ORDER BY ch;
             DELETE FROM f_{table};"
        ))?;
    }
    phase("flush");
    Ok(())
}

fn scratch<'a>(conn: &'a Connection, table: &str) -> Result<Appender<'a>, StoreError> {
    Ok(conn.appender_to_catalog_and_db(table, "temp", "main")?)
}

/// One value of a fact row, as its Arrow column takes it.
enum V<'a> {
    Str(Option<&'a str>),
    Int(Option<i64>),
    Bool(bool),
}

/// What a fact field can be appended as.
trait ToV {
    fn v(&self) -> V<'_>;
}

impl ToV for &str {
    fn v(&self) -> V<'_> {
        V::Str(Some(self))
    }
}
impl ToV for String {
    fn v(&self) -> V<'_> {
        V::Str(Some(self))
    }
}
impl ToV for Option<String> {
    fn v(&self) -> V<'_> {
        V::Str(self.as_deref())
    }
}
impl ToV for Option<&str> {
    fn v(&self) -> V<'_> {
        V::Str(*self)
    }
}
impl ToV for i64 {
    fn v(&self) -> V<'_> {
        V::Int(Some(*self))
    }
}
impl ToV for Option<i64> {
    fn v(&self) -> V<'_> {
        V::Int(*self)
    }
}
impl ToV for bool {
    fn v(&self) -> V<'_> {
        V::Bool(*self)
    }
}

/// Appends one row of values to a `Rows`.
macro_rules! row {
    ($rows:expr; $($v:expr),* $(,)?) => {
        $rows.row(&[$(ToV::v(&$v)),*])
    };
}

/// Column builders for the rows of one fact table, typed by their first row.
#[derive(Default)]
struct Rows {
    columns: Vec<Column>,
}

enum Column {
    Str(duckdb::arrow::array::StringBuilder),
    Int(duckdb::arrow::array::Int64Builder),
    Bool(duckdb::arrow::array::BooleanBuilder),
}

impl Rows {
    fn row(&mut self, values: &[V]) {
        if self.columns.is_empty() {
            self.columns = values
                .iter()
                .map(|v| match v {
                    V::Str(_) => Column::Str(Default::default()),
                    V::Int(_) => Column::Int(Default::default()),
                    V::Bool(_) => Column::Bool(Default::default()),
                })
                .collect();
        }
        for (c, v) in self.columns.iter_mut().zip(values) {
            match (c, v) {
                (Column::Str(b), V::Str(x)) => b.append_option(*x),
                (Column::Int(b), V::Int(x)) => b.append_option(*x),
                (Column::Bool(b), V::Bool(x)) => b.append_value(*x),
                _ => unreachable!("a fact field keeps its type"),
            }
        }
    }

    /// The batch, or `None` without rows.
    fn finish(self) -> Option<RecordBatch> {
        use duckdb::arrow::array::ArrayRef;
        use duckdb::arrow::datatypes::{DataType, Field, Schema};
        if self.columns.is_empty() {
            return None;
        }
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = self
            .columns
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let name = format!("c{i}");
                match c {
                    Column::Str(mut b) => (
                        Field::new(name, DataType::Utf8, true),
                        std::sync::Arc::new(b.finish()) as ArrayRef,
                    ),
                    Column::Int(mut b) => (
                        Field::new(name, DataType::Int64, true),
                        std::sync::Arc::new(b.finish()) as ArrayRef,
                    ),
                    Column::Bool(mut b) => (
                        Field::new(name, DataType::Boolean, true),
                        std::sync::Arc::new(b.finish()) as ArrayRef,
                    ),
                }
            })
            .unzip();
        Some(
            RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), arrays)
                .expect("columns match the schema"),
        )
    }
}

/// The facts of one derivation as Arrow batches of the `f_*` scratch tables.
pub(crate) fn fact_batches(ws: &str, f: &Facts) -> Vec<(&'static str, RecordBatch)> {
    let mut out = Vec::with_capacity(6);
    let (table, mut app) = ("f_contacts", Rows::default());
    // Each contact's name and its folding, carried by every fact row of the contact.
    let mut names: HashMap<&str, (Option<&str>, Option<String>)> = HashMap::new();
    for c in &f.contacts {
        let folded = c.name.as_deref().map(fold_case);
        row!(app; ws, c.contact_id, c.name, folded);
        names.insert(&c.contact_id, (c.name.as_deref(), folded));
    }
    let name = |id: &str| {
        names
            .get(id)
            .map_or((None, None), |(n, f)| (*n, f.as_deref()))
    };
    out.extend(app.finish().map(|b| (table, b)));
    let (table, mut app) = ("f_conversations", Rows::default());
    for c in &f.conversations {
        let (contact_name, name_folded) = name(&c.contact_id);
        let close = c.close.as_ref();
        let last_assignee = c.last_assignee.as_ref().map(|a| match a {
            Assignee::User(u) => u.as_str(),
            Assignee::Unassigned => "",
        });
        row!(app;
            ws,
            c.conversation_id,
            c.contact_id,
            c.opened_at.micros(),
            c.opened_source.wire(),
            c.opened_channel,
            c.contact_type.wire(),
            close.map(|x| x.at.micros()),
            close.map(|x| x.source.wire()),
            close.and_then(|x| x.by.as_deref()),
            close.and_then(|x| x.category.as_deref()),
            close.and_then(|x| x.summary.as_deref()),
            c.first_assignment_at.map(|t| t.micros()),
            c.first_assignee,
            c.first_response_at.map(|t| t.micros()),
            c.first_response_by,
            c.last_assignment_at.map(|t| t.micros()),
            last_assignee,
            c.time_to_first_assignment,
            c.first_response_time,
            c.first_assignment_to_first_response,
            c.last_assignment_to_response,
            c.resolution_time,
            c.first_assignment_to_close,
            c.last_assignment_to_close,
            c.average_response_time,
            c.assignments,
            c.incoming_messages,
            c.outgoing_messages,
            c.responses,
            contact_name,
            name_folded,
        );
    }
    out.extend(app.finish().map(|b| (table, b)));
    let (table, mut app) = ("f_messages", Rows::default());
    for m in &f.messages {
        let (contact_name, name_folded) = name(&m.contact_id);
        row!(app;
            ws,
            m.message_id,
            m.contact_id,
            m.conversation_id,
            m.incoming,
            m.at.micros(),
            m.channel_id,
            m.source.map(|s| s.wire()),
            m.user_id,
            m.message_type.map(|t| t.wire()),
            m.subtype,
            m.broadcast,
            m.content,
            m.status.map(|s| s.wire()),
            m.delivered_at.map(|t| t.micros()),
            m.read_at.map(|t| t.micros()),
            m.failed_at.map(|t| t.micros()),
            m.error,
            contact_name,
            name_folded,
        );
    }
    out.extend(app.finish().map(|b| (table, b)));
    let (table, mut app) = ("f_activities", Rows::default());
    for a in &f.activities {
        let (contact_name, name_folded) = name(&a.contact_id);
        row!(app;
            ws,
            a.event_id,
            a.kind.wire(),
            a.at.micros(),
            a.contact_id,
            a.merged_contact_id,
            a.source,
            a.user_id,
            contact_name,
            name_folded,
            a.merged_contact_id.as_deref().and_then(|m| name(m).1),
        );
    }
    out.extend(app.finish().map(|b| (table, b)));
    let (table, mut app) = ("f_connections", Rows::default());
    for c in &f.connections {
        let (contact_name, name_folded) = name(&c.contact_id);
        row!(app;
            ws,
            c.contact_id,
            c.channel_id,
            c.at.micros(),
            c.message_id,
            c.source,
            c.user_id,
            contact_name,
            name_folded,
        );
    }
    out.extend(app.finish().map(|b| (table, b)));
    let (table, mut app) = ("f_assignments", Rows::default());
    for a in &f.assignments {
        let (contact_name, name_folded) = name(&a.contact_id);
        row!(app;
            ws,
            a.event_id,
            a.at.micros(),
            a.conversation_id,
            a.contact_id,
            a.previous_assignee,
            a.new_assignee,
            a.source.wire(),
            a.assigned_by,
            contact_name,
            name_folded,
        );
    }
    out.extend(app.finish().map(|b| (table, b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_parts_cover_the_whole_range_without_overlap() {
        for n in [0, 1, PART_CONTACTS, PART_CONTACTS + 1, 300_000] {
            let parts = hash_parts(n, PART_CONTACTS);
            assert_eq!(parts.len() as u64, n.div_ceil(PART_CONTACTS).max(1));
            assert_eq!(parts[0].0, 0);
            assert_eq!(parts.last().unwrap().1, u64::MAX);
            for w in parts.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0, "adjacent and disjoint");
            }
        }
    }

    #[test]
    fn union_find_names_each_component_by_its_smallest_id() {
        let mut uf = UnionFind::default();
        uf.union("c3", "c2");
        uf.union("c9", "c4");
        uf.union("c2", "c9");
        uf.union("x", "y");
        let mut got = uf.components();
        got.sort();
        let want: Vec<(String, String)> = [
            ("c2", "c2"),
            ("c3", "c2"),
            ("c4", "c2"),
            ("c9", "c2"),
            ("x", "x"),
            ("y", "x"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }
}
