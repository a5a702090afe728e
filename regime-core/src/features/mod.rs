//! Streaming features. Each has a validated config, an O(1)-state `update`, and a batch form
//! built on `update` (so batch and streaming cannot disagree); warm-up bars are `NaN`/`None`.

mod atr;
mod autocorrelation;
mod efficiency_ratio;
mod ewma_volatility;
mod kalman_trend;
mod log_return;
mod range_volatility;
mod realized_volatility;
mod relative_volume;
mod ring;
mod trend_t_stat;
mod variance_ratio;

pub use atr::{Atr, AtrConfig};
pub use autocorrelation::{Autocorrelation, AutocorrelationConfig};
pub use efficiency_ratio::{EfficiencyRatio, EfficiencyRatioConfig};
pub use ewma_volatility::{EwmaVolatility, EwmaVolatilityConfig};
pub use kalman_trend::{KalmanTrend, KalmanTrendConfig, KalmanTrendOutput};
pub use log_return::LogReturn;
pub use range_volatility::{RangeEstimator, RangeVolatility, RangeVolatilityConfig};
pub use realized_volatility::{RealizedVolatility, RealizedVolatilityConfig};
pub use relative_volume::{RelativeVolume, RelativeVolumeConfig};
pub(crate) use ring::{Ring, RollingSum};
pub use trend_t_stat::{TrendTStat, TrendTStatConfig};
pub use variance_ratio::{VarianceRatio, VarianceRatioConfig};

/// A streaming indicator over inputs of type `I`.
pub trait Streaming<I: ?Sized> {
    /// The value produced per input.
    type Output: Copy;
    /// Feed one input; `None` until `warmup()` inputs have been seen.
    fn update(&mut self, x: &I) -> Option<Self::Output>;
    /// Forget everything seen.
    fn reset(&mut self);
    /// Inputs needed before the first output.
    fn warmup(&self) -> usize;
    /// Batch form: reset, then `update` over `xs`.
    fn batch(&mut self, xs: &[I]) -> Vec<Option<Self::Output>>
    where
        I: Sized,
    {
        self.reset();
        xs.iter().map(|x| self.update(x)).collect()
    }
}

/// Batch form for scalar features, with `NaN` for warm-up positions.
pub trait BatchF64<I>: Streaming<I, Output = f64> {
    /// Reset, then `update` over `xs`; `NaN` where `update` returned `None`.
    fn batch_f64(&mut self, xs: &[I]) -> Vec<f64> {
        self.reset();
        xs.iter()
            .map(|x| self.update(x).unwrap_or(f64::NAN))
            .collect()
    }
}
impl<I, T: Streaming<I, Output = f64>> BatchF64<I> for T {}

pub(crate) fn check_window(name: &str, window: usize, min: usize) -> crate::Result<()> {
    crate::ensure!(
        (min..=100_000).contains(&window),
        name,
        "window must be in {min}..=100000, got {window}"
    );
    Ok(())
}

#[cfg(test)]
pub(crate) mod contract {
    //! `feature_contract!`: the checks every feature passes.
    use crate::bars::Bar;

    /// A deterministic bar series with trends, volatility bursts and a flat stretch.
    pub(crate) fn sample_bars(n: usize) -> Vec<Bar> {
        let mut out = Vec::with_capacity(n);
        let mut c = 100.0f64;
        let mut x = 12345u64;
        for t in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 10_000) as f64 / 10_000.0 - 0.5;
            let vol = if (t / 50) % 3 == 2 { 0.03 } else { 0.01 };
            let flat = (300..310).contains(&t);
            let r = if flat {
                0.0
            } else {
                u * vol + 0.0005 * ((t / 80) % 2) as f64
            };
            let o = c;
            c *= r.exp();
            let (h, l) = if flat {
                (c, c)
            } else {
                (o.max(c) * (1.0 + vol * 0.3), o.min(c) * (1.0 - vol * 0.3))
            };
            let v = if flat {
                0.0
            } else {
                1000.0 + 500.0 * (u + 0.5)
            };
            out.push(Bar::new(t as i64, o, h, l, c, v));
        }
        out
    }

    #[macro_export]
    #[doc(hidden)]
    macro_rules! feature_contract {
        ($ty:ident, $cfg:expr) => {
            #[test]
            fn contract() {
                use $crate::bars::Bar;
                use $crate::features::contract::sample_bars;
                use $crate::features::Streaming;
                let bars = sample_bars(600);
                let mut f = $ty::new($cfg).expect("valid config");
                let warm = <$ty as Streaming<Bar>>::warmup(&f);
                assert!(warm >= 1);
                assert!(!format!("{f}").is_empty());
                // streaming == batch, warm-up positions None
                let batch = f.batch(&bars);
                <$ty as Streaming<Bar>>::reset(&mut f);
                let mut first = None;
                for (i, b) in bars.iter().enumerate() {
                    let s = f.update(b);
                    assert_eq!(format!("{s:?}"), format!("{:?}", batch[i]), "bar {i}");
                    if i + 1 < warm {
                        assert!(s.is_none(), "bar {i} is inside the warm-up");
                    } else {
                        assert!(s.is_some(), "bar {i} is past the warm-up");
                    }
                    if first.is_none() {
                        first = s.map(|v| format!("{v:?}"));
                    }
                }
                // reset repeats the first output
                <$ty as Streaming<Bar>>::reset(&mut f);
                let again: Vec<_> = bars.iter().map(|b| f.update(b)).collect();
                assert_eq!(format!("{again:?}"), format!("{batch:?}"));
                // the default instance works
                let mut d = $ty::default();
                let _ = <$ty as Streaming<Bar>>::update(&mut d, &bars[0]);
            }
        };
    }
}
