//! The web dashboard (SPEC §7): the four reports as server-rendered pages, one per
//! report, in English, Spanish and French. Pages work without JavaScript (the filter
//! bar is a GET form, paging and "+ Add filter" are links, sign-in and sign-out are
//! POSTs followed by a redirect); a small script only submits the range when it
//! changes. The whole view lives in the URL: `range`/`from`/`to`/`now` and the
//! repeated `filter` of the API, plus `lang`, the group-by switches, the log and its
//! page. Pages read through the API's own paths: the same typed query
//! (`parley_store::query`), the same report cache and export stream.
//!
//! Sign-in takes a read token and keeps it server-side behind a random session id in
//! an HttpOnly, SameSite=Strict cookie; every page re-checks the token, so a revoked
//! token signs its sessions out. Sessions live in memory: a restart signs everyone out.

mod charts;
pub mod i18n;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use parley_core::report::{Log, Report};
use parley_core::request::{self, View};
use parley_store::{FilterOptions, Scope, Store, StoreError};

use crate::{ApiError, AppState};
use i18n::Lang;

type St = State<Arc<AppState>>;

/// How long a page waits for batches acknowledged before it to be derived: past it,
/// the page shows what is derived and says that recent events are still coming.
const PAGE_MAX_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Log rows per page unless the URL says otherwise.
const PER_PAGE: u64 = 50;

/// Sessions kept at most; past it the oldest half is dropped.
const MAX_SESSIONS: usize = 10_000;

const SESSION_COOKIE: &str = "parley_session";
const LANG_COOKIE: &str = "parley_lang";

/// The dashboard's own state: sessions, and the filter values offered per workspace.
#[derive(Default)]
pub(crate) struct DashState {
    /// Session id → (read token, when it was created, as a sequence number).
    sessions: Mutex<HashMap<String, (String, u64)>>,
    created: std::sync::atomic::AtomicU64,
    /// Per workspace: the derived state the values were read at, and the values.
    options: Mutex<HashMap<String, (u64, Arc<FilterOptions>)>>,
}

/// The dashboard's routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .route("/w/{ws}", get(workspace_home))
        .route("/w/{ws}/reports/{report}", get(report_page))
        .route("/w/{ws}/reports/{report}/logs/{log}", get(export))
}

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");

/// A short fingerprint of an asset, for cache-busting URLs and ETags.
fn fingerprint(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

fn asset(headers: &HeaderMap, text: &'static str, kind: &'static str) -> Response {
    let etag = format!("\"{}\"", fingerprint(text));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(kind))],
            text,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

async fn css(headers: HeaderMap) -> Response {
    asset(&headers, CSS, "text/css; charset=utf-8")
}

async fn js(headers: HeaderMap) -> Response {
    asset(&headers, JS, "text/javascript; charset=utf-8")
}

/// The URLs of the assets, fingerprinted so that a new build is never served stale.
pub(crate) fn asset_urls() -> (String, String) {
    (
        format!("/assets/app.css?v={}", fingerprint(CSS)),
        format!("/assets/app.js?v={}", fingerprint(JS)),
    )
}

/// An HTML page with the dashboard's security headers.
fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        markup.into_string(),
    )
        .into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/login")),
        )],
    )
        .into_response()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The language of a request: `?lang=`, then the remembered choice, then
/// `Accept-Language`, then English.
fn language(headers: &HeaderMap, asked: Option<&str>) -> Lang {
    asked
        .and_then(Lang::from_code)
        .or_else(|| cookie(headers, LANG_COOKIE).and_then(|c| Lang::from_code(&c)))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::En)
}

/// Remembers a language picked in the URL.
fn remember_language(response: &mut Response, headers: &HeaderMap, asked: Option<&str>) {
    let Some(lang) = asked.and_then(Lang::from_code) else {
        return;
    };
    if cookie(headers, LANG_COOKIE).as_deref() != Some(lang.code()) {
        let value = format!(
            "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// Whether a form post comes from our own pages (a second guard beside the
/// SameSite=Strict cookie): browsers say so in `Sec-Fetch-Site`, or by `Origin`.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        _ => true,
    }
}

/// The workspace of the request's session, if it has one whose token still reads.
async fn signed_in(st: &AppState, headers: &HeaderMap) -> Option<String> {
    let id = cookie(headers, SESSION_COOKIE)?;
    let token = {
        let sessions = st.dash.sessions.lock().expect("sessions lock");
        sessions.get(&id)?.0.clone()
    };
    let store = st.store.clone();
    match crate::routes::blocking(move || store.authenticate(&token)).await {
        Ok(Some(p)) if p.scope == Scope::Read => Some(p.workspace),
        Ok(_) => {
            // Revoked since: the session ends.
            st.dash.sessions.lock().expect("sessions lock").remove(&id);
            None
        }
        Err(e) => {
            tracing::error!(error = %e.message, "could not check a session's token");
            None
        }
    }
}

/// Where to go to sign in, coming back to `uri` after.
fn to_login(uri: &str) -> Response {
    let next: String = form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    redirect(&format!("/login?next={next}"))
}

async fn home(State(st): St, headers: HeaderMap) -> Response {
    match signed_in(&st, &headers).await {
        Some(ws) => redirect(&format!("/w/{ws}/reports/conversations")),
        None => redirect("/login"),
    }
}

async fn workspace_home(Path(ws): Path<String>) -> Response {
    let ws: String = form_urlencoded::byte_serialize(ws.as_bytes()).collect();
    redirect(&format!("/w/{ws}/reports/conversations"))
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `next` if it is one of our report pages, so that sign-in never redirects away.
fn local_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| n.starts_with("/w/") && !n.contains("//") && !n.contains('\\'))
}

async fn login_page(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query.as_deref());
    let lang = language(&headers, first(&pairs, "lang"));
    let token = first(&pairs, "token").unwrap_or("");
    let next = local_next(first(&pairs, "next")).unwrap_or("");
    let mut response = html(StatusCode::OK, view::login(lang, token, next, None));
    remember_language(&mut response, &headers, first(&pairs, "lang"));
    response
}

async fn login(State(st): St, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let lang = language(&headers, first(&pairs, "lang"));
    let next = local_next(first(&pairs, "next")).map(str::to_string);
    if !same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            view::login(lang, "", "", Some(lang.ui().bad_token)),
        );
    }
    let token = first(&pairs, "token").unwrap_or("").trim().to_string();
    let store = st.store.clone();
    let checked = token.clone();
    let principal = match crate::routes::blocking(move || store.authenticate(&checked)).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e.message, "could not check a token at sign-in");
            None
        }
    };
    let (status, refusal) = match principal {
        Some(p) if p.scope == Scope::Read => {
            return signed_in_as(&st, &headers, lang, &p.workspace, token, next)
        }
        Some(_) => (StatusCode::FORBIDDEN, lang.ui().not_read_token),
        None => (StatusCode::UNAUTHORIZED, lang.ui().bad_token),
    };
    html(
        status,
        view::login(lang, "", next.as_deref().unwrap_or(""), Some(refusal)),
    )
}

/// Opens a session for a read token of `ws` and sends the browser on to `next` (one of
/// `ws`'s pages) or to its first report.
fn signed_in_as(
    st: &AppState,
    headers: &HeaderMap,
    lang: Lang,
    ws: &str,
    token: String,
    next: Option<String>,
) -> Response {
    let id = new_session_id();
    {
        let mut sessions = st.dash.sessions.lock().expect("sessions lock");
        if sessions.len() >= MAX_SESSIONS {
            let mut ages: Vec<u64> = sessions.values().map(|(_, n)| *n).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            sessions.retain(|_, (_, n)| *n > cut);
        }
        let n = st
            .dash
            .created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        sessions.insert(id.clone(), (token, n));
    }
    let prefix = format!("/w/{ws}/");
    let to = next
        .filter(|n| n.starts_with(&prefix))
        .unwrap_or_else(|| format!("/w/{ws}/reports/conversations?lang={}", lang.code()));
    let mut response = redirect(&to);
    // Behind a TLS-terminating proxy the cookie is also Secure (on plain loopback HTTP
    // a Secure cookie would not come back).
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex cookie"),
    );
    response
}

fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS gives random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn logout(State(st): St, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        st.dash.sessions.lock().expect("sessions lock").remove(&id);
    }
    let mut response = redirect("/login");
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("parley_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

/// A breakdown whose key a switch picks: the URL parameter, and per choice its
/// value and the component it shows (the first is the default).
pub(crate) struct GroupBy {
    pub param: &'static str,
    pub choices: &'static [(&'static str, &'static str)],
}

pub(crate) const GROUPS: &[GroupBy] = &[
    GroupBy {
        param: "opened_by",
        choices: &[
            ("contact_type", "opened_by_contact_type"),
            ("source", "opened_by_source"),
            ("channel", "opened_by_channel"),
        ],
    },
    GroupBy {
        param: "closed_by",
        choices: &[
            ("category", "closed_by_category"),
            ("source", "closed_by_source"),
            ("contact_type", "closed_by_contact_type"),
        ],
    },
    GroupBy {
        param: "outgoing_by",
        choices: &[
            ("channel", "outgoing_by_channel"),
            ("source", "outgoing_by_source"),
            ("type", "outgoing_by_type"),
            ("subtype", "outgoing_by_subtype"),
        ],
    },
];

/// Everything a report page shows, as the URL gives it.
#[derive(Debug, Clone)]
pub(crate) struct PageView {
    pub report: Report,
    pub lang: Lang,
    /// A preset, or `None` for a custom range.
    pub range: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub now: Option<String>,
    pub filters: Vec<String>,
    /// The group-by switches: (parameter, choice).
    pub groups: Vec<(&'static str, String)>,
    pub log: Log,
    pub page: u64,
    pub per_page: u64,
    /// The dimension whose values the "+ Add filter" panel offers.
    pub adding: Option<String>,
}

/// The preset a page opens with.
const DEFAULT_RANGE: &str = "last_30_days";

impl PageView {
    fn parse(report: Report, lang: Lang, pairs: &[(String, String)]) -> Result<PageView, ApiError> {
        let get = |n: &str| first(pairs, n).map(str::to_string);
        let preset = get("range").filter(|r| r != "custom");
        let (from, to) = (get("from"), get("to"));
        // The form sends the dates beside the preset: a preset wins unless "custom".
        let (range, from, to) = match (preset, from, to) {
            (Some(p), _, _) => (Some(p), None, None),
            (None, None, None) => (Some(DEFAULT_RANGE.to_string()), None, None),
            (None, f, t) => (None, f, t),
        };
        let log = match get("log") {
            Some(name) => request::log(report, &name)?,
            None => report.logs()[0],
        };
        let (page, per_page) = request::page(
            get("page").as_deref(),
            Some(
                get("per_page")
                    .unwrap_or_else(|| PER_PAGE.to_string())
                    .as_str(),
            ),
        )?;
        let filters = pairs
            .iter()
            .filter(|(k, v)| k == "filter" && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect();
        let mut groups = Vec::new();
        for g in GROUPS {
            if let Some(choice) = get(g.param) {
                if !g.choices.iter().any(|(c, _)| *c == choice) {
                    return Err(ApiError::bad_request(format!(
                        "unknown {} {choice:?} (expected {})",
                        g.param,
                        g.choices
                            .iter()
                            .map(|(c, _)| *c)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                groups.push((g.param, choice));
            }
        }
        Ok(PageView {
            report,
            lang,
            range,
            from,
            to,
            now: get("now"),
            filters,
            groups,
            log,
            page,
            per_page,
            adding: get("add").filter(|a| report.filters().contains(&a.as_str())),
        })
    }

    /// The API's view of the same range and filters.
    fn api_view(&self) -> View {
        View {
            range: self.range.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            now: self.now.clone(),
            filters: self.filters.clone(),
        }
    }

    /// The choice of a group-by switch.
    pub fn group(&self, g: &GroupBy) -> &str {
        self.groups
            .iter()
            .find(|(p, _)| *p == g.param)
            .map_or(g.choices[0].0, |(_, c)| c.as_str())
    }

    /// The query string of this view (with its `lang`), every part in a fixed order.
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        match &self.range {
            Some(r) => {
                q.append_pair("range", r);
            }
            None => {
                if let Some(f) = &self.from {
                    q.append_pair("from", f);
                }
                if let Some(t) = &self.to {
                    q.append_pair("to", t);
                }
            }
        }
        if let Some(n) = &self.now {
            q.append_pair("now", n);
        }
        for f in &self.filters {
            q.append_pair("filter", f);
        }
        for (p, c) in &self.groups {
            q.append_pair(p, c);
        }
        if self.log != self.report.logs()[0] {
            q.append_pair("log", self.log.wire());
        }
        if self.page != 1 {
            q.append_pair("page", &self.page.to_string());
        }
        if self.per_page != PER_PAGE {
            q.append_pair("per_page", &self.per_page.to_string());
        }
        if let Some(a) = &self.adding {
            q.append_pair("add", a);
        }
        q.append_pair("lang", self.lang.code());
        q.finish()
    }

    /// The API's query string for the same range and filters (the export's).
    pub fn api_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        match &self.range {
            Some(r) => {
                q.append_pair("range", r);
            }
            None => {
                q.append_pair("from", self.from.as_deref().unwrap_or(""));
                q.append_pair("to", self.to.as_deref().unwrap_or(""));
            }
        }
        if let Some(n) = &self.now {
            q.append_pair("now", n);
        }
        for f in &self.filters {
            q.append_pair("filter", f);
        }
        q.finish()
    }

    /// This view changed by `f`, back on the first log page and with no panel open
    /// unless `f` says otherwise.
    pub fn with(&self, f: impl FnOnce(&mut PageView)) -> PageView {
        let mut v = self.clone();
        v.page = 1;
        v.adding = None;
        f(&mut v);
        v
    }
}

/// What a report page shows, read from the store.
pub(crate) struct PageData {
    pub workspace: parley_store::Workspace,
    pub doc: Arc<parley_core::doc::ReportDoc>,
    /// The log page, or `None` when the filters do not apply to the log.
    pub log: Option<parley_core::doc::LogPage>,
    pub options: Arc<FilterOptions>,
    pub pending: u64,
}

async fn report_page(
    State(st): St,
    Path((ws, report)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let asked = first(&pairs, "lang");
    let lang = language(&headers, asked);
    let Some(own) = signed_in(&st, &headers).await else {
        let uri = match &query {
            Some(q) => format!("/w/{ws}/reports/{report}?{q}"),
            None => format!("/w/{ws}/reports/{report}"),
        };
        return to_login(&uri);
    };
    // A value typed into "+ Add filter" (contact, conversation): on to the view's own
    // URL, where it is one more `filter`.
    if let (Some(dim), Some(value)) = (first(&pairs, "add_dim"), first(&pairs, "add_value")) {
        let mut kept: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "add_dim" && k != "add_value")
            .cloned()
            .collect();
        kept.push(("filter".into(), format!("{dim}={}", value.trim())));
        let q = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .finish();
        return redirect(&format!("/w/{ws}/reports/{report}?{q}"));
    }
    let mut response = match page(&st, &own, &ws, &report, lang, &pairs).await {
        Ok(markup) => html(StatusCode::OK, markup),
        Err(e) => error_page(lang, &own, e),
    };
    remember_language(&mut response, &headers, asked);
    response
}

fn error_page(lang: Lang, ws: &str, e: ApiError) -> Response {
    if e.status.is_server_error() {
        tracing::error!(message = %e.message, "a report page failed");
    }
    html(e.status, view::error(lang, ws, e.status, &e.message))
}

async fn page(
    st: &Arc<AppState>,
    own: &str,
    ws: &str,
    report: &str,
    lang: Lang,
    pairs: &[(String, String)],
) -> Result<maud::Markup, ApiError> {
    // Another workspace's pages do not exist for this session.
    if ws != own {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            lang.ui().not_found,
        ));
    }
    let report = Report::from_wire(report)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", lang.ui().not_found))?;
    let v = PageView::parse(report, lang, pairs)?;
    let view = v.api_view();
    // Wait once for the batches acknowledged before the page (at most PAGE_MAX_WAIT),
    // then read the report, the log page and the filter values side by side: each is
    // its own reader, so the page costs the slowest of them, not their sum.
    let waited = st.settled(ws, Some(PAGE_MAX_WAIT)).await?;
    let (store, w, log, (page, per_page)) = (
        st.store.clone(),
        ws.to_string(),
        v.log,
        (v.page, v.per_page),
    );
    let log_view = view.clone();
    let log_page = crate::routes::blocking(move || {
        let q = parley_store::query(&*store, &w, report, &log_view)?;
        let workspace = q.workspace.clone();
        match store.log_page(&q, log, page, per_page) {
            Ok(p) => Ok((workspace, Some(p))),
            Err(StoreError::FiltersNotApplicable { .. }) => Ok((workspace, None)),
            Err(e) => Err(e),
        }
    });
    let (doc, log_page, options) = tokio::join!(
        crate::routes::report_doc(st, ws, report, view, Some(std::time::Duration::ZERO)),
        log_page,
        options(st, ws),
    );
    let (doc, pending) = doc?;
    let (log_page, options) = (log_page?, options?);
    let pending = pending.max(waited);
    let data = PageData {
        workspace: log_page.0,
        doc,
        log: log_page.1,
        options,
        pending,
    };
    Ok(view::report(&v, &data))
}

/// The workspace's filter values, read once per derived state.
async fn options(st: &Arc<AppState>, ws: &str) -> Result<Arc<FilterOptions>, ApiError> {
    let generation = st.settled_generation(ws);
    if let Some((g, o)) = st.dash.options.lock().expect("options lock").get(ws) {
        if *g == generation {
            return Ok(o.clone());
        }
    }
    let (store, w) = (st.store.clone(), ws.to_string());
    let o = Arc::new(crate::routes::blocking(move || store.filter_options(&w)).await?);
    st.dash
        .options
        .lock()
        .expect("options lock")
        .insert(ws.to_string(), (generation, o.clone()));
    Ok(o)
}

/// The export button's download: the API's CSV stream, for the signed-in session.
async fn export(
    State(st): St,
    Path((ws, report, log)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query.as_deref());
    let lang = language(&headers, first(&pairs, "lang"));
    let Some(own) = signed_in(&st, &headers).await else {
        return to_login(&format!("/w/{ws}/reports/{report}"));
    };
    let result = async {
        if own != ws {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                lang.ui().not_found,
            ));
        }
        let report = Report::from_wire(&report).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", lang.ui().not_found)
        })?;
        let name = log.strip_suffix(".csv").ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", lang.ui().not_found)
        })?;
        let log = request::log(report, name)?;
        let mut v = PageView::parse(report, lang, &pairs)?;
        v.log = log;
        crate::routes::export(&st, ws.clone(), report, log, v.api_view(), None).await
    }
    .await;
    result.unwrap_or_else(|e| error_page(lang, &own, e))
}
