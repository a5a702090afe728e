//! A panel of instruments that are not alike: share of the oracle's lift per market when
//! the markets are detected together, each market as a panel of its own, and each symbol
//! alone.
//!
//!     cargo run --release -p datasets --example mixed_panel -- [SYMBOLS_PER_MARKET] [BARS] [SEED] [LATE]
//!
//! The markets are [`datasets::unlike_markets`]: the default one, a slow one and a fast one.
//! With `LATE` the fast market's symbols list late: their first `LATE` bars are left out.
use datasets::{generate_symbol, unlike_markets, Hits, SymbolData};
use regime_core::pipeline::{detect_panel, Detection, PipelineConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let per: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(40);
    let bars: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(99000);
    let late: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    let markets = unlike_markets(bars);
    // symbol i of market g: distinct streams across markets
    let data: Vec<Vec<SymbolData>> = markets
        .iter()
        .enumerate()
        .map(|(g, (_, cfg))| {
            (0..per)
                .map(|i| {
                    let mut d = generate_symbol(cfg, seed, g * per + i);
                    if g == 2 {
                        let n = late.min(d.bars.len());
                        d.bars.drain(..n);
                        d.labels.drain(..n);
                    }
                    d
                })
                .collect()
        })
        .collect();
    let pooled = PipelineConfig::default();
    let alone = PipelineConfig {
        population_weight: 0.0,
        ..PipelineConfig::default()
    };
    let run = |set: &[&SymbolData], cfg: &PipelineConfig| -> Vec<Vec<Detection>> {
        let series: Vec<&[regime_core::bars::Bar]> =
            set.iter().map(|d| d.bars.as_slice()).collect();
        detect_panel(&series, cfg).expect("valid bars")
    };
    let all: Vec<&SymbolData> = data.iter().flatten().collect();
    let mixed = run(&all, &pooled);
    println!(
        "{per} symbols a market, {bars} bars, seed {seed}: right (share of the oracle's lift), \
         volatility / trend / structure / full label"
    );
    for (g, (name, _)) in markets.iter().enumerate() {
        let own: Vec<&SymbolData> = data[g].iter().collect();
        let modes = [
            ("mixed panel", mixed[g * per..(g + 1) * per].to_vec()),
            ("own panel", run(&own, &pooled)),
            ("alone", run(&own, &alone)),
        ];
        for (mode, dets) in modes.iter() {
            let mut h = Hits::default();
            for (d, det) in own.iter().zip(dets.iter()) {
                h.add(&Hits::score(d, det));
            }
            let mut line = format!("{name:>8} {mode:>12}");
            for k in 0..4 {
                line += &format!("  {:.3} ({:.3})", h.accuracy(k), h.lift_share(k));
            }
            println!("{line}");
        }
    }
}
