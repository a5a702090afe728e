//! `regime_accuracy`, the number the manual alerts on (warning < 85%, critical < 80%): a
//! healthy pipeline must read above the warning line, labels that no longer follow the
//! market must read below the critical one, and a pipeline that goes wrong after a long
//! healthy run must show it within a few hundred bars, not be averaged away by its past.

use datasets::{generate, SynthConfig};
use regime_core::bars::Bar;
use regime_core::pipeline::{PipelineConfig, SymbolPipeline};

const WARNING: f64 = 0.85;
const CRITICAL: f64 = 0.80;

fn series(seed: u64, bars: usize) -> Vec<Bar> {
    let cfg = SynthConfig {
        symbols: 1,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, seed).remove(0).bars
}

/// A transition manager that switches a label only at a probability of 0.9999 or by a
/// margin of 1: the labels stay about where they settled, as a mis-set one keeps them.
fn stuck(p: &mut SymbolPipeline) {
    p.set_transition_settings(0.9999, 1.0)
        .expect("valid settings");
}

fn run(bars: &[Bar], p: &mut SymbolPipeline) {
    for b in bars {
        p.update(b);
    }
}

#[test]
fn a_healthy_pipeline_reads_above_the_warning_line_and_stuck_labels_below_critical() {
    for seed in [7101u64, 7102, 7103] {
        let bars = series(seed, 6_000);
        let mut healthy = SymbolPipeline::new(PipelineConfig::default()).expect("defaults");
        run(&bars, &mut healthy);
        let a = healthy.regime_accuracy().expect("bars were evaluated");
        let plain = healthy.agreement_all_bars().expect("bars were evaluated");
        let plain_mean = plain.iter().sum::<f64>() / 3.0;
        println!(
            "seed {seed}: healthy regime_accuracy {a:.3} (by dimension {:?}); \
             plain agreement {plain_mean:.3} {plain:?}",
            healthy.dimension_accuracy()
        );
        assert!(a >= WARNING, "seed {seed}: a healthy pipeline reads {a:.3}");

        let mut broken = SymbolPipeline::new(PipelineConfig::default()).expect("defaults");
        stuck(&mut broken);
        run(&bars, &mut broken);
        let b = broken.regime_accuracy().expect("bars were evaluated");
        println!("seed {seed}: stuck labels read {b:.3}");
        assert!(b < CRITICAL, "seed {seed}: stuck labels read {b:.3}");
    }
}

#[test]
fn going_wrong_after_a_long_healthy_run_shows_within_1500_bars() {
    let bars = series(7104, 16_000);
    let mut p = SymbolPipeline::new(PipelineConfig::default()).expect("defaults");
    run(&bars[..12_000], &mut p);
    let before = p.regime_accuracy().expect("bars were evaluated");
    let plain_before = p.agreement_all_bars().expect("bars were evaluated");
    assert!(
        before >= WARNING,
        "healthy for 12,000 bars, reads {before:.3}"
    );
    stuck(&mut p);
    run(&bars[12_000..13_500], &mut p);
    let after = p.regime_accuracy().expect("bars were evaluated");
    let plain_after = p.agreement_all_bars().expect("bars were evaluated");
    println!(
        "before {before:.3}, 1,500 bars stuck: {after:.3}; the plain agreement since the \
         start moved {plain_before:?} -> {plain_after:?}"
    );
    assert!(
        after < CRITICAL,
        "1,500 bars after the labels stuck, regime_accuracy still reads {after:.3}"
    );
}
