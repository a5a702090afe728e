//! `regime-core`: the 18 market regimes, bar validation, streaming features, the online
//! joint HMM and the causal detection pipeline (SPEC §1–3).
//!
//! Features by group:
//! * returns: [`features::LogReturn`]
//! * volatility: [`features::RealizedVolatility`], [`features::EwmaVolatility`],
//!   [`features::RangeVolatility`] (Parkinson / Garman–Klass / Rogers–Satchell), [`features::Atr`],
//!   [`features::RelativeVolume`]
//! * trend: [`features::TrendTStat`], [`features::EfficiencyRatio`], [`features::KalmanTrend`]
//! * structure: [`features::Autocorrelation`], [`features::VarianceRatio`]

// Numeric kernels index several arrays in lockstep; iterator rewrites obscure the math.
#![allow(clippy::needless_range_loop)]

pub mod backend;
pub mod bars;
pub mod error;
pub mod features;
pub mod hmm;
pub mod model;
pub mod pipeline;
pub mod regime;

pub use error::{Error, Result};
pub use regime::{Regime, Structure, Trend, Volatility};
