//! Prices seen through noise — a tick grid's rounding, a bid-ask bounce — add `−noise` to
//! consecutive returns' covariance, the same in every volatility state, so a quiet state's
//! returns look mean-reverting whatever the market does. The model learns that noise
//! (`JointParams::noise`) where the data show it, and none from a clean price, whose model
//! then is the model without it, to the bit.

use datasets::quote::{close_return_sd as return_sd, with_price_noise};
use datasets::{generate, SynthConfig};
use regime_core::bars::Bar;
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};
use regime_core::model::{noisy_ar, state_ar, MAX_NOISE_SHARE};
use regime_core::pipeline::{Detail, PipelineConfig, SymbolPipeline};

const BARS: usize = 20_000;

/// Each price moved by its own uniform noise in log price, ±`half`: variance `half²/3`.
fn with_noise(bars: &[Bar], half: f64) -> Vec<Bar> {
    with_price_noise(bars, half, 11)
}

fn learn(bars: &[Bar]) -> OnlineHmm {
    let mut h = OnlineHmm::new(OnlineHmmConfig::default()).expect("config");
    for b in bars {
        h.update(b);
    }
    h
}

#[test]
fn noise_is_learned_where_prices_carry_it_and_not_from_a_clean_price() {
    let cfg = SynthConfig {
        symbols: 1,
        bars: BARS,
        ..SynthConfig::default()
    };
    for seed in [105_600u64, 105_601, 105_602] {
        let d = &generate(&cfg, seed)[0];
        let clean = learn(&d.bars);
        let p = clean.params().expect("a model after 20,000 bars");
        assert_eq!(
            p.noise, 0.0,
            "seed {seed}: noise learned from a clean price"
        );
        // a clean model's per-state coefficients are φ itself
        assert_eq!(state_ar(p, 1.0 / p.sigma[0]), p.phi, "seed {seed}");

        // noise of half a return sd each way (variance sd²/12: a grid of one return sd)
        let sd = return_sd(&d.bars);
        let truth = sd * sd / 12.0;
        let noisy = learn(&with_noise(&d.bars, 0.5 * sd));
        let p = noisy.params().expect("a model after 20,000 bars");
        let ratio = p.noise / truth;
        println!(
            "seed {seed}: noise learned {:.3e}, true {truth:.3e} (ratio {ratio:.2})",
            p.noise
        );
        assert!(
            (0.4..2.5).contains(&ratio),
            "seed {seed}: noise learned {:.3e} for a true {truth:.3e}",
            p.noise
        );
        // what an operator sees: the base detector's status gives the noise's share of the
        // quietest level's variance
        let mut pipeline = SymbolPipeline::new(PipelineConfig::default()).expect("pipeline");
        for b in with_noise(&d.bars, 0.5 * sd) {
            pipeline.update(&b);
        }
        let shown = pipeline
            .components()
            .into_iter()
            .find(|c| c.name == "base_regime_detector")
            .and_then(|c| c.details.get("price_noise_share").cloned());
        match shown {
            Some(Detail::Num(k)) => assert!(k > 0.05 && k < MAX_NOISE_SHARE, "seed {seed}: {k}"),
            other => panic!("seed {seed}: price_noise_share {other:?}"),
        }
        // the quiet state's coefficients are pulled down more than the busy state's
        let (low, high) = (state_ar(p, 1.0 / p.sigma[0]), state_ar(p, 1.0 / p.sigma[2]));
        for s in 0..2 {
            assert!(
                low[s] < high[s] && high[s] <= p.phi[s],
                "seed {seed}: {low:?} {high:?}"
            );
        }
    }
}

#[test]
fn a_clean_price_s_coefficient_is_phi_exactly() {
    for phi in [0.25, -0.25, 0.0, 0.9] {
        assert_eq!(noisy_ar(phi, 0.0), phi);
    }
    // half the variance noise: φ (1 − 2κ) − κ
    assert!((noisy_ar(0.2, 0.25) - (0.2 * 0.5 - 0.25)).abs() < 1e-15);
}
