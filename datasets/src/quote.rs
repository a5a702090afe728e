//! Bars as a market quotes them: prices rounded to a tick grid, or seen through noise (a
//! bid-ask bounce) — the generator's bars are exact real numbers. Used by the accuracy
//! checks (`examples/oracle_check.rs`, `benches/accuracy/ticks.py`) and the tests of
//! `model::PriceGrid` and `JointParams::noise`.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use regime_core::bars::Bar;

/// The population standard deviation of the close-to-close log returns (0 for fewer than
/// two bars).
pub fn close_return_sd(bars: &[Bar]) -> f64 {
    let r: Vec<f64> = bars
        .windows(2)
        .map(|w| (w[1].close / w[0].close).ln())
        .collect();
    if r.is_empty() {
        return 0.0;
    }
    let n = r.len() as f64;
    let mean = r.iter().sum::<f64>() / n;
    (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt()
}

/// Every price of the bars by `round`: each to its nearest grid point, so a bar's order of
/// open, high, low and close is kept.
fn each_price(bars: &[Bar], round: impl Fn(f64) -> f64) -> Vec<Bar> {
    bars.iter()
        .map(|b| Bar {
            open: round(b.open),
            high: round(b.high),
            low: round(b.low),
            close: round(b.close),
            ..*b
        })
        .collect()
}

/// The bars with every price rounded to a grid of `step` in log price (a relative tick).
pub fn on_log_grid(bars: &[Bar], step: f64) -> Vec<Bar> {
    each_price(bars, |p| ((p.ln() / step).round() * step).exp())
}

/// The bars with every price rounded to a grid of `tick` in price (a stock's cent), never
/// below one tick.
pub fn on_price_grid(bars: &[Bar], tick: f64) -> Vec<Bar> {
    each_price(bars, |p| ((p / tick).round() * tick).max(tick))
}

/// The bars with open, high, low and close each moved by its own uniform noise in log
/// price, within ±`half` (variance `half²/3`), high and low widened where the moved open or
/// close left them inside; reproducible from `seed`.
pub fn with_price_noise(bars: &[Bar], half: f64, seed: u64) -> Vec<Bar> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut u = move || half * (2.0 * rng.random::<f64>() - 1.0);
    bars.iter()
        .map(|b| {
            let open = b.open * u().exp();
            let close = b.close * u().exp();
            Bar {
                open,
                high: (b.high * u().exp()).max(open).max(close),
                low: (b.low * u().exp()).min(open).min(close),
                close,
                ..*b
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bars() -> Vec<Bar> {
        let cfg = crate::SynthConfig {
            symbols: 1,
            bars: 500,
            ..Default::default()
        };
        crate::generate(&cfg, 7).remove(0).bars
    }

    #[test]
    fn a_grid_keeps_every_bar_valid_and_on_its_points() {
        let b = bars();
        let step = 0.5 * close_return_sd(&b);
        for q in [on_log_grid(&b, step), on_price_grid(&b, 0.25)] {
            for x in &q {
                assert!(x.low <= x.open.min(x.close) && x.high >= x.open.max(x.close));
            }
        }
        for x in on_log_grid(&b, step) {
            let k = x.close.ln() / step;
            assert!((k - k.round()).abs() < 1e-6, "{} is off the grid", x.close);
        }
    }

    #[test]
    fn noise_keeps_bars_valid_and_its_variance() {
        let b = bars();
        let half = 0.01;
        let q = with_price_noise(&b, half, 3);
        let d: Vec<f64> = b
            .iter()
            .zip(&q)
            .map(|(a, x)| (x.close / a.close).ln())
            .collect();
        let var = d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64;
        // uniform on ±half: variance half²/3
        assert!(
            (var / (half * half / 3.0) - 1.0).abs() < 0.2,
            "variance {var}"
        );
        for x in &q {
            assert!(x.low <= x.open.min(x.close) && x.high >= x.open.max(x.close));
        }
    }
}
