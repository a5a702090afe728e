//! Synthetic market data with known regimes.
//!
//! Each symbol has three independent, persistent Markov chains (volatility, trend,
//! structure). Bars are generated from the state:
//! * close-to-close log return `r = μ + φ_s (r' − μ) + σ_v ε`, `μ = m_d σ_v`, `ε` Student-t(5)
//!   with unit variance (fat tails);
//! * the open gaps from the previous close by `N(0, (0.3 σ_v)²)`;
//! * the range exceeds the body by `σ_v K`, `ln K ~ N(ln 0.8, 0.35²)`, split at random above/below;
//! * volume is log-normal with a level that rises with the volatility state.
//!
//! Daily magnitudes by default: σ ≈ 0.6% / 1.2% / 2.4% per bar, times a per-symbol factor.
//! Everything is reproducible from the seed. [`SymbolData::true_params`] are the exact
//! parameters of the generating model, for the oracle filter.

pub mod quote;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal, StudentT};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use regime_core::bars::Bar;
use regime_core::model::JointParams;

/// Generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of symbols.
    pub symbols: usize,
    /// Bars per symbol.
    pub bars: usize,
    /// Innovation σ per volatility state (before the per-symbol factor).
    pub sigma: [f64; 3],
    /// Drift per trend state in units of σ.
    pub drift: [f64; 3],
    /// AR(1) coefficient per structure state.
    pub phi: [f64; 2],
    /// Probability of staying in the state, per dimension.
    pub persistence: [f64; 3],
    /// Standard deviation of the per-symbol log scale factor.
    pub symbol_dispersion: f64,
    /// First timestamp (ms since epoch).
    pub start_ms: i64,
    /// Bar spacing (ms).
    pub step_ms: i64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            symbols: 1,
            bars: 10_000,
            sigma: [0.006, 0.012, 0.024],
            drift: [-0.2, 0.0, 0.2],
            phi: [0.25, -0.25],
            persistence: [0.98, 0.99, 0.985],
            symbol_dispersion: 0.3,
            start_ms: 946_857_600_000, // 2000-01-03
            step_ms: 86_400_000,
        }
    }
}

const GAP_SD: f64 = 0.3;
const RANGE_LOG_MEAN: f64 = -0.223_143_551_314_209_7; // ln 0.8
const RANGE_LOG_SD: f64 = 0.35;
// log-volume rises linearly with log-volatility (volume ∝ σ^0.5 here)
const VOLUME_LEVEL: [f64; 3] = [-0.35, 0.0, 0.35];
const VOLUME_SD: f64 = 0.35;

/// One generated symbol.
#[derive(Debug, Clone)]
pub struct SymbolData {
    /// Symbol name (`SYN000`, ...).
    pub symbol: String,
    /// Bars.
    pub bars: Vec<Bar>,
    /// True `[volatility, trend, structure]` per bar.
    pub labels: Vec<[u8; 3]>,
    /// Exact parameters of the generating model (for the oracle).
    pub true_params: JointParams,
}

impl SymbolData {
    /// True regime ids.
    pub fn regime_ids(&self) -> Vec<u8> {
        self.labels
            .iter()
            .map(|l| l[0] * 6 + l[1] * 2 + l[2])
            .collect()
    }
}

fn transition<const N: usize>(p: f64) -> [[f64; N]; N] {
    let q = (1.0 - p) / (N as f64 - 1.0);
    let mut a = [[q; N]; N];
    for (i, row) in a.iter_mut().enumerate() {
        row[i] = p;
    }
    a
}

fn step_chain<R: Rng>(rng: &mut R, state: usize, n: usize, stay: f64) -> usize {
    if rng.random::<f64>() < stay {
        state
    } else {
        let k = rng.random_range(0..n - 1);
        if k >= state {
            k + 1
        } else {
            k
        }
    }
}

/// Generate one symbol with its own stream derived from `(seed, index)`.
pub fn generate_symbol(cfg: &SynthConfig, seed: u64, index: usize) -> SymbolData {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(
        seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let normal = Normal::new(0.0, 1.0).expect("unit normal is valid");
    let student = StudentT::new(5.0).expect("5 degrees of freedom is valid");
    let t_scale = (3.0f64 / 5.0).sqrt();
    let factor = (cfg.symbol_dispersion * normal.sample(&mut rng)).exp();
    let sigma = cfg.sigma.map(|s| s * factor);
    let base_volume = 13.0 + normal.sample(&mut rng);
    let mut v = rng.random_range(0..3usize);
    let mut d = rng.random_range(0..3usize);
    let mut s = rng.random_range(0..2usize);
    let mut close = 100.0 * (0.5 * normal.sample(&mut rng)).exp();
    let mut prev_r = f64::NAN;
    let mut bars = Vec::with_capacity(cfg.bars);
    let mut labels = Vec::with_capacity(cfg.bars);
    for t in 0..cfg.bars {
        if t > 0 {
            v = step_chain(&mut rng, v, 3, cfg.persistence[0]);
            d = step_chain(&mut rng, d, 3, cfg.persistence[1]);
            s = step_chain(&mut rng, s, 2, cfg.persistence[2]);
        }
        let sg = sigma[v];
        let mu = cfg.drift[d] * sg;
        let eps = student.sample(&mut rng) * t_scale;
        // r − μ = φ (r' − μ) + σ ε, where r' is the previous bar's return and μ this bar's drift
        let ar = if prev_r.is_nan() {
            0.0
        } else {
            cfg.phi[s] * (prev_r - mu)
        };
        let e = ar + sg * eps;
        let r = mu + e;
        let gap = GAP_SD * sg * normal.sample(&mut rng);
        let lo = close.ln();
        let open_l = lo + gap;
        let close_l = lo + r;
        let excess = sg * (RANGE_LOG_MEAN + RANGE_LOG_SD * normal.sample(&mut rng)).exp();
        let u: f64 = rng.random();
        let high_l = open_l.max(close_l) + u * excess;
        let low_l = open_l.min(close_l) - (1.0 - u) * excess;
        let volume = (base_volume + VOLUME_LEVEL[v] + VOLUME_SD * normal.sample(&mut rng))
            .exp()
            .round();
        let (o, c) = (open_l.exp(), close_l.exp());
        bars.push(Bar::new(
            cfg.start_ms + t as i64 * cfg.step_ms,
            o,
            high_l.exp().max(o.max(c)),
            low_l.exp().min(o.min(c)),
            c,
            volume,
        ));
        labels.push([v as u8, d as u8, s as u8]);
        prev_r = r;
        close = c;
    }
    let mean_level = VOLUME_LEVEL.iter().sum::<f64>() / 3.0;
    let true_params = JointParams {
        sigma,
        drift: cfg.drift,
        phi: cfg.phi,
        noise: 0.0,
        gap_var: sigma.map(|x| (GAP_SD * x).powi(2)),
        range_mean: sigma.map(|x| x.ln() + RANGE_LOG_MEAN),
        range_var: RANGE_LOG_SD * RANGE_LOG_SD,
        range_weight: 1.0,
        range_log_gamma: false,
        gap_student: false,
        gap_weight: 1.0,
        volume_mean: VOLUME_LEVEL.map(|l| l - mean_level),
        volume_var: VOLUME_SD * VOLUME_SD,
        a_vol: transition::<3>(cfg.persistence[0]),
        a_trend: transition::<3>(cfg.persistence[1]),
        a_struct: transition::<2>(cfg.persistence[2]),
    };
    SymbolData {
        symbol: format!("SYN{index:03}"),
        bars,
        labels,
        true_params,
    }
}

/// Generate a panel (symbols in parallel; identical output for any thread count).
pub fn generate(cfg: &SynthConfig, seed: u64) -> Vec<SymbolData> {
    (0..cfg.symbols)
        .into_par_iter()
        .map(|i| generate_symbol(cfg, seed, i))
        .collect()
}

/// A market that changes: one symbol of `first` (seed `seed`), then one of `second` (seed
/// `seed + 1000`) whose prices are scaled to continue from the first one's last close and
/// whose bars follow on, one `first.step_ms` apart. Returns the bars and the true labels
/// (each segment's own).
pub fn spliced(first: &SynthConfig, second: &SynthConfig, seed: u64) -> (Vec<Bar>, Vec<[u8; 3]>) {
    let a = generate_symbol(first, seed, 0);
    let b = generate_symbol(second, seed + 1000, 0);
    let (mut bars, mut labels) = (a.bars, a.labels);
    let Some(last) = bars.last().copied() else {
        return (b.bars, b.labels);
    };
    let f = b.bars.first().map_or(1.0, |x| last.close / x.open);
    for (i, x) in b.bars.iter().enumerate() {
        bars.push(Bar::new(
            last.ts + (i as i64 + 1) * first.step_ms,
            x.open * f,
            x.high * f,
            x.low * f,
            x.close * f,
            x.volume,
        ));
    }
    labels.extend(b.labels);
    (bars, labels)
}

/// Bars in one session of [`minute_sessions`] (09:30–16:00).
pub const MINUTES_PER_SESSION: usize = 390;

/// Minute bars with volatility regimes that last days, as an exchange prints them:
/// `sessions` weekdays of 390 bars (09:30–16:00 UTC), each session in one of three
/// volatility states (daily 0.7% / 1.4% / 2.8%; a chain that stays with probability 0.95 a
/// session), a U-shaped time-of-day profile of volatility and volume (the first minutes
/// ~2.1× the session's average, midday ~0.85×), an overnight gap of half the session's
/// volatility, and bars cut from a 10-step path. With `daily_stamps` the same bars are
/// stamped a day apart (a feed without times of day). Returns the bars and the true labels
/// (volatility; trend neutral and structure 0 throughout, not modelled here).
pub fn minute_sessions(sessions: usize, seed: u64, daily_stamps: bool) -> (Vec<Bar>, Vec<[u8; 3]>) {
    const MINUTE: i64 = 60_000;
    const DAY: i64 = 86_400_000;
    let per = MINUTES_PER_SESSION;
    let sigma_day = [0.007, 0.014, 0.028];
    let shape: Vec<f64> = (0..per)
        .map(|m| {
            let m = m as f64;
            1.0 + 1.5 * (-m / 30.0).exp() + 0.8 * (-(per as f64 - 1.0 - m) / 30.0).exp()
        })
        .collect();
    let norm = (shape.iter().map(|f| f * f).sum::<f64>() / per as f64).sqrt();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let z = Normal::new(0.0, 1.0).expect("unit normal");
    let (mut bars, mut labels) = (Vec::with_capacity(sessions * per), Vec::new());
    let (mut state, mut logp) = (0usize, 100f64.ln());
    for d in 0..sessions {
        if d > 0 && rng.random::<f64>() > 0.95 {
            state = (state + 1 + usize::from(rng.random::<bool>())) % 3;
        }
        let day = (d + 2 * (d / 5)) as i64; // weekends skipped
        let s_min = sigma_day[state] / (per as f64).sqrt();
        logp += 0.5 * sigma_day[state] * z.sample(&mut rng);
        for (m, f) in shape.iter().enumerate() {
            let s = s_min * f / norm / 10f64.sqrt();
            let (mut hi, mut lo, mut open) = (f64::MIN, f64::MAX, f64::NAN);
            for j in 0..10 {
                logp += s * z.sample(&mut rng);
                if j == 0 {
                    open = logp;
                }
                hi = hi.max(logp);
                lo = lo.min(logp);
            }
            let ts = if daily_stamps {
                bars.len() as i64 * DAY
            } else {
                day * DAY + (9 * 60 + 30 + m as i64) * MINUTE
            };
            let volume = 1e4
                * [1.0, 1.3, 1.8][state]
                * (f / norm).powf(1.5)
                * (0.5 * z.sample(&mut rng)).exp();
            bars.push(Bar::new(
                ts,
                open.exp(),
                hi.exp(),
                lo.exp(),
                logp.exp(),
                volume,
            ));
            labels.push([state as u8, 1, 0]);
        }
    }
    (bars, labels)
}

/// Three markets unlike each other, as a universe mixes them in one file (index funds,
/// single stocks, crypto): the default market; a slow one (every regime lasting ~200 bars,
/// volatility levels 1.6× apart, a drift of ±0.3σ); a fast one (regimes of 20–33 bars,
/// levels 2.5× apart). Each with `bars` bars a symbol.
pub fn unlike_markets(bars: usize) -> [(&'static str, SynthConfig); 3] {
    let base = SynthConfig {
        bars,
        ..SynthConfig::default()
    };
    [
        ("default", base.clone()),
        (
            "slow",
            SynthConfig {
                sigma: [0.0075, 0.012, 0.0192],
                drift: [-0.3, 0.0, 0.3],
                persistence: [0.995, 0.995, 0.995],
                ..base.clone()
            },
        ),
        (
            "fast",
            SynthConfig {
                sigma: [0.005, 0.0125, 0.031],
                persistence: [0.95, 0.97, 0.96],
                ..base
            },
        ),
    ]
}

/// Right labels per dimension (volatility, trend, structure) and for all three, of some
/// detections and of the oracle (the exact forward filter under the generator's true
/// parameters), over the last 30% of a series; sums over series with [`Hits::add`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hits {
    /// Right labels of the detections.
    pub ours: [usize; 4],
    /// Right labels of the oracle.
    pub oracle: [usize; 4],
    /// Bars scored.
    pub bars: usize,
}

/// Chance per dimension and for the full label (3, 3, 2 and 18 regimes).
pub const CHANCE: [f64; 4] = [1.0 / 3.0, 1.0 / 3.0, 0.5, 1.0 / 18.0];

impl Hits {
    /// Score the final labels of `dets` (one per bar of `d`) against the truth, beside the
    /// oracle.
    pub fn score(d: &SymbolData, dets: &[regime_core::pipeline::Detection]) -> Hits {
        let argmax = |x: &[f64]| {
            (0..x.len())
                .max_by(|&i, &j| x[i].total_cmp(&x[j]))
                .unwrap_or(0) as u8
        };
        let mut oracle = regime_core::hmm::OnlineHmm::fixed(d.true_params.clone())
            .expect("the generator's parameters are valid");
        let start = d.bars.len() * 7 / 10;
        let mut h = Hits::default();
        for (t, (b, det)) in d.bars.iter().zip(dets).enumerate() {
            let step = oracle.update(b);
            let got = &det.regime.indices().map(|k| k as u8);
            if t < start {
                continue;
            }
            let (pv, pd, ps) = regime_core::hmm::dims(&step.joint);
            let o = [argmax(&pv), argmax(&pd), argmax(&ps)];
            let truth = d.labels[t];
            for k in 0..3 {
                h.ours[k] += usize::from(got[k] == truth[k]);
                h.oracle[k] += usize::from(o[k] == truth[k]);
            }
            h.ours[3] += usize::from(*got == truth);
            h.oracle[3] += usize::from(o == truth);
            h.bars += 1;
        }
        h
    }

    /// Add another series' hits.
    pub fn add(&mut self, o: &Hits) {
        for k in 0..4 {
            self.ours[k] += o.ours[k];
            self.oracle[k] += o.oracle[k];
        }
        self.bars += o.bars;
    }

    /// Share right of column `k` (0–2 a dimension, 3 the full label).
    pub fn accuracy(&self, k: usize) -> f64 {
        self.ours[k] as f64 / self.bars.max(1) as f64
    }

    /// Share of the oracle's lift over chance, `(ours − chance) / (oracle − chance)`.
    pub fn lift_share(&self, k: usize) -> f64 {
        let o = self.oracle[k] as f64 / self.bars.max(1) as f64;
        (self.accuracy(k) - CHANCE[k]) / (o - CHANCE[k])
    }
}

/// The eight per-bar probability columns of the experiments' CSV files (`member_probs`,
/// `pooled_rows`), each after a group's name (`ensemble_v_low`, `hmm_d_up`, ...): volatility
/// low/medium/high, trend down/neutral/up, structure trending/mean-reverting.
pub const PROB_CELLS: [&str; 8] = [
    "v_low",
    "v_med",
    "v_high",
    "d_down",
    "d_neutral",
    "d_up",
    "s_trend",
    "s_mr",
];

/// Columns an experiment needs to score a posterior by how well it predicts the next bar
/// (`benches/accuracy/predictive_teacher.py`): the model's emission log-likelihoods of the
/// bar (`lb0`..`lb17`, up to a per-bar constant, index `volatility*6 + trend*2 + structure`)
/// and its transition matrices (`av*`, `ad*`, `as*`, row-major). The header cells, each
/// with its leading comma.
pub fn predictive_header(out: &mut String) {
    use std::fmt::Write as _;
    for j in 0..18 {
        let _ = write!(out, ",lb{j}");
    }
    for (name, n) in [("av", 3), ("ad", 3), ("as", 2)] {
        for j in 0..n * n {
            let _ = write!(out, ",{name}{j}");
        }
    }
}

/// The cells of [`predictive_header`] for the bar `hmm` has just taken; false (nothing
/// written) while it has no model.
pub fn predictive_cells(out: &mut String, hmm: &regime_core::hmm::OnlineHmm) -> bool {
    use std::fmt::Write as _;
    let Some(p) = hmm.params() else {
        return false;
    };
    let (_, b) = hmm.last_emission();
    for x in b {
        let _ = write!(out, ",{:.6}", x.max(1e-300).ln());
    }
    let rows = p.a_vol.iter().chain(&p.a_trend).map(|r| &r[..]);
    for row in rows.chain(p.a_struct.iter().map(|r| &r[..])) {
        for x in row {
            let _ = write!(out, ",{x:.6}");
        }
    }
    true
}

/// Why [`read_ohlcv_csv`] could not read a file.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A row with fewer than the seven columns.
    #[error("{path}:{line}: expected 7 columns, found {found}")]
    Columns {
        /// The file.
        path: String,
        /// Its line (1-based, the header is line 1).
        line: usize,
        /// Fields found on it.
        found: usize,
    },
}

/// A real OHLCV file as the experiments write it (CSV `timestamp,symbol,open,high,low,close,
/// volume`, e.g. `benches/accuracy/out/arch_indices.csv`), by symbol in file order: each row's
/// timestamp text and its bar, stamped one day apart by row (the examples that read it look
/// at the labels, not the clock). A field that does not parse reads as NaN, for the caller
/// to skip; a row with fewer than seven fields is an error naming the file and line.
pub fn read_ohlcv_csv(
    path: &str,
) -> Result<std::collections::BTreeMap<String, Vec<(String, Bar)>>, CsvError> {
    let text = std::fs::read_to_string(path).map_err(|source| CsvError::Io {
        path: path.to_string(),
        source,
    })?;
    let mut by: std::collections::BTreeMap<String, Vec<(String, Bar)>> = Default::default();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 7 {
            return Err(CsvError::Columns {
                path: path.to_string(),
                line: i + 1,
                found: f.len(),
            });
        }
        let x = |k: usize| f[k].trim().parse::<f64>().unwrap_or(f64::NAN);
        let b = Bar::new(i as i64 * 86_400_000, x(2), x(3), x(4), x(5), x(6));
        by.entry(f[1].to_string())
            .or_default()
            .push((f[0].to_string(), b));
    }
    Ok(by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regime_core::bars::check_bar;

    #[test]
    fn bars_are_valid_and_reproducible() {
        let cfg = SynthConfig {
            symbols: 2,
            bars: 2000,
            ..SynthConfig::default()
        };
        let a = generate(&cfg, 7);
        let b = generate(&cfg, 7);
        assert_eq!(a.len(), 2);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.bars, y.bars);
            assert_eq!(x.labels, y.labels);
            for bar in &x.bars {
                check_bar(bar).expect("generated bar is valid");
            }
        }
        assert_ne!(a[0].bars, a[1].bars);
    }

    #[test]
    fn states_are_persistent_and_all_visited() {
        let cfg = SynthConfig {
            bars: 20_000,
            ..SynthConfig::default()
        };
        let d = generate_symbol(&cfg, 11, 0);
        for dim in 0..3 {
            let switches = d
                .labels
                .windows(2)
                .filter(|w| w[0][dim] != w[1][dim])
                .count();
            let expect = (1.0 - cfg.persistence[dim]) * 20_000.0;
            assert!(
                (switches as f64) < 1.5 * expect && (switches as f64) > 0.5 * expect,
                "dim {dim}: {switches} switches, expected about {expect}"
            );
            let n = if dim == 2 { 2 } else { 3 };
            for k in 0..n {
                assert!(d.labels.iter().any(|l| l[dim] as usize == k));
            }
        }
    }
}
