//! The HTTP API of SPEC §5: routes, authentication before routing, rate limiting, security
//! headers, JSON errors everywhere, and request metrics labelled by matched route.

mod admin;
mod health;
mod ingest;
mod regime;

pub(crate) use health::detail_json as detail_value;

use crate::config::Scope;
use crate::error::{code_for, AppError};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The route a response came from (copied from `MatchedPath` after routing).
#[derive(Debug, Clone)]
struct RouteLabel(String);

/// What a request needs before it is routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Always open.
    Open,
    /// Open unless `auth.require_key_for_reads`.
    Read,
    /// A key with this scope.
    Scope(Scope),
    /// Any valid key (unknown `/api/v1/...` paths: 401 before routing).
    AnyKey,
}

const READ_ROUTES: &[&str] = &[
    "/api/v1/regime/current",
    "/api/v1/regimes",
    "/api/v1/regime/history",
    "/api/v1/regime/transitions",
    "/api/v1/components",
    "/api/v1/metrics",
    "/api/v1/system/database",
    "/api/v1/data/quality",
    "/api/v1/asl/metrics",
];

fn need(method: &Method, path: &str) -> Need {
    if path == "/api/v1/health" && method == Method::GET {
        return Need::Open;
    }
    if path == "/metrics" && method == Method::GET {
        return Need::Read;
    }
    if !path.starts_with("/api/") {
        return Need::Open; // not part of the API: plain 404 from the router
    }
    if path == "/api/v1/bars" {
        return Need::Scope(Scope::Ingest);
    }
    if path.starts_with("/api/v1/admin/") || path.starts_with("/api/v1/debug/") {
        return Need::Scope(Scope::Admin);
    }
    let is_read = READ_ROUTES.contains(&path)
        || path
            .strip_prefix("/api/v1/components/")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if is_read && (method == Method::GET || method == Method::HEAD) {
        return Need::Read;
    }
    Need::AnyKey
}

fn presented_key(req: &Request) -> Option<&str> {
    let h = req.headers();
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim());
        }
    }
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Authentication and rate limiting, run before routing.
async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let need = need(req.method(), req.uri().path());
    let cfg = st.config.load();
    let need = match need {
        Need::Read if !cfg.auth.require_key_for_reads => Need::Open,
        n => n,
    };
    let key = presented_key(&req).map(str::to_owned);
    let table = st.auth.load();
    let entry = key.as_deref().and_then(|k| table.lookup(k)).cloned();
    if need != Need::Open {
        let Some(entry) = entry.as_ref() else {
            let msg = if key.is_some() {
                "invalid API key"
            } else {
                "missing API key (Authorization: Bearer KEY or X-API-Key)"
            };
            return AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg).into_response();
        };
        let scope_ok = match need {
            Need::Scope(s) => entry.scopes.contains(&s),
            Need::Read => entry.scopes.contains(&Scope::Read),
            _ => true,
        };
        if !scope_ok {
            let s = match need {
                Need::Scope(Scope::Ingest) => "ingest",
                Need::Scope(Scope::Admin) => "admin",
                _ => "read",
            };
            return AppError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("key {:?} lacks the {s} scope", entry.name),
            )
            .into_response();
        }
    }
    if let Some(entry) = entry {
        if !st.limiter.allow(
            &entry.name,
            cfg.auth.rate_limit_per_second,
            cfg.auth.rate_limit_burst,
        ) {
            return AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "rate limit of {} requests/s for key {:?}",
                    cfg.auth.rate_limit_per_second, entry.name
                ),
            )
            .retry_after(1)
            .into_response();
        }
    }
    next.run(req).await
}

/// After routing: remember the matched route for the metrics layer.
async fn tag_route(req: Request, next: Next) -> Response {
    let label = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(RouteLabel(label));
    resp
}

/// Outermost: timing, request metrics, JSON bodies for bare errors, security headers.
async fn outer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let t = Instant::now();
    let mut resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        // axum rejections, 405, 408, 413 … get the same JSON shape as our own errors
        let label = resp.extensions().get::<RouteLabel>().cloned();
        let bytes =
            axum::body::to_bytes(std::mem::replace(resp.body_mut(), Body::empty()), 64 << 10)
                .await
                .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            text
        };
        let retry = resp.headers().get(header::RETRY_AFTER).cloned();
        resp = AppError::new(status, code_for(status), message).into_response();
        if let Some(l) = label {
            resp.extensions_mut().insert(l);
        }
        if let Some(r) = retry {
            resp.headers_mut().insert(header::RETRY_AFTER, r);
        }
    }
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let route = resp
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| {
            if status == StatusCode::UNAUTHORIZED {
                "unauthenticated".to_string()
            } else {
                "unmatched".to_string()
            }
        });
    let secs = t.elapsed().as_secs_f64();
    let server_error = status.is_server_error();
    st.http.record(secs, server_error);
    metrics::counter!("regime_requests_total", "route" => route.clone(), "status" => status.as_u16().to_string())
        .increment(1);
    metrics::histogram!("regime_request_duration_seconds", "route" => route).record(secs);
    if server_error {
        metrics::counter!("regime_errors_total").increment(1);
    }
    resp
}

async fn not_found() -> AppError {
    AppError::not_found("no such route")
}

/// The whole service as a router: `/api/v1/...` and `/metrics`.
pub fn app(state: AppState) -> Router {
    let cfg = state.config.load();
    let max_body = cfg.server.max_body_bytes;
    let timeout = Duration::from_millis(cfg.server.request_timeout_ms);
    let routes = Router::new()
        .route("/api/v1/health", get(health::health))
        .route("/metrics", get(health::prometheus))
        .route("/api/v1/metrics", get(health::json_metrics))
        .route("/api/v1/components", get(health::components))
        .route("/api/v1/components/{name}", get(health::component))
        .route("/api/v1/system/database", get(health::database))
        .route("/api/v1/regime/current", get(regime::current))
        .route("/api/v1/regimes", get(regime::all))
        .route("/api/v1/regime/history", get(regime::history))
        .route("/api/v1/regime/transitions", get(regime::transitions))
        .route("/api/v1/data/quality", get(regime::quality))
        .route("/api/v1/asl/metrics", get(regime::asl))
        .route("/api/v1/bars", post(ingest::bars))
        .route("/api/v1/admin/reload", post(admin::reload))
        .route("/api/v1/admin/reduce_load", post(admin::reduce_load))
        .route("/api/v1/debug/enable", post(admin::debug_enable))
        .route("/api/v1/debug/state/{component}", get(admin::debug_state))
        .fallback(not_found)
        .layer(middleware::from_fn(tag_route))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state.clone());
    #[allow(deprecated)] // TimeoutLayer::new: 408 with an empty body, made JSON by `outer`
    let timeout_layer = tower_http::timeout::TimeoutLayer::new(timeout);
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(timeout_layer)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(state, outer))
}

/// The answer when a handler panics (a bug): a JSON 500 that `outer` counts in
/// `regime_errors_total` and gives the usual headers, and the panic in `error.log`, where
/// without it the client saw its connection dropped and the metrics nothing. The panic
/// hook has already written the message and place to stderr (the journal).
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    let what = crate::io::panic_message(payload.as_ref()).unwrap_or_default();
    tracing::error!("a request handler panicked: {what}");
    AppError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the request failed inside the service (a bug; the panic is in error.log)",
    )
    .into_response()
}

/// Current regime accuracy across symbols (mean of the symbols that have one).
pub(crate) fn overall_accuracy(st: &AppState) -> Option<f64> {
    let ins = st.engine.shared.insight.load();
    let v: Vec<f64> = ins.values().filter_map(|i| i.accuracy).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Share of bars whose label matches the ex-post label in all three dimensions, across
/// symbols (mean of the symbols that have one).
pub(crate) fn overall_exact_accuracy(st: &AppState) -> Option<f64> {
    let ins = st.engine.shared.insight.load();
    let v: Vec<f64> = ins.values().filter_map(|i| i.exact_accuracy).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Queue depth now.
pub(crate) fn queue_depth(st: &AppState) -> usize {
    st.engine.shared.queue_depth.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that panics answers a JSON 500 (the layer `app` puts inside `outer`), and
    /// the next request is answered as usual.
    #[test]
    fn a_panicking_handler_answers_a_json_500() {
        use tower::ServiceExt as _;
        async fn boom() -> &'static str {
            panic!("boom at row 7")
        }
        let router = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let get_body = |path: &'static str| {
                let router = router.clone();
                async move {
                    let req = Request::get(path).body(Body::empty()).expect("request");
                    let resp = router.oneshot(req).await.expect("infallible");
                    let status = resp.status();
                    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
                        .await
                        .expect("body");
                    (status, String::from_utf8_lossy(&bytes).into_owned())
                }
            };
            let (status, body) = get_body("/boom").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(v["error"]["code"], "internal_error", "{body}");
            assert_eq!(
                get_body("/fine").await,
                (StatusCode::OK, "fine".to_string())
            );
        });
    }

    #[test]
    fn scopes_by_route() {
        assert_eq!(need(&Method::GET, "/api/v1/health"), Need::Open);
        assert_eq!(need(&Method::GET, "/api/v1/regime/current"), Need::Read);
        assert_eq!(
            need(&Method::GET, "/api/v1/components/base_regime_detector"),
            Need::Read
        );
        assert_eq!(need(&Method::POST, "/api/v1/regime/current"), Need::AnyKey);
        assert_eq!(
            need(&Method::POST, "/api/v1/bars"),
            Need::Scope(Scope::Ingest)
        );
        assert_eq!(
            need(&Method::POST, "/api/v1/admin/reload"),
            Need::Scope(Scope::Admin)
        );
        assert_eq!(
            need(&Method::GET, "/api/v1/debug/state/x"),
            Need::Scope(Scope::Admin)
        );
        assert_eq!(need(&Method::GET, "/api/v1/secret"), Need::AnyKey);
        assert_eq!(need(&Method::GET, "/metrics"), Need::Read);
    }
}
