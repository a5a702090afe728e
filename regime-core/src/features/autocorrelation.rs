use super::{check_window, Ring, Streaming};
use crate::bars::Close;
use std::fmt;

/// Settings of [`Autocorrelation`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AutocorrelationConfig {
    /// Number of (r_{t−1}, r_t) pairs in the window.
    pub window: usize,
}
impl Default for AutocorrelationConfig {
    fn default() -> Self {
        Self { window: 50 }
    }
}

/// Rolling lag-1 autocorrelation of log returns: the structure signal (> 0 trending,
/// < 0 mean-reverting).
///
/// # Formula
/// Pearson correlation of the last n pairs `(r_{i−1}, r_i)`; 0 when either side has no variance.
/// # Parameters
/// `window` (n ≥ 3).
/// # Example
/// ```
/// use regime_core::features::{Autocorrelation, AutocorrelationConfig, Streaming};
/// let mut f = Autocorrelation::new(AutocorrelationConfig { window: 3 }).unwrap();
/// let mut out = None;
/// for c in [100.0, 101.0, 100.0, 101.0, 100.0, 101.0] {
///     out = f.update(&c);
/// }
/// assert!(out.unwrap() < -0.99); // alternating moves
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Autocorrelation>
#[doc(alias = "AC1")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Autocorrelation {
    cfg: AutocorrelationConfig,
    prev_close: Option<f64>,
    prev_r: Option<f64>,
    xs: Ring,
    ys: Ring,
    s: [f64; 5],
}
impl Autocorrelation {
    /// A new feature; the window is validated.
    pub fn new(cfg: AutocorrelationConfig) -> crate::Result<Self> {
        check_window("autocorrelation.window", cfg.window, 3)?;
        Ok(Self {
            cfg,
            prev_close: None,
            prev_r: None,
            xs: Ring::new(cfg.window),
            ys: Ring::new(cfg.window),
            s: [0.0; 5],
        })
    }
}
impl Default for Autocorrelation {
    fn default() -> Self {
        Self::new(AutocorrelationConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}
impl<I: Close> Streaming<I> for Autocorrelation {
    type Output = f64;
    #[inline]
    fn update(&mut self, x: &I) -> Option<f64> {
        let lc = x.close().ln();
        let r = lc - self.prev_close.replace(lc)?;
        let xp = self.prev_r.replace(r)?;
        let add = [xp, r, xp * xp, r * r, xp * r];
        for (s, a) in self.s.iter_mut().zip(add) {
            *s += a;
        }
        if let (Some(ox), Some(oy)) = (self.xs.push(xp), self.ys.push(r)) {
            let sub = [ox, oy, ox * ox, oy * oy, ox * oy];
            for (s, a) in self.s.iter_mut().zip(sub) {
                *s -= a;
            }
        }
        if self.xs.wrapped() {
            let mut s = [0.0; 5];
            for (a, b) in self.xs.iter().zip(self.ys.iter()) {
                s[0] += a;
                s[1] += b;
                s[2] += a * a;
                s[3] += b * b;
                s[4] += a * b;
            }
            self.s = s;
        }
        if !self.xs.is_full() {
            return None;
        }
        let n = self.cfg.window as f64;
        let vx = self.s[2] - self.s[0] * self.s[0] / n;
        let vy = self.s[3] - self.s[1] * self.s[1] / n;
        let c = self.s[4] - self.s[0] * self.s[1] / n;
        Some(if vx > 1e-300 && vy > 1e-300 {
            (c / (vx * vy).sqrt()).clamp(-1.0, 1.0)
        } else {
            0.0
        })
    }
    fn reset(&mut self) {
        self.prev_close = None;
        self.prev_r = None;
        self.xs.clear();
        self.ys.clear();
        self.s = [0.0; 5];
    }
    fn warmup(&self) -> usize {
        self.cfg.window + 2
    }
}
impl fmt::Display for Autocorrelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AC1({})", self.cfg.window)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(Autocorrelation, AutocorrelationConfig { window: 20 });
}
