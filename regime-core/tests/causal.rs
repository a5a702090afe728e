//! Causality: labels at or before t never depend on bars after t.

use datasets::{generate, SynthConfig};
use regime_core::pipeline::{
    detect_panel, detect_series, pool_events, PanelMember, PanelStream, PipelineConfig,
    SymbolPipeline,
};

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

/// `bars` with every bar after `t` moved far away (prices and volume scaled).
fn changed_after(bars: &[regime_core::bars::Bar], t: usize) -> Vec<regime_core::bars::Bar> {
    let mut changed = bars.to_vec();
    for b in &mut changed[t + 1..] {
        b.open *= 1.7;
        b.high *= 1.9;
        b.low *= 1.5;
        b.close *= 1.8;
        b.volume *= 10.0;
    }
    changed
}

#[test]
fn changing_later_bars_changes_no_earlier_label() {
    let d = data(6000);
    let bars = &d[0].bars;
    let cfg = PipelineConfig::default();
    let full = detect_series(bars, &cfg).expect("detect");
    for t in [100usize, 1999, 4100] {
        let changed = changed_after(bars, t);
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

/// Component snapshots without their sampled latencies (timings differ run to run).
fn state_of(p: &SymbolPipeline) -> Vec<regime_core::pipeline::ComponentStatus> {
    let mut v = p.components();
    for c in &mut v {
        c.latency_us = 0.0;
    }
    v
}

#[test]
fn a_batch_on_two_threads_equals_streaming() {
    let d = data(9000);
    let bars = &d[0].bars;
    let cfg = PipelineConfig::default();
    let mut streamed = SymbolPipeline::new(cfg.clone()).expect("valid");
    let one: Vec<_> = bars.iter().map(|b| streamed.update(b)).collect();
    for two_threads in [false, true] {
        let mut batched = SymbolPipeline::new(cfg.clone()).expect("valid");
        let mut out = Vec::new();
        // in pieces, to cross chunk boundaries at odd places, then stream the rest
        for piece in bars[..8000].chunks(2999) {
            batched.update_batch(piece, two_threads, &mut out);
        }
        out.extend(bars[8000..].iter().map(|b| batched.update(b)));
        assert_eq!(out, one, "two_threads = {two_threads}");
        assert_eq!(state_of(&batched), state_of(&streamed));
        assert_eq!(batched.learned_weights(), streamed.learned_weights());
    }
}

#[test]
fn streaming_interleaved_symbols_equals_batch_panel() {
    let d = data(3000);
    let series: Vec<&[regime_core::bars::Bar]> = d.iter().map(|s| s.bars.as_slice()).collect();
    // pooled panel (the default): one PanelStream fed in time order
    let cfg = PipelineConfig::default();
    let batch = detect_panel(&series, &cfg).expect("panel");
    let mut panel = PanelStream::new(cfg.clone()).expect("panel stream");
    let mut streamed = vec![Vec::new(); d.len()];
    for _ in &d {
        panel.add_member().expect("member");
    }
    for t in 0..3000 {
        for (i, s) in d.iter().enumerate() {
            streamed[i].push(panel.update(i, &s.bars[t]).expect("member exists"));
        }
    }
    assert_eq!(streamed, batch);
    // each instrument alone, replaying the panel's pooling events: the same labels
    let events = pool_events(&series, &cfg).expect("events");
    assert!(!events.is_empty(), "3000 timestamps include pooling points");
    for (i, (s, want)) in series.iter().zip(&batch).enumerate() {
        let mut m = PanelMember::new(cfg.clone(), &events, i).expect("member");
        let got: Vec<_> = s.iter().map(|b| m.update(b)).collect();
        assert_eq!(&got, want);
    }
    // instruments alone: independent pipelines
    let alone = PipelineConfig {
        population_weight: 0.0,
        ..PipelineConfig::default()
    };
    let batch = detect_panel(&series, &alone).expect("panel");
    let mut engines: Vec<SymbolPipeline> = (0..d.len())
        .map(|_| SymbolPipeline::new(alone.clone()).expect("pipeline"))
        .collect();
    let mut streamed = vec![Vec::new(); d.len()];
    for t in 0..3000 {
        for (i, s) in d.iter().enumerate() {
            streamed[i].push(engines[i].update(&s.bars[t]));
        }
    }
    assert_eq!(streamed, batch);
}

fn panel_data(symbols: usize, bars: usize) -> Vec<datasets::SymbolData> {
    let cfg = SynthConfig {
        symbols,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, seed() ^ 0x9e37)
}

#[test]
fn pooled_panel_is_causal_across_instruments() {
    // pooling points at distinct timestamps 32, 64, …, 512, 1024 all fall inside
    let d = panel_data(6, 1300);
    let cfg = PipelineConfig::default();
    let series: Vec<&[regime_core::bars::Bar]> = d.iter().map(|s| s.bars.as_slice()).collect();
    let full = detect_panel(&series, &cfg).expect("panel");
    // later bars of one instrument change no earlier label of any instrument
    let t = 700;
    let changed = changed_after(&d[2].bars, t);
    let mut other_series = series.clone();
    other_series[2] = &changed;
    let other = detect_panel(&other_series, &cfg).expect("panel");
    for (i, (a, b)) in full.iter().zip(&other).enumerate() {
        assert_eq!(a[..=t], b[..=t], "instrument {i}: labels up to {t} changed");
    }
    // ... and do change later labels of the other instruments (the pool at 1024 sees them)
    assert_ne!(full[0][t + 1..], other[0][t + 1..], "pooling must matter");
    // a prefix in time gives exactly the first labels
    for k in [33usize, 600, 1025] {
        let part: Vec<&[regime_core::bars::Bar]> = series.iter().map(|s| &s[..k]).collect();
        let got = detect_panel(&part, &cfg).expect("panel");
        for (i, (a, b)) in full.iter().zip(&got).enumerate() {
            assert_eq!(a[..k], b[..], "instrument {i}, prefix {k}");
        }
    }
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

/// Bars from outside go through `try_update`: a bad bar, the last bar again (a forming bar
/// re-sent) or an older one is refused with its reason and changes nothing — the detections
/// after it are an undisturbed run's.
#[test]
fn try_update_refuses_bad_and_repeated_bars_and_changes_nothing() {
    use regime_core::bars::{Bar, RejectReason};
    let d = data(1500);
    let bars = &d[0].bars;
    let cfg = PipelineConfig::default();
    let full = detect_series(bars, &cfg).expect("detect");
    let mut p = SymbolPipeline::new(cfg).expect("valid");
    let mut got = Vec::new();
    for (i, b) in bars.iter().enumerate() {
        got.push(p.try_update(b).expect("a valid bar"));
        if i == 900 {
            assert_eq!(p.last_ts(), Some(b.ts));
            let again = p.try_update(b).expect_err("the same bar again");
            assert_eq!(again.key(), "timestamp_not_increasing");
            let older = Bar { ts: b.ts - 1, ..*b };
            assert!(matches!(
                p.try_update(&older),
                Err(RejectReason::TimestampNotIncreasing { previous, got }) if previous == b.ts && got == b.ts - 1
            ));
            let nan = Bar {
                close: f64::NAN,
                ts: b.ts + 1,
                ..*b
            };
            assert_eq!(p.try_update(&nan).expect_err("NaN").key(), "non_finite");
        }
    }
    assert_eq!(got, full);
}
