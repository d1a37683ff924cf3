//! parley's store: the event log, the derived fact tables and the SQL of every report,
//! behind the [`Store`] trait. [`DuckStore`] is the embedded default, one DuckDB file in
//! the data directory.

mod columns;
mod cubes;
mod ingest;
mod query;
pub mod schema;
mod seen;
pub mod spool;
mod tokens;

pub use ingest::validate;
pub use query::check_log_filters;
pub use seen::IdFilter;
pub use tokens::{Principal, Scope};

use std::io::BufRead;
use std::path::Path;
use std::sync::Mutex;

use duckdb::Connection;
use parley_core::doc::{LogPage, ReportDoc};
use parley_core::event::EventError;
use parley_core::report::{Filters, Log, Report};
use parley_core::request::{self, RequestError, View};
use parley_core::time::Range;

/// A tenant: its id, IANA zone and display name (serialized in that order, SPEC §8.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Workspace {
    pub id: String,
    pub timezone: String,
    pub name: String,
}

/// How far an ingest has come, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Bytes of the batch read and validated so far.
    Read(u64),
    /// The batch is staged; facts of the touched contacts are being derived.
    Deriving,
}

/// The outcome of one ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestSummary {
    pub accepted: u64,
    pub duplicates: u64,
}

/// What a report, log or export is asked for.
#[derive(Debug, Clone)]
pub struct Query {
    pub workspace: Workspace,
    pub report: Report,
    pub range: Range,
    pub filters: Filters,
}

/// The values a workspace's filters can be given (a dashboard's "+ Add filter"): its
/// users, teams and channels not deleted, as `(id, name)` sorted by name, and the
/// conversation categories and broadcast names its facts hold, sorted. At most
/// `FilterOptions::MAX` of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterOptions {
    pub users: Vec<(String, String)>,
    pub teams: Vec<(String, String)>,
    pub channels: Vec<(String, String)>,
    pub categories: Vec<String>,
    pub broadcasts: Vec<String>,
}

impl FilterOptions {
    /// Values offered per dimension at most.
    pub const MAX: usize = 500;
}

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] duckdb::Error),
    #[error("could not read the batch: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid batch, nothing stored: {0}")]
    InvalidBatch(#[from] EventError),
    #[error("unknown workspace {0:?}")]
    UnknownWorkspace(String),
    #[error("workspace {0:?} already exists")]
    WorkspaceExists(String),
    #[error("the {log} log has no {filter} dimension: filter not applicable")]
    FiltersNotApplicable { log: &'static str, filter: String },
    #[error("could not create data dir {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the data dir was written by a build whose DuckDB hashes keys differently: ingest its events into a new data dir with this build")]
    HashChanged,
    #[error("could not read rows from the database: {0}")]
    Rows(String),
    #[error("stored event {id:?} no longer parses: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("unknown or revoked token")]
    UnknownToken,
    #[error("the data dir {path} is in use by another process{}: stop it first, or, if it is `parley serve`, go through its HTTP API", pid.map(|p| format!(" (PID {p})")).unwrap_or_default())]
    InUse { path: String, pid: Option<u32> },
    /// The caller's request itself is bad (an unknown log, a bad date, a workspace id
    /// outside the pattern …): the same refusal for the CLI and the API.
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// The process holding DuckDB's lock, from its message (`… is held in PATH (PID n)`).
fn lock_holder(message: &str) -> Option<u32> {
    let (_, rest) = message.split_once("(PID ")?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The query that a caller's strings ask of `workspace`'s `report`: the range in the
/// workspace's zone (`now` defaulting to the present) and the filters, checked once
/// here for the CLI and the HTTP API alike.
pub fn query(
    store: &dyn Store,
    workspace: &str,
    report: Report,
    view: &View,
) -> Result<Query, StoreError> {
    let workspace = store.workspace(workspace)?;
    let (tz, _) = request::zone(&workspace.timezone)?;
    let present = parley_core::time::Instant::from_timestamp(jiff::Timestamp::now());
    let (range, filters) = view.resolve(report, &tz, present)?;
    Ok(Query {
        workspace,
        report,
        range,
        filters,
    })
}

/// The storage behind parley. A server backend implements the same trait later.
///
/// A store is shared between threads: reads (workspaces, reports, logs, exports) run
/// concurrently, each on a consistent snapshot of committed batches, while writes
/// (workspace creation, ingest, rebuild) run one at a time and never block a read.
pub trait Store: Send + Sync {
    /// Creates the workspace, its id checked against SPEC §8.3's pattern and its zone
    /// stored in its canonical spelling; returns it as stored.
    fn create_workspace(&self, ws: &Workspace) -> Result<Workspace, StoreError>;
    fn workspaces(&self) -> Result<Vec<Workspace>, StoreError>;
    fn workspace(&self, id: &str) -> Result<Workspace, StoreError>;
    /// Creates an API token for the workspace and returns its text, which is stored only
    /// as a hash: this is the one time it is seen.
    fn create_token(&self, workspace: &str, scope: Scope) -> Result<String, StoreError>;
    /// Revokes a live token; returns its workspace.
    fn revoke_token(&self, token: &str) -> Result<String, StoreError>;
    /// Whom a live token speaks for; `None` for anything else.
    fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError>;
    /// Validates a whole NDJSON batch and stores it atomically: on any invalid event
    /// nothing is stored. `progress` hears how far it has come.
    fn ingest(
        &self,
        workspace: &str,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestSummary, StoreError>;
    /// Files a batch as [`Store::ingest`] does (the same validation, all or nothing,
    /// durable when it returns) but leaves the facts of the contacts it touches to the
    /// next [`Store::settle`]: a webhook pays for filing its events only, and one settle
    /// derives the contacts of many batches together. A read settles its workspace
    /// first, so no report, log or export ever sees events without their facts.
    fn ingest_deferred(
        &self,
        workspace: &str,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestSummary, StoreError>;
    /// Files several batches as [`Store::ingest_deferred`] files each, in one
    /// transaction (a group commit): each batch is validated and refused alone, and the
    /// others are filed as one ingest of their concatenation would file them (an id in
    /// two of them counts as the later one's duplicate). Returns each batch's outcome;
    /// an `Err` of the whole means none was filed.
    fn ingest_deferred_group(
        &self,
        workspace: &str,
        inputs: &mut [&mut dyn BufRead],
    ) -> Result<Vec<Result<IngestSummary, StoreError>>, StoreError> {
        Ok(inputs
            .iter_mut()
            .map(|input| self.ingest_deferred(workspace, &mut **input, &mut |_| {}))
            .collect())
    }
    /// Derives the facts of every batch of the workspace ingested with
    /// [`Store::ingest_deferred`] and not settled yet, in one transaction; returns how
    /// many contacts it derived (0 when nothing was waiting).
    fn settle(&self, workspace: &str) -> Result<u64, StoreError>;
    /// Recomputes every fact of the workspace from its event log.
    fn rebuild(&self, workspace: &str) -> Result<(), StoreError>;
    fn report(&self, q: &Query) -> Result<ReportDoc, StoreError>;
    /// The values the workspace's filters can be given.
    fn filter_options(&self, workspace: &str) -> Result<FilterOptions, StoreError>;
    fn log_page(
        &self,
        q: &Query,
        log: Log,
        page: u64,
        per_page: u64,
    ) -> Result<LogPage, StoreError>;
    /// Streams every row of a log to `sink` as CSV fields (header excluded); returns the
    /// number of rows.
    fn export(
        &self,
        q: &Query,
        log: Log,
        sink: &mut dyn FnMut(&[String]) -> std::io::Result<()>,
    ) -> Result<u64, StoreError>;
}

/// The embedded DuckDB store: one DuckDB database, one writer connection (which alone
/// holds the TEMP scratch tables of ingest) and a pool of reader connections.
pub struct DuckStore {
    /// Ingest, rebuild and workspace creation, one at a time.
    writer: Mutex<Connection>,
    /// Where reader connections come from: cloned from it (never used for queries, so
    /// never held for long).
    origin: Mutex<Connection>,
    /// Idle reader connections, reused by the next read.
    readers: Mutex<Vec<Connection>>,
    /// Contacts derived together, events sorted together at most; see
    /// [`DuckStore::with_part_contacts`].
    sizes: ingest::Sizes,
    /// Whether reports may count from the cubes (`cubes.rs`); tests compare both ways.
    cubes: bool,
    /// Whether a read settles its workspace's deferred batches first (the default), or
    /// reads the facts of the batches settled so far (`with_settled_reads`).
    settle_reads: bool,
    /// With reads that do not settle: the connection settles run on, with its own TEMP
    /// scratch tables, so that a settle (facts, cubes) runs beside the writer's filings
    /// (the log, ids, keys, `dirty`) instead of holding the writer.
    settler: Option<Mutex<Connection>>,
    /// Filters of the ids and keys stored, per workspace (`seen.rs`); locked after the
    /// writer.
    seen: Mutex<seen::Seen>,
}

/// A reader connection lent by the pool, inside its transaction; it goes back when
/// dropped, its transaction rolled back unless `run` committed it.
struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a Mutex<Vec<Connection>>,
    /// Whether the transaction is still open (duckdb-rs's `is_autocommit` is always
    /// true, so the state is kept here).
    open: bool,
}

impl Reader<'_> {
    /// `f` on this connection, then the transaction committed.
    fn run<T>(
        mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = f(&self)?;
        self.open = false;
        self.execute_batch("COMMIT")?;
        Ok(out)
    }
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("held until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A read that failed midway, or that restarts, leaves its transaction open:
            // a connection that cannot end it is not reused.
            if !self.open || conn.execute_batch("ROLLBACK").is_ok() {
                lock(self.pool).push(conn);
            }
        }
    }
}

/// Locks a mutex; a panic of another thread while it held the lock does not poison the
/// store (a connection's state is DuckDB's, which rolls back what that thread left).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `PARLEY_PHASES` asks for the time of each ingest phase on stderr (read once).
pub(crate) fn phases_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("PARLEY_PHASES").is_some())
}

/// With `PARLEY_PHASES`, prints the time since the previous phase of this thread ended
/// (a server files and settles on two threads at once).
pub(crate) fn phase(name: &str) {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    if phases_on() {
        let now = std::time::Instant::now();
        if let Some(t) = LAST.with(|l| l.replace(Some(now))) {
            let thread = std::thread::current();
            eprintln!(
                "phase {name}: {:.3} s ({})",
                (now - t).as_secs_f64(),
                thread.name().unwrap_or("main")
            );
        }
    }
}

/// How many receipt-only batches this thread's ingests applied to their messages' rows
/// in place instead of re-deriving their contacts (for tests of that path).
#[doc(hidden)]
pub fn receipt_batches_in_place() -> u64 {
    ingest::IN_PLACE.with(std::cell::Cell::get)
}

/// How many closes and receipts this thread's ingests resolved from the keys the
/// process filed, without a lookup (for tests of that path).
#[doc(hidden)]
pub fn owners_known() -> u64 {
    ingest::OWNERS_KNOWN.with(std::cell::Cell::get)
}

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "parley.duckdb";

/// DuckDB's memory limit unless `PARLEY_MEMORY_LIMIT` (DuckDB's syntax: `4GB`) says
/// otherwise: past it DuckDB spills sorts, joins and temp tables to disk, so a bulk
/// ingest's peak RSS stays near it plus one derivation part.
pub const DEFAULT_MEMORY_LIMIT: &str = "1GB";

/// Rows per row group of the database file (DuckDB's default is 122,880). A lookup of a
/// few contacts reads one row group per contact, whole: smaller groups read less, while
/// report scans hardly notice.
pub const ROW_GROUP_SIZE: u32 = 16_384;

/// A connection to the database at `path` (`:memory:` for none), attached with
/// `ROW_GROUP_SIZE` and made the default catalog, with the session's settings. The
/// connection itself is in memory, so DuckDB would spill to `.tmp` in the working
/// directory: spills go beside the database file instead (`parley.duckdb.tmp`), and an
/// in-memory store does not spill.
fn attach(path: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory()?;
    let quote = |s: &str| s.replace('\'', "''");
    let temp = if path == ":memory:" {
        String::new()
    } else {
        format!("{path}.tmp")
    };
    let limit =
        std::env::var("PARLEY_MEMORY_LIMIT").unwrap_or_else(|_| DEFAULT_MEMORY_LIMIT.into());
    // `preserve_insertion_order` stays on: without it DuckDB hands a sorted result to a
    // streaming reader in whatever order its threads finish (an export came out of
    // order), and an `INSERT … ORDER BY` need not lay rows out in that order.
    conn.execute_batch(&format!(
        "SET temp_directory = '{}';
         SET memory_limit = '{}';
         ATTACH '{}' AS parley (ROW_GROUP_SIZE {ROW_GROUP_SIZE}); USE parley;",
        quote(&temp),
        limit.replace('\'', ""),
        quote(path)
    ))?;
    Ok(conn)
}

impl DuckStore {
    /// Opens (creating if needed) the store in `dir`, applying pending migrations.
    pub fn open(dir: &Path) -> Result<DuckStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        let store =
            DuckStore::at(&dir.join(DB_FILE).display().to_string()).map_err(|e| match e {
                StoreError::Db(ref db) if db.to_string().contains("Could not set lock on file") => {
                    StoreError::InUse {
                        path: dir.display().to_string(),
                        pid: lock_holder(&db.to_string()),
                    }
                }
                other => other,
            })?;
        // Batches a server acknowledged and did not file before it stopped.
        spool::replay(&store, dir)?;
        Ok(store)
    }

    /// Of `ids`, those stored in `workspace` (exactly: by id, not by hash).
    pub fn stored_ids(
        &self,
        workspace: &str,
        ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        self.read(|conn| {
            // The hashes first, so that the lookup lists constants (row groups are
            // skipped by their min and max hash).
            let marks = vec!["(?)"; ids.len()].join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT DISTINCT hash(x) FROM (VALUES {marks}) t(x)"
            ))?;
            let hashes: Vec<String> = stmt
                .query_map(duckdb::params_from_iter(ids.iter()), |r| r.get::<_, u64>(0))?
                .map(|h| h.map(|h| h.to_string()))
                .collect::<Result<_, _>>()?;
            let marks = vec!["?"; ids.len()].join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT id FROM event_ids WHERE workspace = ? AND h IN ({}) AND id IN ({marks})",
                hashes.join(", ")
            ))?;
            let params = std::iter::once(workspace).chain(ids.iter().copied());
            let found = stmt
                .query_map(duckdb::params_from_iter(params), |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()?;
            Ok(found)
        })
    }

    /// A filter of every event id stored in `workspace`, with room for as many more
    /// again, and at least `spare` more (so that rebuilding it as ids arrive, a scan of
    /// them all, happens a logarithmic number of times).
    pub fn id_filter(&self, workspace: &str, spare: usize) -> Result<IdFilter, StoreError> {
        self.read(|conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM event_ids WHERE workspace = ?",
                [workspace],
                |r| r.get(0),
            )?;
            let n = n as usize;
            let mut filter = IdFilter::with_capacity(n + spare.max(n));
            let mut stmt = conn.prepare("SELECT id FROM event_ids WHERE workspace = ?")?;
            for batch in stmt.query_arrow([workspace])? {
                use duckdb::arrow::array::AsArray;
                let column = batch.column(0).as_string::<i32>();
                column.iter().flatten().for_each(|id| filter.insert(id));
            }
            Ok(filter)
        })
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<DuckStore, StoreError> {
        DuckStore::at(":memory:")
    }

    /// The store on the database at `path` (`:memory:` for none), migrated.
    fn at(path: &str) -> Result<DuckStore, StoreError> {
        DuckStore::on(attach(path)?)
    }

    /// The store on an attached connection, migrated.
    fn on(conn: Connection) -> Result<DuckStore, StoreError> {
        let origin = conn.try_clone()?;
        let store = DuckStore {
            writer: Mutex::new(conn),
            origin: Mutex::new(origin),
            readers: Mutex::new(Vec::new()),
            sizes: ingest::Sizes::default(),
            cubes: true,
            settle_reads: true,
            settler: None,
            seen: Mutex::new(seen::Seen::default()),
        };
        store.migrate(&lock(&store.writer))?;
        Ok(store)
    }

    /// A reader connection, in a transaction: every query of one read sees the same
    /// committed batches, never a batch half-applied by the writer.
    fn reader(&self) -> Result<Reader<'_>, StoreError> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = lock(&self.origin).try_clone()?;
                conn.execute_batch("USE parley")?;
                conn
            }
        };
        conn.execute_batch("BEGIN TRANSACTION")?;
        Ok(Reader {
            conn: Some(conn),
            pool: &self.readers,
            open: true,
        })
    }

    /// Whether reads settle a workspace's deferred batches before reading (the default).
    /// Off, a read never settles: it sees the facts of the batches settled so far, each
    /// batch's whole or none of them (a settle is one transaction), and whoever turns
    /// this off settles (the HTTP server's background settler does, and makes each read
    /// wait for the batches acknowledged before it): many readers then never queue for
    /// the writer behind one another's settles.
    ///
    /// Off, settles also get a connection of their own: a settle derives facts while the
    /// writer files the next batches, each in its own transaction (they write different
    /// tables; `dirty` rows are appended by one and the ones a settle saw deleted by it).
    /// Nothing else may then derive: ingest must be deferred, and no rebuild may run
    /// while settles do.
    pub fn with_settled_reads(mut self, on: bool) -> Result<DuckStore, StoreError> {
        self.settle_reads = on;
        self.settler = if on {
            None
        } else {
            let conn = lock(&self.origin).try_clone()?;
            conn.execute_batch("USE parley")?;
            conn.execute_batch(schema::SCRATCH)?;
            Some(Mutex::new(conn))
        };
        Ok(self)
    }

    /// Runs `f` on a reader connection inside a snapshot in which workspace `ws` has no
    /// deferred batch left to settle (settling it first when it has), unless reads do not
    /// settle (`with_settled_reads(false)`).
    fn read_settled<T>(
        &self,
        ws: &str,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.settle_reads {
            return self.read(f);
        }
        loop {
            let reader = self.reader()?;
            let waiting: i64 = reader.query_row(
                "SELECT count(*) FROM dirty WHERE workspace = ?",
                [ws],
                |r| r.get(0),
            )?;
            if waiting == 0 {
                return reader.run(f);
            }
            drop(reader);
            self.settle(ws)?;
        }
    }

    /// Runs `f` on a reader connection inside its snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.reader()?.run(f)
    }

    /// Derives at most `n` contacts together (at least 1), sorts at most `500 × n`
    /// events together into the log, compacts a cube after `4 × n` appended rows at
    /// least, and drops the filters of stored hashes past `1,000 × n` hashes in a batch:
    /// tests use a tiny value so that small data crosses the boundaries of hash ranges,
    /// group chunks, sorted ranges, cube compactions and filters.
    #[doc(hidden)]
    pub fn with_part_contacts(mut self, n: u64) -> DuckStore {
        let n = n.max(1);
        self.sizes = ingest::Sizes {
            part_contacts: n,
            sorted_at_once: n.saturating_mul(500),
            cube_tail: i64::try_from(n.saturating_mul(4)).unwrap_or(i64::MAX),
            export_window: n.saturating_mul(3),
            filtered_keys: usize::try_from(n.saturating_mul(1_000))
                .unwrap_or(usize::MAX)
                .min(ingest::FILTERED_KEYS),
        };
        self
    }

    /// Whether reports may count from the cubes (the default) or only from the facts:
    /// tests check that both ways give the same documents.
    #[doc(hidden)]
    pub fn with_cubes(mut self, on: bool) -> DuckStore {
        self.cubes = on;
        self
    }

    fn migrate(&self, conn: &Connection) -> Result<(), StoreError> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL)",
        )?;
        let applied: i64 = conn.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        for (version, sql) in schema::MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
            in_transaction(conn, || {
                conn.execute_batch(
                    &sql.replace("{PACK}", &columns::pack_sql())
                        .replace("{CUBES}", &cubes::create_sql(*version)),
                )?;
                conn.execute("INSERT INTO schema_migrations VALUES (?)", [version])?;
                if *version == 2 {
                    conn.execute(
                        "INSERT INTO meta SELECT 'hash_probe', hash(?)::VARCHAR",
                        [schema::HASH_PROBE],
                    )?;
                }
                Ok(())
            })?;
        }
        let (stored, now): (String, String) = conn.query_row(
            "SELECT value, hash(?)::VARCHAR FROM meta WHERE key = 'hash_probe'",
            [schema::HASH_PROBE],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if stored != now {
            return Err(StoreError::HashChanged);
        }
        conn.execute_batch(schema::SCRATCH)?;
        self.reingest_v1_log(conn)
    }

    /// Files a log of schema 1 (moved aside as `events_v1` by migration 2) through
    /// today's ingest, one workspace at a time, then drops it.
    fn reingest_v1_log(&self, conn: &Connection) -> Result<(), StoreError> {
        let v1: i64 = conn.query_row(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'events_v1' AND NOT temporary",
            [],
            |r| r.get(0),
        )?;
        if v1 == 0 {
            return Ok(());
        }
        in_transaction(conn, || {
            for ws in workspaces(conn)? {
                let mut lines = Vec::new();
                {
                    let mut stmt =
                        conn.prepare("SELECT body FROM events_v1 WHERE workspace = ?")?;
                    let bodies = stmt.query_map([&ws.id], |r| r.get::<_, String>(0))?;
                    for body in bodies {
                        lines.extend_from_slice(body?.as_bytes());
                        lines.push(b'\n');
                    }
                }
                ingest::ingest(
                    conn,
                    &ws.id,
                    &mut lines.as_slice(),
                    &mut |_| {},
                    self.sizes,
                    ingest::Derive::Now,
                    None,
                )?;
            }
            conn.execute_batch("DROP TABLE events_v1")?;
            Ok(())
        })
    }

    /// Ingests a batch into a known workspace on the writer, deriving its facts `when`.
    fn ingest_when(
        &self,
        workspace: &str,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(Progress),
        when: ingest::Derive,
    ) -> Result<IngestSummary, StoreError> {
        self.filing(workspace, |conn, known| {
            ingest::ingest(
                conn,
                workspace,
                input,
                progress,
                self.sizes,
                when,
                Some(known),
            )
        })
    }

    /// Runs `file` (an ingest into `workspace`) on the writer in one transaction, with
    /// the workspace's filters; keeps the owners of the keys it filed if it committed.
    fn filing<T>(
        &self,
        workspace: &str,
        file: impl FnOnce(&Connection, &mut seen::Known) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = lock(&self.writer);
        let result = in_transaction(&conn, || {
            known_workspace(&conn, workspace)?;
            let mut seen = lock(&self.seen);
            file(&conn, seen.of(workspace))
        });
        phase("commit");
        // Still holding the writer: the owners of the batch's new keys are kept only if
        // it committed, before any other batch can use them.
        let mut seen = lock(&self.seen);
        match &result {
            Ok(_) => seen.of(workspace).committed(),
            Err(_) => seen.of(workspace).rolled_back(),
        }
        result
    }

    /// Builds the filters of the ids and keys stored in `workspace` now (`seen.rs`), so
    /// that this process's next batches look up only the hashes they may hold: a
    /// long-lived process (the server) calls it at start; without it, the second batch
    /// of a process pays the scans (1.6-1.9 s at L).
    pub fn know_stored(&self, workspace: &str) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        known_workspace(&conn, workspace)?;
        let mut seen = lock(&self.seen);
        seen.of(workspace).build_all(&conn, workspace)
    }

    /// Runs `f` on the writer connection in one transaction, after any write before it.
    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = lock(&self.writer);
        in_transaction(&conn, || f(&conn))
    }
}

/// Runs `f` in one transaction on `conn`: committed if it succeeds, rolled back otherwise.
fn in_transaction<T>(
    conn: &Connection,
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("BEGIN TRANSACTION")?;
    match f() {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            // The original error matters more than a failed rollback.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn workspaces(conn: &Connection) -> Result<Vec<Workspace>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, timezone, name FROM workspaces ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Workspace {
            id: r.get(0)?,
            timezone: r.get(1)?,
            name: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether workspace `id` exists (in the snapshot `conn` sees).
fn workspace_exists(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM workspaces WHERE id = ?", [id], |r| {
        r.get(0)
    })?;
    Ok(n > 0)
}

/// Fails with `UnknownWorkspace` unless `id` exists.
fn known_workspace(conn: &Connection, id: &str) -> Result<(), StoreError> {
    if workspace_exists(conn, id)? {
        Ok(())
    } else {
        Err(StoreError::UnknownWorkspace(id.to_string()))
    }
}

impl Store for DuckStore {
    fn create_workspace(&self, ws: &Workspace) -> Result<Workspace, StoreError> {
        request::workspace_id(&ws.id)?;
        // Zones are matched in any case; the canonical spelling is stored, which
        // reports echo.
        let (_, timezone) = request::zone(&ws.timezone)?;
        let ws = &Workspace {
            timezone,
            ..ws.clone()
        };
        self.write(|conn| {
            if workspace_exists(conn, &ws.id)? {
                return Err(StoreError::WorkspaceExists(ws.id.clone()));
            }
            conn.execute(
                "INSERT INTO workspaces VALUES (?, ?, ?)",
                duckdb::params![ws.id, ws.timezone, ws.name],
            )?;
            Ok(())
        })?;
        Ok(ws.clone())
    }

    fn workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        self.read(workspaces)
    }

    fn workspace(&self, id: &str) -> Result<Workspace, StoreError> {
        self.workspaces()?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| StoreError::UnknownWorkspace(id.to_string()))
    }

    fn create_token(&self, workspace: &str, scope: Scope) -> Result<String, StoreError> {
        self.write(|conn| {
            known_workspace(conn, workspace)?;
            tokens::create(conn, workspace, scope)
        })
    }

    fn revoke_token(&self, token: &str) -> Result<String, StoreError> {
        self.write(|conn| tokens::revoke(conn, token))
    }

    fn authenticate(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        self.read(|conn| tokens::authenticate(conn, token))
    }

    fn ingest(
        &self,
        workspace: &str,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestSummary, StoreError> {
        self.ingest_when(workspace, input, progress, ingest::Derive::Now)
    }

    fn ingest_deferred(
        &self,
        workspace: &str,
        input: &mut dyn BufRead,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<IngestSummary, StoreError> {
        self.ingest_when(workspace, input, progress, ingest::Derive::Deferred)
    }

    fn ingest_deferred_group(
        &self,
        workspace: &str,
        inputs: &mut [&mut dyn BufRead],
    ) -> Result<Vec<Result<IngestSummary, StoreError>>, StoreError> {
        self.filing(workspace, |conn, known| {
            ingest::ingest_group(
                conn,
                workspace,
                inputs,
                &mut |_| {},
                self.sizes,
                ingest::Derive::Deferred,
                Some(known),
            )
        })
    }

    fn settle(&self, workspace: &str) -> Result<u64, StoreError> {
        let settle = |conn: &Connection| {
            known_workspace(conn, workspace)?;
            ingest::settle(conn, workspace, self.sizes, 0)
        };
        match &self.settler {
            Some(settler) => {
                let conn = lock(settler);
                in_transaction(&conn, || settle(&conn))
            }
            None => self.write(settle),
        }
    }

    fn rebuild(&self, workspace: &str) -> Result<(), StoreError> {
        self.write(|conn| {
            known_workspace(conn, workspace)?;
            ingest::rebuild(conn, workspace, self.sizes.part_contacts)
        })
    }

    fn report(&self, q: &Query) -> Result<ReportDoc, StoreError> {
        self.read_settled(&q.workspace.id, |conn| query::report(conn, q, self.cubes))
    }

    fn filter_options(&self, workspace: &str) -> Result<FilterOptions, StoreError> {
        self.read_settled(workspace, |conn| {
            known_workspace(conn, workspace)?;
            query::filter_options(conn, workspace)
        })
    }

    fn log_page(
        &self,
        q: &Query,
        log: Log,
        page: u64,
        per_page: u64,
    ) -> Result<LogPage, StoreError> {
        self.read_settled(&q.workspace.id, |conn| {
            query::log_page(conn, q, log, page, per_page, self.cubes)
        })
    }

    fn export(
        &self,
        q: &Query,
        log: Log,
        sink: &mut dyn FnMut(&[String]) -> std::io::Result<()>,
    ) -> Result<u64, StoreError> {
        let window = self.sizes.export_window;
        self.read_settled(&q.workspace.id, |conn| {
            query::export(conn, q, log, window, sink)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log filed by schema 3 (activity events, and pending ones, as typed columns) is
    /// packed by migration 4 without losing a field: a rebuild derives the facts, and a
    /// pending receipt still counts once its message arrives.
    #[test]
    fn a_typed_log_is_packed_on_open() {
        let conn = attach(":memory:").unwrap();
        conn.execute_batch("CREATE TABLE schema_migrations (version BIGINT NOT NULL)")
            .unwrap();
        for (version, sql) in &schema::MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (?)", [version])
                .unwrap();
        }
        conn.execute(
            "INSERT INTO meta SELECT 'hash_probe', hash(?)::VARCHAR",
            [schema::HASH_PROBE],
        )
        .unwrap();
        conn.execute_batch("INSERT INTO workspaces VALUES ('w', 'UTC', 'w')")
            .unwrap();
        let lines = [
            r#"{"id":"o","type":"conversation.opened","at":"2026-01-05T10:00:00Z","conversation_id":"v","contact_id":"c","source":"contact","channel_id":"wa"}"#,
            r#"{"id":"m","type":"message.received","at":"2026-01-05T10:01:00Z","message_id":"m","contact_id":"c","channel_id":"wa","content":{"type":"text","text":"12:-é😀 a:b"}}"#,
            r#"{"id":"s","type":"message.sent","at":"2026-01-05T10:02:00Z","message_id":"m2","contact_id":"c","channel_id":"wa","source":"user","user_id":"u1","message_type":"session","content":{"type":"image"}}"#,
            r#"{"id":"x","type":"conversation.closed","at":"2026-01-05T10:05:00Z","conversation_id":"v","source":"user","user_id":"u1","category":"Sales"}"#,
            r#"{"id":"r","type":"message.status","at":"2026-01-05T10:09:00Z","message_id":"m9","status":"read"}"#,
        ];
        let typed = format!("id, type, at_us, rank, {}", columns::TEXT.join(", "));
        let marks = vec!["?"; 4 + columns::TEXT.len()].join(", ");
        for line in lines {
            let e = parley_core::event::parse_event(line.as_bytes(), 1, 0).unwrap();
            let mut values: Vec<duckdb::types::Value> = vec![
                e.id.clone().into(),
                e.body.type_name().to_string().into(),
                e.at.micros().into(),
                e.body.rank().into(),
            ];
            values.extend(columns::texts(&e, line).iter().map(|t| match t {
                Some(v) => duckdb::types::Value::Text(v.to_string()),
                None => duckdb::types::Value::Null,
            }));
            let sql = if e.id == "r" {
                format!("INSERT INTO pending (workspace, {typed}) VALUES ('w', {marks})")
            } else {
                format!("INSERT INTO events (workspace, {typed}, owner, oh) VALUES ('w', {marks}, 'c', hash('c'))")
            };
            conn.execute(&sql, duckdb::params_from_iter(values))
                .unwrap();
        }
        let store = DuckStore::on(conn).unwrap();
        store.rebuild("w").unwrap();
        let count = |sql: &str| -> i64 {
            lock(&store.writer)
                .query_row(sql, [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(
            count(
                "SELECT count(*) FROM conversations WHERE category = 'Sales' AND closed_by = 'u1'
                 AND incoming_messages = 1 AND outgoing_messages = 1 AND opened_channel = 'wa'"
            ),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM messages WHERE content = '12:-é😀 a:b'"),
            1
        );
        assert_eq!(count("SELECT count(*) FROM pending"), 1);
        let m9 = r#"{"id":"s9","type":"message.sent","at":"2026-01-05T10:08:00Z","message_id":"m9","contact_id":"c","channel_id":"wa","source":"bot","message_type":"session","content":{"type":"text","text":"ok"}}"#;
        store.ingest("w", &mut m9.as_bytes(), &mut |_| {}).unwrap();
        assert_eq!(
            count("SELECT count(*) FROM messages WHERE message_id = 'm9' AND status = 'read'"),
            1,
            "the packed pending receipt counted"
        );
    }

    /// A store holding the Madrid worked example in workspace `w`.
    fn madrid_store() -> DuckStore {
        let store = DuckStore::on(attach(":memory:").unwrap()).unwrap();
        store
            .create_workspace(&Workspace {
                id: "w".into(),
                timezone: "Europe/Madrid".into(),
                name: "w".into(),
            })
            .unwrap();
        let events = include_str!("../../parley/tests/examples/madrid-dst/events.ndjson");
        store
            .ingest("w", &mut events.as_bytes(), &mut |_| {})
            .unwrap();
        store
    }

    /// Every report of `w` over the example's three months, as JSON.
    fn madrid_reports(store: &DuckStore) -> Vec<String> {
        let tz = parley_core::time::parse_zone("Europe/Madrid").unwrap();
        let date = |d: &str| parley_core::time::parse_date(d).unwrap();
        Report::ALL
            .iter()
            .map(|report| {
                let q = Query {
                    workspace: store.workspace("w").unwrap(),
                    report: *report,
                    range: Range::custom(date("2025-09-01"), date("2025-11-30"), &tz).unwrap(),
                    filters: Filters::default(),
                };
                serde_json::to_string(&store.report(&q).unwrap()).unwrap()
            })
            .collect()
    }

    /// A data dir written before the cubes (schema 5) gets them filled from its facts on
    /// open (migrations 6 and 7): every report counted from them equals the facts' count.
    #[test]
    fn cubes_are_filled_from_the_facts_on_open() {
        let store = madrid_store();
        {
            let conn = lock(&store.writer);
            for c in cubes::CUBES {
                conn.execute_batch(&format!("DROP TABLE {}", c.table))
                    .unwrap();
            }
            conn.execute_batch(
                // Migrations 6 and later run again: undo the later ones too (9: tokens).
                "DROP TABLE cube_tails; DROP TABLE tokens;
                 DELETE FROM schema_migrations WHERE version >= 6;",
            )
            .unwrap();
            drop_contact_names(&conn);
            store.migrate(&conn).unwrap();
        }
        let from_cubes = madrid_reports(&store);
        let from_facts = madrid_reports(&store.with_cubes(false));
        for (doc, facts) in from_cubes.iter().zip(&from_facts) {
            assert_eq!(doc, facts);
            assert!(doc.contains(r#""status":"ok""#), "{doc}");
        }
    }

    /// The fact tables whose rows carry their contact's name: all but `contacts`.
    fn fact_rows_with_names() -> impl Iterator<Item = &'static str> {
        schema::FACT_TABLES
            .iter()
            .copied()
            .filter(|t| *t != "contacts")
    }

    /// The fact tables as schema 7 left them, without their contacts' names, and the
    /// scratch tables of `conn` as they would be made from them.
    fn drop_contact_names(conn: &Connection) {
        for t in fact_rows_with_names() {
            conn.execute_batch(&format!(
                "ALTER TABLE {t} DROP COLUMN contact_name; ALTER TABLE {t} DROP COLUMN name_folded;
                 DROP TABLE temp.f_{t};"
            ))
            .unwrap();
        }
        conn.execute_batch("ALTER TABLE activities DROP COLUMN merged_name_folded")
            .unwrap();
    }

    /// Every log page and every report filtered by contact name or id, as JSON: what
    /// shows or matches the names the fact rows carry.
    fn madrid_names(store: &DuckStore) -> Vec<String> {
        let tz = parley_core::time::parse_zone("Europe/Madrid").unwrap();
        let date = |d: &str| parley_core::time::parse_date(d).unwrap();
        let mut docs = Vec::new();
        for report in Report::ALL {
            for filters in [
                &[][..],
                &["contact=smith", "contact=STRASSE", "contact=c7"][..],
            ] {
                let q = Query {
                    workspace: store.workspace("w").unwrap(),
                    report: *report,
                    range: Range::custom(date("2025-09-01"), date("2025-11-30"), &tz).unwrap(),
                    filters: Filters::parse(*report, filters).unwrap(),
                };
                docs.push(serde_json::to_string(&store.report(&q).unwrap()).unwrap());
                for log in report.logs() {
                    let page = store.log_page(&q, *log, 1, 1000).unwrap();
                    docs.push(serde_json::to_string(&page).unwrap());
                }
            }
        }
        docs
    }

    /// A data dir written before fact rows carried their contact's name (schema 7) gets
    /// them filled on open (migration 8): logs show the same names and the `contact`
    /// filter matches the same rows, merged contacts included.
    #[test]
    fn contact_names_are_filled_into_the_facts_on_open() {
        let store = madrid_store();
        let before = madrid_names(&store);
        assert!(before.iter().any(|d| d.contains("Zoë Smith")));
        {
            let conn = lock(&store.writer);
            // Migrations 8 and later run again: undo 9 (tokens) too.
            conn.execute_batch(
                "DROP TABLE tokens; DELETE FROM schema_migrations WHERE version >= 8;",
            )
            .unwrap();
            drop_contact_names(&conn);
            store.migrate(&conn).unwrap();
        }
        assert_eq!(madrid_names(&store), before);
        {
            let conn = lock(&store.writer);
            for t in fact_rows_with_names() {
                conn.execute_batch(&format!(
                    "UPDATE {t} SET contact_name = NULL, name_folded = NULL"
                ))
                .unwrap();
            }
        }
        assert_ne!(
            madrid_names(&store),
            before,
            "the names are read from the fact rows"
        );
        store.rebuild("w").unwrap();
        assert_eq!(
            madrid_names(&store),
            before,
            "a rebuild derives the names again"
        );
    }

    /// A rebuild counts the cubes again from the facts (it does not count its deleted
    /// facts out of them): cubes emptied behind its back are whole again after it.
    #[test]
    fn a_rebuild_counts_the_cubes_again() {
        let store = madrid_store();
        let before = madrid_reports(&store);
        {
            let conn = lock(&store.writer);
            for c in cubes::CUBES {
                conn.execute_batch(&format!("DELETE FROM {}", c.table))
                    .unwrap();
            }
        }
        assert_ne!(madrid_reports(&store), before, "the emptied cubes are read");
        store.rebuild("w").unwrap();
        assert_eq!(madrid_reports(&store), before);
    }

    /// A data dir written by schema 1 (events kept as JSON bodies) opens under today's
    /// schema with its log re-filed and its facts derived: nothing stored is lost.
    #[test]
    fn a_schema_1_log_is_refiled_on_open() {
        let conn = attach(":memory:").unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version BIGINT NOT NULL);
             INSERT INTO schema_migrations VALUES (1);",
        )
        .unwrap();
        conn.execute_batch(schema::MIGRATIONS[0].1).unwrap();
        conn.execute_batch("INSERT INTO workspaces VALUES ('w', 'UTC', 'w')")
            .unwrap();
        let bodies = [
            r#"{"id":"u","type":"user.upserted","at":"2026-01-05T09:00:00Z","user":{"id":"u1","name":"Ann","team_id":"t1"}}"#,
            r#"{"id":"o","type":"conversation.opened","at":"2026-01-05T10:00:00Z","conversation_id":"v","contact_id":"c","source":"contact"}"#,
            r#"{"id":"m","type":"message.received","at":"2026-01-05T10:01:00Z","message_id":"m","contact_id":"c","channel_id":"wa","content":{"type":"text","text":"hi"}}"#,
            r#"{"id":"x","type":"conversation.closed","at":"2026-01-05T10:05:00Z","conversation_id":"v","source":"user","user_id":"u1"}"#,
        ];
        for body in bodies {
            conn.execute(
                "INSERT INTO events (workspace, id, type, at_us, rank, body) VALUES ('w', ?, '', 0, 0, ?)",
                duckdb::params![&body[7..8], body],
            )
            .unwrap();
        }
        let store = DuckStore::on(conn).unwrap();
        let count = |sql: &str| -> i64 {
            lock(&store.writer)
                .query_row(sql, [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count("SELECT count(*) FROM event_ids"), 4);
        assert_eq!(count("SELECT count(*) FROM directory_events"), 1);
        assert_eq!(
            count("SELECT count(*) FROM conversations WHERE closed_by = 'u1' AND incoming_messages = 1"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'events_v1'"),
            0
        );
        // Re-sending the old events is a no-op: their ids were kept.
        let again = store
            .ingest("w", &mut bodies.join("\n").as_bytes(), &mut |_| {})
            .unwrap();
        assert_eq!(again.accepted, 0);
    }
}
