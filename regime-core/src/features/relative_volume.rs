use super::{check_window, Ring, Streaming};
use crate::bars::Volume;
use std::fmt;

/// Settings of [`RelativeVolume`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RelativeVolumeConfig {
    /// Bars of history the current volume is compared with.
    pub window: usize,
}
impl Default for RelativeVolumeConfig {
    fn default() -> Self {
        Self { window: 50 }
    }
}

/// Volume relative to its own history: z-score of `ln(volume)` against the previous
/// `window` bars. Bars without a positive volume are skipped (no output, no state change).
///
/// # Formula
/// `z_t = (ln V_t − mean(ln V_{t−n..t−1})) / sd(ln V_{t−n..t−1})` (0 when the sd is 0).
/// # Parameters
/// `window` (n ≥ 2).
/// # Example
/// ```
/// use regime_core::bars::Bar;
/// use regime_core::features::{RelativeVolume, RelativeVolumeConfig, Streaming};
/// let mut f = RelativeVolume::new(RelativeVolumeConfig { window: 2 }).unwrap();
/// let bar = |v: f64| Bar::new(0, 1.0, 1.0, 1.0, 1.0, v);
/// f.update(&bar(100.0));
/// f.update(&bar(400.0));
/// let z = f.update(&bar(200.0)).unwrap();
/// assert!(z.abs() < 1e-12); // ln 200 is the mean of ln 100 and ln 400
/// ```
/// # Links
/// <https://www.investopedia.com/terms/r/relative_volume.asp>
#[doc(alias = "RVOL")]
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RelativeVolume {
    cfg: RelativeVolumeConfig,
    ring: Ring,
    sum: f64,
    sumsq: f64,
}
impl RelativeVolume {
    /// A new feature; the window is validated.
    pub fn new(cfg: RelativeVolumeConfig) -> crate::Result<Self> {
        check_window("relative_volume.window", cfg.window, 2)?;
        Ok(Self {
            cfg,
            ring: Ring::new(cfg.window),
            sum: 0.0,
            sumsq: 0.0,
        })
    }
}
impl Default for RelativeVolume {
    fn default() -> Self {
        Self {
            cfg: RelativeVolumeConfig::default(),
            ring: Ring::new(50),
            sum: 0.0,
            sumsq: 0.0,
        }
    }
}
impl<I: Volume> Streaming<I> for RelativeVolume {
    type Output = f64;
    fn update(&mut self, x: &I) -> Option<f64> {
        let v = x.volume();
        if !(v > 0.0 && v.is_finite()) {
            return None;
        }
        let lv = v.ln();
        let out = if self.ring.is_full() {
            let n = self.cfg.window as f64;
            let m = self.sum / n;
            let var = (self.sumsq - self.sum * m) / (n - 1.0);
            Some(if var > 1e-12 {
                (lv - m) / var.sqrt()
            } else {
                0.0
            })
        } else {
            None
        };
        self.sum += lv;
        self.sumsq += lv * lv;
        if let Some(old) = self.ring.push(lv) {
            self.sum -= old;
            self.sumsq -= old * old;
        }
        if self.ring.wrapped() {
            self.sum = self.ring.iter().sum();
            self.sumsq = self.ring.iter().map(|x| x * x).sum();
        }
        out
    }
    fn reset(&mut self) {
        self.ring.clear();
        self.sum = 0.0;
        self.sumsq = 0.0;
    }
    fn warmup(&self) -> usize {
        self.cfg.window + 1
    }
}
impl fmt::Display for RelativeVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RVOL({})", self.cfg.window)
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn skips_bars_without_volume() {
        let mut f = RelativeVolume::new(RelativeVolumeConfig { window: 2 }).expect("valid");
        assert_eq!(f.update(&crate::bars::Bar::close_only(0, 1.0)), None);
        assert_eq!(Streaming::<f64>::warmup(&f), 3);
    }
}
