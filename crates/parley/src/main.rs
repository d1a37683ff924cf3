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
    /// Data directory holding the embedded database.
    #[arg(
        long,
        global = true,
        env = "PARLEY_DATA",
        default_value = "parley-data"
    )]
    data: PathBuf,
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
    /// Ingest a sample shop's events into a `demo` workspace and print every report.
    Demo,
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
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Workspace(WorkspaceCommand::Create { id, timezone, name }) => {
            let ws = Workspace {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                timezone,
            };
            let ws = match target(&cli.data)? {
                Target::Local(store) => store.create_workspace(&ws)?,
                Target::Remote(server) => server.create_workspace(&ws)?,
            };
            writeln!(out, "{}", serde_json::to_string(&ws)?)?;
        }
        Command::Workspace(WorkspaceCommand::List) => {
            let list = match target(&cli.data)? {
                Target::Local(store) => store.workspaces()?,
                Target::Remote(server) => server.workspaces()?,
            };
            writeln!(out, "{}", serde_json::to_string(&list)?)?;
        }
        Command::Token(TokenCommand::Create { workspace, scope }) => {
            let scope: Scope = scope.into();
            let token = match target(&cli.data)? {
                Target::Local(store) => store.create_token(&workspace, scope)?,
                Target::Remote(server) => server.create_token(&workspace, scope.wire())?,
            };
            writeln!(out, "{token}")?;
        }
        Command::Token(TokenCommand::Revoke { token }) => {
            let workspace = match target(&cli.data)? {
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
            let target = target(&cli.data)?;
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
            let store = open(&cli.data)?;
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
            let store = open(&cli.data)?;
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
            let store = open(&cli.data)?;
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
            let store = open(&cli.data)?;
            let contacts = timed(cli.timing, "settle", || Ok(store.settle(&workspace)?))?;
            writeln!(out, r#"{{"settled_contacts": {contacts}}}"#)?;
        }
        Command::Rebuild { workspace } => {
            let store = open(&cli.data)?;
            timed(cli.timing, "rebuild", || Ok(store.rebuild(&workspace)?))?;
            writeln!(
                out,
                r#"{{"rebuilt": {}}}"#,
                serde_json::Value::String(workspace)
            )?;
        }
        Command::Demo => demo(&cli.data, out)?,
        Command::Openapi => writeln!(out, "{}", parley_server::openapi_document())?,
        Command::Serve {
            listen,
            admin_token_file,
            max_body,
            log_format,
        } => serve(&cli.data, &listen, admin_token_file, max_body, log_format)?,
    }
    Ok(())
}

/// Runs the HTTP API until Ctrl-C or SIGTERM.
fn serve(
    data: &std::path::Path,
    listen: &str,
    admin_token_file: Option<PathBuf>,
    body_limit: usize,
    log_format: LogFormat,
) -> Result<()> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PARLEY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    let admin_token = match admin_token_file {
        Some(f) => {
            let t = std::fs::read_to_string(&f)
                .with_context(|| format!("could not read the admin token file {}", f.display()))?;
            Some(t.trim().to_string())
        }
        None => std::env::var("PARLEY_ADMIN_TOKEN").ok(),
    }
    .filter(|t| !t.is_empty());
    // Reads do not settle in the server: its background settler does, once for many
    // batches, and each read waits for the batches acknowledged before it.
    let store = std::sync::Arc::new(open(data)?.with_settled_reads(false)?);
    // The CLI's own admin token while this server holds the data dir (`serve.json`).
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let local: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let config = parley_server::Config {
        admin_tokens: admin_token.into_iter().chain([local.clone()]).collect(),
        body_limit,
    };
    let runtime = tokio::runtime::Runtime::new().context("could not start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("could not listen on {listen}"))?;
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
        eprintln!(
            "parley: serving http://{addr}/api/v1 (data dir {})",
            data.display()
        );
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

/// The embedded demo data: a shop in Madrid around the 2025 fall-back night.
const DEMO_EVENTS: &str = include_str!("../tests/examples/madrid-dst/events.ndjson");
const DEMO_NOW: &str = "2025-10-27T11:55:05+01:00";

/// Ingests the embedded events into a `demo` workspace and prints its reports.
fn demo(data: &std::path::Path, out: &mut dyn Write) -> Result<()> {
    let store = open(data)?;
    if store.workspace("demo").is_err() {
        let ws = Workspace {
            id: "demo".into(),
            timezone: "Europe/Madrid".into(),
            name: "Demo shop".into(),
        };
        store.create_workspace(&ws)?;
    }
    let summary = store.ingest("demo", &mut DEMO_EVENTS.as_bytes(), &mut |_| {})?;
    writeln!(
        out,
        "parley demo · data dir {} · workspace demo (Europe/Madrid) · {} events ingested, {} already known\n",
        data.display(),
        summary.accepted,
        summary.duplicates
    )?;
    for report in Report::ALL {
        let view = View {
            range: Some("last_30_days".into()),
            now: Some(DEMO_NOW.into()),
            ..View::default()
        };
        let q = parley_store::query(&store, "demo", *report, &view)?;
        table::report(out, &store.report(&q)?)?;
        writeln!(out)?;
    }
    writeln!(
        out,
        "Try: parley --data {} log conversations conversations --workspace demo --range last_30_days --now {DEMO_NOW} --format table",
        data.display()
    )?;
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
