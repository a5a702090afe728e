use super::{check_window, Ring, RollingSum, Streaming};
use crate::bars::Close;
use std::fmt;

/// Settings of [`VarianceRatio`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VarianceRatioConfig {
    /// Bars in the window.
    pub window: usize,
    /// Aggregation horizon k (bars).
    pub k: usize,
}
impl Default for VarianceRatioConfig {
    fn default() -> Self {
        Self { window: 60, k: 4 }
    }
}

/// Lo–MacKinlay variance ratio over a rolling window: > 1 when moves persist, < 1 when they
/// reverse.
///
/// # Formula
/// `VR = Var(R^k) / (k · Var(r))`, `R^k_t = r_t + … + r_{t−k+1}`, both variances over the
/// last `window` values (1 when the 1-bar variance is 0).
/// # Parameters
/// `window` ≥ 4, `2 ≤ k < window`.
/// # Example
/// ```
/// use regime_core::features::{Streaming, VarianceRatio, VarianceRatioConfig};
/// let mut f = VarianceRatio::new(VarianceRatioConfig { window: 8, k: 2 }).unwrap();
/// let mut out = None;
/// for i in 0..20 {
///     out = f.update(&(100.0 + (i % 2) as f64)); // pure reversal
/// }
/// assert!(out.unwrap() < 0.2);
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Variance_ratio_test>
#[doc(alias = "VR")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VarianceRatio {
    cfg: VarianceRatioConfig,
    prev_close: Option<f64>,
    last_k: RollingSum,
    r1: Ring,
    rk: Ring,
    s: [f64; 4],
}
impl VarianceRatio {
    /// A new feature; window and k are validated.
    pub fn new(cfg: VarianceRatioConfig) -> crate::Result<Self> {
        check_window("variance_ratio.window", cfg.window, 4)?;
        crate::ensure!(
            cfg.k >= 2 && cfg.k < cfg.window,
            "variance_ratio.k",
            "must be in 2..window ({}), got {}",
            cfg.window,
            cfg.k
        );
        Ok(Self {
            cfg,
            prev_close: None,
            last_k: RollingSum::new(cfg.k),
            r1: Ring::new(cfg.window),
            rk: Ring::new(cfg.window),
            s: [0.0; 4],
        })
    }
}
impl Default for VarianceRatio {
    fn default() -> Self {
        Self::new(VarianceRatioConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}
impl<I: Close> Streaming<I> for VarianceRatio {
    type Output = f64;
    fn update(&mut self, x: &I) -> Option<f64> {
        let lc = x.close().ln();
        let r = lc - self.prev_close.replace(lc)?;
        let rk = self.last_k.push(r);
        if !self.last_k.is_full() {
            return None;
        }
        self.s[0] += r;
        self.s[1] += r * r;
        self.s[2] += rk;
        self.s[3] += rk * rk;
        if let (Some(a), Some(b)) = (self.r1.push(r), self.rk.push(rk)) {
            self.s[0] -= a;
            self.s[1] -= a * a;
            self.s[2] -= b;
            self.s[3] -= b * b;
        }
        if self.r1.wrapped() {
            let mut s = [0.0; 4];
            for (a, b) in self.r1.iter().zip(self.rk.iter()) {
                s[0] += a;
                s[1] += a * a;
                s[2] += b;
                s[3] += b * b;
            }
            self.s = s;
        }
        if !self.r1.is_full() {
            return None;
        }
        let n = self.cfg.window as f64;
        let v1 = self.s[1] - self.s[0] * self.s[0] / n;
        let vk = self.s[3] - self.s[2] * self.s[2] / n;
        Some(if v1 > 1e-300 {
            (vk / (self.cfg.k as f64 * v1)).max(0.0)
        } else {
            1.0
        })
    }
    fn reset(&mut self) {
        self.prev_close = None;
        self.last_k.clear();
        self.r1.clear();
        self.rk.clear();
        self.s = [0.0; 4];
    }
    fn warmup(&self) -> usize {
        self.cfg.k + self.cfg.window
    }
}
impl fmt::Display for VarianceRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VR({},{})", self.cfg.window, self.cfg.k)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(VarianceRatio, VarianceRatioConfig { window: 20, k: 3 });
}
