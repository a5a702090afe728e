//! Regime routes: current, all, history, transitions, data quality, ASL metrics.

use super::health::{default_symbol, iso_ms};
use crate::engine::{Current, Insight};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{HistoryQuery, HistoryRow};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use regime_core::pipeline::METHOD_NAMES;
use regime_core::regime::{DIM_NAMES, N_REGIMES};
use regime_core::Regime;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const MAX_HISTORY_ROWS: usize = 100_000;

fn probabilities(r: &HistoryRow) -> Value {
    json!({
        "volatility": {"low": r.p_volatility[0], "medium": r.p_volatility[1], "high": r.p_volatility[2]},
        "trend": {"down": r.p_trend[0], "neutral": r.p_trend[1], "up": r.p_trend[2]},
        "structure": {"trending": r.p_structure[0], "mean_reverting": r.p_structure[1]},
    })
}

fn regime_fields(r: &HistoryRow, m: &mut Map<String, Value>) {
    let reg = Regime::from_id(r.regime_id);
    m.insert("regime_id".into(), json!(r.regime_id));
    m.insert("regime_name".into(), json!(reg.map(|x| x.snake_name())));
    m.insert("human_name".into(), json!(reg.map(|x| x.human_name())));
    m.insert(
        "volatility".into(),
        json!(reg.map(|x| x.volatility.as_str())),
    );
    m.insert("trend".into(), json!(reg.map(|x| x.trend.as_str())));
    m.insert("structure".into(), json!(reg.map(|x| x.structure.as_str())));
    m.insert("confidence".into(), json!(r.confidence));
    m.insert("probabilities".into(), probabilities(r));
    m.insert("model_version".into(), json!(r.model_version));
}

fn current_json(c: &Current) -> Value {
    let mut m = Map::new();
    m.insert("symbol".into(), json!(c.symbol));
    m.insert("timestamp".into(), json!(iso_ms(c.ts)));
    regime_fields(&c.row, &mut m);
    m.insert("since".into(), json!(iso_ms(c.since)));
    m.insert("duration_bars".into(), json!(c.duration_bars));
    m.insert("warming_up".into(), json!(c.warming_up));
    Value::Object(m)
}

fn history_json(r: &HistoryRow) -> Value {
    let mut m = Map::new();
    m.insert("timestamp".into(), json!(iso_ms(r.ts)));
    m.insert("symbol".into(), json!(r.symbol));
    regime_fields(r, &mut m);
    Value::Object(m)
}

fn symbol_or_default(st: &AppState, q: &HashMap<String, String>) -> Result<String, AppError> {
    match q.get("symbol").filter(|s| !s.is_empty()) {
        Some(s) => Ok(s.clone()),
        None => default_symbol(st)
            .ok_or_else(|| AppError::not_found("no regimes yet: no bars have been ingested")),
    }
}

pub(crate) async fn current(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let sym = symbol_or_default(&st, &q)?;
    let cur = st.engine.shared.current.load();
    let c = cur
        .get(&sym)
        .ok_or_else(|| AppError::not_found(format!("unknown symbol {sym:?}")))?;
    Ok(Json(current_json(c)))
}

pub(crate) async fn all(State(st): State<AppState>) -> Json<Value> {
    let cur = st.engine.shared.current.load();
    let mut v: Vec<&Arc<Current>> = cur.values().collect();
    v.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    Json(json!({
        "count": v.len(),
        "regimes": v.iter().map(|c| current_json(c)).collect::<Vec<_>>(),
    }))
}

fn parse_ts(name: &str, s: &str) -> Result<i64, AppError> {
    crate::io::parse_timestamp(s).ok_or_else(|| {
        AppError::bad_request(format!(
            "query parameter {name}={s:?} is not a timestamp (YYYY-MM-DD[ HH:MM:SS], RFC 3339 or epoch seconds/ms)"
        ))
    })
}

pub(crate) async fn history(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    for k in q.keys() {
        if !["symbol", "from", "to", "limit"].contains(&k.as_str()) {
            return Err(AppError::bad_request(format!(
                "unknown query parameter {k:?} (symbol, from, to, limit)"
            )));
        }
    }
    let limit = match q.get("limit") {
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_HISTORY_ROWS).contains(&n) => n,
            _ => {
                return Err(AppError::bad_request(format!(
                    "limit={s:?}: expected a whole number in 1..={MAX_HISTORY_ROWS}"
                )))
            }
        },
        None => 1000,
    };
    let query = HistoryQuery {
        symbol: q.get("symbol").filter(|s| !s.is_empty()).cloned(),
        from: q.get("from").map(|s| parse_ts("from", s)).transpose()?,
        to: q.get("to").map(|s| parse_ts("to", s)).transpose()?,
        limit,
    };
    if let (Some(f), Some(t)) = (query.from, query.to) {
        if f > t {
            return Err(AppError::bad_request("from is after to"));
        }
    }
    let cfg = st.config.load();
    let gen = st.engine.shared.store_generation.load(Ordering::Acquire);
    let ttl = Duration::from_secs(cfg.caching.ttl);
    if cfg.caching.enabled {
        if let Some(body) = st.cache.get(&query, gen, ttl) {
            return Ok(json_bytes(body, "hit"));
        }
    }
    // one row more than asked tells whether earlier rows in the range were left out
    let q2 = HistoryQuery {
        limit: query.limit + 1,
        ..query.clone()
    };
    let mut rows = st
        .readers
        .with(move |s| s.history(&q2))
        .await
        .map_err(|e| {
            AppError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("history store: {e}"),
            )
            .retry_after(5)
        })?;
    // the newest `limit` rows of the range, oldest first
    let truncated = rows.len() > query.limit;
    if truncated {
        rows.drain(..rows.len() - query.limit);
    }
    let body = json!({
        "symbol": query.symbol,
        "count": rows.len(),
        "truncated": truncated,
        "rows": rows.iter().map(history_json).collect::<Vec<_>>(),
    });
    let bytes = Arc::new(serde_json::to_vec(&body).map_err(AppError::internal)?);
    if cfg.caching.enabled {
        st.cache
            .put(query, gen, bytes.clone(), cfg.caching.max_size);
    }
    Ok(json_bytes(bytes, "miss"))
}

fn json_bytes(body: Arc<Vec<u8>>, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::HeaderName::from_static("x-cache"), cache),
        ],
        body.as_ref().clone(),
    )
        .into_response()
}

fn insight_for(st: &AppState, sym: &str) -> Result<Arc<Insight>, AppError> {
    st.engine
        .shared
        .insight
        .load()
        .get(sym)
        .cloned()
        .ok_or_else(|| AppError::not_found(format!("unknown symbol {sym:?}")))
}

pub(crate) async fn transitions(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let sym = symbol_or_default(&st, &q)?;
    let ins = insight_for(&st, &sym)?;
    let names: Vec<&str> = (0..N_REGIMES as u8)
        .filter_map(Regime::from_id)
        .map(|r| r.snake_name())
        .collect();
    let mut matrix = Vec::with_capacity(N_REGIMES);
    let mut total = 0u64;
    let mut switches = 0u64;
    for (i, row) in ins.transitions.iter().enumerate() {
        let n: u64 = row.iter().sum();
        total += n;
        switches += n - row[i];
        matrix.push(
            row.iter()
                .map(|c| if n > 0 { *c as f64 / n as f64 } else { 0.0 })
                .collect::<Vec<_>>(),
        );
    }
    let analyzer = ins
        .components
        .iter()
        .find(|c| c.name == "transition_matrix_analyzer")
        .map(|c| {
            c.details
                .iter()
                .map(|(k, v)| (k.clone(), super::health::detail_json(v)))
                .collect::<Map<_, _>>()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "symbol": sym,
        "regimes": names,
        "counts": ins.transitions.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
        "matrix": matrix,
        "observations": total,
        "switches": switches,
        "analyzer": Value::Object(analyzer),
    })))
}

pub(crate) async fn quality(State(st): State<AppState>) -> Json<Value> {
    let sh = &st.engine.shared;
    let q = sh.quality.lock().map(|g| g.clone()).unwrap_or_default();
    let un = sh.unparsed.lock().map(|g| g.clone()).unwrap_or_default();
    let cur = sh.current.load();
    let ins = sh.insight.load();
    let now = chrono::Utc::now().timestamp_millis();
    let mut syms: Vec<&String> = q.keys().chain(un.keys()).collect();
    syms.sort();
    syms.dedup();
    let mut out = Map::new();
    let (mut acc_all, mut rej_all) = (0u64, 0u64);
    for s in syms {
        let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
        // (zero returns: closes unchanged from the bar before; many, ≥ 30%, mean a tick grid
        // coarse for the bar length, or stale closes, where the labels lose accuracy)
        let (accepted, gaps, last_ts, duplicates, zero_returns, zero_share) = match q.get(s) {
            Some(x) => {
                for (k, v) in &x.rejected {
                    *rejected.entry(k.clone()).or_insert(0) += v;
                }
                let share = x.zero_return_share();
                (
                    x.accepted,
                    x.gaps,
                    x.last_ts,
                    x.duplicates,
                    x.zero_returns,
                    share,
                )
            }
            None => (0, 0, None, 0, 0, None),
        };
        if let Some(u) = un.get(s) {
            for (k, v) in u {
                *rejected.entry(k.clone()).or_insert(0) += v;
            }
        }
        let rej: u64 = rejected.values().sum();
        acc_all += accepted;
        rej_all += rej;
        // (0: read from the store at start, no bar arrived since)
        let arrived = cur.get(s).map(|c| c.arrived_ms).filter(|&a| a > 0);
        let base = ins.get(s).and_then(|i| {
            i.components
                .iter()
                .find(|c| c.name == "base_regime_detector")
        });
        let get = |k: &str| base.and_then(|c| c.details.get(k).map(super::health::detail_json));
        // what the model makes of the symbol's opens (null until it has learned): how far
        // the gaps follow volatility beside the returns, the weight they keep, and how often
        // their size changed at the source (a vendor's opening prints, a session rule)
        let opens = base
            .filter(|c| c.details.contains_key("gap_vol_slope"))
            .map(|_| {
                json!({
                    "gap_vol_slope": get("gap_vol_slope"),
                    "gap_weight": get("gap_weight"),
                    "gap_scale_restarts": get("gap_scale_restarts"),
                    "gap_bars_seen": get("gap_bars_seen"),
                })
            });
        // unadjusted splits read in the symbol's bars (prices ÷k and volume ×k at once) and
        // steps of the volume alone, taken out before detection
        let at = |k: &str| {
            base.and_then(|c| match c.details.get(k) {
                Some(regime_core::pipeline::Detail::Int(ms)) => Some(iso_ms(*ms)),
                _ => None,
            })
        };
        let splits = base.map(|_| {
            json!({
                "count": get("splits_read"),
                "last_ratio": get("last_split_ratio"),
                "last_at": at("last_split_ts_ms"),
                "volume_steps": get("volume_steps_read"),
                "last_volume_step": get("last_volume_step"),
                "last_volume_step_at": at("last_volume_step_ts_ms"),
            })
        });
        out.insert(
            s.clone(),
            json!({
                "bars_accepted": accepted,
                "bars_rejected": rej,
                "bars_received_again": duplicates,
                "rejected_by_reason": rejected,
                "gaps": gaps,
                "zero_returns": zero_returns,
                "zero_return_share": zero_share,
                "zero_returns_many": zero_share
                    .map(|z| z >= regime_core::bars::ZERO_RETURN_NOTE_SHARE),
                "last_bar": last_ts.map(iso_ms),
                "staleness_seconds": arrived.map(|a| (now - a) as f64 / 1000.0),
                "opens": opens,
                "splits": splits,
            }),
        );
    }
    Json(json!({
        "symbols": Value::Object(out),
        "totals": {"bars_accepted": acc_all, "bars_rejected": rej_all},
    }))
}

fn finite(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

pub(crate) async fn asl(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, AppError> {
    let sym = symbol_or_default(&st, &q)?;
    let ins = insight_for(&st, &sym)?;
    let all = st.engine.shared.insight.load();
    let mut weights = Map::new();
    let mut accuracy = Map::new();
    for (m, name) in METHOD_NAMES.iter().enumerate() {
        let mut w = Map::new();
        let mut a = Map::new();
        for (d, dim) in DIM_NAMES.iter().enumerate() {
            w.insert(dim.to_string(), finite(ins.weights[d][m]));
            a.insert(dim.to_string(), finite(ins.method_accuracy[m][d]));
        }
        weights.insert(name.to_string(), Value::Object(w));
        accuracy.insert(name.to_string(), Value::Object(a));
    }
    let agree: Vec<f64> = ins
        .agreement
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let agreement = (!agree.is_empty()).then(|| agree.iter().sum::<f64>() / agree.len() as f64);
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let plain = |i: &Insight| i.plain_accuracy.map(|a| a.iter().sum::<f64>() / 3.0);
    let by_dim = ins.plain_accuracy.map(|a| {
        DIM_NAMES
            .iter()
            .zip(a)
            .map(|(d, x)| (d.to_string(), finite(x)))
            .collect::<Map<_, _>>()
    });
    Ok(Json(json!({
        "symbol": sym,
        "methods": METHOD_NAMES,
        "weights": Value::Object(weights),
        "method_accuracy": Value::Object(accuracy),
        // the members' measure (agreement with the ex-post label, since the start), so the
        // two compare; `regime_accuracy` is the manual's (see `/api/v1/metrics`)
        "ensemble_accuracy": plain(&ins),
        "ensemble_accuracy_by_dimension": by_dim,
        "regime_accuracy": ins.accuracy,
        "agreement_score": agreement,
        "agreement_by_dimension": ins.agreement.iter().map(|x| finite(*x)).collect::<Vec<_>>(),
        "bars": ins.bars,
        "all_symbols": {
            "symbols": all.len(),
            "mean_ensemble_accuracy": mean(all.values().filter_map(|i| plain(i)).collect()),
            "mean_regime_accuracy": mean(all.values().filter_map(|i| i.accuracy).collect()),
        },
    })))
}
