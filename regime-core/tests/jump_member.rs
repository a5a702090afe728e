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
