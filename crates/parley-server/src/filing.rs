//! How a posted batch becomes durable, then filed, then derived.
//!
//! - The **acker** (a thread) takes the batches posted meanwhile, validates each alone
//!   (`parley_store::validate`: the store's own parse and errors), counts its duplicates
//!   exactly (within the batch, among the ids acknowledged and not yet filed, and among
//!   the stored ids, looked up only for the ids a filter says may be stored), appends
//!   the new events to the spool (`parley_store::spool`) and syncs it once for all of
//!   them: then each poster is answered. A batch is durable when it is answered.
//! - The **filer** (a thread) files the spooled batches into the database in large
//!   groups (one segment of the spool at a time), then hands each workspace's last
//!   filed generation to the settler (`lib.rs`), which derives their facts.
//!
//! Reads wait for the generation acknowledged before them (`AppState::settled`), so
//! the spool is invisible to a client except for its speed: acknowledging costs a parse
//! and an `fsync`, not a database transaction.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};

use parley_store::spool::Spool;
use parley_store::{DuckStore, IdFilter, IngestSummary, StoreError};

use crate::Progress;

/// A batch posted and waiting to be acknowledged, and where its outcome goes.
pub(crate) struct Filing {
    pub(crate) ws: String,
    pub(crate) lines: String,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<IngestSummary, StoreError>>,
}

/// Batches acknowledged together at most, and their bytes at most (past the first).
const GROUP_BATCHES: usize = 64;
const GROUP_BYTES: usize = 64 * 1024 * 1024;
/// Ids a filter is built with room for beyond the stored ones, at least.
const SPARE_IDS: usize = 1 << 20;

/// What the acker and the filer share.
pub(crate) struct Spooled {
    spool: Spool,
    /// Per workspace: ids acknowledged and not yet filed.
    in_flight: HashMap<String, HashSet<String>>,
    /// Per workspace: filters that together hold every id stored or in flight (and a
    /// few more). When the last is full a larger one is added, instead of scanning the
    /// stored ids again (seconds at 20 million, with every post waiting).
    filters: HashMap<String, Vec<IdFilter>>,
    /// Batches spooled in the current segment: workspace, generation, ids.
    pending: Vec<Batch>,
    /// Closed segments waiting for the filer, oldest first, with their batches.
    closed: std::collections::VecDeque<(std::path::PathBuf, Vec<Batch>)>,
    /// Set when the server stops: the filer files what is left and ends.
    stopping: bool,
}

impl Spooled {
    /// Events acknowledged and not filed yet.
    fn unfiled(&self) -> usize {
        self.in_flight.values().map(HashSet::len).sum()
    }
}

/// A spooled batch: its workspace, its generation, its new ids.
type Batch = (String, u64, Vec<String>);

/// A segment is closed for filing past this size, so that the filer reads a bounded
/// one at a time however far behind it is.
const SEGMENT_BYTES: u64 = 256 * 1024 * 1024;

/// The shared state and the filer's wake-up call.
pub(crate) type Shared = Arc<(Mutex<Spooled>, Condvar)>;

pub(crate) fn shared(spool: Spool) -> Shared {
    Arc::new((
        Mutex::new(Spooled {
            spool,
            in_flight: HashMap::new(),
            filters: HashMap::new(),
            pending: Vec::new(),
            closed: Default::default(),
            stopping: false,
        }),
        Condvar::new(),
    ))
}

/// Builds the filter of stored ids of every workspace, before the first post needs it
/// (a scan of the ids: seconds at 20 million).
pub(crate) fn prepare(store: &DuckStore, shared: &Shared) -> Result<(), StoreError> {
    for ws in parley_store::Store::workspaces(store)? {
        let filter = store.id_filter(&ws.id, SPARE_IDS)?;
        lock(shared).filters.insert(ws.id, vec![filter]);
    }
    Ok(())
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Spooled> {
    shared.0.lock().unwrap_or_else(|e| e.into_inner())
}

/// The acker's loop: until every sender is gone.
pub(crate) fn acker(
    store: Arc<DuckStore>,
    shared: Shared,
    progress: Arc<Mutex<Progress>>,
    filings: std::sync::mpsc::Receiver<Filing>,
    max_unfiled: usize,
) {
    while let Ok(first) = filings.recv() {
        // Backpressure: past `max_unfiled` events acknowledged and not filed, posts
        // wait for the filer (their answers come later) instead of the spool and the
        // ids in flight growing without bound.
        {
            let mut s = lock(&shared);
            while s.unfiled() > max_unfiled && !s.stopping {
                s = shared.1.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
        let mut group = vec![first];
        let mut bytes = group[0].lines.len();
        while group.len() < GROUP_BATCHES && bytes < GROUP_BYTES {
            match filings.try_recv() {
                Ok(f) => {
                    bytes += f.lines.len();
                    group.push(f);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let acked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            acknowledge(&store, &shared, &progress, &group)
        }));
        match acked {
            Ok(outcomes) => {
                tracing::debug!(
                    batches = group.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "group acknowledged"
                );
                for (f, outcome) in group.into_iter().zip(outcomes) {
                    let _ = f.reply.send(outcome);
                }
            }
            // The replies are dropped: each poster answers an internal error.
            Err(_) => tracing::error!("acknowledging a group of batches panicked"),
        }
        shared.1.notify_all();
    }
}

/// Validates, counts and spools a group of batches; their outcomes, in order.
fn acknowledge(
    store: &DuckStore,
    shared: &Shared,
    progress: &Mutex<Progress>,
    group: &[Filing],
) -> Vec<Result<IngestSummary, StoreError>> {
    // Parsed before the lock: the filer may rotate meanwhile.
    let parsed: Vec<_> = group
        .iter()
        .map(|f| parley_store::validate(f.lines.as_bytes()))
        .collect();
    let parsed_at = std::time::Instant::now();
    let mut s = lock(shared);
    let locked_at = std::time::Instant::now();
    let mut looked_up = 0;
    let mut outcomes = Vec::with_capacity(group.len());
    let mut appended = false;
    for (f, parsed) in group.iter().zip(parsed) {
        let outcome = parsed.and_then(|events| {
            let (new, maybe) = new_events(store, &mut s, &f.ws, &events)?;
            looked_up += maybe;
            let accepted = new.len() as u64;
            if accepted > 0 {
                let lines: Vec<&str> = new
                    .iter()
                    .map(|&i| std::str::from_utf8(events[i].0).expect("validated as UTF-8"))
                    .collect();
                s.spool.append(&f.ws, &lines)?;
                appended = true;
                let ids: Vec<String> = new.iter().map(|&i| events[i].1.clone()).collect();
                let filters = s.filters.get_mut(&f.ws).expect("built by new_events");
                let filter = filters.last_mut().expect("one at least");
                ids.iter().for_each(|id| filter.insert(id));
                s.in_flight
                    .entry(f.ws.clone())
                    .or_default()
                    .extend(ids.iter().cloned());
                let generation = {
                    let mut p = progress.lock().expect("progress lock");
                    let g = p.acked.entry(f.ws.clone()).or_insert(0);
                    *g += 1;
                    *g
                };
                s.pending.push((f.ws.clone(), generation, ids));
            }
            Ok(IngestSummary {
                accepted,
                duplicates: events.len() as u64 - accepted,
            })
        });
        outcomes.push(outcome);
    }
    let checked_at = std::time::Instant::now();
    if appended {
        if let Err(e) = sync_and_close(&mut s) {
            tracing::error!(error = %e, "the spool could not be synced");
            let reason = e.to_string();
            return outcomes
                .into_iter()
                .map(|o| o.and_then(|_| Err(StoreError::Io(std::io::Error::other(reason.clone())))))
                .collect();
        }
    }
    tracing::trace!(
        wait_ms = (locked_at - parsed_at).as_millis() as u64,
        check_ms = (checked_at - locked_at).as_millis() as u64,
        sync_ms = checked_at.elapsed().as_millis() as u64,
        looked_up,
        "acknowledged"
    );
    outcomes
}

/// Makes the records appended durable, and closes the segment for the filer once it
/// is large enough.
fn sync_and_close(s: &mut Spooled) -> Result<(), StoreError> {
    s.spool.sync()?;
    if s.spool.written() >= SEGMENT_BYTES {
        // Durable already: a failed rotation only leaves the segment to the filer's.
        match s.spool.rotate() {
            Ok(Some(path)) => {
                let batches = std::mem::take(&mut s.pending);
                s.closed.push_back((path, batches));
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "the spool could not be rotated"),
        }
    }
    Ok(())
}

/// The indexes of the batch's events that are new (the first of each id in the batch,
/// neither in flight nor stored), and how many ids were looked up in the table.
fn new_events(
    store: &DuckStore,
    s: &mut Spooled,
    ws: &str,
    events: &[(&[u8], String)],
) -> Result<(Vec<usize>, usize), StoreError> {
    match s.filters.get_mut(ws) {
        None => {
            // Not built at start (a workspace created since): from the table, with the
            // ids in flight.
            let mut filter = store.id_filter(ws, SPARE_IDS)?;
            s.in_flight
                .get(ws)
                .into_iter()
                .flatten()
                .for_each(|id| filter.insert(id));
            s.filters.insert(ws.to_string(), vec![filter]);
        }
        Some(filters) if filters.last().is_none_or(|f| f.room() < events.len()) => {
            let held: usize = filters.iter().map(IdFilter::capacity).sum();
            filters.push(IdFilter::with_capacity(SPARE_IDS.max(held)));
        }
        Some(_) => {}
    }
    let filters = &s.filters[ws];
    let in_flight = s.in_flight.get(ws);
    let mut seen: HashSet<&str> = HashSet::with_capacity(events.len());
    let mut first = Vec::with_capacity(events.len());
    let mut maybe: Vec<&str> = Vec::new();
    for (i, (_, id)) in events.iter().enumerate() {
        if !seen.insert(id.as_str()) || in_flight.is_some_and(|f| f.contains(id)) {
            continue;
        }
        if filters.iter().any(|f| f.may_contain(id)) {
            maybe.push(id);
        }
        first.push(i);
    }
    let stored = store.stored_ids(ws, &maybe)?;
    let new = first
        .into_iter()
        .filter(|&i| !stored.contains(&events[i].1))
        .collect();
    Ok((new, maybe.len()))
}

/// The filer's loop: files each closed segment of the spool, then tells the settler
/// which generation of each workspace is filed. Returns once the server stops and
/// nothing is left to file.
pub(crate) fn filer(
    store: Arc<DuckStore>,
    shared: Shared,
    settle: tokio::sync::mpsc::UnboundedSender<(String, u64)>,
) {
    // For tests of the spool: acknowledged batches stay spooled until the process ends.
    let hold = std::env::var_os("PARLEY_HOLD_SPOOL").is_some();
    loop {
        let (segment, batches) = {
            let mut s = lock(&shared);
            while (s.pending.is_empty() && s.closed.is_empty() || hold) && !s.stopping {
                s = shared.1.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if let Some(next) = s.closed.pop_front() {
                next
            } else if s.pending.is_empty() {
                return;
            } else {
                match s.spool.rotate() {
                    Ok(Some(path)) => (path, std::mem::take(&mut s.pending)),
                    Ok(None) => {
                        s.pending.clear();
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the spool could not be rotated; retrying");
                        drop(s);
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        continue;
                    }
                }
            }
        };
        let started = std::time::Instant::now();
        // Filed until it works: what is acknowledged must reach the database.
        loop {
            match parley_store::spool::file_segment(&store, &segment) {
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, segment = %segment.display(), "filing a spooled segment failed; retrying");
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
        }
        tracing::debug!(
            batches = batches.len(),
            ms = started.elapsed().as_millis() as u64,
            "segment filed"
        );
        let mut last: HashMap<String, u64> = HashMap::new();
        {
            let mut s = lock(&shared);
            for (ws, generation, ids) in &batches {
                if let Some(set) = s.in_flight.get_mut(ws) {
                    ids.iter().for_each(|id| {
                        set.remove(id);
                    });
                }
                let g = last.entry(ws.clone()).or_insert(0);
                *g = (*g).max(*generation);
            }
        }
        // Wakes the acker if it waits for room.
        shared.1.notify_all();
        for (ws, g) in last {
            let _ = settle.send((ws, g));
        }
    }
}

/// Tells the filer to file what is left and end.
pub(crate) fn stop(shared: &Shared) {
    lock(shared).stopping = true;
    shared.1.notify_all();
}
