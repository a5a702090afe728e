//! The intelligent transition manager, per dimension: a new state wins when its probability
//! reaches `confidence_threshold` or leads the current state's by the margin; otherwise the
//! current label is held. The margin is `switch_margin` where the dimension's posterior has
//! carried information recently, and grows toward the whole way (only the threshold switches)
//! where it has stood near chance.
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

/// The margin a dimension needs, as the manager sets it: `switch_margin` where the pool's best
/// state has stood at least 0.2 of the way from chance to certainty over the last 500 bars
/// (mean), rising linearly to 1 at chance.
struct Margins {
    info: [f64; 3],
    n: u64,
}

impl Margins {
    fn new() -> Self {
        Margins {
            info: [0.0; 3],
            n: 0,
        }
    }

    /// Take in a bar's posteriors (after warm-up), then the margins it is judged with.
    fn step(&mut self, d: &Detection, switch_margin: f64) -> [f64; 3] {
        self.n += 1;
        let a = 1.0 / (self.n as f64).min(500.0);
        for dim in 0..3 {
            let p = probs(d, dim);
            let chance = 1.0 / p.len() as f64;
            let i = (p[d.raw[dim] as usize] - chance) / (1.0 - chance);
            self.info[dim] += a * (i - self.info[dim]);
        }
        self.info
            .map(|i| switch_margin + (1.0 - switch_margin) * (1.0 - i / 0.2).max(0.0))
    }
}

/// Label changes (over the three dimensions) of `dets`, after checking every bar against the
/// rule.
fn checked_switches(dets: &[Detection], cfg: &PipelineConfig) -> usize {
    let th = cfg.confidence_threshold;
    let wins =
        |p: &[f64], new: usize, old: usize, margin: f64| p[new] >= th || p[new] - p[old] >= margin;
    let mut margins = Margins::new();
    let mut switches = 0;
    for w in dets.windows(2) {
        let (prev, d) = (&w[0], &w[1]);
        if d.warming_up {
            continue;
        }
        let m = margins.step(d, cfg.switch_margin);
        if prev.warming_up {
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
                    wins(p, is[dim], was[dim], m[dim]),
                    "bar {}: dimension {dim} switched {} -> {} at {p:?} (margin {})",
                    d.ts,
                    was[dim],
                    is[dim],
                    m[dim]
                );
            } else if raw != is[dim] {
                assert!(
                    !wins(p, raw, is[dim], m[dim]),
                    "bar {}: dimension {dim} held {} against {raw} at {p:?} (margin {})",
                    d.ts,
                    is[dim],
                    m[dim]
                );
            }
        }
    }
    switches
}

/// Label changes in dimension `dim` that a fixed margin would have made on the same
/// posteriors (the posteriors do not depend on the labels).
fn fixed_margin_switches(dets: &[Detection], cfg: &PipelineConfig, dim: usize) -> usize {
    let mut label = None;
    let mut switches = 0;
    for d in dets.iter().filter(|d| !d.warming_up) {
        let (p, raw) = (probs(d, dim), d.raw[dim] as usize);
        let Some(old) = label else {
            label = Some(raw);
            continue;
        };
        let wins = p[raw] >= cfg.confidence_threshold || p[raw] - p[old] >= cfg.switch_margin;
        if old != raw && wins {
            label = Some(raw);
            switches += 1;
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

/// Bars whose lag-one autocorrelation is the same in both structure states (as daily index
/// bars nearly are): the structure posterior wanders near 0.5 and every near-tie used to be a
/// switch. Read as uninformative, the dimension switches only on a clear lead, while the
/// volatility dimension, which the bars do inform, keeps the configured margin. (On such bars
/// the learned model may also find structure that is not there — seed 1 reads 0.40 and keeps
/// the margin —; seeds 2 and 4 read 0.10–0.12.)
#[test]
fn an_uninformative_dimension_switches_only_on_a_clear_lead() {
    let cfg = PipelineConfig::default();
    for seed in [2, 4] {
        let gen = SynthConfig {
            symbols: 1,
            bars: 6000,
            phi: [0.0, 0.0],
            ..Default::default()
        };
        let bars = generate(&gen, seed).remove(0).bars;
        let mut p = SymbolPipeline::new(cfg.clone()).expect("valid settings");
        let dets: Vec<Detection> = bars.iter().map(|b| p.update(b)).collect();
        checked_switches(&dets, &cfg);
        let c = p
            .components()
            .into_iter()
            .find(|c| c.name == "intelligent_transition_manager")
            .expect("the component");
        let list = |k: &str| match c.details.get(k) {
            Some(Detail::List(x)) => x.clone(),
            other => panic!("{k}: {other:?}"),
        };
        let (info, margin) = (list("information"), list("effective_margin"));
        assert!(
            info[2] < 0.2 && margin[2] > 0.2,
            "seed {seed}, structure: information {info:?}, margins {margin:?}"
        );
        assert!(
            info[0] > 0.5 && margin[0] == cfg.switch_margin,
            "seed {seed}, volatility: information {info:?}, margins {margin:?}"
        );
        let held = dets
            .windows(2)
            .filter(|w| !w[0].warming_up && label(&w[0])[2] != label(&w[1])[2])
            .count();
        let fixed = fixed_margin_switches(&dets, &cfg, 2);
        println!("seed {seed}: structure switches {held} (a fixed margin: {fixed}); information {info:?}");
        assert!(
            3 * held <= fixed,
            "seed {seed}: structure switches {held} against {fixed} at a fixed margin"
        );
    }
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
