//! Skipping GPU tests cleanly (CONVENTIONS §8): with no device a GPU test prints
//! `SKIP <test>: <reason>` and returns, unless `REGIME_REQUIRE_GPU=1`, when it fails — so a
//! GPU run cannot pass by skipping.

use crate::cuda::CudaBackend;
use crate::plan::GpuOptions;
use crate::wgpu::WgpuBackend;

fn require_gpu() -> bool {
    std::env::var("REGIME_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

fn skip_or_panic<T>(test: &str, what: &str, e: regime_core::Error) -> Option<T> {
    if require_gpu() {
        panic!("{test}: REGIME_REQUIRE_GPU=1 but {what} is unavailable: {e}");
    }
    record_skip(test, &e.to_string());
    None
}

/// Print `SKIP <test>: <reason>` and, when `REGIME_SKIP_LOG` names a file, append the line
/// there too (cargo hides a passing test's output; CI counts skips from that file).
pub fn record_skip(test: &str, reason: &str) {
    let line = format!("SKIP {test}: {}", reason.replace('\n', " "));
    println!("{line}");
    if let Some(path) = std::env::var_os("REGIME_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// A CUDA backend, or `None` after printing why the test is skipped.
pub fn cuda_or_skip(test: &str, opts: GpuOptions) -> Option<CudaBackend> {
    match CudaBackend::new(0, opts) {
        Ok(b) => Some(b),
        Err(e) => skip_or_panic(test, "CUDA", e),
    }
}

/// A wgpu backend, or `None` after printing why the test is skipped. With no adapter at
/// all the test is skipped even under `REGIME_REQUIRE_GPU=1` only if `REGIME_REQUIRE_WGPU`
/// is not `1` (CI sets it: lavapipe is installed there).
pub fn wgpu_or_skip(test: &str, opts: GpuOptions) -> Option<WgpuBackend> {
    match WgpuBackend::new(opts) {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var("REGIME_REQUIRE_WGPU").is_ok_and(|v| v == "1") {
                panic!("{test}: REGIME_REQUIRE_WGPU=1 but wgpu is unavailable: {e}");
            }
            println!("SKIP {test}: {e}");
            None
        }
    }
}
