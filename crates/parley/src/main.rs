//! The `parley` command line (SPEC §7, §8.3). Thin: it parses arguments, opens the
//! store and prints what the store and the core return.

mod remote;
mod table;

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use parley_core::report::Report;
use parley_core::request::{self, RequestError, View};
use parley_store::{DuckStore, Progress, Query, Scope, Store, StoreError, Workspace};

#[derive(Parser)]
#[command(
    name = "parley",
    version,
    about = "Reports for business messaging: events in, reports out"
)]
struct Cli {
    /// Data directory holding the embedded database [default: parley-data; for
    /// `demo`, parley-demo].
    #[arg(long, global = true, env = "PARLEY_DATA")]
    data: Option<PathBuf>,
    /// Print to stderr how long the store took (the library call, without opening the
    /// database or printing), as `timing: COMMAND MS ms`.
    #[arg(long, global = true)]
    timing: bool,
    #[command(subcommand)]
    command: Command,
}

/// Runs one store call, reporting its duration on stderr when `--timing` is on.
fn timed<T>(on: bool, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = std::time::Instant::now();
    let out = f()?;
    if on {
        eprintln!(
            "timing: {what} {:.3} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(out)
}

#[derive(Subcommand)]
enum Command {
    /// Create or list workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Create or revoke the API's bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Ingest an NDJSON batch of events from FILE, or stdin with `-`. Several files are
    /// several batches, ingested in order, each all-or-nothing, one summary line each.
    Ingest {
        /// The workspace's id.
        #[arg(long)]
        workspace: String,
        /// NDJSON files, or `-` for stdin.
        #[arg(required = true)]
        files: Vec<String>,
        /// File the events now and derive their facts later: at `parley settle`, or at
        /// the workspace's next report, log or export (for backfills in many files).
        #[arg(long)]
        defer: bool,
    },
    /// Derive the facts of every batch ingested with `--defer` and not settled yet.
    Settle {
        /// The workspace's id.
        #[arg(long)]
        workspace: String,
    },
    /// Print a report.
    Report {
        /// conversations, messages, contacts or assignments.
        report: String,
        #[command(flatten)]
        view: ViewArgs,
        /// json (the document of SPEC §8) or table (for a terminal).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Print one page of a report's log.
    Log {
        /// conversations, messages, contacts or assignments.
        report: String,
        /// conversations: conversations · messages: incoming, outgoing, failed ·
        /// contacts: added, connected, deleted, merged · assignments: assignments
        log: String,
        #[command(flatten)]
        view: ViewArgs,
        /// Page number, from 1 (default 1); only the first 10,000 rows can be paged.
        #[arg(long, allow_negative_numbers = true)]
        page: Option<String>,
        /// Rows per page, 1 to 1000 (default 50).
        #[arg(long = "per-page", allow_negative_numbers = true)]
        per_page: Option<String>,
        /// json (the document of SPEC §8) or table (for a terminal).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Stream a whole log as CSV to stdout.
    Export {
        /// conversations, messages, contacts or assignments.
        report: String,
        /// The log to export (see `parley log --help`).
        log: String,
        #[command(flatten)]
        view: ViewArgs,
    },
    /// Recompute every fact of a workspace from its event log.
    Rebuild {
        /// The workspace's id.
        #[arg(long)]
        workspace: String,
    },
    /// Write a realistic workspace's activity as NDJSON events (SPEC §2): the same
    /// flags and seed always give the same bytes.
    Simulate(SimulateArgs),
    /// Start parley on a demo workspace: simulate 90 days of a mid-size team ending
    /// today, ingest them into `./parley-demo` (once: later runs reuse it), and serve
    /// the API on 127.0.0.1 until Ctrl-C.
    Demo {
        /// The address and port to listen on (another free port if it is taken).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Conversations simulated (about).
        #[arg(long, default_value_t = 50_000)]
        conversations: u64,
        /// Days simulated, ending today.
        #[arg(long, default_value_t = 90)]
        days: u32,
    },
    /// Print the HTTP API's OpenAPI 3.1 document (what the server serves at
    /// /api/v1/openapi.json).
    Openapi,
    /// Serve the HTTP API (README: "HTTP API") until interrupted (Ctrl-C or SIGTERM),
    /// then finish the requests in flight.
    Serve {
        /// The address and port to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// A file holding the server-wide admin token, which creates workspaces and
        /// tokens over the API (else the PARLEY_ADMIN_TOKEN variable; without either,
        /// only the CLI does).
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        /// The largest request body accepted, in bytes (413 beyond).
        #[arg(long, default_value_t = parley_server::DEFAULT_BODY_LIMIT)]
        max_body: usize,
        /// Events acknowledged and not yet filed into the database at most: past it,
        /// posts wait for the filer before they are answered (backpressure).
        #[arg(long, default_value_t = parley_server::DEFAULT_MAX_UNFILED)]
        max_unfiled: usize,
        /// Request logs on stderr as text lines, or as one JSON object per line (for log
        /// shippers). `PARLEY_LOG` sets the level (default info).
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
}

#[derive(Subcommand)]
enum WorkspaceCommand {
    Create {
        id: String,
        #[arg(long)]
        timezone: String,
        #[arg(long)]
        name: Option<String>,
    },
    List,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token for one workspace and print it (only it, on stdout): it is stored
    /// as a hash alone, so this is the one time it is shown.
    Create {
        /// The workspace's id.
        #[arg(long)]
        workspace: String,
        /// ingest (post event batches) or read (reports, logs, exports).
        #[arg(long, value_enum)]
        scope: ScopeArg,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token, as `token create` printed it.
        token: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Ingest,
    Read,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Ingest => Scope::Ingest,
            ScopeArg::Read => Scope::Read,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Table,
}

/// The workspace, range and filters every report command takes; checked by the library
/// (`parley_core::request`), as the HTTP API's are.
#[derive(Args)]
struct ViewArgs {
    /// The workspace's id.
    #[arg(long)]
    workspace: String,
    /// A date preset in the workspace's zone: today, yesterday, last_7_days,
    /// last_14_days, last_30_days, this_month or last_month.
    #[arg(long)]
    range: Option<String>,
    /// First day of a custom range (YYYY-MM-DD), inclusive; with --to, instead of --range.
    #[arg(long)]
    from: Option<String>,
    /// Last day of a custom range (YYYY-MM-DD), inclusive.
    #[arg(long)]
    to: Option<String>,
    /// The instant taken as now (RFC 3339), to reproduce a report.
    #[arg(long)]
    now: Option<String>,
    /// NAME=VALUE; repeat for more values (OR) and more filters (AND).
    #[arg(long = "filter")]
    filters: Vec<String>,
}

impl ViewArgs {
    fn view(&self) -> View {
        View {
            range: self.range.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            now: self.now.clone(),
            filters: self.filters.clone(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`parley export … | head`): it has what it wanted.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", reason(&e));
            // A malformed request is bad usage, as clap's own refusals (SPEC §8.3).
            ExitCode::from(if usage(&e) { 2 } else { 1 })
        }
    }
}

/// The error and its causes on one line, each reason once: a cause whose text its
/// error already ends with (`invalid batch, nothing stored: {cause}`) is not repeated.
fn reason(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.is_empty() {
            msg = text;
        } else if !msg.ends_with(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
    }
    msg.replace('\n', " ")
}

/// Whether the error is a malformed request (exit status 2).
fn usage(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let request = match cause.downcast_ref::<StoreError>() {
            Some(StoreError::Request(r)) => Some(r),
            _ => cause.downcast_ref::<RequestError>(),
        };
        request.is_some_and(RequestError::is_usage)
    })
}

/// Whether an error comes from writing to a closed pipe (anywhere in its chain of
/// sources: the store's `Io` error has the io error as its source).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn open(data: &std::path::Path) -> Result<DuckStore> {
    DuckStore::open(data).map_err(|e| opening(data, e))
}

/// Why the data dir could not be opened: a dir in use already names itself and the fix.
fn opening(data: &std::path::Path, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::InUse { .. } => e.into(),
        _ => anyhow::Error::from(e).context(format!("could not open data dir {}", data.display())),
    }
}

/// Where the admin commands and `ingest` act: the data dir itself, or the `parley
/// serve` holding it.
enum Target {
    Local(Box<DuckStore>),
    Remote(remote::Remote),
}

fn target(data: &std::path::Path) -> Result<Target> {
    match DuckStore::open(data) {
        Ok(store) => Ok(Target::Local(Box::new(store))),
        Err(e @ StoreError::InUse { .. }) => match remote::Remote::find(data) {
            Some(server) => Ok(Target::Remote(server)),
            None => Err(opening(data, e)),
        },
        Err(e) => Err(opening(data, e)),
    }
}

/// A whole batch file (or stdin, `-`) in memory, to post to a server.
fn read_batch(file: &str) -> Result<Vec<u8>> {
    let mut batch = Vec::new();
    if file == "-" {
        std::io::stdin().lock().read_to_end(&mut batch)?;
    } else {
        batch = std::fs::read(file).with_context(|| format!("could not read {file}"))?;
    }
    Ok(batch)
}

fn run(cli: Cli) -> Result<()> {
    let data = cli
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("parley-data"));
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Workspace(WorkspaceCommand::Create { id, timezone, name }) => {
            let ws = Workspace {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                timezone,
            };
            let ws = match target(&data)? {
                Target::Local(store) => store.create_workspace(&ws)?,
                Target::Remote(server) => server.create_workspace(&ws)?,
            };
            writeln!(out, "{}", serde_json::to_string(&ws)?)?;
        }
        Command::Workspace(WorkspaceCommand::List) => {
            let list = match target(&data)? {
                Target::Local(store) => store.workspaces()?,
                Target::Remote(server) => server.workspaces()?,
            };
            writeln!(out, "{}", serde_json::to_string(&list)?)?;
        }
        Command::Token(TokenCommand::Create { workspace, scope }) => {
            let scope: Scope = scope.into();
            let token = match target(&data)? {
                Target::Local(store) => store.create_token(&workspace, scope)?,
                Target::Remote(server) => server.create_token(&workspace, scope.wire())?,
            };
            writeln!(out, "{token}")?;
        }
        Command::Token(TokenCommand::Revoke { token }) => {
            let workspace = match target(&data)? {
                Target::Local(store) => store.revoke_token(&token)?,
                Target::Remote(server) => server.revoke_token(&token)?,
            };
            writeln!(
                out,
                "{}",
                serde_json::json!({"revoked": true, "workspace": workspace})
            )?;
        }
        Command::Ingest {
            workspace,
            files,
            defer,
        } => {
            let target = target(&data)?;
            for file in &files {
                let (accepted, duplicates) = match &target {
                    Target::Local(store) => {
                        let summary = timed(cli.timing, "ingest", || {
                            ingest(store, &workspace, file, defer)
                        })?;
                        (summary.accepted, summary.duplicates)
                    }
                    // The server files each batch durably and derives it in the
                    // background, as `--defer` would.
                    Target::Remote(server) => server.ingest(&workspace, read_batch(file)?)?,
                };
                writeln!(
                    out,
                    r#"{{"accepted": {accepted}, "duplicates": {duplicates}}}"#
                )?;
                out.flush()?;
            }
        }
        Command::Report {
            report,
            view,
            format,
        } => {
            let report = request::report(&report)?;
            let store = open(&data)?;
            let doc = timed(cli.timing, "report", || {
                Ok(store.report(&query(&store, report, &view)?)?)
            })?;
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?,
                Format::Table => table::report(out, &doc)?,
            }
        }
        Command::Log {
            report,
            log,
            view,
            page,
            per_page,
            format,
        } => {
            let report = request::report(&report)?;
            let log = request::log(report, &log)?;
            let (page, per_page) = request::page(page.as_deref(), per_page.as_deref())?;
            let store = open(&data)?;
            let doc = timed(cli.timing, "log", || {
                let q = query(&store, report, &view)?;
                Ok(store.log_page(&q, log, page, per_page)?)
            })?;
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?,
                Format::Table => table::log(out, &doc)?,
            }
        }
        Command::Export { report, log, view } => {
            let report = request::report(&report)?;
            let log = request::log(report, &log)?;
            let store = open(&data)?;
            let q = query(&store, report, &view)?;
            // Records are encoded into one buffer, written out past 64 KiB.
            const CHUNK: usize = 64 * 1024;
            let mut buf = Vec::with_capacity(2 * CHUNK);
            let names: Vec<&str> = log.columns().iter().map(|(n, _)| *n).collect();
            parley_core::doc::push_csv_record(&names, &mut buf);
            timed(cli.timing, "export", || {
                store.export(&q, log, &mut |fields| {
                    parley_core::doc::push_csv_record(fields, &mut buf);
                    if buf.len() >= CHUNK {
                        out.write_all(&buf)?;
                        buf.clear();
                    }
                    Ok(())
                })?;
                out.write_all(&buf)?;
                out.flush()?;
                Ok(())
            })?;
        }
        Command::Settle { workspace } => {
            let store = open(&data)?;
            let contacts = timed(cli.timing, "settle", || Ok(store.settle(&workspace)?))?;
            writeln!(out, r#"{{"settled_contacts": {contacts}}}"#)?;
        }
        Command::Rebuild { workspace } => {
            let store = open(&data)?;
            timed(cli.timing, "rebuild", || Ok(store.rebuild(&workspace)?))?;
            writeln!(
                out,
                r#"{{"rebuilt": {}}}"#,
                serde_json::Value::String(workspace)
            )?;
        }
        Command::Simulate(args) => simulate(&args, out)?,
        Command::Demo {
            listen,
            conversations,
            days,
        } => demo(
            cli.data.as_deref(),
            &listen,
            conversations,
            days,
            cli.timing,
        )?,
        Command::Openapi => writeln!(out, "{}", parley_server::openapi_document())?,
        Command::Serve {
            listen,
            admin_token_file,
            max_body,
            max_unfiled,
            log_format,
        } => {
            let admin_token = match admin_token_file {
                Some(f) => {
                    let t = std::fs::read_to_string(&f).with_context(|| {
                        format!("could not read the admin token file {}", f.display())
                    })?;
                    Some(t.trim().to_string())
                }
                None => std::env::var("PARLEY_ADMIN_TOKEN").ok(),
            }
            .filter(|t| !t.is_empty());
            init_logs(log_format, "info");
            let store = open(&data)?;
            let options = ServeOptions {
                listen,
                admin_token,
                body_limit: max_body,
                max_unfiled,
                fallback_port: false,
            };
            serve(&data, store, options, |addr| {
                eprintln!(
                    "parley: serving http://{addr}/api/v1 (data dir {})",
                    data.display()
                );
            })?
        }
    }
    Ok(())
}

/// Request logs on stderr, filtered by `PARLEY_LOG` (else `default`).
fn init_logs(format: LogFormat, default: &str) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PARLEY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

/// How `serve` listens and whom it lets in.
struct ServeOptions {
    listen: String,
    /// The operator's admin token, if any.
    admin_token: Option<String>,
    body_limit: usize,
    /// Events acknowledged and not yet filed at most (`parley_server::Config`).
    max_unfiled: usize,
    /// Listen on another free port of the same address if `listen`'s is taken.
    fallback_port: bool,
}

/// Runs the HTTP API over `store` until Ctrl-C or SIGTERM; `ready` is called with the
/// address once it listens.
fn serve(
    data: &std::path::Path,
    store: DuckStore,
    options: ServeOptions,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    // Reads do not settle in the server: its background settler does, once for many
    // batches, and each read waits for the batches acknowledged before it.
    let store = std::sync::Arc::new(store.with_settled_reads(false)?);
    // The CLI's own admin token while this server holds the data dir (`serve.json`).
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let local: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let config = parley_server::Config {
        admin_tokens: options
            .admin_token
            .into_iter()
            .chain([local.clone()])
            .collect(),
        body_limit: options.body_limit,
        data_dir: data.to_path_buf(),
        max_unfiled: options.max_unfiled,
    };
    let listen = options.listen;
    let runtime = tokio::runtime::Runtime::new().context("could not start the async runtime")?;
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) if options.fallback_port && e.kind() == std::io::ErrorKind::AddrInUse => {
                let host = listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
                tokio::net::TcpListener::bind(format!("{host}:0"))
                    .await
                    .with_context(|| format!("could not listen on {host}"))?
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("could not listen on {listen}")))
            }
        };
        let addr = listener.local_addr()?;
        let _serve_file = remote::ServeFile::write(
            data,
            &remote::ServeFile {
                url: format!("http://{addr}"),
                pid: std::process::id(),
                token: local,
            },
        )?;
        tracing::info!(%addr, data = %data.display(), "parley serving");
        ready(addr);
        parley_server::serve(listener, store, config, shutdown_signal()).await?;
        tracing::info!("parley stopped");
        Ok(())
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The flags of `parley simulate`.
#[derive(Args)]
struct SimulateArgs {
    /// The seed: the same seed and flags give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days simulated, ending with --end.
    #[arg(long, default_value_t = 90)]
    days: u32,
    /// The last day simulated (YYYY-MM-DD) [default: today in --timezone].
    #[arg(long)]
    end: Option<String>,
    /// Contacts in the pool (new contacts are drawn from it; then all return).
    #[arg(long, default_value_t = 30_000)]
    contacts: u64,
    /// Conversations opened over the period, about.
    #[arg(long, default_value_t = 50_000)]
    conversations: u64,
    /// Agents answering (at least 3).
    #[arg(long, default_value_t = 20)]
    agents: u32,
    /// The workspace's IANA zone: nights, mornings and weekends are local to it.
    #[arg(long, default_value = "Europe/Madrid")]
    timezone: String,
    /// Write to FILE instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Today's date in `zone`.
fn today(zone: &str) -> Result<jiff::civil::Date> {
    let tz =
        jiff::tz::TimeZone::get(zone).with_context(|| format!("unknown time zone {zone:?}"))?;
    Ok(tz.to_datetime(jiff::Timestamp::now()).date())
}

/// Writes the simulated events; a summary goes to stderr.
fn simulate(args: &SimulateArgs, out: &mut dyn Write) -> Result<()> {
    let end = match &args.end {
        Some(text) => text
            .parse::<jiff::civil::Date>()
            .map_err(|e| anyhow::anyhow!("--end {text:?} is not a date (YYYY-MM-DD): {e}"))?,
        None => today(&args.timezone)?,
    };
    let config = parley_sim::Config {
        seed: args.seed,
        days: args.days,
        end,
        timezone: args.timezone.clone(),
        contacts: args.contacts,
        conversations: args.conversations,
        agents: args.agents,
        until: None,
    };
    let started = std::time::Instant::now();
    let stats = match &args.out {
        Some(path) => {
            let mut f = std::fs::File::create(path)
                .with_context(|| format!("could not write {}", path.display()))?;
            parley_sim::simulate(&config, &mut f)?
        }
        None => parley_sim::simulate(&config, out)?,
    };
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated {} events ({} conversations, {} messages, {} re-sent) in {seconds:.2} s: {:.0} events/s",
        stats.events,
        stats.conversations,
        stats.messages,
        stats.resends,
        stats.events as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// What `parley demo` keeps beside its data (mode 0600), so that a second run starts
/// at once with the same token.
#[derive(serde::Serialize, serde::Deserialize)]
struct DemoState {
    /// The read token printed.
    token: String,
    /// The last day simulated.
    end: String,
    events: u64,
}

const DEMO_WORKSPACE: &str = "demo";
const DEMO_ZONE: &str = "Europe/Madrid";

/// Simulates and ingests the demo workspace once, then serves it.
fn demo(
    data: Option<&std::path::Path>,
    listen: &str,
    conversations: u64,
    days: u32,
    timing: bool,
) -> Result<()> {
    let started = std::time::Instant::now();
    let dir = data.map_or_else(
        || PathBuf::from("parley-demo"),
        std::path::Path::to_path_buf,
    );
    let store = open(&dir)?;
    let state_file = dir.join("demo.json");
    let kept: Option<DemoState> = std::fs::read(&state_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let live = |s: &DemoState| matches!(store.authenticate(&s.token), Ok(Some(p)) if p.workspace == DEMO_WORKSPACE && p.scope == Scope::Read);
    let state = match kept {
        Some(state) if live(&state) => {
            eprintln!(
                "parley demo: reusing {} ({} events up to {}; delete it to simulate anew)",
                dir.display(),
                state.events,
                state.end
            );
            state
        }
        _ => {
            eprintln!(
                "parley demo: creating {} (workspace {DEMO_WORKSPACE}, {DEMO_ZONE})",
                dir.display()
            );
            if store.workspace(DEMO_WORKSPACE).is_err() {
                store.create_workspace(&Workspace {
                    id: DEMO_WORKSPACE.into(),
                    timezone: DEMO_ZONE.into(),
                    name: "Demo shop".into(),
                })?;
            }
            let end = today(DEMO_ZONE)?;
            let config = parley_sim::Config {
                seed: 1,
                days,
                end,
                timezone: DEMO_ZONE.into(),
                contacts: (conversations * 3 / 5).max(1),
                conversations,
                agents: 20,
                until: Some(jiff::Timestamp::now()),
            };
            let events_file = dir.join("demo-events.ndjson");
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&events_file)
                    .with_context(|| format!("could not write {}", events_file.display()))?,
            );
            let stats = parley_sim::simulate(&config, &mut f)?;
            f.flush()?;
            drop(f);
            eprintln!(
                "parley demo: simulated {days} days up to {end}: {} conversations, {} messages, 20 agents ({} events)",
                stats.conversations, stats.messages, stats.events
            );
            let path = events_file.to_string_lossy().into_owned();
            let summary = ingest(&store, DEMO_WORKSPACE, &path, false)?;
            let _ = std::fs::remove_file(&events_file);
            eprintln!(
                "parley demo: ingested {} events ({} re-sent duplicates skipped)",
                summary.accepted, summary.duplicates
            );
            let state = DemoState {
                token: store.create_token(DEMO_WORKSPACE, Scope::Read)?,
                end: end.to_string(),
                events: summary.accepted,
            };
            remote::write_private(&state_file, &serde_json::to_string_pretty(&state)?)?;
            state
        }
    };
    init_logs(LogFormat::Text, "warn");
    let options = ServeOptions {
        listen: listen.to_string(),
        admin_token: None,
        body_limit: parley_server::DEFAULT_BODY_LIMIT,
        max_unfiled: parley_server::DEFAULT_MAX_UNFILED,
        fallback_port: true,
    };
    serve(&dir, store, options, |addr| {
        if timing {
            eprintln!(
                "timing: demo ready {:.3} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        let url = format!("http://{addr}");
        println!(
            "parley demo is ready ({:.1} s)\n",
            started.elapsed().as_secs_f64()
        );
        // The dashboard's sign-in page, the token filled in and the demo's
        // Conversations report next.
        println!(
            "  Dashboard  {url}/login?token={}&next=/w/{DEMO_WORKSPACE}/reports/conversations",
            state.token
        );
        println!("             (open it and press Sign in: the read token is filled in)\n");
        println!("  API        {url}/api/v1");
        println!(
            "  workspace  {DEMO_WORKSPACE} ({DEMO_ZONE}), data in {}",
            dir.display()
        );
        println!("  read token {}\n", state.token);
        println!("Try the Conversations report of the last 30 days:\n");
        println!(
            "  curl -s -H 'Authorization: Bearer {}' '{url}/api/v1/workspaces/{DEMO_WORKSPACE}/reports/conversations?range=last_30_days'\n",
            state.token
        );
        println!("Press Ctrl-C to stop.");
        let _ = std::io::stdout().flush();
    })?;
    eprintln!("parley demo: stopped (run it again to restart at once)");
    Ok(())
}

fn ingest(
    store: &DuckStore,
    workspace: &str,
    file: &str,
    defer: bool,
) -> Result<parley_store::IngestSummary> {
    let (reader, len): (Box<dyn Read>, Option<u64>) = if file == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("could not read {file}"))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = match len {
            Some(n) => indicatif::ProgressBar::new(n),
            None => indicatif::ProgressBar::new_spinner(),
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} {bytes}/{total_bytes} {wide_bar} {eta}",
            )
            .expect("static template"),
        );
        bar.set_message("ingesting");
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut input: Box<dyn BufRead> = Box::new(BufReader::with_capacity(1 << 20, reader));
    let mut progress = |p| match p {
        Progress::Read(bytes) => bar.set_position(bytes),
        Progress::Deriving => bar.set_message(if defer { "filing" } else { "deriving facts" }),
    };
    let summary = if defer {
        store.ingest_deferred(workspace, &mut input, &mut progress)?
    } else {
        store.ingest(workspace, &mut input, &mut progress)?
    };
    bar.finish_and_clear();
    Ok(summary)
}

fn query(store: &DuckStore, report: Report, view: &ViewArgs) -> Result<Query> {
    Ok(parley_store::query(
        store,
        &view.workspace,
        report,
        &view.view(),
    )?)
}
