//! Stand-in when the `wgpu` feature is off: same name, construction fails with
//! [`regime_core::Error::NotCompiled`].

use crate::plan::GpuOptions;
use regime_core::backend::{ComputeBackend, LogLik, ObsMatrix, Panel, ParamTable, Posteriors};
use regime_core::{Error, Result};

/// Not compiled into this build.
#[derive(Debug)]
pub struct WgpuBackend {
    _never: (),
}

fn absent<T>() -> Result<T> {
    Err(Error::NotCompiled { backend: "wgpu" })
}

/// Always `Err(NotCompiled)`.
pub fn probe() -> Result<(String, bool)> {
    absent()
}

impl WgpuBackend {
    /// Always `Err(NotCompiled)`.
    pub fn new(_opts: GpuOptions) -> Result<Self> {
        absent()
    }
    /// Never reached (no instance exists).
    pub fn is_software(&self) -> bool {
        false
    }
}

impl ComputeBackend for WgpuBackend {
    fn name(&self) -> &'static str {
        "wgpu"
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
