//! Health, metrics (Prometheus and JSON), components and database routes.

use super::{overall_accuracy, overall_exact_accuracy, queue_depth};
use crate::engine::StoreCheck;
use crate::error::AppError;
use crate::state::{mem_total_bytes, rss_bytes, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use regime_core::pipeline::{ComponentState, ComponentStatus, Detail, ALL_COMPONENTS, CRITICAL};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

pub(crate) fn state_name(s: ComponentState) -> &'static str {
    match s {
        ComponentState::Running => "running",
        ComponentState::Degraded => "degraded",
        ComponentState::Stopped => "stopped",
        ComponentState::Failed => "failed",
    }
}

fn severity(s: ComponentState) -> u8 {
    match s {
        ComponentState::Running => 0,
        ComponentState::Stopped => 1,
        ComponentState::Degraded => 2,
        ComponentState::Failed => 3,
    }
}

pub(crate) fn detail_json(d: &Detail) -> Value {
    match d {
        Detail::Num(x) if x.is_finite() => json!(x),
        Detail::Num(_) => Value::Null,
        Detail::Int(i) => json!(i),
        Detail::Text(t) => json!(t),
        Detail::List(v) => Value::Array(
            v.iter()
                .map(|x| if x.is_finite() { json!(x) } else { Value::Null })
                .collect(),
        ),
    }
}

pub(crate) fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Symbols listed by `performance_feedback_system` as the lowest `regime_accuracy`.
const LOWEST_LISTED: usize = 5;

/// One component aggregated over every symbol: worst state, latest update, mean latency,
/// details of `symbol` (default: the default symbol) plus symbol counts.
pub(crate) fn component_view(st: &AppState, name: &str, symbol: Option<&str>) -> Option<Value> {
    let critical = CRITICAL.contains(&name);
    if !ALL_COMPONENTS.contains(&name) {
        return None;
    }
    let insight = st.engine.shared.insight.load();
    let default_sym = symbol.map(str::to_string).or_else(|| default_symbol(st));
    let mut state = ComponentState::Running;
    let mut last: Option<i64> = None;
    let mut lat_sum = 0.0;
    let mut n = 0usize;
    let mut degraded = 0usize;
    let mut details: Option<&ComponentStatus> = None;
    for (sym, ins) in insight.iter() {
        let Some(c) = ins.components.iter().find(|c| c.name == name) else {
            continue;
        };
        n += 1;
        if severity(c.state) > severity(state) {
            state = c.state;
        }
        if c.state != ComponentState::Running {
            degraded += 1;
        }
        last = last.max(c.last_update_ts);
        lat_sum += c.latency_us;
        if details.is_none() || Some(sym) == default_sym.as_ref() {
            details = Some(c);
        }
    }
    let mut d = Map::new();
    if let Some(c) = details {
        for (k, v) in &c.details {
            d.insert(k.clone(), detail_json(v));
        }
    }
    d.insert("symbols".into(), json!(n));
    d.insert("symbols_not_running".into(), json!(degraded));
    if let Some(s) = default_sym {
        d.insert("details_symbol".into(), json!(s));
    }
    let sh = &st.engine.shared;
    match name {
        "configuration_manager" => {
            d.insert(
                "config_path".into(),
                json!(st.config_path.as_ref().map(|p| p.display().to_string())),
            );
            d.insert("reloads".into(), json!(st.reloads.load(Ordering::Relaxed)));
        }
        "historical_analyzer" => {
            let up = sh.db_up.load(Ordering::Relaxed);
            d.insert("store".into(), json!(st.readers.kind()));
            d.insert("store_up".into(), json!(up));
            d.insert(
                "rows_written".into(),
                json!(sh.stored_rows.load(Ordering::Relaxed)),
            );
            d.insert(
                "rows_buffered".into(),
                json!(sh.pending_rows.load(Ordering::Relaxed)),
            );
            let check = store_check(st);
            d.insert("store_integrity".into(), json!(check.name()));
            if let StoreCheck::Damaged(what) | StoreCheck::Failed(what) = &check {
                d.insert("store_integrity_detail".into(), json!(what));
            }
            if !up || matches!(check, StoreCheck::Damaged(_)) {
                state = ComponentState::Degraded;
            }
        }
        "performance_feedback_system" => {
            // where an accuracy alert points: the symbols reading lowest, with what their
            // own details say per dimension
            let mut low: Vec<(&String, f64, Value)> = insight
                .iter()
                .filter_map(|(sym, ins)| {
                    let a = ins.accuracy?;
                    let dims = ins
                        .components
                        .iter()
                        .find(|c| c.name == name)
                        .and_then(|c| c.details.get("accuracy_by_dimension"))
                        .map_or(Value::Null, detail_json);
                    Some((sym, a, dims))
                })
                .collect();
            low.sort_by(|a, b| a.1.total_cmp(&b.1));
            low.truncate(LOWEST_LISTED);
            d.insert(
                "lowest_regime_accuracy".into(),
                Value::Array(
                    low.into_iter()
                        .map(|(sym, a, dims)| {
                            json!({"symbol": sym, "regime_accuracy": a, "accuracy_by_dimension": dims})
                        })
                        .collect(),
                ),
            );
        }
        "integration_orchestrator" => {
            d.insert(
                "queue_depth".into(),
                json!(sh.queue_depth.load(Ordering::Relaxed)),
            );
            d.insert("queue_capacity".into(), json!(sh.queue_capacity));
            d.insert("backend".into(), json!(st.compute.name()));
            if sh.closing.load(Ordering::Relaxed) {
                state = ComponentState::Stopped;
            }
        }
        _ => {}
    }
    if st.safe_mode && !critical {
        state = ComponentState::Stopped;
        d.insert(
            "reason".into(),
            json!("SAFE_MODE=1: critical components only"),
        );
    }
    Some(json!({
        "state": state_name(state),
        "critical": critical,
        "last_update": last.map(iso_ms),
        "latency_ms": if n > 0 { lat_sum / n as f64 / 1000.0 } else { 0.0 },
        "details": Value::Object(d),
    }))
}

/// The store's integrity check at start, as it stands.
fn store_check(st: &AppState) -> StoreCheck {
    st.engine
        .shared
        .store_check
        .lock()
        .map(|c| c.clone())
        .unwrap_or(StoreCheck::NotRun)
}

pub(crate) fn default_symbol(st: &AppState) -> Option<String> {
    let cfg = st.config.load();
    cfg.regime.default_symbol.clone().or_else(|| {
        st.engine
            .shared
            .first_symbol
            .lock()
            .ok()
            .and_then(|g| g.clone())
    })
}

pub(crate) async fn health(State(st): State<AppState>) -> Response {
    let mut comps = Map::new();
    let mut worst_critical = 0u8;
    for name in ALL_COMPONENTS {
        let v = component_view(&st, name, None).unwrap_or(Value::Null);
        let s = v["state"].as_str().unwrap_or("failed").to_string();
        if CRITICAL.contains(&name) {
            let sev = match s.as_str() {
                "running" => 0,
                "degraded" | "stopped" => 1,
                _ => 2,
            };
            worst_critical = worst_critical.max(sev);
        }
        comps.insert(name.to_string(), json!(s));
    }
    let sh = &st.engine.shared;
    let db_up = sh.db_up.load(Ordering::Relaxed);
    let closing = sh.closing.load(Ordering::Relaxed);
    let damaged = matches!(store_check(&st), StoreCheck::Damaged(_));
    let status = if worst_critical >= 2 || closing {
        "unhealthy"
    } else if worst_critical == 1 || !db_up || damaged {
        "degraded"
    } else {
        "healthy"
    };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": st.started.elapsed().as_secs_f64(),
        "safe_mode": st.safe_mode,
        "components": Value::Object(comps),
        "backend": st.compute.name(),
        "database": if db_up { "connected" } else { "disconnected" },
        "queue_depth": queue_depth(&st),
        "symbols": sh.current.load().len(),
    });
    let code = if status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

pub(crate) async fn prometheus(State(st): State<AppState>) -> Response {
    let sh = &st.engine.shared;
    metrics::gauge!("system_uptime_seconds").set(st.started.elapsed().as_secs_f64());
    metrics::gauge!("regime_memory_usage_bytes").set(rss_bytes().unwrap_or(0) as f64);
    metrics::gauge!("regime_queue_depth").set(queue_depth(&st) as f64);
    metrics::gauge!("regime_db_up").set(if sh.db_up.load(Ordering::Relaxed) {
        1.0
    } else {
        0.0
    });
    metrics::gauge!("regime_cpu_usage_percent").set(st.cpu_percent());
    metrics::gauge!("regime_memory_usage_percent").set(memory_percent());
    if let Some(f) = disk_free(&st) {
        metrics::gauge!("regime_disk_free_ratio").set(f);
    }
    // damage found by the check at start, or met by a write since
    let damaged = matches!(store_check(&st), StoreCheck::Damaged(_))
        || sh.store_damaged.load(Ordering::Relaxed);
    metrics::gauge!("regime_store_damaged").set(if damaged { 1.0 } else { 0.0 });
    metrics::gauge!("regime_http_connections_open")
        .set(st.connections.load(Ordering::Relaxed) as f64);
    metrics::gauge!("regime_store_buffered_rows")
        .set(sh.pending_rows.load(Ordering::Relaxed) as f64);
    if let Some(a) = overall_accuracy(&st) {
        metrics::gauge!("regime_accuracy").set(a);
    }
    if let Some(a) = overall_exact_accuracy(&st) {
        metrics::gauge!("regime_accuracy_exact").set(a);
    }
    let body = st.prom.render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// This process's resident memory as a share of the machine's, in percent.
fn memory_percent() -> f64 {
    let rss = rss_bytes().unwrap_or(0);
    let total = mem_total_bytes().unwrap_or(0);
    if total > 0 {
        rss as f64 / total as f64 * 100.0
    } else {
        0.0
    }
}

/// Free share of the file system that holds the data (the embedded store, or the spool).
fn disk_free(st: &AppState) -> Option<f64> {
    let cfg = st.config.load();
    let path = match cfg.storage.kind {
        crate::config::StorageKind::Embedded => cfg.storage.path.clone(),
        crate::config::StorageKind::Postgres => cfg.storage.spool_path.clone(),
    };
    crate::state::disk_free_ratio(&path)
}

pub(crate) async fn json_metrics(State(st): State<AppState>) -> Json<Value> {
    let rss = rss_bytes().unwrap_or(0);
    let req = st.http.requests.load(Ordering::Relaxed);
    let err = st.http.errors.load(Ordering::Relaxed);
    let sh = &st.engine.shared;
    let det = sh.detections.load(Ordering::Relaxed);
    Json(json!({
        "cpu_usage_percent": st.cpu_percent(),
        "memory_usage_percent": memory_percent(),
        "disk_free_percent": disk_free(&st).map(|f| f * 100.0),
        "memory_rss_bytes": rss,
        "requests_total": req,
        "errors_total": err,
        "error_rate": if req > 0 { err as f64 / req as f64 } else { 0.0 },
        "latency_ms": {"p50": st.http.quantile_ms(0.5), "p99": st.http.quantile_ms(0.99)},
        "queue_depth": queue_depth(&st),
        "regime_accuracy": overall_accuracy(&st),
        "regime_accuracy_exact": overall_exact_accuracy(&st),
        "detections_total": det,
        "detection_latency_us_mean": if det > 0 { sh.detect_ns.load(Ordering::Relaxed) as f64 / det as f64 / 1000.0 } else { 0.0 },
        "uptime_seconds": st.started.elapsed().as_secs_f64(),
        "cache": {"entries": st.cache.len(), "hits": st.cache.hits.load(Ordering::Relaxed), "misses": st.cache.misses.load(Ordering::Relaxed)},
    }))
}

pub(crate) async fn components(State(st): State<AppState>) -> Json<Value> {
    let mut m = Map::new();
    for name in ALL_COMPONENTS {
        if let Some(v) = component_view(&st, name, None) {
            m.insert(name.to_string(), v);
        }
    }
    m.insert("compute_backend".into(), st.compute.view());
    Json(Value::Object(m))
}

pub(crate) async fn component(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    if name == "compute_backend" {
        return Ok(Json(st.compute.view()));
    }
    let symbol = q.get("symbol").map(String::as_str);
    if let Some(s) = symbol {
        if !st.engine.shared.insight.load().contains_key(s) {
            return Err(AppError::not_found(format!("no symbol {s:?} seen")));
        }
    }
    component_view(&st, &name, symbol).map(Json).ok_or_else(|| {
        AppError::not_found(format!(
            "unknown component {name:?} (known: {})",
            ALL_COMPONENTS.join(", ")
        ))
    })
}

pub(crate) async fn database(State(st): State<AppState>) -> Json<Value> {
    // `latency_ms` is a round trip (the ping), not the row count, which reads a whole index
    // and grows with the table; failed, the time until the failure
    let t = Instant::now();
    let res = st
        .readers
        .with(|s| {
            let t = Instant::now();
            s.ping()?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            s.stats().map(|stats| (stats, ms))
        })
        .await;
    let ms = match &res {
        Ok((_, ms)) => *ms,
        Err(_) => t.elapsed().as_secs_f64() * 1000.0,
    };
    let sh = &st.engine.shared;
    let check = store_check(&st);
    let base = |status: &str| {
        json!({
            "status": status,
            "type": st.readers.kind(),
            "pool_size": st.readers.size(),
            "active_connections": st.readers.active.load(Ordering::Relaxed),
            "latency_ms": ms,
            "writer_up": sh.db_up.load(Ordering::Relaxed),
            "rows_buffered": sh.pending_rows.load(Ordering::Relaxed),
            "last_error": sh.last_store_error.lock().ok().and_then(|g| g.clone()),
            "integrity": check.name(),
            "integrity_detail": match &check {
                StoreCheck::Damaged(w) | StoreCheck::Failed(w) => json!(w),
                StoreCheck::Passed { seconds } => json!(format!("SQLite quick_check at start: sound ({seconds:.1} s)")),
                StoreCheck::Running => json!("SQLite quick_check at start: running"),
                StoreCheck::NotRun => Value::Null,
            },
        })
    };
    match res {
        Ok((s, _)) => {
            let mut v = base("connected");
            v["rows"] = json!(s.rows);
            v["latest_timestamp"] = json!(s.latest_ts.map(iso_ms));
            Json(v)
        }
        Err(e) => {
            let mut v = base("disconnected");
            v["rows"] = Value::Null;
            v["latest_timestamp"] = Value::Null;
            v["error"] = json!(e.to_string());
            Json(v)
        }
    }
}
