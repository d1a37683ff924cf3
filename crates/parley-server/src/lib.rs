//! parley's HTTP API (SPEC §7): workspaces, authenticated ingest, and every report, log
//! page and CSV export of the CLI, over HTTP. Thin: requests are parsed by
//! `parley_core::request` and answered by the [`Store`], exactly as the CLI's are.
//!
//! Bearer tokens are scoped to one workspace and to `ingest` or `read`; a token of
//! another workspace gets the same 404 as a workspace that does not exist. A
//! server-wide admin token creates workspaces and tokens. Ingest files a batch durably
//! (deferred derivation) before it answers 200, and one background task derives the
//! facts of all the batches waiting, on a connection of its own beside the filings; a
//! read waits for the batches acknowledged before it and sees each batch whole or not
//! at all, never half-applied.

mod error;
mod routes;

use std::future::Future;
use std::sync::Arc;

use parley_store::{DuckStore, IngestSummary, Store, StoreError};
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
}

impl Default for Config {
    fn default() -> Config {
        Config {
            admin_tokens: Vec::new(),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

/// What every handler shares.
pub(crate) struct AppState {
    pub(crate) store: Arc<DuckStore>,
    /// SHA-256 of each admin token.
    admin: Vec<[u8; 32]>,
    pub(crate) body_limit: usize,
    /// (workspace, generation) of each batch filed, for the settler.
    settle: tokio::sync::mpsc::UnboundedSender<(String, u64)>,
    /// Per workspace, batches filed and settled so far (generations).
    progress: Arc<std::sync::Mutex<Progress>>,
    /// Bumped after each round of the settler, to wake the reads waiting on it.
    rounds: tokio::sync::watch::Receiver<u64>,
    /// Batches to file, for the group committer (`committer`).
    filings: std::sync::mpsc::Sender<Filing>,
}

/// A batch posted and waiting to be filed, and where its outcome goes.
pub(crate) struct Filing {
    pub(crate) ws: String,
    pub(crate) lines: String,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<IngestSummary, StoreError>>,
}

/// How long a group waits for the batches the last ones had, at most.
const LINGER: std::time::Duration = std::time::Duration::from_millis(15);

/// Batches filed in one transaction at most, and their bytes at most (past the first).
const GROUP_BATCHES: usize = 16;
const GROUP_BYTES: usize = 32 * 1024 * 1024;

/// The group committer: files the posted batches on a thread of its own. Each round
/// takes every batch waiting for the workspace of the oldest one (up to the group's
/// limits) and files them in one transaction, so that concurrent posters share the
/// per-transaction cost (a dozen statements and a commit) instead of queueing for it
/// one by one. Each batch is validated and refused alone. If the group as a whole
/// fails, each batch is filed alone, so that each gets its own outcome.
fn committer(store: Arc<DuckStore>, filings: std::sync::mpsc::Receiver<Filing>) {
    let mut waiting: std::collections::VecDeque<Filing> = std::collections::VecDeque::new();
    // The sizes of the last groups: the next one waits for as many as the largest.
    let mut last_groups = [1usize; 4];
    loop {
        if waiting.is_empty() {
            match filings.recv() {
                Ok(f) => waiting.push_back(f),
                Err(_) => return,
            }
        }
        waiting.extend(filings.try_iter());
        let ws = waiting[0].ws.clone();
        // Posters that were filed together are answered together and post again a
        // moment apart: the group waits briefly for as many batches as the largest of
        // the last few groups had.
        let deadline = std::time::Instant::now() + LINGER;
        let want = last_groups.iter().copied().max().unwrap_or(1);
        while waiting.iter().filter(|f| f.ws == ws).count() < want {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match filings.recv_timeout(left) {
                Ok(f) => waiting.push_back(f),
                Err(_) => break,
            }
        }
        let (mut group, mut rest, mut bytes) = (Vec::new(), Vec::new(), 0);
        for f in waiting.drain(..) {
            let fits = group.is_empty() || bytes + f.lines.len() <= GROUP_BYTES;
            if f.ws == ws && group.len() < GROUP_BATCHES && fits {
                bytes += f.lines.len();
                group.push(f);
            } else {
                rest.push(f);
            }
        }
        waiting.extend(rest);
        last_groups.rotate_right(1);
        last_groups[0] = group.len();
        let started = std::time::Instant::now();
        let filed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut bodies: Vec<&[u8]> = group.iter().map(|f| f.lines.as_bytes()).collect();
            let mut inputs: Vec<&mut dyn std::io::BufRead> = bodies
                .iter_mut()
                .map(|b| b as &mut dyn std::io::BufRead)
                .collect();
            let outcomes = match Store::ingest_deferred_group(&*store, &ws, &mut inputs) {
                Ok(outcomes) => outcomes,
                Err(e) => {
                    tracing::warn!(workspace = %ws, error = %e, batches = group.len(), "a group of batches failed; filing each alone");
                    group
                        .iter()
                        .map(|f| store.ingest_deferred(&ws, &mut f.lines.as_bytes(), &mut |_| {}))
                        .collect()
                }
            };
            tracing::debug!(workspace = %ws, batches = group.len(), ms = started.elapsed().as_millis() as u64, "group filed");
            outcomes
        }));
        match filed {
            Ok(outcomes) => {
                for (f, outcome) in group.into_iter().zip(outcomes) {
                    // The poster may have gone (its connection closed): the batch stays filed.
                    let _ = f.reply.send(outcome);
                }
            }
            // The replies are dropped: each poster answers an internal error.
            Err(_) => tracing::error!(workspace = %ws, "filing a group of batches panicked"),
        }
    }
}

/// Per workspace: how many batches were filed, up to which one the facts are derived,
/// and whether the settler last failed on it.
#[derive(Default)]
struct Progress {
    filed: std::collections::HashMap<String, u64>,
    settled: std::collections::HashMap<String, u64>,
    failed: std::collections::HashSet<String>,
}

impl AppState {
    /// Records a batch filed in `ws` and hands it to the settler.
    pub(crate) fn filed(&self, ws: &str) {
        let generation = {
            let mut p = self.progress.lock().expect("progress lock");
            let g = p.filed.entry(ws.to_string()).or_insert(0);
            *g += 1;
            *g
        };
        let _ = self.settle.send((ws.to_string(), generation));
    }

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
    /// store's reads do not settle in the server: one settler does, for all). If the
    /// settler failed on `ws`, settles it here, so that the read fails with the reason.
    pub(crate) async fn settled(&self, ws: &str) -> Result<(), ApiError> {
        let target = {
            let p = self.progress.lock().expect("progress lock");
            p.filed.get(ws).copied().unwrap_or(0)
        };
        let mut rounds = self.rounds.clone();
        loop {
            let (done, failed) = {
                let p = self.progress.lock().expect("progress lock");
                (
                    p.settled.get(ws).copied().unwrap_or(0) >= target,
                    p.failed.contains(ws),
                )
            };
            if done {
                return Ok(());
            }
            if failed {
                return self.settle_here(ws).await;
            }
            // The settler stopped (shutting down): settle here.
            if rounds.changed().await.is_err() {
                return self.settle_here(ws).await;
            }
        }
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
    let (app, settler) = routes::app(store, config);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    settler.abort();
    served
}

/// The state and the background task that derives filed batches: it takes every batch
/// waiting, settles each of their workspaces once (many batches in one derivation),
/// records up to which batch each is settled and wakes the reads waiting for it.
pub(crate) fn state(
    store: Arc<DuckStore>,
    config: &Config,
) -> (Arc<AppState>, tokio::task::JoinHandle<()>) {
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
    let (filings, waiting) = std::sync::mpsc::channel();
    let committer_store = store.clone();
    std::thread::Builder::new()
        .name("parley-committer".into())
        .spawn(move || committer(committer_store, waiting))
        .expect("a thread for the group committer");
    let state = Arc::new(AppState {
        store,
        admin: config
            .admin_tokens
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into())
            .collect(),
        body_limit: config.body_limit,
        settle: tx,
        progress,
        rounds: round_rx,
        filings,
    });
    (state, settler)
}
