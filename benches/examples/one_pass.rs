//! One causal pass of the full pipeline over one synthetic series, on one core — the
//! workload `benches/instructions/count.py` counts instructions of (timing on a shared
//! machine varies by ±20%; instruction counts do not).
//! `cargo run --release -p regime-benches --example one_pass [bars]`
use regime_benches::panel;
use regime_core::pipeline::{detect_series, PipelineConfig};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let bars = panel(1, n).remove(0);
    let out = detect_series(&bars, &PipelineConfig::default()).expect("valid settings");
    // a digest of every detection, so that two builds can be checked for identical output
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for d in &out {
        for x in [
            d.confidence,
            d.p_volatility[0],
            d.p_trend[0],
            d.p_structure[0],
        ] {
            h = (h ^ x.to_bits()).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ d.regime.id() as u64).wrapping_mul(0x0100_0000_01b3);
    }
    println!("{n} bars, detections digest {h:016x}");
}
