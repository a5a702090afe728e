//! The joint 18-state regime model: a hidden Markov model whose three dimensions are
//! independent Markov chains (transitions factorize), with a whole-bar emission.
//!
//! # Emission
//! Given the state `(v, d, s)` and the previous close-to-close log return `r'`:
//! * return: `r = μ + φ_s (r' − μ) + σ_v ε`, `μ = m_d σ_v`, `ε` Student-t with ν = 5 scaled to unit
//!   variance (density ∝ `(1 + z²/3)^-3`, so no `powf` in the hot loop);
//! * overnight gap `ln(open/prev close)`: `N(0, g_v)`;
//! * log excess range `ln(ln(H/L) − |ln(C/O)|)`: `N(ρ_v, τ²)` (the part of the range the body does not explain);
//! * log volume relative to its slow moving average: `N(λ_v, κ²)`.
//!
//! When learned (see `hmm::m_step`) the gap variance is tied to the state's σ (`g² σ_v²`), and the
//! range and volume levels must rise with the volatility state, so every channel agrees on what
//! "high volatility" means — a data-vendor quirk in one channel (opens copied from closes,
//! volume growth over decades) cannot take a state over with a reversed meaning.
//!
//! Missing channels (close-only bars, no volume, a degenerate bar) are skipped, not guessed.
//! Everything the hot loop needs is precomputed when the parameters change.

use crate::bars::Bar;
use crate::error::{Error, Result};
use wide::{f64x2, f64x4};

/// Number of joint states.
pub const NS: usize = 18;

/// Floats per model in [`Compiled::pack_f32`] (62 used, padded to a multiple of 4 so that
/// every model starts 16-byte aligned).
pub const PARAM_STRIDE: usize = 64;

/// Joint index of `(v, d, s)`.
#[inline]
pub fn joint(v: usize, d: usize, s: usize) -> usize {
    v * 6 + d * 2 + s
}

/// Structure's transitions applied to a joint vector (forward direction): one of the three
/// steps of [`Compiled::predict`], which the HMM's learning also uses on its own. (Scalar:
/// four-lane pairs need as many shuffles as they save.)
#[inline]
pub(crate) fn step_struct(x: &[f64; NS], p: &JointParams) -> [f64; NS] {
    let mut t = [0.0; NS];
    for k in 0..9 {
        let (a0, a1) = (x[2 * k], x[2 * k + 1]);
        t[2 * k] = a0 * p.a_struct[0][0] + a1 * p.a_struct[1][0];
        t[2 * k + 1] = a0 * p.a_struct[0][1] + a1 * p.a_struct[1][1];
    }
    t
}

/// Trend's transitions applied to a joint vector (forward direction).
#[inline]
pub(crate) fn step_trend(x: &[f64; NS], p: &JointParams) -> [f64; NS] {
    let a = &p.a_trend;
    mix_trend(x, [0, 1, 2].map(|w| [a[0][w], a[1][w], a[2][w]]))
}

/// Within each volatility state, the (structure) pair of trend state `w` of the result is
/// `Σ_d m[w][d] · pair d` of `x`: forward steps pass the transition matrix's columns,
/// backward steps its rows. Pairs `w` = 0, 1 four lanes at a time and `w` = 2 two, with a
/// scalar sum's operations in its order, (m0·x0 + m1·x1) + m2·x2.
#[inline]
pub(crate) fn mix_trend(x: &[f64; NS], m: [[f64; 3]; 3]) -> [f64; NS] {
    let c01 = |d: usize| f64x4::from([m[0][d], m[0][d], m[1][d], m[1][d]]);
    let c2 = |d: usize| f64x2::splat(m[2][d]);
    let (a0, a1, a2) = (c01(0), c01(1), c01(2));
    let (b0, b1, b2) = (c2(0), c2(1), c2(2));
    let mut t = [0.0; NS];
    for v in 0..3 {
        let o = 6 * v;
        let pair4 = |d: usize| {
            f64x4::from([
                x[o + 2 * d],
                x[o + 2 * d + 1],
                x[o + 2 * d],
                x[o + 2 * d + 1],
            ])
        };
        let pair2 = |d: usize| f64x2::from([x[o + 2 * d], x[o + 2 * d + 1]]);
        let l = pair4(0) * a0 + pair4(1) * a1 + pair4(2) * a2;
        let h = pair2(0) * b0 + pair2(1) * b1 + pair2(2) * b2;
        t[o..o + 4].copy_from_slice(&l.to_array());
        t[o + 4..o + 6].copy_from_slice(&h.to_array());
    }
    t
}

/// Volatility's transitions applied to a joint vector (forward direction).
#[inline]
pub(crate) fn step_vol(x: &[f64; NS], p: &JointParams) -> [f64; NS] {
    let a = &p.a_vol;
    mix_vol(x, [0, 1, 2].map(|w| [a[0][w], a[1][w], a[2][w]]))
}

/// Block `w` of the result is `Σ_v m[w][v] · block v` of `x`, a block being a volatility
/// state's six contiguous (trend, structure) entries: forward steps pass the transition
/// matrix's columns, backward steps its rows. Four lanes and then two at a time, with a
/// scalar sum's operations in its order, (m0·x0 + m1·x1) + m2·x2, so results are the same.
#[inline]
pub(crate) fn mix_vol(x: &[f64; NS], m: [[f64; 3]; 3]) -> [f64; NS] {
    let lo = |v: usize| f64x4::from([x[6 * v], x[6 * v + 1], x[6 * v + 2], x[6 * v + 3]]);
    let hi = |v: usize| f64x2::from([x[6 * v + 4], x[6 * v + 5]]);
    let (l0, l1, l2) = (lo(0), lo(1), lo(2));
    let (h0, h1, h2) = (hi(0), hi(1), hi(2));
    let mut t = [0.0; NS];
    for (w, c) in m.iter().enumerate() {
        let l = l0 * f64x4::splat(c[0]) + l1 * f64x4::splat(c[1]) + l2 * f64x4::splat(c[2]);
        let h = h0 * f64x2::splat(c[0]) + h1 * f64x2::splat(c[1]) + h2 * f64x2::splat(c[2]);
        t[6 * w..6 * w + 4].copy_from_slice(&l.to_array());
        t[6 * w + 4..6 * w + 6].copy_from_slice(&h.to_array());
    }
    t
}

/// Four forward filters in the lanes of one vector, alike but for their trend transition
/// matrices (one per lane), on shared evidence: what a profile likelihood over the trend
/// persistence needs, for about the work of one filter.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct TrendLanes {
    /// Joint posterior, state by state, one filter per lane.
    alpha: [f64x4; NS],
    /// Forward trend weights: `m[w][d]` is lane-wise `A(d → w)`.
    m: [[f64x4; 3]; 3],
    a_vol: [[f64; 3]; 3],
    a_struct: [[f64; 2]; 2],
}

impl TrendLanes {
    /// Filters from the uniform distribution; the volatility and structure transitions
    /// of `p`, trend transitions `a_trend[lane]`.
    pub(crate) fn new(p: &JointParams, a_trend: &[[[f64; 3]; 3]; 4]) -> Self {
        let m = [0, 1, 2]
            .map(|w| [0, 1, 2].map(|d| f64x4::from([0, 1, 2, 3].map(|k| a_trend[k][d][w]))));
        TrendLanes {
            alpha: [f64x4::splat(1.0 / NS as f64); NS],
            m,
            a_vol: p.a_vol,
            a_struct: p.a_struct,
        }
    }

    /// New transitions (volatility and structure from `p`, trend per lane), keeping each
    /// lane's posterior.
    pub(crate) fn retarget(&mut self, p: &JointParams, a_trend: &[[[f64; 3]; 3]; 4]) {
        let alpha = self.alpha;
        *self = TrendLanes::new(p, a_trend);
        self.alpha = alpha;
    }

    /// One bar with emission `b` (shared): predict, correct; returns each filter's
    /// normalizer (0 in a lane where every state had zero likelihood: that lane's
    /// posterior is then its prediction, as [`correct`] does).
    #[inline]
    pub(crate) fn step(&mut self, b: &[f64; NS]) -> [f64; 4] {
        let x = &self.alpha;
        // structure, then trend, then volatility (the order of `Compiled::predict`)
        let mut t = [f64x4::ZERO; NS];
        let s = &self.a_struct;
        for k in 0..9 {
            let (a0, a1) = (x[2 * k], x[2 * k + 1]);
            t[2 * k] = a1.mul_add(f64x4::splat(s[1][0]), a0 * f64x4::splat(s[0][0]));
            t[2 * k + 1] = a1.mul_add(f64x4::splat(s[1][1]), a0 * f64x4::splat(s[0][1]));
        }
        let mut u = [f64x4::ZERO; NS];
        for v in 0..3 {
            for w in 0..3 {
                for st in 0..2 {
                    let at = |d: usize| t[joint(v, d, st)];
                    let m = &self.m[w];
                    u[joint(v, w, st)] = at(2).mul_add(m[2], at(1).mul_add(m[1], at(0) * m[0]));
                }
            }
        }
        let a = &self.a_vol;
        let mut z = f64x4::ZERO;
        let mut pred = [f64x4::ZERO; NS];
        for w in 0..3 {
            for k in 0..6 {
                let at = |v: usize| u[6 * v + k];
                let q = at(2).mul_add(
                    f64x4::splat(a[2][w]),
                    at(1).mul_add(f64x4::splat(a[1][w]), at(0) * f64x4::splat(a[0][w])),
                );
                pred[6 * w + k] = q;
                let y = q * f64x4::splat(b[6 * w + k]);
                self.alpha[6 * w + k] = y;
                z += y;
            }
        }
        let zs = z.to_array();
        if zs.iter().all(|z| *z > 0.0 && z.is_finite()) {
            let inv = f64x4::ONE / z;
            for y in &mut self.alpha {
                *y *= inv;
            }
            return zs;
        }
        // a lane with no likelihood at all keeps its prediction (rare: scalar)
        let mut out = zs;
        for (lane, zl) in out.iter_mut().enumerate() {
            let ok = *zl > 0.0 && zl.is_finite();
            let norm = if ok {
                *zl
            } else {
                pred.iter().map(|q| q.to_array()[lane]).sum()
            };
            for j in 0..NS {
                let mut arr = self.alpha[j].to_array();
                arr[lane] = if ok {
                    arr[lane]
                } else {
                    pred[j].to_array()[lane]
                } / norm;
                self.alpha[j] = f64x4::from(arr);
            }
            if !ok {
                *zl = 0.0;
            }
        }
        out
    }
}

/// Parameters of the joint model.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct JointParams {
    /// Innovation standard deviation per volatility state.
    pub sigma: [f64; 3],
    /// Drift per trend state, in units of `sigma` (neutral is 0).
    pub drift: [f64; 3],
    /// Lag-1 autoregression per structure state (trending > 0 > mean-reverting).
    pub phi: [f64; 2],
    /// Variance of the noise on the log price that the bars' prices carry (a tick grid's
    /// rounding, a bid-ask bounce): 0 for a clean price. It adds `−noise` to consecutive
    /// returns' covariance, the same in every volatility state, so a state's lag-1
    /// coefficient is [`noisy_ar`] of `phi` (see [`state_ar`]). Model files written
    /// before it existed read as 0.
    #[cfg_attr(feature = "serde", serde(default))]
    pub noise: f64,
    /// Variance of the overnight gap per volatility state.
    pub gap_var: [f64; 3],
    /// The gap's density: Student t(5) of variance `gap_var` (true: learned models), or
    /// normal (false: the generator's gaps, and model files written before it existed).
    /// Market gaps are far more fat-tailed than returns (excess kurtosis 6–15 on S&P 500 /
    /// NASDAQ daily against 2–6 for the returns): under a normal density one news gap of
    /// 3 gap-deviations, in a year of small opens, moved the volatility state by itself.
    #[cfg_attr(feature = "serde", serde(default))]
    pub gap_student: bool,
    /// How much the gap channel's log-density counts, in (0, 1]: less than 1 where the
    /// close-to-close return already carries the gap (see `hmm::gap_weight`). Model files
    /// written before it existed read as 1.
    #[cfg_attr(feature = "serde", serde(default = "full_weight"))]
    pub gap_weight: f64,
    /// Mean of the log excess range per volatility state.
    pub range_mean: [f64; 3],
    /// Variance of the log excess range (shared).
    pub range_var: f64,
    /// The range's density: log-gamma of the same mean and variance (true: learned models
    /// whose bars' ranges show the long left tail of market bars), or normal (false: the
    /// generator's log-normal ranges, and model files written before it existed). See
    /// `RangeLogGamma` in `model.rs` and the choice in `hmm::RANGE_TAIL_EVIDENCE`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub range_log_gamma: bool,
    /// How much the range channel's log-density counts, in (0, 1]: less than 1 where the
    /// range only repeats what the return said (see `hmm::range_weight`). Model files
    /// written before it existed read as 1.
    #[cfg_attr(feature = "serde", serde(default = "full_weight"))]
    pub range_weight: f64,
    /// Mean of relative log volume per volatility state.
    pub volume_mean: [f64; 3],
    /// Variance of relative log volume (shared).
    pub volume_var: f64,
    /// Volatility transition matrix (rows sum to 1).
    pub a_vol: [[f64; 3]; 3],
    /// Trend transition matrix.
    pub a_trend: [[f64; 3]; 3],
    /// Structure transition matrix.
    pub a_struct: [[f64; 2]; 2],
}

#[cfg(feature = "serde")]
pub(crate) fn full_weight() -> f64 {
    1.0
}

fn persistent3(p: f64) -> [[f64; 3]; 3] {
    let q = (1.0 - p) / 2.0;
    [[p, q, q], [q, p, q], [q, q, p]]
}

impl JointParams {
    /// A neutral starting point scaled to a typical return size `scale`.
    pub fn initial(scale: f64, range_center: f64, volume_center: f64) -> Self {
        let s = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            0.01
        };
        let sigma = [s * 0.6, s * 1.0, s * 1.8];
        JointParams {
            sigma,
            drift: [-0.15, 0.0, 0.15],
            phi: [0.2, -0.2],
            noise: 0.0,
            gap_var: sigma.map(|x| (0.3 * x).powi(2)),
            gap_student: true,
            gap_weight: 1.0,
            range_mean: [
                range_center + 0.6f64.ln(),
                range_center,
                range_center + 1.8f64.ln(),
            ],
            range_var: 0.3,
            range_log_gamma: true,
            range_weight: 1.0,
            volume_mean: [volume_center - 0.3, volume_center, volume_center + 0.4],
            volume_var: 0.3,
            a_vol: persistent3(0.985),
            a_trend: persistent3(0.985),
            a_struct: [[0.985, 0.015], [0.015, 0.985]],
        }
    }

    /// Check ranges and that every transition row sums to one (within 1e-8).
    pub fn validate(&self) -> Result<()> {
        let pos = self
            .sigma
            .iter()
            .chain(self.gap_var.iter())
            .chain([self.range_var, self.volume_var].iter())
            .all(|x| x.is_finite() && *x > 0.0);
        if !pos {
            return Err(Error::InvalidModel(
                "variances must be finite and > 0".into(),
            ));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(Error::InvalidModel(format!(
                "noise {} must be finite and >= 0",
                self.noise
            )));
        }
        if !(self.gap_weight > 0.0 && self.gap_weight <= 1.0) {
            return Err(Error::InvalidModel(format!(
                "gap_weight {} must lie in (0, 1]",
                self.gap_weight
            )));
        }
        if !(self.range_weight > 0.0 && self.range_weight <= 1.0) {
            return Err(Error::InvalidModel(format!(
                "range_weight {} must lie in (0, 1]",
                self.range_weight
            )));
        }
        let rows3 = self.a_vol.iter().chain(self.a_trend.iter());
        for row in rows3 {
            check_row(row)?;
        }
        for row in &self.a_struct {
            check_row(row)?;
        }
        Ok(())
    }
}

/// The largest share of a state's return variance the price noise may take (see
/// [`noisy_ar`]): beyond it a state's returns would be all noise.
pub const MAX_NOISE_SHARE: f64 = 0.45;

/// The noise's share `κ = noise / σ²` of a state's return variance, at most
/// [`MAX_NOISE_SHARE`], from `1/σ`.
#[inline]
pub fn noise_share(noise: f64, inv_sigma: f64) -> f64 {
    (noise * inv_sigma * inv_sigma).min(MAX_NOISE_SHARE)
}

/// The lag-1 coefficients of volatility state `v`'s two structure states under `p`
/// (`phi` itself for a clean price), from `1/σ_v`.
#[inline]
pub fn state_ar(p: &JointParams, inv_sigma: f64) -> [f64; 2] {
    if p.noise > 0.0 {
        let k = noise_share(p.noise, inv_sigma);
        p.phi.map(|f| noisy_ar(f, k))
    } else {
        p.phi
    }
}

/// The lag-1 coefficient of returns seen through price noise of share `kappa`: the
/// price's own `phi`, shrunk by the noise's part of the variance, less the noise's own
/// negative autocorrelation, `φ (1 − 2κ) − κ` (returns `r + n_t − n_{t−1}` with
/// `Var n = κ σ²`). Exactly `phi` when `kappa` is 0.
#[inline]
pub fn noisy_ar(phi: f64, kappa: f64) -> f64 {
    phi * (1.0 - 2.0 * kappa) - kappa
}

fn check_row(row: &[f64]) -> Result<()> {
    let s: f64 = row.iter().sum();
    if (s - 1.0).abs() > 1e-8 || row.iter().any(|x| !(0.0..=1.0).contains(x)) {
        return Err(Error::InvalidModel(format!(
            "transition row {row:?} must be probabilities summing to 1"
        )));
    }
    Ok(())
}

/// What one bar tells the model, extracted once.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Obs {
    /// Close-to-close log return (NaN on the first bar).
    pub r: f64,
    /// Previous return (NaN when unknown).
    pub r_prev: f64,
    /// Overnight gap `ln(open/prev close)` (NaN when absent).
    pub gap: f64,
    /// Log excess range (NaN when absent or degenerate).
    pub log_range: f64,
    /// Relative log volume (NaN when absent).
    pub rel_volume: f64,
}

/// Whether a price moves on a coarse grid — a tick that is a sizeable share of a bar's
/// move — and the grid's step in log price, from its close-to-close returns (O(1) state).
///
/// On such a grid a bar's excess range (high over low beyond its open-to-close move) is
/// mostly exactly 0, and read as absent the range channel saw only the wider bars, at
/// `ln δ, ln 2δ, …`: learning on a selected, quantized range collapsed one series in three
/// at a grid of one return sd (`benches/accuracy/README.md`, "Session 36"). On a coarse
/// grid a zero excess range is read as half a step instead ([`PriceGrid::zero_excess`]).
/// The GPU kernels keep the same state (`shaders/*/common.*`), carried into each chunk by
/// the host (`regime-kernels`' plan).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PriceGrid {
    /// Returns seen.
    n: u64,
    /// Running share of them exactly 0 (memory [`GRID_SPAN`] returns).
    zero_share: f64,
    /// The least non-zero |return|, let rise by [`GRID_RELAX`] a return so that it follows
    /// the relative step of an absolute tick as the price moves (0 before the first).
    step: f64,
}

/// Memory of [`PriceGrid`]'s zero share, in returns.
pub const GRID_SPAN: f64 = 1000.0;
/// Relative rise of [`PriceGrid`]'s step a return.
pub const GRID_RELAX: f64 = 1e-3;
/// Returns before a grid counts as coarse.
pub const GRID_MIN_RETURNS: u64 = 50;
/// Share of zero returns from which a grid counts as coarse: a grid of a tenth of a return
/// sd makes ~7% of returns 0, a quarter ~17%, half ~31%; S&P 500 and NASDAQ daily 0.06%,
/// WTI daily 1.6%.
pub const GRID_ZERO_SHARE: f64 = 0.1;

impl PriceGrid {
    /// Count one close-to-close return (NaN: none).
    #[inline]
    pub fn update(&mut self, r: f64) {
        if r.is_nan() {
            return;
        }
        self.n += 1;
        // 1/min(n, span), the division only while the memory fills
        let a = if (self.n as f64) < GRID_SPAN {
            1.0 / self.n as f64
        } else {
            1.0 / GRID_SPAN
        };
        let zero = if r == 0.0 { 1.0 } else { 0.0 };
        self.zero_share += a * (zero - self.zero_share);
        let m = r.abs();
        let relaxed = self.step * (1.0 + GRID_RELAX);
        if m > 0.0 && (self.step == 0.0 || m < relaxed) {
            self.step = m;
        } else {
            self.step = relaxed;
        }
    }

    /// Running share of the returns exactly 0.
    pub fn zero_share(&self) -> f64 {
        self.zero_share
    }

    /// The grid's step in log price as estimated (0 before the first non-zero return).
    pub fn step(&self) -> f64 {
        self.step
    }

    /// Whether the grid counts as coarse: a zero excess range is then read as half a step.
    pub fn is_coarse(&self) -> bool {
        self.zero_excess().is_some()
    }

    /// The log excess range a bar whose excess range is exactly 0 is read as: half the
    /// step on a coarse grid, else None (absent).
    #[inline]
    pub fn zero_excess(&self) -> Option<f64> {
        (self.n >= GRID_MIN_RETURNS && self.zero_share >= GRID_ZERO_SHARE && self.step > 0.0)
            .then(|| (0.5 * self.step).ln())
    }
}

/// Turns bars into [`Obs`] with O(1) state.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ObsExtractor {
    prev_close: f64,
    prev_r: f64,
    vol_avg: f64,
    vol_n: u64,
    started: bool,
    /// The price's grid (see [`PriceGrid`]); extractors saved before it start afresh.
    #[cfg_attr(feature = "serde", serde(default))]
    grid: PriceGrid,
}

/// Span of the slow volume average that volume is measured against.
const VOLUME_SPAN: f64 = 1000.0;

impl ObsExtractor {
    /// A fresh extractor.
    pub fn new() -> Self {
        ObsExtractor {
            prev_close: f64::NAN,
            prev_r: f64::NAN,
            vol_avg: 0.0,
            vol_n: 0,
            started: false,
            grid: PriceGrid::default(),
        }
    }

    /// The price's grid as the bars so far show it.
    pub fn grid(&self) -> &PriceGrid {
        &self.grid
    }

    /// Observation for the next bar (bars must already be validated).
    pub fn update(&mut self, b: &Bar) -> Obs {
        let lc = b.close.ln();
        let single_print = b.is_single_print();
        // A bar with no trade — open, high, low and close all the previous close, no volume
        // (an illiquid instrument's quiet day, a feed's heartbeat) — says nothing of
        // volatility, trend or structure: all its channels are absent. Read as a return of
        // exactly 0 and a range of 0, it was strong evidence of low volatility, and with 40%
        // such bars the volatility label flipped ~110 times a year.
        if self.started && lc == self.prev_close && single_print && b.has_no_volume() {
            self.prev_r = f64::NAN;
            return Obs {
                r: f64::NAN,
                r_prev: f64::NAN,
                gap: f64::NAN,
                log_range: f64::NAN,
                rel_volume: f64::NAN,
            };
        }
        let r = if self.started {
            lc - self.prev_close
        } else {
            f64::NAN
        };
        let (gap, log_range) = if b.has_ohl() {
            // An open exactly equal to the previous close is a data convention (many vendors
            // copy the close when no opening print exists), not a zero gap: treat it as absent.
            // So is the open of a bar made of one print (open = high = low = close: an
            // illiquid instrument's single trade, a quote snapshot): its "gap" is the bar's
            // whole move, which the return already counts. Counted twice, with 20% such bars
            // the volatility label switched twice as often; with all bars so, 40–73 times a
            // year and right on 0.58–0.82 of the bars, below what closes alone give (0.81).
            let g = b.open.ln() - self.prev_close;
            let gap = if self.started && g.abs() > 1e-12 && !single_print {
                g
            } else {
                f64::NAN
            };
            let excess = (b.high / b.low).ln() - (b.close / b.open).ln().abs();
            let lr = if excess > 1e-10 {
                excess.ln()
            } else if single_print || excess.is_nan() {
                f64::NAN
            } else {
                self.grid.zero_excess().unwrap_or(f64::NAN)
            };
            (gap, lr)
        } else {
            (f64::NAN, f64::NAN)
        };
        let rel_volume = if b.volume > 0.0 && b.volume.is_finite() {
            let lv = b.volume.ln();
            let rel = if self.vol_n == 0 {
                0.0
            } else {
                lv - self.vol_avg
            };
            self.vol_n += 1;
            let a = 1.0 / (self.vol_n as f64).min(VOLUME_SPAN);
            self.vol_avg += a * (lv - self.vol_avg);
            rel
        } else {
            f64::NAN
        };
        self.grid.update(r);
        let obs = Obs {
            r,
            r_prev: self.prev_r,
            gap,
            log_range,
            rel_volume,
        };
        self.prev_close = lc;
        self.prev_r = r;
        self.started = true;
        obs
    }
}

/// The gap channel's density and weight, as the model's gap tracker sets them bar by bar
/// (`JointParams::gap_student`, `JointParams::gap_weight`).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GapShape {
    /// Student t(5) (true) or normal.
    pub student: bool,
    /// Weight of the channel's log-density, in (0, 1] (kept as is outside it).
    pub weight: f64,
}

/// `ln t5(z) − ln N(z)` for a gap `z` standard deviations from 0 (unit-variance densities;
/// `z²` capped at 25): its mean is what the gap tracker chooses the gap's density by
/// (−0.024 over normal gaps, +0.037 over t(5) gaps, +0.04–0.07 over S&P 500 / NASDAQ
/// daily opens).
pub fn gap_tail_evidence(z2: f64) -> f64 {
    let z2 = z2.min(25.0);
    // single precision is ample for a running mean compared with 0.01 (and a third of
    // the instructions of f64's `ln_1p`, every bar)
    let kernel = f64::from((1.0 + z2 as f32 / 3.0).ln());
    LN_T5_CONST + 0.5 * LN_2PI - 3.0 * kernel + 0.5 * z2
}

/// Largest log-gamma shape the range channel is read with: above it (a log range variance
/// under ~0.005) the density is as good as normal and its constants, sums of terms near
/// `k ln k`, would lose the GPU kernels' single precision.
const RANGE_MAX_SHAPE: f64 = 200.0;

/// The range channel's log-gamma density, weighted by `range_weight` (`w`): the log excess
/// range `y` of state `v` read as the log of a gamma variable of shape `k`,
/// `w [k (y − μ_v) − e^{y − μ_v} − ln Γ(k)]`, with `k` and `μ_v` matched to the moments the
/// M-step keeps (`ψ′(k) = range_var`, `μ_v + ψ(k) = range_mean[v]`). Market bars' log excess
/// ranges have a long left tail (a bar that closes at its high or low has almost no range
/// beyond its move; S&P 500 / NASDAQ daily: skewness −1.9, 1.5–1.8% of bars below −3 standard
/// deviations, thin on the right) that the normal density read as strong evidence of low
/// volatility, so that EM spent a state on such bars; the log-gamma's left tail is
/// exponential, its right tail thinner than the normal's. Written as
/// `c + a (y − m_v) − e^{y − m_v}` with `a = w k`, `m_v = μ_v − ln w`,
/// `c = −w (ln Γ(k) + k ln w)`: the same form on the CPU and in the kernels.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct RangeLogGamma {
    a: f64,
    c: f64,
    m: [f64; 3],
    /// `e^{−m_v}`, so one `exp` of `y` serves the three states.
    t: [f64; 3],
    /// The weighted expected `−ln` density, `w (k + ln Γ(k) − k ψ(k))`.
    h: f64,
}

impl RangeLogGamma {
    fn of(p: &JointParams) -> Option<Self> {
        let w = p.range_weight;
        if !(p.range_var.is_finite() && p.range_var > 0.0 && w > 0.0 && w <= 1.0) {
            return None;
        }
        let k = crate::special::inverse_trigamma(p.range_var);
        if k > RANGE_MAX_SHAPE {
            return None;
        }
        let (psi, lgk) = (crate::special::digamma(k), crate::special::ln_gamma(k));
        let m = p.range_mean.map(|r| r - psi - w.ln());
        Some(RangeLogGamma {
            a: w * k,
            c: -w * (lgk + k * w.ln()),
            m,
            t: m.map(|m| (-m).exp()),
            h: w * (k + lgk - k * psi),
        })
    }
}

/// Precomputed constants of [`JointParams`] for the hot loop.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Compiled {
    p: JointParams,
    inv_sigma: [f64; 3],
    ln_sigma: [f64; 3],
    mu: [[f64; 3]; 3], // [v][d]
    /// The lag-1 coefficient per volatility and structure state ([`state_ar`]: `phi`
    /// itself for a clean price), fixed with the parameters.
    rho: [[f64; 2]; 3],
    /// The gap's log-density per state is `gap_c + gap_k·g²` (normal) or
    /// `gap_c + gap_m·ln(1 + gap_k·g²)` (Student t(5); `gap_m` is 0 for the normal).
    gap_c: [f64; 3],
    gap_k: [f64; 3],
    gap_m: f64,
    range_c: f64,
    range_k: f64,
    /// The range channel's log-gamma constants (`None` where the normal is as good), used
    /// when `p.range_log_gamma` says so, and for the evidence that chooses it.
    #[cfg_attr(feature = "serde", serde(default))]
    range_lg: Option<RangeLogGamma>,
    vol_c: f64,
    vol_k: f64,
}

const LN_2PI: f64 = 1.837_877_066_409_345_5;
/// `3 (ψ(3) − ψ(2.5))`: the mean of `3 ln(1 + z²/3)` under the unit-variance t(5) emission.
const T5_MEAN_LOG_KERNEL: f64 = 0.658_883_083_359_671_8;
/// `ln` of the unit-variance t(5) density's constant, `Γ(3) / (Γ(2.5) √(3π))`.
const LN_T5_CONST: f64 = -0.713_206_777_171_729_6;

/// The gap channel's constants for one state (`gap_c`, `gap_k`; see [`Compiled`]) from its
/// variance `g` and `ln g`.
#[inline]
fn gap_consts(g: f64, ln_g: f64, weight: f64, student: bool) -> (f64, f64) {
    if student {
        (weight * (LN_T5_CONST - 0.5 * ln_g), 1.0 / (3.0 * g))
    } else {
        (-0.5 * weight * (LN_2PI + ln_g), -0.5 * weight / g)
    }
}

/// The multiplier of the gap's `ln(1 + gap_k·g²)` term (`gap_m`; 0 selects the normal).
fn gap_multiplier(weight: f64, student: bool) -> f64 {
    if student {
        -3.0 * weight
    } else {
        0.0
    }
}

impl Compiled {
    /// Precompute from parameters (validated first).
    pub fn new(p: JointParams) -> Result<Self> {
        p.validate()?;
        let mut mu = [[0.0; 3]; 3];
        for (v, row) in mu.iter_mut().enumerate() {
            for (d, m) in row.iter_mut().enumerate() {
                *m = p.drift[d] * p.sigma[v];
            }
        }
        let gap = p
            .gap_var
            .map(|g| gap_consts(g, g.ln(), p.gap_weight, p.gap_student));
        Ok(Compiled {
            range_lg: RangeLogGamma::of(&p),
            inv_sigma: p.sigma.map(|s| 1.0 / s),
            rho: p.sigma.map(|s| state_ar(&p, 1.0 / s)),
            ln_sigma: p.sigma.map(f64::ln),
            mu,
            gap_c: gap.map(|x| x.0),
            gap_k: gap.map(|x| x.1),
            gap_m: gap_multiplier(p.gap_weight, p.gap_student),
            range_c: -0.5 * p.range_weight * (LN_2PI + p.range_var.ln()),
            range_k: -0.5 * p.range_weight / p.range_var,
            vol_c: -0.5 * (LN_2PI + p.volume_var.ln()),
            vol_k: -0.5 / p.volume_var,
            p,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &JointParams {
        &self.p
    }

    /// `E[ln σ_v²]` under the volatility states' probabilities `pv`.
    #[inline]
    pub fn mean_ln_var(&self, pv: &[f64; 3]) -> f64 {
        2.0 * (pv[0] * self.ln_sigma[0] + pv[1] * self.ln_sigma[1] + pv[2] * self.ln_sigma[2])
    }

    /// Re-scale the gap variances to `g2 · σ_v²` (the gap scale relative to σ), with the
    /// gap channel's density and weight (see [`GapShape`]).
    pub fn set_gap_scale(&mut self, g2: f64, shape: GapShape) {
        if g2.is_finite() && g2 > 0.0 {
            self.set_gap_scale_ln(g2, g2.ln(), shape);
        }
    }

    /// [`Compiled::set_gap_scale`] given `ln g2` too (finite positive `g2`): one `ln` serves
    /// both of the model's filters, every bar. ln g = ln g2 + 2 ln σ_v.
    #[inline]
    pub(crate) fn set_gap_scale_ln(&mut self, g2: f64, ln_g2: f64, shape: GapShape) {
        if shape.weight > 0.0 && shape.weight <= 1.0 {
            self.p.gap_weight = shape.weight;
        }
        self.p.gap_student = shape.student;
        self.gap_m = gap_multiplier(self.p.gap_weight, shape.student);
        for v in 0..3 {
            let g = g2 * self.p.sigma[v] * self.p.sigma[v];
            let (g, ln_g) = if g >= 1e-16 {
                (g, ln_g2 + 2.0 * self.ln_sigma[v])
            } else {
                (1e-16, 1e-16f64.ln())
            };
            self.p.gap_var[v] = g;
            (self.gap_c[v], self.gap_k[v]) =
                gap_consts(g, ln_g, self.p.gap_weight, self.p.gap_student);
        }
    }

    /// The range's log-gamma density when the model reads the range so.
    #[inline]
    fn range_density(&self) -> Option<&RangeLogGamma> {
        if self.p.range_log_gamma {
            self.range_lg.as_ref()
        } else {
            None
        }
    }

    /// Read the range as log-gamma (true) or normal (see [`JointParams::range_log_gamma`]).
    pub fn set_range_shape(&mut self, log_gamma: bool) {
        self.p.range_log_gamma = log_gamma;
    }

    /// Whether the range is read as log-gamma now (false also where the log range variance
    /// is so small that the normal serves).
    pub fn range_is_log_gamma(&self) -> bool {
        self.range_density().is_some()
    }

    /// `ln` log-gamma − `ln` normal density of a log excess range `y`, unweighted, under
    /// the volatility states' probabilities `pv`: the per-bar evidence the model chooses
    /// the range's density by (clamped to ±3 nats so that one freak bar cannot decide).
    /// 0 where the log-gamma is not available.
    pub fn range_shape_evidence(&self, y: f64, pv: [f64; 3]) -> f64 {
        let Some(g) = self.range_lg.as_ref() else {
            return 0.0;
        };
        if y.is_nan() {
            return 0.0;
        }
        // single precision is ample for a running mean compared with 0 (as for the gaps)
        let x = f64::from((y as f32).exp());
        let mut e = 0.0;
        for v in 0..3 {
            let d = y - self.p.range_mean[v];
            let normal = self.range_c + self.range_k * d * d;
            let lg = g.c + g.a * (y - g.m[v]) - x * g.t[v];
            e += pv[v] * (lg - normal);
        }
        (e / self.p.range_weight).clamp(-3.0, 3.0)
    }

    /// Emission likelihoods (up to a common factor) for all 18 states.
    #[inline]
    pub fn emission(&self, o: &Obs, b: &mut [f64; NS]) {
        self.emission_scaled(o, b);
    }

    /// [`Compiled::emission`], returning the log of the common factor it leaves out (the
    /// largest volatility-state level term), which [`Compiled::excess_surprise`] needs.
    #[inline]
    pub fn emission_scaled(&self, o: &Obs, b: &mut [f64; NS]) -> f64 {
        let lv = self.level_terms(o);
        let mx = lv[0].max(lv[1]).max(lv[2]);
        let has_r = !o.r.is_nan();
        let has_prev = !o.r_prev.is_nan();
        for v in 0..3 {
            // e^0 = 1 exactly: the largest level needs no `exp`
            let w = if lv[v] == mx { 1.0 } else { (lv[v] - mx).exp() };
            if !has_r {
                for x in &mut b[v * 6..v * 6 + 6] {
                    *x = w;
                }
                continue;
            }
            let is = self.inv_sigma[v];
            let rho = self.rho[v];
            let wv = w * is;
            for d in 0..3 {
                let mu = self.mu[v][d];
                for s in 0..2 {
                    let e = if has_prev {
                        o.r - mu - rho[s] * (o.r_prev - mu)
                    } else {
                        o.r - mu
                    };
                    let z = e * is;
                    let t = 1.0 + z * z * (1.0 / 3.0);
                    b[joint(v, d, s)] = wv / (t * t * t);
                }
            }
        }
        mx
    }

    /// Log emission likelihoods for all 18 states, up to a per-bar constant: exactly
    /// `ln` of what [`Compiled::emission`] writes, computed in log space so no state
    /// underflows to `-inf`. This is the form the compute backends share
    /// ([`crate::backend`]): `ll[j] = lv[v] − max lv + ln(1/σ_v) − 3 ln(1 + z²/3)`.
    #[inline]
    pub fn log_emission(&self, o: &Obs, ll: &mut [f64; NS]) {
        let lv = self.level_terms(o);
        let mx = lv[0].max(lv[1]).max(lv[2]);
        let has_r = !o.r.is_nan();
        let has_prev = !o.r_prev.is_nan();
        for v in 0..3 {
            let base = lv[v] - mx;
            if !has_r {
                for x in &mut ll[v * 6..v * 6 + 6] {
                    *x = base;
                }
                continue;
            }
            let is = self.inv_sigma[v];
            let rho = self.rho[v];
            let bv = base + is.ln();
            for d in 0..3 {
                let mu = self.mu[v][d];
                for s in 0..2 {
                    let e = if has_prev {
                        o.r - mu - rho[s] * (o.r_prev - mu)
                    } else {
                        o.r - mu
                    };
                    let z = e * is;
                    ll[joint(v, d, s)] = bv - 3.0 * (1.0 + z * z * (1.0 / 3.0)).ln();
                }
            }
        }
    }

    /// How much more surprising the bar was than the model expected: `−ln p(o | past)`
    /// minus the expected `−ln` density of each volatility state (its entropy over the
    /// channels this bar has), weighted by the predicted probability of that state. `z` is
    /// the normaliser [`correct`] returned for this bar with `pred`, `level` what
    /// [`Compiled::emission_scaled`] returned for it. Under the model the
    /// mean lies between 0 and the entropy of the predicted volatility state, whichever
    /// state the market is in, so a drift detector on it does not fire at every spell of
    /// high volatility (raw `−ln p` moves by `ln σ_high/σ_low` and more between states).
    pub fn excess_surprise(&self, o: &Obs, pred: &[f64; NS], z: f64, level: f64) -> f64 {
        if !(z > 0.0 && z.is_finite()) {
            return 0.0;
        }
        let has_r = !o.r.is_nan();
        let mut expected = 0.0;
        for v in 0..3 {
            let w: f64 = pred[v * 6..v * 6 + 6].iter().sum();
            let mut h = 0.0;
            if has_r {
                // unit-variance Student t(5): E[3 ln(1 + z²/3)] = 3 (ψ(3) − ψ(2.5))
                h += self.ln_sigma[v] + T5_MEAN_LOG_KERNEL;
            }
            if !o.gap.is_nan() {
                // the gap's log-density counts `gap_weight` times
                let kernel = if self.p.gap_student {
                    T5_MEAN_LOG_KERNEL
                } else {
                    0.5
                };
                h += self.p.gap_weight * kernel - self.gap_c[v];
            }
            if !o.log_range.is_nan() {
                // the range's log-density counts `range_weight` times
                h += match self.range_density() {
                    Some(lg) => lg.h,
                    None => 0.5 * self.p.range_weight - self.range_c,
                };
            }
            if !o.rel_volume.is_nan() {
                h += 0.5 - self.vol_c;
            }
            expected += w * h;
        }
        // `emission` left out the factor exp(level) and the t(5) constant; the constant
        // cancels against the same term of the entropies
        -(z.ln() + level) - expected
    }

    /// The volatility-state log terms of the gap, range and volume channels.
    #[inline]
    fn level_terms(&self, o: &Obs) -> [f64; 3] {
        let p = &self.p;
        let y = o.log_range;
        let range: [f64; 3] = if y.is_nan() {
            [0.0; 3]
        } else if let Some(g) = self.range_density() {
            let x = y.exp();
            std::array::from_fn(|v| g.c + g.a * (y - g.m[v]) - x * g.t[v])
        } else {
            std::array::from_fn(|v| {
                let e = y - p.range_mean[v];
                self.range_c + self.range_k * e * e
            })
        };
        let mut lv = range;
        for (v, l) in lv.iter_mut().enumerate() {
            let mut acc = 0.0;
            if !o.gap.is_nan() {
                let q = self.gap_k[v] * o.gap * o.gap;
                acc += self.gap_c[v]
                    + if self.gap_m == 0.0 {
                        q
                    } else {
                        self.gap_m * q.ln_1p()
                    };
            }
            if !o.rel_volume.is_nan() {
                let e = o.rel_volume - p.volume_mean[v];
                acc += self.vol_c + self.vol_k * e * e;
            }
            *l += acc;
        }
        lv
    }

    /// The constants of the hot loop packed as `f32` for the GPU kernels, in the order
    /// of `shaders/cuda/common.cuh` and `shaders/wgsl/common.wgsl` (`PARAM_STRIDE` floats).
    pub fn pack_f32(&self) -> [f32; PARAM_STRIDE] {
        let p = &self.p;
        let mut out = [0f32; PARAM_STRIDE];
        let mut k = 0;
        let mut put = |x: f64| {
            out[k] = x as f32;
            k += 1;
        };
        for v in 0..3 {
            put(self.inv_sigma[v]);
        }
        for v in 0..3 {
            put(self.inv_sigma[v].ln());
        }
        for v in 0..3 {
            for d in 0..3 {
                put(self.mu[v][d]);
            }
        }
        put(p.phi[0]);
        put(p.phi[1]);
        for v in 0..3 {
            put(self.gap_c[v]);
        }
        for v in 0..3 {
            put(self.gap_k[v]);
        }
        // the range: normal `range_c + range_k·e²` (range_k < 0) with e = y − range_mean[v],
        // or log-gamma `c + a·e − eᵉ` (a > 0) with e = y − m_v
        match self.range_density() {
            Some(g) => {
                for v in 0..3 {
                    put(g.m[v]);
                }
                put(g.c);
                put(g.a);
            }
            None => {
                for v in 0..3 {
                    put(p.range_mean[v]);
                }
                put(self.range_c);
                put(self.range_k);
            }
        }
        for v in 0..3 {
            put(p.volume_mean[v]);
        }
        put(self.vol_c);
        put(self.vol_k);
        for row in &p.a_vol {
            for x in row {
                put(*x);
            }
        }
        for row in &p.a_trend {
            for x in row {
                put(*x);
            }
        }
        for row in &p.a_struct {
            for x in row {
                put(*x);
            }
        }
        put(self.gap_m);
        // the lag-1 coefficient per volatility and structure state (slots 15–16 hold the
        // price's own φ; the kernels read these, which the price noise has shaped)
        for v in 0..3 {
            for f in self.rho[v] {
                put(f);
            }
        }
        out
    }

    /// Predict: `pred = alpha · A` using the factorized transitions (structure, then
    /// trend, then volatility).
    #[inline]
    pub fn predict(&self, alpha: &[f64; NS], pred: &mut [f64; NS]) {
        let p = &self.p;
        *pred = step_vol(&step_trend(&step_struct(alpha, p), p), p);
    }

    /// Stationary-ish start: uniform over the 18 states.
    pub fn uniform() -> [f64; NS] {
        [1.0 / NS as f64; NS]
    }
}

/// Marginal probabilities per dimension from a joint distribution.
#[inline]
pub fn marginals(alpha: &[f64; NS]) -> ([f64; 3], [f64; 3], [f64; 2]) {
    let mut pv = [0.0; 3];
    let mut pd = [0.0; 3];
    let mut ps = [0.0; 2];
    for v in 0..3 {
        for d in 0..3 {
            for s in 0..2 {
                let a = alpha[joint(v, d, s)];
                pv[v] += a;
                pd[d] += a;
                ps[s] += a;
            }
        }
    }
    (pv, pd, ps)
}

/// One forward step: `alpha ← normalize(pred ⊙ b)`; returns the normalizer (predictive likelihood).
/// When every state has zero likelihood (an observation far outside the model), the bar is
/// treated as uninformative and `alpha` becomes the prediction; the returned value is then 0.
#[inline]
pub fn correct(pred: &[f64; NS], b: &[f64; NS], alpha: &mut [f64; NS]) -> f64 {
    let mut z = 0.0;
    for j in 0..NS {
        let x = pred[j] * b[j];
        alpha[j] = x;
        z += x;
    }
    if z > 0.0 && z.is_finite() {
        let inv = 1.0 / z;
        for a in alpha.iter_mut() {
            *a *= inv;
        }
        z
    } else {
        let zp: f64 = pred.iter().sum();
        for j in 0..NS {
            alpha[j] = pred[j] / zp;
        }
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predict_matches_dense_kronecker_product() {
        let mut p = JointParams::initial(0.01, -5.0, 0.0);
        p.a_vol = [[0.9, 0.07, 0.03], [0.05, 0.9, 0.05], [0.01, 0.09, 0.9]];
        p.a_trend = [[0.8, 0.15, 0.05], [0.1, 0.85, 0.05], [0.02, 0.08, 0.9]];
        p.a_struct = [[0.7, 0.3], [0.4, 0.6]];
        let c = Compiled::new(p.clone()).expect("valid");
        let mut alpha = [0.0; NS];
        for (j, a) in alpha.iter_mut().enumerate() {
            *a = (j as f64 + 1.0) / 171.0;
        }
        let mut pred = [0.0; NS];
        c.predict(&alpha, &mut pred);
        for v2 in 0..3 {
            for d2 in 0..3 {
                for s2 in 0..2 {
                    let mut want = 0.0;
                    for v in 0..3 {
                        for d in 0..3 {
                            for s in 0..2 {
                                want += alpha[joint(v, d, s)]
                                    * p.a_vol[v][v2]
                                    * p.a_trend[d][d2]
                                    * p.a_struct[s][s2];
                            }
                        }
                    }
                    let got = pred[joint(v2, d2, s2)];
                    assert!((got - want).abs() < 1e-15, "{got} vs {want}");
                }
            }
        }
    }

    /// The lane-wise transition steps do each entry's scalar operations in the scalar
    /// order, so they must agree to the last bit with the plain loops (on odd values, in
    /// both directions, with a column sum and a row sum).
    #[test]
    fn lane_wise_mixing_equals_the_scalar_sums_bit_for_bit() {
        let m = [
            [0.9, 0.07, 0.03],
            [0.05, 0.9, 0.05],
            [1.0 / 3.0, 0.1 / 7.0, 0.6],
        ];
        let mut x = [0.0; NS];
        for (j, v) in x.iter_mut().enumerate() {
            *v = ((j * 7919 % 101) as f64 + 0.1) / 97.0;
        }
        x[5] = 1e-300;
        x[11] = 0.0;
        let vol = mix_vol(&x, m);
        let trend = mix_trend(&x, m);
        for v in 0..3 {
            for d in 0..3 {
                for s in 0..2 {
                    let j = joint(v, d, s);
                    let want_vol = m[v][0] * x[joint(0, d, s)]
                        + m[v][1] * x[joint(1, d, s)]
                        + m[v][2] * x[joint(2, d, s)];
                    let want_trend = m[d][0] * x[joint(v, 0, s)]
                        + m[d][1] * x[joint(v, 1, s)]
                        + m[d][2] * x[joint(v, 2, s)];
                    assert_eq!(vol[j].to_bits(), want_vol.to_bits(), "vol {j}");
                    assert_eq!(trend[j].to_bits(), want_trend.to_bits(), "trend {j}");
                }
            }
        }
    }

    #[test]
    fn invalid_rows_are_rejected() {
        let mut p = JointParams::initial(0.01, -5.0, 0.0);
        p.a_struct = [[0.5, 0.4], [0.5, 0.5]];
        assert!(matches!(p.validate(), Err(Error::InvalidModel(_))));
    }

    #[test]
    fn all_zero_likelihood_keeps_the_prediction() {
        let pred = Compiled::uniform();
        let mut alpha = [0.0; NS];
        let z = correct(&pred, &[0.0; NS], &mut alpha);
        assert_eq!(z, 0.0);
        assert!((alpha.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    /// Four filters in lanes give what four scalar filters give, lane by lane, including
    /// at a bar no state can explain.
    #[test]
    fn trend_lanes_equal_four_scalar_filters() {
        let mut p = JointParams::initial(0.01, -5.0, 0.0);
        p.a_vol = [[0.9, 0.07, 0.03], [0.05, 0.9, 0.05], [0.01, 0.09, 0.9]];
        p.a_struct = [[0.7, 0.3], [0.4, 0.6]];
        let trends = [0.6, 0.8, 0.95, 0.99].map(|q: f64| {
            let o = (1.0 - q) / 2.0;
            [[q, o, o], [o, q, o], [o, o, q]]
        });
        let scalar: Vec<Compiled> = trends
            .iter()
            .map(|a| {
                let mut q = p.clone();
                q.a_trend = *a;
                Compiled::new(q).expect("valid")
            })
            .collect();
        let mut lanes = TrendLanes::new(&p, &trends);
        let mut alphas = [Compiled::uniform(); 4];
        let mut pred = [0.0; NS];
        for t in 0..50 {
            let mut b = [0.0; NS];
            for (j, x) in b.iter_mut().enumerate() {
                *x = 0.1 + ((t * 7 + j * 13) % 17) as f64 / 17.0;
            }
            if t == 20 {
                // nothing explains this bar: every lane keeps its prediction
                b = [0.0; NS];
            }
            let z = lanes.step(&b);
            for k in 0..4 {
                scalar[k].predict(&alphas[k], &mut pred);
                let want = correct(&pred, &b, &mut alphas[k]);
                assert!(
                    (z[k] - want).abs() <= 1e-12 * want.abs().max(1.0),
                    "bar {t} lane {k}"
                );
                for j in 0..NS {
                    let got = lanes.alpha[j].to_array()[k];
                    assert!(
                        (got - alphas[k][j]).abs() < 1e-12,
                        "bar {t} lane {k} state {j}"
                    );
                }
            }
        }
    }

    fn range_only(y: f64) -> Obs {
        Obs {
            r: f64::NAN,
            r_prev: f64::NAN,
            gap: f64::NAN,
            log_range: y,
            rel_volume: f64::NAN,
        }
    }

    #[test]
    fn the_log_gamma_range_density_has_the_models_mean_and_variance() {
        // with only a range, each state's level term is the range's log-density: as a
        // density of y it integrates to one with the mean and variance the M-step keeps
        let mut p = JointParams::initial(0.01, -5.0, 0.0);
        assert!(p.range_log_gamma, "learned models start robust");
        for var in [0.25, 0.5, 1.0] {
            p.range_var = var;
            let c = Compiled::new(p.clone()).expect("valid parameters");
            assert!(c.range_is_log_gamma());
            let (lo, hi, n) = (-30.0, 5.0, 200_000);
            let dy = (hi - lo) / n as f64;
            let mut m = [[0.0f64; 3]; 3];
            for i in 0..n {
                let y = lo + (i as f64 + 0.5) * dy;
                let lv = c.level_terms(&range_only(y));
                for v in 0..3 {
                    let f = lv[v].exp() * dy;
                    m[v][0] += f;
                    m[v][1] += f * y;
                    m[v][2] += f * y * y;
                }
            }
            for v in 0..3 {
                let mean = m[v][1] / m[v][0];
                let variance = m[v][2] / m[v][0] - mean * mean;
                assert!(
                    (m[v][0] - 1.0).abs() < 1e-6,
                    "mass {} at var {var}",
                    m[v][0]
                );
                assert!(
                    (mean - p.range_mean[v]).abs() < 1e-6,
                    "mean {mean} at var {var}"
                );
                assert!(
                    (variance - var).abs() < 1e-5,
                    "variance {variance} at {var}"
                );
            }
            // its expected −ln density is the entropy the surprise measure subtracts
            let h = c.range_lg.expect("log-gamma constants").h;
            let mut ent = 0.0;
            for i in 0..n {
                let y = lo + (i as f64 + 0.5) * dy;
                let l = c.level_terms(&range_only(y))[1];
                ent -= l.exp() * l * dy;
            }
            assert!((ent - h).abs() < 1e-5, "entropy {ent} against {h}");
        }
    }

    #[test]
    fn a_range_far_below_every_level_is_bounded_evidence_under_the_log_gamma() {
        // a bar that closes at its extreme has almost no excess range: under the normal
        // density its evidence for the low state grows with the square of the distance,
        // under the log-gamma it tends to the shape times the levels' spacing
        let mut p = JointParams::initial(0.01, -5.0, 0.0);
        p.range_var = 0.5;
        let levels = p.range_mean;
        let lead = |lg: bool, y: f64| {
            let mut q = p.clone();
            q.range_log_gamma = lg;
            let lv = Compiled::new(q).expect("valid").level_terms(&range_only(y));
            lv[0] - lv[1]
        };
        let spacing = levels[1] - levels[0];
        let k = crate::special::inverse_trigamma(0.5);
        for y in [-10.0, -15.0, -25.0] {
            let g = lead(true, y);
            assert!(
                g > 0.0 && g < k * spacing + 1e-9,
                "log-gamma lead {g} at {y}"
            );
            assert!(
                lead(false, y) > 3.0 * g,
                "normal lead {} at {y}",
                lead(false, y)
            );
        }
        // ranges near the levels: both densities tell the states apart alike
        assert!(lead(true, levels[0]) > 0.0 && lead(false, levels[0]) > 0.0);
        assert!(lead(true, levels[2]) < 0.0 && lead(false, levels[2]) < 0.0);
    }

    #[test]
    fn the_range_shape_evidence_favours_the_density_the_ranges_come_from() {
        // log excess ranges drawn from each density (inverse CDF on a fine grid) give a
        // mean evidence of the right sign for the tracker (normal: the generator's ranges)
        let mut p = JointParams::initial(0.01, -5.0, 0.0);
        p.range_var = 0.4;
        let c = Compiled::new(p.clone()).expect("valid");
        let pv = [0.0, 1.0, 0.0];
        let mean_evidence = |lg: bool| {
            let mut q = p.clone();
            q.range_log_gamma = lg;
            let d = Compiled::new(q).expect("valid");
            let (lo, hi, n) = (-25.0, 5.0, 100_000);
            let dy = (hi - lo) / n as f64;
            let (mut mass, mut e) = (0.0, 0.0);
            for i in 0..n {
                let y = lo + (i as f64 + 0.5) * dy;
                let f = d.level_terms(&range_only(y))[1].exp() * dy;
                mass += f;
                e += f * c.range_shape_evidence(y, pv);
            }
            e / mass
        };
        let (from_lg, from_normal) = (mean_evidence(true), mean_evidence(false));
        assert!(from_lg > 0.01, "log-gamma ranges: {from_lg}");
        assert!(from_normal < -0.01, "normal ranges: {from_normal}");
    }
}
