//! Bars whose high and low only echo the bar's own move (a range of `|r|` times noise, as
//! some vendors' and test generators' bars have) must not make the volatility label flip
//! bar after bar: the range then repeats what the return said, and counted in full as
//! independent evidence it made every quiet bar read as low volatility twice over.

use datasets::{generate, SymbolData, SynthConfig};
use regime_core::bars::Bar;
use regime_core::pipeline::{PipelineConfig, SymbolPipeline};

fn series(bars: usize, seed: u64) -> SymbolData {
    let cfg = SynthConfig {
        symbols: 1,
        bars,
        ..SynthConfig::default()
    };
    generate(&cfg, seed).remove(0)
}

/// A uniform number in (0, 1) from a counter (splitmix64): deterministic noise.
fn uniform(i: u64) -> f64 {
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

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

struct Run {
    /// Share of the last 30% of bars whose volatility label is the true one.
    accuracy: f64,
    /// Volatility label changes per 252 bars over the last 30%.
    switches_a_year: f64,
    /// The model's range weight at the end.
    range_weight: f64,
}

fn run(bars: &[Bar], labels: &[[u8; 3]]) -> Run {
    let mut p = SymbolPipeline::new(PipelineConfig::default()).expect("default settings");
    let from = bars.len() * 7 / 10;
    let (mut hits, mut switches, mut last) = (0usize, 0usize, None);
    for (t, b) in bars.iter().enumerate() {
        let v = p.update(b).regime.indices()[0];
        if t >= from {
            hits += usize::from(v == labels[t][0] as usize);
            switches += usize::from(last.is_some_and(|l| l != v));
        }
        last = Some(v);
    }
    let n = (bars.len() - from) as f64;
    let range_weight = p
        .hmm()
        .params()
        .map(|q| q.range_weight)
        .expect("a model after the warm-up");
    Run {
        accuracy: hits as f64 / n,
        switches_a_year: switches as f64 / n * 252.0,
        range_weight,
    }
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
        let plain = run(&d.bars, &d.labels);
        let tied = run(&tied_ranges(&d.bars), &d.labels);
        println!(
            "seed {seed}: true volatility switches {truth:.1}/year; generator's bars: accuracy {:.3}, {:.1} switches/year, range weight {:.2}; tied ranges: accuracy {:.3}, {:.1} switches/year, range weight {:.2}",
            plain.accuracy, plain.switches_a_year, plain.range_weight, tied.accuracy, tied.switches_a_year, tied.range_weight
        );
        // the generator's ranges are independent of the return given the state: full weight
        assert_eq!(plain.range_weight, 1.0, "seed {seed}");
        assert!(
            tied.range_weight < 0.6,
            "seed {seed}: {:.2}",
            tied.range_weight
        );
        assert!(
            tied.switches_a_year <= truth + 8.0,
            "seed {seed}: {:.1} volatility switches a year on tied ranges, truth {truth:.1}",
            tied.switches_a_year
        );
        assert!(
            tied.accuracy >= 0.89,
            "seed {seed}: volatility right on {:.3} of the bars with tied ranges",
            tied.accuracy
        );
    }
}
