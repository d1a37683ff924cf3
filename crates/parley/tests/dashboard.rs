//! The dashboard as a browser without JavaScript meets it: the real `parley serve` on
//! 127.0.0.1:0, plain HTTP requests carrying the session cookie, and snapshots of the
//! rendered pages of a fixed scenario.

mod common;

use common::*;

const EVENTS: &str = include_str!("examples/madrid-dst/events.ndjson");
const NOW: &str = "2025-10-27T11:55:05+01:00";

/// An HTTP client that neither follows redirects nor keeps cookies: each test says
/// what it sends.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// An answer: status, headers and body.
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// The session id the answer sets.
    fn session(&self) -> String {
        self.cookies()
            .iter()
            .find_map(|c| c.strip_prefix("parley_session="))
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string()
    }
}

fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let mut response = agent()
        .run(builder.body(body.as_bytes().to_vec()).unwrap())
        .expect("the server answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .unwrap(),
    }
}

/// A page as the signed-in browser of `session` asks for it.
fn page(url: &str, session: &str) -> Answer {
    request(
        "GET",
        url,
        &[("Cookie", &format!("parley_session={session}"))],
        "",
    )
}

fn sign_in(server: &Server, token: &str) -> Answer {
    let form = form_urlencoded_pair("token", token);
    request(
        "POST",
        &server.url("/login"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form,
    )
}

fn form_urlencoded_pair(k: &str, v: &str) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!("{}={}", enc(k), enc(v))
}

/// The madrid-dst example in workspaces `a` and `b`, with a read token of each and an
/// ingest token of `a`.
fn madrid() -> (tempfile::TempDir, String, String, String) {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("events.ndjson");
    std::fs::write(&file, EVENTS).unwrap();
    for ws in ["a", "b"] {
        cli_ok(
            d.path(),
            &["workspace", "create", ws, "--timezone", "Europe/Madrid"],
        );
        cli_ok(
            d.path(),
            &["ingest", "--workspace", ws, file.to_str().unwrap()],
        );
    }
    let token = |ws: &str, scope: &str| token(d.path(), ws, scope);
    let (ra, rb, ia) = (token("a", "read"), token("b", "read"), token("a", "ingest"));
    (d, ra, rb, ia)
}

fn now_param(now: &str) -> String {
    now.replace('+', "%2B").replace(':', "%3A")
}

#[test]
fn every_page_needs_a_session_and_sign_in_sets_a_strict_cookie() {
    let (d, ra, rb, ia) = madrid();
    let server = Server::start(d.path(), &[]);
    let report = server.url("/w/a/reports/conversations?range=last_7_days");

    // No session: on to the sign-in page, which comes back here after.
    let r = request("GET", &report, &[], "");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        "/login?next=%2Fw%2Fa%2Freports%2Fconversations%3Frange%3Dlast_7_days"
    );
    let login = request(
        "GET",
        &server.url("/login?next=/w/a/reports/messages"),
        &[],
        "",
    );
    assert_eq!(login.status, 200);
    assert!(login
        .body
        .contains(r#"<form method="post" action="/login">"#));
    assert!(login
        .body
        .contains(r#"name="next" value="/w/a/reports/messages""#));
    assert!(
        login
            .header("content-security-policy")
            .contains("default-src 'none'"),
        "pages carry a strict CSP"
    );

    // Wrong tokens are told apart, and get no session.
    let bad = sign_in(&server, "parley_not-a-token");
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains("unknown or has been revoked"));
    assert!(bad.cookies().is_empty());
    let ingest = sign_in(&server, &ia);
    assert_eq!(ingest.status, 403);
    assert!(ingest.body.contains("cannot read reports"));

    // A read token: an HttpOnly, SameSite=Strict session, and the workspace's first report.
    let ok = sign_in(&server, &ra);
    assert_eq!(ok.status, 303);
    assert_eq!(ok.header("location"), "/w/a/reports/conversations?lang=en");
    let cookie = ok
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("parley_session="))
        .unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let proxied = request(
        "POST",
        &server.url("/login"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-Proto", "https"),
        ],
        &form_urlencoded_pair("token", &ra),
    );
    assert!(
        proxied.cookies().iter().any(|c| c.contains("; Secure")),
        "behind a TLS proxy the session cookie is Secure"
    );
    let session = ok.session();
    let shown = page(&report, &session);
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains("<h1>Conversations</h1>"));

    // Another workspace's pages, and its export, do not exist for this session.
    for path in [
        "/w/b/reports/conversations",
        "/w/b/reports/messages?range=today",
        "/w/b/reports/conversations/logs/conversations.csv?range=today",
        "/w/nope/reports/contacts",
    ] {
        let other = page(&server.url(path), &session);
        assert_eq!(other.status, 404, "{path}");
        assert!(!other.body.contains("Madrid"), "nothing of b leaks: {path}");
    }
    // b's own token reaches b.
    let b = sign_in(&server, &rb).session();
    assert_eq!(page(&server.url("/w/b/reports/contacts"), &b).status, 200);

    // A forged cross-site sign-in is refused.
    let forged = request(
        "POST",
        &server.url("/login"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        &form_urlencoded_pair("token", &ra),
    );
    assert_eq!(forged.status, 403);
    assert!(forged.cookies().is_empty());

    // Signing out clears the cookie and ends the session.
    let out = request(
        "POST",
        &server.url("/logout"),
        &[("Cookie", &format!("parley_session={session}"))],
        "",
    );
    assert_eq!(out.status, 303);
    assert!(out
        .cookies()
        .iter()
        .any(|c| c.starts_with("parley_session=;") && c.contains("Max-Age=0")));
    assert_eq!(page(&report, &session).status, 303);

    // A revoked token ends its sessions.
    let again = sign_in(&server, &ra).session();
    assert_eq!(page(&report, &again).status, 200);
    let revoked = request(
        "POST",
        &server.url("/api/v1/tokens/revoke"),
        &[
            ("Authorization", &format!("Bearer {ADMIN}")),
            ("Content-Type", "application/json"),
        ],
        &format!(r#"{{"token":"{ra}"}}"#),
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(page(&report, &again).status, 303);
}

/// A page's HTML one tag per line, so that a snapshot's diff shows what changed, with
/// the assets' fingerprints (`?v=` and 12 hex digits) left out: a stylesheet change is
/// not a change of every page.
fn lines(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find("?v=") {
        out.push_str(&rest[..at + 3]);
        out.push_str("FINGERPRINT");
        rest = &rest[(at + 3 + 12).min(rest.len())..];
    }
    out.push_str(rest);
    out.replace("><", ">\n<")
}

#[test]
fn each_report_page_renders_as_its_snapshot() {
    let (d, ra, _, _) = madrid();
    let server = Server::start(d.path(), &[]);
    let session = sign_in(&server, &ra).session();
    for report in ["conversations", "messages", "contacts", "assignments"] {
        let url = server.url(&format!(
            "/w/a/reports/{report}?range=last_30_days&now={}&lang=en",
            now_param(NOW)
        ));
        let p = page(&url, &session);
        assert_eq!(p.status, 200, "{}", p.body);
        insta::assert_snapshot!(format!("page_{report}"), lines(&p.body));
    }
    // A filtered view in Spanish: chips, the placeholders, numbers and labels.
    let url = server.url(&format!(
        "/w/a/reports/conversations?range=last_30_days&now={}&filter=closed_source=user&filter=opened_channel=tt&opened_by=source&lang=es",
        now_param(NOW)
    ));
    let p = page(&url, &session);
    assert_eq!(p.status, 200);
    insta::assert_snapshot!("page_conversations_filtered_es", lines(&p.body));
    let login = request("GET", &server.url("/login?lang=fr"), &[], "");
    insta::assert_snapshot!("page_login_fr", lines(&login.body));
}

#[test]
fn the_language_comes_from_the_url_then_the_remembered_choice_then_the_browser() {
    let (d, ra, _, _) = madrid();
    let server = Server::start(d.path(), &[]);
    let session = sign_in(&server, &ra).session();
    let cookie = format!("parley_session={session}");
    let url = server.url("/w/a/reports/messages?range=last_30_days");
    let get = |url: &str, headers: &[(&str, &str)]| {
        let mut h = vec![("Cookie", cookie.as_str())];
        h.extend_from_slice(headers);
        request("GET", url, &h, "")
    };
    let english = get(&url, &[]);
    assert!(english.body.contains(r#"<html lang="en">"#));
    let french = get(&url, &[("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.5")]);
    assert!(french.body.contains(r#"<html lang="fr">"#));
    assert!(french.body.contains("Les 30 derniers jours"));
    // Picked in the URL: shown, and remembered in a cookie.
    let spanish = get(&format!("{url}&lang=es"), &[("Accept-Language", "fr")]);
    assert!(spanish.body.contains(r#"<html lang="es">"#));
    assert!(spanish.body.contains("Últimos 30 días"));
    let remembered = spanish
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("parley_lang=es"))
        .expect("the choice is remembered");
    let both = format!("{cookie}; {}", remembered.split(';').next().unwrap());
    let later = request(
        "GET",
        &url,
        &[("Cookie", &both), ("Accept-Language", "fr")],
        "",
    );
    assert!(
        later.body.contains(r#"<html lang="es">"#),
        "the cookie beats the browser"
    );
}

#[test]
fn bad_views_get_an_error_page_that_names_the_fault() {
    let (d, ra, _, _) = madrid();
    let server = Server::start(d.path(), &[]);
    let session = sign_in(&server, &ra).session();
    for (query, says) in [
        ("from=2025-10-20&to=2025-10-01", "from"),
        ("range=last_7_days&filter=nope=1", "nope"),
        (
            "range=last_7_days&filter=opened_source=carrier_pigeon",
            "carrier_pigeon",
        ),
        ("range=last_7_days&page=0", "page"),
        ("range=last_7_days&opened_by=mood", "mood"),
        ("from=2025-13-01&to=2025-13-02", "2025-13-01"),
    ] {
        let p = page(
            &server.url(&format!("/w/a/reports/conversations?{query}")),
            &session,
        );
        assert_eq!(p.status, 400, "{query}: {}", p.body);
        assert!(p.body.contains(says), "{query}: {}", p.body);
        assert!(p.body.contains("This view cannot be shown"));
    }
    assert_eq!(
        page(&server.url("/w/a/reports/sales"), &session).status,
        404
    );
}

#[test]
fn add_filter_offers_the_workspaces_own_values_but_not_deleted_channels() {
    let (d, read, _) = simulated_shop();
    let server = Server::start(d.path(), &[]);
    let session = sign_in(&server, &read).session();
    let base = format!(
        "/w/shop/reports/conversations?range=last_30_days&now={}",
        now_param(SHOP_NOW)
    );
    let panel = page(&server.url(&format!("{base}&add=opened_channel")), &session);
    assert_eq!(panel.status, 200);
    assert!(panel.body.contains(r#"value="opened_channel=wa-sales""#));
    assert!(panel.body.contains("WhatsApp Ventas"));
    assert!(
        !panel.body.contains(r#"value="opened_channel=wa-old""#),
        "the deleted channel is not offered"
    );
    let users = page(&server.url(&format!("{base}&add=first_assignee")), &session);
    assert!(users.body.contains("Lucía Fernández"), "agents by name");
    let categories = page(&server.url(&format!("{base}&add=category")), &session);
    assert!(categories.body.contains(r#"value="category="#));
    // A typed contact becomes one more filter of the view's own URL.
    let typed = page(
        &server.url(&format!("{base}&add_dim=contact&add_value=+ana+")),
        &session,
    );
    assert_eq!(typed.status, 303);
    assert!(
        typed.header("location").ends_with("&filter=contact%3Dana"),
        "{}",
        typed.header("location")
    );
}

#[test]
fn the_export_button_downloads_the_whole_log_as_the_api_exports_it() {
    let (d, read, _) = simulated_shop();
    let server = Server::start(d.path(), &[]);
    let session = sign_in(&server, &read).session();
    let view = format!("range=last_30_days&now={}", now_param(SHOP_NOW));
    let p = page(
        &server.url(&format!("/w/shop/reports/messages?{view}&log=outgoing")),
        &session,
    );
    let href = p
        .body
        .split(r#"id="export" href=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an export button")
        .replace("&amp;", "&");
    assert!(
        href.starts_with("/w/shop/reports/messages/logs/outgoing.csv?"),
        "{href}"
    );
    let csv = page(&server.url(&href), &session);
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").starts_with("text/csv"));
    let api = request(
        "GET",
        &server.url(&format!(
            "/api/v1/workspaces/shop/reports/messages/logs/outgoing.csv?{view}"
        )),
        &[("Authorization", &format!("Bearer {read}"))],
        "",
    );
    assert_eq!(csv.body, api.body);
    assert!(csv.body.lines().count() > 1000, "the whole log, not a page");
    // Without a session, no CSV.
    assert_eq!(page(&server.url(&href), "nope").status, 303);
}
