//! Causality: labels at or before t never depend on bars after t.

use datasets::{generate, SynthConfig};
use regime_core::pipeline::{detect_panel, detect_series, PipelineConfig, SymbolPipeline};

fn seed() -> u64 {
    let s = std::env::var("REGIME_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261128);
    println!("seed {s}");
    s
}

fn data(bars: usize) -> Vec<datasets::SymbolData> {
    let cfg = SynthConfig {
        symbols: 2,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, seed())
}

#[test]
fn changing_later_bars_changes_no_earlier_label() {
    let d = data(6000);
    let bars = &d[0].bars;
    let cfg = PipelineConfig::default();
    let full = detect_series(bars, &cfg).expect("detect");
    for t in [100usize, 1999, 4100] {
        let mut changed = bars.clone();
        for b in &mut changed[t + 1..] {
            b.open *= 1.7;
            b.high *= 1.9;
            b.low *= 1.5;
            b.close *= 1.8;
            b.volume *= 10.0;
        }
        let other = detect_series(&changed, &cfg).expect("detect");
        assert_eq!(full[..=t], other[..=t], "labels up to {t} changed");
        assert_ne!(
            full[t + 1..],
            other[t + 1..],
            "the change must matter later"
        );
    }
}

#[test]
fn a_prefix_gives_exactly_the_first_labels() {
    let d = data(5000);
    let bars = &d[1].bars;
    let cfg = PipelineConfig::default();
    let full = detect_series(bars, &cfg).expect("detect");
    for k in [1usize, 37, 2048, 4097] {
        let part = detect_series(&bars[..k], &cfg).expect("detect");
        assert_eq!(part[..], full[..k], "prefix {k}");
    }
}

#[test]
fn streaming_interleaved_symbols_equals_batch_panel() {
    let d = data(3000);
    let cfg = PipelineConfig::default();
    let series: Vec<&[regime_core::bars::Bar]> = d.iter().map(|s| s.bars.as_slice()).collect();
    let batch = detect_panel(&series, &cfg).expect("panel");
    let mut engines: Vec<SymbolPipeline> = (0..d.len())
        .map(|_| SymbolPipeline::new(cfg.clone()).expect("pipeline"))
        .collect();
    let mut streamed = vec![Vec::new(); d.len()];
    for t in 0..3000 {
        for (i, s) in d.iter().enumerate() {
            streamed[i].push(engines[i].update(&s.bars[t]));
        }
    }
    assert_eq!(streamed, batch);
}

#[test]
fn detection_beats_chance_clearly_on_synthetic_data() {
    // a guard against silent breakage, far below the measured accuracy (see README)
    let d = data(4000);
    let cfg = PipelineConfig::default();
    let det = detect_series(&d[0].bars, &cfg).expect("detect");
    let start = 2800;
    let hits = (start..4000)
        .filter(|&t| det[t].regime.indices()[0] == d[0].labels[t][0] as usize)
        .count();
    let acc = hits as f64 / 1200.0;
    println!("volatility accuracy {acc:.3}");
    assert!(acc > 0.8, "volatility accuracy {acc}");
    for x in &det {
        let s: f64 = x.p_volatility.iter().sum();
        assert!((s - 1.0).abs() < 1e-9 && x.confidence > 0.0 && x.confidence <= 1.0);
    }
}

#[test]
fn components_report_every_spec_name() {
    let d = data(1500);
    let mut p = SymbolPipeline::new(PipelineConfig::default()).expect("pipeline");
    for b in &d[0].bars {
        p.update(b);
    }
    let comps = p.components();
    let names: Vec<&str> = comps.iter().map(|c| c.name).collect();
    assert_eq!(names, regime_core::pipeline::ALL_COMPONENTS.to_vec());
    for c in &comps {
        assert_eq!(
            c.critical,
            regime_core::pipeline::CRITICAL.contains(&c.name)
        );
        assert_eq!(c.last_update_ts, d[0].bars.last().map(|b| b.ts));
    }
    assert!(p.regime_accuracy().is_some());
}

#[test]
fn bad_settings_name_their_key() {
    let cfg = PipelineConfig {
        confidence_threshold: 1.5,
        ..PipelineConfig::default()
    };
    let e = SymbolPipeline::new(cfg).expect_err("invalid");
    assert!(e.to_string().contains("regime.confidence_threshold"), "{e}");
}

#[test]
fn warm_up_reports_the_centre_with_low_confidence() {
    let d = data(100);
    let det = detect_series(&d[0].bars, &PipelineConfig::default()).expect("detect");
    let first = &det[0];
    assert!(first.warming_up);
    assert_eq!(first.regime.snake_name(), "medium_vol_neutral_trending");
    assert!((first.confidence - 1.0 / 18.0).abs() < 1e-9);
    assert!(!det[99].warming_up);
}
