use super::Streaming;
use crate::bars::Close;
use std::fmt;

/// Settings of [`KalmanTrend`] (noise ratios are relative to the running return variance,
/// so one setting fits any instrument).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KalmanTrendConfig {
    /// Level noise / return variance.
    pub level_noise: f64,
    /// Slope noise / return variance.
    pub slope_noise: f64,
    /// Decay of the running return variance.
    pub variance_decay: f64,
}
impl Default for KalmanTrendConfig {
    fn default() -> Self {
        Self {
            level_noise: 0.5,
            slope_noise: 1e-4,
            variance_decay: 0.97,
        }
    }
}

/// One output of [`KalmanTrend`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KalmanTrendOutput {
    /// Filtered log-price level.
    pub level: f64,
    /// Filtered slope (log return per bar).
    pub slope: f64,
    /// Standard deviation of the slope estimate.
    pub slope_std: f64,
}
impl KalmanTrendOutput {
    /// Slope in units of its own uncertainty.
    pub fn z(&self) -> f64 {
        if self.slope_std > 0.0 {
            self.slope / self.slope_std
        } else {
            0.0
        }
    }
}

/// Kalman-filtered trend of log price (local linear trend model): the `adaptive_noise_filter`.
///
/// # Formula
/// State `[level, slope]`, `level_t = level_{t−1} + slope_{t−1} + w₁`, `slope_t = slope_{t−1} + w₂`,
/// observation `ln C_t = level_t + v`; `Var v = σ̂²`, `Var w₁ = q_l σ̂²`, `Var w₂ = q_s σ̂²`, where
/// `σ̂²` is an EWMA of squared returns.
/// # Parameters
/// `level_noise` (q_l), `slope_noise` (q_s), `variance_decay` in (0, 1).
/// # Example
/// ```
/// use regime_core::features::{KalmanTrend, KalmanTrendConfig, Streaming};
/// let mut f = KalmanTrend::new(KalmanTrendConfig::default()).unwrap();
/// let mut out = None;
/// for i in 0..200 {
///     out = f.update(&(100.0 * (0.01 * i as f64 + 0.002 * ((i % 3) as f64)).exp()));
/// }
/// assert!(out.unwrap().slope > 0.005);
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Kalman_filter>
#[doc(alias = "KALMAN")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KalmanTrend {
    cfg: KalmanTrendConfig,
    x: [f64; 2],
    p: [[f64; 2]; 2],
    var: f64,
    prev: Option<f64>,
    n: usize,
}
impl KalmanTrend {
    /// A new filter; the settings are validated.
    pub fn new(cfg: KalmanTrendConfig) -> crate::Result<Self> {
        crate::ensure!(
            cfg.level_noise >= 0.0 && cfg.level_noise.is_finite(),
            "kalman_trend.level_noise",
            "must be >= 0"
        );
        crate::ensure!(
            cfg.slope_noise > 0.0 && cfg.slope_noise.is_finite(),
            "kalman_trend.slope_noise",
            "must be > 0"
        );
        crate::ensure!(
            cfg.variance_decay > 0.0 && cfg.variance_decay < 1.0,
            "kalman_trend.variance_decay",
            "must be in (0, 1)"
        );
        Ok(Self {
            cfg,
            x: [0.0; 2],
            p: [[0.0; 2]; 2],
            var: 0.0,
            prev: None,
            n: 0,
        })
    }
}
impl Default for KalmanTrend {
    fn default() -> Self {
        Self::new(KalmanTrendConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}
impl<I: Close> Streaming<I> for KalmanTrend {
    type Output = KalmanTrendOutput;
    #[inline]
    fn update(&mut self, x: &I) -> Option<KalmanTrendOutput> {
        let y = x.close().ln();
        self.n += 1;
        let Some(prev) = self.prev.replace(y) else {
            self.x = [y, 0.0];
            return None;
        };
        let r = y - prev;
        let d = self.cfg.variance_decay;
        if self.n == 2 {
            self.var = r * r;
            self.x = [y, 0.0];
            self.p = [[self.var, 0.0], [0.0, self.var]];
            return None;
        }
        self.var = d * self.var + (1.0 - d) * r * r;
        let s2 = self.var.max(1e-18);
        // predict
        let [l, b] = self.x;
        let xp = [l + b, b];
        let p = self.p;
        let mut pp = [
            [p[0][0] + 2.0 * p[0][1] + p[1][1], p[0][1] + p[1][1]],
            [p[0][1] + p[1][1], p[1][1]],
        ];
        pp[0][0] += self.cfg.level_noise * s2;
        pp[1][1] += self.cfg.slope_noise * s2;
        // correct
        let s = pp[0][0] + s2;
        let k0 = pp[0][0] / s;
        let k1 = pp[1][0] / s;
        let innov = y - xp[0];
        self.x = [xp[0] + k0 * innov, xp[1] + k1 * innov];
        self.p = [
            [(1.0 - k0) * pp[0][0], (1.0 - k0) * pp[0][1]],
            [pp[1][0] - k1 * pp[0][0], pp[1][1] - k1 * pp[0][1]],
        ];
        // keep symmetry
        let off = 0.5 * (self.p[0][1] + self.p[1][0]);
        self.p[0][1] = off;
        self.p[1][0] = off;
        Some(KalmanTrendOutput {
            level: self.x[0],
            slope: self.x[1],
            slope_std: self.p[1][1].max(0.0).sqrt(),
        })
    }
    fn reset(&mut self) {
        self.x = [0.0; 2];
        self.p = [[0.0; 2]; 2];
        self.var = 0.0;
        self.prev = None;
        self.n = 0;
    }
    fn warmup(&self) -> usize {
        3
    }
}
impl fmt::Display for KalmanTrend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KALMAN({},{})",
            self.cfg.level_noise, self.cfg.slope_noise
        )
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(KalmanTrend, KalmanTrendConfig::default());
}
