//! parley's HTTP API (SPEC §7): workspaces, authenticated ingest, and every report, log
//! page and CSV export of the CLI, over HTTP. Thin: requests are parsed by
//! `parley_core::request` and answered by the [`Store`], exactly as the CLI's are.
//!
//! Bearer tokens are scoped to one workspace and to `ingest` or `read`; a token of
//! another workspace gets the same 404 as a workspace that does not exist. A
//! server-wide admin token creates workspaces and tokens. Ingest validates a batch,
//! counts its duplicates and writes it durably to the spool before it answers 200
//! (`filing.rs`); a filer thread files the spool into the database and one background
//! task derives the facts of all the batches filed, on a connection of its own beside
//! the filings; a read waits for the batches acknowledged before it (or at most
//! `Parley-Max-Wait`) and sees each batch whole or not at all, never half-applied.

mod dashboard;
mod error;
mod filing;
mod routes;

use std::future::Future;
use std::sync::Arc;

use parley_store::DuckStore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use error::ApiError;
pub use routes::openapi_document;

/// Request bodies are limited to this many bytes unless configured otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// How the server runs.
#[derive(Clone)]
pub struct Config {
    /// Server-wide admin tokens (the operator's, and the one `parley serve` leaves in
    /// the data dir for the CLI): each may create workspaces and tokens and act in any
    /// workspace.
    pub admin_tokens: Vec<String>,
    /// The largest request body accepted (413 beyond).
    pub body_limit: usize,
    /// The data dir of the store: acknowledged batches are spooled in it
    /// (`parley_store::spool`).
    pub data_dir: std::path::PathBuf,
    /// Events acknowledged and not yet filed at most: past it, posts wait for the
    /// filer before they are acknowledged.
    pub max_unfiled: usize,
}

/// `Config::max_unfiled` unless configured otherwise: about 300 MB of ids in flight.
pub const DEFAULT_MAX_UNFILED: usize = 4_000_000;

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<DuckStore>,
    /// SHA-256 of each admin token.
    admin: Vec<[u8; 32]>,
    pub(crate) body_limit: usize,
    /// Per workspace, batches filed and settled so far (generations).
    progress: Arc<std::sync::Mutex<Progress>>,
    /// Bumped after each round of the settler, to wake the reads waiting on it.
    rounds: tokio::sync::watch::Receiver<u64>,
    /// Per workspace: the derived state (settled generation) the documents were
    /// computed at, and the report documents by query. Fifty dashboards reading the
    /// same report while batches arrive cost one computation per derived state.
    reports: std::sync::Mutex<ReportCache>,
    /// Batches to acknowledge, for the acker (`filing.rs`).
    pub(crate) filings: std::sync::mpsc::Sender<filing::Filing>,
    /// The dashboard's sessions and filter values.
    pub(crate) dash: dashboard::DashState,
}

type ReportCache = std::collections::HashMap<
    String,
    (
        u64,
        std::collections::HashMap<String, Arc<parley_core::doc::ReportDoc>>,
    ),
>;

/// Report documents kept per workspace at most.
const CACHED_REPORTS: usize = 256;

/// Per workspace: how many batches were acknowledged, up to which one the facts are
/// derived, and whether the settler last failed on it.
#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) acked: std::collections::HashMap<String, u64>,
    settled: std::collections::HashMap<String, u64>,
    failed: std::collections::HashSet<String>,
}

impl AppState {
    /// Settles `ws` on this request (the settler failed on it, or stopped).
    async fn settle_here(&self, ws: &str) -> Result<(), ApiError> {
        let (store, ws) = (self.store.clone(), ws.to_string());
        match tokio::task::spawn_blocking(move || parley_store::Store::settle(&*store, &ws)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(ApiError::internal()),
        }
    }

    /// Waits until every batch of `ws` acknowledged before this call has its facts (the
    /// store's reads do not settle in the server: one settler does, for all), or until
    /// `max_wait` has passed; returns how many of those batches are still being
    /// derived (0 unless it gave up waiting). If the settler failed on `ws`, settles it
    /// here, so that the read fails with the reason.
    pub(crate) async fn settled(
        &self,
        ws: &str,
        max_wait: Option<std::time::Duration>,
    ) -> Result<u64, ApiError> {
        let target = {
            let p = self.progress.lock().expect("progress lock");
            p.acked.get(ws).copied().unwrap_or(0)
        };
        let deadline = max_wait.map(|d| tokio::time::Instant::now() + d);
        let mut rounds = self.rounds.clone();
        loop {
            let (settled, failed) = {
                let p = self.progress.lock().expect("progress lock");
                (
                    p.settled.get(ws).copied().unwrap_or(0),
                    p.failed.contains(ws),
                )
            };
            if settled >= target {
                return Ok(0);
            }
            if failed {
                return self.settle_here(ws).await.map(|()| 0);
            }
            let changed = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rounds.changed()).await {
                    Ok(changed) => changed,
                    Err(_) => return Ok(target - settled),
                },
                None => rounds.changed().await,
            };
            // The settler stopped (shutting down): settle here.
            if changed.is_err() {
                return self.settle_here(ws).await.map(|()| 0);
            }
        }
    }

    /// How many batches of `ws` have their facts derived (the reports' cache key).
    pub(crate) fn settled_generation(&self, ws: &str) -> u64 {
        let p = self.progress.lock().expect("progress lock");
        p.settled.get(ws).copied().unwrap_or(0)
    }

    /// A report document computed for the same query at the same derived state.
    pub(crate) fn cached(
        &self,
        ws: &str,
        generation: u64,
        key: &str,
    ) -> Option<Arc<parley_core::doc::ReportDoc>> {
        let cache = self.reports.lock().expect("cache lock");
        cache
            .get(ws)
            .filter(|(g, _)| *g == generation)
            .and_then(|(_, docs)| docs.get(key).cloned())
    }

    /// Keeps a report document for the readers of the same query at the same state.
    pub(crate) fn cache(
        &self,
        ws: &str,
        generation: u64,
        key: String,
        doc: Arc<parley_core::doc::ReportDoc>,
    ) {
        let mut cache = self.reports.lock().expect("cache lock");
        let entry = cache
            .entry(ws.to_string())
            .or_insert_with(|| (generation, Default::default()));
        if entry.0 != generation || entry.1.len() >= CACHED_REPORTS {
            *entry = (generation, Default::default());
        }
        entry.1.insert(key, doc);
    }

    /// Whether `token` is an admin token (compared as hashes, in constant time).
    pub(crate) fn is_admin(&self, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.admin.iter().fold(false, |hit, admin| {
            hit | bool::from(admin.ct_eq(&presented))
        })
    }
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests
/// in flight (an ingest under way completes and is answered) and returns. `store`'s
/// reads should not settle (`DuckStore::with_settled_reads(false)`): the server settles
/// what an earlier run left before it answers, then in the background.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<DuckStore>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Batches filed and not derived by an earlier run (killed, or `ingest --defer`):
    // derived before the first request, since reads here do not settle; and the
    // filters of stored hashes built, which batches would otherwise pay for.
    let startup = store.clone();
    tokio::task::spawn_blocking(move || -> Result<(), parley_store::StoreError> {
        for ws in parley_store::Store::workspaces(&*startup)? {
            parley_store::Store::settle(&*startup, &ws.id)?;
            // The filters of stored ids and keys, built before the first batch needs them.
            startup.know_stored(&ws.id)?;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(std::io::Error::other)?;
    let (app, background) = routes::app(store, config)?;
    // From the stop on, the filer files everything and no post waits for room.
    let draining = background.shared.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            filing::stop(&draining);
        })
        .await;
    background.stop().await;
    served
}

/// The state and the background task that derives filed batches: it takes every batch
/// waiting, settles each of their workspaces once (many batches in one derivation),
/// records up to which batch each is settled and wakes the reads waiting for it.
pub(crate) fn state(
    store: Arc<DuckStore>,
    config: &Config,
) -> std::io::Result<(Arc<AppState>, Background)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, u64)>();
    let (round_tx, round_rx) = tokio::sync::watch::channel(0u64);
    let progress = Arc::new(std::sync::Mutex::new(Progress::default()));
    let (settler_store, settler_progress) = (store.clone(), progress.clone());
    let settler = tokio::spawn(async move {
        while let Some((ws, g)) = rx.recv().await {
            let mut waiting = std::collections::BTreeMap::from([(ws, g)]);
            while let Ok((ws, g)) = rx.try_recv() {
                let e = waiting.entry(ws).or_insert(g);
                *e = (*e).max(g);
            }
            let store = settler_store.clone();
            let progress = settler_progress.clone();
            let done = tokio::task::spawn_blocking(move || {
                for (ws, g) in waiting {
                    let started = std::time::Instant::now();
                    let outcome = parley_store::Store::settle(&*store, &ws);
                    tracing::debug!(workspace = %ws, ms = started.elapsed().as_millis() as u64, "settled");
                    let mut p = progress.lock().expect("progress lock");
                    match outcome {
                        Ok(_) => {
                            p.failed.remove(&ws);
                            let s = p.settled.entry(ws).or_insert(0);
                            *s = (*s).max(g);
                        }
                        Err(e) => {
                            tracing::error!(workspace = %ws, error = %e, "background settle failed");
                            p.failed.insert(ws);
                        }
                    }
                }
            })
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "background settle panicked");
            }
            round_tx.send_modify(|r| *r += 1);
        }
    });
    let spool =
        parley_store::spool::Spool::open(&config.data_dir).map_err(std::io::Error::other)?;
    let shared = filing::shared(spool);
    filing::prepare(&store, &shared).map_err(std::io::Error::other)?;
    let (filings, waiting) = std::sync::mpsc::channel();
    let (acker_store, acker_shared, acker_progress) =
        (store.clone(), shared.clone(), progress.clone());
    std::thread::Builder::new()
        .name("parley-acker".into())
        .spawn({
            let max = config.max_unfiled;
            move || filing::acker(acker_store, acker_shared, acker_progress, waiting, max)
        })?;
    let (filer_store, filer_shared) = (store.clone(), shared.clone());
    let filer = std::thread::Builder::new()
        .name("parley-filer".into())
        .spawn(move || filing::filer(filer_store, filer_shared, tx))?;
    let state = Arc::new(AppState {
        store,
        admin: config
            .admin_tokens
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into())
            .collect(),
        body_limit: config.body_limit,
        progress,
        rounds: round_rx,
        reports: Default::default(),
        filings,
        dash: Default::default(),
    });
    Ok((
        state,
        Background {
            settler,
            filer,
            shared,
        },
    ))
}

/// The server's background work, stopped once it stops answering.
pub(crate) struct Background {
    settler: tokio::task::JoinHandle<()>,
    filer: std::thread::JoinHandle<()>,
    shared: filing::Shared,
}

impl Background {
    /// Files what the spool holds, then stops deriving: batches filed and not derived
    /// are derived by the next process to read them.
    async fn stop(self) {
        filing::stop(&self.shared);
        let filer = self.filer;
        let _ = tokio::task::spawn_blocking(move || filer.join()).await;
        self.settler.abort();
    }
}
