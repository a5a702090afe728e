//! The crate's error type.

use thiserror::Error;

/// Result alias used throughout `regime-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure `regime-core` can report.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    // ---- parameters and models ----
    /// A configuration parameter is out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name (key path where known).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A model failed validation (e.g. a transition row does not sum to one).
    #[error("invalid model: {0}")]
    InvalidModel(String),

    // ---- data ----
    /// Input arrays do not have the expected shape.
    #[error("shape mismatch in {op}: expected {expected}, got {got}")]
    Shape {
        /// Operation that checked the shape.
        op: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A bar was rejected by validation.
    #[error("row {row}: {reason}")]
    BadBar {
        /// 1-based data row number in the input.
        row: usize,
        /// Why it was rejected.
        reason: crate::bars::RejectReason,
    },
    /// No usable data where some was required.
    #[error("no data: {0}")]
    NoData(String),
    /// A series' prices span more than the compute backends' `f32` holds, rescaled or not.
    #[error(
        "series {series}, bar {bar}: its prices run from {lo:e} to {hi:e}, a span the compute \
         backends' f32 cannot hold (10^76 at most); the adaptive pipeline reads them in f64"
    )]
    PriceSpan {
        /// Index of the series in its panel.
        series: usize,
        /// Index of the first bar out of reach, within its series.
        bar: usize,
        /// The series' lowest positive price.
        lo: f64,
        /// The series' highest price.
        hi: f64,
    },
    /// Numerical failure (underflow of every state, non-finite value).
    #[error("numerical failure in {op}: {detail}")]
    Numerical {
        /// Operation that failed.
        op: &'static str,
        /// Details.
        detail: String,
    },

    // ---- backends ----
    /// A compute backend failed.
    #[error("backend error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// A backend that this build does not include was asked for.
    #[error(
        "backend `{backend}` is not compiled into this build (rebuild with `--features {backend}`)"
    )]
    NotCompiled {
        /// `cuda` or `wgpu`.
        backend: &'static str,
    },
    /// A backend is compiled in but has no usable device or library here.
    #[error("backend `{backend}` is unavailable: {reason}")]
    Unavailable {
        /// `cuda` or `wgpu`.
        backend: &'static str,
        /// Why (no driver library, no adapter, compile failure...).
        reason: String,
    },
}

/// Return early with an [`Error::InvalidParameter`] unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $name:expr, $($arg:tt)+) => {
        if !$cond {
            return Err($crate::Error::InvalidParameter {
                name: ($name).to_string(),
                reason: format!($($arg)+),
            });
        }
    };
}

/// Return early with an [`Error::InvalidParameter`].
#[macro_export]
macro_rules! bail {
    ($name:expr, $($arg:tt)+) => {
        return Err($crate::Error::InvalidParameter {
            name: ($name).to_string(),
            reason: format!($($arg)+),
        })
    };
}
