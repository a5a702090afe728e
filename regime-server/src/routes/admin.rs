//! Admin and debug routes (scope `admin`).

use super::health::component_view;
use crate::error::AppError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use regime_core::pipeline::ALL_COMPONENTS;
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

pub(crate) async fn reload(State(st): State<AppState>) -> Result<Json<Value>, AppError> {
    match crate::serve::reload(&st) {
        Ok(r) => Ok(Json(r)),
        Err(msg) => Err(AppError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config",
            msg,
        )),
    }
}

/// Shed load: pause the replay/demo feeds and drop the history cache. `{"resume": true}`
/// (or a second call with it) starts the feeds again.
pub(crate) async fn reduce_load(
    State(st): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let resume = flag(&body, "resume", false)?;
    st.feeds_paused.store(!resume, Ordering::SeqCst);
    st.cache.clear();
    tracing::warn!(target: "regime_server::admin", resume, "reduce_load: feeds {}", if resume { "resumed" } else { "paused" });
    Ok(Json(json!({
        "feeds_paused": !resume,
        "cache_cleared": true,
        "queue_depth": st.engine.shared.queue_depth.load(Ordering::Relaxed),
    })))
}

/// A boolean field of an optional JSON object body (empty body = default).
fn flag(body: &[u8], key: &str, default: bool) -> Result<bool, AppError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(default);
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::bad_request(format!("request body is not valid JSON: {e}")))?;
    match v.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(AppError::bad_request(format!(
            "{key} must be true or false, got {other}"
        ))),
    }
}

/// Turn debug logging on (or off with `{"enabled": false}`).
pub(crate) async fn debug_enable(
    State(st): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let on = flag(&body, "enabled", true)?;
    st.debug.store(on, Ordering::SeqCst);
    if let Some(ctl) = &st.log_control {
        ctl(&st.config.load().logging, on).map_err(AppError::internal)?;
    }
    tracing::warn!(target: "regime_server::admin", "debug logging {}", if on { "enabled" } else { "disabled" });
    Ok(Json(json!({"debug": on})))
}

/// One component as every symbol sees it (not aggregated), plus engine internals.
pub(crate) async fn debug_state(
    State(st): State<AppState>,
    Path(component): Path<String>,
) -> Result<Json<Value>, AppError> {
    let agg = component_view(&st, &component, None).ok_or_else(|| {
        AppError::not_found(format!(
            "unknown component {component:?} (known: {})",
            ALL_COMPONENTS.join(", ")
        ))
    })?;
    let insight = st.engine.shared.insight.load();
    let mut per = Map::new();
    let mut syms: Vec<&String> = insight.keys().collect();
    syms.sort();
    for s in syms {
        if let Some(c) = insight[s].components.iter().find(|c| c.name == component) {
            let d: Map<String, Value> = c
                .details
                .iter()
                .map(|(k, v)| (k.clone(), super::health::detail_json(v)))
                .collect();
            per.insert(
                s.clone(),
                json!({
                    "state": super::health::state_name(c.state),
                    "last_update": c.last_update_ts.map(super::health::iso_ms),
                    "latency_us": c.latency_us,
                    "details": Value::Object(d),
                }),
            );
        }
    }
    let sh = &st.engine.shared;
    Ok(Json(json!({
        "component": component,
        "aggregate": agg,
        "per_symbol": Value::Object(per),
        "engine": {
            "queue_depth": sh.queue_depth.load(Ordering::Relaxed),
            "queue_capacity": sh.queue_capacity,
            "detections": sh.detections.load(Ordering::Relaxed),
            "rows_written": sh.stored_rows.load(Ordering::Relaxed),
            "rows_buffered": sh.pending_rows.load(Ordering::Relaxed),
            "db_up": sh.db_up.load(Ordering::Relaxed),
            "batch_size": sh.batch_size.load(Ordering::Relaxed),
        },
    })))
}
