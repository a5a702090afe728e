//! Sustained ingest load on a running `regime serve`, over loopback: `clients` threads each
//! POST Arrow IPC batches of `batch` bars (their own symbols; bars from the seeded synthetic
//! generator, so the detector sees real regime structure) for `secs` seconds, and count only
//! the bars the server acknowledged (202 `accepted`). The bars are generated before the clock
//! starts.
//!
//! ```text
//! cargo run --release -p regime-server --example ingest_load -- 127.0.0.1:8080 KEY [clients] [batch] [secs] [symbols_per_client] [max_bars_per_s_per_client]
//! ```

use anyhow::{bail, Context};
use arrow::array::{ArrayRef, Float64Array, StringArray, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use regime_core::bars::Bar;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One Arrow IPC stream of `rows[from..to]` (each row: symbol index, bar).
fn ipc(names: &[String], rows: &[(usize, Bar)]) -> anyhow::Result<Vec<u8>> {
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "timestamp",
            Arc::new(TimestampMillisecondArray::from(
                rows.iter().map(|r| r.1.ts).collect::<Vec<_>>(),
            )),
        ),
        (
            "symbol",
            Arc::new(StringArray::from(
                rows.iter().map(|r| names[r.0].as_str()).collect::<Vec<_>>(),
            )),
        ),
        (
            "open",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1.open).collect::<Vec<_>>(),
            )),
        ),
        (
            "high",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1.high).collect::<Vec<_>>(),
            )),
        ),
        (
            "low",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1.low).collect::<Vec<_>>(),
            )),
        ),
        (
            "close",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1.close).collect::<Vec<_>>(),
            )),
        ),
        (
            "volume",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.1.volume).collect::<Vec<_>>(),
            )),
        ),
    ];
    let batch = RecordBatch::try_from_iter(cols)?;
    let mut buf = Vec::new();
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &batch.schema())?;
    w.write(&batch)?;
    w.finish()?;
    drop(w);
    Ok(buf)
}

/// The first bar's time for `bars` bars of the generator's spacing whose last one lies a day
/// before `now_ms` (at midnight UTC): the service refuses bars stamped after its clock plus
/// `server.max_future_secs`, and the generator's own start (2000) runs past the clock after
/// ~9,800 daily bars a symbol. 400,000 daily bars start in the tenth century, which the
/// service takes (years 1–9999).
fn ending_before(now_ms: i64, bars: usize) -> i64 {
    const DAY: i64 = 86_400_000;
    let step = datasets::SynthConfig::default().step_ms;
    let last = (now_ms - DAY).div_euclid(DAY) * DAY;
    last - (bars as i64 - 1) * step
}

fn post(addr: &str, key: &str, body: &[u8]) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).context("connect")?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "POST /api/v1/bars HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-API-Key: {key}\r\nContent-Type: application/vnd.apache.arrow.stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 2 {
        bail!("usage: ingest_load ADDR KEY [clients=4] [batch=20000] [secs=30] [symbols_per_client=10]");
    }
    let addr = a[0].clone();
    let key = a[1].clone();
    let clients: usize = a.get(2).map(|x| x.parse()).transpose()?.unwrap_or(4);
    let batch: usize = a.get(3).map(|x| x.parse()).transpose()?.unwrap_or(20_000);
    let secs: u64 = a.get(4).map(|x| x.parse()).transpose()?.unwrap_or(30);
    let spc: usize = a.get(5).map(|x| x.parse()).transpose()?.unwrap_or(10);
    // optional cap on bars/s per client (for soak tests); 0 = as fast as acknowledged
    let rate: f64 = a.get(6).map(|x| x.parse()).transpose()?.unwrap_or(0.0);
    let per_symbol = (batch / spc).max(1);
    let barrier = Arc::new(std::sync::Barrier::new(clients + 1));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (addr, key) = (addr.clone(), key.clone());
            let barrier = barrier.clone();
            std::thread::spawn(move || -> anyhow::Result<(u64, u64, u64, Vec<f64>)> {
                let run = std::process::id();
                let names: Vec<String> =
                    (0..spc).map(|s| format!("L{run}_{c:02}_{s:03}")).collect();
                // bars with real regime structure (the synthetic generator), interleaved by time
                let bars_per_symbol = 400_000usize;
                let data = datasets::generate(
                    &datasets::SynthConfig {
                        symbols: spc,
                        bars: bars_per_symbol,
                        start_ms: ending_before(now, bars_per_symbol),
                        ..Default::default()
                    },
                    1000 + c as u64,
                );
                let mut rows: Vec<(usize, Bar)> = Vec::with_capacity(spc * bars_per_symbol);
                for i in 0..bars_per_symbol {
                    for (s, d) in data.iter().enumerate() {
                        rows.push((s, d.bars[i]));
                    }
                }
                drop(data);
                barrier.wait();
                let deadline = Instant::now() + Duration::from_secs(secs);
                let mut at = 0usize;
                let (mut acked, mut refused, mut reqs) = (0u64, 0u64, 0u64);
                let mut lat = Vec::new();
                let t_start = Instant::now();
                while Instant::now() < deadline && at < rows.len() {
                    if rate > 0.0 {
                        let due = t_start.elapsed().as_secs_f64() * rate;
                        if (acked as f64) > due {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    }
                    let end = (at + per_symbol * spc).min(rows.len());
                    let body = ipc(&names, &rows[at..end])?;
                    let t = Instant::now();
                    let (status, text) = post(&addr, &key, &body)?;
                    lat.push(t.elapsed().as_secs_f64());
                    reqs += 1;
                    match status {
                        202 => {
                            let v: serde_json::Value = serde_json::from_str(&text)?;
                            acked += v["accepted"].as_u64().unwrap_or(0);
                            at = end;
                        }
                        429 | 503 => {
                            refused += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        s => bail!(
                            "unexpected {s}: {}",
                            text.chars().take(300).collect::<String>()
                        ),
                    }
                }
                Ok((acked, refused, reqs, lat))
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let (mut acked, mut refused, mut reqs) = (0, 0, 0);
    let mut lat = Vec::new();
    for h in handles {
        let (a, r, n, l) = h.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
        acked += a;
        refused += r;
        reqs += n;
        lat.extend(l);
    }
    let el = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{clients} clients × {batch}-bar Arrow IPC batches ({spc} symbols each), {el:.1} s: {acked} bars acknowledged = {:.0} bars/s; {reqs} requests, {refused} refused (429/503); request latency p50 {:.1} ms p99 {:.1} ms",
        acked as f64 / el,
        q(0.5) * 1e3,
        q(0.99) * 1e3
    );
    Ok(())
}
