//! Where the drift detector of the continuous-learning engine fires on a real OHLCV file
//! (CSV with `timestamp,symbol,open,high,low,close,volume`, e.g. the one
//! `benches/accuracy/real_data.py` writes to `benches/accuracy/out/arch_indices.csv`).
//! Each symbol learns alone; rows with a non-finite or non-positive price, or high < low,
//! are skipped.
//!
//!     cargo run --release -p datasets --example drift_real -- benches/accuracy/out/arch_indices.csv
use regime_core::pipeline::{Detail, PipelineConfig, SymbolPipeline};
use std::error::Error;

fn drifts(p: &SymbolPipeline) -> i64 {
    p.components()
        .into_iter()
        .find(|c| c.name == "continuous_learning_engine")
        .and_then(|c| match c.details.get("drifts_detected") {
            Some(Detail::Int(n)) => Some(*n),
            _ => None,
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: drift_real FILE.csv (timestamp,symbol,open,high,low,close,volume)")?;
    let by = datasets::read_ohlcv_csv(&path).map_err(|e| e.to_string())?;
    for (sym, rows) in by {
        let mut p = SymbolPipeline::new(PipelineConfig::default())?;
        let (mut last, mut n) = (0, 0usize);
        for (date, b) in &rows {
            let ok = [b.open, b.high, b.low, b.close]
                .iter()
                .all(|v| v.is_finite() && *v > 0.0)
                && b.high >= b.low;
            if !ok {
                continue;
            }
            p.update(b);
            n += 1;
            let d = drifts(&p);
            if d > last {
                println!("{sym}: drift alarm {d} at {date}");
                last = d;
            }
        }
        println!("{sym}: {last} alarms in {n} bars");
    }
    Ok(())
}
