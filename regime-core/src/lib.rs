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
pub mod intraday;
pub mod model;
pub mod pipeline;
pub mod regime;
pub mod special;
pub mod splits;

pub use error::{Error, Result};
pub use regime::{Regime, Structure, Trend, Volatility};

/// Whether this CPU has the instruction-set extensions this build was compiled for
/// (`.cargo/config.toml` builds for x86-64-v3: AVX2 and FMA). The `regime` binary and the
/// Python module check it before anything else runs, so that an older CPU gets one clear
/// line instead of an illegal-instruction crash somewhere later.
pub fn check_cpu() -> std::result::Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut missing = Vec::new();
        if cfg!(target_feature = "avx2") && !std::arch::is_x86_feature_detected!("avx2") {
            missing.push("AVX2");
        }
        if cfg!(target_feature = "fma") && !std::arch::is_x86_feature_detected!("fma") {
            missing.push("FMA");
        }
        if !missing.is_empty() {
            return Err(format!(
                "this build of regime needs a CPU with {} (x86-64-v3); rebuild for this one \
                 with RUSTFLAGS=\"-C target-cpu=x86-64\" cargo build --release",
                missing.join(" and ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_machine_has_what_the_build_needs() {
        // the tests run on the machine that built them: its CPU must pass the check
        assert_eq!(super::check_cpu(), Ok(()));
    }
}
