//! The model's second filter runs on parameters averaged over its recent online refits: they
//! move far less from refit to refit than the latest refit's, the filter starts with the
//! online refits, and a drift alarm sets it back to the current model.

use datasets::{generate, SynthConfig};
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};
use regime_core::model::JointParams;

/// The weakly identified parameters: the trend drifts (units of σ) and the trend
/// persistence (the diagonal of its transition matrix).
fn trend_params(p: &JointParams) -> [f64; 6] {
    [
        p.drift[0],
        p.drift[2],
        p.a_trend[0][0],
        p.a_trend[1][1],
        p.a_trend[2][2],
        p.phi[0] - p.phi[1],
    ]
}

fn distance(a: &[f64; 6], b: &[f64; 6]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn averaged_parameters_move_less_from_refit_to_refit() {
    // online EM's estimates from a 2,000-bar memory jitter around the likelihood's optimum
    // from one refit to the next; their average must be the steadier estimate (it is a
    // different reading of the same data, which is what the ensemble pools)
    let (mut moved_now, mut moved_avg, mut refits) = (0.0, 0.0, 0);
    for seed in [71u64, 72, 73] {
        let cfg = SynthConfig {
            symbols: 1,
            bars: 60_000,
            ..SynthConfig::default()
        };
        let s = generate(&cfg, seed).remove(0);
        let mut hmm = OnlineHmm::new(OnlineHmmConfig::default()).expect("model");
        let (mut started, mut version, mut last) = (None, 0, None);
        for (t, b) in s.bars.iter().enumerate() {
            let step = hmm.update(b);
            let Some(avg) = hmm.averaged_params() else {
                // before the first online refit the second filter is the first
                assert_eq!(step.averaged, step.joint, "seed {seed}, bar {t}");
                continue;
            };
            started.get_or_insert(t);
            if hmm.model_version() == version {
                continue;
            }
            version = hmm.model_version();
            let now = trend_params(hmm.params().expect("fitted"));
            let avg = trend_params(avg);
            if let Some((n0, a0)) = last {
                if t >= 20_000 {
                    moved_now += distance(&now, &n0);
                    moved_avg += distance(&avg, &a0);
                    refits += 1;
                }
            }
            last = Some((now, avg));
        }
        let started = started.expect("online refits began");
        println!("seed {seed}: averaging began at bar {started}");
        assert!(started <= 8_192, "seed {seed}: began at {started}");
    }
    let (now, avg) = (moved_now / refits as f64, moved_avg / refits as f64);
    println!(
        "trend parameters moved per refit over {refits} refits: latest {now:.4}, averaged {avg:.4}"
    );
    assert!(refits >= 40, "{refits} refits");
    assert!(
        avg < 0.25 * now,
        "averaged moved {avg:.4} vs latest {now:.4}"
    );
}

#[test]
fn a_drift_alarm_sets_the_second_filter_back() {
    let cfg = SynthConfig {
        symbols: 1,
        bars: 12_000,
        ..SynthConfig::default()
    };
    let s = generate(&cfg, 74).remove(0);
    let mut hmm = OnlineHmm::new(OnlineHmmConfig::default()).expect("model");
    let (first, rest) = s.bars.split_at(10_000);
    for b in first {
        hmm.update(b);
    }
    assert!(
        hmm.averaged_params().is_some(),
        "averaging after 10,000 bars"
    );
    hmm.discount(0.5);
    assert!(hmm.averaged_params().is_none());
    let step = hmm.update(&rest[0]);
    assert_eq!(step.averaged, step.joint);
}
