//! Criterion benchmarks; group ids are `<op>/<backend>/<n_bars>`.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use regime_benches::panel;
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};
use regime_core::pipeline::{detect_panel, detect_series, PipelineConfig, SymbolPipeline};

fn pipeline_single_series(c: &mut Criterion) {
    let n = 100_000;
    let bars = panel(1, n).remove(0);
    let cfg = PipelineConfig::default();
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("cpu/{n}"), |b| {
        b.iter(|| detect_series(black_box(&bars), &cfg))
    });
    // the same series with its bar side on a second thread (what `regime detect` does with
    // a core to spare)
    g.bench_function(format!("cpu_two_threads/{n}"), |b| {
        b.iter(|| {
            let mut p = SymbolPipeline::new(cfg.clone()).expect("valid");
            let mut out = Vec::new();
            p.update_batch(black_box(&bars), true, &mut out);
            out
        })
    });
    g.finish();
    let mut g = c.benchmark_group("hmm");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("cpu/{n}"), |b| {
        b.iter(|| {
            let mut h = OnlineHmm::new(OnlineHmmConfig::default()).expect("valid");
            for bar in &bars {
                black_box(h.update(bar));
            }
        })
    });
    g.finish();
}

fn streaming_update(c: &mut Criterion) {
    let bars = panel(1, 60_000).remove(0);
    let cfg = PipelineConfig::default();
    let mut g = c.benchmark_group("update");
    g.throughput(Throughput::Elements(1));
    // a warm pipeline (past the batch-EM phase) fed the next bar each iteration; it keeps
    // learning as it goes, as it would in service (bars cycle over the last 10k)
    let mut p = SymbolPipeline::new(cfg).expect("valid");
    for b in &bars[..50_000] {
        p.update(b);
    }
    let mut i = 50_000;
    g.bench_function("cpu/1", |b| {
        b.iter(|| {
            i = if i + 1 >= bars.len() { 50_000 } else { i + 1 };
            black_box(p.update(black_box(&bars[i])))
        })
    });
    g.finish();
}

fn panel_both_cores(c: &mut Criterion) {
    let (s, n) = (500, 2000);
    let data = panel(s, n);
    let refs: Vec<&[regime_core::bars::Bar]> = data.iter().map(|v| v.as_slice()).collect();
    let cfg = PipelineConfig::default();
    let mut g = c.benchmark_group("panel");
    g.sample_size(10);
    g.throughput(Throughput::Elements((s * n) as u64));
    g.bench_function(format!("cpu/{s}x{n}"), |b| {
        b.iter(|| detect_panel(black_box(&refs), &cfg))
    });
    g.finish();
}

/// Fixed-model detection (features + emission + forward filter) through the backend
/// interface: the scalar engine (one core) against the CPU backend on every core, and the
/// GPU backends where a device is present (`REGIME_BENCH_WGPU=1` to include a software
/// wgpu adapter, which is correct but slow).
fn backends(c: &mut Criterion) {
    use regime_core::backend::{ComputeBackend, CpuBackend};
    let (s, n) = (64, 20_000);
    let (p, t) = regime_benches::backend_panel(s, n, 16);
    let mut g = c.benchmark_group("detect");
    g.sample_size(10);
    g.throughput(Throughput::Elements((s * n) as u64));
    let mut run = |name: &str, b: &dyn ComputeBackend| {
        g.bench_function(format!("{name}/{s}x{n}"), |bench| {
            bench.iter(|| {
                let out = b.detect(black_box(&p), &t).expect("detect");
                b.sync().expect("sync");
                out
            })
        });
    };
    run("cpu-scalar", &CpuBackend::scalar());
    run("cpu", &CpuBackend::new());
    if let Ok(b) = regime_kernels::cuda::CudaBackend::new(0, Default::default()) {
        run("cuda", &b);
    }
    if let Ok(b) = regime_kernels::wgpu::WgpuBackend::new(Default::default()) {
        if !b.is_software() || std::env::var("REGIME_BENCH_WGPU").is_ok_and(|v| v == "1") {
            run("wgpu", &b);
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    pipeline_single_series,
    streaming_update,
    panel_both_cores,
    backends
);
criterion_main!(benches);
