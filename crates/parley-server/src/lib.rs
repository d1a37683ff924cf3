//! parley's HTTP API (SPEC §7): workspaces, authenticated ingest, and every report, log
//! page and CSV export of the CLI, over HTTP. Thin: requests are parsed by
//! `parley_core::request` and answered by the [`Store`], exactly as the CLI's are.
//!
//! Bearer tokens are scoped to one workspace and to `ingest` or `read`; a token of
//! another workspace gets the same 404 as a workspace that does not exist. A
//! server-wide admin token creates workspaces and tokens. Ingest files a batch durably
//! (deferred derivation) before it answers 200, and a background task derives the facts;
//! a read settles whatever is still waiting first, so it never sees a batch half-applied.

mod error;
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
    /// Workspaces with batches filed and not yet derived, for the settler.
    pub(crate) settle: tokio::sync::mpsc::UnboundedSender<String>,
}

impl AppState {
    /// Whether `token` is an admin token (compared as hashes, in constant time).
    pub(crate) fn is_admin(&self, token: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.admin.iter().fold(false, |hit, admin| {
            hit | bool::from(admin.ct_eq(&presented))
        })
    }
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the requests
/// in flight (an ingest under way completes and is answered) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<DuckStore>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (app, settler) = routes::app(store, config);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    settler.abort();
    served
}

/// The state and the background task that derives filed batches.
pub(crate) fn state(
    store: Arc<DuckStore>,
    config: &Config,
) -> (Arc<AppState>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let settler_store = store.clone();
    let settler = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            // Every workspace waiting by now, each settled once.
            let mut waiting = std::collections::BTreeSet::from([first]);
            while let Ok(ws) = rx.try_recv() {
                waiting.insert(ws);
            }
            let store = settler_store.clone();
            let done = tokio::task::spawn_blocking(move || {
                for ws in waiting {
                    if let Err(e) = parley_store::Store::settle(&*store, &ws) {
                        tracing::error!(workspace = %ws, error = %e, "background settle failed");
                    }
                }
            })
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "background settle panicked");
            }
        }
    });
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
    });
    (state, settler)
}
