//! Host side shared by the GPU backends: cutting series into chunks (parallel over time),
//! the exact carry of the slow volume average across chunks, and the verified hand-off of
//! the forward filter between chunks.
//!
//! # Why the result equals the sequential filter
//! A chunk's thread first runs the filter over the `warmup_chunks` chunks before it, from
//! the uniform state (the filter forgets its start geometrically). It saves its state
//! just before its first output row; the chunk before it saves its state after its last
//! row. Those two are the same quantity computed two ways: the host compares them, and
//! where any probability differs by more than `handoff_tol` it re-runs that chunk from the
//! neighbour's state, repeating until every hand-off agrees. The result is the sequential
//! filter (to `f32` rounding) whatever the data, and usually costs no re-run.

#![cfg_attr(
    not(any(feature = "cuda", feature = "wgpu")),
    allow(dead_code, unused_macros, unused_imports)
)]

use crate::KernelId;
use bytemuck::{Pod, Zeroable};
use regime_core::backend::{
    check_matrix, LogLik, ObsMatrix, Panel, ParamTable, Posteriors, N_OBS, N_PROBS,
};
use regime_core::model::{GRID_RELAX, GRID_SPAN, NS};
use regime_core::{Error, Result};
use std::ops::Range;

/// Floats per chunk in the state buffer: seed | state before the first row | after the last.
pub const STATE_STRIDE: usize = 54;

/// How the GPU backends cut the work.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuOptions {
    /// Rows per chunk (one thread each).
    pub chunk_len: usize,
    /// Chunks of filter warm-up before each chunk.
    pub warmup_chunks: usize,
    /// Largest accepted difference between the two computations of a hand-off state.
    pub handoff_tol: f32,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            chunk_len: 2048,
            warmup_chunks: 1,
            handoff_tol: 2e-6,
        }
    }
}

impl GpuOptions {
    /// Error unless usable.
    pub fn validate(&self) -> Result<()> {
        regime_core::ensure!(
            (16..=1 << 20).contains(&self.chunk_len),
            "gpu.chunk_len",
            "must be in 16..=1048576, got {}",
            self.chunk_len
        );
        regime_core::ensure!(
            self.warmup_chunks <= 64,
            "gpu.warmup_chunks",
            "must be <= 64, got {}",
            self.warmup_chunks
        );
        regime_core::ensure!(
            self.handoff_tol > 0.0 && self.handoff_tol < 1e-2,
            "gpu.handoff_tol",
            "must be in (0, 0.01), got {}",
            self.handoff_tol
        );
        Ok(())
    }
}

/// One chunk as the kernels read it (`struct Chunk` in both shader languages).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct ChunkDesc {
    /// First row.
    pub start: u32,
    /// Rows.
    pub len: u32,
    /// First row of the chunk's series.
    pub series_start: u32,
    /// Chunk the filter warm-up starts at (itself for a series' first chunk).
    pub warm_chunk: u32,
    /// Model index in the parameter table.
    pub param: u32,
    /// 0 skip, 1 warm up, 2 start from the seed.
    pub mode: u32,
    /// Valid volumes before `start` in the series.
    pub vol_n: u32,
    /// Slow average of `ln(volume / vol_ref)` at `start`.
    pub vol_avg: f32,
    /// The series' first valid volume (1 when it has none): the reference that keeps the
    /// average's numbers small, so `f32` holds them to ~1e-7.
    pub vol_ref: f32,
    /// The price grid's state at `start` (`model::PriceGrid`): returns seen,
    pub grid_n: u32,
    /// their running share exactly 0,
    pub grid_share: f32,
    /// and the least non-zero |return|, relaxed.
    pub grid_step: f32,
}

/// `model::PriceGrid` as the kernels keep it, in `f32` (`grid_update` in the shaders).
#[derive(Debug, Clone, Copy, Default)]
struct GridState {
    n: u32,
    share: f32,
    step: f32,
}

impl GridState {
    fn update(&mut self, r: f32) {
        if r.is_nan() {
            return;
        }
        self.n = self.n.saturating_add(1);
        let a = 1.0 / (self.n as f32).min(GRID_SPAN as f32);
        let zero = if r == 0.0 { 1.0 } else { 0.0 };
        self.share += a * (zero - self.share);
        let m = r.abs();
        let relaxed = self.step * (1.0 + GRID_RELAX as f32);
        self.step = if m > 0.0 && (self.step == 0.0 || m < relaxed) {
            m
        } else {
            relaxed
        };
    }
}

/// `ln(a / b)` as the kernels compute it (`ln_ratio` in the shaders).
fn ln_ratio(a: f32, b: f32) -> f32 {
    let y = (a - b) / (a + b);
    if y.abs() < 0.02 {
        let y2 = y * y;
        return 2.0 * y * (1.0 + y2 * (1.0 / 3.0 + y2 * (0.2 + y2 * (1.0 / 7.0))));
    }
    if a >= b {
        (a / b).ln()
    } else {
        -(b / a).ln()
    }
}

/// A bar with no trade after a close `prev` (`no_trade` in the shaders): open, high and low
/// present and equal to the close, the close unchanged, no volume.
fn no_trade(bar: &[f32; 5], prev: f32) -> bool {
    let [o, h, l, c, v] = *bar;
    o == c && h == c && l == c && c == prev && (v.is_nan() || v <= 0.0)
}

/// The chunks of a batch of series.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The chunks, series after series.
    pub chunks: Vec<ChunkDesc>,
    /// Rows in the batch.
    pub n_rows: usize,
}

impl Plan {
    /// Cut the series of `offsets` (rows relative to the batch) into chunks; `param_of(s)`
    /// is the model index of series `s`.
    pub fn new(
        offsets: &[usize],
        param_of: impl Fn(usize) -> usize,
        opts: &GpuOptions,
    ) -> Result<Plan> {
        opts.validate()?;
        let n_rows = offsets.last().copied().unwrap_or(0);
        if n_rows > u32::MAX as usize / NS {
            return Err(Error::Shape {
                op: "gpu plan (rows per launch)",
                expected: u32::MAX as usize / NS,
                got: n_rows,
            });
        }
        let mut chunks = Vec::new();
        for s in 0..offsets.len().saturating_sub(1) {
            let (a, b) = (offsets[s], offsets[s + 1]);
            let first = chunks.len();
            let mut start = a;
            while start < b {
                let len = opts.chunk_len.min(b - start);
                let idx = chunks.len();
                chunks.push(ChunkDesc {
                    start: start as u32,
                    len: len as u32,
                    series_start: a as u32,
                    warm_chunk: idx.saturating_sub(opts.warmup_chunks).max(first) as u32,
                    param: param_of(s) as u32,
                    mode: 1,
                    vol_n: 0,
                    vol_avg: 0.0,
                    vol_ref: 1.0,
                    grid_n: 0,
                    grid_share: 0.0,
                    grid_step: 0.0,
                });
                start += len;
            }
        }
        Ok(Plan { chunks, n_rows })
    }

    /// Each series' first valid volume, from the batch's volume column.
    pub fn set_volume_refs(&mut self, volume: &[f32]) {
        let mut series_ref = 1.0f32;
        for c in 0..self.chunks.len() {
            let ch = self.chunks[c];
            if ch.start == ch.series_start {
                let series_end = self.chunks[c..]
                    .iter()
                    .take_while(|x| x.series_start == ch.series_start)
                    .map(|x| (x.start + x.len) as usize)
                    .last()
                    .unwrap_or(ch.start as usize);
                series_ref = volume[ch.start as usize..series_end]
                    .iter()
                    .copied()
                    .find(|v| *v > 0.0 && v.is_finite())
                    .unwrap_or(1.0);
            }
            self.chunks[c].vol_ref = series_ref;
        }
    }

    /// The price grid's state at every chunk start (`model::PriceGrid`), from the batch's
    /// open, high, low, close and volume columns: the kernels' own recursion in `f32`
    /// (`grid_update` in the shaders), run over each series up to its chunks' starts, so
    /// a chunk carries on from where the rows before it left the grid.
    pub fn set_grid_states(&mut self, cols: &[&[f32]; 5]) {
        let mut g = GridState::default();
        let mut prev: Option<f32> = None;
        let mut row = 0usize;
        for c in 0..self.chunks.len() {
            let ch = self.chunks[c];
            if ch.start == ch.series_start {
                g = GridState::default();
                prev = None;
                row = ch.start as usize;
            }
            // rows of the series before this chunk not yet counted
            while row < ch.start as usize {
                let bar = [
                    cols[0][row],
                    cols[1][row],
                    cols[2][row],
                    cols[3][row],
                    cols[4][row],
                ];
                if let Some(p) = prev {
                    if !no_trade(&bar, p) {
                        g.update(ln_ratio(bar[3], p));
                    }
                }
                prev = Some(bar[3]);
                row += 1;
            }
            self.chunks[c].grid_n = g.n;
            self.chunks[c].grid_share = g.share;
            self.chunks[c].grid_step = g.step;
        }
    }

    /// After the counting pass: valid volumes before each chunk, per series.
    pub fn set_volume_counts(&mut self, states: &[f32]) {
        let mut n = 0u32;
        for c in 0..self.chunks.len() {
            if self.chunks[c].start == self.chunks[c].series_start {
                n = 0;
            }
            self.chunks[c].vol_n = n;
            n += states[c * STATE_STRIDE] as u32;
        }
    }

    /// After the map pass: compose each series' chunk maps (in `f64`) into the average at
    /// every chunk start.
    pub fn set_volume_averages(&mut self, states: &[f32]) {
        let mut avg = 0.0f64;
        for c in 0..self.chunks.len() {
            if self.chunks[c].start == self.chunks[c].series_start {
                avg = 0.0;
            }
            self.chunks[c].vol_avg = avg as f32;
            let m = states[c * STATE_STRIDE] as f64;
            let a = states[c * STATE_STRIDE + 1] as f64;
            avg = m * avg + a;
        }
    }

    /// Compare every hand-off; mark the chunks to re-run (mode 2, seeded from the
    /// neighbour's end state) and skip the rest. Returns how many re-run.
    pub fn check_handoffs(&mut self, states: &mut [f32], tol: f32) -> usize {
        let mut rerun = 0;
        for c in 0..self.chunks.len() {
            let first = self.chunks[c].start == self.chunks[c].series_start;
            let mut bad = false;
            if !first {
                let here = c * STATE_STRIDE + NS;
                let prev = (c - 1) * STATE_STRIDE + 2 * NS;
                bad = (0..NS).any(|j| {
                    let d = (states[here + j] - states[prev + j]).abs();
                    d.is_nan() || d > tol
                });
            }
            if bad {
                let prev = (c - 1) * STATE_STRIDE + 2 * NS;
                for j in 0..NS {
                    states[c * STATE_STRIDE + j] = states[prev + j];
                }
                self.chunks[c].mode = 2;
                rerun += 1;
            } else {
                self.chunks[c].mode = 0;
            }
        }
        rerun
    }
}

/// Where the time of the last GPU call went (the launch wrappers wait for completion).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunStats {
    /// Rows processed.
    pub rows: usize,
    /// Seconds copying inputs to the device.
    pub upload_s: f64,
    /// Seconds in kernels (launch to completion).
    pub kernel_s: f64,
    /// Seconds in the main kernel alone (detect or filter, first launch).
    pub main_kernel_s: f64,
    /// Seconds copying results back.
    pub readback_s: f64,
    /// Kernel launches.
    pub launches: usize,
    /// Rounds of hand-off repair (0 when every warm-up converged).
    pub handoff_rounds: usize,
}

/// Time `f` into `acc`.
fn timed<T>(acc: &mut f64, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let t = std::time::Instant::now();
    let r = f();
    *acc += t.elapsed().as_secs_f64();
    r
}

/// What a GPU backend provides to the shared driver: buffers and launches.
pub(crate) trait Session {
    /// Most rows one launch may cover with `width` floats per row.
    fn max_rows(&self, width: usize) -> usize;
    /// Upload the source: the columns one after another.
    fn upload_src(&mut self, columns: &[&[f32]]) -> Result<()>;
    /// Upload the chunk table.
    fn upload_chunks(&mut self, chunks: &[ChunkDesc]) -> Result<()>;
    /// Upload the packed models.
    fn upload_params(&mut self, params: &[f32]) -> Result<()>;
    /// Upload the state buffer.
    fn upload_states(&mut self, states: &[f32]) -> Result<()>;
    /// Allocate the outputs (floats and ids), zeroed.
    fn alloc_outputs(&mut self, n_f: usize, n_u: usize) -> Result<()>;
    /// Launch one thread per chunk.
    fn launch(&mut self, k: KernelId, n_rows: usize, n_chunks: usize, pass: u32) -> Result<()>;
    /// Read the state buffer back.
    fn read_states(&mut self) -> Result<Vec<f32>>;
    /// Read the float output back.
    fn read_f(&mut self) -> Result<Vec<f32>>;
    /// Read the id output back.
    fn read_u(&mut self) -> Result<Vec<u32>>;
}

/// `ComputeBackend` for a GPU backend type with fields `device_name`, `opts`, `last` and a
/// `session()` method returning its locked [`Session`] state (CUDA and wgpu share it).
macro_rules! gpu_backend {
    ($ty:ty, $name:literal, $sync:expr) => {
        impl $ty {
            /// Where the time of the last call went.
            pub fn last_run(&self) -> $crate::plan::RunStats {
                self.last.lock().map(|g| g.clone()).unwrap_or_default()
            }

            fn tracked<T>(
                &self,
                f: impl FnOnce(&mut State, &mut $crate::plan::RunStats) -> Result<T>,
            ) -> Result<T> {
                let mut st = $crate::plan::RunStats::default();
                let r = f(&mut *self.session()?, &mut st);
                if let Ok(mut g) = self.last.lock() {
                    *g = st;
                }
                r
            }
        }

        impl ComputeBackend for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn device(&self) -> String {
                self.device_name.clone()
            }

            fn features(&self, panel: &Panel) -> Result<ObsMatrix> {
                self.tracked(|s, st| $crate::plan::features(s, panel, &self.opts, st))
            }

            fn emission_log_likelihood(&self, obs: &ObsMatrix, p: &ParamTable) -> Result<LogLik> {
                self.tracked(|s, st| $crate::plan::emission(s, obs, p, &self.opts, st))
            }

            fn forward_filter(&self, ll: &LogLik, p: &ParamTable) -> Result<Posteriors> {
                self.tracked(|s, st| $crate::plan::filter(s, ll, p, &self.opts, st))
            }

            fn detect(&self, panel: &Panel, p: &ParamTable) -> Result<Posteriors> {
                self.tracked(|s, st| $crate::plan::detect(s, panel, p, &self.opts, st))
            }

            fn sync(&self) -> Result<()> {
                let f: fn(&mut State) -> Result<()> = $sync;
                f(&mut *self.session()?)
            }
        }
    };
}
pub(crate) use gpu_backend;

/// Consecutive series grouped so each group has at most `max_rows` rows.
fn batches(offsets: &[usize], max_rows: usize) -> Result<Vec<Range<usize>>> {
    let mut out = Vec::new();
    let n = offsets.len().saturating_sub(1);
    let mut s = 0;
    while s < n {
        let mut e = s;
        while e < n && offsets[e + 1] - offsets[s] <= max_rows {
            e += 1;
        }
        if e == s {
            return Err(Error::Shape {
                op: "gpu launch: rows of one series (device buffer limit)",
                expected: max_rows,
                got: offsets[s + 1] - offsets[s],
            });
        }
        out.push(s..e);
        s = e;
    }
    Ok(out)
}

fn rebased(offsets: &[usize], series: &Range<usize>) -> Vec<usize> {
    let base = offsets[series.start];
    offsets[series.start..=series.end]
        .iter()
        .map(|o| o - base)
        .collect()
}

fn zero_states(plan: &Plan) -> Vec<f32> {
    vec![0f32; plan.chunks.len().max(1) * STATE_STRIDE]
}

/// The volume scan (two passes, host composition in between) for a planned batch whose
/// OHLCV columns are uploaded.
fn volume_scan(sess: &mut dyn Session, plan: &mut Plan, st: &mut RunStats) -> Result<()> {
    let n = plan.chunks.len();
    timed(&mut st.upload_s, || {
        sess.upload_chunks(&plan.chunks)?;
        sess.upload_states(&zero_states(plan))
    })?;
    for pass in 0..2 {
        timed(&mut st.kernel_s, || {
            sess.launch(KernelId::VolumeScan, plan.n_rows, n, pass)
        })?;
        st.launches += 1;
        let states = timed(&mut st.readback_s, || sess.read_states())?;
        if pass == 0 {
            plan.set_volume_counts(&states);
            timed(&mut st.upload_s, || sess.upload_chunks(&plan.chunks))?;
        } else {
            plan.set_volume_averages(&states);
        }
    }
    Ok(())
}

/// Run a filtering kernel (detect or filter) and repair hand-offs until all agree.
fn filtered(
    sess: &mut dyn Session,
    plan: &mut Plan,
    k: KernelId,
    tol: f32,
    st: &mut RunStats,
) -> Result<(Vec<f32>, Vec<u32>)> {
    let n = plan.chunks.len();
    for c in &mut plan.chunks {
        c.mode = 1;
    }
    timed(&mut st.upload_s, || {
        sess.upload_chunks(&plan.chunks)?;
        sess.upload_states(&zero_states(plan))?;
        sess.alloc_outputs(plan.n_rows * N_PROBS, plan.n_rows)
    })?;
    let mut main = 0.0;
    timed(&mut main, || sess.launch(k, plan.n_rows, n, 0))?;
    st.main_kernel_s += main;
    st.kernel_s += main;
    st.launches += 1;
    let mut rounds = 0;
    loop {
        let read = timed(&mut st.readback_s, || sess.read_states())?;
        let mut states = first(read, n * STATE_STRIDE)?;
        let rerun = plan.check_handoffs(&mut states, tol);
        if rerun == 0 {
            break;
        }
        rounds += 1;
        st.handoff_rounds += 1;
        tracing::debug!(kernel = k.name(), rerun, rounds, "filter hand-offs re-run");
        if rounds > n {
            return Err(Error::Numerical {
                op: "gpu filter hand-off",
                detail: format!("{rerun} chunk hand-offs still differ after {rounds} rounds"),
            });
        }
        timed(&mut st.upload_s, || {
            sess.upload_chunks(&plan.chunks)?;
            sess.upload_states(&states)
        })?;
        timed(&mut st.kernel_s, || sess.launch(k, plan.n_rows, n, 0))?;
        st.launches += 1;
    }
    timed(&mut st.readback_s, || {
        Ok((
            first(sess.read_f()?, plan.n_rows * N_PROBS)?,
            first(sess.read_u()?, plan.n_rows)?,
        ))
    })
}

fn first<T>(mut v: Vec<T>, n: usize) -> Result<Vec<T>> {
    if v.len() < n {
        return Err(Error::Shape {
            op: "gpu read-back",
            expected: n,
            got: v.len(),
        });
    }
    v.truncate(n);
    Ok(v)
}

fn columns(panel: &Panel, rows: Range<usize>) -> [&[f32]; 5] {
    [
        &panel.open()[rows.clone()],
        &panel.high()[rows.clone()],
        &panel.low()[rows.clone()],
        &panel.close()[rows.clone()],
        &panel.volume()[rows],
    ]
}

/// Features of a panel.
pub(crate) fn features(
    sess: &mut dyn Session,
    panel: &Panel,
    opts: &GpuOptions,
    st: &mut RunStats,
) -> Result<ObsMatrix> {
    let offsets = panel.offsets();
    let mut values = vec![0f32; panel.len() * N_OBS];
    for b in batches(offsets, sess.max_rows(N_OBS))? {
        let rows = offsets[b.start]..offsets[b.end];
        let mut plan = Plan::new(&rebased(offsets, &b), |_| 0, opts)?;
        sess.upload_src(&columns(panel, rows.clone()))?;
        plan.set_volume_refs(&panel.volume()[rows.clone()]);
        plan.set_grid_states(&columns(panel, rows.clone()));
        volume_scan(sess, &mut plan, st)?;
        sess.upload_chunks(&plan.chunks)?;
        sess.alloc_outputs(plan.n_rows * N_OBS, 1)?;
        timed(&mut st.kernel_s, || {
            sess.launch(KernelId::Features, plan.n_rows, plan.chunks.len(), 0)
        })?;
        st.launches += 1;
        st.rows += plan.n_rows;
        values[rows.start * N_OBS..rows.end * N_OBS]
            .copy_from_slice(&first(sess.read_f()?, plan.n_rows * N_OBS)?);
    }
    Ok(ObsMatrix {
        values,
        offsets: offsets.to_vec(),
    })
}

/// Emission log-likelihoods.
pub(crate) fn emission(
    sess: &mut dyn Session,
    obs: &ObsMatrix,
    params: &ParamTable,
    opts: &GpuOptions,
    st: &mut RunStats,
) -> Result<LogLik> {
    let offsets = &obs.offsets;
    check_matrix(
        offsets,
        obs.values.len(),
        N_OBS,
        params,
        "emission_log_likelihood",
    )?;
    let mut values = vec![0f32; obs.values.len() / N_OBS * NS];
    sess.upload_params(params.packed())?;
    for b in batches(offsets, sess.max_rows(NS))? {
        let rows = offsets[b.start]..offsets[b.end];
        let plan = Plan::new(&rebased(offsets, &b), |s| params.index(b.start + s), opts)?;
        sess.upload_src(&[&obs.values[rows.start * N_OBS..rows.end * N_OBS]])?;
        sess.upload_chunks(&plan.chunks)?;
        sess.alloc_outputs(plan.n_rows * NS, 1)?;
        timed(&mut st.kernel_s, || {
            sess.launch(KernelId::Emission, plan.n_rows, plan.chunks.len(), 0)
        })?;
        st.launches += 1;
        st.rows += plan.n_rows;
        values[rows.start * NS..rows.end * NS]
            .copy_from_slice(&first(sess.read_f()?, plan.n_rows * NS)?);
    }
    Ok(LogLik {
        values,
        offsets: offsets.clone(),
    })
}

fn posteriors(n: usize) -> Posteriors {
    Posteriors {
        probs: vec![0f32; n * N_PROBS],
        regime: vec![0u8; n],
    }
}

fn place(out: &mut Posteriors, rows: Range<usize>, probs: &[f32], ids: &[u32]) {
    out.probs[rows.start * N_PROBS..rows.end * N_PROBS].copy_from_slice(probs);
    for (o, i) in out.regime[rows].iter_mut().zip(ids) {
        *o = *i as u8;
    }
}

/// The forward filter from log-likelihoods.
pub(crate) fn filter(
    sess: &mut dyn Session,
    ll: &LogLik,
    params: &ParamTable,
    opts: &GpuOptions,
    st: &mut RunStats,
) -> Result<Posteriors> {
    let offsets = &ll.offsets;
    check_matrix(offsets, ll.values.len(), NS, params, "forward_filter")?;
    let mut out = posteriors(ll.values.len() / NS);
    sess.upload_params(params.packed())?;
    for b in batches(offsets, sess.max_rows(NS))? {
        let rows = offsets[b.start]..offsets[b.end];
        let mut plan = Plan::new(&rebased(offsets, &b), |s| params.index(b.start + s), opts)?;
        sess.upload_src(&[&ll.values[rows.start * NS..rows.end * NS]])?;
        let (p, u) = filtered(sess, &mut plan, KernelId::Filter, opts.handoff_tol, st)?;
        st.rows += plan.n_rows;
        place(&mut out, rows, &p, &u);
    }
    Ok(out)
}

/// Features, emission and filter fused.
pub(crate) fn detect(
    sess: &mut dyn Session,
    panel: &Panel,
    params: &ParamTable,
    opts: &GpuOptions,
    st: &mut RunStats,
) -> Result<Posteriors> {
    let offsets = panel.offsets();
    params.check(panel.n_series())?;
    let mut out = posteriors(panel.len());
    sess.upload_params(params.packed())?;
    for b in batches(offsets, sess.max_rows(N_PROBS))? {
        let rows = offsets[b.start]..offsets[b.end];
        let mut plan = Plan::new(&rebased(offsets, &b), |s| params.index(b.start + s), opts)?;
        timed(&mut st.upload_s, || {
            sess.upload_src(&columns(panel, rows.clone()))
        })?;
        plan.set_volume_refs(&panel.volume()[rows.clone()]);
        plan.set_grid_states(&columns(panel, rows.clone()));
        volume_scan(sess, &mut plan, st)?;
        let (p, u) = filtered(sess, &mut plan, KernelId::Detect, opts.handoff_tol, st)?;
        st.rows += plan.n_rows;
        place(&mut out, rows, &p, &u);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_and_warm_up_within_their_series() {
        let opts = GpuOptions {
            chunk_len: 100,
            warmup_chunks: 2,
            ..Default::default()
        };
        let offsets = [0, 250, 250, 251, 600];
        let plan = Plan::new(&offsets, |s| s, &opts).expect("plan");
        let mut covered = vec![0; 600];
        for c in &plan.chunks {
            for i in c.start..c.start + c.len {
                covered[i as usize] += 1;
            }
            let w = plan.chunks[c.warm_chunk as usize];
            assert_eq!(
                w.series_start, c.series_start,
                "warm-up stays in the series"
            );
            assert!(w.start <= c.start);
        }
        assert!(covered.iter().all(|&k| k == 1));
        assert_eq!(plan.chunks.len(), 3 + 1 + 4);
        assert_eq!(plan.chunks[2].warm_chunk, 0);
        assert_eq!(plan.chunks[7].warm_chunk, 5);
    }

    #[test]
    fn volume_composition_matches_the_sequential_average() {
        // three chunks of one series: counts 2, 0, 3; maps from a sequential run
        let opts = GpuOptions {
            chunk_len: 16,
            ..Default::default()
        };
        let mut plan = Plan::new(&[0, 48], |_| 0, &opts).expect("plan");
        let mut st = vec![0f32; 3 * STATE_STRIDE];
        st[0] = 2.0;
        st[STATE_STRIDE] = 0.0;
        st[2 * STATE_STRIDE] = 3.0;
        plan.set_volume_counts(&st);
        assert_eq!(
            plan.chunks.iter().map(|c| c.vol_n).collect::<Vec<_>>(),
            [0, 2, 2]
        );
        // chunk 0: volumes e^1, e^3 -> avg 2 ; chunk 1: identity ; chunk 2 irrelevant
        st[0] = 0.0;
        st[1] = 2.0;
        st[STATE_STRIDE] = 1.0;
        st[STATE_STRIDE + 1] = 0.0;
        plan.set_volume_averages(&st);
        assert_eq!(plan.chunks[1].vol_avg, 2.0);
        assert_eq!(plan.chunks[2].vol_avg, 2.0);
    }

    #[test]
    fn grid_states_at_chunk_starts_are_the_sequential_run_s() {
        // two series of 40 and 30 rows in chunks of 16, on a grid of step 0.01 (every third
        // close unchanged), the second with a bar of no trade (not a return)
        let opts = GpuOptions {
            chunk_len: 16,
            ..Default::default()
        };
        let mut plan = Plan::new(&[0, 40, 70], |_| 0, &opts).expect("plan");
        let close: Vec<f32> = (0..70)
            .map(|i| (0.01 * ((i / 3) % 5) as f64).exp() as f32)
            .collect();
        let mut open = close.clone();
        open.rotate_right(1);
        let (mut high, mut low) = (close.clone(), close.clone());
        for i in 0..70 {
            high[i] = close[i].max(open[i]);
            low[i] = close[i].min(open[i]);
        }
        let mut volume = vec![100f32; 70];
        // row 52: one print at the previous close, no volume
        open[52] = close[51];
        (high[52], low[52]) = (close[51], close[51]);
        volume[52] = 0.0;
        let cols: [&[f32]; 5] = [&open, &high, &low, &close, &volume];
        plan.set_grid_states(&cols);
        for ch in &plan.chunks {
            let mut g = GridState::default();
            for i in ch.series_start as usize + 1..ch.start as usize {
                if i != 52 {
                    g.update(ln_ratio(close[i], close[i - 1]));
                }
            }
            assert_eq!(
                (ch.grid_n, ch.grid_share, ch.grid_step),
                (g.n, g.share, g.step),
                "chunk at {}",
                ch.start
            );
        }
        // the second series starts afresh; its second chunk has 15 rows after its first
        // behind it, one of them no trade
        assert_eq!(plan.chunks[3].grid_n, 0);
        assert_eq!(plan.chunks[4].grid_n, 14);
        assert!(plan.chunks[2].grid_share > 0.2 && plan.chunks[2].grid_step > 0.009);
    }

    #[test]
    fn handoffs_rerun_only_where_states_differ() {
        let opts = GpuOptions {
            chunk_len: 16,
            ..Default::default()
        };
        let mut plan = Plan::new(&[0, 48], |_| 0, &opts).expect("plan");
        let mut st = vec![0f32; 3 * STATE_STRIDE];
        for c in 0..3 {
            for j in 0..NS {
                st[c * STATE_STRIDE + NS + j] = 1.0 / 18.0;
                st[c * STATE_STRIDE + 2 * NS + j] = 1.0 / 18.0;
            }
        }
        st[2 * STATE_STRIDE + NS + 4] += 1e-3;
        assert_eq!(plan.check_handoffs(&mut st, 1e-5), 1);
        assert_eq!(
            plan.chunks.iter().map(|c| c.mode).collect::<Vec<_>>(),
            [0, 0, 2]
        );
        assert_eq!(
            st[2 * STATE_STRIDE + 4],
            1.0 / 18.0,
            "seeded from chunk 1's end"
        );
    }

    #[test]
    fn batches_respect_the_row_limit_and_name_a_series_too_long() {
        let b = batches(&[0, 5, 9, 20, 22], 11).expect("fits");
        assert_eq!(b, vec![0..2, 2..3, 3..4]);
        let e = batches(&[0, 5, 30], 11).expect_err("series of 25 rows");
        assert!(e.to_string().contains("25"), "{e}");
    }
}
