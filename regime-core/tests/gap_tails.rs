//! Market opens: the close-to-close return contains the overnight gap, and gaps are far
//! more fat-tailed than returns (S&P 500 / NASDAQ daily: correlation of gap and return
//! 0.43–0.53, excess kurtosis of the gaps 6–15). The generator draws its gaps normal and
//! apart from the return; here its bars are re-opened with such gaps. Read as a normal
//! channel independent of the return, one news gap moved the volatility state by itself
//! and every large gap counted twice: the labels switched far more often than the truth.

use datasets::{generate, SymbolData, SynthConfig};
use regime_core::bars::Bar;
use regime_core::model::JointParams;
use regime_core::pipeline::{detect_series, PipelineConfig, SymbolPipeline};

const BARS: usize = 5_000;

/// xorshift64*: a small deterministic source for the test's gaps.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Student t(3) scaled to unit variance.
    fn t3(&mut self) -> f64 {
        let chi: f64 = (0..3).map(|_| self.normal().powi(2)).sum();
        self.normal() / (chi / 3.0).sqrt() / 3f64.sqrt()
    }
}

/// The bars re-opened: each opens `gap` from the previous close (0.5 σ of its state, t(3))
/// and keeps its own shape (high, low and close relative to its open), so the
/// close-to-close return is the gap plus the session's move.
fn market_opens(bars: &[Bar], sigma: &[f64], seed: u64) -> Vec<Bar> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut out = Vec::with_capacity(bars.len());
    let mut prev_close = bars[0].close;
    for (i, b) in bars.iter().enumerate() {
        let open = if i == 0 {
            b.open
        } else {
            prev_close * (0.5 * sigma[i] * rng.t3()).exp()
        };
        let k = open / b.open;
        let nb = Bar::new(b.ts, open, b.high * k, b.low * k, b.close * k, b.volume);
        prev_close = nb.close;
        out.push(nb);
    }
    out
}

/// One generated series of [`BARS`] bars.
fn series(seed: u64) -> SymbolData {
    let cfg = SynthConfig {
        symbols: 1,
        bars: BARS,
        ..SynthConfig::default()
    };
    generate(&cfg, seed).remove(0)
}

/// The model's parameters after a causal run over `bars`.
fn final_params(bars: &[Bar]) -> JointParams {
    let mut p = SymbolPipeline::new(PipelineConfig::default()).expect("pipeline");
    for b in bars {
        p.update(b);
    }
    p.hmm().params().expect("a model after 5,000 bars").clone()
}

#[test]
fn market_opens_do_not_move_the_volatility_state_by_themselves() {
    let (mut right, mut scored, mut switches, mut true_switches) = (0usize, 0usize, 0usize, 0usize);
    let mut weights = Vec::new();
    for seed in 99_870u64..99_878 {
        let d = series(seed);
        let sigma: Vec<f64> = d
            .labels
            .iter()
            .map(|l| d.true_params.sigma[l[0] as usize])
            .collect();
        let bars = market_opens(&d.bars, &sigma, seed);
        let dets = detect_series(&bars, &PipelineConfig::default()).expect("detect");
        let from = BARS * 7 / 10;
        for t in from..BARS {
            scored += 1;
            right += usize::from(dets[t].regime.indices()[0] == d.labels[t][0] as usize);
            if t > from {
                switches +=
                    usize::from(dets[t].regime.indices()[0] != dets[t - 1].regime.indices()[0]);
                true_switches += usize::from(d.labels[t][0] != d.labels[t - 1][0]);
            }
        }
        let q = final_params(&bars);
        weights.push((q.gap_student, q.gap_weight));
    }
    let acc = right as f64 / scored as f64;
    println!(
        "volatility right on {acc:.3} of the scored bars; {switches} switches against {true_switches} in truth; gap density (Student t5?, weight) per series {weights:?}"
    );
    assert!(
        weights.iter().all(|&(t, w)| t && w < 0.8),
        "the gaps were not read as fat-tailed and tied to the return: {weights:?}"
    );
    assert!(acc >= 0.95, "volatility right on {acc:.3} of the bars");
    // the build before: 614 switches against 279 (right on 0.961); this one 389 (0.971)
    assert!(
        switches * 10 <= 16 * true_switches,
        "{switches} volatility switches against {true_switches} in truth"
    );
}

#[test]
fn the_generators_gaps_stay_normal_and_count_in_full() {
    // normal gaps drawn apart from the return: the tracker keeps the normal density and the
    // full weight (the oracle's form), so synthetic accuracy is what it was
    for seed in 99_880u64..99_884 {
        let d = series(seed);
        let q = final_params(&d.bars);
        println!(
            "seed {seed}: Student t5 {}, weight {:.3}",
            q.gap_student, q.gap_weight
        );
        assert!(!q.gap_student && q.gap_weight == 1.0, "seed {seed}: {q:?}");
    }
}
