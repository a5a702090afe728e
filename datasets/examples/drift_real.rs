//! Where the drift detector of the continuous-learning engine fires on a real OHLCV file
//! (CSV with `timestamp,symbol,open,high,low,close,volume`, e.g. the one
//! `benches/accuracy/real_data.py` writes to `benches/accuracy/out/arch_indices.csv`).
//! Each symbol learns alone; rows with a non-finite or non-positive price, or high < low,
//! are skipped.
//!
//!     cargo run --release -p datasets --example drift_real -- benches/accuracy/out/arch_indices.csv
use regime_core::bars::Bar;
use regime_core::pipeline::{Detail, PipelineConfig, SymbolPipeline};
use std::collections::BTreeMap;
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
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut by: BTreeMap<String, Vec<(String, Bar)>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 7 {
            return Err(format!("{path}:{}: expected 7 columns, found {}", i + 1, f.len()).into());
        }
        let x = |k: usize| f[k].trim().parse::<f64>().unwrap_or(f64::NAN);
        let b = Bar::new(i as i64 * 86_400_000, x(2), x(3), x(4), x(5), x(6));
        by.entry(f[1].to_string())
            .or_default()
            .push((f[0].to_string(), b));
    }
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
