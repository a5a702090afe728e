//! Per-bar probabilities of the pooled ensemble and of each method, with the true labels and
//! the oracle's, on the scored part (last 30%) of a synthetic series — or of every member of
//! a panel, pooled as `detect` pools it — as CSV on stdout: the input of
//! `benches/accuracy/pool_bound.py` (what any weighting of the members could reach).
//! Columns: `symbol` (the member's index), `truth_{v,d,s}`, `oracle_{v,d,s}`, then for
//! `ensemble` and each method eight probabilities — volatility low/medium/high, trend
//! down/neutral/up, structure trending/mean-reverting — empty where the method abstains on
//! that dimension.
//!
//!     cargo run --release -p datasets --example member_probs -- BARS SEED [SYMBOLS] > seed.csv
use datasets::{generate, SynthConfig};
use regime_core::hmm::{dims, OnlineHmm};
use regime_core::pipeline::{pool_events, PanelMember, PipelineConfig, METHOD_NAMES};
use regime_core::regime::DIM_SIZES;
use std::fmt::Write as _;
use std::io::Write as _;

fn argmax(x: &[f64]) -> usize {
    (0..x.len()).fold(0, |b, i| if x[i] > x[b] { i } else { b })
}

/// Eight comma-separated cells: the dimensions' probabilities, empty where not `has`.
fn cells(line: &mut String, p: &[[f64; 3]; 3], has: [bool; 3]) {
    for (d, row) in p.iter().enumerate() {
        for x in &row[..DIM_SIZES[d]] {
            line.push(',');
            if has[d] {
                let _ = write!(line, "{x:.6}");
            }
        }
    }
}

/// Data the model's form does not fit (`WANDER=SD`): every bar's moves from the previous close
/// (open, high, low, close, in logs) scaled by `exp(x_t)`, where `x` is a stationary AR(1) of
/// standard deviation SD and half-life ~140 bars — volatility that wanders within each state,
/// as real volatility does. Labels stay the generator's; the oracle (the true discrete model)
/// is no longer exact.
fn wander(bars: &mut [regime_core::bars::Bar], sd: f64, seed: u64) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    let normal = Normal::new(0.0, 1.0).expect("unit normal is valid");
    let rho: f64 = 0.995;
    let mut x = sd * normal.sample(&mut rng);
    let (mut old_prev, mut new_prev) = (bars[0].close, bars[0].close);
    for b in bars.iter_mut().skip(1) {
        x = rho * x + (1.0 - rho * rho).sqrt() * sd * normal.sample(&mut rng);
        let f = x.exp();
        let at = |p: f64| new_prev * ((p / old_prev).ln() * f).exp();
        let (o, c) = (at(b.open), at(b.close));
        let (h, l) = (at(b.high).max(o.max(c)), at(b.low).min(o.min(c)));
        old_prev = b.close;
        (b.open, b.high, b.low, b.close) = (o, h, l, c);
        new_prev = c;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let bars: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2_500);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(42);
    let symbols: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
    let cfg = SynthConfig {
        symbols,
        bars,
        ..SynthConfig::default()
    };
    let mut data = generate(&cfg, seed);
    if let Some(sd) = std::env::var("WANDER")
        .ok()
        .and_then(|w| w.parse::<f64>().ok())
    {
        for (i, d) in data.iter_mut().enumerate() {
            wander(
                &mut d.bars,
                sd,
                seed ^ (i as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
            );
        }
    }
    // a panel's pooling events, replayed member by member: `detect_panel`'s labels
    let series: Vec<&[regime_core::bars::Bar]> = data.iter().map(|d| d.bars.as_slice()).collect();
    let events = pool_events(&series, &PipelineConfig::default())?;
    let start = bars * 7 / 10;
    let mut out = String::from("symbol,truth_v,truth_d,truth_s,oracle_v,oracle_d,oracle_s");
    let groups = std::iter::once("ensemble").chain(METHOD_NAMES.iter().copied());
    for g in groups {
        for c in datasets::PROB_CELLS {
            let _ = write!(out, ",{g}_{c}");
        }
    }
    // `PREDICTIVE=1`: the model's emission likelihoods of the bar (log, up to a per-bar
    // constant; index `volatility*6 + trend*2 + structure`) and its transition matrices, to
    // score members by how well their posterior at t-1 predicts bar t (an experiment)
    let predictive = std::env::var("PREDICTIVE").is_ok_and(|v| v == "1");
    if predictive {
        datasets::predictive_header(&mut out);
    }
    out.push('\n');
    for (i, d) in data.iter().enumerate() {
        let mut member = PanelMember::new(PipelineConfig::default(), &events, i)?;
        member.keep_method_scores(true);
        let mut oracle = OnlineHmm::fixed(d.true_params.clone())?;
        for (t, b) in d.bars.iter().enumerate() {
            let det = member.update(b);
            let so = oracle.update(b);
            if t < start {
                continue;
            }
            // bars of a warm-up (none this late on these series) have no member scores
            let Some(members) = member.pipeline().method_scores() else {
                continue;
            };
            let (pv, pd, ps) = dims(&so.joint);
            let l = d.labels[t];
            let _ = write!(
                out,
                "{i},{},{},{},{},{},{}",
                l[0],
                l[1],
                l[2],
                argmax(&pv),
                argmax(&pd),
                argmax(&ps)
            );
            let s = det.p_structure;
            let ens = [det.p_volatility, det.p_trend, [s[0], s[1], 0.0]];
            cells(&mut out, &ens, [true; 3]);
            for m in &members {
                cells(&mut out, &m.p, m.has);
            }
            if predictive && !datasets::predictive_cells(&mut out, member.pipeline().hmm()) {
                return Err("no model on a scored bar".into());
            }
            out.push('\n');
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
