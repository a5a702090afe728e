//! The trend chain's persistence is set by a profile likelihood accumulated over the
//! online refits: EM alone, with its short memory, settles on trends much shorter than the
//! truth (the generator's: 100 bars), and the filter then switches trends too readily.

use datasets::{generate, SynthConfig};
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};

/// Mean expected duration of the trend states (bars).
fn mean_trend_duration(a: &[[f64; 3]; 3]) -> f64 {
    (0..3).map(|i| 1.0 / (1.0 - a[i][i])).sum::<f64>() / 3.0
}

#[test]
fn learned_trend_durations_come_near_the_truth() {
    let truth = 1.0 / (1.0 - SynthConfig::default().persistence[1]);
    for seed in [81u64, 82, 83] {
        let cfg = SynthConfig {
            symbols: 1,
            bars: 60_000,
            ..SynthConfig::default()
        };
        let s = generate(&cfg, seed).remove(0);
        let mut hmm = OnlineHmm::new(OnlineHmmConfig::default()).expect("model");
        let mut seen = Vec::new();
        for (t, b) in s.bars.iter().enumerate() {
            hmm.update(b);
            if t >= 30_000 && t % 2_000 == 0 {
                seen.push(mean_trend_duration(&hmm.params().expect("fitted").a_trend));
            }
        }
        let chosen = hmm
            .trend_duration()
            .expect("the profile has enough bars by now");
        assert!(chosen > 0.0 && chosen.is_finite(), "seed {seed}: {chosen}");
        let mean = seen.iter().sum::<f64>() / seen.len() as f64;
        println!(
            "seed {seed}: mean trend duration over bars 30,000–60,000 {mean:.1} (truth {truth:.0})"
        );
        assert!(
            (0.75 * truth..=1.35 * truth).contains(&mean),
            "seed {seed}: {mean:.1} bars against {truth:.0}"
        );
    }
}
