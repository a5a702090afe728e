//! The scoring methods of the adaptive scoring layer. Each gives, per bar, probabilities for
//! the dimensions it covers (or abstains). They are genuinely different detectors:
//! * `hmm` — the online joint HMM (forward filter, online EM);
//! * `threshold` — rolling-window rules against adaptive boundaries;
//! * `kalman` — Kalman trend slope and innovation volatility;
//! * `jump` — an online statistical jump model (k-means with a switching penalty);
//! * `changepoint` — CUSUM change detection; each segment is classified as a whole.

use crate::bars::Bar;
use crate::features::{
    Autocorrelation, AutocorrelationConfig, EwmaVolatility, EwmaVolatilityConfig, KalmanTrend,
    RangeEstimator, RangeVolatility, RangeVolatilityConfig, Streaming, TrendTStat,
    TrendTStatConfig,
};
use crate::hmm::dims;
use crate::regime::DIM_SIZES;
use wide::f32x8;

/// First lane of each dimension in an eight-lane row of per-state values (volatility 0..3,
/// trend 3..6, structure 6..8): the methods' log rows, the pool's sums, the jump model's
/// costs.
pub(crate) const LANE0: [usize; 3] = [0, 3, 6];

/// Per-dimension probabilities from an eight-lane row of log-weights already less their
/// dimension's maximum: one eight-lane `exp`, normalized per dimension in f64 so that each
/// sums to 1 exactly (structure's third entry 0). The pool's last step and the jump model's.
pub(crate) fn lane_probs(shifted: f32x8) -> [[f64; 3]; 3] {
    let e = shifted.exp().to_array();
    let mut out = [[0.0; 3]; 3];
    for d in 0..3 {
        let nd = DIM_SIZES[d];
        let mut z = 0.0f64;
        for k in 0..nd {
            out[d][k] = e[LANE0[d] + k] as f64;
            z += out[d][k];
        }
        for k in 0..nd {
            out[d][k] /= z;
        }
    }
    out
}

/// Method names in ensemble order.
pub const METHOD_NAMES: [&str; 6] = [
    "hmm",
    "threshold",
    "kalman",
    "jump",
    "changepoint",
    "hmm_averaged",
];
/// Number of methods.
pub const N_METHODS: usize = 6;

/// Per-dimension probabilities from one method; `has[d]` false = abstains on dimension d.
/// Structure uses the first two entries of `p[2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Scores {
    /// Probabilities per dimension.
    pub p: [[f64; 3]; 3],
    /// Which dimensions are covered.
    pub has: [bool; 3],
}

impl Default for Scores {
    fn default() -> Self {
        Scores {
            p: [[1.0 / 3.0; 3], [1.0 / 3.0; 3], [0.5, 0.5, 0.0]],
            has: [false; 3],
        }
    }
}

/// A method's soft splits of its dimensions, built up and then turned into [`Scores`] with
/// all their logistic functions in one eight-lane `exp` (a method has at most five). Single
/// precision: method probabilities feed an f32 log pool floored at 1e-4.
#[derive(Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct SoftSplits {
    /// −logit of each lane used so far (an unused lane's 0 costs nothing).
    neg_logit: [f32; 8],
    used: usize,
    /// Per dimension: its first lane, and whether it is a three-way split.
    dims: [Option<(usize, bool)>; 3],
}

impl SoftSplits {
    /// Dimension `d` split three ways at boundaries `lo < hi` with softness `s`: below `lo`
    /// (the first state) and above `hi` (the third) by a logistic function each, the middle
    /// state the rest (at least 0.02).
    fn three(&mut self, d: usize, x: f64, lo: f64, hi: f64, s: f64) {
        let s = s.max(1e-9);
        self.dims[d] = Some((self.used, true));
        self.push((lo - x) / s);
        self.push((x - hi) / s);
    }
    /// Dimension `d` split two ways at 0 with softness `s` (the first state above 0).
    fn two(&mut self, d: usize, x: f64, s: f64) {
        self.dims[d] = Some((self.used, false));
        self.push(x / s.max(1e-9));
    }
    fn push(&mut self, logit: f64) {
        self.neg_logit[self.used] = (-logit) as f32;
        self.used += 1;
    }
    fn scores(&self) -> Scores {
        let mut s = Scores::default();
        if self.used == 0 {
            return s;
        }
        let e = f32x8::from(self.neg_logit).exp().to_array();
        let sigmoid = |i: usize| 1.0 / (1.0 + e[i] as f64);
        for (d, split) in self.dims.iter().enumerate() {
            match *split {
                Some((i, true)) => {
                    let (a, c) = (sigmoid(i), sigmoid(i + 1));
                    let b = (1.0 - a - c).max(0.02);
                    let z = a + b + c;
                    s.p[d] = [a / z, b / z, c / z];
                }
                Some((i, false)) => {
                    let p = sigmoid(i);
                    s.p[d] = [p, 1.0 - p, 0.0];
                }
                None => continue,
            }
            s.has[d] = true;
        }
        s
    }
}

/// Expanding-window quantile tracker (stochastic approximation with a shrinking step):
/// the `dynamic_boundary_optimizer`'s building block.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct QuantileTracker {
    tau: f64,
    q: f64,
    n: u64,
    mean: f64,
    m2: f64,
}

impl QuantileTracker {
    /// Track quantile `tau` in (0, 1).
    pub fn new(tau: f64) -> Self {
        QuantileTracker {
            tau,
            q: f64::NAN,
            n: 0,
            mean: 0.0,
            m2: 0.0,
        }
    }
    /// Feed a value. Values that are not finite, or beyond ±1e100, are skipped: their
    /// squares would overflow the running variance and leave the step NaN for good (no
    /// feature of a bar comes near: log volatilities stay within ~±1,400, the trend
    /// t-statistic within ±100).
    pub fn update(&mut self, x: f64) {
        if !x.is_finite() || x.abs() > 1e100 {
            return;
        }
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        if self.q.is_nan() {
            self.q = x;
            return;
        }
        let sd = (self.m2 / self.n as f64).sqrt();
        let step = (3.0 * sd / (self.n as f64).sqrt()).max(0.01 * sd);
        let ind = if x < self.q { 1.0 } else { 0.0 };
        self.q += step * (self.tau - ind);
    }
    /// Current estimate (NaN before any value).
    pub fn value(&self) -> f64 {
        self.q
    }
    /// Values seen.
    pub fn count(&self) -> u64 {
        self.n
    }
    /// Running standard deviation of the values.
    pub fn sd(&self) -> f64 {
        if self.n > 1 {
            (self.m2 / self.n as f64).sqrt()
        } else {
            0.0
        }
    }
}

/// Adaptive volatility and trend boundaries, per instrument (`dynamic_boundary_optimizer`).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Boundaries {
    /// Terciles of log range volatility.
    pub vol: [QuantileTracker; 2],
    /// 1/3-quantile of |trend t-stat| (the neutral band).
    pub trend_band: QuantileTracker,
}

impl Default for Boundaries {
    fn default() -> Self {
        Boundaries {
            vol: [
                QuantileTracker::new(1.0 / 3.0),
                QuantileTracker::new(2.0 / 3.0),
            ],
            trend_band: QuantileTracker::new(1.0 / 3.0),
        }
    }
}

impl Boundaries {
    /// Volatility boundaries `(lo, hi, softness)`, or None before 20 values.
    pub fn vol_bounds(&self) -> Option<(f64, f64, f64)> {
        if self.vol[0].count() < 20 {
            return None;
        }
        let lo = self.vol[0].value();
        let hi = self.vol[1].value().max(lo + 1e-6);
        Some((lo, hi, 0.25 * (hi - lo) + 1e-6))
    }
}

/// Shared per-bar inputs computed once for all methods.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BarContext {
    /// Log range volatility (GK over 10 bars; EWMA close-to-close when there is no range).
    pub log_vol: f64,
    /// Trend t-stat (50 bars).
    pub t_stat: f64,
    /// Lag-1 autocorrelation (50 pairs).
    pub ac1: f64,
    /// Log return (NaN on the first bar).
    pub r: f64,
    /// Running return scale (EWMA vol).
    pub scale: f64,
    /// Slope z-score of the Kalman trend (the `adaptive_noise_filter`; None until it has one).
    pub kalman_z: Option<f64>,
}

/// Computes [`BarContext`] with the streaming features.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ContextBuilder {
    gk: RangeVolatility,
    ewma: EwmaVolatility,
    tstat: TrendTStat,
    ac: Autocorrelation,
    kalman: KalmanTrend,
    /// ln of the previous close (NaN before the first bar).
    prev_ln_close: f64,
}

impl Default for ContextBuilder {
    fn default() -> Self {
        ContextBuilder {
            gk: RangeVolatility::new(RangeVolatilityConfig {
                window: 10,
                estimator: RangeEstimator::GarmanKlass,
            })
            .unwrap_or_default(),
            ewma: EwmaVolatility::new(EwmaVolatilityConfig { lambda: 0.94 }).unwrap_or_default(),
            tstat: TrendTStat::new(TrendTStatConfig { window: 50 }).unwrap_or_default(),
            ac: Autocorrelation::new(AutocorrelationConfig { window: 50 }).unwrap_or_default(),
            kalman: KalmanTrend::default(),
            prev_ln_close: f64::NAN,
        }
    }
}

impl ContextBuilder {
    /// Next context.
    pub fn update(&mut self, b: &Bar) -> BarContext {
        let gk = self.gk.update(b);
        let ew = self.ewma.update(b);
        let log_vol = match (b.has_ohl(), gk, ew) {
            (true, Some(g), _) if g > 0.0 => g.ln(),
            (_, _, Some(e)) if e > 0.0 => e.ln(),
            _ => f64::NAN,
        };
        let ln_close = b.close.ln();
        let r = ln_close - self.prev_ln_close;
        self.prev_ln_close = ln_close;
        BarContext {
            log_vol,
            t_stat: self.tstat.update(b).unwrap_or(f64::NAN),
            ac1: self.ac.update(b).unwrap_or(f64::NAN),
            r,
            scale: ew.unwrap_or(f64::NAN),
            kalman_z: self.kalman.update(b).map(|k| k.z()),
        }
    }
}

/// Rolling-window rules against adaptive boundaries.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ThresholdMethod;

impl ThresholdMethod {
    /// Score one bar.
    pub fn score(&self, c: &BarContext, bounds: &Boundaries) -> Scores {
        let mut s = SoftSplits::default();
        if let (Some((lo, hi, sf)), false) = (bounds.vol_bounds(), c.log_vol.is_nan()) {
            s.three(0, c.log_vol, lo, hi, sf);
        }
        let band = bounds.trend_band.value();
        if !c.t_stat.is_nan() && band.is_finite() && bounds.trend_band.count() > 20 {
            s.three(1, c.t_stat, -band, band, 0.3 * band + 1e-6);
        }
        if !c.ac1.is_nan() {
            s.two(2, c.ac1, 0.07);
        }
        s.scores()
    }
}

/// Kalman trend (the `adaptive_noise_filter`, whose slope z-score comes with the
/// [`BarContext`]) against its own adaptive band, and the close-to-close volatility.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KalmanMethod {
    z_band: Option<QuantileTracker>,
}

impl KalmanMethod {
    /// Score one bar.
    pub fn score(&mut self, c: &BarContext, bounds: &Boundaries) -> Scores {
        let mut s = SoftSplits::default();
        let band = self
            .z_band
            .get_or_insert_with(|| QuantileTracker::new(1.0 / 3.0));
        if let Some(z) = c.kalman_z {
            band.update(z.abs());
            if band.count() > 20 {
                let w = band.value().max(1e-6);
                s.three(1, z, -w, w, 0.3 * w);
            }
        }
        if let (Some((lo, hi, sf)), false) = (bounds.vol_bounds(), c.scale.is_nan()) {
            // close-to-close EWMA vol sits ~ (range vol) apart; shift by the running gap
            s.three(0, c.scale.max(1e-12).ln(), lo, hi, 1.5 * sf);
        }
        s.scores()
    }
    /// Last slope z-score band (for details).
    pub fn band(&self) -> f64 {
        self.z_band.as_ref().map_or(f64::NAN, |b| b.value())
    }
}

/// Online statistical jump model: per dimension a 1-D feature, centroids learned online,
/// states chosen by `argmin (x − c_k)²/s² + λ·[k ≠ previous]`.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct JumpMethod {
    cent: [[f64; 3]; 3],
    count: [[f64; 3]; 3],
    state: [usize; 3],
    trend_ewma: f64,
    struct_ewma: f64,
    prev_std: f64,
    n: u64,
    /// Jump penalty (in squared standardized units).
    pub lambda: f64,
}

impl Default for JumpMethod {
    fn default() -> Self {
        JumpMethod {
            cent: [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [1.0, -1.0, 0.0]],
            count: [[1.0; 3]; 3],
            state: [1, 1, 0],
            trend_ewma: 0.0,
            struct_ewma: 0.0,
            prev_std: f64::NAN,
            n: 0,
            lambda: 1.0,
        }
    }
}

impl JumpMethod {
    /// The state each dimension is in (volatility, trend, structure; the index of its
    /// centroid in order), as the last bar left it.
    pub fn states(&self) -> [usize; 3] {
        self.state
    }

    /// Score one bar.
    pub fn score(&mut self, c: &BarContext, bounds: &Boundaries) -> Scores {
        let mut s = Scores::default();
        self.n += 1;
        // standardized features
        let sd_vol = bounds.vol[0].sd().max(1e-6);
        let mid = 0.5 * (bounds.vol[0].value() + bounds.vol[1].value());
        let fv = (c.log_vol - mid) / sd_vol;
        let z = if c.scale > 0.0 && !c.r.is_nan() {
            c.r / c.scale
        } else {
            f64::NAN
        };
        if !z.is_nan() {
            self.trend_ewma += (z - self.trend_ewma) / 20.0;
            if !self.prev_std.is_nan() {
                self.struct_ewma += (z * self.prev_std - self.struct_ewma) / 30.0;
            }
            self.prev_std = z;
        }
        let feats = [fv, self.trend_ewma * 4.0, self.struct_ewma * 4.0];
        // each dimension's costs relative to its best, in the lanes of one eight-lane row
        // (volatility 0..3, trend 3..6, structure 6..8), so that one vector `exp` turns
        // them all into probabilities
        let mut rel = [0.0f32; 8];
        for d in 0..3 {
            let x = feats[d];
            if x.is_nan() || self.n < 30 {
                continue;
            }
            let k = DIM_SIZES[d];
            let mut cost = [f64::INFINITY; 3];
            for (j, cj) in cost.iter_mut().enumerate().take(k) {
                *cj = (x - self.cent[d][j]).powi(2)
                    + if j == self.state[d] { 0.0 } else { self.lambda };
            }
            // the first cheapest state, by selects: which one it is changes from bar to bar
            // as a coin toss would, and a mispredicted branch costs more than the compares
            let mut best = 0;
            for j in 1..k {
                best = if cost[j].total_cmp(&cost[best]).is_lt() {
                    j
                } else {
                    best
                };
            }
            self.state[d] = best;
            // online centroid update, kept ordered (semantic states)
            self.count[d][best] += 1.0;
            let eta = 1.0 / self.count[d][best].min(500.0);
            self.cent[d][best] += eta * (x - self.cent[d][best]);
            // Reordered only if this update moved `best` past a neighbour (they were in
            // order before it); the state and the counts follow their centroid (left on the
            // old index, the state named whichever centroid moved there: with one cluster
            // in the data — S&P 500's daily trend — the label sat on `up` for 11 years,
            // then on `down` for 7, as the one moving centroid passed the others)
            let mut rel_d = cost.map(|cj| -(cj - cost[best]));
            let c = self.cent[d];
            let structure_swapped = k == 2 && c[0] < c[1];
            let passed = k == 3
                && ((best > 0 && c[best] < c[best - 1]) || (best < 2 && c[best] > c[best + 1]));
            if structure_swapped || passed {
                let mut order = [0, 1, 2];
                if k == 3 {
                    order.sort_by(|&a, &b| c[a].total_cmp(&c[b]));
                } else {
                    order = [1, 0, 2];
                }
                let n = self.count[d];
                self.cent[d] = order.map(|i| c[i]);
                self.count[d] = order.map(|i| n[i]);
                self.state[d] = order.iter().position(|&i| i == best).unwrap_or(best);
                // this bar's scores name the states by their new places too (written by
                // the old ones, the bar's label was the state the centroid had left)
                rel_d = order.map(|i| rel_d[i]);
            }
            for j in 0..k {
                rel[LANE0[d] + j] = rel_d[j] as f32;
            }
            s.has[d] = true;
        }
        if s.has.iter().any(|&h| h) {
            let p = lane_probs(f32x8::from(rel));
            for d in (0..3).filter(|&d| s.has[d]) {
                s.p[d] = p[d];
            }
        }
        s
    }
}

/// CUSUM change-point detector; the current segment is classified as a whole.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChangePointMethod {
    seg_n: f64,
    seg_vol: f64,
    seg_r: f64,
    seg_rr: f64,
    seg_rp: f64,
    prev_r: f64,
    cusum_hi: f64,
    cusum_lo: f64,
    changes: u64,
}

impl ChangePointMethod {
    /// Score one bar.
    pub fn score(&mut self, c: &BarContext, bounds: &Boundaries) -> Scores {
        let Some((lo, hi, sf)) = bounds.vol_bounds() else {
            return Scores::default();
        };
        if c.log_vol.is_nan() || c.r.is_nan() {
            return Scores::default();
        }
        let sd = bounds.vol[0].sd().max(1e-6);
        let seg_mean = if self.seg_n > 0.0 {
            self.seg_vol / self.seg_n
        } else {
            c.log_vol
        };
        let dev = (c.log_vol - seg_mean) / sd;
        self.cusum_hi = (self.cusum_hi + dev - 0.5).max(0.0);
        self.cusum_lo = (self.cusum_lo - dev - 0.5).max(0.0);
        if self.cusum_hi > 4.0 || self.cusum_lo > 4.0 {
            self.changes += 1;
            *self = ChangePointMethod {
                changes: self.changes,
                prev_r: self.prev_r,
                ..ChangePointMethod::default()
            };
        }
        self.seg_n += 1.0;
        self.seg_vol += c.log_vol;
        self.seg_r += c.r;
        self.seg_rr += c.r * c.r;
        if !self.prev_r.is_nan() && self.seg_n > 1.0 {
            self.seg_rp += c.r * self.prev_r;
        }
        self.prev_r = c.r;
        let m = self.seg_vol / self.seg_n;
        let mut s = SoftSplits::default();
        s.three(0, m, lo, hi, sf / self.seg_n.sqrt().max(1.0) + 0.1 * sf);
        if self.seg_n >= 10.0 {
            let mean = self.seg_r / self.seg_n;
            let var = (self.seg_rr / self.seg_n - mean * mean).max(1e-18);
            let t = mean / (var / self.seg_n).sqrt();
            s.three(1, t, -1.0, 1.0, 0.4);
            let ac = self.seg_rp / self.seg_rr.max(1e-18);
            s.two(2, ac * self.seg_n.sqrt(), 0.7);
        }
        s.scores()
    }
    /// Change points detected so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }
}

/// The HMM as a scoring method.
pub fn hmm_scores(step: &crate::hmm::HmmStep) -> Scores {
    joint_scores(&step.joint, step.warming_up)
}

/// The HMM's filter on averaged parameters as a scoring method.
pub fn averaged_hmm_scores(step: &crate::hmm::HmmStep) -> Scores {
    joint_scores(&step.averaged, step.warming_up)
}

fn joint_scores(joint: &[f64; crate::model::NS], warming_up: bool) -> Scores {
    let (pv, pd, ps) = dims(joint);
    Scores {
        p: [pv, pd, [ps[0], ps[1], 0.0]],
        has: [!warming_up; 3],
    }
}

#[cfg(test)]
mod tests {
    use super::QuantileTracker;

    #[test]
    fn a_quantile_tracker_skips_what_would_overflow_it() {
        let mut q = QuantileTracker::new(1.0 / 3.0);
        for (i, x) in [1e300, f64::INFINITY, f64::NAN, -1e200]
            .into_iter()
            .enumerate()
        {
            q.update(x);
            assert_eq!(q.count(), 0, "value {i} was taken");
        }
        for i in 0..3_000u32 {
            q.update(f64::from(i % 3));
            if i % 500 == 0 {
                q.update(1e300);
            }
        }
        assert_eq!(q.count(), 3_000);
        assert!(q.sd().is_finite() && q.value().is_finite(), "{q:?}");
        // the 1/3 quantile of an even mix of 0, 1 and 2 lies between 0 and 1
        assert!((0.0..=1.0).contains(&q.value()), "{q:?}");
    }
}
