use super::{check_window, RollingSum, Streaming};
use crate::bars::Close;
use std::fmt;

/// Settings of [`RealizedVolatility`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RealizedVolatilityConfig {
    /// Number of returns in the window.
    pub window: usize,
}
impl Default for RealizedVolatilityConfig {
    fn default() -> Self {
        Self { window: 20 }
    }
}

/// Rolling realized volatility: root mean square of the last `window` log returns.
///
/// # Formula
/// `RV_t = sqrt( (1/n) Σ_{i=0}^{n−1} r_{t−i}² )`
/// # Parameters
/// `window` (n ≥ 2).
/// # Example
/// ```
/// use regime_core::features::{RealizedVolatility, RealizedVolatilityConfig, Streaming};
/// let mut f = RealizedVolatility::new(RealizedVolatilityConfig { window: 2 }).unwrap();
/// f.update(&100.0);
/// f.update(&101.0);
/// let v = f.update(&100.0).unwrap();
/// assert!((v - 0.0099503).abs() < 1e-6);
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Realized_variance>
#[doc(alias = "RV")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RealizedVolatility {
    cfg: RealizedVolatilityConfig,
    prev: Option<f64>,
    ring: RollingSum,
}

impl RealizedVolatility {
    /// A new feature; the window is validated.
    pub fn new(cfg: RealizedVolatilityConfig) -> crate::Result<Self> {
        check_window("realized_volatility.window", cfg.window, 2)?;
        Ok(Self {
            cfg,
            prev: None,
            ring: RollingSum::new(cfg.window),
        })
    }
}
impl Default for RealizedVolatility {
    fn default() -> Self {
        Self {
            cfg: RealizedVolatilityConfig::default(),
            prev: None,
            ring: RollingSum::new(20),
        }
    }
}

impl<I: Close> Streaming<I> for RealizedVolatility {
    type Output = f64;
    fn update(&mut self, x: &I) -> Option<f64> {
        let lc = x.close().ln();
        let prev = self.prev.replace(lc)?;
        let sum = self.ring.push((lc - prev).powi(2));
        self.ring
            .is_full()
            .then(|| (sum.max(0.0) / self.cfg.window as f64).sqrt())
    }
    fn reset(&mut self) {
        self.prev = None;
        self.ring.clear();
    }
    fn warmup(&self) -> usize {
        self.cfg.window + 1
    }
}
impl fmt::Display for RealizedVolatility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RV({})", self.cfg.window)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(RealizedVolatility, RealizedVolatilityConfig { window: 10 });
    #[test]
    fn bad_window_is_an_error() {
        assert!(RealizedVolatility::new(RealizedVolatilityConfig { window: 1 }).is_err());
    }
}
