//! The `parley` command line (SPEC §7, §8.3). Thin: it parses arguments, opens the
//! store and prints what the store and the core return.

mod table;

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use parley_core::report::{Filters, Log, Report};
use parley_core::time::{self, parse_rfc3339, Instant, Preset, Range};
use parley_store::{DuckStore, Progress, Query, Store, Workspace};

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
        report: ReportArg,
        #[command(flatten)]
        view: ViewArgs,
        /// json (the document of SPEC §8) or table (for a terminal).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Print one page of a report's log.
    Log {
        report: ReportArg,
        /// conversations: conversations · messages: incoming, outgoing, failed ·
        /// contacts: added, connected, deleted, merged · assignments: assignments
        log: String,
        #[command(flatten)]
        view: ViewArgs,
        /// Page number, from 1; only the first 10,000 rows can be paged.
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        page: i64,
        /// Rows per page, 1 to 1000.
        #[arg(long = "per-page", default_value_t = 50, allow_negative_numbers = true)]
        per_page: i64,
        /// json (the document of SPEC §8) or table (for a terminal).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Stream a whole log as CSV to stdout.
    Export {
        report: ReportArg,
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

#[derive(Clone, Copy, ValueEnum)]
enum ReportArg {
    Conversations,
    Messages,
    Contacts,
    Assignments,
}

impl From<ReportArg> for Report {
    fn from(r: ReportArg) -> Report {
        match r {
            ReportArg::Conversations => Report::Conversations,
            ReportArg::Messages => Report::Messages,
            ReportArg::Contacts => Report::Contacts,
            ReportArg::Assignments => Report::Assignments,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Today,
    Yesterday,
    #[value(name = "last_7_days")]
    Last7Days,
    #[value(name = "last_14_days")]
    Last14Days,
    #[value(name = "last_30_days")]
    Last30Days,
    #[value(name = "this_month")]
    ThisMonth,
    #[value(name = "last_month")]
    LastMonth,
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Preset {
        match p {
            PresetArg::Today => Preset::Today,
            PresetArg::Yesterday => Preset::Yesterday,
            PresetArg::Last7Days => Preset::Last7Days,
            PresetArg::Last14Days => Preset::Last14Days,
            PresetArg::Last30Days => Preset::Last30Days,
            PresetArg::ThisMonth => Preset::ThisMonth,
            PresetArg::LastMonth => Preset::LastMonth,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Table,
}

/// The workspace, range and filters every report command takes.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("range_choice").required(true).args(["range", "from"])))]
struct ViewArgs {
    /// The workspace's id.
    #[arg(long)]
    workspace: String,
    /// A date preset in the workspace's zone.
    #[arg(long, value_enum, conflicts_with_all = ["from", "to"])]
    range: Option<PresetArg>,
    /// First day of a custom range (YYYY-MM-DD), inclusive.
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// Last day of a custom range (YYYY-MM-DD), inclusive.
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// The instant taken as now (RFC 3339), to reproduce a report.
    #[arg(long)]
    now: Option<String>,
    /// NAME=VALUE; repeat for more values (OR) and more filters (AND).
    #[arg(long = "filter")]
    filters: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`parley export … | head`): it has what it wanted.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
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
    DuckStore::open(data).with_context(|| format!("could not open data dir {}", data.display()))
}

fn valid_workspace_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn run(cli: Cli) -> Result<()> {
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Workspace(WorkspaceCommand::Create { id, timezone, name }) => {
            if !valid_workspace_id(&id) {
                bail!("workspace id {id:?} must be 1-64 characters of a-z, 0-9, '-' and '_'");
            }
            let Some(tz) = time::parse_zone(&timezone) else {
                bail!("unknown time zone {timezone:?}");
            };
            // Zone lookup ignores case; store the canonical spelling that reports echo.
            let timezone = tz.iana_name().map_or(timezone.clone(), str::to_string);
            let ws = Workspace {
                name: name.unwrap_or_else(|| id.clone()),
                id,
                timezone,
            };
            open(&cli.data)?.create_workspace(&ws)?;
            writeln!(out, "{}", workspace_json(&ws))?;
        }
        Command::Workspace(WorkspaceCommand::List) => {
            let list: Vec<_> = open(&cli.data)?
                .workspaces()?
                .iter()
                .map(workspace_json)
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(list))?;
        }
        Command::Ingest {
            workspace,
            files,
            defer,
        } => {
            let store = open(&cli.data)?;
            for file in &files {
                let summary = timed(cli.timing, "ingest", || {
                    ingest(&store, &workspace, file, defer)
                })?;
                writeln!(
                    out,
                    r#"{{"accepted": {}, "duplicates": {}}}"#,
                    summary.accepted, summary.duplicates
                )?;
                out.flush()?;
            }
        }
        Command::Report {
            report,
            view,
            format,
        } => {
            let store = open(&cli.data)?;
            let doc = timed(cli.timing, "report", || {
                Ok(store.report(&query(&store, report.into(), &view)?)?)
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
            let report: Report = report.into();
            let log = find_log(report, &log)?;
            if page < 1 {
                bail!("--page must be 1 or more, got {page}");
            }
            if !(1..=1000).contains(&per_page) {
                bail!("--per-page must be between 1 and 1000, got {per_page}");
            }
            let store = open(&cli.data)?;
            let doc = timed(cli.timing, "log", || {
                let q = query(&store, report, &view)?;
                Ok(store.log_page(&q, log, page as u64, per_page as u64)?)
            })?;
            match format {
                Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?,
                Format::Table => table::log(out, &doc)?,
            }
        }
        Command::Export { report, log, view } => {
            let report: Report = report.into();
            let log = find_log(report, &log)?;
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
    }
    Ok(())
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
        let view = ViewArgs {
            workspace: "demo".into(),
            range: Some(PresetArg::Last30Days),
            from: None,
            to: None,
            now: Some(DEMO_NOW.into()),
            filters: Vec::new(),
        };
        let q = query(&store, *report, &view)?;
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

/// The report's log by name; an unknown log is bad input (exit 1).
fn find_log(report: Report, name: &str) -> Result<Log> {
    report
        .log(name)
        .ok_or_else(|| anyhow!("unknown log {name:?} for the {} report", report.wire()))
}

fn workspace_json(ws: &Workspace) -> serde_json::Value {
    serde_json::json!({"id": ws.id, "timezone": ws.timezone, "name": ws.name})
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
    let workspace = store.workspace(&view.workspace)?;
    let tz = time::parse_zone(&workspace.timezone)
        .ok_or_else(|| anyhow!("workspace {} has an unknown time zone", workspace.id))?;
    let now = match &view.now {
        Some(s) => parse_rfc3339(s).map_err(|e| anyhow!("bad --now {s:?}: {e}"))?,
        None => Instant::from_timestamp(jiff::Timestamp::now()),
    };
    let range = match (&view.range, &view.from, &view.to) {
        (Some(p), _, _) => Range::preset((*p).into(), now, &tz)?,
        (None, Some(from), Some(to)) => {
            let from = time::parse_date(from)?;
            let to = time::parse_date(to)?;
            Range::custom(from, to, &tz)?
        }
        _ => unreachable!("clap requires a range"),
    };
    let filters = Filters::parse(report, &view.filters)?;
    Ok(Query {
        workspace,
        report,
        range,
        filters,
    })
}
