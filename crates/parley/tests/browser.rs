//! The dashboard in a real browser: Debian's headless Chromium driven through
//! chromedriver (WebDriver) against `parley serve` on 127.0.0.1:0, over a simulated
//! workspace. It signs in, opens each report, switches presets and compares the numbers
//! with the API's, adds and removes filters, meets the not-applicable placeholder, pages
//! a log, downloads the export, switches languages, and leaves a screenshot of each
//! report page under the target dir for review (`target/screenshots/`).
//!
//! Needs `chromium` and `chromium-driver` (`/usr/bin/chromedriver`); `.ci/run`
//! installs them.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install Debian's chromium and \
                     chromium-driver (apt-get install -y chromium chromium-driver), as .ci/run does"
                )
            });
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A W3C WebDriver session, spoken directly over HTTP: the few commands these tests
/// need. (fantoccini and thirtyfour pull in `url` and its ICU crates, whose derive
/// macros change the features of `syn` that DuckDB's build depends on: adding them
/// recompiles DuckDB, half an hour here.) The session ends when dropped.
struct Browser {
    base: String,
    agent: ureq::Agent,
}

/// An element of the page, by its WebDriver reference.
struct El<'a> {
    browser: &'a Browser,
    id: String,
    css: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    /// A headless Chromium session, retried while chromedriver starts listening;
    /// lookups wait up to 10 s for their element.
    fn start(driver: &Driver, profile: &std::path::Path) -> Browser {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    "--window-size=1440,2400", "--lang=en-US",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let mut last = String::new();
        for _ in 0..100 {
            let post = agent
                .post(&format!("{}/session", driver.url))
                .content_type("application/json")
                .send(caps.to_string());
            match post {
                Ok(mut r) => {
                    let v: Value =
                        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
                    let id = v["value"]["sessionId"]
                        .as_str()
                        .unwrap_or_else(|| panic!("no session: {v}"))
                        .to_string();
                    let b = Browser {
                        base: format!("{}/session/{id}", driver.url),
                        agent,
                    };
                    b.cmd("POST", "/timeouts", json!({"implicit": 10_000}));
                    return b;
                }
                Err(e) => last = e.to_string(),
            }
            // Waits for the driver's port to open: a bounded retry, not a
            // synchronisation by sleep.
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("chromedriver did not start a session: {last}");
    }

    /// One command; its `value`, or a panic naming the WebDriver error.
    fn try_cmd(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .content_type("application/json")
                .send(body.to_string()),
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let text = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if ok {
            Ok(v["value"].clone())
        } else {
            Err(format!("{method} {path}: {}", v["value"]))
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        self.try_cmd(method, path, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({"url": url}));
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn find(&self, css: &str) -> El<'_> {
        let v = self
            .try_cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        El {
            browser: self,
            id: v[ELEMENT].as_str().unwrap().to_string(),
            css: css.to_string(),
        }
    }

    fn count(&self, css: &str) -> usize {
        self.cmd(
            "POST",
            "/elements",
            json!({"using": "css selector", "value": css}),
        )
        .as_array()
        .unwrap()
        .len()
    }

    fn text(&self, css: &str) -> String {
        self.find(css).text()
    }

    fn attr(&self, css: &str, name: &str) -> String {
        self.find(css).attr(name)
    }

    fn click(&self, css: &str) {
        self.find(css).click();
    }

    fn cookie(&self, name: &str) -> String {
        self.cmd("GET", &format!("/cookie/{name}"), Value::Null)["value"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.cmd("GET", "/screenshot", Value::Null);
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.try_cmd("DELETE", "", Value::Null);
    }
}

impl El<'_> {
    fn path(&self, what: &str) -> String {
        format!("/element/{}{what}", self.id)
    }

    fn text(&self) -> String {
        self.browser
            .cmd("GET", &self.path("/text"), Value::Null)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn attr(&self, name: &str) -> String {
        let v = self.browser.cmd(
            "GET",
            &self.path(&format!("/attribute/{name}")),
            Value::Null,
        );
        v.as_str()
            .unwrap_or_else(|| panic!("{} has no {name}", self.css))
            .to_string()
    }

    fn click(&self) {
        self.browser.cmd("POST", &self.path("/click"), json!({}));
    }

    fn send_keys(&self, text: &str) {
        self.browser
            .cmd("POST", &self.path("/value"), json!({"text": text}));
    }
}

/// Waits until the page's URL satisfies `ok` (a navigation has finished).
fn wait_url(b: &Browser, ok: impl Fn(&str) -> bool) -> String {
    for _ in 0..400 {
        let url = b.url();
        if ok(&url) {
            return url;
        }
        // Polls a condition with a bound: the navigation has no event to wait on here.
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the page never reached the expected URL (at {})", b.url());
}

/// The API's report for the same view, by the read token.
fn api_report(base: &str, token: &str, report: &str, query: &str) -> serde_json::Value {
    let url = format!("{base}/api/v1/workspaces/shop/reports/{report}?{query}");
    let mut r = ureq::get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn screenshot(c: &Browser, name: &str) {
    let png = c.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

fn now_param() -> String {
    SHOP_NOW.replace('+', "%2B").replace(':', "%3A")
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let (d, read, _) = simulated_shop();
    let server = Server::start(d.path(), &[]);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    // Dropped in reverse order, even when a step fails: the session, the driver, the
    // server.
    let c = Browser::start(&driver, profile.path());
    let base = server.base.clone();
    let now = now_param();

    // 1. Sign in: the next page is the Conversations report of the view asked for.
    let start = format!("{base}/w/shop/reports/conversations?range=last_30_days&now={now}");
    c.goto(&start);
    wait_url(&c, |u| u.contains("/login"));
    screenshot(&c, "login");
    c.find("#token").send_keys(&read);
    c.click("form[action='/login'] button[type=submit]");
    wait_url(&c, |u| u.contains("/w/shop/reports/conversations"));
    assert_eq!(c.text("h1"), "Conversations");

    // 2. Each report from the side navigation, with a screenshot for review.
    for (report, title) in [
        ("messages", "Messages"),
        ("contacts", "Contacts"),
        ("assignments", "Assignments"),
        ("conversations", "Conversations"),
    ] {
        c.click(&format!("nav.side a[href^='/w/shop/reports/{report}']"));
        wait_url(&c, |u| u.contains(&format!("/reports/{report}")));
        assert_eq!(c.text("h1"), title);
        assert!(c.url().contains("now="), "the view's now is kept");
        screenshot(&c, report);
        // And the page's lower half: the log, scrolled to by its anchor.
        c.goto(&format!("{}#log", c.url()));
        screenshot(&c, &format!("{report}-log"));
    }

    // 3. Presets: the cards show the API's numbers for the same view.
    for preset in ["last_7_days", "last_month", "last_30_days"] {
        c.click(&format!("select#range option[value='{preset}']"));
        // The script applies a preset at once; without it the Apply button would.
        wait_url(&c, |u| u.contains(&format!("range={preset}")));
        let doc = api_report(
            &base,
            &read,
            "conversations",
            &format!("range={preset}&now={now}"),
        );
        for metric in ["opened", "closed"] {
            let shown = c.attr(&format!("#c-{metric} .metric-value"), "data-value");
            assert_eq!(
                shown,
                doc["components"][metric]["value"].to_string(),
                "{metric} over {preset}"
            );
        }
        let total = c.attr("#c-opened_by_contact_type [data-total]", "data-total");
        assert_eq!(
            total,
            doc["components"]["opened_by_contact_type"]["total"].to_string()
        );
    }

    // 4. Two filters added through "+ Add filter", then one removed.
    for (dimension, value) in [("opened_channel", "wa-sales"), ("closed_source", "user")] {
        c.click("details.add-filter summary");
        c.click(&format!(
            "details.add-filter a[data-dimension='{dimension}']"
        ));
        wait_url(&c, |u| u.contains(&format!("add={dimension}")));
        if dimension == "opened_channel" {
            screenshot(&c, "add-filter");
        }
        c.click(&format!(
            "input[type=checkbox][value='{dimension}={value}']"
        ));
        c.click("form.add-panel button[type=submit]");
        wait_url(&c, |u| !u.contains("add=") && u.contains(value));
    }
    assert_eq!(c.count(".chip"), 2);
    assert!(c
        .text(".chip[data-filter='opened_channel=wa-sales']")
        .contains("WhatsApp Ventas"));

    // 5. With a closed-only filter, the opened components say they do not apply.
    let placeholder = c.text("#c-opened .placeholder");
    assert!(
        placeholder.contains("The selected filters are not applicable here"),
        "{placeholder:?}"
    );
    assert_eq!(
        c.attr("#c-opened .placeholder", "data-status"),
        "filters_not_applicable"
    );
    let filtered = api_report(
        &base,
        &read,
        "conversations",
        &format!(
            "range=last_30_days&now={now}&filter=opened_channel=wa-sales&filter=closed_source=user"
        ),
    );
    assert_eq!(
        filtered["components"]["opened"]["status"],
        "filters_not_applicable"
    );
    assert_eq!(
        c.attr("#c-closed .metric-value", "data-value"),
        filtered["components"]["closed"]["value"].to_string()
    );
    screenshot(&c, "conversations-filtered");
    c.click(".chip[data-filter='closed_source=user'] .chip-x");
    wait_url(&c, |u| !u.contains("closed_source"));
    assert_eq!(c.count(".chip"), 1);
    assert_eq!(
        c.count("#c-opened .metric-value"),
        1,
        "opened applies again"
    );
    c.click("a.clear");
    wait_url(&c, |u| !u.contains("filter="));

    // 6. Paging the log: page 2 holds the next rows.
    let first_row = c.text("table.log tbody tr");
    assert!(c.text(".pager").contains("Page 1 of"));
    c.click(".pager a[rel=next]");
    wait_url(&c, |u| u.contains("page=2"));
    assert!(c.text(".pager").contains("Page 2 of"));
    assert_ne!(c.text("table.log tbody tr"), first_row);

    // 7. The export button's CSV, fetched as the browser would with its session.
    let href = c.attr("#export", "href");
    let session = c.cookie("parley_session");
    assert!(href.starts_with("/w/shop/reports/conversations/logs/conversations.csv?"));
    let mut r = ureq::get(&format!("{base}{href}"))
        .header("Cookie", format!("parley_session={session}"))
        .call()
        .unwrap();
    let csv = r
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "closed_at");
    assert_eq!(header.len(), 30);
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
    assert!(
        records.iter().all(|r| r.len() == 30),
        "every row has every column"
    );
    let rows = records.len();
    let total = c.attr(".log-total [data-total]", "data-total");
    assert_eq!(rows.to_string(), total, "the whole log");

    // 8. Spanish, then French: labels, presets and number formats; remembered.
    c.click(".langs a[hreflang=es]");
    wait_url(&c, |u| u.contains("lang=es"));
    assert_eq!(c.text("h1"), "Conversaciones");
    assert_eq!(c.text("select#range option[selected]"), "Últimos 30 días");
    assert_eq!(c.text("details.add-filter summary"), "+ Añadir filtro");
    let share = c.text("#c-opened_by_contact_type table.metric-table tbody td:nth-child(3)");
    // WebDriver hands no-break spaces back as spaces.
    assert!(share.ends_with(" %") && share.contains(','), "{share:?}");
    // Remembered: a URL without lang stays in Spanish.
    c.goto(&format!(
        "{base}/w/shop/reports/messages?range=last_30_days&now={now}"
    ));
    assert_eq!(c.text("h1"), "Mensajes");
    let outgoing = c.attr("#c-outgoing_by_channel [data-total]", "data-total");
    let n: i64 = outgoing.parse().unwrap();
    assert!(n >= 1_000, "a number with groups: {n}");
    assert_eq!(
        c.text("#c-outgoing_by_channel .total strong"),
        group(n, ".")
    );
    screenshot(&c, "messages-es");
    c.click(".langs a[hreflang=fr]");
    wait_url(&c, |u| u.contains("lang=fr"));
    assert_eq!(
        c.text("select#range option[selected]"),
        "Les 30 derniers jours"
    );
    assert_eq!(c.text("h1"), "Messages");
    assert_eq!(
        c.text("#c-outgoing_by_channel .total strong")
            .replace('\u{202f}', " "),
        group(n, " ")
    );
    assert!(c.text(".switch").contains("Regrouper par"));
    screenshot(&c, "messages-fr");

    // Signing out: the pages ask for a sign-in again.
    c.click("form[action='/logout'] button");
    wait_url(&c, |u| u.ends_with("/login"));
    c.goto(&start);
    wait_url(&c, |u| u.contains("/login?next="));
}

/// `n` grouped by threes with `sep`.
fn group(n: i64, sep: &str) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(ch);
    }
    out
}
