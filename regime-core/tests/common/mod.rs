//! Helpers the robustness tests share: a generated series, deterministic noise, one causal
//! run scored on its volatility labels, and the volatility state a filter step names.
// each test crate that includes this module uses part of it
#![allow(dead_code)]

use datasets::{generate, SymbolData, SynthConfig};
use regime_core::bars::Bar;
use regime_core::hmm::{dims, HmmStep};
use regime_core::pipeline::{PipelineConfig, SymbolPipeline};

/// The volatility state a filter step names (its marginal's argmax).
pub(crate) fn volatility(s: &HmmStep) -> usize {
    let (pv, _, _) = dims(&s.joint);
    (0..3).max_by(|&x, &y| pv[x].total_cmp(&pv[y])).unwrap_or(1)
}

/// One generated symbol with the default settings.
pub(crate) fn series(bars: usize, seed: u64) -> SymbolData {
    let cfg = SynthConfig {
        symbols: 1,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, seed).remove(0)
}

/// A uniform number in (0, 1) from a counter (splitmix64): deterministic noise.
pub(crate) fn uniform(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A causal run of the default pipeline over `bars`, scored from bar `from` on.
pub(crate) struct VolatilityRun {
    /// Share of the scored bars whose volatility label is the true one.
    pub(crate) accuracy: f64,
    /// Volatility label changes per 252 scored bars.
    pub(crate) switches_a_year: f64,
    /// The pipeline after the last bar.
    pub(crate) pipeline: SymbolPipeline,
}

pub(crate) fn volatility_run(bars: &[Bar], labels: &[[u8; 3]], from: usize) -> VolatilityRun {
    let mut p = SymbolPipeline::new(PipelineConfig::default()).expect("default settings");
    let (mut hits, mut switches, mut last) = (0usize, 0usize, None);
    for (t, b) in bars.iter().enumerate() {
        let v = p.update(b).regime.indices()[0];
        if t >= from {
            hits += usize::from(v == labels[t][0] as usize);
            switches += usize::from(last.is_some_and(|l| l != v));
        }
        last = Some(v);
    }
    let n = (bars.len() - from) as f64;
    VolatilityRun {
        accuracy: hits as f64 / n,
        switches_a_year: switches as f64 / n * 252.0,
        pipeline: p,
    }
}
