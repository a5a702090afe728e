//! Features + emission + forward filter for a large panel on one backend, with the time
//! split (upload / kernels / read-back) and the share of the card's memory bandwidth.
//!
//! `cargo run --release -p regime-kernels --example gpu_throughput -- cuda 5000 100000`
//! (backend `cuda`, `wgpu` or `cpu`; symbols; bars per symbol). The bandwidth-bound limit
//! counts the bytes the fused kernel must move: 20 B of OHLCV in and 36 B of
//! probabilities and id out per bar. One JSON line per timed run.

use regime_core::backend::{ComputeBackend, CpuBackend, Panel, ParamTable};
use regime_kernels::plan::RunStats;
use serde_json::json;
use std::time::Instant;

const BYTES_PER_BAR: f64 = 20.0 + 36.0;

fn panel(symbols: usize, bars: usize) -> (Panel, ParamTable) {
    let distinct = symbols.clamp(1, 32);
    let cfg = datasets::SynthConfig {
        symbols: distinct,
        bars,
        ..Default::default()
    };
    let data = datasets::generate(&cfg, 4242);
    let refs: Vec<&[regime_core::bars::Bar]> = (0..symbols)
        .map(|s| data[s % distinct].bars.as_slice())
        .collect();
    let models: Vec<_> = (0..symbols)
        .map(|s| data[s % distinct].true_params.clone())
        .collect();
    (
        Panel::from_series(&refs).expect("panel"),
        ParamTable::new(&models).expect("models"),
    )
}

fn report(b: &dyn ComputeBackend, rows: usize, wall: f64, st: Option<RunStats>, peak: Option<f64>) {
    let mut line = json!({
        "backend": b.name(),
        "device": b.device(),
        "rows": rows,
        "wall_s": wall,
        "bars_per_s": rows as f64 / wall,
    });
    if let Some(st) = st {
        let k = st.main_kernel_s.max(1e-12);
        let gbs = rows as f64 * BYTES_PER_BAR / k / 1e9;
        line["upload_s"] = json!(st.upload_s);
        line["kernel_s"] = json!(st.kernel_s);
        line["main_kernel_s"] = json!(st.main_kernel_s);
        line["readback_s"] = json!(st.readback_s);
        line["launches"] = json!(st.launches);
        line["handoff_rounds"] = json!(st.handoff_rounds);
        line["kernel_bars_per_s"] = json!(rows as f64 / k);
        line["kernel_gb_per_s"] = json!(gbs);
        if let Some(p) = peak {
            line["peak_gb_per_s"] = json!(p / 1e9);
            line["share_of_bandwidth_bound"] = json!(gbs * 1e9 / p);
        }
    }
    println!("{line}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map(String::as_str).unwrap_or("cpu");
    let symbols: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(500);
    let bars: usize = args
        .get(3)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let t = Instant::now();
    let (p, params) = panel(symbols, bars);
    eprintln!(
        "panel {symbols} x {bars} built in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    match backend {
        "cuda" => {
            let b = regime_kernels::cuda::CudaBackend::new(0, Default::default())?;
            b.detect(&p, &params)?; // warm-up: kernels loaded, buffers allocated
            for _ in 0..3 {
                let t = Instant::now();
                b.detect(&p, &params)?;
                let wall = t.elapsed().as_secs_f64();
                report(&b, p.len(), wall, Some(b.last_run()), b.peak_bandwidth());
            }
        }
        "wgpu" => {
            let b = regime_kernels::wgpu::WgpuBackend::new(Default::default())?;
            b.detect(&p, &params)?;
            for _ in 0..3 {
                let t = Instant::now();
                b.detect(&p, &params)?;
                let wall = t.elapsed().as_secs_f64();
                report(&b, p.len(), wall, Some(b.last_run()), None);
            }
        }
        _ => {
            let b = CpuBackend::new();
            for _ in 0..3 {
                let t = Instant::now();
                b.detect(&p, &params)?;
                report(&b, p.len(), t.elapsed().as_secs_f64(), None, None);
            }
        }
    }
    Ok(())
}
