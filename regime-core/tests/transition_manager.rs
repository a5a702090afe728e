//! The intelligent transition manager, per dimension: a new state wins when its probability
//! reaches `confidence_threshold` or leads the current state's by `switch_margin`; otherwise
//! the current label is held.
use datasets::{generate, SynthConfig};
use regime_core::pipeline::{detect_series, Detail, Detection, PipelineConfig, SymbolPipeline};

fn probs(d: &Detection, dim: usize) -> &[f64] {
    match dim {
        0 => &d.p_volatility,
        1 => &d.p_trend,
        _ => &d.p_structure,
    }
}

fn label(d: &Detection) -> [usize; 3] {
    let r = d.regime;
    [
        r.volatility as usize,
        r.trend as usize,
        r.structure as usize,
    ]
}

/// Label changes (over the three dimensions) of `dets`, after checking every bar against the
/// rule.
fn checked_switches(dets: &[Detection], cfg: &PipelineConfig) -> usize {
    let (th, margin) = (cfg.confidence_threshold, cfg.switch_margin);
    let wins = |p: &[f64], new: usize, old: usize| p[new] >= th || p[new] - p[old] >= margin;
    let mut switches = 0;
    for w in dets.windows(2) {
        let (prev, d) = (&w[0], &w[1]);
        if d.warming_up || prev.warming_up {
            continue;
        }
        let (was, is) = (label(prev), label(d));
        for dim in 0..3 {
            let p = probs(d, dim);
            let raw = d.raw[dim] as usize;
            if is[dim] != was[dim] {
                switches += 1;
                assert_eq!(is[dim], raw, "a switch goes to the pool's choice");
                assert!(
                    wins(p, is[dim], was[dim]),
                    "bar {}: dimension {dim} switched {} -> {} at {p:?}",
                    d.ts,
                    was[dim],
                    is[dim]
                );
            } else if raw != is[dim] {
                assert!(
                    !wins(p, raw, is[dim]),
                    "bar {}: dimension {dim} held {} against {raw} at {p:?}",
                    d.ts,
                    is[dim]
                );
            }
        }
    }
    switches
}

#[test]
fn a_switch_needs_the_threshold_or_the_margin_and_a_larger_margin_switches_less() {
    let cfg = SynthConfig {
        symbols: 1,
        bars: 6000,
        ..Default::default()
    };
    let bars = generate(&cfg, 16_001).remove(0).bars;
    let mut counts = Vec::new();
    for (th, margin) in [(0.7, 0.05), (0.7, 0.3), (0.9, 0.6)] {
        let p = PipelineConfig {
            confidence_threshold: th,
            switch_margin: margin,
            ..PipelineConfig::default()
        };
        let dets = detect_series(&bars, &p).expect("valid settings");
        counts.push(checked_switches(&dets, &p));
    }
    assert!(
        counts[0] > counts[1] && counts[1] > counts[2],
        "label changes at margins 0.05 / 0.3 / 0.6: {counts:?}"
    );
}

#[test]
fn the_status_snapshot_reports_both_settings() {
    let cfg = PipelineConfig {
        confidence_threshold: 0.8,
        switch_margin: 0.25,
        ..PipelineConfig::default()
    };
    let p = SymbolPipeline::new(cfg).expect("valid settings");
    let c = p
        .components()
        .into_iter()
        .find(|c| c.name == "intelligent_transition_manager")
        .expect("the component");
    let num = |k: &str| match c.details.get(k) {
        Some(Detail::Num(x)) => *x,
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(
        (num("confidence_threshold"), num("switch_margin")),
        (0.8, 0.25)
    );
}

#[test]
fn the_margin_is_checked() {
    let p = PipelineConfig {
        switch_margin: 1.5,
        ..PipelineConfig::default()
    };
    let e = p.validate().unwrap_err().to_string();
    assert!(e.contains("regime.switch_margin"), "{e}");
}
