use super::Streaming;
use crate::bars::Close;
use std::fmt;

/// Close-to-close log return `ln(c_t / c_{t-1})`.
///
/// # Formula
/// `r_t = ln(close_t) − ln(close_{t−1})`
/// # Parameters
/// None.
/// # Example
/// ```
/// use regime_core::features::{LogReturn, Streaming};
/// let mut f = LogReturn::default();
/// assert_eq!(f.update(&100.0), None);
/// assert!((f.update(&110.0).unwrap() - 0.0953101798).abs() < 1e-9);
/// ```
/// # Links
/// <https://en.wikipedia.org/wiki/Rate_of_return#Logarithmic_or_continuously_compounded_return>
#[doc(alias = "RET")]
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LogReturn {
    prev: Option<f64>,
}

impl LogReturn {
    /// A new feature (no parameters; `()` for symmetry with the others).
    pub fn new(_: ()) -> crate::Result<Self> {
        Ok(Self::default())
    }
}

impl<I: Close> Streaming<I> for LogReturn {
    type Output = f64;
    fn update(&mut self, x: &I) -> Option<f64> {
        let lc = x.close().ln();
        let out = self.prev.map(|p| lc - p);
        self.prev = Some(lc);
        out
    }
    fn reset(&mut self) {
        self.prev = None;
    }
    fn warmup(&self) -> usize {
        2
    }
}

impl fmt::Display for LogReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RET")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    crate::feature_contract!(LogReturn, ());
}
