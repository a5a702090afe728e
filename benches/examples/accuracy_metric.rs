//! What `regime_accuracy` (the number the manual alerts on: warning < 85%, critical < 80%)
//! reads on a CSV of bars (`timestamp, [symbol,] open, high, low, close, volume`), per
//! symbol, streamed bar by bar as the service runs it: for a healthy pipeline and for one
//! whose labels are stuck (a transition manager set to switch only at 0.9999 or by a margin
//! of 1), with the plain agreement (every disagreement wholly wrong) next to it.
//!
//! `cargo run --release -p regime-benches --example accuracy_metric -- FILE.csv [FILE.csv ...]`
use regime_core::bars::Bar;
use regime_core::pipeline::{PipelineConfig, SymbolPipeline};
use std::collections::BTreeMap;
use std::error::Error;

/// Bars per symbol, in file order (timestamps are replaced by the row number: the pipeline
/// needs them increasing, nothing else).
fn read(path: &str) -> Result<BTreeMap<String, Vec<Bar>>, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or(format!("{path}: empty"))?
        .split(',')
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or(format!("{path}: no column {name}"))
    };
    let cols = [
        col("open")?,
        col("high")?,
        col("low")?,
        col("close")?,
        col("volume")?,
    ];
    let sym = col("symbol").ok();
    let mut out: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let mut x = [0.0; 5];
        for (v, &c) in x.iter_mut().zip(&cols) {
            let s = f
                .get(c)
                .ok_or(format!("{path}: row {}: too few fields", i + 2))?;
            *v = s
                .parse()
                .map_err(|e| format!("{path}: row {}: {s:?}: {e}", i + 2))?;
        }
        let name = sym.and_then(|c| f.get(c)).unwrap_or(&"-").to_string();
        let bars = out.entry(name).or_default();
        let ts = bars.len() as i64 * 86_400_000;
        bars.push(Bar::new(ts, x[0], x[1], x[2], x[3], x[4]));
    }
    Ok(out)
}

/// (end value, windowed readings from bar 1,000 on sorted, plain agreement mean at the end)
fn run(bars: &[Bar], stuck: bool) -> Result<(f64, Vec<f64>, f64), Box<dyn Error>> {
    let mut p = SymbolPipeline::new(PipelineConfig::default())?;
    if stuck {
        p.set_transition_settings(0.9999, 1.0)?;
    }
    let mut seen = Vec::new();
    for (i, b) in bars.iter().enumerate() {
        p.update(b);
        if i >= 1_000 {
            seen.extend(p.regime_accuracy());
        }
    }
    seen.sort_by(f64::total_cmp);
    let end = p.regime_accuracy().unwrap_or(f64::NAN);
    let plain = p
        .agreement_all_bars()
        .map_or(f64::NAN, |a| a.iter().sum::<f64>() / 3.0);
    Ok((end, seen, plain))
}

fn main() -> Result<(), Box<dyn Error>> {
    println!("file symbol bars | healthy: end min p5 p50 plain | stuck: end p50 plain");
    for path in std::env::args().skip(1) {
        for (sym, bars) in read(&path)? {
            let (he, hs, hp) = run(&bars, false)?;
            let (se, ss, sp) = run(&bars, true)?;
            let q = |v: &[f64], k: usize| v.get(v.len() * k / 100).copied().unwrap_or(f64::NAN);
            println!(
                "{path} {sym} {} | {he:.3} {:.3} {:.3} {:.3} {hp:.3} | {se:.3} {:.3} {sp:.3}",
                bars.len(),
                q(&hs, 0),
                q(&hs, 5),
                q(&hs, 50),
                q(&ss, 50),
            );
        }
    }
    Ok(())
}
