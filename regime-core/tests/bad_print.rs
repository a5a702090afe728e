//! One bad print (a price ten times too high for one bar, as a fat-fingered or mis-scaled
//! tick arrives) must not change what the engine says for the rest of the series.

use datasets::{generate, SynthConfig};
use regime_core::bars::Bar;
use regime_core::pipeline::{detect_series, PipelineConfig};

/// Share of bars from `from` on whose volatility label agrees between the two runs.
fn volatility_agreement(bars: &[Bar], tick_at: usize, from: usize) -> f64 {
    let mut bad = bars.to_vec();
    let b = &mut bad[tick_at];
    (b.open, b.high, b.low, b.close) = (b.open * 10.0, b.high * 10.0, b.low * 10.0, b.close * 10.0);
    agreement_from(bars, &bad, from)
}

/// Share of bars from `from` on whose volatility label agrees between `bars` and `changed`.
fn agreement_from(bars: &[Bar], changed: &[Bar], from: usize) -> f64 {
    let cfg = PipelineConfig::default();
    let clean = detect_series(bars, &cfg).expect("clean run");
    let other = detect_series(changed, &cfg).expect("run with the change");
    let same = clean[from..]
        .iter()
        .zip(&other[from..])
        .filter(|(a, b)| a.regime.indices()[0] == b.regime.indices()[0])
        .count();
    same as f64 / (bars.len() - from) as f64
}

#[test]
fn a_bad_print_changes_nothing_a_few_weeks_later() {
    // the print lands while batch EM still refits over the whole history (the first 4,096
    // bars) and, in another run, after it. Without bounds on what learning takes from one
    // bar, the ±2.3 log returns it makes took a volatility state for themselves.
    let mut worst = (1.0f64, 0u64, 0usize);
    for (seed, at) in [
        (61u64, 1_500usize),
        (62, 3_000),
        (63, 8_000),
        (64, 10),
        (65, 60),
        (66, 300),
    ] {
        let cfg = SynthConfig {
            symbols: 1,
            bars: 12_000,
            ..SynthConfig::default()
        };
        let bars = generate(&cfg, seed).remove(0).bars;
        let agree = volatility_agreement(&bars, at, at + 50);
        println!("seed {seed}, bad print at bar {at}: volatility labels agree on {agree:.3} of the bars from 50 after it");
        if agree < worst.0 {
            worst = (agree, seed, at);
        }
    }
    let (agree, seed, at) = worst;
    assert!(
        agree >= 0.98,
        "seed {seed}: a bad print at bar {at} changed {:.1}% of the later volatility labels",
        100.0 * (1.0 - agree)
    );
}

/// Volatility-label agreement from `from` on between a series and the same series with its
/// volume multiplied by `factor` from bar `at` on (a split's share count, a vendor switching
/// to consolidated volume).
fn volume_step_agreement(bars: &[Bar], at: usize, factor: f64, from: usize) -> f64 {
    let mut stepped = bars.to_vec();
    for b in &mut stepped[at..] {
        b.volume *= factor;
    }
    agreement_from(bars, &stepped, from)
}

/// A permanent step in the volume level (a 3:1 split triples the share count; a feed that
/// switches to consolidated volume) says nothing about volatility: a year after it, the
/// volatility labels are (almost) the ones the series without the step gets. The volume
/// channel was measured against a 1,000-bar average of log volume only, so a step read as
/// high or low volume for years (arch's S&P 500 with a 3:1 split in March 2012: 35% of the
/// later volatility labels changed; here, ×10: 10.7%); the level the volatility states do
/// not explain is now tracked with a 250-bar memory (3.7%).
#[test]
fn a_volume_level_step_is_forgotten_within_a_year() {
    let mut worst = (1.0f64, 0u64, 0.0f64);
    for (seed, factor) in [(71u64, 3.0), (72, 0.25), (73, 10.0)] {
        let cfg = SynthConfig {
            symbols: 1,
            bars: 9_000,
            ..SynthConfig::default()
        };
        let bars = generate(&cfg, seed).remove(0).bars;
        let agree = volume_step_agreement(&bars, 5_000, factor, 5_250);
        println!("seed {seed}, volume ×{factor} from bar 5000: volatility labels agree on {agree:.3} of the bars from 5250");
        if agree < worst.0 {
            worst = (agree, seed, factor);
        }
    }
    let (agree, seed, factor) = worst;
    assert!(
        agree >= 0.95,
        "seed {seed}: volume ×{factor} changed {:.1}% of the volatility labels a year later",
        100.0 * (1.0 - agree)
    );
}

/// Share of bars from `from` on whose label in dimension `dim` is the true one.
fn accuracy_from(labels: &[[u8; 3]], bars: &[Bar], dim: usize, from: usize) -> f64 {
    let out = detect_series(bars, &PipelineConfig::default()).expect("valid settings");
    let hits = out[from..]
        .iter()
        .zip(&labels[from..])
        .filter(|(d, l)| d.regime.indices()[dim] == l[dim] as usize)
        .count();
    hits as f64 / (bars.len() - from) as f64
}

/// Prices scaled by a factor from one bar on — a unit change (pence to pounds), an
/// unadjusted split — are a break in the series, not a market move: the labels after it
/// are as right as without it. Clipped for learning at 20 root-mean-square returns, the
/// ×0.01 step still counted as a 20-RMS return paired with the next bar's, which pulled both
/// structure states' autoregression toward 0: on seed 98410 the structure labels of the
/// 2,000 bars after the step were right on 0.706 of the bars instead of 0.824.
#[test]
fn a_unit_change_in_the_prices_costs_the_later_labels_nothing() {
    for (seed, factor) in [
        (98410u64, 0.01),
        (98411, 0.01),
        (98412, 100.0),
        (98413, 0.5),
    ] {
        let cfg = SynthConfig {
            symbols: 1,
            bars: 5_000,
            ..SynthConfig::default()
        };
        let d = generate(&cfg, seed).remove(0);
        let mut stepped = d.bars.clone();
        for b in &mut stepped[2_500..] {
            (b.open, b.high, b.low, b.close) = (
                b.open * factor,
                b.high * factor,
                b.low * factor,
                b.close * factor,
            );
        }
        for (dim, name, slack) in [
            (0, "volatility", 0.005),
            (1, "trend", 0.02),
            (2, "structure", 0.01),
        ] {
            let plain = accuracy_from(&d.labels, &d.bars, dim, 3_000);
            let after = accuracy_from(&d.labels, &stepped, dim, 3_000);
            println!("seed {seed}, prices ×{factor} from bar 2500: {name} right on {after:.3} of the bars from 3000 (without the step {plain:.3})");
            assert!(
                after >= plain - slack,
                "seed {seed}: prices ×{factor} took {name} from {plain:.3} to {after:.3}"
            );
        }
    }
}

/// A series that starts with its price barely moving (ten bars of 0.001% moves: a new
/// listing before its first trades, a pinned price) and then moves as markets do: the
/// return scale learning clips against catches up within a few bars. Had a break (see the
/// test above) been kept out of that scale, every later move would have read as a break
/// and never been learned (volatility right on 0.861 of the bars instead of 0.966).
#[test]
fn a_series_that_starts_without_moving_is_learned_once_it_moves() {
    let cfg = SynthConfig {
        symbols: 1,
        bars: 5_000,
        ..SynthConfig::default()
    };
    let d = generate(&cfg, 98410).remove(0);
    let first = d.bars[0];
    let mut bars: Vec<Bar> = (0..10)
        .map(|k| {
            let c = first.close * (-(10 - k) as f64 * 1e-5).exp();
            Bar {
                ts: first.ts - (10 - k) * 86_400_000,
                open: c,
                high: c * 1.00001,
                low: c * 0.99999,
                close: c,
                volume: 1_000.0,
            }
        })
        .collect();
    bars.extend_from_slice(&d.bars);
    let mut labels = vec![[1u8, 1, 0]; 10];
    labels.extend_from_slice(&d.labels);
    let plain = accuracy_from(&d.labels, &d.bars, 0, 1_500);
    let late = accuracy_from(&labels, &bars, 0, 1_510);
    println!(
        "volatility right on {late:.3} of the bars from 1,500 (without the quiet start {plain:.3})"
    );
    assert!(
        late >= plain - 0.03,
        "a quiet start took the volatility labels from {plain:.3} to {late:.3}"
    );
}

/// The series with an unadjusted split at bar `at`: prices divided by `k`, volume
/// multiplied by it.
fn split_at(bars: &[Bar], at: usize, k: f64) -> Vec<Bar> {
    let mut split = bars.to_vec();
    for b in &mut split[at..] {
        (b.open, b.high, b.low, b.close) = (b.open / k, b.high / k, b.low / k, b.close / k);
        b.volume *= k;
    }
    split
}

/// An unadjusted split (prices ÷k and volume ×k from one bar on: the share count) is read
/// as one and taken out, so the labels after it are the ones the adjusted series gets. Read
/// as it came, the volume step was high (or low) volume for months and the fall one huge
/// return in every member's window: here 1.0–4.4% of the next 1,000 volatility labels
/// changed (arch's S&P 500 with 2:1 in June 2005: 60% of the next year's).
#[test]
fn an_unadjusted_split_is_read_as_one() {
    for (seed, k) in [(74u64, 3.0), (75, 2.0), (76, 0.1), (77, 4.0), (78, 0.5)] {
        let cfg = SynthConfig {
            symbols: 1,
            bars: 6_000,
            ..SynthConfig::default()
        };
        let bars = generate(&cfg, seed).remove(0).bars;
        let split = split_at(&bars, 5_000, k);
        let cfg = PipelineConfig::default();
        let plain = detect_series(&bars, &cfg).expect("plain run");
        let mut p = regime_core::pipeline::SymbolPipeline::new(cfg).expect("valid settings");
        let after: Vec<_> = split.iter().map(|b| p.update(b)).collect();
        let same = plain
            .iter()
            .zip(&after)
            .filter(|(a, b)| a.regime == b.regime)
            .count();
        println!("seed {seed}, {k}:1 split at bar 5000: the same regime on {same} of 6000 bars");
        let (n, last) = p.splits();
        assert_eq!(n, 1, "seed {seed}: {n} splits read");
        let s = last.expect("the split");
        assert_eq!(s.bar, 5_001, "seed {seed}: read at bar {}", s.bar);
        assert_eq!(
            s.ts, split[5_000].ts,
            "seed {seed}: the split bar's timestamp"
        );
        assert!(
            (s.ratio / k - 1.0).abs() < 1e-9,
            "seed {seed}: ratio {} for {k}",
            s.ratio
        );
        // the adjusted bars differ from the plain ones in their last bits only
        assert!(
            same >= 5_990,
            "seed {seed}: a {k}:1 split changed {} of the 1,000 regimes after it",
            6_000 - same
        );
    }
}

/// What is not a split is not read as one: a crash as deep as a split ratio on the heavy
/// volume crashes trade, a change of price unit (×0.01: pence to pounds) with the volume
/// unchanged, a split ratio's move on a series with no volume, and the generator's own
/// fat-tailed series.
#[test]
fn crashes_and_unit_changes_are_not_splits() {
    let cfg = SynthConfig {
        symbols: 1,
        bars: 3_000,
        ..SynthConfig::default()
    };
    let bars = generate(&cfg, 79).remove(0).bars;
    let mut crash = split_at(&bars, 2_000, 2.0);
    for b in &mut crash[2_000..2_005] {
        b.volume *= 10.0; // ×20 the usual volume on the day, ×20–×10 for a week
    }
    let mut unit = split_at(&bars, 2_000, 100.0);
    for b in &mut unit[2_000..] {
        b.volume /= 100.0;
    }
    let mut no_volume = split_at(&bars, 2_000, 2.0);
    for b in &mut no_volume {
        b.volume = f64::NAN;
    }
    for (name, series) in [
        ("crash", crash),
        ("unit change", unit),
        ("no volume", no_volume),
    ] {
        let found = regime_core::splits::find_adjustments(&series);
        assert!(
            found.0.is_empty() && found.1.is_empty(),
            "{name}: read as {found:?}"
        );
    }
    let cfg = SynthConfig {
        symbols: 200,
        bars: 5_000,
        ..SynthConfig::default()
    };
    for (i, s) in generate(&cfg, 80).iter().enumerate() {
        let found = regime_core::splits::find_adjustments(&s.bars);
        assert!(
            found.0.is_empty() && found.1.is_empty(),
            "series {i}: read as {found:?}"
        );
    }
}

/// A step of the volume level with the prices unmoved — a change of unit (×10, ×0.01), a
/// feed switching to consolidated volume (×5) — is read five bars in and the volume from
/// then on measured on the level before it: the labels after it are (almost) the plain
/// series'. A frenzy (volume ×15 for two weeks, moves six times their size) is not a step.
#[test]
fn a_volume_step_with_prices_unmoved_is_read() {
    let cfg = SynthConfig {
        symbols: 1,
        bars: 4_000,
        ..SynthConfig::default()
    };
    for (seed, v) in [(81u64, 10.0), (82, 0.01), (83, 5.0)] {
        let bars = generate(&cfg, seed).remove(0).bars;
        let mut stepped = bars.clone();
        for b in &mut stepped[2_500..] {
            b.volume *= v;
        }
        let (splits, steps) = regime_core::splits::find_adjustments(&stepped);
        assert!(splits.is_empty(), "seed {seed}: {splits:?}");
        assert_eq!(steps.len(), 1, "seed {seed}: {steps:?}");
        // five bars in at the earliest; ×5 has bars under the ×3.3 the rule asks for
        assert!(
            (2_505..2_550).contains(&steps[0].bar),
            "seed {seed}: {steps:?}"
        );
        assert!(
            (steps[0].step / v).ln().abs() < 0.3,
            "seed {seed}: ×{v} read as ×{}",
            steps[0].step
        );
        let same = agreement_from(&bars, &stepped, 2_500);
        println!("seed {seed}, volume ×{v} from bar 2500: volatility labels agree on {same:.3} of the bars from it");
        assert!(same >= 0.98, "seed {seed}: ×{v}: {same:.3}");
    }
    let bars = generate(&cfg, 84).remove(0).bars;
    let mut frenzy = bars.clone();
    for t in 2_500..2_510 {
        let r = (bars[t].close / bars[t - 1].close).ln() * 5.0;
        for b in &mut frenzy[t..] {
            (b.open, b.high, b.low, b.close) = (
                b.open * r.exp(),
                b.high * r.exp(),
                b.low * r.exp(),
                b.close * r.exp(),
            );
        }
        frenzy[t].volume *= 15.0;
    }
    // a frenzy may read as a step (here its moves are within 3 RMS on five bars in a row);
    // its end then reads as the step back, and the labels after it are the plain series'
    let (_, steps) = regime_core::splits::find_adjustments(&frenzy);
    let net: f64 = steps.iter().map(|s| s.step).product();
    assert!((net - 1.0).abs() < 1e-9, "a frenzy read as {steps:?}");
    let same = agreement_from(&bars, &frenzy, 2_600);
    println!("a frenzy at bar 2500 read as {steps:?}: volatility labels agree on {same:.3} of the bars from 2600");
    assert!(same >= 0.98, "after a frenzy: {same:.3}");
}
