//! The model's one-step predictive log-likelihood on one symbol's bars, with the log excess
//! range read as the bars choose (`auto`) or fixed to `normal` or `log_gamma`: which density
//! fits a market's ranges (`benches/accuracy/README.md`, "Session 32").
//!
//!     cargo run --release -p regime-server --example range_density -- FILE SYMBOL [SKIP] [auto|normal|log_gamma]
//!
//! Prints the mean log predictive density per bar after the first SKIP bars (default 300),
//! the range-shape evidence's running mean at the end, and the share of bars read with the
//! log-gamma density.

use regime_core::hmm::{OnlineHmm, OnlineHmmConfig, RangeDensity};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        (3..=5).contains(&a.len()),
        "usage: range_density FILE SYMBOL [SKIP] [auto|normal|log_gamma]"
    );
    let skip: usize = a.get(3).map_or(Ok(300), |x| x.parse())?;
    let density: RangeDensity = a
        .get(4)
        .map_or(Ok(RangeDensity::Auto), |x| x.parse())
        .map_err(anyhow::Error::msg)?;
    let s = regime_server::io::read_symbol(std::path::Path::new(&a[1]), &a[2])?;
    anyhow::ensure!(
        s.bars.len() > skip,
        "{} has {} bars, not more than SKIP = {skip}",
        a[2],
        s.bars.len()
    );
    let mut h = OnlineHmm::new(OnlineHmmConfig {
        range_density: density,
        ..OnlineHmmConfig::default()
    })?;
    let (mut at, mut log_gamma) = (0.0, 0usize);
    for (i, b) in s.bars.iter().enumerate() {
        h.update(b);
        if i + 1 == skip {
            at = h.loglik();
        }
        if h.compiled().is_some_and(|c| c.range_is_log_gamma()) {
            log_gamma += 1;
        }
    }
    let n = s.bars.len() - skip;
    let (evidence, seen) = h.range_tail_evidence();
    println!(
        "{} ({density:?}): {n} bars scored, log predictive density {:.5} a bar; range evidence \
         {evidence:+.4} over {seen} ranges; log-gamma on {:.1}% of the bars",
        a[2],
        (h.loglik() - at) / n as f64,
        100.0 * log_gamma as f64 / s.bars.len() as f64
    );
    Ok(())
}
