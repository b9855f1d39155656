//! The HTTP surface: routes, the bearer-token check, JSON errors with codes, bounded bodies, the
//! embedded page, and the panic catcher.

use super::api;
use super::state::{AppState, Refusal};
use crate::error::{Error, ErrorKind};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use std::sync::Arc;

/// Request bodies are read up to this size (a segment is at most 64 KiB).
pub const MAX_BODY: usize = 128 * 1024;

/// The API's routes, (method, path): the router is built from this list and a test keeps it
/// equal to the operations `openapi.json` documents.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/health"),
    ("GET", "/api/openapi.json"),
    ("GET", "/api/v1/snapshots"),
    ("GET", "/api/v1/catalog"),
    ("POST", "/api/v1/check"),
    ("POST", "/api/v1/count"),
    ("POST", "/api/v1/preview"),
    ("POST", "/api/v1/explain"),
    ("POST", "/api/v1/trend"),
    ("GET", "/api/v1/segments"),
    ("GET", "/api/v1/segments/{name}"),
    ("PUT", "/api/v1/segments/{name}"),
    ("DELETE", "/api/v1/segments/{name}"),
    ("GET", "/api/v1/exports"),
    ("POST", "/api/v1/exports"),
    ("GET", "/api/v1/exports/{id}"),
    ("DELETE", "/api/v1/exports/{id}"),
    ("GET", "/api/v1/exports/{id}/files/{name}"),
];

/// The handler of one route of [`ROUTES`].
fn handler(method: &str, path: &str) -> MethodRouter<Arc<AppState>> {
    use axum::routing::{delete, post, put};
    match (method, path) {
        ("GET", "/api/health") => get(|| async { axum::Json(serde_json::json!({"ok": true})) }),
        ("GET", "/api/openapi.json") => get(api::openapi),
        ("GET", "/api/v1/snapshots") => get(api::snapshots),
        ("GET", "/api/v1/catalog") => get(api::catalog),
        ("POST", "/api/v1/check") => post(api::check),
        ("POST", "/api/v1/count") => post(api::count),
        ("POST", "/api/v1/preview") => post(api::preview),
        ("POST", "/api/v1/explain") => post(api::explain),
        ("POST", "/api/v1/trend") => post(api::trend),
        ("GET", "/api/v1/segments") => get(api::list_segments),
        ("GET", "/api/v1/segments/{name}") => get(api::get_segment),
        ("PUT", "/api/v1/segments/{name}") => put(api::put_segment),
        ("DELETE", "/api/v1/segments/{name}") => delete(api::delete_segment),
        ("GET", "/api/v1/exports") => get(api::list_exports),
        ("POST", "/api/v1/exports") => post(api::start_export),
        ("GET", "/api/v1/exports/{id}") => get(api::get_export),
        ("DELETE", "/api/v1/exports/{id}") => delete(api::delete_export),
        ("GET", "/api/v1/exports/{id}/files/{name}") => get(api::download_export_file),
        _ => unreachable!("{method} {path} is in ROUTES without a handler"),
    }
}

/// Routes that answer without the token.
const OPEN: &[&str] = &["/api/health"];

pub fn router(state: Arc<AppState>) -> Router {
    let mut guarded: Router<Arc<AppState>> = Router::new();
    let mut open: Router<Arc<AppState>> = Router::new();
    for &(method, path) in ROUTES {
        if OPEN.contains(&path) {
            open = open.route(path, handler(method, path));
        } else {
            guarded = guarded.route(path, handler(method, path));
        }
    }
    let guarded = guarded.layer(axum::middleware::from_fn_with_state(state.clone(), guard));
    Router::new()
        .route("/", get(|| page("text/html; charset=utf-8", INDEX)))
        .route(
            "/app.js",
            get(|| page("text/javascript; charset=utf-8", APP_JS)),
        )
        .route("/style.css", get(|| page("text/css; charset=utf-8", STYLE)))
        .merge(open)
        .merge(guarded)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

const INDEX: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

async fn page(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A panic inside one request answers 500; the server goes on.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        crate::error::INTERNAL_PREFIX,
    )
    .into_response()
}

/// The token check (constant time), and read-only mode's refusal of writes. File downloads may
/// carry the token as `?token=`, since a plain link cannot set a header.
async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let given = {
        let header = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let query = request.uri().query().unwrap_or("");
        let from_query = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("token="))
            .map(str::to_string);
        header.or(from_query.filter(|_| path.contains("/files/")))
    };
    let ok = given.is_some_and(|t| same(t.as_bytes(), state.opts.token.as_bytes()));
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong token: open the link `audience serve` printed",
        )
        .into_response();
    }
    let writes = matches!(
        *request.method(),
        Method::PUT | Method::DELETE | Method::POST
    ) && (path.starts_with("/api/v1/segments") || path.starts_with("/api/v1/exports"));
    if writes && state.opts.read_only {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "this server is read-only: saved segments and exports cannot be changed",
        )
        .into_response();
    }
    next.run(request).await
}

/// Compares secrets in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes.
pub async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request bodies are at most {MAX_BODY} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            format!("the request body is not the JSON this route takes: {e}"),
        )
    })
}

/// A JSON error: `{"error": {"code", "message", …}}` with an HTTP status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: serde_json::json!({ "error": { "code": code, "message": message.into() } }),
            retry_after: None,
        }
    }

    /// Adds a field to the error object (`current` of a conflict, `diagnostics`).
    pub fn with(mut self, key: &str, value: serde_json::Value) -> ApiError {
        self.body["error"][key] = value;
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        if let Error::Segment(s) = &e {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "segment",
                format!("the segment has errors: {}", s.diagnostics),
            )
            .with(
                "diagnostics",
                api::diagnostics_json(&s.diagnostics, &s.text),
            );
        }
        let status = match e.kind() {
            ErrorKind::Segment => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Resources => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Data | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.kind().as_str(), e.to_string())
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        match r {
            Refusal::Busy => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "every query slot is busy; try again shortly",
                );
                e.retry_after = Some(1);
                e
            }
            Refusal::Timeout(limit) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "the query ran longer than {} s and was cancelled",
                    limit.as_secs()
                ),
            ),
            Refusal::Failed(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}
