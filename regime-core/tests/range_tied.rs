//! Bars whose high and low only echo the bar's own move (a range of `|r|` times noise, as
//! some vendors' and test generators' bars have) must not make the volatility label flip
//! bar after bar: the range then repeats what the return said, and counted in full as
//! independent evidence it made every quiet bar read as low volatility twice over.

mod common;

use common::{series, uniform, volatility_run};
use regime_core::bars::Bar;
use regime_core::pipeline::Detail;

/// The same bars with each wick `|ln(close/prev close)| + 0.0005` times a noise factor in
/// (0, 1): open at the previous close, close kept, the range made of the bar's own move.
fn tied_ranges(bars: &[Bar]) -> Vec<Bar> {
    let mut prev = bars[0].close;
    bars.iter()
        .enumerate()
        .map(|(t, b)| {
            let size = (b.close / prev).ln().abs() + 0.0005;
            let open = prev;
            let (hi, lo) = (open.max(b.close), open.min(b.close));
            let up = uniform(2 * t as u64) * size;
            let down = uniform(2 * t as u64 + 1) * size;
            prev = b.close;
            Bar {
                open,
                high: hi * up.exp(),
                low: lo * (-down).exp(),
                ..*b
            }
        })
        .collect()
}

/// Volatility accuracy and switches over the last 30%, and the model's range weight.
fn run(bars: &[Bar], labels: &[[u8; 3]]) -> (f64, f64, f64) {
    let r = volatility_run(bars, labels, bars.len() * 7 / 10);
    let weight = r
        .pipeline
        .hmm()
        .params()
        .map(|q| q.range_weight)
        .expect("a model after the warm-up");
    // what an operator sees: the base detector's status shows the weight
    let shown = r
        .pipeline
        .components()
        .into_iter()
        .find(|c| c.name == "base_regime_detector")
        .and_then(|c| c.details.get("range_weight").cloned());
    assert_eq!(shown, Some(Detail::Num(weight)));
    (r.accuracy, r.switches_a_year, weight)
}

#[test]
fn ranges_made_of_the_bars_own_move_do_not_make_the_volatility_flicker() {
    // Builds that counted such a range in full: 17.3 / 27.1 volatility switches a year
    // (truth 5.1 / 6.2), right on 0.899 / 0.855 of the bars; now 9.9 / 11.6 and 0.927 /
    // 0.906, range weight 0.18 / 0.21.
    for seed in [98520u64, 98521] {
        let d = series(12_000, seed);
        let truth = d
            .labels
            .windows(2)
            .skip(d.labels.len() * 7 / 10)
            .filter(|w| w[0][0] != w[1][0])
            .count() as f64
            / (d.labels.len() * 3 / 10) as f64
            * 252.0;
        let (plain, plain_switches, plain_weight) = run(&d.bars, &d.labels);
        let (acc, switches, weight) = run(&tied_ranges(&d.bars), &d.labels);
        println!(
            "seed {seed}: true volatility switches {truth:.1}/year; generator's bars: accuracy {plain:.3}, {plain_switches:.1} switches/year, range weight {plain_weight:.2}; tied ranges: accuracy {acc:.3}, {switches:.1} switches/year, range weight {weight:.2}"
        );
        // the generator's ranges are independent of the return given the state: full weight
        assert_eq!(plain_weight, 1.0, "seed {seed}");
        assert!(weight < 0.6, "seed {seed}: {weight:.2}");
        assert!(
            switches <= truth + 8.0,
            "seed {seed}: {switches:.1} volatility switches a year on tied ranges, truth {truth:.1}"
        );
        assert!(
            acc >= 0.89,
            "seed {seed}: volatility right on {acc:.3} of the bars with tied ranges"
        );
    }
}
