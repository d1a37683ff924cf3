//! The `parley` binary as a user meets it: temp data dirs, real processes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_parley")
}

fn run_in(data: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("runs")
}

fn run(data: &Path, args: &[&str]) -> Output {
    run_in(data, Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("json")
}

/// Starts `parley ingest --workspace WS -` with `batch` written to its stdin.
fn ingest_stdin(data: &Path, ws: &str, batch: &str) -> std::process::Child {
    let mut child = Command::new(bin())
        .arg("--data")
        .arg(data)
        .args(["ingest", "--workspace", ws, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(batch.as_bytes())
        .unwrap();
    child
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/examples")
}

/// The madrid example's last 30 days, pinned to its "now".
const LAST_30: &[&str] = &[
    "--workspace",
    "shop",
    "--range",
    "last_30_days",
    "--now",
    "2025-10-27T12:00:00+01:00",
];
const WEEK: &[&str] = &[
    "--workspace",
    "shop",
    "--from",
    "2025-10-20",
    "--to",
    "2025-10-26",
];

/// A data dir with the madrid-dst example ingested.
fn madrid() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ex = examples().join("madrid-dst");
    ok(&run_in(
        dir.path(),
        &ex,
        &["workspace", "create", "shop", "--timezone", "Europe/Madrid"],
    ));
    ok(&run_in(
        dir.path(),
        &ex,
        &["ingest", "--workspace", "shop", "events.ndjson"],
    ));
    dir
}

/// Every worked example of SPEC's examples folder, compared as check.py does: JSON
/// parsed, CSV byte for byte.
#[test]
fn worked_examples_match() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let folder = entry.unwrap().path();
        let data = tempfile::tempdir().unwrap();
        let commands = std::fs::read_to_string(folder.join("commands.txt")).unwrap();
        for line in commands
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        {
            let mut words = line.split_whitespace();
            let name = words.next().unwrap();
            let args: Vec<&str> = words.collect();
            let out = run_in(data.path(), &folder, &args);
            let want = std::fs::read(folder.join("expected").join(name)).unwrap();
            checked += 1;
            if !out.status.success() {
                failures.push(format!(
                    "{name}: exit {:?}: {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            } else if name.ends_with(".json") {
                let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let want: serde_json::Value = serde_json::from_slice(&want).unwrap();
                if got != want {
                    failures.push(format!("{name}: JSON differs"));
                }
            } else if out.stdout != want {
                failures.push(format!("{name}: bytes differ"));
            }
        }
    }
    assert!(checked >= 23, "only {checked} commands found");
    assert!(
        failures.is_empty(),
        "{} outputs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn workspace_create_and_list() {
    let d = tempfile::tempdir().unwrap();
    let out = json(&run(
        d.path(),
        &[
            "workspace",
            "create",
            "zeta",
            "--timezone",
            "Asia/Kolkata",
            "--name",
            "Zeta Inc",
        ],
    ));
    assert_eq!(
        out,
        serde_json::json!({"id": "zeta", "timezone": "Asia/Kolkata", "name": "Zeta Inc"})
    );
    let alpha = json(&run(
        d.path(),
        &[
            "workspace",
            "create",
            "alpha",
            "--timezone",
            "europe/madrid",
        ],
    ));
    assert_eq!(
        alpha["timezone"], "Europe/Madrid",
        "the canonical IANA name is stored"
    );
    let listed = ok(&run(d.path(), &["workspace", "list"]));
    assert!(
        listed.starts_with(r#"[{"id":"alpha","timezone":"Europe/Madrid","name":"alpha"},"#),
        "SPEC §8.3 prints a workspace as id, timezone, name: {listed}"
    );
    let list = json(&run(d.path(), &["workspace", "list"]));
    assert_eq!(list[0]["id"], "alpha");
    assert_eq!(list[0]["name"], "alpha", "name defaults to the id");
    assert_eq!(list[1]["id"], "zeta");
    assert_eq!(
        code(&run(
            d.path(),
            &["workspace", "create", "alpha", "--timezone", "UTC"]
        )),
        1,
        "existing"
    );
    assert_eq!(
        code(&run(
            d.path(),
            &["workspace", "create", "Bad!", "--timezone", "UTC"]
        )),
        1,
        "pattern"
    );
    assert_eq!(
        code(&run(
            d.path(),
            &["workspace", "create", &"a".repeat(65), "--timezone", "UTC"]
        )),
        1
    );
    assert_eq!(
        code(&run(
            d.path(),
            &["workspace", "create", "x", "--timezone", "Mars/Base"]
        )),
        1,
        "zone"
    );
    assert_eq!(
        code(&run(d.path(), &["workspace", "create", "x"])),
        2,
        "missing option"
    );
}

#[test]
fn exit_codes_follow_the_cli_contract() {
    let d = madrid();
    let p = d.path();
    // (arguments, exit status, why): 2 is bad usage, 1 bad input (SPEC §8.3).
    let ws = "--workspace shop --range today";
    let cases: &[(String, i32, &str)] = &[
        (
            "report conversations --workspace shop --from 2025-10-20 --to 2025-10-26".into(),
            0,
            "a valid report",
        ),
        (
            "report tickets --workspace shop --range today".into(),
            2,
            "unknown report",
        ),
        (
            "report conversations --workspace shop --range last_year".into(),
            2,
            "unknown preset",
        ),
        (
            "report conversations --workspace shop".into(),
            2,
            "no range",
        ),
        (
            format!("report conversations {ws} --from 2025-10-01 --to 2025-10-02"),
            2,
            "--range with --from/--to",
        ),
        (
            "report conversations --workspace shop --from 2025-10-01".into(),
            2,
            "--from without --to",
        ),
        (
            format!("report conversations {ws} --format xml"),
            2,
            "unknown format",
        ),
        ("frobnicate".into(), 2, "unknown subcommand"),
        (
            format!("log messages incoming {ws} --page x"),
            2,
            "non-integer page",
        ),
        (
            "report conversations --workspace nope --range today".into(),
            1,
            "unknown workspace",
        ),
        (
            "report conversations --workspace shop --from 2025-10-32 --to 2025-11-01".into(),
            1,
            "bad date",
        ),
        (
            "report conversations --workspace shop --from 2025-10-05 --to 2025-10-01".into(),
            1,
            "from > to",
        ),
        (
            format!("report conversations {ws} --now yesterday"),
            1,
            "bad --now",
        ),
        (
            format!("report conversations {ws} --filter nope=1"),
            1,
            "unknown filter",
        ),
        (
            format!("report conversations {ws} --filter category"),
            1,
            "filter without =",
        ),
        (
            format!("report conversations {ws} --filter category="),
            1,
            "empty filter value",
        ),
        (
            format!("report conversations {ws} --filter opened_source=fax"),
            1,
            "value outside the enumeration",
        ),
        (format!("log messages sent {ws}"), 1, "unknown log"),
        (
            format!("log messages incoming {ws} --page 0"),
            1,
            "page below 1",
        ),
        (
            format!("log messages incoming {ws} --page -3"),
            1,
            "negative page",
        ),
        (
            format!("log messages incoming {ws} --per-page 0"),
            1,
            "per-page below 1",
        ),
        (
            format!("log messages incoming {ws} --per-page 1001"),
            1,
            "per-page above 1000",
        ),
        (
            format!("log messages incoming {ws} --filter source=user"),
            1,
            "log rows lack the dimension",
        ),
        (
            "ingest --workspace shop /no/such/file.ndjson".into(),
            1,
            "unreadable file",
        ),
    ];
    for (args, want, why) in cases {
        let argv: Vec<&str> = args.split_whitespace().collect();
        let out = run(p, &argv);
        assert_eq!(
            code(&out),
            *want,
            "{why}: parley {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if *want == 1 {
            let msg = String::from_utf8_lossy(&out.stderr);
            assert_eq!(
                msg.lines().count(),
                1,
                "{why}: a one-line reason, got {msg}"
            );
        }
    }
    let log = |extra: &[&str]| {
        let mut a = vec!["log", "messages", "incoming"];
        a.extend_from_slice(LAST_30);
        a.extend_from_slice(extra);
        run(p, &a)
    };
    let past = json(&log(&["--page", "99"]));
    assert_eq!(
        past["rows"].as_array().unwrap().len(),
        0,
        "a page past the last row is empty"
    );
    assert_eq!(past["total"], 64);
    let e = run(
        p,
        &[
            "export",
            "messages",
            "incoming",
            "--workspace",
            "shop",
            "--range",
            "today",
            "--filter",
            "user=u1",
        ],
    );
    assert_eq!(code(&e), 1);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert_eq!(msg.lines().count(), 1, "one-line reason: {msg}");
    assert!(msg.contains("not applicable"), "{msg}");
}

#[test]
fn a_bad_batch_stores_nothing_and_names_the_event() {
    let d = madrid();
    let export = || {
        let mut a = vec!["export", "messages", "incoming"];
        a.extend_from_slice(LAST_30);
        ok(&run(d.path(), &a))
    };
    let before = export();
    let batch = "\n{\"id\":\"n1\",\"type\":\"message.received\",\"at\":\"2025-10-27T10:00:00Z\",\"message_id\":\"n1\",\"contact_id\":\"c1\",\"channel_id\":\"tt\",\"content\":{\"type\":\"text\"}}\n\
                 {\"id\":\"n2\",\"type\":\"message.received\",\"at\":\"2025-10-27T10:00:00Z\",\"message_id\":\"n2\",\"contact_id\":\"c1\",\"channel_id\":\"tt\",\"content\":{\"type\":\"gif\"}}\n";
    let f = d.path().join("bad.ndjson");
    std::fs::write(&f, batch).unwrap();
    let out = run(
        d.path(),
        &["ingest", "--workspace", "shop", f.to_str().unwrap()],
    );
    assert_eq!(code(&out), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3")
            && err.contains("event 1")
            && err.contains("\"n2\"")
            && err.contains("content.type"),
        "{err}"
    );
    assert_eq!(
        err.matches("content.type").count(),
        1,
        "each reason is printed once: {err}"
    );
    let after = export();
    assert_eq!(before, after, "nothing of the batch was stored");
}

#[test]
fn ingest_from_stdin_is_idempotent_across_processes_and_durable_when_killed() {
    let d = tempfile::tempdir().unwrap();
    ok(&run(
        d.path(),
        &["workspace", "create", "w", "--timezone", "UTC"],
    ));
    let batch = "{\"id\":\"a\",\"type\":\"contact.added\",\"at\":\"2026-01-05T10:00:00Z\",\"contact\":{\"id\":\"c\",\"name\":\"Ann\"},\"source\":\"user\",\"user_id\":\"u\"}\n\
                 {\"id\":\"a\",\"type\":\"contact.added\",\"at\":\"2026-01-05T11:00:00Z\",\"contact\":{\"id\":\"c\",\"name\":\"Bob\"},\"source\":\"user\"}\n";
    let mut child = ingest_stdin(d.path(), "w", batch);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // Success was reported: kill the process at once; the data must survive.
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(line.trim(), r#"{"accepted": 1, "duplicates": 1}"#);
    let out = ingest_stdin(d.path(), "w", batch)
        .wait_with_output()
        .unwrap();
    assert!(out.stderr.is_empty(), "no progress bar off a terminal");
    assert_eq!(ok(&out).trim(), r#"{"accepted": 0, "duplicates": 2}"#);
    let log = json(&run(
        d.path(),
        &[
            "log",
            "contacts",
            "added",
            "--workspace",
            "w",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-05",
        ],
    ));
    assert_eq!(log["total"], 1);
    assert_eq!(
        log["rows"][0]["contact_name"], "Ann",
        "the first stored wins"
    );
    assert_eq!(log["rows"][0]["user"], "u");
}

#[test]
fn rebuild_gives_identical_documents() {
    let d = madrid();
    let p = d.path();
    let docs = || {
        let mut v = Vec::new();
        for r in ["conversations", "messages", "contacts", "assignments"] {
            let mut a = vec!["report", r];
            a.extend_from_slice(WEEK);
            v.push(ok(&run(p, &a)));
        }
        v.push(ok(&run(
            p,
            &[
                "export",
                "conversations",
                "conversations",
                "--workspace",
                "shop",
                "--from",
                "2025-08-01",
                "--to",
                "2025-11-30",
            ],
        )));
        v
    };
    let before = docs();
    ok(&run(p, &["rebuild", "--workspace", "shop"]));
    assert_eq!(before, docs());
}

#[test]
fn table_format_is_readable() {
    let d = madrid();
    let mut a = vec!["report", "messages"];
    a.extend_from_slice(WEEK);
    a.extend_from_slice(&["--format", "table"]);
    let out = ok(&run(d.path(), &a));
    assert!(
        out.starts_with("messages report · workspace shop (Europe/Madrid)"),
        "{out}"
    );
    assert!(out.contains("outgoing_by_source: total 6"), "{out}");
    assert!(out.contains("User"), "{out}");
    let first = out.find("incoming_by_channel").unwrap();
    assert!(
        first < out.find("delivery").unwrap(),
        "components keep the document's order: {out}"
    );
    let mut a = vec!["log", "assignments", "assignments"];
    a.extend_from_slice(WEEK);
    a.extend_from_slice(&["--format", "table"]);
    let out = ok(&run(d.path(), &a));
    assert!(out.lines().nth(1).unwrap().starts_with("at"), "{out}");
    assert_eq!(
        out.lines().count(),
        2 + 2,
        "header lines and two rows: {out}"
    );
}

#[test]
fn ingest_progress_bar_only_on_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    ok(&run(
        d.path(),
        &["workspace", "create", "w", "--timezone", "UTC"],
    ));
    let events = examples().join("madrid-dst/events.ndjson");
    let out = run(
        d.path(),
        &["ingest", "--workspace", "w", events.to_str().unwrap()],
    );
    assert_eq!(ok(&out), "{\"accepted\": 485, \"duplicates\": 13}\n");
    assert!(
        out.stderr.is_empty(),
        "no progress noise off a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // script(1) gives the process a terminal.
    let d2 = tempfile::tempdir().unwrap();
    ok(&run(
        d2.path(),
        &["workspace", "create", "w", "--timezone", "UTC"],
    ));
    let cmd = format!(
        "{} --data {} ingest --workspace w {}",
        bin(),
        d2.path().display(),
        events.display()
    );
    let tty = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .expect("script(1) runs");
    let shown = String::from_utf8_lossy(&tty.stdout);
    assert!(
        shown.contains("ingesting"),
        "a progress bar on a terminal: {shown}"
    );
    assert!(
        shown.contains("{\"accepted\": 485, \"duplicates\": 13}"),
        "{shown}"
    );
}

#[test]
fn any_order_and_batching_gives_byte_identical_output() {
    let forward = madrid();
    let text = std::fs::read_to_string(examples().join("madrid-dst/events.ndjson")).unwrap();
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // Keep the first occurrence of each id first, then reverse: the set stays the same.
    let mut seen = std::collections::HashSet::new();
    lines.retain(|l| {
        seen.insert(serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
    });
    lines.reverse();
    let other = tempfile::tempdir().unwrap();
    ok(&run(
        other.path(),
        &["workspace", "create", "shop", "--timezone", "Europe/Madrid"],
    ));
    let (a, b) = lines.split_at(lines.len() / 3);
    for (i, part) in [a, b].iter().enumerate() {
        let f = other.path().join(format!("part{i}.ndjson"));
        std::fs::write(&f, part.join("\n")).unwrap();
        ok(&run(
            other.path(),
            &["ingest", "--workspace", "shop", f.to_str().unwrap()],
        ));
    }
    let commands: [&[&str]; 5] = [
        &["report", "conversations"],
        &["report", "messages"],
        &[
            "log",
            "conversations",
            "conversations",
            "--per-page",
            "1000",
        ],
        &["export", "messages", "outgoing"],
        &["export", "contacts", "connected"],
    ];
    for cmd in commands {
        let mut args = cmd.to_vec();
        args.extend_from_slice(LAST_30);
        assert_eq!(
            ok(&run(forward.path(), &args)),
            ok(&run(other.path(), &args)),
            "{cmd:?}"
        );
    }
}

#[test]
fn kill_9_in_the_middle_of_an_ingest_leaves_the_workspace_as_it_was() {
    let text = std::fs::read_to_string(examples().join("madrid-dst/events.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a.ndjson"), work.path().join("b.ndjson"));
    std::fs::write(&a, first.join("\n")).unwrap();
    std::fs::write(&b, second.join("\n")).unwrap();
    let docs = |p: &Path| -> Vec<String> {
        let commands: [&[&str]; 4] = [
            &["report", "conversations"],
            &["report", "messages"],
            &["report", "contacts"],
            &["export", "messages", "outgoing"],
        ];
        commands
            .iter()
            .map(|cmd| {
                let mut args = cmd.to_vec();
                args.extend_from_slice(LAST_30);
                ok(&run(p, &args))
            })
            .collect()
    };
    let ingest = |p: &Path, f: &Path, kill_at: Option<&str>| {
        let mut cmd = Command::new(bin());
        cmd.arg("--data").arg(p);
        cmd.args(["ingest", "--workspace", "shop", f.to_str().unwrap()]);
        if let Some(point) = kill_at {
            cmd.env("PARLEY_KILL_AT", point);
        }
        cmd.output().unwrap()
    };
    let reference = tempfile::tempdir().unwrap();
    ok(&run(
        reference.path(),
        &["workspace", "create", "shop", "--timezone", "Europe/Madrid"],
    ));
    ok(&ingest(reference.path(), &a, None));
    let after_a = docs(reference.path());
    let summary_b = ok(&ingest(reference.path(), &b, None));
    let after_both = docs(reference.path());
    assert_ne!(after_a, after_both, "the second half changes the reports");
    for point in ["staged", "filed", "flushing", "derived"] {
        let d = tempfile::tempdir().unwrap();
        ok(&run(
            d.path(),
            &["workspace", "create", "shop", "--timezone", "Europe/Madrid"],
        ));
        ok(&ingest(d.path(), &a, None));
        let killed = ingest(d.path(), &b, Some(point));
        assert_eq!(killed.status.code(), None, "killed by a signal at {point}");
        assert_eq!(docs(d.path()), after_a, "killed at {point}: as before");
        let again = ok(&ingest(d.path(), &b, None));
        assert_eq!(
            again, summary_b,
            "killed at {point}: nothing of the batch was kept"
        );
        assert_eq!(
            docs(d.path()),
            after_both,
            "killed at {point}: then complete"
        );
    }
    // A deferred batch is durable once filed: a settle killed in the middle keeps it
    // waiting, and the next settle derives it.
    let d = tempfile::tempdir().unwrap();
    ok(&run(
        d.path(),
        &["workspace", "create", "shop", "--timezone", "Europe/Madrid"],
    ));
    ok(&ingest(d.path(), &a, None));
    let deferred = ok(&run(
        d.path(),
        &[
            "ingest",
            "--defer",
            "--workspace",
            "shop",
            b.to_str().unwrap(),
        ],
    ));
    assert_eq!(deferred, summary_b, "filed like an ingest");
    let killed = Command::new(bin())
        .arg("--data")
        .arg(d.path())
        .args(["settle", "--workspace", "shop"])
        .env("PARLEY_KILL_AT", "flushing")
        .output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "settle killed by a signal");
    let settled = ok(&run(d.path(), &["settle", "--workspace", "shop"]));
    assert!(
        !settled.contains(r#""settled_contacts": 0"#),
        "the killed settle left the batch waiting: {settled}"
    );
    assert_eq!(docs(d.path()), after_both, "deferred, then settled");
    assert_eq!(
        ok(&run(d.path(), &["settle", "--workspace", "shop"])).trim(),
        r#"{"settled_contacts": 0}"#
    );
}

#[test]
fn several_files_are_several_batches_in_order() {
    let d = tempfile::tempdir().unwrap();
    ok(&run(
        d.path(),
        &["workspace", "create", "w", "--timezone", "UTC"],
    ));
    let add = |id: &str, name: &str| {
        format!(
            "{{\"id\":\"{id}\",\"type\":\"contact.added\",\"at\":\"2026-01-05T10:00:00Z\",\"contact\":{{\"id\":\"c\",\"name\":\"{name}\"}},\"source\":\"user\"}}\n"
        )
    };
    let files: Vec<PathBuf> = [
        add("a", "Ann"),
        add("a", "Bob") + &add("b", "Bob"),
        "{".to_string(),
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| {
        let f = d.path().join(format!("{i}.ndjson"));
        std::fs::write(&f, text).unwrap();
        f
    })
    .collect();
    let paths: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let out = ok(&run(
        d.path(),
        &["ingest", "--workspace", "w", paths[0], paths[1]],
    ));
    assert_eq!(
        out,
        "{\"accepted\": 1, \"duplicates\": 0}\n{\"accepted\": 1, \"duplicates\": 1}\n"
    );
    // A bad batch stops the run with exit 1; the batches before it stay stored.
    let out = run(
        d.path(),
        &["ingest", "--workspace", "w", paths[0], paths[2]],
    );
    assert_eq!(code(&out), 1);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"accepted\": 0, \"duplicates\": 1}\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    // `parley export … | head -1`: the pipe closes before parley has written; it stops
    // quietly with success instead of printing "Broken pipe".
    let d = madrid();
    let mut args = vec!["export", "messages", "outgoing"];
    args.extend_from_slice(LAST_30);
    let mut child = Command::new(bin())
        .arg("--data")
        .arg(d.path())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
