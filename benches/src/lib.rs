//! Shared inputs for the benchmarks.

use datasets::{generate, SymbolData, SynthConfig};
use regime_core::bars::Bar;

/// `symbols` synthetic series of `bars` bars (fixed seed).
pub fn panel(symbols: usize, bars: usize) -> Vec<Vec<Bar>> {
    generated(symbols, bars)
        .into_iter()
        .map(|d| d.bars)
        .collect()
}

/// The series of [`panel`] with their true labels and parameters.
pub fn generated(symbols: usize, bars: usize) -> Vec<SymbolData> {
    let cfg = SynthConfig {
        symbols,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, 777)
}

/// A panel of `symbols` × `bars` for the compute backends, tiled from `distinct` generated
/// series (generating 500 M bars outright would take minutes), each with its true model.
pub fn backend_panel(
    symbols: usize,
    bars: usize,
    distinct: usize,
) -> (
    regime_core::backend::Panel,
    regime_core::backend::ParamTable,
) {
    let cfg = SynthConfig {
        symbols: distinct.max(1),
        bars,
        ..SynthConfig::default()
    };
    let data = generate(&cfg, 4242);
    let refs: Vec<&[Bar]> = (0..symbols)
        .map(|s| data[s % data.len()].bars.as_slice())
        .collect();
    let models: Vec<_> = (0..symbols)
        .map(|s| data[s % data.len()].true_params.clone())
        .collect();
    (
        regime_core::backend::Panel::from_series(&refs).expect("valid panel"),
        regime_core::backend::ParamTable::new(&models).expect("valid models"),
    )
}
