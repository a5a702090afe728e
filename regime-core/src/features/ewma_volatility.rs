use super::Streaming;
use crate::bars::Close;
use std::fmt;

/// Settings of [`EwmaVolatility`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EwmaVolatilityConfig {
    /// Decay λ in (0, 1) (RiskMetrics daily: 0.94).
    pub lambda: f64,
}
impl Default for EwmaVolatilityConfig {
    fn default() -> Self {
        Self { lambda: 0.94 }
    }
}

/// Exponentially weighted volatility of log returns (RiskMetrics).
///
/// # Formula
/// `σ²_t = λ σ²_{t−1} + (1 − λ) r_t²`, started at `r_1²`.
/// # Parameters
/// `lambda` in (0, 1).
/// # Example
/// ```
/// use regime_core::features::{EwmaVolatility, EwmaVolatilityConfig, Streaming};
/// let mut f = EwmaVolatility::new(EwmaVolatilityConfig { lambda: 0.5 }).unwrap();
/// f.update(&100.0);
/// let a = f.update(&(100.0 * 0.01f64.exp())).unwrap();
/// assert!((a - 0.01).abs() < 1e-12);
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/RiskMetrics>
#[doc(alias = "EWMAVOL")]
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EwmaVolatility {
    cfg: EwmaVolatilityConfig,
    prev: Option<f64>,
    var: Option<f64>,
}
impl EwmaVolatility {
    /// A new feature; λ is validated.
    pub fn new(cfg: EwmaVolatilityConfig) -> crate::Result<Self> {
        crate::ensure!(
            cfg.lambda > 0.0 && cfg.lambda < 1.0,
            "ewma_volatility.lambda",
            "must be in (0, 1), got {}",
            cfg.lambda
        );
        Ok(Self {
            cfg,
            prev: None,
            var: None,
        })
    }
}
impl<I: Close> Streaming<I> for EwmaVolatility {
    type Output = f64;
    fn update(&mut self, x: &I) -> Option<f64> {
        let lc = x.close().ln();
        let prev = self.prev.replace(lc)?;
        let r2 = (lc - prev).powi(2);
        let l = self.cfg.lambda;
        let v = self.var.map_or(r2, |v| l * v + (1.0 - l) * r2);
        self.var = Some(v);
        Some(v.sqrt())
    }
    fn reset(&mut self) {
        self.prev = None;
        self.var = None;
    }
    fn warmup(&self) -> usize {
        2
    }
}
impl fmt::Display for EwmaVolatility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EWMAVOL({})", self.cfg.lambda)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(EwmaVolatility, EwmaVolatilityConfig { lambda: 0.9 });
    #[test]
    fn bad_lambda_is_an_error() {
        assert!(EwmaVolatility::new(EwmaVolatilityConfig { lambda: 1.0 }).is_err());
    }
}
