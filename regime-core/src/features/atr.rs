use super::{check_window, Streaming};
use crate::bars::{Close, High, Low};
use std::fmt;

/// Settings of [`Atr`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AtrConfig {
    /// Wilder period.
    pub window: usize,
}
impl Default for AtrConfig {
    fn default() -> Self {
        Self { window: 14 }
    }
}

/// Average true range (Wilder), in price units.
///
/// # Formula
/// `TR_t = max(H−L, |H−C_{t−1}|, |L−C_{t−1}|)`; first ATR = mean of the first n TRs, then
/// `ATR_t = ((n−1) ATR_{t−1} + TR_t) / n`.
/// # Parameters
/// `window` (n ≥ 1).
/// # Example
/// ```
/// use regime_core::bars::Bar;
/// use regime_core::features::{Atr, AtrConfig, Streaming};
/// let mut f = Atr::new(AtrConfig { window: 2 }).unwrap();
/// assert_eq!(f.update(&Bar::new(0, 10.0, 11.0, 9.0, 10.0, 1.0)), None);
/// assert_eq!(f.update(&Bar::new(1, 10.0, 13.0, 10.0, 12.0, 1.0)), Some(2.5));
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Average_true_range>
#[doc(alias = "ATR")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Atr {
    cfg: AtrConfig,
    prev_close: Option<f64>,
    seen: usize,
    value: f64,
}
impl Atr {
    /// A new feature; the window is validated.
    pub fn new(cfg: AtrConfig) -> crate::Result<Self> {
        check_window("atr.window", cfg.window, 1)?;
        Ok(Self {
            cfg,
            prev_close: None,
            seen: 0,
            value: 0.0,
        })
    }
}
impl Default for Atr {
    fn default() -> Self {
        Self {
            cfg: AtrConfig::default(),
            prev_close: None,
            seen: 0,
            value: 0.0,
        }
    }
}
impl<I: High + Low + Close> Streaming<I> for Atr {
    type Output = f64;
    fn update(&mut self, x: &I) -> Option<f64> {
        let (h, l, c) = (x.high(), x.low(), x.close());
        let tr = match self.prev_close {
            Some(p) => (h - l).max((h - p).abs()).max((l - p).abs()),
            None => h - l,
        };
        self.prev_close = Some(c);
        self.seen += 1;
        let n = self.cfg.window as f64;
        if self.seen <= self.cfg.window {
            self.value += tr / n;
        } else {
            self.value = ((n - 1.0) * self.value + tr) / n;
        }
        (self.seen >= self.cfg.window).then_some(self.value)
    }
    fn reset(&mut self) {
        self.prev_close = None;
        self.seen = 0;
        self.value = 0.0;
    }
    fn warmup(&self) -> usize {
        self.cfg.window
    }
}
impl fmt::Display for Atr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ATR({})", self.cfg.window)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(Atr, AtrConfig { window: 7 });
}
