//! A market that changes: two synthetic segments of 50,000 bars with different parameters,
//! the second's prices scaled to continue from the first's last close (`--down`: the second
//! segment calmer instead of wilder). Prints the accuracy of the final labels, the pooled
//! ensemble and the two model-based members on the last 15% of the series, against the true
//! labels of the second segment.
//!
//!     cargo run --release -p datasets --example shift_check -- SEED [--down]
use datasets::SynthConfig;
use regime_core::pipeline::{detect_series, PipelineConfig, METHOD_NAMES};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let down = args.iter().any(|a| a == "--down");
    let a = SynthConfig {
        bars: 50_000,
        ..SynthConfig::default()
    };
    let b = SynthConfig {
        sigma: if down {
            [0.003, 0.006, 0.012]
        } else {
            [0.009, 0.018, 0.036]
        },
        drift: [-0.3, 0.0, 0.3],
        persistence: [0.98, 0.98, 0.985],
        ..a.clone()
    };
    let (bars, labels) = datasets::spliced(&a, &b, seed);
    let det = match detect_series(&bars, &PipelineConfig::default()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("detect: {e}");
            std::process::exit(1);
        }
    };
    let start = bars.len() * 85 / 100;
    let names: Vec<&str> = ["final", "ensemble_raw"]
        .into_iter()
        .chain(METHOD_NAMES)
        .collect();
    println!(
        "seed {seed}{}: accuracy on the last 15% (volatility, trend, structure, all 18)",
        if down { " (down)" } else { "" }
    );
    for (k, name) in names.iter().enumerate() {
        if !["final", "ensemble_raw", "hmm", "hmm_averaged"].contains(name) {
            continue;
        }
        let (mut hit, mut all) = ([0usize; 3], 0usize);
        for t in start..bars.len() {
            let got = match k {
                0 => {
                    let r = det[t].regime.indices();
                    [r[0] as u8, r[1] as u8, r[2] as u8]
                }
                1 => det[t].raw,
                m => det[t].methods[m - 2],
            };
            for d in 0..3 {
                hit[d] += (got[d] == labels[t][d]) as usize;
            }
            all += (got == labels[t]) as usize;
        }
        let m = (bars.len() - start) as f64;
        println!(
            "{name:>14}  {:.4}  {:.4}  {:.4}  {:.4}",
            hit[0] as f64 / m,
            hit[1] as f64 / m,
            hit[2] as f64 / m,
            all as f64 / m
        );
    }
}
