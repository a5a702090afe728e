//! Feeds that push bars into the engine: the demo feed (sample bars built into the binary,
//! re-timed to the wall clock so live regimes appear at once) and file replays at a chosen
//! speed. Both wait for queue room (backpressure) instead of dropping bars.

use crate::config::{FeedsConfig, ReplayFeed};
use crate::engine::{Engine, IngestRow};
use crate::io::{read_bars, read_csv_bytes, Input};
use regime_core::bars::Bar;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bundled sample panel (4 symbols × 2,000 daily bars, `datasets/fixtures/sample.csv`).
const SAMPLE: &[u8] = include_bytes!("../../datasets/fixtures/sample.csv");

/// Bars per symbol the demo feed sends at once at start, so regimes are meaningful at once
/// and `regime_accuracy` reads a model past its first months (at 500 the sample's symbols
/// read 0.72–0.92, 0.81 on average: the model still learning, not a fault to alert on).
const DEMO_WARM_BARS: usize = 1_000;

/// Start the configured feeds; each runs in its own thread until `stop` is set.
pub fn start(
    cfg: &FeedsConfig,
    engine: Arc<Engine>,
    batch_size: usize,
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
) -> Result<Vec<JoinHandle<()>>, FeedError> {
    let mut out = Vec::new();
    if cfg.demo {
        let input = read_csv_bytes(SAMPLE, Path::new("built-in sample"))?;
        let rate = cfg.demo_bars_per_second;
        let (e, s, p) = (engine.clone(), stop.clone(), paused.clone());
        out.push(spawn("feed-demo", move || {
            demo(input, rate, batch_size, e, s, p)
        })?);
    }
    for r in &cfg.replay {
        let input = read_bars(&r.path, None)?;
        if !input.errors.is_empty() {
            tracing::warn!(
                "replay {}: {} bad rows skipped (first: row {}: {})",
                r.path.display(),
                input.errors.len(),
                input.errors[0].row,
                input.errors[0].reason
            );
        }
        let r = r.clone();
        let (e, s, p) = (engine.clone(), stop.clone(), paused.clone());
        out.push(spawn("feed-replay", move || {
            replay(input, &r, batch_size, e, s, p)
        })?);
    }
    Ok(out)
}

/// A feed could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// Its file could not be read.
    #[error(transparent)]
    Io(#[from] crate::io::IoError),
    /// Its thread could not be started.
    #[error("starting feed thread: {0}")]
    Spawn(std::io::Error),
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, FeedError> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(FeedError::Spawn)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Round-robin over the symbols; timestamps are the wall clock (strictly increasing per
/// symbol), so restarts never write overlapping history.
fn demo(
    input: Input,
    rate: f64,
    batch_size: usize,
    engine: Arc<Engine>,
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
) {
    let series: Vec<(String, Vec<Bar>)> = input
        .series
        .into_iter()
        .map(|s| (s.symbol, s.bars))
        .filter(|s| !s.1.is_empty())
        .collect();
    if series.is_empty() {
        return;
    }
    let mut last_ts = vec![i64::MIN; series.len()];
    let mut pos = vec![0usize; series.len()];
    let mut row = 0usize;
    let mut next = |k: usize, ts: i64, pos: &mut Vec<usize>, last: &mut Vec<i64>| {
        let (sym, bars) = &series[k];
        let b = bars[pos[k] % bars.len()];
        pos[k] += 1;
        let ts = ts.max(last[k] + 1);
        last[k] = ts;
        row += 1;
        IngestRow {
            symbol: sym.clone(),
            bar: Bar { ts, ..b },
            row,
        }
    };
    // warm start: the first bars of every symbol, 1 ms apart, ending now
    let t0 = now_ms() - DEMO_WARM_BARS as i64;
    let mut warm = Vec::new();
    for k in 0..series.len() {
        for i in 0..DEMO_WARM_BARS {
            warm.push(next(k, t0 + i as i64, &mut pos, &mut last_ts));
        }
    }
    for chunk in warm.chunks(batch_size.max(1)) {
        if engine.submit_blocking(chunk.to_vec()).is_err() {
            return;
        }
    }
    tracing::info!(
        "demo feed: {} symbols warm, then {rate} bars/s",
        series.len()
    );
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut k = 0usize;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(period);
        if paused.load(Ordering::Relaxed) {
            continue;
        }
        let r = next(k, now_ms(), &mut pos, &mut last_ts);
        k = (k + 1) % series.len();
        if engine.submit_blocking(vec![r]).is_err() {
            return;
        }
    }
}

fn replay(
    input: Input,
    cfg: &ReplayFeed,
    batch_size: usize,
    engine: Arc<Engine>,
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
) {
    // merge the symbols back into time order
    let mut rows: Vec<(String, Bar)> = input
        .series
        .iter()
        .flat_map(|s| s.bars.iter().map(move |b| (s.symbol.clone(), *b)))
        .collect();
    rows.sort_by_key(|r| r.1.ts);
    let Some(span) = rows
        .last()
        .zip(rows.first())
        .map(|(l, f)| l.1.ts - f.1.ts + 1)
    else {
        return;
    };
    let mut shift = 0i64;
    let mut sent = 0u64;
    let start = Instant::now();
    let batch = batch_size.max(1);
    tracing::info!(
        "replay {}: {} bars at {} bars/s{}",
        cfg.path.display(),
        rows.len(),
        cfg.bars_per_second,
        if cfg.repeat { ", repeating" } else { "" }
    );
    // bars the store already holds (a restart replays the file from its start): skipped,
    // not sent to be refused one by one
    let stored = engine.shared.stored_at_start.clone();
    loop {
        let mut i = 0;
        let mut skipped = 0usize;
        let held = |(s, b): &(String, Bar)| stored.get(s).is_some_and(|&t| b.ts + shift <= t);
        while i < rows.len() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if held(&rows[i]) {
                i += 1;
                skipped += 1;
                continue;
            }
            if paused.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let n = if cfg.bars_per_second > 0.0 {
                let due = (start.elapsed().as_secs_f64() * cfg.bars_per_second) as u64;
                if due <= sent {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
                ((due - sent) as usize).min(batch)
            } else {
                batch
            };
            let end = (i + n).min(rows.len());
            let job: Vec<IngestRow> = rows[i..end]
                .iter()
                .enumerate()
                .filter(|(_, r)| !held(r))
                .map(|(j, (s, b))| IngestRow {
                    symbol: s.clone(),
                    bar: Bar {
                        ts: b.ts + shift,
                        ..*b
                    },
                    row: i + j + 1,
                })
                .collect();
            skipped += (end - i) - job.len();
            if !job.is_empty() && engine.submit_blocking(job).is_err() {
                return;
            }
            sent += (end - i) as u64;
            i = end;
        }
        if skipped > 0 {
            tracing::info!(
                "replay {}: {skipped} bars the store already held were skipped",
                cfg.path.display()
            );
        }
        if !cfg.repeat {
            tracing::info!("replay {}: done ({sent} bars)", cfg.path.display());
            return;
        }
        shift += span;
    }
}
