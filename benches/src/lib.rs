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
    let n = symbols * bars;
    let mut cols: [Vec<f32>; 5] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut offsets = Vec::with_capacity(symbols + 1);
    let mut models = Vec::with_capacity(symbols);
    offsets.push(0);
    for s in 0..symbols {
        let d = &data[s % data.len()];
        for b in &d.bars {
            cols[0].push(b.open as f32);
            cols[1].push(b.high as f32);
            cols[2].push(b.low as f32);
            cols[3].push(b.close as f32);
            cols[4].push(b.volume as f32);
        }
        offsets.push(cols[3].len());
        models.push(d.true_params.clone());
    }
    let [o, h, l, c, v] = cols;
    (
        regime_core::backend::Panel::new(o, h, l, c, v, offsets).expect("valid panel"),
        regime_core::backend::ParamTable::new(&models).expect("valid models"),
    )
}
