//! `POST /api/v1/bars`: JSON rows or an Arrow IPC body. Answers 202 once the batch's rows are
//! committed to the store (or, while it is down, held in its retry buffer and fsynced to the
//! spool), with accepted/rejected counts and the rejected rows; 200 when every bar is a resend
//! of one taken (a retry after a timeout or a 503: `duplicates`, nothing learned twice, nothing
//! called bad); 400 when nothing is valid;
//! 429/503 with `Retry-After` when the queue is full, or when neither the store nor the spool
//! takes rows (a full disk: nothing is acknowledged that a crash could lose) — never a silent
//! drop.

use crate::engine::{count_unparsed, Busy, IngestRow, Outcome, RowError};
use crate::error::AppError;
use crate::io::{integer_timestamp, read_arrow_ipc, timestamp_field, ParsedRow};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use regime_core::bars::{Bar, RejectReason};
use serde_json::{json, Value};
use std::path::Path;

/// Rejected rows listed in one answer (the counts cover all of them).
const MAX_LISTED_ERRORS: usize = 100;

/// The number in `value` (a bar's `field`; absent or null: NaN, or missing when `required`).
fn num(value: Option<&Value>, field: &'static str, required: bool) -> Result<f64, RejectReason> {
    match value {
        None | Some(Value::Null) if required => Err(RejectReason::Missing {
            field: field.to_string(),
        }),
        None | Some(Value::Null) => Ok(f64::NAN),
        Some(Value::Number(n)) => n.as_f64().ok_or(RejectReason::NonFinite { field }),
        Some(Value::String(s)) => match s.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(RejectReason::NonFinite { field }),
            Err(_) => Err(RejectReason::Unparseable {
                field: field.to_string(),
                value: s.clone(),
            }),
        },
        Some(other) => Err(RejectReason::Unparseable {
            field: field.to_string(),
            value: other.to_string(),
        }),
    }
}

/// The latest bar timestamp ingest accepts now (ms): the clock plus `max_future_secs`
/// (None: no check).
fn latest_accepted(max_future_secs: u64) -> Option<i64> {
    (max_future_secs > 0)
        .then(|| crate::store::now_ms().saturating_add(max_future_secs as i64 * 1000))
}

/// `b`, unless it is stamped after `latest`.
fn not_in_future(b: Bar, latest: Option<i64>) -> Result<Bar, RejectReason> {
    match latest {
        Some(limit) if b.ts > limit => Err(RejectReason::TimestampInFuture { got: b.ts, limit }),
        _ => Ok(b),
    }
}

/// Whether `k` is one of the keys a bar object usually has, spelled as the API documents
/// them (a `match`: one length test and a compare or two, every key of every row): an object
/// with no other key is read by name at once; any other key (`Close`, `Date`, `Adj Close`,
/// `PX_LAST`, `Ticker`, an extra field) sends it through the file readers' column rules.
fn plain_key(k: &str) -> bool {
    matches!(
        k,
        "symbol"
            | "timestamp"
            | "ts"
            | "time"
            | "datetime"
            | "date"
            | "open"
            | "high"
            | "low"
            | "close"
            | "volume"
    )
}

/// The timestamp's plain keys, in the order they are looked for (the file readers' order:
/// a row with `date` and `time` is dated by `date`).
const PLAIN_TS_KEYS: [&str; 5] = ["timestamp", "datetime", "date", "time", "ts"];
/// The value fields in `Bar` order.
const VALUE_FIELDS: [&str; 5] = ["open", "high", "low", "close", "volume"];

/// A bar object's fields, each None when absent.
struct Fields<'a> {
    symbol: Option<&'a Value>,
    ts: Option<&'a Value>,
    /// A time of day beside a `date` (`{"date": "2024-01-02", "time": "09:30", ...}`).
    time: Option<&'a Value>,
    /// open, high, low, close, volume.
    values: [Option<&'a Value>; 5],
}

/// Where a bar object's fields are; or the two keys that name one field.
fn locate_fields(obj: &serde_json::Map<String, Value>) -> Result<Fields<'_>, RejectReason> {
    if obj.keys().all(|k| plain_key(k)) {
        let ts_key = PLAIN_TS_KEYS.iter().find(|k| obj.contains_key(**k));
        return Ok(Fields {
            symbol: obj.get("symbol"),
            ts: ts_key.and_then(|k| obj.get(*k)),
            time: (ts_key == Some(&"date")).then(|| obj.get("time")).flatten(),
            values: VALUE_FIELDS.map(|k| obj.get(k)),
        });
    }
    let names: Vec<String> = obj.keys().cloned().collect();
    let f = crate::io::bar_fields(&names);
    if let Some((i, j)) = f.twin.or(f.symbol_twin) {
        return Err(RejectReason::DuplicateField {
            first: names[i].clone(),
            second: names[j].clone(),
        });
    }
    let at = |i: Option<usize>| i.and_then(|i| obj.get(&names[i]));
    Ok(Fields {
        symbol: at(f.symbol),
        ts: at(f.ts),
        time: at(f.time),
        values: f.values.map(at),
    })
}

fn json_row(row: usize, v: &Value) -> ParsedRow {
    let Some(obj) = v.as_object() else {
        return ParsedRow {
            row,
            symbol: String::new(),
            bar: Err(RejectReason::Unparseable {
                field: "row".into(),
                value: v.to_string(),
            }),
        };
    };
    let Fields {
        symbol: sym,
        ts: tsv,
        time,
        values,
    } = match locate_fields(obj) {
        Ok(f) => f,
        Err(reason) => {
            let symbol = match obj.get("symbol") {
                Some(Value::String(s)) => s.trim().to_string(),
                _ => String::new(),
            };
            return ParsedRow {
                row,
                symbol,
                bar: Err(reason),
            };
        }
    };
    // an integer id (e.g. a PERMNO) is its decimal text; anything else that is not text is
    // a bad row (it used to fall into the "default" series with every other such row)
    let (symbol, bad_symbol) = match sym {
        None | Some(Value::Null) => (String::new(), None),
        Some(Value::String(s)) => (s.trim().to_string(), None),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => (n.to_string(), None),
        Some(other) => (String::new(), Some(other.to_string())),
    };
    let bar = (|| {
        if let Some(value) = bad_symbol {
            return Err(RejectReason::Unparseable {
                field: "symbol".into(),
                value,
            });
        }
        let tsv = tsv.ok_or(RejectReason::Missing {
            field: "timestamp".into(),
        })?;
        let ts = match tsv {
            Value::String(s) => timestamp_field(s)?,
            Value::Null => {
                return Err(RejectReason::Missing {
                    field: "timestamp".into(),
                })
            }
            _ => tsv
                .as_i64()
                .map(integer_timestamp)
                .or_else(|| tsv.as_f64().and_then(crate::io::float_timestamp))
                .ok_or_else(|| RejectReason::Unparseable {
                    field: "timestamp".into(),
                    value: tsv.to_string(),
                })?,
        };
        // a time of day beside a date: its text (a number, `930`, by its digits)
        let ts = match time {
            None => ts,
            Some(Value::String(t)) => crate::io::date_and_time(ts, t)?,
            Some(Value::Null) => crate::io::date_and_time(ts, "")?,
            Some(Value::Number(n)) => crate::io::date_and_time(ts, &n.to_string())?,
            Some(other) => {
                return Err(RejectReason::Unparseable {
                    field: "time".into(),
                    value: other.to_string(),
                })
            }
        };
        let [o, h, l, c, vol] = values;
        Ok(Bar::new(
            ts,
            num(o, "open", false)?,
            num(h, "high", false)?,
            num(l, "low", false)?,
            num(c, "close", true)?,
            num(vol, "volume", false)?,
        ))
    })();
    ParsedRow { row, symbol, bar }
}

fn parse_json(bytes: &[u8]) -> Result<Vec<ParsedRow>, AppError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| AppError::bad_request(format!("request body is not valid JSON: {e}")))?;
    let rows = match &v {
        Value::Array(a) => a.as_slice(),
        Value::Object(o) => match o.get("bars") {
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => {
                return Err(AppError::bad_request(
                    "\"bars\" must be a list of bar objects",
                ))
            }
            // one bar — unless it has no close and holds a list under another name, which
            // a client meant as the bars (`{"rows": [...]}`, `{"data": [...]}`): say so
            // rather than reject it as one bar with no timestamp
            None => match o.iter().find(|(_, x)| x.is_array()) {
                Some((k, _)) if locate_fields(o).is_ok_and(|f| f.values[3].is_none()) => {
                    return Err(AppError::bad_request(format!(
                        "expected a list of bars, {{\"bars\": [...]}}, or one bar object; \
                         this object's list is under {k:?}: send it as \"bars\" or as the body"
                    )))
                }
                _ => std::slice::from_ref(&v),
            },
        },
        _ => {
            return Err(AppError::bad_request(
                "expected a list of bars, {\"bars\": [...]}, or one bar object",
            ))
        }
    };
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, r)| json_row(i + 1, r))
        .collect())
}

fn error_json(e: &RowError) -> Value {
    json!({"row": e.row, "symbol": e.symbol, "reason": e.reason, "message": e.message})
}

pub(crate) async fn bars(State(st): State<AppState>, req: Request) -> Result<Response, AppError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    let limit = st.config.load().server.max_body_bytes;
    let bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body over server.max_body_bytes = {limit} bytes; split the batch"),
            )
        })?;
    let parsed = if ct.starts_with("application/vnd.apache.arrow")
        || ct.starts_with("application/x-arrow")
    {
        read_arrow_ipc(&bytes, Path::new("request body"))
            .map_err(|e| AppError::bad_request(format!("Arrow IPC: {e}")))?
    } else if ct.starts_with("application/json") || ct.is_empty() {
        parse_json(&bytes)?
    } else {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {ct:?}: send application/json or application/vnd.apache.arrow.stream"
            ),
        ));
    };
    if parsed.is_empty() {
        return Err(AppError::bad_request("no bars in the request body"));
    }
    let mut errors = Vec::new();
    let mut rows = Vec::with_capacity(parsed.len());
    let latest = latest_accepted(st.config.load().server.max_future_secs);
    // rows refused here, counted once the batch is taken (a batch refused whole — queue
    // full, store down — is sent again, and leaves no trace)
    let mut refused = Vec::new();
    for p in parsed {
        let mut sym = if p.symbol.is_empty() {
            "default".to_string()
        } else {
            p.symbol
        };
        let bar = match crate::io::check_symbol(&sym) {
            Ok(()) => p.bar.and_then(|b| not_in_future(b, latest)),
            Err((reason, short)) => {
                sym = short;
                Err(reason)
            }
        };
        match bar {
            Ok(bar) => rows.push(IngestRow {
                symbol: sym,
                bar,
                row: p.row,
            }),
            Err(reason) => {
                refused.push((sym.clone(), reason.key()));
                errors.push(RowError {
                    row: p.row,
                    symbol: sym,
                    reason: reason.key().to_string(),
                    message: reason.to_string(),
                });
            }
        }
    }
    let mut total = Outcome {
        committed: true,
        spooled: true,
        ..Default::default()
    };
    let count_refused = || {
        for (sym, key) in &refused {
            count_unparsed(&st.engine.shared, sym, key);
        }
    };
    if rows.is_empty() {
        count_refused();
    } else {
        let waits = st.engine.try_submit(rows).map_err(|b| match b {
            Busy::QueueFull => AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                "ingest queue is full; retry after the Retry-After delay",
            )
            .retry_after(1),
            Busy::StoreDown => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store is down and its retry buffer is full; retry later",
            )
            .retry_after(5),
            Busy::NotDurable => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_durable_storage",
                "the store is down and the spool cannot be written (disk full?): nothing can be acknowledged safely; retry later",
            )
            .retry_after(5),
            Busy::ShuttingDown => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the service is shutting down",
            )
            .retry_after(5),
        })?;
        count_refused();
        for w in waits {
            let o = w
                .await
                .map_err(|_| AppError::internal("a detection worker stopped"))?;
            total.accepted += o.accepted;
            total.rejected += o.rejected;
            total.duplicates += o.duplicates;
            total.committed &= o.committed;
            total.spooled &= o.committed || o.spooled;
            total.errors.extend(o.errors);
        }
    }
    total.rejected += errors.len();
    errors.extend(total.errors);
    errors.sort_by_key(|e| e.row);
    let body = json!({
        "accepted": total.accepted,
        "rejected": total.rejected,
        "duplicates": total.duplicates,
        "committed": total.committed,
        "spooled": !total.committed && total.spooled,
        "errors": errors.iter().take(MAX_LISTED_ERRORS).map(error_json).collect::<Vec<_>>(),
        "errors_truncated": errors.len() > MAX_LISTED_ERRORS,
    });
    if total.accepted == 0 && total.duplicates == 0 {
        let first = errors
            .first()
            .map(|e| format!(" (first: row {}: {})", e.row, e.message))
            .unwrap_or_default();
        let b = json!({
            "error": {"code": "no_valid_bars", "message": format!("no valid bars: {} rejected{first}", total.rejected)},
            "rejected": total.rejected,
            "errors": body["errors"],
        });
        return Ok((StatusCode::BAD_REQUEST, Json(b)).into_response());
    }
    if !total.spooled {
        // neither committed nor in the spool (the store is down and the disk is full): held
        // in memory only, which a crash loses — so not acknowledged
        let b = json!({
            "error": {"code": "no_durable_storage", "message": format!(
                "the store is down and the spool cannot be written (disk full?): the {} accepted bars (and {} received before) are detected and held in memory, written once the store or the spool takes rows, but a crash before then loses them; not acknowledged (a resend is recognized and answered this way until they are durable)",
                total.accepted,
                total.duplicates
            )},
            "accepted": total.accepted,
            "rejected": total.rejected,
            "duplicates": total.duplicates,
            "committed": false,
            "spooled": false,
            "errors": body["errors"],
        });
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(b)).into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return Ok(r);
    }
    // a resend of bars already taken: nothing new, nothing wrong
    let status = if total.accepted == 0 {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_a_list_a_bars_object_or_one_bar() {
        let parse = |v: Value| parse_json(v.to_string().as_bytes());
        let bar = json!({"timestamp": "2024-01-02", "close": 10.0});
        let n = |v: Value| parse(v).map(|rows| rows.len()).map_err(|e| e.message);
        assert_eq!(n(json!([bar, bar])), Ok(2));
        assert_eq!(n(json!({"bars": [bar, bar, bar]})), Ok(3));
        assert_eq!(n(bar.clone()), Ok(1));
        // a bar whose extra field holds a list is still one bar
        let mut tagged = bar.clone();
        tagged["tags"] = json!(["a", "b"]);
        assert_eq!(n(tagged), Ok(1));
        // the bars under another name: a 400 that names it, not "timestamp is missing"
        for key in ["rows", "data"] {
            let e = parse(json!({ key: [bar] })).expect_err("refused");
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(
                e.message.contains(&format!("under \"{key}\"")),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn json_symbols_are_text_or_integer_ids() {
        let row = |v: Value| json_row(1, &v);
        let bar = json!({"timestamp": "2024-01-02", "close": 10.0});
        let with = |s: Value| {
            let mut b = bar.clone();
            b["symbol"] = s;
            row(b)
        };
        assert_eq!(with(json!(" SPX ")).symbol, "SPX");
        let id = with(json!(10107));
        assert_eq!(id.symbol, "10107");
        assert!(id.bar.is_ok());
        assert_eq!(row(bar.clone()).symbol, "");
        assert_eq!(with(Value::Null).symbol, "");
        for bad in [json!(1.5), json!(true), json!(["A"]), json!({"id": 1})] {
            let r = with(bad.clone());
            match r.bar {
                Err(RejectReason::Unparseable { field, value }) => {
                    assert_eq!(field, "symbol");
                    assert_eq!(value, bad.to_string());
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
