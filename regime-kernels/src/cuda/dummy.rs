//! Stand-in when the `cuda` feature is off: same name, construction fails with
//! [`regime_core::Error::NotCompiled`].

use crate::plan::GpuOptions;
use regime_core::backend::{ComputeBackend, LogLik, ObsMatrix, Panel, ParamTable, Posteriors};
use regime_core::{Error, Result};

/// Not compiled into this build.
#[derive(Debug)]
pub struct CudaBackend {
    _never: (),
}

fn absent<T>() -> Result<T> {
    Err(Error::NotCompiled { backend: "cuda" })
}

/// Always false: the CUDA backend is not compiled in.
pub fn nvrtc_present() -> bool {
    false
}

/// Always `Err(NotCompiled)`.
pub fn compile_to_ptx(_k: crate::KernelId, _arch: Option<&str>) -> Result<String> {
    absent()
}

impl CudaBackend {
    /// Always `Err(NotCompiled)`.
    pub fn new(_ordinal: usize, _opts: GpuOptions) -> Result<Self> {
        absent()
    }
}

impl ComputeBackend for CudaBackend {
    fn name(&self) -> &'static str {
        "cuda"
    }
    fn device(&self) -> String {
        "not compiled".into()
    }
    fn features(&self, _: &Panel) -> Result<ObsMatrix> {
        absent()
    }
    fn emission_log_likelihood(&self, _: &ObsMatrix, _: &ParamTable) -> Result<LogLik> {
        absent()
    }
    fn forward_filter(&self, _: &LogLik, _: &ParamTable) -> Result<Posteriors> {
        absent()
    }
}
