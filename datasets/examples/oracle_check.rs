//! Quick check: oracle vs pipeline (and each method) accuracy on the last 30% of synthetic series.
use datasets::{generate, SynthConfig};
use regime_core::hmm::{dims, OnlineHmm};
use regime_core::pipeline::{detect_panel, PipelineConfig, METHOD_NAMES};

fn argmax(x: &[f64]) -> usize {
    let mut b = 0;
    for i in 1..x.len() {
        if x[i] > x[b] {
            b = i;
        }
    }
    b
}

/// `k` × the sd of the close-to-close log returns.
fn grid_step(bars: &[regime_core::bars::Bar], k: f64) -> f64 {
    k * datasets::quote::close_return_sd(bars)
}

/// The bars rounded to a grid of step `k` × the return sd: in log price (each price to its
/// nearest grid point, so the rounded bar stays valid), or with `absolute` in price (a
/// stock's cent), that step at the series' median close, so the relative step varies as the
/// price wanders.
fn round_to_grid(
    bars: &[regime_core::bars::Bar],
    k: f64,
    absolute: bool,
) -> Vec<regime_core::bars::Bar> {
    let step = grid_step(bars, k);
    if !absolute {
        return datasets::quote::on_log_grid(bars, step);
    }
    let mut closes: Vec<f64> = bars.iter().map(|b| b.close).collect();
    closes.sort_by(f64::total_cmp);
    let median = closes.get(closes.len() / 2).copied().unwrap_or(1.0);
    datasets::quote::on_price_grid(bars, step * median)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let symbols: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let bars: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let seed: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    let mut cfg = SynthConfig {
        symbols,
        bars,
        ..SynthConfig::default()
    };
    // the trend chain's stay probability (`TREND_PERSISTENCE`; default 0.99, 100-bar trends)
    if let Some(p) = std::env::var("TREND_PERSISTENCE")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        cfg.persistence[1] = p;
    }
    let data = generate(&cfg, seed);
    // prices on a grid (`TICK`: its step as a multiple of the series' close-to-close return
    // sd, in log price — a relative tick, as for a stock whose tick is a fixed share of its
    // price): the pipeline sees the rounded bars, the oracle the bars as generated, so the
    // share says how much of the exact filter's lift survives the rounding
    let tick: Option<f64> = std::env::var("TICK").ok().and_then(|t| t.parse().ok());
    // with `NOISE` set, the prices get noise of the grid's width instead
    let noise = std::env::var("NOISE").is_ok();
    // with `ABSOLUTE` set, the grid is in price, not log price (`round_to_grid`)
    let absolute = std::env::var("ABSOLUTE").is_ok();
    // rows: oracle, final, raw ensemble, methods...
    let rows = 3 + METHOD_NAMES.len() + usize::from(tick.is_some());
    let mut hit = vec![[0usize; 4]; rows];
    // bars where a method abstains on a dimension are not scored for it there
    let mut covered = vec![[0usize; 4]; rows];
    let mut n = 0usize;
    let mut pc = PipelineConfig::default();
    if let Some(w) = std::env::var("POP_WEIGHT")
        .ok()
        .and_then(|w| w.parse().ok())
    {
        pc.population_weight = w;
    }
    // the transition manager's margin (`regime.switch_margin`), for its trade-off table
    if let Some(m) = std::env::var("SWITCH_MARGIN")
        .ok()
        .and_then(|m| m.parse().ok())
    {
        pc.switch_margin = m;
    }
    // score only the first N symbols (`SCORE_SYMBOLS`; the panel is detected whole): the
    // anchors of `compare.py` are fitted on the first few symbols of a panel, and the rows
    // compared with theirs must be those symbols' too
    let scored = std::env::var("SCORE_SYMBOLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(symbols);
    let rounded: Vec<Vec<regime_core::bars::Bar>> = data
        .iter()
        .map(|d| match tick {
            // noise of the grid's width: ±half a step on every price (a bid-ask bounce)
            Some(k) if k > 0.0 && noise => {
                datasets::quote::with_price_noise(&d.bars, 0.5 * grid_step(&d.bars, k), seed)
            }
            Some(k) if k > 0.0 => round_to_grid(&d.bars, k, absolute),
            _ => d.bars.clone(),
        })
        .collect();
    let series: Vec<&[regime_core::bars::Bar]> = rounded.iter().map(|b| b.as_slice()).collect();
    let dets = detect_panel(&series, &pc).unwrap();
    for (i, d) in data.iter().enumerate().take(scored) {
        let mut oracle = OnlineHmm::fixed(d.true_params.clone()).unwrap();
        // with `TICK`, also the exact filter on the rounded bars (its model knows no grid)
        let mut oracle_rounded = tick.map(|_| OnlineHmm::fixed(d.true_params.clone()).unwrap());
        let det = &dets[i];
        let start = bars * 7 / 10;
        for (t, b) in d.bars.iter().enumerate() {
            let so = oracle.update(b);
            let sr = oracle_rounded.as_mut().map(|o| o.update(&rounded[i][t]));
            if t < start {
                continue;
            }
            n += 1;
            let (pv, pd, ps) = dims(&so.joint);
            let mut labels = vec![[argmax(&pv) as u8, argmax(&pd) as u8, argmax(&ps) as u8]];
            let r = det[t].regime.indices();
            labels.push([r[0] as u8, r[1] as u8, r[2] as u8]);
            labels.push(det[t].raw);
            labels.extend(det[t].methods.iter().copied());
            if let Some(sr) = sr {
                let (pv, pd, ps) = dims(&sr.joint);
                labels.push([argmax(&pv) as u8, argmax(&pd) as u8, argmax(&ps) as u8]);
            }
            let l = d.labels[t];
            for (k, got) in labels.iter().enumerate() {
                let mut all = true;
                for dim in 0..3 {
                    if got[dim] == 255 {
                        all = false;
                        continue;
                    }
                    covered[k][dim] += 1;
                    if got[dim] == l[dim] {
                        hit[k][dim] += 1
                    } else {
                        all = false
                    }
                }
                if got.iter().all(|g| *g != 255) {
                    covered[k][3] += 1;
                    if all {
                        hit[k][3] += 1
                    }
                }
            }
        }
    }
    let chance = [1.0 / 3.0, 1.0 / 3.0, 0.5, 1.0 / 18.0];
    let names: Vec<String> = ["oracle", "final", "ensemble_raw"]
        .iter()
        .map(|s| s.to_string())
        .chain(METHOD_NAMES.iter().map(|s| s.to_string()))
        .chain(tick.map(|_| "oracle_rounded".to_string()))
        .collect();
    for (k, name) in names.iter().enumerate() {
        let mut line = format!("{name:>14}");
        for dim in 0..4 {
            let o = hit[0][dim] as f64 / n as f64;
            if covered[k][dim] == 0 {
                line += "     n/a  (  n/a)";
                continue;
            }
            let a = hit[k][dim] as f64 / covered[k][dim] as f64;
            // no share of a lift the oracle does not have (its accuracy at chance or below)
            if o - chance[dim] <= 1e-9 {
                line += &format!("  {a:.4} (  n/a)");
                continue;
            }
            line += &format!("  {a:.4} ({:.3})", (a - chance[dim]) / (o - chance[dim]));
        }
        println!("{line}");
    }
}
