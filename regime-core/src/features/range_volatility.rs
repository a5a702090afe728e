use super::{check_window, RollingSum, Streaming};
use crate::bars::{Close, High, Low, Open};
use std::fmt;

/// Which range-based variance estimator to average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum RangeEstimator {
    /// `(ln H/L)² / (4 ln 2)`.
    Parkinson,
    /// `½ (ln H/L)² − (2 ln 2 − 1)(ln C/O)²`.
    GarmanKlass,
    /// `ln(H/C) ln(H/O) + ln(L/C) ln(L/O)` (drift-independent).
    RogersSatchell,
}

/// Settings of [`RangeVolatility`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RangeVolatilityConfig {
    /// Bars in the window.
    pub window: usize,
    /// Estimator.
    pub estimator: RangeEstimator,
}
impl Default for RangeVolatilityConfig {
    fn default() -> Self {
        Self {
            window: 20,
            estimator: RangeEstimator::GarmanKlass,
        }
    }
}

/// Range-based volatility: the square root of the rolling mean of a per-bar variance
/// estimator that uses high and low, which carry far more information than closes alone.
///
/// # Formula
/// `σ_t = sqrt( (1/n) Σ v_i )`, `v_i` per [`RangeEstimator`] (negative GK values floored at 0).
/// # Parameters
/// `window` ≥ 1, `estimator`.
/// # Example
/// ```
/// use regime_core::bars::Bar;
/// use regime_core::features::{RangeEstimator, RangeVolatility, RangeVolatilityConfig, Streaming};
/// let cfg = RangeVolatilityConfig { window: 1, estimator: RangeEstimator::Parkinson };
/// let mut f = RangeVolatility::new(cfg).unwrap();
/// let v = f.update(&Bar::new(0, 100.0, 102.0, 98.0, 101.0, 1.0)).unwrap();
/// assert!((v - 0.0240255).abs() < 1e-6);
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Volatility_(finance)#Range-based_estimators>
#[doc(alias = "GKVOL")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RangeVolatility {
    cfg: RangeVolatilityConfig,
    ring: RollingSum,
}
impl RangeVolatility {
    /// A new feature; the window is validated.
    pub fn new(cfg: RangeVolatilityConfig) -> crate::Result<Self> {
        check_window("range_volatility.window", cfg.window, 1)?;
        Ok(Self {
            cfg,
            ring: RollingSum::new(cfg.window),
        })
    }
    /// The per-bar variance estimate.
    pub fn bar_variance(est: RangeEstimator, o: f64, h: f64, l: f64, c: f64) -> f64 {
        let hl = (h / l).ln();
        match est {
            RangeEstimator::Parkinson => hl * hl / (4.0 * std::f64::consts::LN_2),
            RangeEstimator::GarmanKlass => {
                let co = (c / o).ln();
                (0.5 * hl * hl - (2.0 * std::f64::consts::LN_2 - 1.0) * co * co).max(0.0)
            }
            RangeEstimator::RogersSatchell => {
                (h / c).ln() * (h / o).ln() + (l / c).ln() * (l / o).ln()
            }
        }
    }
}
impl Default for RangeVolatility {
    fn default() -> Self {
        Self {
            cfg: RangeVolatilityConfig::default(),
            ring: RollingSum::new(20),
        }
    }
}
impl<I: Open + High + Low + Close> Streaming<I> for RangeVolatility {
    type Output = f64;
    #[inline]
    fn update(&mut self, x: &I) -> Option<f64> {
        let v = Self::bar_variance(self.cfg.estimator, x.open(), x.high(), x.low(), x.close());
        let sum = self.ring.push(v);
        self.ring
            .is_full()
            .then(|| (sum.max(0.0) / self.cfg.window as f64).sqrt())
    }
    fn reset(&mut self) {
        self.ring.clear();
    }
    fn warmup(&self) -> usize {
        self.cfg.window
    }
}
impl fmt::Display for RangeVolatility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = match self.cfg.estimator {
            RangeEstimator::Parkinson => "PK",
            RangeEstimator::GarmanKlass => "GK",
            RangeEstimator::RogersSatchell => "RS",
        };
        write!(f, "{e}VOL({})", self.cfg.window)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(
        RangeVolatility,
        RangeVolatilityConfig {
            window: 5,
            estimator: RangeEstimator::RogersSatchell
        }
    );
}
