//! The HTTP API as a client meets it: the real `parley serve` on 127.0.0.1:0 with a
//! temp data dir, a real HTTP client, and the CLI on a second data dir for parity.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

const EVENTS: &str = include_str!("examples/madrid-dst/events.ndjson");
const NOW: &str = "2025-10-27T11:55:05+01:00";

/// (status, body, x-request-id).
fn send(
    method: &str,
    url: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String, Option<String>) {
    let agent = agent();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        builder = builder.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        builder = builder.header("Content-Type", ct);
    }
    let request = builder.body(body.to_vec()).unwrap();
    let mut response = agent.run(request).expect("the server answers");
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string());
    let text = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .unwrap();
    (status, text, id)
}

fn get(url: &str, token: &str) -> (u16, String) {
    let (s, b, _) = send("GET", url, Some(token), None, b"");
    (s, b)
}

fn post_ndjson(url: &str, token: &str, body: &str) -> (u16, String) {
    let (s, b, _) = send(
        "POST",
        url,
        Some(token),
        Some("application/x-ndjson"),
        body.as_bytes(),
    );
    (s, b)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A data dir with workspaces `a` and `b` (Europe/Madrid) and tokens made by the CLI:
/// (dir, read a, ingest a, read b, ingest b).
fn setup() -> (tempfile::TempDir, String, String, String, String) {
    let d = tempfile::tempdir().unwrap();
    for ws in ["a", "b"] {
        cli_ok(
            d.path(),
            &["workspace", "create", ws, "--timezone", "Europe/Madrid"],
        );
    }
    let token = |ws: &str, scope: &str| token(d.path(), ws, scope);
    let (ra, ia, rb, ib) = (
        token("a", "read"),
        token("a", "ingest"),
        token("b", "read"),
        token("b", "ingest"),
    );
    (d, ra, ia, rb, ib)
}

/// The Messages report over the last 30 days to `NOW`, as the CLI prints it.
fn messages_report(data: &Path) -> String {
    cli_ok(
        data,
        &[
            "report",
            "messages",
            "--workspace",
            "a",
            "--range",
            "last_30_days",
            "--now",
            NOW,
        ],
    )
}

fn view() -> String {
    format!("range=last_30_days&now={}", NOW.replace('+', "%2B"))
}

#[test]
fn every_status_of_the_contract() {
    let (d, ra, ia, _rb, _ib) = setup();
    let revoked = cli_ok(
        d.path(),
        &["token", "create", "--workspace", "a", "--scope", "read"],
    )
    .trim()
    .to_string();
    cli_ok(d.path(), &["token", "revoke", &revoked]);
    let s = Server::start(d.path(), &["--max-body", "65536"]);
    let events = s.url("/api/v1/workspaces/a/events");
    let reports = s.url("/api/v1/workspaces/a/reports");
    let error = |body: &str| json(body)["error"].clone();

    // 200: NDJSON and a JSON array; the summary counts duplicates.
    let first: Vec<&str> = EVENTS.lines().take(40).collect();
    let (st, body) = post_ndjson(&events, &ia, &first.join("\n"));
    assert_eq!(st, 200, "{body}");
    let accepted = json(&body)["accepted"].as_u64().unwrap();
    assert!(accepted > 0);
    let array = format!("[{}]", first[..10].join(","));
    let (st, body, id) = send(
        "POST",
        &events,
        Some(&ia),
        Some("application/json"),
        array.as_bytes(),
    );
    assert_eq!(
        (st, json(&body)["accepted"].as_u64()),
        (200, Some(0)),
        "{body}"
    );
    assert!(json(&body)["duplicates"].as_u64().unwrap() >= 10);
    assert!(
        id.is_some_and(|i| !i.is_empty()),
        "every answer carries a request id"
    );

    // 422: the batch is refused whole, with the event, field and reason.
    let bad = format!(
        "{}\n{}",
        r#"{"id":"ok1","type":"contact.added","at":"2025-10-27T10:00:00Z","contact":{"id":"zz","name":"Zed"},"source":"user"}"#,
        r#"{"id":"bad1","type":"message.received","at":"2025-10-27T10:00:00Z","message_id":"m","contact_id":"zz","channel_id":"tt","content":{"type":"gif"}}"#
    );
    let (st, body) = post_ndjson(&events, &ia, &bad);
    assert_eq!(st, 422, "{body}");
    let e = error(&body);
    assert_eq!(e["code"], "invalid_batch");
    assert_eq!(e["details"][0]["line"], 2);
    assert_eq!(e["details"][0]["id"], "bad1");
    assert_eq!(e["details"][0]["field"], "content.type");
    let message = e["message"].as_str().unwrap();
    assert_eq!(
        message.matches("content.type").count(),
        1,
        "each reason once: {message}"
    );
    let (_, body) = post_ndjson(&events, &ia, bad.lines().next().unwrap());
    assert_eq!(
        json(&body)["accepted"],
        1,
        "nothing of the refused batch was stored"
    );
    let dup_key = r#"{"id":"k1","id":"k2","type":"contact.added","at":"2025-10-27T10:00:00Z","contact":{"id":"zy","name":"Zy"},"source":"user"}"#;
    let (st, body) = post_ndjson(&events, &ia, dup_key);
    assert_eq!(st, 422, "a key twice in an object: {body}");
    let (st, body, _) = send(
        "POST",
        &events,
        Some(&ia),
        Some("application/json"),
        format!("[{dup_key}]").as_bytes(),
    );
    assert_eq!(st, 422, "a key twice, in an array too: {body}");

    // 400, 413, 415 on the body.
    let (st, body, _) = send(
        "POST",
        &events,
        Some(&ia),
        Some("application/x-ndjson"),
        b"{\"id\":\"\xff\"}",
    );
    assert_eq!(st, 400, "{body}");
    assert!(error(&body)["message"].as_str().unwrap().contains("UTF-8"));
    let (st, body, _) = send(
        "POST",
        &events,
        Some(&ia),
        Some("application/json"),
        b"{\"not\":\"an array\"}",
    );
    assert_eq!(st, 400, "{body}");
    let big = "x".repeat(70_000);
    let (st, body) = post_ndjson(&events, &ia, &big);
    assert_eq!(
        (st, error(&body)["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    let (st, body, _) = send("POST", &events, Some(&ia), Some("text/plain"), b"");
    assert_eq!(
        (st, error(&body)["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (st, _, _) = send("POST", &events, Some(&ia), None, b"");
    assert_eq!(st, 415, "no Content-Type");

    // 401, 403, 404 of tokens.
    let conv = format!("{reports}/conversations?{}", view());
    let (st, body, _) = send("GET", &conv, None, None, b"");
    assert_eq!(
        (st, error(&body)["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(get(&conv, "parley_nonsense").0, 401);
    assert_eq!(get(&conv, &revoked).0, 401, "a revoked token");
    assert_eq!(get(&conv, &ia).0, 403, "an ingest token cannot read");
    assert_eq!(
        post_ndjson(&events, &ra, "").0,
        403,
        "a read token cannot ingest"
    );
    let (st, elsewhere) = get(
        &s.url(&format!(
            "/api/v1/workspaces/b/reports/conversations?{}",
            view()
        )),
        &ra,
    );
    let (st2, missing) = get(
        &s.url(&format!(
            "/api/v1/workspaces/zz/reports/conversations?{}",
            view()
        )),
        &ra,
    );
    assert_eq!((st, st2), (404, 404));
    assert_eq!(
        elsewhere.replace("\\\"b\\\"", "X"),
        missing.replace("\\\"zz\\\"", "X"),
        "another workspace looks exactly like none"
    );
    assert_eq!(get(&s.url("/api/v1/nothing"), &ra).0, 404);

    // 400 on bad parameters, never 500.
    for (query, why) in [
        (format!("{reports}/sales?{}", view()), "unknown report"),
        (
            format!("{reports}/conversations?range=last_year"),
            "unknown preset",
        ),
        (format!("{reports}/conversations"), "no range"),
        (
            format!("{reports}/conversations?range=today&from=2025-01-01&to=2025-01-02"),
            "both ranges",
        ),
        (
            format!("{reports}/conversations?from=2025-10-05&to=2025-10-01"),
            "from > to",
        ),
        (
            format!("{reports}/conversations?from=2025-10-32&to=2025-11-01"),
            "bad date",
        ),
        (
            format!("{reports}/conversations?range=today&now=yesterday"),
            "bad now",
        ),
        (
            format!("{reports}/conversations?{}&filter=nope%3D1", view()),
            "unknown filter",
        ),
        (
            format!("{reports}/conversations?{}&colour=red", view()),
            "unknown parameter",
        ),
        (
            format!("{reports}/conversations?{}&range=today", view()),
            "a parameter twice",
        ),
        (
            format!("{reports}/messages/logs/sent?{}", view()),
            "unknown log",
        ),
        (
            format!("{reports}/messages/logs/incoming?{}&page=0", view()),
            "page 0",
        ),
        (
            format!("{reports}/messages/logs/incoming?{}&page=x", view()),
            "page x",
        ),
        (
            format!("{reports}/messages/logs/incoming?{}&per_page=1001", view()),
            "per_page",
        ),
        (
            format!(
                "{reports}/messages/logs/incoming.csv?{}&filter=user%3Du1",
                view()
            ),
            "filter a log lacks",
        ),
    ] {
        let (st, body) = get(&query, &ra);
        assert_eq!(st, 400, "{why}: {body}");
        let e = error(&body);
        assert_eq!(e["code"], "bad_request", "{why}");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{why}");
    }

    // The admin token: workspaces and tokens.
    let workspaces = s.url("/api/v1/workspaces");
    let new = br#"{"id":"c","timezone":"america/bogota"}"#;
    let (st, body, _) = send(
        "POST",
        &workspaces,
        Some(ADMIN),
        Some("application/json"),
        new,
    );
    assert_eq!(st, 201, "{body}");
    assert_eq!(
        body,
        "{\n  \"id\": \"c\",\n  \"timezone\": \"America/Bogota\",\n  \"name\": \"c\"\n}\n"
    );
    let (st, body, _) = send(
        "POST",
        &workspaces,
        Some(ADMIN),
        Some("application/json"),
        new,
    );
    assert_eq!((st, error(&body)["code"].as_str()), (409, Some("conflict")));
    let (st, _, _) = send(
        "POST",
        &workspaces,
        Some(&ra),
        Some("application/json"),
        new,
    );
    assert_eq!(st, 403, "a workspace token is no admin");
    let (st, _, _) = send(
        "POST",
        &workspaces,
        Some(ADMIN),
        Some("application/json"),
        br#"{"id":"d","timezone":"Mars/Base"}"#,
    );
    assert_eq!(st, 400, "an unknown zone");
    let (st, _, _) = send(
        "POST",
        &workspaces,
        Some(ADMIN),
        Some("application/json"),
        br#"{"id":"D!","timezone":"UTC"}"#,
    );
    assert_eq!(st, 400, "an id outside the pattern");
    let (st, body, _) = send(
        "POST",
        &s.url("/api/v1/workspaces/c/tokens"),
        Some(ADMIN),
        Some("application/json"),
        br#"{"scope":"read"}"#,
    );
    assert_eq!(st, 201, "{body}");
    let c_read = json(&body)["token"].as_str().unwrap().to_string();
    assert_eq!(
        get(
            &s.url(&format!("/api/v1/workspaces/c/reports/contacts?{}", view())),
            &c_read
        )
        .0,
        200
    );
    let (st, _, _) = send(
        "POST",
        &s.url("/api/v1/tokens/revoke"),
        Some(ADMIN),
        Some("application/json"),
        format!("{{\"token\":\"{c_read}\"}}").as_bytes(),
    );
    assert_eq!(st, 200);
    assert_eq!(
        get(
            &s.url(&format!("/api/v1/workspaces/c/reports/contacts?{}", view())),
            &c_read
        )
        .0,
        401
    );
    let (st, body) = get(&workspaces, ADMIN);
    assert_eq!(st, 200);
    assert_eq!(json(&body).as_array().unwrap().len(), 3);

    // 405 and the probes.
    let (st, _, _) = send("DELETE", &conv, Some(&ra), None, b"");
    assert_eq!(st, 405);
    assert_eq!(send("GET", &s.url("/healthz"), None, None, b"").0, 200);
    assert_eq!(send("GET", &s.url("/readyz"), None, None, b"").0, 200);
}

#[test]
fn tokens_reach_their_own_workspace_and_scope_only() {
    let (d, ra, ia, rb, ib) = setup();
    let s = Server::start(d.path(), &[]);
    let q = view();
    for (token, tws, scope) in [
        (&ra, "a", "read"),
        (&ia, "a", "ingest"),
        (&rb, "b", "read"),
        (&ib, "b", "ingest"),
    ] {
        for ws in ["a", "b", "zz"] {
            let base = s.url(&format!("/api/v1/workspaces/{ws}"));
            let routes: [(&str, String, &str); 4] = [
                ("POST", format!("{base}/events"), "ingest"),
                ("GET", format!("{base}/reports/messages?{q}"), "read"),
                (
                    "GET",
                    format!("{base}/reports/messages/logs/incoming?{q}"),
                    "read",
                ),
                (
                    "GET",
                    format!("{base}/reports/messages/logs/incoming.csv?{q}"),
                    "read",
                ),
            ];
            for (method, url, needs) in routes {
                let (st, body, _) =
                    send(method, &url, Some(token), Some("application/x-ndjson"), b"");
                let want = if ws != tws {
                    404
                } else if needs != scope {
                    403
                } else {
                    200
                };
                assert_eq!(st, want, "{scope} token of {tws} on {method} {url}: {body}");
            }
        }
    }
}

/// The same events through the API and through the CLI give byte-identical documents,
/// log pages and exports.
#[test]
fn the_api_answers_what_the_cli_prints() {
    let (d, ra, ia, _, _) = setup();
    let c = tempfile::tempdir().unwrap();
    cli_ok(
        c.path(),
        &["workspace", "create", "a", "--timezone", "Europe/Madrid"],
    );
    let file = c.path().join("events.ndjson");
    std::fs::write(&file, EVENTS).unwrap();
    let cli_summary = cli_ok(
        c.path(),
        &["ingest", "--workspace", "a", file.to_str().unwrap()],
    );
    let s = Server::start(d.path(), &[]);
    let (st, body) = post_ndjson(&s.url("/api/v1/workspaces/a/events"), &ia, EVENTS);
    assert_eq!(st, 200);
    assert_eq!(json(&body), json(&cli_summary));
    let base = s.url("/api/v1/workspaces/a/reports");
    let views: [(&str, Vec<&str>); 3] = [
        (&view(), vec!["--range", "last_30_days", "--now", NOW]),
        (
            "from=2025-10-25&to=2025-10-27&filter=channel%3DTikTok&filter=channel%3DWhatsApp",
            vec![
                "--from",
                "2025-10-25",
                "--to",
                "2025-10-27",
                "--filter",
                "channel=TikTok",
                "--filter",
                "channel=WhatsApp",
            ],
        ),
        (
            "range=last_7_days&now=2025-10-27T11%3A55%3A05%2B01%3A00&filter=contact%3Dilker",
            vec![
                "--range",
                "last_7_days",
                "--now",
                NOW,
                "--filter",
                "contact=ilker",
            ],
        ),
    ];
    for (query, args) in &views {
        for report in ["conversations", "messages", "contacts", "assignments"] {
            let mut a = vec!["report", report, "--workspace", "a"];
            a.extend(args.iter().copied());
            let out = cli(c.path(), &a);
            let (st, body) = get(&format!("{base}/{report}?{query}"), &ra);
            if out.status.success() {
                assert_eq!(st, 200, "{report} {query}: {body}");
                assert_eq!(
                    body,
                    String::from_utf8(out.stdout).unwrap(),
                    "{report} {query}"
                );
            } else {
                assert_eq!(st, 400, "{report} {query}: refused both ways: {body}");
            }
        }
    }
    for (report, log) in [
        ("conversations", "conversations"),
        ("messages", "incoming"),
        ("messages", "outgoing"),
        ("contacts", "added"),
        ("assignments", "assignments"),
    ] {
        let mut a = vec![
            "log",
            report,
            log,
            "--workspace",
            "a",
            "--range",
            "last_30_days",
            "--now",
            NOW,
            "--page",
            "2",
            "--per-page",
            "7",
        ];
        let page = cli_ok(c.path(), &a);
        let (st, body) = get(
            &format!("{base}/{report}/logs/{log}?{}&page=2&per_page=7", view()),
            &ra,
        );
        assert_eq!((st, body), (200, page), "{report} {log} page 2");
        a = vec![
            "export",
            report,
            log,
            "--workspace",
            "a",
            "--range",
            "last_30_days",
            "--now",
            NOW,
        ];
        let csv = cli_ok(c.path(), &a);
        let (st, body) = get(&format!("{base}/{report}/logs/{log}.csv?{}", view()), &ra);
        assert_eq!((st, body), (200, csv), "{report} {log} export");
    }
}

/// Several clients post overlapping batches at once: every event is counted once, and
/// the reports are those of one whole ingest. A restart keeps every acknowledged batch.
#[test]
fn concurrent_posters_lose_nothing_and_a_restart_keeps_it() {
    let (d, ra, ia, _, _) = setup();
    let c = tempfile::tempdir().unwrap();
    cli_ok(
        c.path(),
        &["workspace", "create", "a", "--timezone", "Europe/Madrid"],
    );
    let file = c.path().join("events.ndjson");
    std::fs::write(&file, EVENTS).unwrap();
    let whole = json(&cli_ok(
        c.path(),
        &["ingest", "--workspace", "a", file.to_str().unwrap()],
    ));
    let lines: Vec<&str> = EVENTS.lines().collect();
    let s = Server::start(d.path(), &[]);
    let url = s.url("/api/v1/workspaces/a/events");
    // Four clients, each posting its quarter and half of the next in batches of 25:
    // every line is posted by one or two clients.
    let n = lines.len();
    let (accepted, posted): (u64, u64) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (url, ia, lines) = (&url, &ia, &lines);
                scope.spawn(move || {
                    let (from, to) = (i * n / 4, ((i + 1) * n / 4 + n / 8).min(n));
                    let mut accepted = 0;
                    for chunk in lines[from..to].chunks(25) {
                        let (st, body) = post_ndjson(url, ia, &chunk.join("\n"));
                        assert_eq!(st, 200, "{body}");
                        accepted += json(&body)["accepted"].as_u64().unwrap();
                    }
                    (accepted, (to - from) as u64)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(a, p), (x, y)| (a + x, p + y))
    });
    assert_eq!(
        accepted,
        whole["accepted"].as_u64().unwrap(),
        "each event accepted once, across clients"
    );
    assert!(posted > n as u64);
    let reports = |s: &Server| -> Vec<String> {
        ["conversations", "messages", "contacts", "assignments"]
            .iter()
            .map(|r| {
                let (st, body) = get(
                    &s.url(&format!("/api/v1/workspaces/a/reports/{r}?{}", view())),
                    &ra,
                );
                assert_eq!(st, 200);
                body
            })
            .collect()
    };
    let before = reports(&s);
    for (r, body) in ["conversations", "messages", "contacts", "assignments"]
        .iter()
        .zip(&before)
    {
        let cli_doc = cli_ok(
            c.path(),
            &[
                "report",
                r,
                "--workspace",
                "a",
                "--range",
                "last_30_days",
                "--now",
                NOW,
            ],
        );
        assert_eq!(
            body, &cli_doc,
            "{r}: the concurrent batches give the whole ingest's report"
        );
    }
    // Killed without warning, then started again on the same data dir.
    s.kill();
    let s = Server::start(d.path(), &[]);
    assert_eq!(
        reports(&s),
        before,
        "every acknowledged batch survives a kill -9"
    );
    let (st, body) = post_ndjson(&s.url("/api/v1/workspaces/a/events"), &ia, EVENTS);
    assert_eq!(
        (st, json(&body)["accepted"].as_u64()),
        (200, Some(0)),
        "all known after the restart"
    );
}

/// While a server holds the data dir, the admin commands and `ingest` go through it;
/// other commands say in one line what holds the dir. A SIGTERM stops the server
/// cleanly, and the CLI then opens the dir itself.
#[test]
fn the_cli_works_beside_a_running_server() {
    let d = tempfile::tempdir().unwrap();
    cli_ok(
        d.path(),
        &["workspace", "create", "a", "--timezone", "Europe/Madrid"],
    );
    let s = Server::start(d.path(), &[]);
    assert!(d.path().join("serve.json").exists());
    let created = cli_ok(
        d.path(),
        &[
            "workspace",
            "create",
            "b",
            "--timezone",
            "utc",
            "--name",
            "Bee",
        ],
    );
    assert_eq!(
        created,
        "{\"id\":\"b\",\"timezone\":\"UTC\",\"name\":\"Bee\"}\n"
    );
    let again = cli(d.path(), &["workspace", "create", "b", "--timezone", "UTC"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&again.stderr),
        "error: workspace \"b\" already exists\n"
    );
    let listed = cli_ok(d.path(), &["workspace", "list"]);
    assert!(listed.starts_with("[{\"id\":\"a\""), "{listed}");
    let read = cli_ok(
        d.path(),
        &["token", "create", "--workspace", "a", "--scope", "read"],
    );
    let read = read.trim();
    assert!(
        read.starts_with("parley_") && !read.contains(' '),
        "only the token: {read}"
    );
    let file = d.path().join("events.ndjson");
    std::fs::write(&file, EVENTS).unwrap();
    let summary = cli_ok(
        d.path(),
        &["ingest", "--workspace", "a", file.to_str().unwrap()],
    );
    assert_eq!(summary, "{\"accepted\": 485, \"duplicates\": 13}\n");
    let (st, api_doc) = get(
        &s.url(&format!("/api/v1/workspaces/a/reports/messages?{}", view())),
        read,
    );
    assert_eq!(st, 200);
    let report = cli(
        d.path(),
        &["report", "messages", "--workspace", "a", "--range", "today"],
    );
    assert_eq!(report.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&report.stderr);
    assert_eq!(msg.lines().count(), 1, "{msg}");
    assert!(
        msg.contains("in use") && msg.contains("parley serve"),
        "{msg}"
    );
    let revoked = cli_ok(d.path(), &["token", "revoke", read]);
    assert!(revoked.contains("\"workspace\":\"a\""), "{revoked}");
    let (st, _) = get(
        &s.url(&format!("/api/v1/workspaces/a/reports/messages?{}", view())),
        read,
    );
    assert_eq!(st, 401, "revoked through the server");
    // A graceful stop: exit 0, the serve file gone, the CLI on its own again.
    let mut s = s;
    let term = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!d.path().join("serve.json").exists());
    let cli_doc = messages_report(d.path());
    assert_eq!(cli_doc, api_doc, "what was acknowledged is there");
}

/// The OpenAPI document is generated from the routes: the server serves what `parley
/// openapi` prints, it holds every route the API answers, and every route it holds is
/// answered (none falls to "no such route").
#[test]
fn the_openapi_document_holds_every_route() {
    let (d, ra, _, _, _) = setup();
    let s = Server::start(d.path(), &[]);
    let (st, served, _) = send("GET", &s.url("/api/v1/openapi.json"), None, None, b"");
    assert_eq!(st, 200);
    let printed = cli_ok(Path::new("/nonexistent-data-dir"), &["openapi"]);
    assert_eq!(json(&served), json(&printed));
    let doc = json(&served);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = [
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/workspaces"),
        ("POST", "/api/v1/workspaces"),
        ("POST", "/api/v1/workspaces/{ws}/tokens"),
        ("POST", "/api/v1/tokens/revoke"),
        ("POST", "/api/v1/workspaces/{ws}/events"),
        ("GET", "/api/v1/workspaces/{ws}/reports/{report}"),
        ("GET", "/api/v1/workspaces/{ws}/reports/{report}/logs/{log}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    expected.sort();
    assert_eq!(documented, expected);
    for (method, path) in &documented {
        let url = s.url(
            &path
                .replace("{ws}", "a")
                .replace("{report}", "messages")
                .replace("{log}", "incoming"),
        );
        let (st, body, _) = send(
            method,
            &format!("{url}?{}", view()),
            Some(&ra),
            Some("application/json"),
            b"{}",
        );
        assert!(
            !body.contains("no such route") && st != 405,
            "{method} {path} is documented but not served: {st} {body}"
        );
    }
}

/// A SIGTERM while a batch is being ingested: the server finishes it, answers 200, and
/// stops; the batch is there afterwards.
#[test]
fn a_graceful_stop_finishes_the_ingest_in_flight() {
    use std::io::{Read, Write};
    let (d, _, ia, _, _) = setup();
    let s = Server::start(d.path(), &[]);
    let batch: String = (0..50_000)
        .map(|i| {
            format!(
                "{{\"id\":\"g{i}\",\"type\":\"contact.added\",\"at\":\"2025-10-27T10:00:00Z\",\"contact\":{{\"id\":\"k{i}\",\"name\":\"K {i}\"}},\"source\":\"user\"}}\n"
            )
        })
        .collect();
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    // A first request on the connection, so that the server is serving it.
    write!(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut first = [0u8; 512];
    let n = conn.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    write!(
        conn,
        "POST /api/v1/workspaces/a/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ia}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{batch}",
        batch.len()
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let mut s = s;
    let term = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"accepted\": 50000"), "{answer}");
    assert!(s.child.wait().unwrap().success());
    let doc = json(&cli_ok(
        d.path(),
        &[
            "report",
            "contacts",
            "--workspace",
            "a",
            "--range",
            "last_30_days",
            "--now",
            NOW,
        ],
    ));
    assert_eq!(
        doc["components"]["added"]["value"], 50_000,
        "the batch is there"
    );
}

/// Batches filed and not derived before the server starts (`ingest --defer`, or a run
/// killed before its background settle) are derived before it answers a read.
#[test]
fn batches_left_unsettled_are_derived_at_start() {
    let (d, ra, _, _, _) = setup();
    let file = d.path().join("events.ndjson");
    std::fs::write(&file, EVENTS).unwrap();
    cli_ok(
        d.path(),
        &[
            "ingest",
            "--defer",
            "--workspace",
            "a",
            file.to_str().unwrap(),
        ],
    );
    let c = tempfile::tempdir().unwrap();
    cli_ok(
        c.path(),
        &["workspace", "create", "a", "--timezone", "Europe/Madrid"],
    );
    cli_ok(
        c.path(),
        &["ingest", "--workspace", "a", file.to_str().unwrap()],
    );
    let s = Server::start(d.path(), &[]);
    let (st, body) = get(
        &s.url(&format!("/api/v1/workspaces/a/reports/messages?{}", view())),
        &ra,
    );
    assert_eq!(st, 200);
    let cli_doc = messages_report(c.path());
    assert_eq!(body, cli_doc);
}

/// `--log-format json`: one JSON object per line on stderr, each request's with its
/// method, path, status and request id (the client's `x-request-id` when it sends one).
#[test]
fn request_logs_are_structured_with_their_request_ids() {
    let d = tempfile::tempdir().unwrap();
    cli_ok(d.path(), &["workspace", "create", "a", "--timezone", "UTC"]);
    let (mut child, base, lines) = spawn_server(d.path(), &["--log-format", "json"]);
    let request = ureq::http::Request::builder()
        .uri(format!("{base}/healthz"))
        .header("x-request-id", "req-from-the-client")
        .body(())
        .unwrap();
    let answer = agent().run(request).unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer.headers().get("x-request-id").unwrap(),
        "req-from-the-client"
    );
    let (st, _, _) = send(
        "GET",
        &format!("{base}/api/v1/workspaces/a/reports/messages"),
        None,
        None,
        b"",
    );
    assert_eq!(st, 401);
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let logged: Vec<serde_json::Value> = lines
        .map(|l| l.unwrap())
        .filter(|l| l.starts_with('{'))
        .map(|l| json(&l))
        .collect();
    assert!(child.wait().unwrap().success());
    let requests: Vec<&serde_json::Value> = logged
        .iter()
        .filter(|l| l["fields"]["message"] == "finished processing request")
        .collect();
    assert_eq!(requests.len(), 2, "{logged:?}");
    assert_eq!(requests[0]["span"]["request_id"], "req-from-the-client");
    assert_eq!(requests[0]["span"]["path"], "/healthz");
    assert_eq!(requests[0]["fields"]["status"], 200);
    assert_eq!(requests[1]["fields"]["status"], 401);
    let generated = requests[1]["span"]["request_id"].as_str().unwrap();
    assert_eq!(generated.len(), 36, "a generated UUID: {generated}");
}

/// Runs `parley demo` on `dir` (a small simulation, an ephemeral port) until it prints
/// its instructions: the process, its stdout up to "Press Ctrl-C", and its stderr so far.
fn start_demo(dir: &Path) -> (Child, String) {
    let mut child = Command::new(bin())
        .arg("--data")
        .arg(dir)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--conversations",
            "3000",
            "--days",
            "35",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut shown = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        shown.push_str(&line);
        shown.push('\n');
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, shown)
}

/// Stops a process as Ctrl-C does, and waits for a clean exit.
fn interrupt(mut child: Child) {
    let int = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(int.success());
    assert!(
        child.wait().unwrap().success(),
        "Ctrl-C stops the demo cleanly"
    );
}

/// `parley demo` simulates and ingests a workspace, serves it, and prints a curl line
/// that returns its Conversations report when pasted; Ctrl-C stops it; a second run
/// reuses the data and the token.
#[test]
fn the_demo_serves_a_simulated_workspace_and_its_curl_line_works() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("parley-demo");
    let (child, shown) = start_demo(&dir);
    let curl = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("curl -s "))
        .unwrap_or_else(|| panic!("no curl line in {shown}"));
    // curl -s -H 'Authorization: Bearer TOKEN' 'URL'
    let quoted: Vec<&str> = curl.split('\'').collect();
    let token = quoted[1].strip_prefix("Authorization: Bearer ").unwrap();
    let url = quoted[3];
    assert!(
        url.ends_with("/api/v1/workspaces/demo/reports/conversations?range=last_30_days"),
        "{url}"
    );
    let (status, body) = get(url, token);
    assert_eq!(status, 200, "{body}");
    let doc = json(&body);
    assert_eq!(doc["report"], "conversations");
    assert!(
        doc["components"]["opened"]["value"].as_i64().unwrap() > 500,
        "{body}"
    );
    assert!(shown.contains(&format!("read token {token}")), "{shown}");
    assert!(dir.join("serve.json").exists());
    interrupt(child);
    assert!(
        !dir.join("serve.json").exists(),
        "the server's file is removed at the stop"
    );

    let (child, again) = start_demo(&dir);
    assert!(
        again.contains(&format!("read token {token}")),
        "the same token: {again}"
    );
    let url = again
        .lines()
        .find_map(|l| l.trim().strip_prefix("curl -s "))
        .map(|c| c.split('\'').nth(3).unwrap().to_string())
        .unwrap();
    let (status, second) = get(&url, token);
    assert_eq!(status, 200);
    assert_eq!(
        json(&second)["components"]["opened"],
        doc["components"]["opened"],
        "the second run serves the same data, not a second simulation"
    );
    // The dashboard's URL: the sign-in page with the token filled in, which signs in
    // to the demo's Conversations report.
    let dashboard = again
        .lines()
        .find_map(|l| l.trim().strip_prefix("Dashboard"))
        .map(|u| u.trim().to_string())
        .expect("the dashboard's URL is printed");
    assert!(dashboard.contains("/login?token="), "{dashboard}");
    let (status, page) = get(&dashboard, "");
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(
            r#"name="token" type="password" autocomplete="off" required value="{token}""#
        )),
        "{page}"
    );
    assert!(page.contains(r#"name="next" value="/w/demo/reports/conversations""#));
    let base = dashboard.split("/login").next().unwrap();
    let no_redirects: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let signed_in = no_redirects
        .post(&format!("{base}/login"))
        .content_type("application/x-www-form-urlencoded")
        .send(format!(
            "token={token}&next=%2Fw%2Fdemo%2Freports%2Fconversations"
        ))
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    assert_eq!(
        signed_in.headers().get("location").unwrap(),
        "/w/demo/reports/conversations"
    );
    assert!(signed_in.headers().get("set-cookie").is_some(), "a session");
    interrupt(child);
}

/// An acknowledged batch is durable before it is filed into the database: with the
/// filer held (`PARLEY_HOLD_SPOOL`), a read that may wait 100 ms answers at once with
/// the facts derived so far and says how many batches it leaves out; a bad wait is a
/// 400; after a `kill -9`, the CLI (which files the spool when it opens the data dir)
/// reports every acknowledged event, as one ingest of them does.
#[test]
fn acknowledged_batches_survive_in_the_spool_and_reads_may_bound_their_wait() {
    let (d, ra, ia, _, _) = setup();
    let (mut child, base, lines) = spawn_server_with(d.path(), &[], &[("PARLEY_HOLD_SPOOL", "1")]);
    std::thread::spawn(move || for _ in lines {});
    let events: Vec<&str> = EVENTS.lines().filter(|l| !l.trim().is_empty()).collect();
    let (half, rest) = events.split_at(events.len() / 2);
    let url = format!("{base}/api/v1/workspaces/a/events");
    let (s1, b1) = post_ndjson(&url, &ia, &half.join("\n"));
    let (s2, b2) = post_ndjson(&url, &ia, &rest.join("\n"));
    assert_eq!((s1, s2), (200, 200), "{b1} {b2}");
    let accepted =
        json(&b1)["accepted"].as_i64().unwrap() + json(&b2)["accepted"].as_i64().unwrap();

    let report = format!("{base}/api/v1/workspaces/a/reports/messages?{}", view());
    let agent = agent();
    let ask = |wait: &str| {
        let request = ureq::http::Request::builder()
            .uri(report.as_str())
            .header("Authorization", format!("Bearer {ra}"))
            .header("Parley-Max-Wait", wait)
            .body(Vec::new())
            .unwrap();
        let mut response = agent.run(request).unwrap();
        let pending = response
            .headers()
            .get("parley-pending")
            .map(|v| v.to_str().unwrap().to_string());
        let body = response.body_mut().read_to_string().unwrap();
        (response.status().as_u16(), pending, body)
    };
    let started = std::time::Instant::now();
    let (status, pending, body) = ask("100");
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(pending.as_deref(), Some("2"), "two batches left out");
    assert_eq!(
        json(&body)["components"]["incoming_by_channel"]["total"],
        0,
        "nothing is derived while the spool is held"
    );
    let (status, _, body) = ask("soon");
    assert_eq!(status, 400);
    assert!(body.contains("parley-max-wait"), "{body}");

    child.kill().unwrap();
    child.wait().unwrap();
    assert!(d.path().join("spool").read_dir().unwrap().next().is_some());
    let want = tempfile::tempdir().unwrap();
    cli_ok(
        want.path(),
        &["workspace", "create", "a", "--timezone", "Europe/Madrid"],
    );
    let whole = std::env::temp_dir().join(format!("parley-spool-{}.ndjson", std::process::id()));
    std::fs::write(&whole, EVENTS).unwrap();
    let summary = json(&cli_ok(
        want.path(),
        &["ingest", "--workspace", "a", whole.to_str().unwrap()],
    ));
    std::fs::remove_file(&whole).unwrap();
    assert_eq!(summary["accepted"].as_i64().unwrap(), accepted);
    assert_eq!(messages_report(d.path()), messages_report(want.path()));
    assert!(
        d.path().join("spool").read_dir().unwrap().next().is_none(),
        "the CLI filed and emptied the spool"
    );
}

/// Backpressure: past `--max-unfiled` events acknowledged and not filed, a post waits
/// for the filer instead of being acknowledged; with the filer held it is answered
/// only once a graceful stop files the spool, and then nothing is lost.
#[test]
fn posts_wait_for_the_filer_past_the_unfiled_limit() {
    let (d, _, ia, _, _) = setup();
    let (mut child, base, lines) = spawn_server_with(
        d.path(),
        &["--max-unfiled", "100"],
        &[("PARLEY_HOLD_SPOOL", "1")],
    );
    std::thread::spawn(move || for _ in lines {});
    let batch = |k: usize| {
        (0..60)
            .map(|i| {
                let n = k * 60 + i;
                format!(
                    r#"{{"id":"bp{n}","type":"message.received","at":"2025-10-26T10:00:00Z","message_id":"bpm{n}","contact_id":"c{}","channel_id":"wa","content":{{"type":"text","text":"hola"}}}}"#,
                    n % 7
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let url = format!("{base}/api/v1/workspaces/a/events");
    for k in 0..2 {
        let (status, body) = post_ndjson(&url, &ia, &batch(k));
        assert_eq!(status, 200, "{body}");
    }
    // 120 unfiled > 100: the third post waits.
    let (tx, rx) = std::sync::mpsc::channel();
    let (third_url, token, third) = (url.clone(), ia.clone(), batch(2));
    std::thread::spawn(move || tx.send(post_ndjson(&third_url, &token, &third)).unwrap());
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(1500))
            .is_err(),
        "a post past the limit is not acknowledged while the filer is held"
    );
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let (status, body) = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["accepted"], 60);
    assert!(child.wait().unwrap().success());
    let doc = json(&cli_ok(
        d.path(),
        &[
            "report",
            "messages",
            "--workspace",
            "a",
            "--from",
            "2025-10-26",
            "--to",
            "2025-10-26",
        ],
    ));
    assert_eq!(doc["components"]["incoming_by_channel"]["total"], 180);
}
