//! Write speed of the embedded store alone: `rows` rows of `symbols` symbols committed in
//! groups of `batch` (as the service's writer does), on a fresh database file in `dir`.
//! The rows are built first; only the inserts and commits are timed.
//!
//! ```text
//! cargo run --release -p regime-server --example store_write -- [rows] [batch] [symbols] [dir]
//! ```

use regime_server::store::{Embedded, HistoryRow, Store};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| a.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (rows, batch, symbols) = (arg(0, 1_000_000), arg(1, 4_000).max(1), arg(2, 4).max(1));
    let dir = std::path::PathBuf::from(a.get(3).cloned().unwrap_or_else(|| "/tmp".into()))
        .join(format!("store_write_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("history.db");
    let mut store = Embedded::open_with_cache(&path, 16 * 1024)?;
    let names: Vec<String> = (0..symbols).map(|i| format!("SYM{i:03}")).collect();
    let make = |i: usize| {
        let id = (i * 7 % 18) as u8;
        HistoryRow {
            ts: 1_700_000_000_000 + (i / symbols) as i64 * 60_000,
            symbol: names[i % symbols].clone(),
            regime_id: id,
            volatility: id / 6,
            trend: (id / 2) % 3,
            structure: id % 2,
            confidence: 0.8,
            p_volatility: [0.1, 0.2, 0.7],
            p_trend: [0.3, 0.3, 0.4],
            p_structure: [0.6, 0.4],
            model_version: 3,
        }
    };
    // rows are built before the clock starts: this measures the store only
    let all: Vec<HistoryRow> = (0..rows).map(make).collect();
    let t = Instant::now();
    for group in all.chunks(batch) {
        store.insert(group)?;
    }
    let s = t.elapsed().as_secs_f64();
    let page: i64 =
        rusqlite::Connection::open(&path)?.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    println!(
        "{rows} rows in groups of {batch}, {symbols} symbols, page size {page}: {s:.2} s, {:.0} rows/s, {:.2} µs/row",
        rows as f64 / s,
        s * 1e6 / rows as f64
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
