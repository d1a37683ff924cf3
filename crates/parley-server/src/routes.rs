//! The routes and their handlers.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use parley_core::request::{self, RequestError, View};
use parley_store::{DuckStore, Scope, Store, Workspace};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, AppState, Config};

type St = State<Arc<AppState>>;

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

/// The whole application and its background settler.
pub(crate) fn app(
    store: Arc<DuckStore>,
    config: Config,
) -> std::io::Result<(Router, crate::Background)> {
    let (state, background) = crate::state(store, &config)?;
    let request_id = header::HeaderName::from_static("x-request-id");
    let (router, api) = api_router();
    let document = Arc::new(
        api.to_pretty_json()
            .expect("the OpenAPI document serializes"),
    );
    // The dashboard's pages beside the API (not in the OpenAPI document: they answer
    // HTML to a browser's session, not JSON to a token).
    let router = router
        .merge(crate::dashboard::routes())
        .layer(axum::Extension(OpenApiDocument(document)))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .with_state(state)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<Body>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            })
            .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    Ok((router, background))
}

/// Every route, registered with its OpenAPI description: a route cannot be served
/// without being documented.
fn api_router() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(create_workspace, list_workspaces))
        .routes(routes!(create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(ingest))
        .routes(routes!(report))
        .routes(routes!(log))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi_json))
        .split_for_parts()
}

/// The API's OpenAPI 3.1 document, as `/api/v1/openapi.json` serves it.
pub fn openapi_document() -> String {
    api_router()
        .1
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "parley",
        description = "Reports for business messaging: event batches in, the Conversations, Messages, Contacts and Assignments reports out (SPEC §7, §8). Every route but the probes and this document takes `Authorization: Bearer TOKEN`: a workspace's `ingest` or `read` token, or the server's admin token.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "admin", description = "Workspaces and tokens (admin token)"),
        (name = "ingest", description = "Event batches (ingest token)"),
        (name = "reports", description = "Reports, log pages and CSV exports (read token)"),
        (name = "operations", description = "Probes and this document (no token)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document served at `/api/v1/openapi.json`.
#[derive(Clone)]
struct OpenApiDocument(Arc<String>);

/// The error shape of every refusal (SPEC §7).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// A stable code: bad_request, unauthorized, forbidden, not_found, conflict,
    /// payload_too_large, unsupported_media_type, invalid_batch, internal.
    code: String,
    /// One line, for a person.
    message: String,
    /// For `invalid_batch`, the events at fault: line, index, id, field, reason.
    #[schema(value_type = Object, nullable)]
    details: Option<String>,
}

/// A workspace (SPEC §8.3).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct WorkspaceDoc {
    id: String,
    timezone: String,
    name: String,
}

/// What an ingest did.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct IngestSummary {
    /// Events stored by this batch.
    accepted: u64,
    /// Events whose id was already stored, or repeated in the batch.
    duplicates: u64,
}

/// A new token, shown this once.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct TokenDoc {
    token: String,
}

/// A revoked token's workspace.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct Revoked {
    revoked: bool,
    workspace: String,
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json(axum::Extension(doc): axum::Extension<OpenApiDocument>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0.as_str().to_string(),
    )
        .into_response()
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such route")
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// Runs a store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, parley_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "a store call panicked");
            Err(ApiError::internal())
        }
    }
}

/// The bearer token of the request.
fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("an Authorization: Bearer token is required"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must read: Bearer TOKEN",
        )),
    }
}

/// Checks that the request's token is a live token of `ws` with scope `need`, or an
/// admin token. A token of another workspace gets the answer a missing workspace gets.
async fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    ws: &str,
    need: Scope,
) -> Result<(), ApiError> {
    let token = bearer(headers)?;
    if st.is_admin(&token) {
        return Ok(());
    }
    let store = st.store.clone();
    let principal = blocking(move || store.authenticate(&token)).await?;
    match principal {
        None => Err(ApiError::unauthorized("unknown or revoked token")),
        Some(p) if p.workspace != ws => Err(ApiError::no_workspace(ws)),
        Some(p) if p.scope != need => Err(ApiError::forbidden(format!(
            "this token has the {} scope; this route needs {}",
            p.scope.wire(),
            need.wire()
        ))),
        Some(_) => Ok(()),
    }
}

/// Checks that the request carries the server's admin token.
fn admin(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = bearer(headers)?;
    if st.is_admin(&token) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this route needs the server's admin token",
        ))
    }
}

/// The media type of the request's body, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn unsupported(media: &str, expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("Content-Type {media:?} is not accepted here (expected {expected})"),
    )
}

/// The body, or why it was refused: too large (413) or unreadable (400).
fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is over the limit of {limit} bytes: send the events in smaller batches"),
            )
        } else {
            ApiError::bad_request(format!("could not read the body: {r}"))
        }
    })
}

/// A JSON body, parsed.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    raw: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<T, ApiError> {
    let media = media_type(headers);
    if media != "application/json" {
        return Err(unsupported(&media, "application/json"));
    }
    let raw = body(raw, limit)?;
    serde_json::from_slice(&raw).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// A pretty JSON document with a final newline: byte for byte what the CLI prints.
fn document<T: serde::Serialize>(status: StatusCode, doc: &T) -> Result<Response, ApiError> {
    Ok(json_text(status, pretty(doc)?))
}

/// A document as the CLI prints it: pretty JSON and a newline.
fn pretty<T: serde::Serialize>(doc: &T) -> Result<String, ApiError> {
    let mut text = serde_json::to_string_pretty(doc).map_err(|e| {
        tracing::error!(error = %e, "a document did not serialize");
        ApiError::internal()
    })?;
    text.push('\n');
    Ok(text)
}

fn json_text(status: StatusCode, text: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

/// The read's `Parley-Max-Wait`: how many milliseconds it may wait for the batches
/// acknowledged before it to be derived (without it, as long as they take).
fn max_wait(headers: &HeaderMap) -> Result<Option<std::time::Duration>, ApiError> {
    match headers.get(MAX_WAIT) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|ms| Some(std::time::Duration::from_millis(ms)))
            .ok_or_else(|| {
                ApiError::bad_request(format!("{MAX_WAIT} must be a whole number of milliseconds"))
            }),
    }
}

const MAX_WAIT: &str = "parley-max-wait";
const PENDING: &str = "parley-pending";

/// Says how many batches acknowledged before the read its answer leaves out.
fn with_pending(mut response: Response, pending: u64) -> Response {
    response
        .headers_mut()
        .insert(PENDING, HeaderValue::from(pending));
    response
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process answers")))]
async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "The store answers"), (status = 503, body = ErrorBody)))]
async fn readyz(State(st): St) -> Response {
    let store = st.store.clone();
    match blocking(move || store.workspaces()).await {
        Ok(_) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the store does not answer",
        )
        .into_response(),
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewWorkspace {
    id: String,
    timezone: String,
    name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/workspaces", tag = "admin", security(("bearer" = [])), request_body = NewWorkspace,
    responses((status = 201, body = WorkspaceDoc), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_workspace(
    State(st): St,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let new: NewWorkspace = json_body(&headers, raw, st.body_limit)?;
    let ws = Workspace {
        name: new.name.unwrap_or_else(|| new.id.clone()),
        id: new.id,
        timezone: new.timezone,
    };
    let store = st.store.clone();
    let ws = blocking(move || store.create_workspace(&ws)).await?;
    document(StatusCode::CREATED, &ws)
}

#[utoipa::path(get, path = "/api/v1/workspaces", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [WorkspaceDoc]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_workspaces(State(st): St, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let store = st.store.clone();
    let list = blocking(move || store.workspaces()).await?;
    document(StatusCode::OK, &list)
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewToken {
    scope: String,
}

#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/tokens", tag = "admin", security(("bearer" = [])), request_body = NewToken,
    params(("ws" = String, Path, description = "The workspace's id")),
    responses((status = 201, body = TokenDoc), (status = 415, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_token(
    State(st): St,
    Path(ws): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let new: NewToken = json_body(&headers, raw, st.body_limit)?;
    let scope = Scope::from_wire(&new.scope).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown scope {:?} (expected ingest or read)",
            new.scope
        ))
    })?;
    let store = st.store.clone();
    let token = blocking(move || store.create_token(&ws, scope)).await?;
    document(StatusCode::CREATED, &json!({"token": token}))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Revoke {
    token: String,
}

#[utoipa::path(post, path = "/api/v1/tokens/revoke", tag = "admin", security(("bearer" = [])), request_body = Revoke,
    responses((status = 200, body = Revoked), (status = 415, body = ErrorBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    State(st): St,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let revoke: Revoke = json_body(&headers, raw, st.body_limit)?;
    let store = st.store.clone();
    let workspace = blocking(move || store.revoke_token(&revoke.token)).await?;
    document(
        StatusCode::OK,
        &json!({"revoked": true, "workspace": workspace}),
    )
}

/// Files a batch of events: NDJSON, or a JSON array of events. Answered once the batch
/// is durable; its facts are derived in the background, and a later read of the
/// workspace waits for them.
#[utoipa::path(post, path = "/api/v1/workspaces/{ws}/events", tag = "ingest", security(("bearer" = [])),
    params(("ws" = String, Path, description = "The workspace's id")),
    request_body(content = String, description = "Events of SPEC §2, one JSON object per line (application/x-ndjson) or a JSON array of them (application/json); all or nothing", content_type = "application/x-ndjson"),
    responses((status = 200, body = IngestSummary, description = "The batch is durable"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody, description = "Nothing stored: the events at fault are in details"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn ingest(
    State(st): St,
    Path(ws): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers, &ws, Scope::Ingest).await?;
    let media = media_type(&headers);
    let array = match media.as_str() {
        "application/x-ndjson" | "application/ndjson" => false,
        "application/json" => true,
        _ => {
            return Err(unsupported(
                &media,
                "application/x-ndjson, or application/json for an array of events",
            ))
        }
    };
    let raw = body(raw, st.body_limit)?;
    let text = std::str::from_utf8(&raw).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let lines = if array {
        // Each element kept as its own text, so that it is validated exactly as an
        // NDJSON line is (a key twice in an object included); element i is line i + 1.
        let events: Vec<&serde_json::value::RawValue> =
            serde_json::from_str(text).map_err(|e| {
                ApiError::bad_request(format!("the body is not a JSON array of events: {e}"))
            })?;
        events
            .iter()
            .map(|e| e.get())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        text.to_string()
    };
    // Acknowledged by the acker (spooled durably), with the batches posted beside it.
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let filing = crate::filing::Filing {
        ws: ws.clone(),
        lines,
        reply,
    };
    if st.filings.send(filing).is_err() {
        tracing::error!("the acker has stopped");
        return Err(ApiError::internal());
    }
    let summary = match outcome.await {
        Ok(outcome) => outcome?,
        Err(_) => return Err(ApiError::internal()),
    };
    document(
        StatusCode::OK,
        &json!({"accepted": summary.accepted, "duplicates": summary.duplicates}),
    )
}

/// The query parameters: each named one at most once, `filter` repeated.
struct Params {
    one: BTreeMap<String, String>,
    filters: Vec<String>,
}

impl Params {
    fn parse(query: Option<&str>, names: &[&str]) -> Result<Params, ApiError> {
        let mut p = Params {
            one: BTreeMap::new(),
            filters: Vec::new(),
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            if k == "filter" {
                p.filters.push(v.into_owned());
            } else if names.contains(&k.as_ref()) {
                if p.one.insert(k.to_string(), v.into_owned()).is_some() {
                    return Err(ApiError::bad_request(format!(
                        "parameter {k:?} is given twice"
                    )));
                }
            } else {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {k:?} (expected one of {}, filter)",
                    names.join(", ")
                )));
            }
        }
        Ok(p)
    }

    fn get(&self, name: &str) -> Option<String> {
        self.one.get(name).cloned()
    }

    fn view(&self) -> View {
        View {
            range: self.get("range"),
            from: self.get("from"),
            to: self.get("to"),
            now: self.get("now"),
            filters: self.filters.clone(),
        }
    }
}

const VIEW: &[&str] = &["range", "from", "to", "now"];

#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/reports/{report}", tag = "reports", security(("bearer" = [])),
    params(("ws" = String, Path, description = "The workspace's id"), ("report" = String, Path, description = "conversations, messages, contacts or assignments"), ("range" = Option<String>, Query, description = "A preset: today, yesterday, last_7_days, last_14_days, last_30_days, this_month, last_month"), ("from" = Option<String>, Query, description = "First day of a custom range, YYYY-MM-DD"), ("to" = Option<String>, Query, description = "Last day of a custom range, YYYY-MM-DD"), ("now" = Option<String>, Query, description = "The instant taken as now, RFC 3339"), ("filter" = Option<Vec<String>>, Query, description = "NAME=VALUE, repeated (SPEC §5)"), ("parley-max-wait" = Option<u64>, Header, description = "Milliseconds the read may wait for the batches acknowledged before it to be derived (default: as long as they take); past it, the answer leaves them out and `parley-pending` says how many")),
    responses((status = 200, description = "The report document of SPEC §8.1, as `parley report` prints it", content_type = "application/json"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn report(
    State(st): St,
    Path((ws, report)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&st, &headers, &ws, Scope::Read).await?;
    let report = request::report(&report)?;
    let view = Params::parse(query.as_deref(), VIEW)?.view();
    let (doc, pending) = report_doc(&st, &ws, report, view, max_wait(&headers)?).await?;
    Ok(with_pending(
        json_text(StatusCode::OK, pretty(&*doc)?),
        pending,
    ))
}

/// A report document, for the API and the dashboard alike: after the batches
/// acknowledged before the call are derived (or `wait` has passed: the number still
/// pending comes back), from the cache of documents at the same derived state.
pub(crate) async fn report_doc(
    st: &AppState,
    ws: &str,
    report: parley_core::report::Report,
    view: View,
    wait: Option<std::time::Duration>,
) -> Result<(Arc<parley_core::doc::ReportDoc>, u64), ApiError> {
    let pending = st.settled(ws, wait).await?;
    let generation = st.settled_generation(ws);
    let (store, w) = (st.store.clone(), ws.to_string());
    let q = blocking(move || parley_store::query(&*store, &w, report, &view)).await?;
    // The query resolved (range instants included): the same key is the same document
    // at the same derived state.
    let key = format!("{q:?}");
    let doc = match st.cached(ws, generation, &key) {
        Some(doc) => doc,
        None => {
            let store = st.store.clone();
            let doc = Arc::new(blocking(move || store.report(&q)).await?);
            st.cache(ws, generation, key, doc.clone());
            doc
        }
    };
    Ok((doc, pending))
}

#[utoipa::path(get, path = "/api/v1/workspaces/{ws}/reports/{report}/logs/{log}", tag = "reports", security(("bearer" = [])),
    params(("ws" = String, Path, description = "The workspace's id"), ("report" = String, Path, description = "conversations, messages, contacts or assignments"), ("log" = String, Path, description = "The log (SPEC §6.5); with `.csv` appended, the whole log as CSV, streamed"), ("range" = Option<String>, Query, description = "A preset: today, yesterday, last_7_days, last_14_days, last_30_days, this_month, last_month"), ("from" = Option<String>, Query, description = "First day of a custom range, YYYY-MM-DD"), ("to" = Option<String>, Query, description = "Last day of a custom range, YYYY-MM-DD"), ("now" = Option<String>, Query, description = "The instant taken as now, RFC 3339"), ("filter" = Option<Vec<String>>, Query, description = "NAME=VALUE, repeated (SPEC §5)"), ("page" = Option<u64>, Query, description = "From 1 (default 1)"), ("per_page" = Option<u64>, Query, description = "1 to 1000 (default 50)"), ("parley-max-wait" = Option<u64>, Header, description = "Milliseconds the read may wait for the batches acknowledged before it to be derived (default: as long as they take); past it, the answer leaves them out and `parley-pending` says how many")),
    responses((status = 200, description = "The log page of SPEC §8.2 (application/json), or the CSV export (text/csv)", content_type = "application/json"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn log(
    State(st): St,
    Path((ws, report, log)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&st, &headers, &ws, Scope::Read).await?;
    let report = request::report(&report)?;
    if let Some(name) = log.strip_suffix(".csv") {
        let log = request::log(report, name)?;
        let view = Params::parse(query.as_deref(), VIEW)?.view();
        let wait = max_wait(&headers)?;
        return export(&st, ws, report, log, view, wait).await;
    }
    let log = request::log(report, &log)?;
    let params = Params::parse(
        query.as_deref(),
        &["range", "from", "to", "now", "page", "per_page"],
    )?;
    let (page, per_page) = request::page(
        params.get("page").as_deref(),
        params.get("per_page").as_deref(),
    )?;
    let view = params.view();
    let pending = st.settled(&ws, max_wait(&headers)?).await?;
    let store = st.store.clone();
    let doc = blocking(move || {
        let q = parley_store::query(&*store, &ws, report, &view)?;
        store.log_page(&q, log, page, per_page)
    })
    .await?;
    Ok(with_pending(document(StatusCode::OK, &doc)?, pending))
}

/// Bytes of CSV handed to the connection at a time.
const CHUNK: usize = 64 * 1024;

/// Streams a log's CSV export: the query is checked first (a bad one gets its status),
/// then rows flow through a channel of a few chunks, so memory stays constant however
/// many rows there are; a client that goes away stops the export.
pub(crate) async fn export(
    st: &AppState,
    ws: String,
    report: parley_core::report::Report,
    log: parley_core::report::Log,
    view: View,
    wait: Option<std::time::Duration>,
) -> Result<Response, ApiError> {
    let pending = st.settled(&ws, wait).await?;
    let store = st.store.clone();
    let q = blocking(move || parley_store::query(&*store, &ws, report, &view)).await?;
    // Refused before the 200 goes out, not in the middle of the stream.
    parley_store::check_log_filters(&q, log)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = st.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(2 * CHUNK);
        let names: Vec<&str> = log.columns().iter().map(|(n, _)| *n).collect();
        parley_core::doc::push_csv_record(&names, &mut buf);
        let gone = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away");
        let done = store.export(&q, log, &mut |fields| {
            parley_core::doc::push_csv_record(fields, &mut buf);
            if buf.len() >= CHUNK {
                let chunk = Bytes::from(std::mem::replace(&mut buf, Vec::with_capacity(2 * CHUNK)));
                tx.blocking_send(Ok(chunk)).map_err(|_| gone())?;
            }
            Ok(())
        });
        match done {
            Ok(_) => {
                if !buf.is_empty() {
                    let _ = tx.blocking_send(Ok(Bytes::from(buf)));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "export stopped");
                let _ = tx.blocking_send(Err(std::io::Error::other("the export stopped")));
            }
        }
    });
    let disposition = format!(
        "attachment; filename=\"{}-{}.csv\"",
        report.wire(),
        log.wire()
    );
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).map_err(|_| ApiError::internal())?,
            ),
        ],
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
    )
        .into_response())
    .map(|r| with_pending(r, pending))
}
