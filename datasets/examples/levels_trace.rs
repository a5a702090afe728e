//! How one instrument's model names its volatility levels over time, on a real OHLCV file
//! (CSV `timestamp,symbol,open,high,low,close,volume`: the first symbol, or `SYMBOL`; as
//! `benches/accuracy/real_starts.py` writes `benches/accuracy/out/start_*.csv`). Every
//! `EVERY` bars (default 21) it prints the window's close-to-close RMS return (%), the final
//! volatility labels' counts (low / medium / high), how many bars each member called low
//! (hmm, threshold, kalman, jump, changepoint, hmm_averaged), and the model as it stands:
//! σ of the three levels (%), their stay probabilities, the range channel's level means,
//! the gap's σ per level (%) and the model version (it moves at refits only).
//!
//!     cargo run --release -p datasets --example levels_trace -- benches/accuracy/out/start_NDX2013.csv 42
use regime_core::pipeline::{PipelineConfig, SymbolPipeline, N_METHODS};
use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or(
        "usage: levels_trace FILE.csv [EVERY] (timestamp,symbol,open,high,low,close,volume)",
    )?;
    let every: usize = match args.next() {
        Some(s) => s.parse().map_err(|e| format!("EVERY {s:?}: {e}"))?,
        None => 21,
    };
    if every == 0 {
        return Err("EVERY must be at least 1".into());
    }
    let by = datasets::read_ohlcv_csv(&path).map_err(|e| e.to_string())?;
    let (symbol, rows) = match args.next() {
        Some(sym) => {
            let rows = by
                .get(&sym)
                .ok_or(format!("{path}: no rows of symbol {sym:?}"))?;
            (sym, rows)
        }
        None => by
            .iter()
            .next()
            .map(|(s, r)| (s.clone(), r))
            .ok_or(format!("{path}: no rows"))?,
    };
    let mut p = SymbolPipeline::new(PipelineConfig::default())?;
    let (mut labels, mut low_by) = ([0usize; 3], [0usize; N_METHODS]);
    let (mut r2, mut prev, mut k) = (0.0, f64::NAN, 0);
    for (date, b) in rows {
        let d = match p.try_update(b) {
            Ok(d) => d,
            Err(why) => {
                eprintln!("{symbol} {date}: skipped ({why:?})");
                continue;
            }
        };
        if prev.is_finite() && b.close > 0.0 {
            r2 += (b.close / prev).ln().powi(2);
        }
        prev = b.close;
        labels[d.regime.volatility as usize] += 1;
        for (m, said) in d.methods.iter().enumerate() {
            low_by[m] += usize::from(said[0] == 0);
        }
        k += 1;
        if k < every {
            continue;
        }
        let h = p.hmm();
        print!(
            "{symbol} {date} rms {:.2} labels {:>3}/{:>3}/{:>3} low by {:?}",
            (r2 / every as f64).sqrt() * 100.0,
            labels[0],
            labels[1],
            labels[2],
            low_by
        );
        match h.params() {
            Some(q) => println!(
                " | sigma {:.2} {:.2} {:.2} stay {:.3} {:.3} {:.3} range {:.2} {:.2} {:.2} gap {:.2} {:.2} {:.2} v{}",
                q.sigma[0] * 100.0,
                q.sigma[1] * 100.0,
                q.sigma[2] * 100.0,
                q.a_vol[0][0],
                q.a_vol[1][1],
                q.a_vol[2][2],
                q.range_mean[0],
                q.range_mean[1],
                q.range_mean[2],
                q.gap_var[0].sqrt() * 100.0,
                q.gap_var[1].sqrt() * 100.0,
                q.gap_var[2].sqrt() * 100.0,
                h.model_version()
            ),
            None => println!(" | warming up"),
        }
        (labels, low_by, r2, k) = ([0; 3], [0; N_METHODS], 0.0, 0);
    }
    Ok(())
}
