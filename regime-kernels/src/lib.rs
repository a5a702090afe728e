//! `regime-kernels`: the compute backends behind [`regime_core::backend::ComputeBackend`]
//! (SPEC §8): the CPU reference (rayon, `f64`), CUDA through `cudarc` (CUDA C from
//! `shaders/cuda`, compiled at run time by NVRTC, so no toolkit is needed to build) and
//! `wgpu` (WGSL from `shaders/wgsl`), both `f32`.
//!
//! The GPU kernels run one thread per *chunk* of a series, so a panel is parallel over
//! symbols and time: features start each chunk from the exact extractor state (the slow
//! volume average is carried across chunks by an exact two-pass scan), and the forward
//! filter warms up over the chunk before and then **checks every hand-off** against the
//! neighbouring chunk's end state, re-running from that state where they differ
//! ([`plan`]). [`select`] picks a backend: `auto` tries CUDA, then wgpu, then the CPU and
//! says why; asking for a backend that is absent is an error, never a panic.
//!
//! With a feature off, a dummy type of the same name stands in: its constructor returns
//! [`regime_core::Error::NotCompiled`].

// Numeric host code indexes several arrays in lockstep.
#![allow(clippy::needless_range_loop)]

pub mod plan;
pub mod test_support;

#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "cuda/dummy.rs"]
pub mod cuda;

#[cfg(feature = "wgpu")]
pub mod wgpu;
#[cfg(not(feature = "wgpu"))]
#[path = "wgpu/dummy.rs"]
pub mod wgpu;

pub use regime_core::backend::{ComputeBackend, CpuBackend};
use regime_core::{Error, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Which backend to use (`REGIME_DEVICE`, `--backend`, `performance.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preference {
    /// CUDA, then wgpu, then the CPU.
    #[default]
    Auto,
    /// The CPU reference.
    Cpu,
    /// CUDA only.
    Cuda,
    /// wgpu only.
    Wgpu,
}

impl FromStr for Preference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Preference::Auto),
            "cpu" => Ok(Preference::Cpu),
            "cuda" => Ok(Preference::Cuda),
            "wgpu" => Ok(Preference::Wgpu),
            other => Err(Error::InvalidParameter {
                name: "backend".into(),
                reason: format!("`{other}` is not one of auto, cpu, cuda, wgpu"),
            }),
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preference::Auto => "auto",
            Preference::Cpu => "cpu",
            Preference::Cuda => "cuda",
            Preference::Wgpu => "wgpu",
        })
    }
}

impl Preference {
    /// From `REGIME_DEVICE` (unset or empty: `auto`).
    pub fn from_env() -> Result<Self> {
        match std::env::var("REGIME_DEVICE") {
            Ok(v) => v.parse().map_err(|e| match e {
                Error::InvalidParameter { reason, .. } => Error::InvalidParameter {
                    name: "REGIME_DEVICE".into(),
                    reason,
                },
                e => e,
            }),
            Err(_) => Ok(Preference::Auto),
        }
    }
}

/// The chosen backend and why it was chosen.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The backend.
    pub backend: Arc<dyn ComputeBackend>,
    /// One line: what was asked, what was tried, what was picked.
    pub reason: String,
}

/// Pick a backend. `Auto` tries CUDA, then wgpu on a hardware adapter, then the CPU; an
/// explicit choice that is not compiled in or has no device is an error naming why.
pub fn select(pref: Preference) -> Result<Selected> {
    select_with(pref, &plan::GpuOptions::default())
}

/// [`select`] with chunking options for the GPU backends.
pub fn select_with(pref: Preference, opts: &plan::GpuOptions) -> Result<Selected> {
    let pick = |backend: Arc<dyn ComputeBackend>, why: String| {
        tracing::info!(backend = backend.name(), device = %backend.device(), "{why}");
        Selected {
            backend,
            reason: why,
        }
    };
    match pref {
        Preference::Cpu => Ok(pick(
            Arc::new(CpuBackend::new()),
            "backend cpu: asked for".into(),
        )),
        Preference::Cuda => {
            let b = cuda::CudaBackend::new(0, opts.clone())?;
            Ok(pick(Arc::new(b), "backend cuda: asked for".into()))
        }
        Preference::Wgpu => {
            let b = wgpu::WgpuBackend::new(opts.clone())?;
            Ok(pick(Arc::new(b), "backend wgpu: asked for".into()))
        }
        Preference::Auto => {
            let cuda_err = match cuda::CudaBackend::new(0, opts.clone()) {
                Ok(b) => return Ok(pick(Arc::new(b), "backend cuda: auto, first choice".into())),
                Err(e) => e,
            };
            let wgpu_err = match wgpu::probe() {
                Ok((name, true)) => format!(
                    "adapter {name} is a software renderer, no faster than the CPU backend; ask for --backend wgpu to use it"
                ),
                Ok(_) => match wgpu::WgpuBackend::new(opts.clone()) {
                    Ok(b) => {
                        return Ok(pick(
                            Arc::new(b),
                            format!("backend wgpu: auto, cuda unavailable ({cuda_err})"),
                        ))
                    }
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            Ok(pick(
                Arc::new(CpuBackend::new()),
                format!("backend cpu: auto, cuda unavailable ({cuda_err}); wgpu unavailable ({wgpu_err})"),
            ))
        }
    }
}

/// The kernels, by the name they share in both languages (entry point `<name>_f32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelId {
    /// The slow volume average across chunks (two passes).
    VolumeScan,
    /// The five feature channels.
    Features,
    /// Emission log-likelihoods from features.
    Emission,
    /// The forward filter from log-likelihoods.
    Filter,
    /// Features, emission and filter fused.
    Detect,
}

impl KernelId {
    /// Every kernel.
    pub const ALL: [KernelId; 5] = [
        KernelId::VolumeScan,
        KernelId::Features,
        KernelId::Emission,
        KernelId::Filter,
        KernelId::Detect,
    ];
    /// The shared name.
    pub fn name(self) -> &'static str {
        match self {
            KernelId::VolumeScan => "volume_scan",
            KernelId::Features => "features",
            KernelId::Emission => "emission",
            KernelId::Filter => "filter",
            KernelId::Detect => "detect",
        }
    }
    /// The entry point, `<name>_f32`.
    pub fn entry(self) -> &'static str {
        match self {
            KernelId::VolumeScan => "volume_scan_f32",
            KernelId::Features => "features_f32",
            KernelId::Emission => "emission_f32",
            KernelId::Filter => "filter_f32",
            KernelId::Detect => "detect_f32",
        }
    }
    /// The complete CUDA C source (common header prepended).
    pub fn cuda_source(self) -> String {
        let body = match self {
            KernelId::VolumeScan => include_str!("../../shaders/cuda/volume_scan.cu"),
            KernelId::Features => include_str!("../../shaders/cuda/features.cu"),
            KernelId::Emission => include_str!("../../shaders/cuda/emission.cu"),
            KernelId::Filter => include_str!("../../shaders/cuda/filter.cu"),
            KernelId::Detect => include_str!("../../shaders/cuda/detect.cu"),
        };
        format!(
            "{}\n{}",
            include_str!("../../shaders/cuda/common.cuh"),
            body
        )
    }
    /// The complete WGSL source (common part prepended).
    pub fn wgsl_source(self) -> String {
        let body = match self {
            KernelId::VolumeScan => include_str!("../../shaders/wgsl/volume_scan.wgsl"),
            KernelId::Features => include_str!("../../shaders/wgsl/features.wgsl"),
            KernelId::Emission => include_str!("../../shaders/wgsl/emission.wgsl"),
            KernelId::Filter => include_str!("../../shaders/wgsl/filter.wgsl"),
            KernelId::Detect => include_str!("../../shaders/wgsl/detect.wgsl"),
        };
        format!(
            "{}\n{}",
            include_str!("../../shaders/wgsl/common.wgsl"),
            body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preferences_parse_and_name_bad_values() {
        assert_eq!("CUDA".parse::<Preference>().ok(), Some(Preference::Cuda));
        assert_eq!("".parse::<Preference>().ok(), Some(Preference::Auto));
        let e = "tpu".parse::<Preference>().expect_err("unknown");
        assert!(e.to_string().contains("tpu"), "{e}");
    }

    #[test]
    fn cpu_is_always_available_and_auto_never_fails() {
        assert_eq!(select(Preference::Cpu).expect("cpu").backend.name(), "cpu");
        let s = select(Preference::Auto).expect("auto falls back to the cpu at worst");
        assert!(s
            .reason
            .starts_with(&format!("backend {}", s.backend.name())));
        println!("auto: {}", s.reason);
    }

    #[test]
    fn every_kernel_names_its_entry_point_in_both_languages() {
        for k in KernelId::ALL {
            assert!(k.cuda_source().contains(&format!("void {}(", k.entry())));
            assert!(k.wgsl_source().contains(&format!("fn {}(", k.entry())));
        }
    }
}
