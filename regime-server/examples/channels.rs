//! Diagnose which emission channel favours which volatility state over a date range:
//! mean per-bar log-likelihood difference (state a minus state b) per channel.
//! `cargo run --release -p regime-server --example channels -- FILE SYMBOL FROM_MS TO_MS`
// indexes parameters and sums by state in lockstep
#![allow(clippy::needless_range_loop)]

use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};
use regime_core::model::ObsExtractor;

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(a.len() == 5, "usage: channels FILE SYMBOL FROM_MS TO_MS");
    let (from, to): (i64, i64) = (a[3].parse()?, a[4].parse()?);
    let s = regime_server::io::read_symbol(std::path::Path::new(&a[1]), &a[2])?;
    let mut h = OnlineHmm::new(OnlineHmmConfig::default())?;
    let mut ex = ObsExtractor::new();
    let mut sums = [[0.0f64; 3]; 4]; // channel x state
    let mut n = [0usize; 4];
    for b in &s.bars {
        let o = ex.update(b);
        h.update(b);
        if b.ts < from || b.ts > to {
            continue;
        }
        let Some(p) = h.params() else { continue };
        for v in 0..3 {
            let sg = p.sigma[v];
            if !o.r.is_nan() {
                let z = o.r / sg;
                sums[0][v] += -sg.ln() - 3.0 * (1.0 + z * z / 3.0).ln();
            }
            if !o.gap.is_nan() {
                // the model's density (Student t(5) or normal) and weight
                let q = o.gap * o.gap / p.gap_var[v];
                let kernel = if p.gap_student {
                    3.0 * (q / 3.0).ln_1p()
                } else {
                    0.5 * q
                };
                sums[1][v] += p.gap_weight * (-0.5 * p.gap_var[v].ln() - kernel);
            }
            if !o.log_range.is_nan() {
                sums[2][v] +=
                    -0.5 * p.range_weight * (o.log_range - p.range_mean[v]).powi(2) / p.range_var;
            }
            if !o.rel_volume.is_nan() {
                sums[3][v] += -0.5 * (o.rel_volume - p.volume_mean[v]).powi(2) / p.volume_var;
            }
        }
        for (c, x) in [o.r, o.gap, o.log_range, o.rel_volume].iter().enumerate() {
            if !x.is_nan() {
                n[c] += 1;
            }
        }
    }
    for (c, name) in ["return", "gap", "range", "volume"].iter().enumerate() {
        let m = |v: usize| sums[c][v] / n[c].max(1) as f64;
        println!(
            "{name:>7}: bars {:>4}  mean loglik low-medium {:+.3}  medium-high {:+.3}",
            n[c],
            m(0) - m(1),
            m(1) - m(2)
        );
    }
    Ok(())
}
