//! Per-bar latency distribution of the streaming update (p50/p99/p99.9), measured bar by bar
//! on a 200k-bar series after a 20k-bar warm-up. `cargo run --release -p regime-benches --example latency`
//!
//! Also prints how often the machine itself takes the core away (a bare loop reading the
//! clock, 200 ms): on a virtual machine whose host interrupts it ~18,000 times a second for
//! ~2 µs, one bar in 40 meets such a stall whatever the code does, and the p99 is the stall.
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
    let (per_s, median_ns) = machine_stalls();
    println!(
        "this machine: {per_s:.0} stalls > 1 us a second, median {:.1} us (the bare clock loop; a bar of ~1 us meets one with probability ~{:.3})",
        median_ns as f64 / 1000.0,
        per_s * 1e-6
    );
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

/// Stalls the machine imposes on a bare loop reading the clock for 200 ms: how many a
/// second took over 1 µs, and their median length in ns.
fn machine_stalls() -> (f64, u64) {
    let start = Instant::now();
    let mut last = start;
    let mut stalls: Vec<u64> = Vec::new();
    while start.elapsed().as_millis() < 200 {
        let now = Instant::now();
        let d = (now - last).as_nanos() as u64;
        if d > 1000 {
            stalls.push(d);
        }
        last = now;
    }
    stalls.sort_unstable();
    let median = stalls.get(stalls.len() / 2).copied().unwrap_or(0);
    (stalls.len() as f64 / start.elapsed().as_secs_f64(), median)
}
