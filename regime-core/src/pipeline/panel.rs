//! Detection over a panel: instruments share what is scale-free.
//!
//! Drifts in units of σ, the AR(1) structure and the persistence of each dimension are
//! weakly identified from one instrument's short history (a ±0.2σ drift needs thousands of
//! bars) but well identified from many. At distinct timestamps 32, 64, …, 512, then every
//! 512 up to 4096 (after that every instrument's own history dominates), the instruments'
//! M-step moments are summed into a [`PopulationPrior`] and every instrument is
//! re-estimated under it; their ensemble weights are averaged too. Only bars before the
//! pooling timestamp enter it, so labels stay causal: a bar's label depends on no bar (of any
//! instrument) with a later timestamp.
//!
//! What a pooling hands the members is a [`PoolEvent`]. [`pool_events`] computes a panel's
//! events (running it only up to its last pooling point); [`PanelMember`] then replays one
//! instrument alone with them and gets exactly its labels in the panel, so a long panel can
//! be detected symbol by symbol in bounded memory.

use super::{Detection, PipelineConfig, SymbolPipeline, N_METHODS};
use crate::bars::Bar;
use crate::error::Result;
use crate::hmm::{
    mean_duration, parabola_peak, with_mean_duration, PopulationPrior, SharedMoments,
    TREND_SPREAD_KEPT,
};
use rayon::prelude::*;

/// Number of pooling points.
const POOLS: usize = 12;

/// Ordinal (0-based, among distinct timestamps) of the `k`-th pooling point.
fn pool_ordinal(k: usize) -> Option<u64> {
    match k {
        0..5 => Some(32 << k),
        5..POOLS => Some(512 * (k as u64 - 3)),
        _ => None,
    }
}

/// What one pooling hands every member of a panel, in this order: the population priors
/// (the EM estimate, then the one with the profiled trend persistence) and the averaged
/// ensemble weights.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolEvent {
    /// The event applies before the first bar with this timestamp or a later one.
    pub ts: i64,
    priors: Vec<PopulationPrior>,
    weights: Option<[[f64; N_METHODS]; 3]>,
}

impl PoolEvent {
    fn apply(&self, m: &mut SymbolPipeline) {
        for p in &self.priors {
            m.set_population(Some(p.clone()));
        }
        if let Some(w) = self.weights {
            m.set_pooled_weights(w);
        }
    }

    /// The population prior members shrink toward after this event.
    pub fn prior(&self) -> Option<&PopulationPrior> {
        self.priors.last()
    }
}

/// Pool the members and apply the result to every one (None when fewer than two members
/// have a model yet).
///
/// EM moves persistence slowly when the emissions say little (a trend's drift is a fraction
/// of σ): each pooling is one EM step from statistics gathered under the members' previous
/// models, and the pooled trend persistence lags far behind its maximum-likelihood value.
/// So the trend persistence is then chosen by the pooled profile likelihood instead: the
/// members' kept histories are filtered under a few candidate durations around the EM value
/// and the best one (refined by a parabola in log duration) is used.
fn pool(members: &mut [SymbolPipeline], weight: f64, ts: i64) -> Option<PoolEvent> {
    let mut sum = SharedMoments::default();
    for m in members.iter() {
        if let Some(x) = m.hmm().shared_moments() {
            sum.add(&x);
        }
    }
    if sum.instruments() < 2 {
        return None;
    }
    let mut prior = sum.prior(weight.min(sum.bars()));
    let mut ev = PoolEvent {
        ts,
        priors: vec![prior.clone()],
        weights: None,
    };
    let set = |members: &mut [SymbolPipeline], p: &PopulationPrior| {
        members
            .par_iter_mut()
            .for_each(|m| m.set_population(Some(p.clone())))
    };
    set(members, &prior);
    if let Some(a) = profile_trend(members, &prior.a_trend) {
        prior.a_trend = a;
        prior.trend_duration = Some(mean_duration(&a));
        set(members, &prior);
        ev.priors.push(prior);
    }
    ev.weights = average_weights(members);
    if let Some(w) = ev.weights {
        for m in members.iter_mut() {
            m.set_pooled_weights(w);
        }
    }
    Some(ev)
}

/// The members' learned ensemble weights (those with references) averaged and clamped to
/// the weights' range. One instrument's references are few and noisy; the panel's are many.
fn average_weights(members: &[SymbolPipeline]) -> Option<[[f64; N_METHODS]; 3]> {
    let mut sum = [[0.0; N_METHODS]; 3];
    let mut k = 0usize;
    for m in members.iter() {
        let (w, n) = m.learned_weights();
        if n == 0 {
            continue;
        }
        k += 1;
        for d in 0..3 {
            for j in 0..N_METHODS {
                sum[d][j] += w[d][j];
            }
        }
    }
    (k >= 2).then(|| sum.map(|row| row.map(|x| (x / k as f64).clamp(0.0, 3.0))))
}

/// Factors of the expected trend duration tried around the EM estimate.
const DURATION_FACTORS: [f64; 5] = [0.7, 1.0, 1.4, 2.0, 2.8];
/// Bars of each member's history the profile likelihood filters.
const PROFILE_BARS: usize = 1024;

/// The trend transitions of best pooled profile likelihood (None when too few members
/// keep a history).
fn profile_trend(members: &[SymbolPipeline], a: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let base = mean_duration(a);
    let cands: Vec<[[f64; 3]; 3]> = DURATION_FACTORS
        .iter()
        .map(|&f| with_mean_duration(a, f * base, TREND_SPREAD_KEPT))
        .collect();
    let per: Vec<Option<Vec<f64>>> = members
        .par_iter()
        .map(|m| m.hmm().trend_profile(&cands, PROFILE_BARS))
        .collect();
    let mut total = vec![0.0; cands.len()];
    let mut used = 0;
    for ll in per.iter().flatten() {
        used += 1;
        for (t, l) in total.iter_mut().zip(ll) {
            *t += l;
        }
    }
    if used < 2 {
        return None;
    }
    // the best factor, refined by a parabola through it and its neighbours in log duration
    let (best, vertex) = parabola_peak(&DURATION_FACTORS.map(f64::ln), &total)?;
    let factor = vertex.map_or(DURATION_FACTORS[best], f64::exp);
    Some(with_mean_duration(a, factor * base, TREND_SPREAD_KEPT))
}

/// Streaming detection over a panel: feed bars of all instruments in time order
/// (non-decreasing timestamps across instruments); pooling happens before the first bar of
/// each scheduled distinct timestamp. Bars that arrive out of time order are detected but
/// do not advance the schedule.
#[derive(Debug)]
pub struct PanelStream {
    cfg: PipelineConfig,
    members: Vec<SymbolPipeline>,
    last_ts: Option<i64>,
    distinct: u64,
    pools: usize,
    last: Option<PoolEvent>,
}

impl PanelStream {
    /// An empty panel (settings validated).
    pub fn new(cfg: PipelineConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(PanelStream {
            cfg,
            members: Vec::new(),
            last_ts: None,
            distinct: 0,
            pools: 0,
            last: None,
        })
    }

    /// Add an instrument; returns its index. It starts from the latest pooling.
    pub fn add_member(&mut self) -> Result<usize> {
        let mut m = SymbolPipeline::new(self.cfg.clone())?;
        if let Some(ev) = &self.last {
            ev.apply(&mut m);
        }
        self.members.push(m);
        Ok(self.members.len() - 1)
    }

    /// The pipeline of member `i`.
    pub fn member(&self, i: usize) -> Option<&SymbolPipeline> {
        self.members.get(i)
    }

    /// Detect one bar of member `i` (None if there is no such member).
    pub fn update(&mut self, i: usize, bar: &Bar) -> Option<Detection> {
        if i >= self.members.len() {
            return None;
        }
        if self.last_ts.is_none_or(|t| bar.ts > t) {
            self.last_ts = Some(bar.ts);
            if self.cfg.population_weight > 0.0 && Some(self.distinct) == pool_ordinal(self.pools) {
                if let Some(ev) = pool(&mut self.members, self.cfg.population_weight, bar.ts) {
                    self.last = Some(ev);
                }
                self.pools += 1;
            }
            self.distinct += 1;
        }
        Some(self.members[i].update(bar))
    }
}

/// The timestamps at which a panel pools: the scheduled distinct timestamps present.
fn pool_times(series: &[&[Bar]]) -> Vec<i64> {
    let mut ts: Vec<i64> = series.iter().flat_map(|s| s.iter().map(|b| b.ts)).collect();
    ts.sort_unstable();
    ts.dedup();
    (0..POOLS)
        .map_while(|k| pool_ordinal(k).and_then(|o| ts.get(o as usize).copied()))
        .collect()
}

/// Bars of `rest` that belong to the epoch ending at `end` (those before it).
fn epoch_len(rest: &[Bar], end: i64) -> usize {
    rest.iter().take_while(|b| b.ts < end).count()
}

/// Run the members over the epochs between pooling times, pooling after each; `keep`
/// receives every detection. Returns the events and the members, each advanced past the
/// last pooling time.
fn run_epochs(
    series: &[&[Bar]],
    cfg: &PipelineConfig,
    mut keep: Option<&mut Vec<Vec<Detection>>>,
) -> Result<(Vec<PoolEvent>, Vec<SymbolPipeline>, Vec<usize>)> {
    let bounds = pool_times(series);
    let mut members = series
        .iter()
        .map(|_| SymbolPipeline::new(cfg.clone()))
        .collect::<Result<Vec<_>>>()?;
    let mut done = vec![0usize; series.len()];
    let mut events = Vec::new();
    for &end in &bounds {
        let advance =
            |m: &mut SymbolPipeline, d: &mut usize, s: &[Bar], out: Option<&mut Vec<Detection>>| {
                let n = epoch_len(&s[*d..], end);
                let bars = &s[*d..*d + n];
                match out {
                    Some(o) => o.extend(bars.iter().map(|b| m.update(b))),
                    // only the events are wanted: a detection is dropped as soon as it is made
                    // (a 5,000-symbol panel's epoch of them held ~0.5 GB)
                    None => bars.iter().for_each(|b| {
                        let _ = m.update(b);
                    }),
                }
                *d += n;
            };
        match keep.as_deref_mut() {
            Some(k) => members
                .par_iter_mut()
                .zip(done.par_iter_mut())
                .zip(series.par_iter().zip(k.par_iter_mut()))
                .for_each(|((m, d), (s, o))| advance(m, d, s, Some(o))),
            None => members
                .par_iter_mut()
                .zip(done.par_iter_mut())
                .zip(series.par_iter())
                .for_each(|((m, d), s)| advance(m, d, s, None)),
        }
        if let Some(ev) = pool(&mut members, cfg.population_weight, end) {
            events.push(ev);
        }
    }
    Ok((events, members, done))
}

/// The pooling events of a panel (runs it up to its last pooling time only).
pub fn pool_events(series: &[&[Bar]], cfg: &PipelineConfig) -> Result<Vec<PoolEvent>> {
    cfg.validate()?;
    if series.len() < 2 || cfg.population_weight == 0.0 {
        return Ok(Vec::new());
    }
    Ok(run_epochs(series, cfg, None)?.0)
}

/// A panel run up to its last pooling time, every detection so far kept: the first part of
/// a one-pass detection whose members then continue alone (each is past every pooling
/// event). See [`panel_prefix`].
#[derive(Debug)]
pub struct PanelPrefix {
    /// Each instrument's pipeline, advanced past the last pooling time.
    pub members: Vec<SymbolPipeline>,
    /// Each instrument's detections so far.
    pub detections: Vec<Vec<Detection>>,
    /// How many bars of each series those are.
    pub done: Vec<usize>,
}

/// Run a panel up to its last pooling time keeping the detections, when that prefix holds at
/// most `max_prefix` bars in all; continuing every member over the rest of its series then
/// gives `detect_panel`'s labels in one pass. None for a single instrument or without
/// pooling (nothing to share: detect each alone), or when the prefix is larger (replay the
/// [`pool_events`] with [`PanelMember`]s instead, in bounded memory).
pub fn panel_prefix(
    series: &[&[Bar]],
    cfg: &PipelineConfig,
    max_prefix: usize,
) -> Result<Option<PanelPrefix>> {
    cfg.validate()?;
    if series.len() < 2 || cfg.population_weight == 0.0 {
        return Ok(None);
    }
    let bounds = pool_times(series);
    let prefix: usize = series
        .iter()
        .map(|s| bounds.iter().fold(0, |d, &end| d + epoch_len(&s[d..], end)))
        .sum();
    if prefix > max_prefix {
        return Ok(None);
    }
    let mut detections: Vec<Vec<Detection>> = series.iter().map(|_| Vec::new()).collect();
    let (_, members, done) = run_epochs(series, cfg, Some(&mut detections))?;
    Ok(Some(PanelPrefix {
        members,
        detections,
        done,
    }))
}

/// One instrument of a panel detected alone, with the panel's [`PoolEvent`]s applied at
/// their timestamps: the same labels as in the panel (for bars in time order).
#[derive(Debug)]
pub struct PanelMember<'a> {
    pipeline: SymbolPipeline,
    events: &'a [PoolEvent],
}

impl<'a> PanelMember<'a> {
    /// A member that will receive `events`.
    pub fn new(cfg: PipelineConfig, events: &'a [PoolEvent]) -> Result<Self> {
        Ok(PanelMember {
            pipeline: SymbolPipeline::new(cfg)?,
            events,
        })
    }

    /// A member whose pipeline has already received every pooling event (from
    /// [`panel_prefix`]): it continues alone.
    pub fn resume(pipeline: SymbolPipeline) -> PanelMember<'static> {
        PanelMember {
            pipeline,
            events: &[],
        }
    }

    /// Detect the next bar.
    pub fn update(&mut self, bar: &Bar) -> Detection {
        self.apply_due(bar.ts);
        self.pipeline.update(bar)
    }

    /// Detect `bars` in order, appending to `out`: the same as [`PanelMember::update`] on
    /// each. The bars between two pooling events go through
    /// [`SymbolPipeline::update_batch`] (on two threads with `two_threads`).
    pub fn update_batch(&mut self, bars: &[Bar], two_threads: bool, out: &mut Vec<Detection>) {
        let mut rest = bars;
        while let Some(first) = rest.first() {
            self.apply_due(first.ts);
            // every event now due has been applied, so the next one falls after `first`
            let n = match self.events.first() {
                Some(ev) => rest
                    .iter()
                    .position(|b| b.ts >= ev.ts)
                    .unwrap_or(rest.len()),
                None => rest.len(),
            }
            .max(1);
            self.pipeline.update_batch(&rest[..n], two_threads, out);
            rest = &rest[n..];
        }
    }

    /// Apply the events whose time has come at a bar stamped `ts`.
    fn apply_due(&mut self, ts: i64) {
        while let Some((ev, rest)) = self.events.split_first() {
            if ts < ev.ts {
                break;
            }
            ev.apply(&mut self.pipeline);
            self.events = rest;
        }
    }

    /// The pipeline (to save its model).
    pub fn pipeline(&self) -> &SymbolPipeline {
        &self.pipeline
    }
}

/// [`super::detect_panel`] with pooling: epochs between pooling times run in parallel over
/// instruments, the rest of every series after the last one too.
pub(super) fn detect_pooled(
    series: &[&[Bar]],
    cfg: &PipelineConfig,
) -> Result<Vec<Vec<Detection>>> {
    let mut out: Vec<Vec<Detection>> = series.iter().map(|s| Vec::with_capacity(s.len())).collect();
    let (_, mut members, done) = run_epochs(series, cfg, Some(&mut out))?;
    members
        .par_iter_mut()
        .zip(out.par_iter_mut())
        .zip(series.par_iter().zip(done.par_iter()))
        .for_each(|((m, o), (s, &d))| o.extend(s[d..].iter().map(|b| m.update(b))));
    Ok(out)
}
