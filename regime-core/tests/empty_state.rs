//! A batch refit must not trade a volatility level for a state that holds one extreme bar.

mod common;

use common::volatility;
use datasets::{generate, SymbolData, SynthConfig};
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};

fn series(symbols: usize, bars: usize, seed: u64) -> Vec<SymbolData> {
    let cfg = SynthConfig {
        symbols,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, seed)
}

#[test]
fn an_extreme_bar_does_not_take_a_volatility_state() {
    // Seed 94114: a model that gives a state to what amounts to less than one bar and
    // merges the true low and medium levels scored higher than the true levels on the
    // likelihood the batch refits compared, which left out the emissions' factor common
    // to all states. Those builds took it at every batch refit (σ 0.012 / 0.030 / 0.076
    // at the end, true 0.008 / 0.016 / 0.031) and named the volatility right on 0.463 of
    // the last 1,500 bars; now 0.985 (with the whole likelihood, or with the empty-state
    // rule alone).
    let data = series(1, 5_000, 94114);
    let d = &data[0];
    let mut h = OnlineHmm::new(OnlineHmmConfig::default()).expect("default config");
    let (mut hits, mut n) = (0usize, 0usize);
    for (t, b) in d.bars.iter().enumerate() {
        let s = h.update(b);
        if t >= 3_500 {
            hits += usize::from(volatility(&s) == d.labels[t][0] as usize);
            n += 1;
        }
    }
    let acc = hits as f64 / n as f64;
    let p = h.params().expect("the model has learned");
    println!(
        "volatility accuracy {acc:.3}, σ {:?}, true {:?}",
        p.sigma, d.true_params.sigma
    );
    assert!(
        acc > 0.9,
        "volatility right on {acc:.3} of the last 1,500 bars"
    );
    for v in 0..3 {
        let ratio = p.sigma[v] / d.true_params.sigma[v];
        assert!(
            (0.7..1.4).contains(&ratio),
            "σ of volatility state {v}: {:.5} against the true {:.5}",
            p.sigma[v],
            d.true_params.sigma[v]
        );
    }
}

#[test]
fn no_member_of_a_panel_shifts_its_volatility_levels() {
    // In a panel the population prior spaces the levels, and the same trade appears as a
    // shift: the true low and medium levels one state, the true high the next, the top
    // state holding a few bars. On the truncated likelihood with no empty-state rule 12 of
    // the 500 members of panel 40011 named volatility right on 0.47–0.73 fewer of their
    // last 600 bars than the oracle (with "empty" under 0.2% of the window, 5); with the
    // whole likelihood none is more than 0.1 behind it.
    let data = series(500, 2_000, 40011);
    let series: Vec<&[regime_core::bars::Bar]> = data.iter().map(|d| d.bars.as_slice()).collect();
    let dets = regime_core::pipeline::detect_panel(&series, &Default::default())
        .expect("the panel is valid");
    let mut behind = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let mut oracle = OnlineHmm::fixed(d.true_params.clone()).expect("true parameters");
        let (mut ours, mut best) = (0i64, 0i64);
        for (t, b) in d.bars.iter().enumerate() {
            let s = oracle.update(b);
            if t < 1_400 {
                continue;
            }
            best += i64::from(volatility(&s) == d.labels[t][0] as usize);
            ours += i64::from(dets[i][t].regime.indices()[0] == d.labels[t][0] as usize);
        }
        let gap = (best - ours) as f64 / 600.0;
        if gap > 0.1 {
            behind.push((i, gap));
        }
    }
    assert!(
        behind.is_empty(),
        "members far behind the oracle on volatility (member, share of bars): {behind:?}"
    );
}
