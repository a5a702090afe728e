//! The causal detection pipeline for one instrument (the `integration_orchestrator`) and
//! batch detection over many (rayon). Components and their names follow SPEC §2.

#[cfg(feature = "serde")]
mod identity;
pub mod methods;
mod panel;
mod status;

#[cfg(feature = "serde")]
pub use identity::{
    compute_state_identity, fed_pipeline, fixed_bars, identity_mismatch, state_identity,
    STATE_FORMAT,
};

pub use panel::{panel_prefix, pool_events, PanelMember, PanelPrefix, PanelStream, PoolEvent};

pub use methods::{Boundaries, QuantileTracker, Scores, METHOD_NAMES, N_METHODS};
pub use status::{ComponentState, ComponentStatus, Detail, ALL_COMPONENTS, CRITICAL};

use crate::bars::{Bar, RejectReason};
use crate::error::Result;
use crate::hmm::{HmmStep, OnlineHmm, OnlineHmmConfig};
use crate::intraday::IntradayAdjuster;
use crate::model::NS;
use crate::regime::{Regime, DIM_SIZES, N_REGIMES};
use crate::splits::SplitAdjuster;
use methods::{
    averaged_hmm_scores, hmm_scores, lane_probs, BarContext, ChangePointMethod, ContextBuilder,
    JumpMethod, KalmanMethod, ThresholdMethod, LANE0,
};
use rayon::prelude::*;
use std::collections::VecDeque;
use std::time::Instant;
use wide::f32x8;

/// Page–Hinkley drift detector on the HMM's excess surprise, standardized by its running
/// spread: allowance per bar (in standard deviations) and alarm threshold. Each alarm
/// halves the model's statistics, so false alarms cost learning: on stationary synthetic
/// series the detector now stays quiet, where the unstandardized raw `−ln p` it watched before fired
/// every ~300 bars (each spell of high volatility raised it).
const PH_DELTA: f64 = 0.25;
const PH_THRESHOLD: f64 = 40.0;
/// One bar adds at most this many standard deviations (a single crash bar is not a drift).
const PH_CLIP: f64 = 4.0;
/// Bars of the statistic seen before the test starts.
const PH_WARMUP: u64 = 100;
/// Smallest spread (nats) the surprise is standardized by. Bars that move have a spread of
/// 0.7 (close only) to 6; on a constant or frozen price it shrinks toward 0 (~0.002), and the
/// model's slow settling, standardized by it, read as drift: 9 alarms, each a batch refit,
/// in the first 3,000 bars of a constant series.
const PH_MIN_SPREAD: f64 = 0.25;
/// Bars the drift detector's running mean and spread remember (exact while fewer).
const PH_MEMORY: f64 = 2000.0;

/// L2 pull of the ensemble weights toward the prior ([`PRIOR_WEIGHTS`]), per unit of
/// learning rate, while fewer than [`PULL_GROWS_OVER`] bars have been scored; it then grows
/// with the bars scored, up to [`PULL_GROWTH`] times this. The ex-post reference is the
/// model's own smoother, which the other members can fit in ways that do not carry over to
/// the truth, the more so the better the model has learned: on long synthetic series a weak
/// pull (0.5) let the pool fall ~0.01 below the model on the trend dimension, and a constant
/// 5 kept under half the pool's lead over its best member (tuning seeds 20001–20012 and
/// 30001–30010, full label: +0.0024 of the oracle's share; growing to 20: +0.0047, to 50:
/// +0.0054, but the hardest seed's trend share, where the other members do help, fell
/// 0.837 → 0.835 → 0.828); on 2,000-bar panel series, where the model is young, 5 is best
/// (+0.0015 on four panels, +0.0003 at 20). Since the trend profile the reference is the
/// weaker of the model's two readings (the latest refit's smoother), and the pull grows to
/// 50: 62 tuning series (80001–80040, 20001–20012, 30001–30010), full label, pool 0.99714 →
/// 0.99729 and its lead over the averaged filter +0.0005 → +0.0007 (to 200: 0.99719,
/// +0.0006).
const WEIGHT_PULL: f64 = 5.0;
/// Bars scored over which the pull grows by one `WEIGHT_PULL` (the batch-EM phase).
const PULL_GROWS_OVER: f64 = 4096.0;
/// The most the pull grows to, in units of `WEIGHT_PULL`.
const PULL_GROWTH: f64 = 10.0;

/// Where each member's weight starts and is pulled toward: the model's two filters, most
/// on the averaged one (their log-linear pool is a weighted geometric mean of the two
/// posteriors), the other members 0 — they earn weight only by agreeing with the ex-post
/// reference where the model does not. Half each while the model's trend persistence was
/// EM's alone; with the profile likelihood setting it and tail averaging, the averaged
/// filter is the better member (full label, 62 tuning series: 0.9933 of the oracle's share
/// against the latest refit's 0.9818), and the pool's lead over it is, on seeds
/// 80001–80040 / 20001–20012 and 30001–30010: −0.0014 / −0.0007 at half each, −0.0000 /
/// +0.0004 at 0.35 / 0.65, +0.0010 / +0.0000 at 0.2 / 0.8, +0.0012 / −0.0001 at 0.1 / 0.9.
/// On 2,000-bar panel series the two filters are one (no online refit yet).
const PRIOR_WEIGHTS: [f64; N_METHODS] = [0.2, 0.0, 0.0, 0.0, 0.0, 0.8];

/// An instrument alone pools with the tail average of the weights it learns — of the
/// last `WEIGHT_AVERAGE_SHARE` of the references it has scored, at least
/// [`WEIGHT_AVERAGE_MIN`] and at most [`WEIGHT_AVERAGE_MAX`] (an exponential average of
/// that span) — clamped at 0 after averaging, not before. Each reference moves the weights
/// by a noisy step, and a weight clamped at 0 at every step turns that noise into weight
/// (a zero-mean walk held at 0 from below sits above 0): on long series the four members
/// that are not the model kept weights of 0.002–0.007 (mean over seeds 80001–80040 at the
/// end of 100,000 bars; more in between) where the truth gave them nothing, and the pool
/// fell behind the averaged filter (120 series of 100,000 bars, full label, −0.0005 of the
/// oracle's share, t −2.1; the two model filters alone in the pool: level). Averaged, their
/// weights end at 0.000 there, and the pool moves to +0.0000, tuning seeds
/// 80001–80040, 20001–20012, 30001–30010 +0.0004 (sd 0.0028 → 0.0020), and the short
/// series' lead over the HMM (85001–85040) +0.0010 → +0.0020 at 5,000 bars, −0.0002 →
/// +0.0014 at 10,000. Span 0.25 / 1 of the references, or at most 5,000 / 50,000: within
/// ±0.0005 of these. (A panel pools its members' raw weights, averaged over 500 of them.)
const WEIGHT_AVERAGE_SHARE: f64 = 0.5;
/// See [`WEIGHT_AVERAGE_SHARE`].
const WEIGHT_AVERAGE_MIN: f64 = 200.0;
/// See [`WEIGHT_AVERAGE_SHARE`].
const WEIGHT_AVERAGE_MAX: f64 = 20_000.0;

/// Settings of the pipeline.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PipelineConfig {
    /// Online HMM settings.
    pub hmm: OnlineHmmConfig,
    /// Probability at which a new state wins at once (the transition manager,
    /// per dimension).
    pub confidence_threshold: f64,
    /// Below the threshold, the lead over the current state's probability a new state needs
    /// to win. The default 0.05 suppresses near-ties (flicker), not clear moves — and makes
    /// any threshold above 0.525 moot, since a lead of 0.05 is reached first; a larger margin
    /// trades switch delay for fewer switches (`benches/accuracy/README.md`, "Session 16").
    pub switch_margin: f64,
    /// Smallest lag (bars) of the ex-post reference used for accuracy and ensemble weights.
    /// The reference is the posterior of the HMM's learning smoother (one smoother serves
    /// learning and feedback), whose lag is `max(hmm.learn_lag, feedback_lag)`.
    pub feedback_lag: usize,
    /// Learning rate of the ensemble weights.
    pub ensemble_learning_rate: f64,
    /// Observations between transition-matrix snapshots.
    pub transition_update_every: u64,
    /// Pseudo-bars of the population prior when many instruments are detected together
    /// (a panel): the scale-free parameters (drifts in units of σ, φ, persistence) are
    /// pooled over all instruments on a schedule and each instrument's model shrinks toward
    /// them. 0 = every instrument learns alone.
    pub population_weight: f64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            hmm: OnlineHmmConfig::default(),
            confidence_threshold: 0.7,
            switch_margin: 0.05,
            feedback_lag: 32,
            ensemble_learning_rate: 0.01,
            transition_update_every: 1000,
            population_weight: 2000.0,
        }
    }
}

impl PipelineConfig {
    /// The settings as a pipeline runs with them: the learning smoother's lag at least the
    /// feedback's (one smoother serves both).
    pub fn effective(&self) -> PipelineConfig {
        let mut c = self.clone();
        c.hmm.learn_lag = c.hmm.learn_lag.max(c.feedback_lag);
        c
    }

    /// Check every setting; errors name the key path.
    pub fn validate(&self) -> Result<()> {
        self.hmm.validate()?;
        crate::ensure!(
            (0.34..1.0).contains(&self.confidence_threshold),
            "regime.confidence_threshold",
            "must be in [0.34, 1), got {}",
            self.confidence_threshold
        );
        crate::ensure!(
            (0.0..=1.0).contains(&self.switch_margin),
            "regime.switch_margin",
            "must be in [0, 1], got {}",
            self.switch_margin
        );
        crate::ensure!(
            (4..=1024).contains(&self.feedback_lag),
            "regime.feedback_lag",
            "must be in 4..=1024, got {}",
            self.feedback_lag
        );
        crate::ensure!(
            self.ensemble_learning_rate >= 0.0 && self.ensemble_learning_rate <= 1.0,
            "regime.ensemble_learning_rate",
            "must be in [0, 1], got {}",
            self.ensemble_learning_rate
        );
        crate::ensure!(
            self.transition_update_every >= 10,
            "regime.transition_update_every",
            "must be >= 10, got {}",
            self.transition_update_every
        );
        crate::ensure!(
            self.population_weight.is_finite() && self.population_weight >= 0.0,
            "regime.population_weight",
            "must be finite and >= 0, got {}",
            self.population_weight
        );
        Ok(())
    }
}

/// The result for one bar.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Detection {
    /// Bar timestamp (ms).
    pub ts: i64,
    /// Final (causal, transition-managed) regime.
    pub regime: Regime,
    /// Probability of the chosen regime (product of the per-dimension probabilities).
    pub confidence: f64,
    /// Volatility probabilities (low, medium, high).
    pub p_volatility: [f64; 3],
    /// Trend probabilities (down, neutral, up).
    pub p_trend: [f64; 3],
    /// Structure probabilities (trending, mean_reverting).
    pub p_structure: [f64; 2],
    /// Ensemble argmax before the transition manager.
    pub raw: [u8; 3],
    /// Each method's argmax (255 where it abstained).
    pub methods: [[u8; 3]; N_METHODS],
    /// True while the model is still warming up.
    pub warming_up: bool,
    /// Model version in effect.
    pub model_version: u32,
}

fn argmax<T: PartialOrd>(p: &[T]) -> usize {
    let mut b = 0;
    for i in 1..p.len() {
        if p[i] > p[b] {
            b = i;
        }
    }
    b
}

/// What the feedback needs of a bar once its ex-post reference arrives.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct LagItem {
    seq: u64,
    label: [u8; 3],
    logs: MethodLogs,
}

/// Log-probabilities of every method, computed once per bar and reused by the pool and by
/// the weight updates: per method one row of eight lanes — volatility in lanes 0..3, trend
/// in 3..6, structure in 6..8 ([`LANE0`]) — and the dimensions it covers (`has`; the
/// lanes of a dimension it abstains on hold 0, so the pool weights every lane as it is).
/// Single precision, a row at a time: the probabilities are floored at 1e-4 before the log,
/// so f32's 7 digits are far finer than anything the pool can resolve, and one eight-lane
/// `ln` replaces eight scalar calls.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct MethodLogs {
    l: [[f32; 8]; N_METHODS],
    has: [[bool; 3]; N_METHODS],
}

fn method_logs(scores: &[Scores; N_METHODS]) -> MethodLogs {
    let mut out = MethodLogs {
        l: [[0.0; 8]; N_METHODS],
        has: [[false; 3]; N_METHODS],
    };
    for (m, s) in scores.iter().enumerate() {
        // a dimension the method abstains on keeps ln 1 = 0 in its lanes, so that any
        // weight times it adds exactly nothing to the pool
        let mut p = [1.0f32; 8];
        for d in (0..3).filter(|&d| s.has[d]) {
            for k in 0..DIM_SIZES[d] {
                p[LANE0[d] + k] = s.p[d][k].max(1e-4) as f32;
            }
        }
        out.l[m] = f32x8::from(p).ln().to_array();
        out.has[m] = s.has;
    }
    out
}

/// Memory of `regime_accuracy`, in evaluated bars: its sums decay by `1 − 1/1000` a bar, so
/// a pipeline that goes wrong after years of running shows it within a few hundred bars
/// instead of being averaged away by its past.
pub const ACCURACY_MEMORY: f64 = 1000.0;

/// Bars evaluated before `regime_accuracy` is reported: fewer say little (±0.04 from chance
/// alone at 100), and they are the model's first months, while it is still learning what the
/// instrument's regimes look like (the manual's thresholds judge a running system).
pub const ACCURACY_MIN_BARS: u64 = 500;

/// Running accuracy counters against the ex-post reference.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Feedback {
    n: u64,
    hits: [u64; 4],
    ewma: f64,
    /// Per dimension, decayed by [`ACCURACY_MEMORY`]: the credit of the causal labels (the
    /// reference's probability of the causal label over that of its own choice), and the
    /// bars it is summed over (the same for every dimension).
    recent_credit: [f64; 3],
    recent_n: f64,
    method_hits: [[u64; 3]; N_METHODS],
    method_n: [[u64; 3]; N_METHODS],
}

/// Per-instrument pipeline: a bar side (the HMM, its drift detector and the features) and
/// a pool side (the boundaries, the other methods, the pool, the transition manager,
/// feedback and history) that reads the bar side's output. Streaming runs both for each bar; [`SymbolPipeline::update_batch`] can run them
/// on two threads, the bar side a few chunks of bars ahead, with the same results.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SymbolPipeline {
    cfg: PipelineConfig,
    bar_side: BarSide,
    pool_side: PoolSide,
}

/// The bar side: `base_regime_detector`, the drift detector of the
/// `continuous_learning_engine` (Page–Hinkley on the model's standardized excess surprise)
/// and the features the other methods share (with the Kalman trend filter). (Where the line
/// falls balances the two threads of a batch: the HMM is about a third of the work per bar.)
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct BarSide {
    /// Unadjusted splits read and taken out first (see [`crate::splits`]).
    #[cfg_attr(feature = "serde", serde(default))]
    splits: SplitAdjuster,
    /// Intraday bars' overnight gaps and time-of-day profile taken out next.
    #[cfg_attr(feature = "serde", serde(default))]
    intraday: IntradayAdjuster,
    hmm: OnlineHmm,
    ctx: ContextBuilder,
    n: u64,
    ph_n: u64,
    ph_mean: f64,
    ph_var: f64,
    /// On a coarse grid, the surprise's running mean in each volatility state and the
    /// posterior weight behind it (see [`BarSide::continuous_learning`]).
    ph_level: [f64; 3],
    ph_level_w: [f64; 3],
    ph_cum: f64,
    ph_min: f64,
    drifts: u64,
}

/// The model-based members' scores (the HMM's filter and its filter on averaged
/// parameters), as the bar side hands them over: the marginals the pool reads, not the two
/// 18-state posteriors (half the bytes to copy between the threads, and the marginals'
/// sums on the side with time to spare).
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct ModelScores {
    hmm: Scores,
    averaged: Scores,
    warming_up: bool,
}

/// What the pool side needs of the bar side for one bar.
struct BarOutput<'a> {
    step: &'a ModelScores,
    /// The shared features of this bar.
    ctx: &'a BarContext,
    /// Bars the HMM has seen, this one included (the feedback's sequence number).
    seq: u64,
    version: u32,
    /// Ex-post references `(seq, smoothed joint posterior)` that arrived with this bar.
    refs: &'a [(u64, [f64; NS])],
    /// Time the bar side took for this bar, µs: the HMM, and the whole side (NaN when not
    /// sampled).
    lat_us: [f64; 2],
}

/// The pool side.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct PoolSide {
    bounds: Boundaries,
    threshold: ThresholdMethod,
    kalman: KalmanMethod,
    jump: JumpMethod,
    changepoint: ChangePointMethod,
    /// Weights this instrument learns (online, from its own ex-post references; unclamped
    /// below 0).
    weights: [[f64; N_METHODS]; 3],
    /// Their tail average (see [`WEIGHT_AVERAGE_SHARE`]), and it clamped at 0: what the pool
    /// uses while the instrument is alone.
    averaged: [[f64; N_METHODS]; 3],
    pool_weights: [[f64; N_METHODS]; 3],
    /// In a panel: the members' learned weights averaged, which the pool uses instead.
    pooled: Option<[[f64; N_METHODS]; 3]>,
    label: [u8; 3],
    suppressed: u64,
    lag: VecDeque<LagItem>,
    /// Whether to keep what the members said of each bar, and the latest bar's (None while
    /// the model warms up): for [`SymbolPipeline::method_scores`], off unless asked for.
    /// An evaluation's setting, not the detection's: not saved with the state (its layout
    /// stays as it was; a resumed pipeline has it off).
    #[cfg_attr(feature = "serde", serde(skip))]
    keep_logs: bool,
    #[cfg_attr(feature = "serde", serde(skip))]
    last_logs: Option<MethodLogs>,
    feedback: Feedback,
    // stability / history
    n: u64,
    last_ts: Option<i64>,
    current: Option<Regime>,
    since: u64,
    switches: u64,
    flickers: u64,
    prev_regime_before_switch: Option<(Regime, u64)>,
    durations_sum: u64,
    durations_n: u64,
    regime_counts: [u64; N_REGIMES],
    // transitions
    trans_counts: Box<[[u64; N_REGIMES]; N_REGIMES]>,
    trans_snapshot: Box<[[f64; N_REGIMES]; N_REGIMES]>,
    unusual: u64,
    last_unusual: Option<(u8, u8, i64)>,
    // latency, sampled
    lat_total: f64,
    lat_hmm: f64,
    lat_asl: f64,
}

/// Every this many bars each side times itself (the components' `latency_us`).
const LATENCY_SAMPLE_EVERY: u64 = 256;

/// Bars per chunk handed from the bar-side thread to the pool-side thread in a batch.
const BATCH_CHUNK: usize = 2048;

/// One bar of the bar side's output, as a batch hands it across threads.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct BarRecord {
    step: ModelScores,
    ctx: BarContext,
    seq: u64,
    version: u32,
    lat_us: [f64; 2],
    /// Range of this bar's references in the chunk's `refs`.
    refs: std::ops::Range<usize>,
}

/// A chunk of the bar side's output.
#[derive(Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct BarChunk {
    records: Vec<BarRecord>,
    refs: Vec<(u64, [f64; NS])>,
}

impl SymbolPipeline {
    /// A pipeline with validated settings.
    pub fn new(cfg: PipelineConfig) -> Result<Self> {
        cfg.validate()?;
        let cfg = cfg.effective();
        let weights = [PRIOR_WEIGHTS; 3];
        Ok(SymbolPipeline {
            bar_side: BarSide {
                splits: SplitAdjuster::new(),
                intraday: IntradayAdjuster::new(),
                hmm: OnlineHmm::new(cfg.hmm.clone())?,
                ctx: ContextBuilder::default(),
                n: 0,
                ph_n: 0,
                ph_mean: 0.0,
                ph_var: 0.0,
                ph_level: [0.0; 3],
                ph_level_w: [0.0; 3],
                ph_cum: 0.0,
                ph_min: 0.0,
                drifts: 0,
            },
            cfg,
            pool_side: PoolSide {
                bounds: Boundaries::default(),
                threshold: ThresholdMethod,
                kalman: KalmanMethod::default(),
                jump: JumpMethod::default(),
                changepoint: ChangePointMethod::default(),
                weights,
                averaged: weights,
                pool_weights: weights,
                pooled: None,
                label: [1, 1, 0],
                suppressed: 0,
                lag: VecDeque::new(),
                keep_logs: false,
                last_logs: None,
                feedback: Feedback::default(),
                n: 0,
                last_ts: None,
                current: None,
                since: 0,
                switches: 0,
                flickers: 0,
                prev_regime_before_switch: None,
                durations_sum: 0,
                durations_n: 0,
                regime_counts: [0; N_REGIMES],
                trans_counts: Box::new([[0; N_REGIMES]; N_REGIMES]),
                trans_snapshot: Box::new([[0.0; N_REGIMES]; N_REGIMES]),
                unusual: 0,
                last_unusual: None,
                lat_total: 0.0,
                lat_hmm: 0.0,
                lat_asl: 0.0,
            },
        })
    }

    /// Validate one bar ([`crate::bars::check_bar`], and after the last bar processed), then
    /// process it: the entry point for bars from outside. A refused bar changes nothing.
    pub fn try_update(&mut self, bar: &Bar) -> std::result::Result<Detection, RejectReason> {
        crate::bars::check_bar(bar)?;
        crate::bars::check_after(self.last_ts(), bar.ts)?;
        Ok(self.update(bar))
    }

    /// Process one validated bar (causal: uses this bar and earlier ones only). Nothing is
    /// checked here (a batch is validated once, up front): bars from outside go through
    /// [`SymbolPipeline::try_update`].
    pub fn update(&mut self, bar: &Bar) -> Detection {
        let (step, ctx, lat_us) = self.bar_side.update(bar);
        let view = BarOutput {
            step: &step,
            ctx: &ctx,
            seq: self.bar_side.hmm.n(),
            version: self.bar_side.hmm.model_version() as u32,
            refs: self.bar_side.hmm.smoothed(),
            lat_us,
        };
        self.pool_side.update(&self.cfg, bar, &view)
    }

    /// Process `bars` in order, appending one detection per bar to `out`: the same
    /// detections and final state as calling [`SymbolPipeline::update`] on each. With
    /// `two_threads` (and more than one chunk of bars), the bar side runs on a second
    /// thread a few chunks ahead of the pool side — for a long series on an otherwise
    /// idle core (a panel already keeps the cores busy with one symbol each).
    pub fn update_batch(&mut self, bars: &[Bar], two_threads: bool, out: &mut Vec<Detection>) {
        out.reserve(bars.len());
        if !two_threads || bars.len() <= BATCH_CHUNK {
            out.extend(bars.iter().map(|b| self.update(b)));
            return;
        }
        let (front, back, cfg) = (&mut self.bar_side, &mut self.pool_side, &self.cfg);
        // chunks travel to the pool side and back (reused), so at most `DEPTH` exist
        const DEPTH: usize = 4;
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<BarChunk>(DEPTH);
        let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<BarChunk>(DEPTH);
        for _ in 0..DEPTH {
            // cannot fail: the receiver is alive and the channel has room for DEPTH
            let _ = empty_tx.send(BarChunk::default());
        }
        let ran = std::thread::scope(|s| {
            let front_thread = std::thread::Builder::new()
                .name("regime-bar-side".into())
                .spawn_scoped(s, move || {
                    for chunk in bars.chunks(BATCH_CHUNK) {
                        let Ok(mut c) = empty_rx.recv() else {
                            return;
                        };
                        c.records.clear();
                        c.refs.clear();
                        for bar in chunk {
                            let (step, ctx, lat_us) = front.update(bar);
                            let start = c.refs.len();
                            c.refs.extend_from_slice(front.hmm.smoothed());
                            c.records.push(BarRecord {
                                step,
                                ctx,
                                seq: front.hmm.n(),
                                version: front.hmm.model_version() as u32,
                                lat_us,
                                refs: start..c.refs.len(),
                            });
                        }
                        if full_tx.send(c).is_err() {
                            return;
                        }
                    }
                });
            if front_thread.is_err() {
                return false; // no thread to be had: run on this one below
            }
            // owned here, so that if this side unwinds the channels close and the bar side
            // stops instead of waiting on them forever (the scope joins it before unwinding on)
            let (full_rx, empty_tx) = (full_rx, empty_tx);
            let mut bars = bars.chunks(BATCH_CHUNK);
            while let Ok(c) = full_rx.recv() {
                let Some(chunk) = bars.next() else {
                    break;
                };
                for (bar, r) in chunk.iter().zip(&c.records) {
                    let view = BarOutput {
                        step: &r.step,
                        ctx: &r.ctx,
                        seq: r.seq,
                        version: r.version,
                        refs: &c.refs[r.refs.clone()],
                        lat_us: r.lat_us,
                    };
                    out.push(back.update(cfg, bar, &view));
                }
                // the bar-side thread may have finished; then the chunk is simply dropped
                let _ = empty_tx.send(c);
            }
            true
        });
        if !ran {
            out.extend(bars.iter().map(|b| self.update(b)));
        }
    }
}

impl BarSide {
    /// The model-based members' scores for `bar`, the shared features, and the time the HMM
    /// and the whole side took (µs; NaN when not sampled).
    fn update(&mut self, bar: &Bar) -> (ModelScores, BarContext, [f64; 2]) {
        let t0 = self
            .n
            .is_multiple_of(LATENCY_SAMPLE_EVERY)
            .then(Instant::now);
        self.n += 1;
        let bar = &self.splits.adjust(bar);
        let bar = &self.intraday.adjust(bar);
        self.hmm.set_intraday(self.intraday.is_intraday());
        // base_regime_detector
        let step = self.hmm.update(bar);
        let hmm_us = t0.map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1e6);
        self.continuous_learning(&step);
        let scores = ModelScores {
            hmm: hmm_scores(&step),
            averaged: averaged_hmm_scores(&step),
            warming_up: step.warming_up,
        };

        let c = self.ctx.update(bar);
        let lat = [
            hmm_us,
            t0.map_or(f64::NAN, |t| t.elapsed().as_secs_f64() * 1e6),
        ];
        (scores, c, lat)
    }

    /// Whether the drift test measures each bar against its volatility state's own mean
    /// (on a coarse tick grid, see [`BarSide::continuous_learning`]) rather than one mean.
    fn drift_per_state(&self) -> bool {
        self.hmm.price_grid().is_coarse()
    }

    fn continuous_learning(&mut self, step: &HmmStep) {
        if step.warming_up || step.log_predictive == 0.0 || self.hmm.n() < 500 {
            return;
        }
        let x = step.surprise;
        // running mean and spread over the last ~2,000 bars (exact while fewer): the test
        // starts once the spread is known, not from a mean of 0 and a spread of 0
        self.ph_n += 1;
        let a = 1.0 / (self.ph_n as f64).min(PH_MEMORY);
        // On a coarse tick grid the excess surprise's level depends on the volatility state
        // (a quiet state's many zero returns sit where its density peaks; one series of
        // minute bars on a grid of half an sd: running means 0.02 / 0.00 / 0.39 in low /
        // medium / high, clean −0.02 / 0.14 / 0.04), so a spell of high volatility read as
        // drift: 40 series of 250 sessions raised 324 alarms on a quarter sd's grid against
        // 67 clean, each halving the statistics and refitting a short window. There each bar
        // is measured against its state's own mean (weighted by the posterior): 151 alarms.
        // Clean prices keep the one mean (their labels unchanged).
        let centre = if self.drift_per_state() {
            let (pv, _, _) = crate::model::marginals(&step.joint);
            let mut c = 0.0;
            for v in 0..3 {
                if self.ph_level_w[v] == 0.0 {
                    self.ph_level[v] = self.ph_mean;
                }
                c += pv[v] * self.ph_level[v];
                self.ph_level_w[v] += pv[v];
                let av = pv[v] / self.ph_level_w[v].clamp(1.0, PH_MEMORY);
                self.ph_level[v] += av * (x - self.ph_level[v]);
            }
            c
        } else {
            self.ph_mean
        };
        let dx = x - centre;
        self.ph_mean += a * (x - self.ph_mean);
        self.ph_var += a * (dx * dx * (1.0 - a) - self.ph_var);
        if self.ph_n < PH_WARMUP {
            return;
        }
        let y = (dx / self.ph_var.sqrt().max(PH_MIN_SPREAD)).min(PH_CLIP);
        self.ph_cum += y - PH_DELTA;
        self.ph_min = self.ph_min.min(self.ph_cum);
        if self.ph_cum - self.ph_min > PH_THRESHOLD {
            self.drifts += 1;
            self.hmm.discount(0.5);
            self.hmm.request_refit();
            self.ph_cum = 0.0;
            self.ph_min = 0.0;
        }
    }
}

impl PoolSide {
    /// The pool side of one bar, given the bar side's output for it.
    fn update(&mut self, cfg: &PipelineConfig, bar: &Bar, m: &BarOutput) -> Detection {
        let sample = self.n.is_multiple_of(LATENCY_SAMPLE_EVERY);
        let t1 = sample.then(Instant::now);
        self.n += 1;
        self.last_ts = Some(bar.ts);
        let step = m.step;

        // dynamic_boundary_optimizer
        let c = m.ctx;
        if !c.log_vol.is_nan() {
            self.bounds.vol[0].update(c.log_vol);
            self.bounds.vol[1].update(c.log_vol);
        }
        if !c.t_stat.is_nan() {
            self.bounds.trend_band.update(c.t_stat.abs());
        }

        // adaptive_scoring_layer
        let scores = [
            step.hmm,
            self.threshold.score(c, &self.bounds),
            self.kalman.score(c, &self.bounds),
            self.jump.score(c, &self.bounds),
            self.changepoint.score(c, &self.bounds),
            step.averaged,
        ];
        let logs = method_logs(&scores);
        if self.keep_logs {
            self.last_logs = (!step.warming_up).then_some(logs);
        }
        let ens = combine(self.pooled.as_ref().unwrap_or(&self.pool_weights), &logs);
        let t2 = sample.then(Instant::now);

        // intelligent_transition_manager
        let raw = [
            argmax(&ens[0]) as u8,
            argmax(&ens[1]) as u8,
            argmax(&ens[2][..2]) as u8,
        ];
        if step.warming_up {
            // no model yet: report the centre (medium, neutral) rather than the argmax of a
            // uniform distribution; the confidence (1/18) says it is a guess
            self.label = WARMUP_LABEL;
        } else {
            let (th, margin) = (cfg.confidence_threshold, cfg.switch_margin);
            for d in 0..3 {
                let (new, old) = (raw[d] as usize, self.label[d] as usize);
                if new != old {
                    if ens[d][new] >= th || ens[d][new] - ens[d][old] >= margin {
                        self.label[d] = new as u8;
                    } else {
                        self.suppressed += 1;
                    }
                }
            }
        }
        let label = self.label;
        let regime = Regime::from_indices(label[0] as usize, label[1] as usize, label[2] as usize)
            .unwrap_or(Regime::new(
                crate::Volatility::Medium,
                crate::Trend::Neutral,
                crate::Structure::Trending,
            ));
        let confidence =
            ens[0][label[0] as usize] * ens[1][label[1] as usize] * ens[2][label[2] as usize];

        self.track_regime(cfg, regime, bar.ts);

        // performance_feedback_system (ex-post reference with a fixed lag)
        if !step.warming_up {
            crate::hmm::grow_gently(&mut self.lag);
            self.lag.push_back(LagItem {
                seq: m.seq,
                label,
                logs,
            });
            self.feedback_step(cfg, m.refs);
        }

        let mut methods = [[255u8; 3]; N_METHODS];
        for (i, s) in scores.iter().enumerate() {
            for d in 0..3 {
                if s.has[d] {
                    methods[i][d] = argmax(&s.p[d][..DIM_SIZES[d]]) as u8;
                }
            }
        }
        if let (Some(t1), Some(t2)) = (t1, t2) {
            let ew = |acc: &mut f64, us: f64| {
                *acc = if *acc == 0.0 {
                    us
                } else {
                    0.9 * *acc + 0.1 * us
                };
            };
            let us = |x: f64| if x.is_nan() { 0.0 } else { x };
            let [hmm_us, bar_side_us] = m.lat_us.map(us);
            ew(&mut self.lat_hmm, hmm_us);
            // the features (bar side) count with the scoring layer
            ew(
                &mut self.lat_asl,
                bar_side_us - hmm_us + (t2 - t1).as_secs_f64() * 1e6,
            );
            ew(
                &mut self.lat_total,
                bar_side_us + t1.elapsed().as_secs_f64() * 1e6,
            );
        }
        Detection {
            ts: bar.ts,
            regime,
            confidence,
            p_volatility: ens[0],
            p_trend: ens[1],
            p_structure: [ens[2][0], ens[2][1]],
            raw,
            methods,
            warming_up: step.warming_up,
            model_version: m.version,
        }
    }

    fn track_regime(&mut self, cfg: &PipelineConfig, r: Regime, ts: i64) {
        self.regime_counts[r.id() as usize] += 1;
        match self.current {
            None => {
                self.current = Some(r);
                self.since = self.n;
            }
            Some(cur) if cur != r => {
                let dur = self.n - self.since;
                self.durations_sum += dur;
                self.durations_n += 1;
                self.switches += 1;
                if let Some((before, at)) = self.prev_regime_before_switch {
                    if before == r && self.n - at <= 5 {
                        self.flickers += 1;
                    }
                }
                self.prev_regime_before_switch = Some((cur, self.n));
                let (a, b) = (cur.id() as usize, r.id() as usize);
                self.trans_counts[a][b] += 1;
                let row: u64 = self.trans_counts[a].iter().sum();
                if row >= 50 && self.trans_snapshot[a][b] < 0.01 {
                    self.unusual += 1;
                    self.last_unusual = Some((a as u8, b as u8, ts));
                }
                self.current = Some(r);
                self.since = self.n;
            }
            Some(cur) => {
                let a = cur.id() as usize;
                self.trans_counts[a][a] += 1;
            }
        }
        if self.n.is_multiple_of(cfg.transition_update_every) {
            for (i, row) in self.trans_counts.iter().enumerate() {
                let s: u64 = row.iter().sum();
                for (j, c) in row.iter().enumerate() {
                    self.trans_snapshot[i][j] = if s > 0 { *c as f64 / s as f64 } else { 0.0 };
                }
            }
        }
    }

    /// Score the bars whose ex-post reference (the HMM's learning smoother) arrived with
    /// this update: each smoothed bar scores the causal label and every method, and moves
    /// the ensemble weights.
    fn feedback_step(&mut self, cfg: &PipelineConfig, refs: &[(u64, [f64; NS])]) {
        // step size decays like 1/sqrt(n): early adaptation, then averaging of noisy references
        let eta = cfg.ensemble_learning_rate * (2000.0 / (2000.0 + self.feedback.n as f64)).sqrt();
        // the pull toward the prior grows with the bars scored, 5 → 50 over ~41,000 (see
        // `WEIGHT_PULL`)
        let pull = WEIGHT_PULL * (self.feedback.n as f64 / PULL_GROWS_OVER).clamp(1.0, PULL_GROWTH);
        for &(seq, g) in refs {
            // bars a batch refit re-estimated never get a reference: drop them
            while self.lag.front().is_some_and(|it| it.seq < seq) {
                self.lag.pop_front();
            }
            let Some(it) = self.lag.front().filter(|it| it.seq == seq) else {
                continue;
            };
            let (pv, pd, ps) = crate::hmm::dims(&g);
            let y = [argmax(&pv) as u8, argmax(&pd) as u8, argmax(&ps) as u8];
            let f = &mut self.feedback;
            f.n += 1;
            let mut all = true;
            const KEEP: f64 = 1.0 - 1.0 / ACCURACY_MEMORY;
            f.recent_n = f.recent_n * KEEP + 1.0;
            for (d, p) in [&pv[..], &pd[..], &ps[..2]].into_iter().enumerate() {
                let hit = it.label[d] == y[d];
                f.hits[d] += u64::from(hit);
                all &= hit;
                // 1 where the labels agree; where they differ, how plausible hindsight
                // finds the causal label next to its own choice (≈1 when it is split, ≈0
                // when it is sure of the other state)
                let credit =
                    p[usize::from(it.label[d])] / p[usize::from(y[d])].max(f64::MIN_POSITIVE);
                f.recent_credit[d] = f.recent_credit[d] * KEEP + credit.clamp(0.0, 1.0);
            }
            if all {
                f.hits[3] += 1;
            }
            let a = if all { 1.0 } else { 0.0 };
            f.ewma = if f.n == 1 {
                a
            } else {
                f.ewma + (a - f.ewma) / (f.n as f64).min(500.0)
            };
            // the pool at the weights being learned (the point the gradient is taken at;
            // what the detection used is the averaged, or the panel's, weights)
            let ens = combine(&self.weights, &it.logs);
            // The gradient of the log-loss of the pooled distribution w.r.t. w_m, against
            // the reference's probabilities (not its argmax: a hard target rewards
            // sharpening, so members that merely agree with the model's moves gained weight
            // and pulled the pool below the model alone): Σ_k (ref_k − pool_k)·ln p_mk per
            // dimension, for every method at once as an eight-lane product of the
            // difference row with the method's log row.
            let refp = [pv, pd, [ps[0], ps[1], 0.0]];
            let mut diff = [0.0f32; 8];
            for d in 0..3 {
                for k in 0..DIM_SIZES[d] {
                    diff[LANE0[d] + k] = (refp[d][k] - ens[d][k]) as f32;
                }
            }
            let diff = f32x8::from(diff);
            let grads: [[f32; 8]; N_METHODS] =
                std::array::from_fn(|m| (diff * f32x8::from(it.logs.l[m])).to_array());
            for d in 0..3 {
                let yd = y[d] as usize;
                let (l0, nd) = (LANE0[d], DIM_SIZES[d]);
                for m in 0..N_METHODS {
                    // selects, not branches: whether a member is right is a coin toss to
                    // the branch predictor, and its misses cost more than the arithmetic
                    let has = it.logs.has[m][d];
                    f.method_n[m][d] += u64::from(has);
                    f.method_hits[m][d] +=
                        u64::from(has && argmax(&it.logs.l[m][l0..l0 + nd]) == yd);
                    let g: f64 = grads[m][l0..l0 + nd].iter().map(|&x| x as f64).sum();
                    // L2 pull toward the prior weights keeps noisy references from
                    // drifting the pool away from the model-based member
                    let prior = PRIOR_WEIGHTS[m];
                    let w = self.weights[d][m];
                    // unclamped below: averages (over time alone, over the members in a
                    // panel) are clamped, each step is not (see `WEIGHT_AVERAGE_SHARE`)
                    let stepped = (w + eta * (g - pull * (w - prior))).clamp(-3.0, 3.0);
                    self.weights[d][m] = if has { stepped } else { w };
                }
            }
            let step = 1.0
                / (f.n as f64 * WEIGHT_AVERAGE_SHARE).clamp(WEIGHT_AVERAGE_MIN, WEIGHT_AVERAGE_MAX);
            for d in 0..3 {
                for m in 0..N_METHODS {
                    let a = &mut self.averaged[d][m];
                    *a += (self.weights[d][m] - *a) * step;
                    self.pool_weights[d][m] = a.clamp(0.0, 3.0);
                }
            }
            self.lag.pop_front();
        }
        // the smoother hands out each bar within ~2 lags; anything older will never come
        let keep = 4 * cfg.hmm.learn_lag + 64;
        while self.lag.len() > keep {
            self.lag.pop_front();
        }
    }
}

impl SymbolPipeline {
    /// `regime_accuracy` (SPEC §2): how well the causal label agrees with the ex-post label
    /// of the same bar, per dimension (volatility, trend, structure) and averaged over the
    /// three, over the recent bars ([`ACCURACY_MEMORY`]; None until [`ACCURACY_MIN_BARS`]
    /// bars were evaluated).
    /// A bar's credit in a dimension is 1 where the two agree and otherwise the ex-post
    /// probability of the causal label over that of the ex-post label: a label hindsight
    /// finds about as likely as its own choice is not called wrong, one it rules out is.
    /// Counting each disagreement as wholly wrong put healthy pipelines at 0.78–0.86 (the
    /// trend of daily index bars is a coin toss even in hindsight: 98% of S&P 500's bars
    /// below 0.6), at or under the manual's warning line (85%) always, so the alert meant
    /// nothing; with credit a healthy pipeline reads 0.91–0.94, and labels stuck or wrong
    /// where hindsight is sure fall below it (`benches/accuracy/README.md`,
    /// "regime_accuracy"). The exact 18-way match ([`SymbolPipeline::exact_accuracy`]) and
    /// the plain agreement ([`SymbolPipeline::agreement_all_bars`]) stay as diagnostics.
    pub fn regime_accuracy(&self) -> Option<f64> {
        self.dimension_accuracy()
            .map(|a| a.iter().sum::<f64>() / a.len() as f64)
            .filter(|_| self.pool_side.feedback.n >= ACCURACY_MIN_BARS)
    }

    /// Share of evaluated bars whose causal label equals the ex-post label, per dimension,
    /// since the start (None before any).
    pub fn agreement_all_bars(&self) -> Option<[f64; 3]> {
        let f = &self.pool_side.feedback;
        (f.n > 0).then(|| [0, 1, 2].map(|d| f.hits[d] as f64 / f.n as f64))
    }

    /// Share of evaluated bars whose causal label equals the ex-post label in all three
    /// dimensions (None before any).
    pub fn exact_accuracy(&self) -> Option<f64> {
        let f = &self.pool_side.feedback;
        (f.n > 0).then(|| f.hits[3] as f64 / f.n as f64)
    }

    /// `regime_accuracy` per dimension (volatility, trend, structure), from the first bar
    /// evaluated on (None before any).
    pub fn dimension_accuracy(&self) -> Option<[f64; 3]> {
        let f = &self.pool_side.feedback;
        (f.n > 0).then(|| f.recent_credit.map(|c| c / f.recent_n))
    }

    /// Current ensemble weights `[dimension][method]` (the panel's pooled ones in a panel).
    pub fn ensemble_weights(&self) -> [[f64; N_METHODS]; 3] {
        self.pool_side.pooled.unwrap_or(self.pool_side.pool_weights)
    }

    /// The weights this instrument has learned itself, and how many ex-post references it
    /// has learned from.
    pub fn learned_weights(&self) -> ([[f64; N_METHODS]; 3], u64) {
        (self.pool_side.weights, self.pool_side.feedback.n)
    }

    /// In a panel: pool with `w` (the members' learned weights averaged) from now on, and
    /// continue learning from it.
    pub fn set_pooled_weights(&mut self, w: [[f64; N_METHODS]; 3]) {
        self.pool_side.pooled = Some(w);
        self.pool_side.weights = w;
        self.pool_side.averaged = w;
        self.pool_side.pool_weights = w;
    }

    /// Per-method accuracy against the ex-post reference, `[method][dimension]` (NaN if none).
    pub fn method_accuracy(&self) -> [[f64; 3]; N_METHODS] {
        let f = &self.pool_side.feedback;
        let mut out = [[f64::NAN; 3]; N_METHODS];
        for m in 0..N_METHODS {
            for d in 0..3 {
                if f.method_n[m][d] > 0 {
                    out[m][d] = f.method_hits[m][d] as f64 / f.method_n[m][d] as f64;
                }
            }
        }
        out
    }

    /// Keep what each method says of every bar from now on, for
    /// [`SymbolPipeline::method_scores`] (off by default: a copy per bar that detection
    /// does not need).
    pub fn keep_method_scores(&mut self, on: bool) {
        self.pool_side.keep_logs = on;
        if !on {
            self.pool_side.last_logs = None;
        }
    }

    /// What each method (in [`METHOD_NAMES`] order) said of the latest bar, as the pool
    /// took it in: probabilities floored at 1e-4, to `f32` precision (the pool's logs);
    /// `has` false where the method abstained. None unless
    /// [`SymbolPipeline::keep_method_scores`] is on, while the model warms up, and before
    /// the first bar. For evaluation: what any pooling of the members could reach
    /// (`benches/accuracy/pool_bound.py`).
    pub fn method_scores(&self) -> Option<[Scores; N_METHODS]> {
        let logs = self.pool_side.last_logs.as_ref()?;
        Some(std::array::from_fn(|m| {
            let mut s = Scores {
                has: logs.has[m],
                ..Scores::default()
            };
            for d in (0..3).filter(|&d| s.has[d]) {
                for k in 0..DIM_SIZES[d] {
                    s.p[d][k] = f64::from(logs.l[m][LANE0[d] + k].exp());
                }
            }
            s
        }))
    }

    /// The settings it runs with ([`PipelineConfig::effective`] of those it was made with).
    pub fn config(&self) -> &PipelineConfig {
        &self.cfg
    }

    /// Change the transition manager's settings of a running pipeline (a restarted service
    /// resuming under new ones): they act from the next bar; nothing learned depends on them.
    pub fn set_transition_settings(
        &mut self,
        confidence_threshold: f64,
        switch_margin: f64,
    ) -> Result<()> {
        let cfg = PipelineConfig {
            confidence_threshold,
            switch_margin,
            ..self.cfg.clone()
        };
        cfg.validate()?;
        self.cfg = cfg;
        Ok(())
    }

    /// Forget the sampled latencies (the components' `latency_us`, measured with a clock):
    /// what is left is a function of the bars and the settings alone, so two builds that
    /// detect alike save such a pipeline as the same bytes.
    pub fn clear_latencies(&mut self) {
        let p = &mut self.pool_side;
        (p.lat_total, p.lat_hmm, p.lat_asl) = (0.0, 0.0, 0.0);
    }

    /// The HMM (current parameters, model version).
    pub fn hmm(&self) -> &OnlineHmm {
        &self.bar_side.hmm
    }

    /// Unadjusted splits read in this symbol's bars so far, and the last one.
    pub fn splits(&self) -> (u64, Option<crate::splits::Split>) {
        self.bar_side.splits.splits()
    }

    /// Steps of this symbol's volume level read with its prices unmoved, and the last one.
    pub fn volume_steps(&self) -> (u64, Option<crate::splits::VolumeStep>) {
        self.bar_side.splits.volume_steps()
    }

    /// Shrink the HMM's shared parameters toward a population estimate from now on.
    pub fn set_population(&mut self, prior: Option<crate::hmm::PopulationPrior>) {
        self.bar_side.hmm.set_population(prior);
    }

    /// Timestamp of the last bar processed (None before the first). The pipeline itself
    /// does not check order: callers validate (a bar at or before this one is refused as
    /// `timestamp_not_increasing` by every entry point).
    pub fn last_ts(&self) -> Option<i64> {
        self.pool_side.last_ts
    }

    /// Status of every component (SPEC §2).
    pub fn components(&self) -> Vec<ComponentStatus> {
        let ts = self.pool_side.last_ts;
        let warming = self.bar_side.hmm.params().is_none();
        let f = &self.pool_side.feedback;
        let acc = self.regime_accuracy();
        let mut v = Vec::new();
        let (splits, last_split) = self.splits();
        let (steps, last_step) = self.volume_steps();
        let mut base = ComponentStatus::new("base_regime_detector", true)
            .int("bars", self.pool_side.n as i64)
            // unadjusted splits read and taken out (`crate::splits`): the last one's price
            // ratio (3 for 3:1, 0.1 for 1:10) and bar time
            .int("splits_read", splits as i64)
            // steps of the volume level with the prices unmoved (a change of unit or source)
            .int("volume_steps_read", steps as i64)
            .int("model_version", self.bar_side.hmm.model_version() as i64)
            .int(
                "averaged_refits",
                self.bar_side.hmm.averaged_refits() as i64,
            )
            .num(
                "loglik_per_bar",
                self.bar_side.hmm.loglik() / self.pool_side.n.max(1) as f64,
            );
        if let Some(sp) = last_split {
            base = base
                .num("last_split_ratio", sp.ratio)
                .int("last_split_ts_ms", sp.ts);
        }
        if let Some(st) = last_step {
            base = base
                .num("last_volume_step", st.step)
                .int("last_volume_step_ts_ms", st.ts);
        }
        if let Some(d) = self.bar_side.hmm.trend_duration() {
            base = base.num("trend_duration_bars", d);
        }
        if let Some(p) = self.bar_side.hmm.params() {
            // below 1 where the feed's high and low mostly repeat the bar's own move (see
            // `hmm::range_weight`): a sign of synthetic or vendor-built ranges
            base = base.num("range_weight", p.range_weight);
            // below 1 where the return already carries the gap (market opens) or the gaps
            // do not follow volatility (`gap_vol_slope`: opening prints that are not the
            // market's), and the gap's density: Student t(5) for fat-tailed opens (see
            // `hmm::gap_weight`, `hmm::GapSlope`)
            let (tail, seen) = self.bar_side.hmm.gap_tail_evidence();
            base = base
                .num("gap_weight", p.gap_weight)
                .num("gap_vol_slope", self.bar_side.hmm.gap_vol_slope())
                .int(
                    "gap_scale_restarts",
                    self.bar_side.hmm.gap_scale_restarts() as i64,
                )
                .text(
                    "gap_density",
                    if p.gap_student {
                        "student_t5"
                    } else {
                        "normal"
                    },
                )
                .num("gap_tail_evidence", tail)
                .int("gap_bars_seen", seen as i64);
            // the range's density: log-gamma where the bars' ranges have market bars' long
            // left tail, normal for log-normal ranges (see `model::RangeLogGamma`)
            let (tail, seen) = self.bar_side.hmm.range_tail_evidence();
            let log_gamma = self
                .bar_side
                .hmm
                .compiled()
                .is_some_and(|c| c.range_is_log_gamma());
            base = base
                .text(
                    "range_density",
                    if log_gamma { "log_gamma" } else { "normal" },
                )
                .num("range_tail_evidence", tail)
                .int("range_bars_seen", seen as i64);
            // the noise the prices are seen through, as a share of the quietest level's
            // return variance (0 for a clean price; see `JointParams::noise`)
            base = base.num("price_noise_share", p.noise / (p.sigma[0] * p.sigma[0]));
        }
        // the price's tick grid: coarse where a tenth or more of the returns are exactly 0,
        // and then a bar's zero excess range reads as half a step (`model::PriceGrid`)
        let grid = self.bar_side.hmm.price_grid();
        base = base
            .text(
                "price_grid",
                if grid.is_coarse() { "coarse" } else { "fine" },
            )
            .num("zero_return_share", grid.zero_share());
        if grid.is_coarse() {
            base = base.num("grid_step", grid.step());
        }
        // what the bars' timestamps say: intraday bars have their sessions' shape taken out
        let day = self.bar_side.intraday.status();
        base = base.text(
            "session_adjustment",
            if day.intraday { "intraday" } else { "off" },
        );
        if let Some(s) = day.spacing_secs {
            base = base.num("bar_spacing_secs", s);
        }
        if day.intraday {
            base = base.int("sessions", day.sessions as i64);
            if let Some((lo, hi)) = day.vol_factor_range {
                base = base.list("time_of_day_vol_factor", vec![lo, hi]);
            }
        }
        let base = base.state(if warming {
            ComponentState::Degraded
        } else {
            ComponentState::Running
        });
        v.push(with_lat(base, ts, self.pool_side.lat_hmm));
        let mut asl = ComponentStatus::new("adaptive_scoring_layer", true)
            .text("methods", METHOD_NAMES.join(","));
        for (d, name) in crate::regime::DIM_NAMES.iter().enumerate() {
            asl = asl.list(
                &format!("weights_{name}"),
                self.ensemble_weights()[d].to_vec(),
            );
        }
        v.push(with_lat(asl, ts, self.pool_side.lat_asl));
        v.push(with_lat(
            ComponentStatus::new("integration_orchestrator", true)
                .int("bars", self.pool_side.n as i64)
                .text(
                    "current_regime",
                    self.pool_side.current.map_or("none", |r| r.snake_name()),
                ),
            ts,
            self.pool_side.lat_total,
        ));
        let pf = ComponentStatus::new("performance_feedback_system", true)
            .int("evaluated", f.n as i64)
            .num("regime_accuracy", acc.unwrap_or(f64::NAN))
            .num(
                "exact_label_accuracy",
                self.exact_accuracy().unwrap_or(f64::NAN),
            )
            .list(
                "accuracy_by_dimension",
                self.dimension_accuracy()
                    .map_or(vec![f64::NAN; 3], |a| a.to_vec()),
            )
            .list(
                "agreement_all_bars",
                self.agreement_all_bars()
                    .map_or(vec![f64::NAN; 3], |a| a.to_vec()),
            )
            .num("recent_accuracy", f.ewma)
            .int("lag_bars", self.cfg.hmm.learn_lag as i64)
            .state(match acc {
                Some(a) if a < 0.8 => ComponentState::Degraded,
                _ => ComponentState::Running,
            });
        v.push(with_lat(pf, ts, 0.0));
        v.push(with_lat(
            ComponentStatus::new("configuration_manager", false)
                .num("confidence_threshold", self.cfg.confidence_threshold)
                .int("feedback_lag", self.cfg.feedback_lag as i64),
            ts,
            0.0,
        ));
        let mean_dur = if self.pool_side.durations_n > 0 {
            self.pool_side.durations_sum as f64 / self.pool_side.durations_n as f64
        } else {
            f64::NAN
        };
        v.push(with_lat(
            ComponentStatus::new("historical_analyzer", false)
                .list(
                    "regime_counts",
                    self.pool_side
                        .regime_counts
                        .iter()
                        .map(|c| *c as f64)
                        .collect(),
                )
                .num("mean_duration_bars", mean_dur),
            ts,
            0.0,
        ));
        let mut tm = ComponentStatus::new("transition_matrix_analyzer", false)
            .int("transitions", self.pool_side.switches as i64)
            .int("unusual_transitions", self.pool_side.unusual as i64)
            .int("update_every", self.cfg.transition_update_every as i64);
        if let Some((a, b, t)) = self.pool_side.last_unusual {
            tm = tm.text("last_unusual", format!("{a}->{b}@{t}"));
        }
        v.push(with_lat(tm, ts, 0.0));
        v.push(with_lat(
            ComponentStatus::new("dynamic_boundary_optimizer", false)
                .num(
                    "vol_low_high_boundary",
                    self.pool_side.bounds.vol[0].value(),
                )
                .num(
                    "vol_medium_high_boundary",
                    self.pool_side.bounds.vol[1].value(),
                )
                .num(
                    "trend_neutral_band",
                    self.pool_side.bounds.trend_band.value(),
                ),
            ts,
            0.0,
        ));
        v.push(with_lat(
            ComponentStatus::new("intelligent_transition_manager", false)
                .num("confidence_threshold", self.cfg.confidence_threshold)
                .num("switch_margin", self.cfg.switch_margin)
                .int("suppressed_switches", self.pool_side.suppressed as i64),
            ts,
            0.0,
        ));
        v.push(with_lat(
            ComponentStatus::new("regime_stability_monitor", false)
                .int("switches", self.pool_side.switches as i64)
                .int("flickers", self.pool_side.flickers as i64)
                .num("mean_duration_bars", mean_dur)
                .int(
                    "current_duration_bars",
                    (self.pool_side.n - self.pool_side.since) as i64,
                ),
            ts,
            0.0,
        ));
        v.push(with_lat(
            ComponentStatus::new("adaptive_noise_filter", false)
                .text("kind", "kalman_local_linear_trend")
                .num("slope_z_band", self.pool_side.kalman.band()),
            ts,
            0.0,
        ));
        v.push(with_lat(
            ComponentStatus::new("continuous_learning_engine", false)
                .int("model_version", self.bar_side.hmm.model_version() as i64)
                .int("drifts_detected", self.bar_side.drifts as i64)
                // what the drift test measures a bar's surprise against
                .text(
                    "drift_reference",
                    if self.bar_side.drift_per_state() {
                        "per_volatility_state"
                    } else {
                        "single_mean"
                    },
                )
                .int("changepoints", self.pool_side.changepoint.changes() as i64),
            ts,
            0.0,
        ));
        v.push(with_lat(
            ComponentStatus::new("regime_optimization_scheduler", false)
                .int("refit_every", self.cfg.hmm.refit_every as i64)
                .int(
                    "next_transition_snapshot_in",
                    (self.cfg.transition_update_every
                        - self.pool_side.n % self.cfg.transition_update_every)
                        as i64,
                ),
            ts,
            0.0,
        ));
        v
    }

    /// Duration of the current regime in bars.
    pub fn current_duration(&self) -> u64 {
        self.pool_side.n - self.pool_side.since
    }

    /// Regime transition counts `[from][to]` of the final labels.
    pub fn transition_counts(&self) -> &[[u64; N_REGIMES]; N_REGIMES] {
        &self.pool_side.trans_counts
    }
}

fn with_lat(mut s: ComponentStatus, ts: Option<i64>, lat: f64) -> ComponentStatus {
    s.last_update_ts = ts;
    s.latency_us = lat;
    s
}

/// Label reported while the model is warming up: medium volatility, neutral, trending.
const WARMUP_LABEL: [u8; 3] = [1, 1, 0];

/// Log-linear pooling of the methods' probabilities with per-dimension weights: the
/// weighted sum of the log rows (a method counts where it covers the dimension and its
/// weight is not 0), then one eight-lane `exp` of each lane less its dimension's maximum.
fn combine(w: &[[f64; N_METHODS]; 3], logs: &MethodLogs) -> [[f64; 3]; 3] {
    let mut acc = f32x8::ZERO;
    for m in 0..N_METHODS {
        let [a, b, c] = [w[0][m] as f32, w[1][m] as f32, w[2][m] as f32];
        // a dimension the method abstains on has 0 in its lanes (and a weight of 0 gives
        // 0·ln p = 0, ln p ≥ ln 1e-4 being finite): both add exactly nothing
        acc += f32x8::from([a, a, a, b, b, b, c, c]) * f32x8::from(logs.l[m]);
    }
    let l = acc.to_array();
    let mut mx = [0.0f32; 8];
    for d in 0..3 {
        let (a, b) = (LANE0[d], LANE0[d] + DIM_SIZES[d]);
        let top = l[a..b].iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        mx[a..b].fill(top);
    }
    lane_probs(acc - f32x8::from(mx))
}

/// Detect one series causally (one pass).
pub fn detect_series(bars: &[Bar], cfg: &PipelineConfig) -> Result<Vec<Detection>> {
    let mut p = SymbolPipeline::new(cfg.clone())?;
    Ok(bars.iter().map(|b| p.update(b)).collect())
}

/// Detect many series in parallel; results in input order. With
/// [`PipelineConfig::population_weight`] > 0 and two or more series, the instruments share
/// a population prior pooled causally (see [`PanelStream`]): the result equals streaming
/// every bar in time order through one [`PanelStream`].
pub fn detect_panel(series: &[&[Bar]], cfg: &PipelineConfig) -> Result<Vec<Vec<Detection>>> {
    cfg.validate()?;
    if let [one] = series {
        // one series: its bar side can take the second thread
        let mut p = SymbolPipeline::new(cfg.clone())?;
        let mut out = Vec::new();
        p.update_batch(one, rayon::current_num_threads() > 1, &mut out);
        return Ok(vec![out]);
    }
    if cfg.population_weight == 0.0 {
        return series.par_iter().map(|s| detect_series(s, cfg)).collect();
    }
    panel::detect_pooled(series, cfg)
}
