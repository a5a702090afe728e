use super::{check_window, Ring, RollingSum, Streaming};
use crate::bars::Close;
use std::fmt;

/// Settings of [`EfficiencyRatio`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EfficiencyRatioConfig {
    /// Bars in the window.
    pub window: usize,
}
impl Default for EfficiencyRatioConfig {
    fn default() -> Self {
        Self { window: 20 }
    }
}

/// Kaufman's efficiency ratio: net move over the path length, in [0, 1].
///
/// # Formula
/// `ER_t = |C_t − C_{t−n}| / Σ_{i=t−n+1}^{t} |C_i − C_{i−1}|` (0 on a flat path).
/// # Parameters
/// `window` (n ≥ 1).
/// # Example
/// ```
/// use regime_core::features::{EfficiencyRatio, EfficiencyRatioConfig, Streaming};
/// let mut f = EfficiencyRatio::new(EfficiencyRatioConfig { window: 2 }).unwrap();
/// f.update(&10.0);
/// f.update(&11.0);
/// assert_eq!(f.update(&10.0), Some(0.0));
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Kaufman%27s_Adaptive_Moving_Average>
#[doc(alias = "ER")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EfficiencyRatio {
    cfg: EfficiencyRatioConfig,
    closes: Ring,
    moves: RollingSum,
    path: f64,
}
impl EfficiencyRatio {
    /// A new feature; the window is validated.
    pub fn new(cfg: EfficiencyRatioConfig) -> crate::Result<Self> {
        check_window("efficiency_ratio.window", cfg.window, 1)?;
        Ok(Self {
            cfg,
            closes: Ring::new(cfg.window + 1),
            moves: RollingSum::new(cfg.window),
            path: 0.0,
        })
    }
}
impl Default for EfficiencyRatio {
    fn default() -> Self {
        Self::new(EfficiencyRatioConfig::default()).unwrap_or_else(|_| unreachable!())
    }
}
impl<I: Close> Streaming<I> for EfficiencyRatio {
    type Output = f64;
    fn update(&mut self, x: &I) -> Option<f64> {
        let c = x.close();
        if let Some(prev) = self.closes.back(0) {
            self.path = self.moves.push((c - prev).abs());
        }
        self.closes.push(c);
        if !self.closes.is_full() {
            return None;
        }
        let first = self.closes.back(self.cfg.window)?;
        Some(if self.path > 0.0 {
            ((c - first).abs() / self.path).min(1.0)
        } else {
            0.0
        })
    }
    fn reset(&mut self) {
        self.closes.clear();
        self.moves.clear();
        self.path = 0.0;
    }
    fn warmup(&self) -> usize {
        self.cfg.window + 1
    }
}
impl fmt::Display for EfficiencyRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ER({})", self.cfg.window)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(EfficiencyRatio, EfficiencyRatioConfig { window: 10 });
}
