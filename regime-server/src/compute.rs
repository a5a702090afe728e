//! The compute backend of the service (SPEC §8): chosen at start from
//! `performance.backend` (or `REGIME_DEVICE`), then checked against the CPU reference on a
//! known synthetic panel before it is trusted. A GPU that disagrees is logged as an
//! error and the CPU is used instead; an explicitly requested backend that is absent stops
//! the start with a clear error.

use regime_core::backend::testing::{check_close, compare, PROBABILITY};
use regime_core::backend::{ComputeBackend, CpuBackend, Panel, ParamTable};
use regime_kernels::Preference;
use serde_json::{json, Value};
use std::sync::Arc;

/// The backend in use and how it was chosen.
#[derive(Debug, Clone)]
pub struct ComputeInfo {
    /// The backend.
    pub backend: Arc<dyn ComputeBackend>,
    /// What was asked for.
    pub requested: Preference,
    /// Why this one.
    pub reason: String,
    /// The start-up comparison with the CPU reference.
    pub self_test: Value,
}

impl ComputeInfo {
    /// `cpu`, `cuda` or `wgpu`.
    pub fn name(&self) -> &'static str {
        self.backend.name()
    }

    /// The `/components` view.
    pub fn view(&self) -> Value {
        json!({
            "state": "running",
            "backend": self.name(),
            "device": self.backend.device(),
            "requested": self.requested.to_string(),
            "reason": self.reason,
            "self_test": self.self_test,
        })
    }
}

/// `REGIME_DEVICE` when set, else `performance.backend`.
pub fn preference(configured: &str) -> regime_core::Result<Preference> {
    if std::env::var_os("REGIME_DEVICE").is_some() {
        return Preference::from_env();
    }
    configured.parse()
}

/// Run `backend` and the CPU reference on a seeded synthetic panel with its true models.
pub fn self_test(backend: &dyn ComputeBackend) -> Value {
    let cfg = datasets::SynthConfig {
        symbols: 4,
        bars: 2000,
        ..Default::default()
    };
    let data = datasets::generate(&cfg, 2026);
    let refs: Vec<&[regime_core::bars::Bar]> = data.iter().map(|d| d.bars.as_slice()).collect();
    let models: Vec<_> = data.iter().map(|d| d.true_params.clone()).collect();
    let run = || -> regime_core::Result<Value> {
        let panel = Panel::from_series(&refs)?;
        let table = ParamTable::new(&models)?;
        let t = std::time::Instant::now();
        let got = backend.detect(&panel, &table)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let want = CpuBackend::new().detect(&panel, &table)?;
        let a = compare(&got, &want);
        let close = check_close(&got.probs, &want.probs, PROBABILITY);
        Ok(json!({
            "passed": close.is_ok() && a.real_differences.is_empty(),
            "rows": a.rows,
            "equal_ids": a.share_equal(),
            "near_ties": a.near_ties,
            "max_prob_diff": a.max_prob_diff,
            "ms": ms,
            "first_difference": close.err(),
        }))
    };
    run().unwrap_or_else(|e| json!({"passed": false, "error": e.to_string()}))
}

/// Choose, self-test and (when the test fails) fall back to the CPU.
pub fn choose(configured: &str) -> regime_core::Result<ComputeInfo> {
    let requested = preference(configured)?;
    let selected = regime_kernels::select(requested)?;
    if selected.backend.name() == "cpu" {
        return Ok(ComputeInfo {
            backend: selected.backend,
            requested,
            reason: selected.reason,
            self_test: json!({"passed": true, "reference": true}),
        });
    }
    let test = self_test(selected.backend.as_ref());
    if test["passed"].as_bool() == Some(true) {
        tracing::info!(
            backend = selected.backend.name(),
            "compute self-test passed: {test}"
        );
        return Ok(ComputeInfo {
            backend: selected.backend,
            requested,
            reason: selected.reason,
            self_test: test,
        });
    }
    tracing::error!(
        backend = selected.backend.name(),
        "compute self-test FAILED against the CPU reference, using the CPU: {test}"
    );
    Ok(ComputeInfo {
        backend: Arc::new(CpuBackend::new()),
        requested,
        reason: format!(
            "backend cpu: {} failed its self-test against the CPU reference",
            selected.backend.name()
        ),
        self_test: test,
    })
}
