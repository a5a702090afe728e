//! Per-bar latency distribution of the streaming update (p50/p99/p99.9), measured bar by bar
//! on a 200k-bar series after a 20k-bar warm-up. `cargo run --release -p regime-benches --example latency`
use regime_benches::panel;
use regime_core::pipeline::{PipelineConfig, SymbolPipeline};
use std::time::Instant;

fn main() {
    let bars = panel(1, 220_000).remove(0);
    let mut p = SymbolPipeline::new(PipelineConfig::default()).expect("valid");
    for b in &bars[..20_000] {
        p.update(b);
    }
    let mut ns: Vec<u64> = Vec::with_capacity(200_000);
    for b in &bars[20_000..] {
        let t = Instant::now();
        std::hint::black_box(p.update(b));
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    let q = |f: f64| ns[((ns.len() as f64 * f) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0;
    println!(
        "streaming update over {} bars: mean {mean:.3} us, p50 {:.3} us, p99 {:.3} us, p99.9 {:.3} us, max {:.3} us",
        ns.len(),
        q(0.5),
        q(0.99),
        q(0.999),
        q(1.0)
    );
}
