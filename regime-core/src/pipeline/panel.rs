//! Detection over a panel: instruments share what is scale-free.
//!
//! Drifts in units of σ, the AR(1) structure and the persistence of each dimension are
//! weakly identified from one instrument's short history (a ±0.2σ drift needs thousands of
//! bars) but well identified from many. On a schedule of distinct timestamps (32, 64, …,
//! 512, then every 512) the instruments' M-step moments are summed into a
//! [`PopulationPrior`] and every instrument is re-estimated under it. Only bars before the
//! pooling timestamp enter it, so labels stay causal: a bar's label depends on no bar (of any
//! instrument) with a later timestamp.

use super::{Detection, PipelineConfig, SymbolPipeline, N_METHODS};
use crate::bars::Bar;
use crate::error::Result;
use crate::hmm::{PopulationPrior, SharedMoments};
use rayon::prelude::*;

/// Ordinal (0-based, among distinct timestamps) of the `k`-th pooling point.
fn pool_ordinal(k: usize) -> u64 {
    if k < 5 {
        32 << k
    } else {
        512 * (k as u64 - 3)
    }
}

/// Pool the members' moments and hand every member the prior (returned; None when fewer
/// than two members have a model yet).
///
/// EM moves persistence slowly when the emissions say little (a trend's drift is a fraction
/// of σ): each pooling is one EM step from statistics gathered under the members' previous
/// models, and the pooled trend persistence lags far behind its maximum-likelihood value.
/// So the trend persistence is then chosen by the pooled profile likelihood instead: the
/// members' kept histories are filtered under a few candidate durations around the EM value
/// and the best one (refined by a parabola in log duration) is used.
fn pool(members: &mut [SymbolPipeline], weight: f64) -> Option<PopulationPrior> {
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
    members
        .par_iter_mut()
        .for_each(|m| m.set_population(Some(prior.clone())));
    if let Some(a) = profile_trend(members, &prior.a_trend) {
        prior.a_trend = a;
        members
            .par_iter_mut()
            .for_each(|m| m.set_population(Some(prior.clone())));
    }
    pool_weights(members);
    Some(prior)
}

/// Average the members' learned ensemble weights (those with references) and pool with
/// the average, clamped to the weights' range, everywhere. One instrument's references are
/// few and noisy; the panel's are many.
fn pool_weights(members: &mut [SymbolPipeline]) {
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
    if k < 2 {
        return;
    }
    let avg = sum.map(|row| row.map(|x| (x / k as f64).clamp(0.0, 3.0)));
    for m in members.iter_mut() {
        m.set_pooled_weights(avg);
    }
}

/// Factors of the expected trend duration tried around the EM estimate.
const DURATION_FACTORS: [f64; 5] = [0.7, 1.0, 1.4, 2.0, 2.8];
/// Bars of each member's history the profile likelihood filters.
const PROFILE_BARS: usize = 1024;

/// `a` with every diagonal entry giving expected duration `factor` times its own, the
/// off-diagonal mass of each row split as before.
fn scale_duration(a: &[[f64; 3]; 3], factor: f64) -> [[f64; 3]; 3] {
    let mut out = *a;
    for i in 0..3 {
        let leave = (1.0 - a[i][i]).max(1e-9);
        let new_leave = (leave / factor).clamp(1e-4, 0.5);
        for j in 0..3 {
            out[i][j] = if i == j {
                1.0 - new_leave
            } else {
                a[i][j] / leave * new_leave
            };
        }
    }
    out
}

/// The trend transitions of best pooled profile likelihood (None when too few members
/// keep a history).
fn profile_trend(members: &[SymbolPipeline], a: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let cands: Vec<[[f64; 3]; 3]> = DURATION_FACTORS
        .iter()
        .map(|&f| scale_duration(a, f))
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
    let best = (0..total.len()).max_by(|&i, &j| total[i].total_cmp(&total[j]))?;
    // parabola through the best and its neighbours, in log duration
    let factor = if best > 0 && best + 1 < total.len() {
        let x: Vec<f64> = DURATION_FACTORS[best - 1..=best + 1]
            .iter()
            .map(|f| f.ln())
            .collect();
        let y = &total[best - 1..=best + 1];
        let d1 = (y[1] - y[0]) / (x[1] - x[0]);
        let d2 = (y[2] - y[1]) / (x[2] - x[1]);
        let curv = (d2 - d1) / (x[2] - x[0]);
        if curv < 0.0 {
            // vertex: the slope d1 holds at the midpoint of x0 and x1, the second derivative is 2·curv
            let xm = 0.5 * (x[0] + x[1]) - d1 / (2.0 * curv);
            xm.clamp(x[0], x[2]).exp()
        } else {
            DURATION_FACTORS[best]
        }
    } else {
        DURATION_FACTORS[best]
    };
    Some(scale_duration(a, factor))
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
    prior: Option<PopulationPrior>,
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
            prior: None,
        })
    }

    /// Add an instrument; returns its index.
    pub fn add_member(&mut self) -> Result<usize> {
        let mut m = SymbolPipeline::new(self.cfg.clone())?;
        m.set_population(self.prior.clone());
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
            if self.cfg.population_weight > 0.0 && self.distinct == pool_ordinal(self.pools) {
                if let Some(p) = pool(&mut self.members, self.cfg.population_weight) {
                    self.prior = Some(p);
                }
                self.pools += 1;
            }
            self.distinct += 1;
        }
        Some(self.members[i].update(bar))
    }
}

/// [`super::detect_panel`] with pooling: epochs between pooling timestamps run in parallel
/// over instruments.
pub(super) fn detect_pooled(
    series: &[&[Bar]],
    cfg: &PipelineConfig,
) -> Result<Vec<Vec<Detection>>> {
    let mut ts: Vec<i64> = series.iter().flat_map(|s| s.iter().map(|b| b.ts)).collect();
    ts.sort_unstable();
    ts.dedup();
    let mut bounds = Vec::new();
    while let Some(&t) = ts.get(pool_ordinal(bounds.len()) as usize) {
        bounds.push(t);
    }
    drop(ts);
    let mut members = series
        .iter()
        .map(|_| SymbolPipeline::new(cfg.clone()))
        .collect::<Result<Vec<_>>>()?;
    let mut out: Vec<Vec<Detection>> = series.iter().map(|s| Vec::with_capacity(s.len())).collect();
    for e in 0..=bounds.len() {
        let end = bounds.get(e).copied().unwrap_or(i64::MAX);
        members
            .par_iter_mut()
            .zip(out.par_iter_mut())
            .zip(series.par_iter())
            .for_each(|((m, o), s)| {
                let done = o.len();
                let upto = done + s[done..].iter().take_while(|b| b.ts < end).count();
                o.extend(s[done..upto].iter().map(|b| m.update(b)));
            });
        if e < bounds.len() {
            pool(&mut members, cfg.population_weight);
        }
    }
    // bars out of time order within a series (not produced by validated input) come last
    for ((m, o), s) in members.iter_mut().zip(&mut out).zip(series) {
        let done = o.len();
        o.extend(s[done..].iter().map(|b| m.update(b)));
    }
    Ok(out)
}
