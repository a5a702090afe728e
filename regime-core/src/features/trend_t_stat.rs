use super::{check_window, Ring, Streaming};
use crate::bars::Close;
use std::fmt;

/// Settings of [`TrendTStat`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrendTStatConfig {
    /// Bars in the regression window.
    pub window: usize,
}
impl Default for TrendTStatConfig {
    fn default() -> Self {
        Self { window: 50 }
    }
}

/// t-statistic of the OLS slope of log price on time over a rolling window.
///
/// # Formula
/// Regress `y_i = ln C` on `i = 0..n−1`: `b = Sxy/Sxx`, `se = sqrt(SSE/(n−2)/Sxx)`, `t = b/se`;
/// clamped to ±100 (a perfectly straight line has no residual).
/// # Parameters
/// `window` (n ≥ 3).
/// # Example
/// ```
/// use regime_core::features::{Streaming, TrendTStat, TrendTStatConfig};
/// let mut f = TrendTStat::new(TrendTStatConfig { window: 3 }).unwrap();
/// f.update(&100.0);
/// f.update(&101.0);
/// assert_eq!(f.update(&101.0).map(|t| t > 0.0), Some(true));
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Simple_linear_regression#Slope_inference>
#[doc(alias = "TSTAT")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TrendTStat {
    cfg: TrendTStatConfig,
    ring: Ring,
    sy: f64,
    syy: f64,
    sty: f64,
}
impl TrendTStat {
    /// A new feature; the window is validated.
    pub fn new(cfg: TrendTStatConfig) -> crate::Result<Self> {
        check_window("trend_t_stat.window", cfg.window, 3)?;
        Ok(Self {
            cfg,
            ring: Ring::new(cfg.window),
            sy: 0.0,
            syy: 0.0,
            sty: 0.0,
        })
    }
    fn refresh(&mut self) {
        self.sy = 0.0;
        self.syy = 0.0;
        self.sty = 0.0;
        for (i, y) in self.ring.iter().enumerate() {
            self.sy += y;
            self.syy += y * y;
            self.sty += i as f64 * y;
        }
    }
}
impl Default for TrendTStat {
    fn default() -> Self {
        Self::new(TrendTStatConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}
impl<I: Close> Streaming<I> for TrendTStat {
    type Output = f64;
    #[inline]
    fn update(&mut self, x: &I) -> Option<f64> {
        let y = x.close().ln();
        let len_before = self.ring.len();
        match self.ring.push(y) {
            Some(old) => {
                // positions shift down by one, the new value enters at n−1
                self.sty -= self.sy - old;
                self.sy += y - old;
                self.syy += y * y - old * old;
                self.sty += (self.cfg.window - 1) as f64 * y;
            }
            None => {
                self.sy += y;
                self.syy += y * y;
                self.sty += len_before as f64 * y;
            }
        }
        if self.ring.wrapped() {
            self.refresh();
        }
        if !self.ring.is_full() {
            return None;
        }
        let n = self.cfg.window as f64;
        let st = n * (n - 1.0) / 2.0;
        let sxx = n * (n * n - 1.0) / 12.0;
        let sxy = self.sty - st * self.sy / n;
        let syy = self.syy - self.sy * self.sy / n;
        let b = sxy / sxx;
        let sse = (syy - b * sxy).max(0.0);
        let se = (sse / (n - 2.0) / sxx).sqrt();
        Some(if b == 0.0 {
            0.0
        } else if se > 0.0 {
            (b / se).clamp(-100.0, 100.0)
        } else {
            100.0 * b.signum()
        })
    }
    fn reset(&mut self) {
        self.ring.clear();
        self.sy = 0.0;
        self.syy = 0.0;
        self.sty = 0.0;
    }
    fn warmup(&self) -> usize {
        self.cfg.window
    }
}
impl fmt::Display for TrendTStat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TSTAT({})", self.cfg.window)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(TrendTStat, TrendTStatConfig { window: 20 });
    #[test]
    fn running_sums_match_a_direct_fit() {
        let bars = crate::features::contract::sample_bars(300);
        let mut f = TrendTStat::new(TrendTStatConfig { window: 20 }).expect("valid");
        for (t, b) in bars.iter().enumerate() {
            let got = f.update(b);
            if t >= 19 {
                let ys: Vec<f64> = bars[t - 19..=t].iter().map(|b| b.close.ln()).collect();
                let n = 20.0;
                let xm = 9.5;
                let ym = ys.iter().sum::<f64>() / n;
                let sxy: f64 = ys
                    .iter()
                    .enumerate()
                    .map(|(i, y)| (i as f64 - xm) * (y - ym))
                    .sum();
                let sxx: f64 = (0..20).map(|i| (i as f64 - xm).powi(2)).sum();
                let b = sxy / sxx;
                let sse: f64 = ys
                    .iter()
                    .enumerate()
                    .map(|(i, y)| (y - ym - b * (i as f64 - xm)).powi(2))
                    .sum();
                let se = (sse / (n - 2.0) / sxx).sqrt();
                let want = if se > 0.0 {
                    (b / se).clamp(-100.0, 100.0)
                } else {
                    100.0 * b.signum()
                };
                let got = got.expect("past warm-up");
                assert!(
                    (got - want).abs() < 1e-6 * want.abs().max(1.0),
                    "t={t}: {got} vs {want}"
                );
            }
        }
    }
}
