//! Single-core throughput of the HMM's forward filter on fixed (the true) parameters — what
//! any pipeline on this model costs at the least —, of the HMM with its online learning, and
//! of the full causal pipeline on one long series, and the same pipeline with its bar side
//! on a second thread ([`SymbolPipeline::update_batch`]).
//! `cargo run --release -p regime-benches --example throughput [bars]`
use regime_benches::generated;
use regime_core::hmm::{OnlineHmm, OnlineHmmConfig};
use regime_core::pipeline::{detect_series, PipelineConfig, SymbolPipeline};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    // the series `regime_benches::panel(1, n)` gives, with its true parameters
    let data = generated(1, n).remove(0);
    let bars = data.bars;
    let mut best = [f64::MAX; 4];
    for _ in 0..3 {
        let t = Instant::now();
        let mut h = OnlineHmm::fixed(data.true_params.clone()).expect("valid");
        for b in &bars {
            std::hint::black_box(h.update(b));
        }
        best[3] = best[3].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut h = OnlineHmm::new(OnlineHmmConfig::default()).expect("valid");
        for b in &bars {
            std::hint::black_box(h.update(b));
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(detect_series(&bars, &PipelineConfig::default()).expect("detect"));
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut p = SymbolPipeline::new(PipelineConfig::default()).expect("valid");
        let mut out = Vec::new();
        p.update_batch(&bars, true, &mut out);
        std::hint::black_box(out);
        best[2] = best[2].min(t.elapsed().as_secs_f64());
    }
    let rate = |s: f64| {
        format!(
            "{:.0} bars/s ({:.0} ns/bar)",
            n as f64 / s,
            s * 1e9 / n as f64
        )
    };
    println!(
        "{n} bars, best of 3: one core: filter on fixed parameters {}; hmm {}; full pipeline {}. \
         Two threads (bar side ahead): {}",
        rate(best[3]),
        rate(best[0]),
        rate(best[1]),
        rate(best[2])
    );
}
