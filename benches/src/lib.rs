//! Shared inputs for the benchmarks.

use datasets::{generate, SynthConfig};
use regime_core::bars::Bar;

/// `symbols` synthetic series of `bars` bars (fixed seed).
pub fn panel(symbols: usize, bars: usize) -> Vec<Vec<Bar>> {
    let cfg = SynthConfig {
        symbols,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, 777).into_iter().map(|d| d.bars).collect()
}
