//! A universe whose instruments differ by degrees, not in clusters: symbol `i` of `n` sits at
//! `u = i / (n − 1)` between the fast market of [`datasets::unlike_markets`] (`u = 0`) and the
//! slow one (`u = 1`) — persistence, spacing of the volatility levels and drift interpolated.
//! Share of the oracle's lift in thirds of `u`, the panel detected together and each symbol
//! alone.
//!
//!     cargo run --release -p datasets --example continuum_panel -- [SYMBOLS] [BARS] [SEED]
use datasets::{generate_symbol, unlike_markets, Hits, SymbolData, SynthConfig};
use regime_core::pipeline::{detect_panel, Detection, PipelineConfig};

fn between(a: &SynthConfig, b: &SynthConfig, u: f64) -> SynthConfig {
    let log_mix = |x: f64, y: f64| (x.ln() * (1.0 - u) + y.ln() * u).exp();
    let mix = |x: f64, y: f64| x * (1.0 - u) + y * u;
    SynthConfig {
        sigma: std::array::from_fn(|k| log_mix(a.sigma[k], b.sigma[k])),
        drift: std::array::from_fn(|k| mix(a.drift[k], b.drift[k])),
        // persistence by the log of the expected stay
        persistence: std::array::from_fn(|k| {
            1.0 - 1.0
                / log_mix(
                    1.0 / (1.0 - a.persistence[k]),
                    1.0 / (1.0 - b.persistence[k]),
                )
        }),
        ..a.clone()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(90);
    let bars: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(99700);
    let [_, (_, slow), (_, fast)] = unlike_markets(bars);
    let data: Vec<SymbolData> = (0..n)
        .map(|i| {
            let u = i as f64 / (n.max(2) - 1) as f64;
            generate_symbol(&between(&fast, &slow, u), seed, i)
        })
        .collect();
    let series: Vec<&[regime_core::bars::Bar]> = data.iter().map(|d| d.bars.as_slice()).collect();
    let alone = PipelineConfig {
        population_weight: 0.0,
        ..PipelineConfig::default()
    };
    println!(
        "{n} symbols from fast to slow, {bars} bars, seed {seed}: right (share of the oracle's \
         lift), volatility / trend / structure / full label"
    );
    for (mode, cfg) in [("panel", PipelineConfig::default()), ("alone", alone)] {
        let dets: Vec<Vec<Detection>> = detect_panel(&series, &cfg).expect("valid bars");
        for third in 0..3 {
            let mut h = Hits::default();
            for i in (third * n / 3)..((third + 1) * n / 3) {
                h.add(&Hits::score(&data[i], &dets[i]));
            }
            let name = ["fast third", "middle third", "slow third"][third];
            let mut line = format!("{name:>13} {mode:>6}");
            for k in 0..4 {
                line += &format!("  {:.3} ({:.3})", h.accuracy(k), h.lift_share(k));
            }
            println!("{line}");
        }
    }
}
