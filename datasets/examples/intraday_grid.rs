//! Minute bars on a tick grid: volatility accuracy of the pipeline on `minute_sessions`
//! (volatility regimes that last days, a U-shaped time of day) with every price rounded to a
//! log grid of `K` × the return sd, scored on the last 30% of each series.
//!
//!     cargo run --release -p datasets --example intraday_grid -- K [SESSIONS] [SEEDS]
//!
//! With `ABSOLUTE` set the grid is in price instead (a cent: `K` return sd at the median
//! close, so the relative step varies as the price moves).
//!
//! `SEEDS` series from seed 105700 (or `FIRST`; default 20), `SESSIONS` sessions of 390 bars each
//! (default 250). Prints each series' zero-return share, drift alarms and accuracy to stderr,
//! and the totals; with `CONFUSION` set, each series' scored bars by true and labelled
//! volatility state; with `TRACE=N`, every N bars the window's counts and the model's levels;
//! with `DUMP=DIR`, each series as `DIR/grid{K}_{SEED}.csv` (bars and true volatility state);
//! with `WHEN`, each series' volatility switches by half hour of the session and per member.
use datasets::quote::{close_return_sd, on_log_grid, on_price_grid};
use regime_core::pipeline::{Detail, PipelineConfig, SymbolPipeline};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let k: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0.5);
    let sessions: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(250);
    let n_seeds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut total = 0.0;
    let mut alarms = 0i64;
    let (mut said_switches, mut true_switches) = (0usize, 0usize);
    let absolute = std::env::var("ABSOLUTE").is_ok();
    let first: u64 = std::env::var("FIRST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(105_700);
    for seed in first..first + n_seeds {
        let (bars, labels) = datasets::minute_sessions(sessions, seed, false);
        // the clean series' return sd: the grid's step is `K` of it (in log price, or in
        // price at the median close), and the unit TRACE prints the levels in
        let sd = close_return_sd(&bars);
        let unit = if k > 0.0 { k * sd } else { sd };
        let bars = if k <= 0.0 {
            bars
        } else if absolute {
            // a tick in price: `K` return sd at the median close
            let mut closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
            closes.sort_by(f64::total_cmp);
            let median = closes[closes.len() / 2];
            on_price_grid(&bars, unit * median)
        } else {
            on_log_grid(&bars, unit)
        };
        if let Ok(dir) = std::env::var("DUMP") {
            // the series as the pipeline sees it, with its true volatility state, for
            // `benches/accuracy/grid_known_params.py`
            let path = format!("{dir}/grid{k}_{seed}.csv");
            let mut out = format!("step,{unit}\n");
            for (b, l) in bars.iter().zip(&labels) {
                out += &format!(
                    "{},{},{},{},{},{},{}\n",
                    b.ts, b.open, b.high, b.low, b.close, b.volume, l[0]
                );
            }
            if let Err(e) = std::fs::write(&path, out) {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        }
        let zeros = bars.windows(2).filter(|w| w[1].close == w[0].close).count();
        let mut pipeline = match SymbolPipeline::new(PipelineConfig::default()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("seed {seed}: {e}");
                std::process::exit(1);
            }
        };
        // TRACE=N: every N bars the window's true and labelled volatility counts and the
        // model as it stands (σ of each level and the noise's sd, in grid steps where there
        // is a grid, or in the clean return sd; range and volume level means; each level's
        // chance to leave it a bar; the model version)
        let trace: usize = std::env::var("TRACE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (mut truth, mut said) = ([0usize; 3], [0usize; 3]);
        let mut det = Vec::with_capacity(bars.len());
        for (t, b) in bars.iter().enumerate() {
            let d = pipeline.update(b);
            if trace > 0 {
                truth[labels[t][0] as usize] += 1;
                said[d.regime.indices()[0]] += 1;
                if (t + 1) % trace == 0 {
                    let h = pipeline.hmm();
                    match h.params() {
                        Some(q) => eprintln!(
                            "seed {seed} bar {:>6}: truth {truth:?} said {said:?} | sigma {:.2} {:.2} {:.2} noise {:.2} range {:.2} {:.2} {:.2} volume {:.2} {:.2} {:.2} stay 1-{:.1e} 1-{:.1e} 1-{:.1e} v{}",
                            t + 1,
                            q.sigma[0] / unit,
                            q.sigma[1] / unit,
                            q.sigma[2] / unit,
                            q.noise.sqrt() / unit,
                            q.range_mean[0],
                            q.range_mean[1],
                            q.range_mean[2],
                            q.volume_mean[0],
                            q.volume_mean[1],
                            q.volume_mean[2],
                            1.0 - q.a_vol[0][0],
                            1.0 - q.a_vol[1][1],
                            1.0 - q.a_vol[2][2],
                            h.model_version()
                        ),
                        None => eprintln!("seed {seed} bar {:>6}: warming up", t + 1),
                    }
                    (truth, said) = ([0; 3], [0; 3]);
                }
            }
            det.push(d);
        }
        let drifts = pipeline
            .components()
            .into_iter()
            .find(|c| c.name == "continuous_learning_engine")
            .and_then(|c| match c.details.get("drifts_detected") {
                Some(Detail::Int(n)) => Some(*n),
                _ => None,
            })
            .unwrap_or(0);
        alarms += drifts;
        let start = bars.len() * 7 / 10;
        let right = (start..bars.len())
            .filter(|&t| det[t].regime.indices()[0] == labels[t][0] as usize)
            .count();
        let acc = right as f64 / (bars.len() - start) as f64;
        total += acc;
        // the scored bars where `f` changes: volatility switches, labelled and true
        let moves = |f: &dyn Fn(usize) -> usize| -> Vec<usize> {
            (start + 1..bars.len())
                .filter(|&t| f(t) != f(t - 1))
                .collect()
        };
        let said_at = moves(&|t| det[t].regime.indices()[0]);
        let said = said_at.len();
        if std::env::var("WHEN").is_ok() {
            // each series starts a session on its first bar
            let per = datasets::MINUTES_PER_SESSION;
            let mut h = vec![0usize; per.div_ceil(30)];
            for t in said_at {
                h[(t % per) / 30] += 1;
            }
            eprintln!("seed {seed}: switches by half hour of the session {h:?}");
            let members: Vec<usize> = (0..regime_core::pipeline::N_METHODS)
                .map(|m| moves(&|t| det[t].methods[m][0] as usize).len())
                .collect();
            eprintln!("seed {seed}: volatility switches per member {members:?}");
        }
        let truth = moves(&|t| labels[t][0] as usize).len();
        (said_switches, true_switches) = (said_switches + said, true_switches + truth);
        if std::env::var("CONFUSION").is_ok() {
            // rows: the true volatility state; columns: the label given (low, medium, high)
            let mut m = [[0usize; 3]; 3];
            for t in start..bars.len() {
                m[labels[t][0] as usize][det[t].regime.indices()[0]] += 1;
            }
            eprintln!("seed {seed}: true x labelled volatility {m:?}");
        }
        eprintln!(
            "seed {seed}: zero returns {:.3}, {drifts} drift alarms, volatility right on {acc:.3}, {said} switches ({truth} true)",
            zeros as f64 / bars.len().max(2) as f64
        );
    }
    println!(
        "grid {k} sd, {sessions} sessions, {n_seeds} series: {alarms} drift alarms, volatility right on {:.3} of the scored bars, {said_switches} volatility switches there ({true_switches} true)",
        total / n_seeds as f64
    );
}
