//! A panel shares the spacing of its volatility levels: each instrument has its own scale
//! (the generator multiplies every σ by a per-symbol factor), but low / medium / high sit at
//! the same ratios (½ : 1 : 2), which one instrument's 2,000 bars estimate poorly.

use datasets::{generate, SynthConfig};
use regime_core::pipeline::{PanelStream, PipelineConfig};

/// Each member's `ln(σ_low / σ_medium)` and `ln(σ_high / σ_medium)` after streaming a
/// 40 × 2,000 panel (seed 71) with the given population weight (0: each learns alone).
fn learned_ratios(population_weight: f64) -> Vec<[f64; 2]> {
    let cfg = SynthConfig {
        symbols: 40,
        bars: 2_000,
        ..SynthConfig::default()
    };
    let data = generate(&cfg, 71);
    let pc = PipelineConfig {
        population_weight,
        ..PipelineConfig::default()
    };
    let mut panel = PanelStream::new(pc).expect("panel");
    for _ in &data {
        panel.add_member().expect("member");
    }
    for t in 0..cfg.bars {
        for (i, s) in data.iter().enumerate() {
            panel.update(i, &s.bars[t]).expect("member exists");
        }
    }
    (0..data.len())
        .map(|i| {
            let p = panel
                .member(i)
                .expect("member")
                .hmm()
                .params()
                .expect("fitted");
            [
                (p.sigma[0] / p.sigma[1]).ln(),
                (p.sigma[2] / p.sigma[1]).ln(),
            ]
        })
        .collect()
}

#[test]
fn pooled_volatility_spacing_comes_near_the_truth() {
    let truth = [0.5f64.ln(), 2.0f64.ln()];
    let rms = |r: &[[f64; 2]], k: usize| {
        (r.iter().map(|x| (x[k] - truth[k]).powi(2)).sum::<f64>() / r.len() as f64).sqrt()
    };
    let pooled = learned_ratios(2_000.0);
    let alone = learned_ratios(0.0);
    for (k, name) in ["low", "high"].iter().enumerate() {
        let (p, a) = (rms(&pooled, k), rms(&alone, k));
        println!(
            "ln(σ_{name} / σ_medium): RMS error over 40 instruments, pooled {p:.3}, alone {a:.3}"
        );
        assert!(p < 0.1, "{name}: pooled RMS error {p:.3}");
        assert!(p < 0.5 * a, "{name}: pooled {p:.3} against alone {a:.3}");
    }
}
