//! Opening prints that are not the market's: a vendor whose open is the previous close plus
//! noise of one size in every state (arch's S&P 500 daily opens come close: their size hardly
//! moves with volatility in 2005–06 and 2011–12). Such a gap is uncorrelated with the return, so its
//! correlation weight keeps it in full, and read as `N(0, g² σ_v²)` it says "calm" on a
//! quiet open and "volatile" on a wide one whatever the market does. The gap channel keeps
//! only the share of its evidence that its slope on the predicted volatility, beside the
//! return's, earns (`hmm::GapSlope`). Before that, on these six series: volatility right on
//! 0.57–0.92 of the last 30% with junk opens (mean 0.80; 0.98 with the generator's opens);
//! with it 0.90–0.97 (mean 0.94), the generator's opens' unchanged. Much of that loss comes
//! with the high and low the junk opens stretch: re-opened with each bar's excess range kept
//! (only the gap changes) the same series read 0.962 (worst 0.927) before, 0.971 with it.
//!
//! The second test: the opens' source changing mid-series (`hmm::GAP_SCALE_JUMP`).

mod common;

use common::{series, uniform, volatility_run};
use regime_core::bars::Bar;

const BARS: usize = 3_000;
const FROM: usize = 2_100;

/// The series re-opened at the previous close times `exp(s z)`, `z` standard normal and `s`
/// half the sd of its close-to-close log returns; high and low widened to hold the open (a
/// vendor's bar holds its own opening print).
fn junk_opens(bars: &[Bar], seed: u64) -> Vec<Bar> {
    let r: Vec<f64> = bars
        .windows(2)
        .map(|w| (w[1].close / w[0].close).ln())
        .collect();
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / r.len() as f64).sqrt();
    let mut out = bars.to_vec();
    for t in 1..out.len() {
        let i = seed * 1_000_003 + 2 * t as u64;
        let (u, v) = (uniform(i), uniform(i + 1));
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        let b = &mut out[t];
        b.open = bars[t - 1].close * (0.5 * sd * z).exp();
        b.high = b.high.max(b.open);
        b.low = b.low.min(b.open);
    }
    out
}

#[test]
fn opens_that_do_not_follow_volatility_lose_their_weight() {
    let (mut clean_sum, mut junk_sum) = (0.0, 0.0);
    let seeds = 103_550..103_556u64;
    for seed in seeds.clone() {
        let d = series(BARS, seed);
        let clean = volatility_run(&d.bars, &d.labels, FROM);
        let junk = volatility_run(&junk_opens(&d.bars, seed), &d.labels, FROM);
        let slope = |r: &common::VolatilityRun| r.pipeline.hmm().gap_vol_slope();
        println!(
            "seed {seed}: volatility right on {:.3} with the generator's opens (gap slope \
             {:.2}), {:.3} with junk opens (gap slope {:.2})",
            clean.accuracy,
            slope(&clean),
            junk.accuracy,
            slope(&junk)
        );
        assert!(
            junk.accuracy > 0.88,
            "seed {seed}: volatility right on {:.3} with junk opens",
            junk.accuracy
        );
        assert!(
            slope(&junk) < 0.3,
            "seed {seed}: junk gaps kept {:.2} of their evidence",
            slope(&junk)
        );
        assert!(
            slope(&clean) > 0.6,
            "seed {seed}: the generator's gaps kept only {:.2} of their evidence",
            slope(&clean)
        );
        clean_sum += clean.accuracy;
        junk_sum += junk.accuracy;
    }
    let n = seeds.count() as f64;
    let (clean, junk) = (clean_sum / n, junk_sum / n);
    println!("mean: {clean:.3} with the generator's opens, {junk:.3} with junk opens");
    assert!(
        junk > clean - 0.05,
        "junk opens cost {:.3} of the volatility accuracy",
        clean - junk
    );
}

/// `b` opened at `open` instead, its excess range (the range beyond the body, which the
/// model reads) kept: the high moves with the body's top, the low with its bottom.
fn reopen(b: &mut Bar, open: f64) {
    let (top, bottom) = (b.open.max(b.close), b.open.min(b.close));
    let (up, down) = (b.high / top, b.low / bottom);
    b.open = open;
    b.high = open.max(b.close) * up;
    b.low = open.min(b.close) * down;
}

/// The series with every gap from bar `from` on `factor` times as wide (the opens' source
/// changed: a vendor's new opening auction, a session rule), each bar's excess range kept so
/// that only the gaps change.
fn opens_widened(bars: &[Bar], from: usize, factor: f64) -> Vec<Bar> {
    let mut out = bars.to_vec();
    for t in from.max(1)..out.len() {
        let prev = bars[t - 1].close;
        reopen(
            &mut out[t],
            prev * (factor * (bars[t].open / prev).ln()).exp(),
        );
    }
    out
}

#[test]
fn a_change_of_the_opens_source_is_read_as_such_not_as_volatility() {
    // the gap scale is tracked over 500 bars; opens three times as wide from bar 1,500 on
    // read as volatility until it caught up. Here the restart matters little (volatility
    // after the change 0.971 without it, 0.974 with it; the worst series 0.958 -> 0.969):
    // the test holds the mechanism — the generator's opens never restart the scale, a
    // ninefold step in the gaps' variance does — which on arch's S&P 500 history from 2013
    // takes 2017 from 34% to 55% low
    const CHANGE: usize = 1_500;
    let (mut clean_sum, mut changed_sum) = (0.0, 0.0);
    let seeds = 103_560..103_566u64;
    for seed in seeds.clone() {
        let d = series(BARS, seed);
        let clean = volatility_run(&d.bars, &d.labels, CHANGE);
        let changed = volatility_run(&opens_widened(&d.bars, CHANGE, 3.0), &d.labels, CHANGE);
        let restarts = |r: &common::VolatilityRun| r.pipeline.hmm().gap_scale_restarts();
        println!(
            "seed {seed}: volatility right on {:.3} after bar {CHANGE} ({} restarts), {:.3} with \
             the opens widened there ({} restarts)",
            clean.accuracy,
            restarts(&clean),
            changed.accuracy,
            restarts(&changed)
        );
        assert_eq!(
            restarts(&clean),
            0,
            "seed {seed}: the generator's opens restarted the gap scale"
        );
        assert!(
            restarts(&changed) >= 1,
            "seed {seed}: the widened opens did not restart the gap scale"
        );
        clean_sum += clean.accuracy;
        changed_sum += changed.accuracy;
    }
    let n = seeds.count() as f64;
    let (clean, changed) = (clean_sum / n, changed_sum / n);
    println!("mean: {clean:.3} with the generator's opens, {changed:.3} with the opens widened");
    assert!(
        changed > clean - 0.03,
        "widened opens cost {:.3} of the volatility accuracy",
        clean - changed
    );
}
