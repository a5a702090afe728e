//! The online jump model's scores name the state it is in, on every bar — also on the bars
//! where an update moves a centroid past its neighbour and the centroids are put back in
//! order (the state follows its centroid to its new place; the bar's probabilities must
//! too, or that bar's label is the place the centroid left).

mod common;

use regime_core::pipeline::methods::{BarContext, ContextBuilder, JumpMethod};
use regime_core::pipeline::Boundaries;

/// Share of scored bars whose argmax is the member's state after the bar, per dimension,
/// and the number of (bar, dimension) pairs scored.
fn agreement(contexts: &[BarContext]) -> ([f64; 3], usize) {
    let mut jump = JumpMethod::default();
    let mut bounds = Boundaries::default();
    let (mut agree, mut scored) = ([0usize; 3], [0usize; 3]);
    for c in contexts {
        if !c.log_vol.is_nan() {
            bounds.vol[0].update(c.log_vol);
            bounds.vol[1].update(c.log_vol);
        }
        let s = jump.score(c, &bounds);
        let states = jump.states();
        for (d, n) in [3usize, 3, 2].into_iter().enumerate() {
            if !s.has[d] {
                continue;
            }
            let row = &s.p[d][..n];
            let top = (0..n).fold(0, |b, i| if row[i] > row[b] { i } else { b });
            scored[d] += 1;
            agree[d] += usize::from(top == states[d]);
        }
    }
    (
        [0, 1, 2].map(|d| agree[d] as f64 / scored[d].max(1) as f64),
        scored.iter().sum(),
    )
}

#[test]
fn the_jump_members_scores_name_its_state_on_every_bar() {
    // Generated series (one cluster per true state) and a drifting one where the trend
    // feature sweeps across the centroids, which makes the centroids pass one another.
    let mut series: Vec<Vec<BarContext>> = Vec::new();
    for seed in [101_210u64, 101_211, 101_212] {
        let data = common::series(3_000, seed);
        let mut cb = ContextBuilder::default();
        series.push(data.bars.iter().map(|b| cb.update(b)).collect());
    }
    let sweep: Vec<BarContext> = (0..4_000)
        .map(|t| {
            let phase = (t as f64 / 4_000.0 * std::f64::consts::TAU * 3.0).sin();
            let noise = common::uniform(t as u64) - 0.5;
            BarContext {
                log_vol: -4.0 + 0.5 * phase + 0.3 * noise,
                t_stat: 2.0 * phase,
                ac1: 0.2 * phase,
                r: 0.01 * (phase + noise),
                scale: 0.01,
                kalman_z: Some(phase),
            }
        })
        .collect();
    series.push(sweep);
    for (i, s) in series.iter().enumerate() {
        let (share, scored) = agreement(s);
        assert!(scored > 2_000, "series {i}: scored {scored}");
        for (d, a) in share.iter().enumerate() {
            assert_eq!(
                *a, 1.0,
                "series {i}, dimension {d}: argmax names the state on {a}"
            );
        }
    }
}

#[test]
fn every_member_gives_probabilities_on_extreme_valid_bars() {
    // Bars validation lets through, at their extremes: prices from 1e-300 to 1e300 and
    // jumps between them, flat stretches (high = low = open = close, no volume), close-only
    // bars, alternating huge moves, ordinary generated bars between. Through the shared
    // features and boundaries as the pipeline feeds them, each member answers with finite
    // probabilities that sum to 1 on the dimensions it covers, or abstains.
    use regime_core::bars::Bar;
    use regime_core::pipeline::methods::{ChangePointMethod, KalmanMethod, ThresholdMethod};
    let normal = common::series(2_000, 101_213).bars;
    let mut bars: Vec<Bar> = Vec::new();
    let push = |o: f64, h: f64, l: f64, c: f64, v: f64, bars: &mut Vec<Bar>| {
        let ts = 86_400_000 * (bars.len() as i64 + 1);
        bars.push(Bar::new(ts, o, h, l, c, v));
    };
    for b in &normal[..500] {
        push(b.open, b.high, b.low, b.close, b.volume, &mut bars);
    }
    for _ in 0..300 {
        push(5.0, 5.0, 5.0, 5.0, 0.0, &mut bars); // flat, no volume
    }
    for t in 0..300u64 {
        let p = if t % 2 == 0 { 1e-300 } else { 1e300 }; // alternating extremes
        push(p, p, p, p, 1.0, &mut bars);
    }
    for t in 0..300u64 {
        let p = 1e-300 * (1.0 + common::uniform(t)); // tiny prices that move
        push(p, p * 1.5, p * 0.5, p, 1e18, &mut bars);
    }
    for b in &normal[500..1_000] {
        push(b.open, b.high, b.low, b.close, b.volume, &mut bars);
    }
    for t in 0..300u64 {
        let ts = 86_400_000 * (bars.len() as i64 + 1);
        bars.push(Bar::close_only(ts, 1e300 * (0.5 + common::uniform(t + 99))));
    }
    for b in &normal[1_000..] {
        push(b.open, b.high, b.low, b.close, b.volume, &mut bars);
    }
    let (threshold, mut kalman, mut jump, mut cp) = (
        ThresholdMethod,
        KalmanMethod::default(),
        JumpMethod::default(),
        ChangePointMethod::default(),
    );
    let mut cb = ContextBuilder::default();
    let mut bounds = Boundaries::default();
    let mut answered = 0usize;
    for (t, b) in bars.iter().enumerate() {
        let c = cb.update(b);
        // as the pipeline's pool side updates them
        if !c.log_vol.is_nan() {
            bounds.vol[0].update(c.log_vol);
            bounds.vol[1].update(c.log_vol);
        }
        if !c.t_stat.is_nan() {
            bounds.trend_band.update(c.t_stat.abs());
        }
        let all = [
            ("threshold", threshold.score(&c, &bounds)),
            ("kalman", kalman.score(&c, &bounds)),
            ("jump", jump.score(&c, &bounds)),
            ("changepoint", cp.score(&c, &bounds)),
        ];
        for (name, s) in &all {
            for (d, n) in [3usize, 3, 2].into_iter().enumerate() {
                if !s.has[d] {
                    continue;
                }
                answered += 1;
                let row = &s.p[d][..n];
                let sum: f64 = row.iter().sum();
                assert!(
                    row.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p))
                        && (sum - 1.0).abs() < 1e-6,
                    "bar {t}, {name}, dimension {d}: {row:?} from {c:?}"
                );
            }
        }
    }
    assert!(answered > 20_000, "answered {answered}");
}
