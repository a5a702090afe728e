//! The compute-backend interface for the hot loops (SPEC §8, CONVENTIONS §2): batched
//! whole-bar features, emission log-likelihoods and the forward filter of the joint
//! 18-state model over a panel of many symbols × many bars, with a fixed model per
//! symbol (scoring with a learned model: `regime detect --model`).
//!
//! [`CpuBackend`] is the reference (`f64`, rayon over symbols); `regime-kernels` adds CUDA
//! and wgpu (`f32`, parallel over symbols *and* time). Every method returns host buffers.
//!
//! # The computation (identical on every backend)
//! * features: the five [`Obs`] channels of [`ObsExtractor`] per bar (`r`, `r_prev`, `gap`,
//!   `log_range`, `rel_volume`; `NaN` where absent);
//! * emission: [`Compiled::log_emission`] (18 log-likelihoods per bar, up to a per-bar
//!   constant);
//! * filter: the prior at a series' first bar is uniform; then `pred_t = α_{t−1} A` and
//!   `α_t = normalize(pred_t ⊙ exp(ll_t − max ll_t))`. The output per bar is the eight
//!   per-dimension marginals of `α_t` (volatility 3, trend 3, structure 2) and the regime
//!   id of the per-dimension argmax (first index on exact ties).

use crate::bars::Bar;
use crate::error::{Error, Result};
use crate::model::{marginals, Compiled, JointParams, Obs, ObsExtractor, NS, PARAM_STRIDE};
use rayon::prelude::*;
use std::fmt::Debug;
use std::ops::Range;

/// Feature channels per bar (the fields of [`Obs`], in declaration order).
pub const N_OBS: usize = 5;
/// Probabilities per bar in [`Posteriors`]: volatility 3, trend 3, structure 2.
pub const N_PROBS: usize = 8;

/// A panel of OHLCV bars as `f32`, series after series (series `s` is the rows
/// `offsets[s]..offsets[s + 1]`). Close-only series carry `NaN` open/high/low, an absent
/// volume is `NaN` (as in [`Bar`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    open: Vec<f32>,
    high: Vec<f32>,
    low: Vec<f32>,
    close: Vec<f32>,
    volume: Vec<f32>,
    offsets: Vec<usize>,
}

/// Values of a series the panel holds as they are: well inside `f32`'s normal range (2⁻¹²⁶
/// to 2¹²⁸; the kernels take logs of ratios of neighbouring values, no products). Beyond
/// it, at 10⁻⁴² say, `f32` keeps few significant bits (subnormal) or none at all.
const F32_ROOM: f64 = (1u128 << 120) as f64;

/// The least and greatest positive finite values (∞ and 0 when there are none).
fn positive_span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// 1, or the power of two that centres the positive finite `values`' logarithmic span on 1
/// when they reach beyond [`F32_ROOM`] (or below its inverse). A power of two scales a
/// float exactly, so a series within the room is held to the bit as before.
fn f32_scale(values: impl Iterator<Item = f64>) -> f64 {
    let (lo, hi) = positive_span(values);
    if hi == 0.0 || (lo >= 1.0 / F32_ROOM && hi <= F32_ROOM) {
        return 1.0;
    }
    let mid = ((lo.log2() + hi.log2()) / 2.0).round();
    // f64 holds 2^±1023; the span's centre is within that
    2f64.powi(-(mid as i32))
}

/// A bar as a panel holds it: open, high, low, close (times `price`) and volume (times
/// `volume`) as `f32`.
#[inline]
fn held(b: &Bar, price: f64, volume: f64) -> [f32; 5] {
    [
        (b.open * price) as f32,
        (b.high * price) as f32,
        (b.low * price) as f32,
        (b.close * price) as f32,
        (b.volume * volume) as f32,
    ]
}

/// A panel's row read back as a [`Bar`] (`ts` = the row number).
#[inline]
fn held_bar(i: usize, row: [f32; 5]) -> Bar {
    let [o, h, l, c, v] = row.map(f64::from);
    Bar::new(i as i64, o, h, l, c, v)
}

/// Check that `offsets` partitions `0..n`.
fn check_offsets(offsets: &[usize], n: usize, op: &'static str) -> Result<()> {
    if offsets.first() != Some(&0) || offsets.last() != Some(&n) {
        return Err(Error::InvalidParameter {
            name: format!("{op}: offsets"),
            reason: format!("must start at 0 and end at the row count {n}, got {offsets:?}"),
        });
    }
    if let Some(w) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(Error::InvalidParameter {
            name: format!("{op}: offsets[{}]", w + 1),
            reason: "offsets must not decrease".into(),
        });
    }
    Ok(())
}

impl Panel {
    /// Build from columns; every column has one value per row and every close is finite
    /// and positive (bars are validated before they reach a backend).
    pub fn new(
        open: Vec<f32>,
        high: Vec<f32>,
        low: Vec<f32>,
        close: Vec<f32>,
        volume: Vec<f32>,
        offsets: Vec<usize>,
    ) -> Result<Self> {
        let n = close.len();
        for col in [&open, &high, &low, &volume] {
            if col.len() != n {
                return Err(Error::Shape {
                    op: "Panel::new",
                    expected: n,
                    got: col.len(),
                });
            }
        }
        check_offsets(&offsets, n, "Panel::new")?;
        if let Some(i) = close.iter().position(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(Error::InvalidParameter {
                name: format!("close[{i}]"),
                reason: format!("must be finite and > 0, got {}", close[i]),
            });
        }
        Ok(Panel {
            open,
            high,
            low,
            close,
            volume,
            offsets,
        })
    }

    /// Build from series of bars (rounded to `f32`). A series whose prices (or volumes) reach
    /// beyond `F32_ROOM` either way (valid bars in `f64`, but 10⁴⁰ is `inf` in `f32` and
    /// 10⁻⁴² keeps three digits) has them scaled by a power of two (`f32_scale`): every
    /// feature is a ratio of prices (or of volumes), so its regimes are the series' own, its
    /// probabilities to rounding (the logs of the scaled prices differ in their last bits).
    /// Prices whose span no `f32` can hold are an [`Error::PriceSpan`].
    pub fn from_series(series: &[&[Bar]]) -> Result<Self> {
        let n: usize = series.iter().map(|s| s.len()).sum();
        let mut cols: [Vec<f32>; 5] = std::array::from_fn(|_| Vec::with_capacity(n));
        let mut offsets = Vec::with_capacity(series.len() + 1);
        offsets.push(0);
        for (k, s) in series.iter().enumerate() {
            let price = f32_scale(s.iter().flat_map(|b| [b.open, b.high, b.low, b.close]));
            let volume = f32_scale(s.iter().map(|b| b.volume));
            for (t, b) in s.iter().enumerate() {
                let row = held(b, price, volume);
                // a normal f32 (not 0, ∞ or subnormal: a subnormal close has lost its digits)
                if !row[3].is_normal() {
                    let (lo, hi) =
                        positive_span(s.iter().flat_map(|b| [b.open, b.high, b.low, b.close]));
                    return Err(Error::PriceSpan {
                        series: k,
                        bar: t,
                        lo,
                        hi,
                    });
                }
                for (col, x) in cols.iter_mut().zip(row) {
                    col.push(x);
                }
            }
            offsets.push(cols[3].len());
        }
        let [open, high, low, close, volume] = cols;
        Panel::new(open, high, low, close, volume, offsets)
    }

    /// Rows in all.
    pub fn len(&self) -> usize {
        self.close.len()
    }
    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.close.is_empty()
    }
    /// Number of series.
    pub fn n_series(&self) -> usize {
        self.offsets.len() - 1
    }
    /// Series boundaries (`n_series + 1` values).
    pub fn offsets(&self) -> &[usize] {
        &self.offsets
    }
    /// Rows of series `s`.
    pub fn series(&self, s: usize) -> Range<usize> {
        self.offsets[s]..self.offsets[s + 1]
    }
    /// Open prices.
    pub fn open(&self) -> &[f32] {
        &self.open
    }
    /// High prices.
    pub fn high(&self) -> &[f32] {
        &self.high
    }
    /// Low prices.
    pub fn low(&self) -> &[f32] {
        &self.low
    }
    /// Close prices.
    pub fn close(&self) -> &[f32] {
        &self.close
    }
    /// Volumes.
    pub fn volume(&self) -> &[f32] {
        &self.volume
    }
    /// Row `i` as a [`Bar`] (`ts` = the row number).
    pub fn bar(&self, i: usize) -> Bar {
        held_bar(
            i,
            [
                self.open[i],
                self.high[i],
                self.low[i],
                self.close[i],
                self.volume[i],
            ],
        )
    }
}

/// [`N_OBS`] feature channels per row.
#[derive(Debug, Clone, PartialEq)]
pub struct ObsMatrix {
    /// Row-major values, `N_OBS` per row.
    pub values: Vec<f32>,
    /// Series boundaries.
    pub offsets: Vec<usize>,
}

impl ObsMatrix {
    /// Row `i` as an [`Obs`].
    pub fn obs(&self, i: usize) -> Obs {
        let v = &self.values[i * N_OBS..i * N_OBS + N_OBS];
        Obs {
            r: v[0] as f64,
            r_prev: v[1] as f64,
            gap: v[2] as f64,
            log_range: v[3] as f64,
            rel_volume: v[4] as f64,
        }
    }
}

/// 18 emission log-likelihoods per row (joint index `v·6 + d·2 + s`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLik {
    /// Row-major values, 18 per row.
    pub values: Vec<f32>,
    /// Series boundaries.
    pub offsets: Vec<usize>,
}

/// Filtered per-dimension probabilities and the regime id for every row.
#[derive(Debug, Clone, PartialEq)]
pub struct Posteriors {
    /// Row-major, [`N_PROBS`] per row: p(low, medium, high vol), p(down, neutral, up),
    /// p(trending, mean-reverting).
    pub probs: Vec<f32>,
    /// Regime id (0..17) per row.
    pub regime: Vec<u8>,
}

impl Posteriors {
    /// Rows.
    pub fn len(&self) -> usize {
        self.regime.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.regime.is_empty()
    }
}

/// One validated model per series (or one shared by all), compiled for the hot loop.
#[derive(Debug, Clone)]
pub struct ParamTable {
    compiled: Vec<Compiled>,
    packed: Vec<f32>,
}

/// Check a row-major matrix of `width` values per row against its series offsets and the
/// model table; returns the row count.
pub fn check_matrix(
    offsets: &[usize],
    values: usize,
    width: usize,
    params: &ParamTable,
    op: &'static str,
) -> Result<usize> {
    let n = offsets.last().copied().unwrap_or(0);
    check_offsets(offsets, n, op)?;
    if values != n * width {
        return Err(Error::Shape {
            op,
            expected: n * width,
            got: values,
        });
    }
    params.check(offsets.len().saturating_sub(1))?;
    Ok(n)
}

impl ParamTable {
    /// One model per series, or a single model for every series.
    pub fn new(params: &[JointParams]) -> Result<Self> {
        if params.is_empty() {
            return Err(Error::NoData("no model parameters".into()));
        }
        let mut compiled = Vec::with_capacity(params.len());
        let mut packed = Vec::with_capacity(params.len() * PARAM_STRIDE);
        for (i, p) in params.iter().enumerate() {
            let c = Compiled::new(p.clone()).map_err(|e| Error::InvalidParameter {
                name: format!("model[{i}]"),
                reason: e.to_string(),
            })?;
            packed.extend_from_slice(&c.pack_f32());
            compiled.push(c);
        }
        Ok(ParamTable { compiled, packed })
    }
    /// One model for every series.
    pub fn shared(p: &JointParams) -> Result<Self> {
        ParamTable::new(std::slice::from_ref(p))
    }
    /// Number of models.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }
    /// Always false (a table holds at least one model).
    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }
    /// The model of series `s`.
    pub fn get(&self, s: usize) -> &Compiled {
        &self.compiled[if self.compiled.len() == 1 { 0 } else { s }]
    }
    /// Index of the model of series `s` in [`ParamTable::packed`].
    pub fn index(&self, s: usize) -> usize {
        if self.compiled.len() == 1 {
            0
        } else {
            s
        }
    }
    /// The models as `f32`, [`PARAM_STRIDE`] floats each.
    pub fn packed(&self) -> &[f32] {
        &self.packed
    }
    /// Error unless the table fits `n_series` series.
    pub fn check(&self, n_series: usize) -> Result<()> {
        if self.compiled.len() != 1 && self.compiled.len() != n_series {
            return Err(Error::Shape {
                op: "ParamTable (one model, or one per series)",
                expected: n_series,
                got: self.compiled.len(),
            });
        }
        Ok(())
    }
}

/// The hot loops behind one interface. Implementations: [`CpuBackend`] here,
/// `regime_kernels::cuda::CudaBackend` and `regime_kernels::wgpu::WgpuBackend`.
pub trait ComputeBackend: Send + Sync + Debug {
    /// `cpu`, `cuda` or `wgpu`.
    fn name(&self) -> &'static str;
    /// The device in words (for logs and `/health`).
    fn device(&self) -> String;
    /// The five feature channels of every row.
    fn features(&self, panel: &Panel) -> Result<ObsMatrix>;
    /// Emission log-likelihoods of every row.
    fn emission_log_likelihood(&self, obs: &ObsMatrix, params: &ParamTable) -> Result<LogLik>;
    /// The forward filter over log-likelihoods.
    fn forward_filter(&self, ll: &LogLik, params: &ParamTable) -> Result<Posteriors>;
    /// Features, emission and filter in one pass (what detection uses).
    fn detect(&self, panel: &Panel, params: &ParamTable) -> Result<Posteriors> {
        let obs = self.features(panel)?;
        let ll = self.emission_log_likelihood(&obs, params)?;
        self.forward_filter(&ll, params)
    }
    /// Wait for outstanding device work (benchmarks time complete work).
    fn sync(&self) -> Result<()> {
        Ok(())
    }
    /// Whether [`ComputeBackend::detect`] gives each series the bits a [`SeriesScorer`]
    /// gives it bar by bar (the CPU backend), so a series may be scored as it is read.
    fn scores_like_series_scorer(&self) -> bool {
        false
    }
}

/// The filter's state for one series, shared by the CPU paths.
#[derive(Debug, Clone)]
struct FilterState {
    alpha: [f64; NS],
    started: bool,
}

impl Default for FilterState {
    fn default() -> Self {
        FilterState::new()
    }
}

impl FilterState {
    fn new() -> Self {
        FilterState {
            alpha: Compiled::uniform(),
            started: false,
        }
    }

    /// One bar: predict, correct with `exp(ll − max ll)`, write marginals and regime.
    #[inline]
    fn step(&mut self, c: &Compiled, ll: &[f64; NS], probs: &mut [f32], regime: &mut u8) {
        let mx = ll.iter().fold(f64::NEG_INFINITY, |m, x| m.max(*x));
        let mut b = [0.0; NS];
        for j in 0..NS {
            b[j] = (ll[j] - mx).exp();
        }
        self.step_likelihood(c, &b, probs, regime);
    }

    /// One bar from likelihoods (any common scale).
    #[inline]
    fn step_likelihood(&mut self, c: &Compiled, b: &[f64; NS], probs: &mut [f32], regime: &mut u8) {
        let mut pred = Compiled::uniform();
        if self.started {
            c.predict(&self.alpha, &mut pred);
        }
        self.started = true;
        crate::model::correct(&pred, b, &mut self.alpha);
        let (pv, pd, ps) = marginals(&self.alpha);
        for (o, x) in probs.iter_mut().zip(pv.iter().chain(&pd).chain(&ps)) {
            *o = *x as f32;
        }
        *regime = (argmax(&pv) * 6 + argmax(&pd) * 2 + argmax(&ps)) as u8;
    }
}

fn argmax(p: &[f64]) -> usize {
    let mut b = 0;
    for i in 1..p.len() {
        if p[i] > p[b] {
            b = i;
        }
    }
    b
}

/// Split `buf` (`width` values per row) into one mutable slice per series.
fn split_rows<'a, T>(mut buf: &'a mut [T], offsets: &[usize], width: usize) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
    for w in offsets.windows(2) {
        let (head, tail) = buf.split_at_mut((w[1] - w[0]) * width);
        out.push(head);
        buf = tail;
    }
    out
}

/// The CPU reference backend: `f64` arithmetic, series in parallel on rayon's pool (or
/// one after another: [`CpuBackend::scalar`], the single-core engine it is measured against).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend {
    sequential: bool,
}

impl CpuBackend {
    /// Series in parallel on rayon's global pool.
    pub fn new() -> Self {
        CpuBackend { sequential: false }
    }
    /// One series after another on the calling thread.
    pub fn scalar() -> Self {
        CpuBackend { sequential: true }
    }

    fn for_each_series<T: Send>(&self, parts: Vec<T>, f: impl Fn(usize, T) + Sync + Send) {
        if self.sequential {
            parts.into_iter().enumerate().for_each(|(s, p)| f(s, p));
        } else {
            parts
                .into_par_iter()
                .enumerate()
                .with_max_len(1)
                .for_each(|(s, p)| f(s, p));
        }
    }
}

fn write_obs(o: &Obs, out: &mut [f32]) {
    out[0] = o.r as f32;
    out[1] = o.r_prev as f32;
    out[2] = o.gap as f32;
    out[3] = o.log_range as f32;
    out[4] = o.rel_volume as f32;
}

impl ComputeBackend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn scores_like_series_scorer(&self) -> bool {
        true
    }

    fn device(&self) -> String {
        if self.sequential {
            "cpu (1 thread)".into()
        } else {
            format!("cpu ({} threads, rayon)", rayon::current_num_threads())
        }
    }

    fn features(&self, panel: &Panel) -> Result<ObsMatrix> {
        let mut values = vec![0f32; panel.len() * N_OBS];
        let parts = split_rows(&mut values, panel.offsets(), N_OBS);
        self.for_each_series(parts, |s, out| {
            let mut ex = ObsExtractor::new();
            for (i, row) in panel.series(s).zip(out.chunks_exact_mut(N_OBS)) {
                write_obs(&ex.update(&panel.bar(i)), row);
            }
        });
        Ok(ObsMatrix {
            values,
            offsets: panel.offsets().to_vec(),
        })
    }

    fn emission_log_likelihood(&self, obs: &ObsMatrix, params: &ParamTable) -> Result<LogLik> {
        let n = check_matrix(
            &obs.offsets,
            obs.values.len(),
            N_OBS,
            params,
            "emission_log_likelihood",
        )?;
        let mut values = vec![0f32; n * NS];
        let parts = split_rows(&mut values, &obs.offsets, NS);
        self.for_each_series(parts, |s, out| {
            let c = params.get(s);
            let mut ll = [0.0; NS];
            for (i, row) in (obs.offsets[s]..obs.offsets[s + 1]).zip(out.chunks_exact_mut(NS)) {
                c.log_emission(&obs.obs(i), &mut ll);
                for (o, x) in row.iter_mut().zip(&ll) {
                    *o = *x as f32;
                }
            }
        });
        Ok(LogLik {
            values,
            offsets: obs.offsets.clone(),
        })
    }

    fn forward_filter(&self, ll: &LogLik, params: &ParamTable) -> Result<Posteriors> {
        let n = check_matrix(&ll.offsets, ll.values.len(), NS, params, "forward_filter")?;
        let mut probs = vec![0f32; n * N_PROBS];
        let mut regime = vec![0u8; n];
        let parts: Vec<_> = split_rows(&mut probs, &ll.offsets, N_PROBS)
            .into_iter()
            .zip(split_rows(&mut regime, &ll.offsets, 1))
            .collect();
        self.for_each_series(parts, |s, (p_out, r_out)| {
            let c = params.get(s);
            let mut st = FilterState::new();
            let rows = ll.offsets[s]..ll.offsets[s + 1];
            for ((i, p), r) in rows.zip(p_out.chunks_exact_mut(N_PROBS)).zip(r_out) {
                let mut l = [0.0; NS];
                for (x, y) in l.iter_mut().zip(&ll.values[i * NS..i * NS + NS]) {
                    *x = *y as f64;
                }
                st.step(c, &l, p, r);
            }
        });
        Ok(Posteriors { probs, regime })
    }

    /// Fused, all in `f64` (no rounding of features or log-likelihoods in between), with
    /// the likelihoods in product form ([`Compiled::emission`]: 3 `exp` per bar instead
    /// of 18 `ln` and 18 `exp`; equal to the log form up to rounding).
    fn detect(&self, panel: &Panel, params: &ParamTable) -> Result<Posteriors> {
        params.check(panel.n_series())?;
        let n = panel.len();
        let mut probs = vec![0f32; n * N_PROBS];
        let mut regime = vec![0u8; n];
        let parts: Vec<_> = split_rows(&mut probs, panel.offsets(), N_PROBS)
            .into_iter()
            .zip(split_rows(&mut regime, panel.offsets(), 1))
            .collect();
        self.for_each_series(parts, |s, (p_out, r_out)| {
            let (c, mut one) = (params.get(s), Fused::default());
            for ((i, p), r) in panel
                .series(s)
                .zip(p_out.chunks_exact_mut(N_PROBS))
                .zip(r_out)
            {
                one.step(c, &panel.bar(i), p, r);
            }
        });
        Ok(Posteriors { probs, regime })
    }
}

/// [`CpuBackend::detect`]'s work on one series: features, emission and filter fused, bar by
/// bar (the bar as the panel holds it).
#[derive(Debug, Clone, Default)]
struct Fused {
    ex: ObsExtractor,
    st: FilterState,
}

impl Fused {
    #[inline]
    fn step(&mut self, c: &Compiled, held: &Bar, probs: &mut [f32], regime: &mut u8) {
        let mut b = [0.0; NS];
        c.emission(&self.ex.update(held), &mut b);
        self.st.step_likelihood(c, &b, probs, regime);
    }
}

/// One series scored bar by bar with a fixed model on the host, to the bits
/// [`CpuBackend::detect`] gives it in a panel, without the panel or its posteriors: what
/// `regime detect --model` streams a one-symbol file through. A panel rescales a series
/// whose values leave `f32`'s room (see [`Panel::from_series`]), which only the whole
/// series shows: bars the panel would hold as they are pass [`SeriesScorer::holds`].
#[derive(Debug, Clone)]
pub struct SeriesScorer {
    table: ParamTable,
    one: Fused,
}

impl SeriesScorer {
    /// A scorer of one series with the model `params` (compiled as [`ParamTable`] does).
    pub fn new(params: &JointParams) -> Result<Self> {
        Ok(SeriesScorer {
            table: ParamTable::shared(params)?,
            one: Fused::default(),
        })
    }

    /// Whether a panel holds `bar` as it is: its positive prices and volume within `f32`'s
    /// room. A series whose every bar does is scored here as in a panel.
    pub fn holds(bar: &Bar) -> bool {
        let within =
            |v: f64| !(v.is_finite() && v > 0.0) || (1.0 / F32_ROOM..=F32_ROOM).contains(&v);
        [bar.open, bar.high, bar.low, bar.close, bar.volume]
            .into_iter()
            .all(within)
    }

    /// Score the next bar (one that [`SeriesScorer::holds`]): the eight per-dimension
    /// marginals into `probs` (as [`Posteriors::probs`] holds them) and the regime id.
    pub fn step(&mut self, bar: &Bar, probs: &mut [f32; N_PROBS]) -> u8 {
        let mut regime = 0;
        let held = held_bar(0, held(bar, 1.0, 1.0));
        self.one.step(self.table.get(0), &held, probs, &mut regime);
        regime
    }
}

/// Comparing backends (CONVENTIONS §9).
pub mod testing {
    use super::{Posteriors, N_PROBS};

    /// `|a − e| ≤ max(rel·|e|, abs)`; NaN matches NaN, infinities must match in sign.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Tolerance {
        /// Relative part.
        pub rel: f64,
        /// Absolute part.
        pub abs: f64,
    }

    /// CPU vs CPU (batch vs streaming).
    pub const STRICT: Tolerance = Tolerance {
        rel: 0.0,
        abs: 1e-12,
    };
    /// Pointwise and windowed features computed in `f32`.
    pub const GPU_F32: Tolerance = Tolerance {
        rel: 1e-4,
        abs: 1e-6,
    };
    /// Recurrences and long sums in `f32`.
    pub const GPU_F32_RECURSIVE: Tolerance = Tolerance {
        rel: 1e-3,
        abs: 1e-6,
    };
    /// Probabilities: SPEC §8 allows 1e-4 between backends.
    pub const PROBABILITY: Tolerance = Tolerance {
        rel: 0.0,
        abs: 1e-4,
    };

    /// The first element outside the tolerance, as a message naming index and values.
    pub fn check_close(actual: &[f32], expected: &[f32], tol: Tolerance) -> Result<(), String> {
        if actual.len() != expected.len() {
            return Err(format!(
                "length {} vs expected {}",
                actual.len(),
                expected.len()
            ));
        }
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            let (a, e) = (*a as f64, *e as f64);
            let ok = if a.is_nan() || e.is_nan() {
                a.is_nan() && e.is_nan()
            } else if a.is_infinite() || e.is_infinite() {
                a == e
            } else {
                (a - e).abs() <= (tol.rel * e.abs()).max(tol.abs)
            };
            if !ok {
                return Err(format!(
                    "index {i}: got {a}, expected {e}, difference {}",
                    a - e
                ));
            }
        }
        Ok(())
    }

    /// Panic with [`check_close`]'s message.
    pub fn assert_close(actual: &[f32], expected: &[f32], tol: Tolerance) {
        if let Err(m) = check_close(actual, expected, tol) {
            panic!("values differ beyond {tol:?}: {m}");
        }
    }

    /// How two backends' regime ids agree.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct RegimeAgreement {
        /// Rows compared.
        pub rows: usize,
        /// Rows with the same id.
        pub equal: usize,
        /// Differing rows where a dimension's top two probabilities are within 1e-3.
        pub near_ties: usize,
        /// Differing rows that are not near-ties (first few indices).
        pub real_differences: Vec<usize>,
        /// Largest absolute probability difference.
        pub max_prob_diff: f64,
    }

    impl RegimeAgreement {
        /// Share of equal rows.
        pub fn share_equal(&self) -> f64 {
            self.equal as f64 / self.rows.max(1) as f64
        }
    }

    fn near_tie(p: &[f32]) -> bool {
        let dims: [&[f32]; 3] = [&p[0..3], &p[3..6], &p[6..8]];
        dims.iter().any(|d| {
            let mut v: Vec<f32> = d.to_vec();
            v.sort_by(|a, b| b.total_cmp(a));
            (v[0] - v[1]).abs() < 1e-3
        })
    }

    /// Compare `a` against the reference `b`.
    pub fn compare(a: &Posteriors, b: &Posteriors) -> RegimeAgreement {
        let mut out = RegimeAgreement {
            rows: a.regime.len().min(b.regime.len()),
            ..Default::default()
        };
        for (x, y) in a.probs.iter().zip(&b.probs) {
            out.max_prob_diff = out.max_prob_diff.max((*x as f64 - *y as f64).abs());
        }
        for i in 0..out.rows {
            if a.regime[i] == b.regime[i] {
                out.equal += 1;
            } else if near_tie(&b.probs[i * N_PROBS..i * N_PROBS + N_PROBS]) {
                out.near_ties += 1;
            } else if out.real_differences.len() < 20 {
                out.real_differences.push(i);
            }
        }
        out
    }
}
