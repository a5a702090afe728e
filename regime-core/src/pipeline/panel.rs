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
    mean_duration, parabola_peak, with_mean_duration, PopulationPrior, SharedMoments, Summary,
    SUMMARY_LEN, TREND_DURATIONS, TREND_SPREAD_KEPT,
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

/// What one pooling hands the members of a panel, in this order: the population priors of
/// each member's group (the EM estimate, then the one with the profiled trend persistence)
/// and the averaged ensemble weights.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolEvent {
    /// The event applies before the first bar with this timestamp or a later one.
    pub ts: i64,
    /// Per group of like instruments ([`groups`]).
    priors: Vec<Vec<PopulationPrior>>,
    /// Each member's group (its index in the panel; None: no model yet).
    group_of: Vec<Option<usize>>,
    weights: Option<[[f64; N_METHODS]; 3]>,
}

impl PoolEvent {
    fn apply(&self, i: usize, m: &mut SymbolPipeline) {
        let priors = self.priors_of(i);
        if priors.is_empty() {
            m.set_population(None);
        }
        for p in priors {
            m.set_population(Some(p.clone()));
        }
        if let Some(w) = self.weights {
            m.set_pooled_weights(w);
        }
    }

    /// Member `i`'s priors. A member that had no model yet, or joins later, takes the
    /// panel's while the panel is one group; once it has split such a member cannot be
    /// placed in a group, and the whole panel's prior mixes unlike markets (a fast market
    /// listed after the last pooling: full label 0.914 of the oracle's lift under it, 0.946
    /// alone, `mixed_panel` with its symbols from bar 5,000 of 8,000): none, it learns alone.
    fn priors_of(&self, i: usize) -> &[PopulationPrior] {
        match (
            self.group_of.get(i).copied().flatten(),
            self.priors.as_slice(),
        ) {
            (Some(g), _) => &self.priors[g],
            (None, [one]) => one,
            (None, _) => &[],
        }
    }

    /// The population prior member `i` shrinks toward after this event.
    pub fn prior(&self, i: usize) -> Option<&PopulationPrior> {
        self.priors_of(i).last()
    }

    /// How many groups of like instruments the panel was split into.
    pub fn groups(&self) -> usize {
        self.priors.len()
    }
}

/// At most this many groups of like instruments.
const MAX_GROUPS: usize = 8;
/// A group holds at least this share of the instruments with a model, and at least
/// [`MIN_GROUP`] of them: a few members in a poor optimum of their own (a level missed in
/// their first bars) look unlike the rest too, and a group of their own would keep them
/// there (a panel of 40 like instruments split off two such at 1,536 bars with a floor of
/// 5% and two).
const MIN_GROUP_SHARE: f64 = 0.1;
/// See [`MIN_GROUP_SHARE`].
const MIN_GROUP: usize = 4;

/// The panel's instruments in groups of like ones: each member's group (None without a
/// summary) and the number of groups.
///
/// A panel is often a universe of unlike instruments — index funds and single stocks, slow
/// and fast markets — and one prior for all pulled each toward the others' persistence and
/// spacing of volatility levels (`datasets/examples/mixed_panel.rs`: a slow market's
/// volatility 0.97 of the oracle's lift in a panel of its own, 0.94 alone, 0.86 among
/// unlike ones). A group is split in two (2-means on the [`Summary`] estimates, each
/// component in units of one instrument's median sampling variance) when the two halves'
/// centres lie further apart than two unlike instruments would: beyond χ²'s mean plus three
/// standard deviations, over the components the members have (21.7 for all nine; a
/// panel of 40 like instruments, seed 71, reads 3.5–6.7 at its best splits; unlike markets
/// pass once they have a thousand bars). Then each member goes to the nearest group's
/// centre. Groups, not a similarity weight per pair: an instrument stuck in a poor optimum of
/// its own (one level missed in its first bars) is pulled out of it by its whole group's
/// prior, where a prior from its nearest neighbours held it there (tried: a slow market's
/// volatility 0.99 → 0.92 of the oracle's lift in its own panel, one member 0.98 → 0.13).
fn groups(summaries: &[Option<Summary>]) -> (Vec<Option<usize>>, usize) {
    let with: Vec<usize> = (0..summaries.len())
        .filter(|&i| summaries[i].is_some())
        .collect();
    let x: Vec<Summary> = summaries.iter().flatten().copied().collect();
    let min = ((MIN_GROUP_SHARE * x.len() as f64).ceil() as usize).max(MIN_GROUP);
    let mut parts: Vec<Vec<usize>> = vec![(0..x.len()).collect()];
    while parts.len() < MAX_GROUPS {
        let mut order: Vec<usize> = (0..parts.len()).collect();
        order.sort_by_key(|&g| std::cmp::Reverse(parts[g].len()));
        let Some((g, (a, b))) = order
            .into_iter()
            .find_map(|g| split(&parts[g], &x, min).map(|ab| (g, ab)))
        else {
            break;
        };
        parts[g] = a;
        parts.push(b);
    }
    // each member to the nearest group's centre (an early split sends members near its
    // boundary either way, and a later one cannot take them back)
    if parts.len() > 1 {
        let all: Vec<usize> = (0..x.len()).collect();
        let m = Metric::of(&all, &x);
        for _ in 0..10 {
            let centres: Vec<[f64; SUMMARY_LEN]> = parts
                .iter()
                .map(|p| centre(&x, p.iter().copied()))
                .collect();
            let mut next = vec![Vec::new(); parts.len()];
            for (i, s) in x.iter().enumerate() {
                let g = (0..centres.len())
                    .min_by(|&a, &b| m.dist(s, &centres[a]).total_cmp(&m.dist(s, &centres[b])))
                    .unwrap_or(0);
                next[g].push(i);
            }
            if next == parts || next.iter().any(|p| p.len() < min) {
                break;
            }
            parts = next;
        }
    }
    let mut group_of = vec![None; summaries.len()];
    for (g, part) in parts.iter().enumerate() {
        for &k in part {
            group_of[with[k]] = Some(g);
        }
    }
    (group_of, parts.len())
}

/// Distances between [`Summary`] estimates, each component in units of one member's median
/// sampling variance (left out where most members have no estimate).
struct Metric {
    scale: [f64; SUMMARY_LEN],
}

impl Metric {
    /// The metric of the members `part` (indices into `x`).
    fn of(part: &[usize], x: &[Summary]) -> Metric {
        Metric {
            scale: std::array::from_fn(|c| {
                let mut v: Vec<f64> = part
                    .iter()
                    .map(|&i| x[i].var[c])
                    .filter(|v| v.is_finite())
                    .collect();
                if 2 * v.len() <= part.len() {
                    return f64::INFINITY;
                }
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            }),
        }
    }

    /// Squared distance of a member's estimates from a centre (over the components both
    /// have).
    fn dist(&self, s: &Summary, c: &[f64; SUMMARY_LEN]) -> f64 {
        (0..SUMMARY_LEN)
            .filter(|&k| self.scale[k].is_finite() && s.var[k].is_finite())
            .map(|k| (s.x[k] - c[k]).powi(2) / self.scale[k])
            .sum()
    }

    /// Squared distance between two centres, and the number of components it sums.
    fn between(&self, a: &[f64; SUMMARY_LEN], b: &[f64; SUMMARY_LEN]) -> (f64, usize) {
        let ks = (0..SUMMARY_LEN).filter(|&k| self.scale[k].is_finite());
        let d2 = ks
            .clone()
            .map(|k| (a[k] - b[k]).powi(2) / self.scale[k])
            .sum();
        (d2, ks.count())
    }
}

/// The mean estimates of `members` (indices into `x`), per component over those that have it.
fn centre(x: &[Summary], members: impl Iterator<Item = usize>) -> [f64; SUMMARY_LEN] {
    let (mut sum, mut n) = ([0.0; SUMMARY_LEN], [0usize; SUMMARY_LEN]);
    for i in members {
        for k in 0..SUMMARY_LEN {
            if x[i].var[k].is_finite() {
                sum[k] += x[i].x[k];
                n[k] += 1;
            }
        }
    }
    std::array::from_fn(|k| if n[k] > 0 { sum[k] / n[k] as f64 } else { 0.0 })
}

/// Two halves of `part` (indices into `x`) by 2-means, when both hold at least `min`
/// members and their centres are far apart (see [`groups`]).
fn split(part: &[usize], x: &[Summary], min: usize) -> Option<(Vec<usize>, Vec<usize>)> {
    if part.len() < 2 * min {
        return None;
    }
    let m = Metric::of(part, x);
    // start from the member furthest from the centre and the one furthest from it
    let all = centre(x, part.iter().copied());
    let furthest = |c: &[f64; SUMMARY_LEN]| {
        part.iter()
            .copied()
            .max_by(|&i, &j| m.dist(&x[i], c).total_cmp(&m.dist(&x[j], c)))
    };
    let a = furthest(&all)?;
    let b = furthest(&x[a].x)?;
    let (mut ca, mut cb) = (x[a].x, x[b].x);
    let mut in_b: Vec<bool> = Vec::new();
    for _ in 0..20 {
        let next: Vec<bool> = part
            .iter()
            .map(|&i| m.dist(&x[i], &cb) < m.dist(&x[i], &ca))
            .collect();
        if next == in_b {
            break;
        }
        in_b = next;
        let side = |b: bool| {
            part.iter()
                .zip(&in_b)
                .filter(move |(_, &s)| s == b)
                .map(|(&i, _)| i)
        };
        ca = centre(x, side(false));
        cb = centre(x, side(true));
    }
    let nb = in_b.iter().filter(|&&s| s).count();
    if nb < min || part.len() - nb < min {
        return None;
    }
    let (d2, n) = m.between(&ca, &cb);
    let far = n as f64 + 3.0 * (2.0 * n as f64).sqrt();
    if n == 0 || d2 < far {
        return None;
    }
    let (mut pa, mut pb) = (Vec::new(), Vec::new());
    for (&i, &s) in part.iter().zip(&in_b) {
        if s {
            pb.push(i);
        } else {
            pa.push(i);
        }
    }
    Some((pa, pb))
}

/// Pool the members and apply the result to every one (None when fewer than two members
/// have a model yet). The members are pooled in groups of like instruments ([`groups`]);
/// in a panel of like instruments that is one group of all.
///
/// EM moves persistence slowly when the emissions say little (a trend's drift is a fraction
/// of σ): each pooling is one EM step from statistics gathered under the members' previous
/// models, and the pooled trend persistence lags far behind its maximum-likelihood value.
/// So the trend persistence is then chosen by the pooled profile likelihood instead: the
/// members' kept histories are filtered under a few candidate durations around the panel's
/// EM value, and each group takes the best one (refined by a parabola in log duration) of
/// its members' summed likelihoods — where it gains [`PROFILE_MIN_GAIN`] over the panel's
/// value; otherwise the duration is not measured, and lengthens at most to 240 bars.
fn pool(members: &mut [SymbolPipeline], weight: f64, ts: i64) -> Option<PoolEvent> {
    let moments: Vec<Option<SharedMoments>> = members
        .par_iter()
        .map(|m| m.hmm().shared_moments())
        .collect();
    let mut sum = SharedMoments::default();
    for m in moments.iter().flatten() {
        sum.add(m);
    }
    if sum.instruments() < 2 {
        return None;
    }
    // the whole panel's trend transitions: the profile's grid is built around them
    let panel_trend = sum.prior(weight.min(sum.bars())).a_trend;
    let summaries: Vec<Option<Summary>> = moments
        .iter()
        .map(|m| m.as_ref().map(SharedMoments::summary))
        .collect();
    let (group_of, n_groups) = groups(&summaries);
    let mut sums = vec![SharedMoments::default(); n_groups];
    for (m, g) in moments.iter().zip(&group_of) {
        if let (Some(m), Some(g)) = (m, g) {
            sums[*g].add(m);
        }
    }
    let mut priors: Vec<PopulationPrior> =
        sums.iter().map(|s| s.prior(weight.min(s.bars()))).collect();
    // the members whose latest prior is the `n`-th (at the first, those left to learn alone
    // too)
    let set = |members: &mut [SymbolPipeline], ev: &PoolEvent, n: usize| {
        members
            .par_iter_mut()
            .enumerate()
            .filter(|(i, _)| {
                let k = ev.priors_of(*i).len();
                k == n || (n == 1 && k == 0)
            })
            .for_each(|(i, m)| m.set_population(ev.prior(i).cloned()))
    };
    let mut ev = PoolEvent {
        ts,
        priors: priors.iter().map(|p| vec![p.clone()]).collect(),
        group_of,
        weights: None,
    };
    set(members, &ev, 1);
    if let Some(profiled) = profile_trend(members, &panel_trend, &ev.group_of, n_groups) {
        let with = |p: &mut PopulationPrior, d: f64| {
            p.a_trend = with_mean_duration(&p.a_trend, d, TREND_SPREAD_KEPT);
            p.trend_duration = Some(mean_duration(&p.a_trend));
        };
        // a group none of whose members keeps a history yet keeps its EM prior
        for ((p, list), d) in priors.iter_mut().zip(&mut ev.priors).zip(profiled) {
            if let Some(d) = d {
                with(p, d);
                list.push(p.clone());
            }
        }
        set(members, &ev, 2);
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

/// Factors of the expected trend duration tried around the EM estimate first.
const DURATION_FACTORS: [f64; 5] = [0.7, 1.0, 1.4, 2.0, 2.8];
/// The grid grows by this factor past an edge where a group's likelihood peaks, ...
const DURATION_STEP: f64 = std::f64::consts::SQRT_2;
/// ... up to this far from the EM estimate either way.
const DURATION_REACH: f64 = 8.0;
/// Bars of each member's history the profile likelihood filters.
const PROFILE_BARS: usize = 1024;
/// A group's summed profile log-likelihood must gain this much (nats) over the panel's own
/// estimate for its best duration to count as measured (about a likelihood-ratio test of
/// one parameter at 5%). Daily index bars say next to nothing about how long a trend lasts:
/// S&P 500 and NASDAQ as one panel gained 0.01–1.6 nats at every pooling, and taking the
/// best anyway, at up to [`DURATION_REACH`] times the estimate each time, compounded the
/// duration to 5,000 bars — a trend that never ends, and 2008 labelled up on 98% of the
/// S&P's days. On the generator's panels (drifts ±0.2 σ; 100-, 250- and 500-bar trends)
/// the poolings that measure a duration gain 2–71 nats; the earliest, with few bars each,
/// do not.
const PROFILE_MIN_GAIN: f64 = 2.0;

/// The mean trend durations of best pooled profile likelihood around that of `a`, per group
/// of members (`group_of`, `n_groups` of them; None for a group none of whose members keeps
/// a history yet), or None when fewer than two members keep one. The grid of candidates grows past an edge while a
/// group's likelihood peaks there: in a panel of unlike markets one group's trends may last
/// a third of the panel's.
fn profile_trend(
    members: &[SymbolPipeline],
    a: &[[f64; 3]; 3],
    group_of: &[Option<usize>],
    n_groups: usize,
) -> Option<Vec<Option<f64>>> {
    let base = mean_duration(a);
    let profiles = |factors: &[f64]| -> Vec<Option<Vec<f64>>> {
        let cands: Vec<[[f64; 3]; 3]> = factors
            .iter()
            .map(|&f| with_mean_duration(a, f * base, TREND_SPREAD_KEPT))
            .collect();
        members
            .par_iter()
            .map(|m| m.hmm().trend_profile(&cands, PROFILE_BARS))
            .collect()
    };
    let mut factors = DURATION_FACTORS.to_vec();
    let mut per = profiles(&factors);
    if per.iter().flatten().count() < 2 {
        return None;
    }
    // each group's members' log-likelihoods per candidate, summed
    let totals = |per: &[Option<Vec<f64>>]| -> Vec<Option<Vec<f64>>> {
        let mut totals: Vec<Option<Vec<f64>>> = vec![None; n_groups];
        for (ll, g) in per.iter().zip(group_of) {
            if let (Some(ll), Some(g)) = (ll, g) {
                let t = totals[*g].get_or_insert_with(|| vec![0.0; ll.len()]);
                for (x, l) in t.iter_mut().zip(ll) {
                    *x += l;
                }
            }
        }
        totals
    };
    let mut own = totals(&per);
    loop {
        let last = factors.len() - 1;
        let (mut low, mut high) = (false, false);
        for t in own.iter().flatten() {
            let best = (0..t.len()).max_by(|&i, &j| t[i].total_cmp(&t[j]));
            low |= best == Some(0);
            high |= best == Some(last);
        }
        low &= factors[0] / DURATION_STEP >= 1.0 / DURATION_REACH;
        high &= factors[last] * DURATION_STEP <= DURATION_REACH;
        if !low && !high {
            break;
        }
        for (grow, front) in [(low, true), (high, false)] {
            if !grow {
                continue;
            }
            let (f, at) = if front {
                (factors[0] / DURATION_STEP, 0)
            } else {
                (factors[factors.len() - 1] * DURATION_STEP, factors.len())
            };
            factors.insert(at, f);
            for (p, q) in per.iter_mut().zip(profiles(&[f])) {
                if let (Some(p), Some(q)) = (p.as_mut(), q) {
                    p.insert(at, q[0]);
                }
            }
        }
        own = totals(&per);
    }
    // the best factor, refined by a parabola through it and its neighbours in log duration
    let ln_factors: Vec<f64> = factors.iter().map(|f| f.ln()).collect();
    // the panel's own estimate, where the grid started
    let at_base = factors.iter().position(|&f| f == 1.0);
    // a duration not measured lengthens at most to the longest a lone series' profile
    // considers, and does not shorten
    let longest = TREND_DURATIONS[TREND_DURATIONS.len() - 1];
    let duration = |total: &[f64]| -> Option<f64> {
        let (best, vertex) = parabola_peak(&ln_factors, total)?;
        let d = vertex.map_or(factors[best], f64::exp) * base;
        let measured = at_base.is_none_or(|b| total[best] - total[b] >= PROFILE_MIN_GAIN);
        Some(if measured {
            d
        } else {
            d.clamp(base, base.max(longest))
        })
    };
    Some(own.iter().map(|t| duration(t.as_ref()?)).collect())
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
            ev.apply(self.members.len(), &mut m);
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
    let lens: Vec<usize> = series
        .iter()
        .map(|s| bounds.iter().fold(0, |d, &end| d + epoch_len(&s[d..], end)))
        .collect();
    if lens.iter().sum::<usize>() > max_prefix {
        return Ok(None);
    }
    // exactly the room each needs: grown by doubling, the kept detections took ~1.8 times
    // their size (2,000 × 2,000 bars: 0.64 GB for 3.1 M of them)
    let mut detections: Vec<Vec<Detection>> = lens.iter().map(|&n| Vec::with_capacity(n)).collect();
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
    index: usize,
}

impl<'a> PanelMember<'a> {
    /// Member `index` of the panel (its position among the series [`pool_events`] was
    /// given), which will receive `events`.
    pub fn new(cfg: PipelineConfig, events: &'a [PoolEvent], index: usize) -> Result<Self> {
        Ok(PanelMember {
            pipeline: SymbolPipeline::new(cfg)?,
            events,
            index,
        })
    }

    /// A member whose pipeline has already received every pooling event (from
    /// [`panel_prefix`]): it continues alone.
    pub fn resume(pipeline: SymbolPipeline) -> PanelMember<'static> {
        PanelMember {
            pipeline,
            events: &[],
            index: 0,
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
            ev.apply(self.index, &mut self.pipeline);
            self.events = rest;
        }
    }

    /// The pipeline (to save its model).
    pub fn pipeline(&self) -> &SymbolPipeline {
        &self.pipeline
    }

    /// Keep what each method says of every bar ([`SymbolPipeline::keep_method_scores`]),
    /// read through [`PanelMember::pipeline`] (for evaluation).
    pub fn keep_method_scores(&mut self, on: bool) {
        self.pipeline.keep_method_scores(on);
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
