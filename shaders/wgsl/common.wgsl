// Shared by every regime kernel (prepended to each kernel's source at load time).
// The computation is the CPU reference's (regime-core/src/backend.rs) in f32:
// the same window edges, the same NaN policy, the same order of the filter's steps.
// WGSL does not promise IEEE NaN semantics, so NaN is tested and made by its bits.

const NS: u32 = 18u;
const N_OBS: u32 = 5u;
const N_PROBS: u32 = 8u;
const PARAM_STRIDE: u32 = 64u;
// Per chunk in `states`: seed (18) | state before the first output row (18) | state after the last (18).
const STATE_STRIDE: u32 = 54u;
const VOLUME_SPAN: f32 = 1000.0;
// model::PriceGrid's constants
const GRID_SPAN: f32 = 1000.0;
const GRID_RELAX: f32 = 0.001;
const GRID_MIN_RETURNS: u32 = 50u;
const GRID_ZERO_SHARE: f32 = 0.1;
const WG: u32 = 64u;

struct Chunk {
    start: u32,
    len: u32,
    series_start: u32,
    warm_chunk: u32,
    param: u32,
    mode: u32,      // 0 skip, 1 warm up from the warm chunk, 2 start from the seed
    vol_n: u32,     // valid volumes before `start` in the series
    vol_avg: f32,   // slow log-volume average at `start`, relative to ln(vol_ref)
    vol_ref: f32,   // the series' first valid volume: averages are kept relative to it
    grid_n: u32,    // the price grid at `start` (model::PriceGrid): returns seen,
    grid_share: f32, // their running share exactly 0,
    grid_step: f32, // the least non-zero |return|, relaxed
}

struct Meta {
    n_rows: u32,
    n_chunks: u32,
    pass_index: u32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> chunks: array<Chunk>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> states: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_f: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_u: array<u32>;
@group(0) @binding(6) var<uniform> info: Meta;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn nan() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// ln(a / b) for positive a, b; near 1 through 2·atanh((a − b)/(a + b)) (a − b is exact
// there), so a small return keeps its relative precision whatever the device's log does.
// Exactly antisymmetric, ln_ratio(b, a) = −ln_ratio(a, b): a bar whose high and low are its
// open and close has an excess range of exactly 0 (log(a / b) and log(b / a) differ by an
// ulp, ~1e-8 after a 4% move, read as a range of e^−18).
fn ln_ratio(a: f32, b: f32) -> f32 {
    let y = (a - b) / (a + b);
    if (abs(y) < 0.02) {
        let y2 = y * y;
        return 2.0 * y * (1.0 + y2 * (1.0 / 3.0 + y2 * (0.2 + y2 * (1.0 / 7.0))));
    }
    if (a >= b) {
        return log(a / b);
    }
    return -log(b / a);
}

fn chunk_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// ---- features (the CPU's ObsExtractor) ----

struct ObsState {
    prev_close: f32,
    prev_r: f32,
    started: bool,
    vol_avg: f32,
    vol_n: u32,
    vol_ref: f32,
    grid_n: u32,
    grid_share: f32,
    grid_step: f32,
}

fn col(k: u32, i: u32) -> f32 {
    return src[k * info.n_rows + i];
}

// Row i (after its series' first) is a bar with no trade: open, high, low and close all the
// previous close, no volume (ObsExtractor::update): all its channels are absent.
fn no_trade(i: u32) -> bool {
    let c = col(3u, i);
    let v = col(4u, i);
    return flat_no_volume(col(0u, i), col(1u, i), col(2u, i), c, v) && c == col(3u, i - 1u);
}

// Open, high and low present and equal to the close, and no volume (NaN-safe: WGSL may
// assume no NaN in comparisons, so NaNs are tested by their bits).
fn flat_no_volume(o: f32, h: f32, l: f32, c: f32, v: f32) -> bool {
    return single_print(o, h, l, c) && (is_nan(v) || v <= 0.0);
}

// Open, high and low present and equal to the close: a bar made of one print, whose open
// is no gap of its own (ObsExtractor::update).
fn single_print(o: f32, h: f32, l: f32, c: f32) -> bool {
    return !is_nan(o) && !is_nan(h) && !is_nan(l) && o == c && h == c && l == c;
}

// The extractor's state just before row `ch.start`.
fn obs_state_at(ch: Chunk) -> ObsState {
    var st: ObsState;
    st.vol_avg = ch.vol_avg;
    st.vol_n = ch.vol_n;
    st.vol_ref = ch.vol_ref;
    st.grid_n = ch.grid_n;
    st.grid_share = ch.grid_share;
    st.grid_step = ch.grid_step;
    st.prev_r = nan();
    st.prev_close = 1.0;
    st.started = false;
    if (ch.start > ch.series_start) {
        st.started = true;
        st.prev_close = col(3u, ch.start - 1u);
        if (ch.start - 1u > ch.series_start && !no_trade(ch.start - 1u)) {
            st.prev_r = ln_ratio(col(3u, ch.start - 1u), col(3u, ch.start - 2u));
        }
    }
    return st;
}

// model::PriceGrid::update (the host's Plan::set_grid_states runs the same in f32).
fn grid_update(st: ptr<function, ObsState>, r: f32) {
    if (is_nan(r)) {
        return;
    }
    (*st).grid_n = (*st).grid_n + 1u;
    let a = 1.0 / min(f32((*st).grid_n), GRID_SPAN);
    let zero = select(0.0, 1.0, r == 0.0);
    (*st).grid_share = (*st).grid_share + a * (zero - (*st).grid_share);
    let m = abs(r);
    let relaxed = (*st).grid_step * (1.0 + GRID_RELAX);
    if (m > 0.0 && ((*st).grid_step == 0.0 || m < relaxed)) {
        (*st).grid_step = m;
    } else {
        (*st).grid_step = relaxed;
    }
}

// model::PriceGrid::zero_excess: whether the grid is coarse.
fn grid_coarse(st: ObsState) -> bool {
    return st.grid_n >= GRID_MIN_RETURNS && st.grid_share >= GRID_ZERO_SHARE && st.grid_step > 0.0;
}

fn obs_update(st: ptr<function, ObsState>, i: u32) -> array<f32, 5> {
    let o = col(0u, i);
    let h = col(1u, i);
    let l = col(2u, i);
    let c = col(3u, i);
    let v = col(4u, i);
    if ((*st).started && c == (*st).prev_close && flat_no_volume(o, h, l, c, v)) {
        (*st).prev_r = nan();
        return array<f32, 5>(nan(), nan(), nan(), nan(), nan());
    }
    var r = nan();
    if ((*st).started) {
        r = ln_ratio(c, (*st).prev_close);
    }
    var gap = nan();
    var lr = nan();
    if (!(is_nan(o) && is_nan(h) && is_nan(l))) {
        if ((*st).started && !single_print(o, h, l, c)) {
            let g = ln_ratio(o, (*st).prev_close);
            if (abs(g) > 1e-12) {
                gap = g;
            }
        }
        let excess = ln_ratio(h, l) - abs(ln_ratio(c, o));
        if (excess > 1e-10) {
            lr = log(excess);
        } else if (!is_nan(excess) && !single_print(o, h, l, c) && grid_coarse(*st)) {
            // on a coarse grid a zero excess range is half a step (model::PriceGrid)
            lr = log(0.5 * (*st).grid_step);
        }
    }
    var rel = nan();
    if (v > 0.0 && is_finite(v)) {
        // ln(v / vol_ref): small numbers keep f32 precision (ln v itself is ~14)
        let lv = ln_ratio(v, (*st).vol_ref);
        rel = 0.0;
        if ((*st).vol_n > 0u) {
            rel = lv - (*st).vol_avg;
        }
        (*st).vol_n = (*st).vol_n + 1u;
        let a = 1.0 / min(f32((*st).vol_n), VOLUME_SPAN);
        (*st).vol_avg = (*st).vol_avg + a * (lv - (*st).vol_avg);
    }
    grid_update(st, r);
    let out = array<f32, 5>(r, (*st).prev_r, gap, lr, rel);
    (*st).prev_close = c;
    (*st).prev_r = r;
    (*st).started = true;
    return out;
}

// ---- emission (Compiled::log_emission; the packing of Compiled::pack_f32) ----

fn prm(p: u32, k: u32) -> f32 {
    return params[p * PARAM_STRIDE + k];
}

fn log_emission(o: array<f32, 5>, p: u32) -> array<f32, 18> {
    var lv: array<f32, 3>;
    for (var v = 0u; v < 3u; v++) {
        var acc = 0.0;
        if (!is_nan(o[2])) {
            // normal (slot 55 = 0) or Student t(5): Compiled::level_terms
            let q = prm(p, 20u + v) * o[2] * o[2];
            let m = prm(p, 55u);
            acc += prm(p, 17u + v) + select(m * log(1.0 + q), q, m == 0.0);
        }
        if (!is_nan(o[3])) {
            // normal (slot 27 < 0) or log-gamma (slot 27 > 0): Compiled::level_terms
            let e = o[3] - prm(p, 23u + v);
            let k = prm(p, 27u);
            acc += prm(p, 26u) + select(k * e - exp(e), k * e * e, k < 0.0);
        }
        if (!is_nan(o[4])) {
            let e = o[4] - prm(p, 28u + v);
            acc += prm(p, 31u) + prm(p, 32u) * e * e;
        }
        lv[v] = acc;
    }
    let mx = max(lv[0], max(lv[1], lv[2]));
    let has_r = !is_nan(o[0]);
    let has_prev = !is_nan(o[1]);
    var ll: array<f32, 18>;
    for (var v = 0u; v < 3u; v++) {
        let base = lv[v] - mx;
        if (!has_r) {
            for (var k = 0u; k < 6u; k++) {
                ll[v * 6u + k] = base;
            }
            continue;
        }
        let is = prm(p, v);
        let bv = base + prm(p, 3u + v);
        for (var d = 0u; d < 3u; d++) {
            let mu = prm(p, 6u + v * 3u + d);
            for (var s = 0u; s < 2u; s++) {
                var e = o[0] - mu;
                if (has_prev) {
                    e = o[0] - mu - prm(p, 56u + v * 2u + s) * (o[1] - mu);
                }
                let z = e * is;
                ll[v * 6u + d * 2u + s] = bv - 3.0 * log(1.0 + z * z * (1.0 / 3.0));
            }
        }
    }
    return ll;
}

// ---- forward filter ----

fn predict(alpha: array<f32, 18>, p: u32) -> array<f32, 18> {
    var t1: array<f32, 18>;
    for (var vd = 0u; vd < 9u; vd++) {
        let a0 = alpha[vd * 2u];
        let a1 = alpha[vd * 2u + 1u];
        t1[vd * 2u] = a0 * prm(p, 51u) + a1 * prm(p, 53u);
        t1[vd * 2u + 1u] = a0 * prm(p, 52u) + a1 * prm(p, 54u);
    }
    var t2: array<f32, 18>;
    for (var v = 0u; v < 3u; v++) {
        for (var s = 0u; s < 2u; s++) {
            let x0 = t1[v * 6u + s];
            let x1 = t1[v * 6u + 2u + s];
            let x2 = t1[v * 6u + 4u + s];
            for (var d2 = 0u; d2 < 3u; d2++) {
                t2[v * 6u + d2 * 2u + s] = x0 * prm(p, 42u + d2) + x1 * prm(p, 45u + d2) + x2 * prm(p, 48u + d2);
            }
        }
    }
    var pred: array<f32, 18>;
    for (var k = 0u; k < 6u; k++) {
        let x0 = t2[k];
        let x1 = t2[6u + k];
        let x2 = t2[12u + k];
        for (var v2 = 0u; v2 < 3u; v2++) {
            pred[v2 * 6u + k] = x0 * prm(p, 33u + v2) + x1 * prm(p, 36u + v2) + x2 * prm(p, 39u + v2);
        }
    }
    return pred;
}

fn uniform_state() -> array<f32, 18> {
    var a: array<f32, 18>;
    for (var j = 0u; j < NS; j++) {
        a[j] = 1.0 / 18.0;
    }
    return a;
}

fn filter_step(alpha: array<f32, 18>, started: bool, ll: array<f32, 18>, p: u32) -> array<f32, 18> {
    var pred = uniform_state();
    if (started) {
        pred = predict(alpha, p);
    }
    var mx = ll[0];
    for (var j = 1u; j < NS; j++) {
        mx = max(mx, ll[j]);
    }
    var out: array<f32, 18>;
    var z = 0.0;
    for (var j = 0u; j < NS; j++) {
        let x = pred[j] * exp(ll[j] - mx);
        out[j] = x;
        z += x;
    }
    if (z > 0.0 && is_finite(z)) {
        let inv = 1.0 / z;
        for (var j = 0u; j < NS; j++) {
            out[j] *= inv;
        }
    } else {
        var zp = 0.0;
        for (var j = 0u; j < NS; j++) {
            zp += pred[j];
        }
        for (var j = 0u; j < NS; j++) {
            out[j] = pred[j] / zp;
        }
    }
    return out;
}

fn argmax3(a: f32, b: f32, c: f32) -> u32 {
    var k = 0u;
    var m = a;
    if (b > m) {
        k = 1u;
        m = b;
    }
    if (c > m) {
        k = 2u;
    }
    return k;
}

fn write_posterior(i: u32, alpha: array<f32, 18>) {
    var pv = array<f32, 3>(0.0, 0.0, 0.0);
    var pd = array<f32, 3>(0.0, 0.0, 0.0);
    var ps = array<f32, 2>(0.0, 0.0);
    for (var v = 0u; v < 3u; v++) {
        for (var d = 0u; d < 3u; d++) {
            for (var s = 0u; s < 2u; s++) {
                let a = alpha[v * 6u + d * 2u + s];
                pv[v] += a;
                pd[d] += a;
                ps[s] += a;
            }
        }
    }
    let b = i * N_PROBS;
    out_f[b] = pv[0];
    out_f[b + 1u] = pv[1];
    out_f[b + 2u] = pv[2];
    out_f[b + 3u] = pd[0];
    out_f[b + 4u] = pd[1];
    out_f[b + 5u] = pd[2];
    out_f[b + 6u] = ps[0];
    out_f[b + 7u] = ps[1];
    var sk = 0u;
    if (ps[1] > ps[0]) {
        sk = 1u;
    }
    out_u[i] = argmax3(pv[0], pv[1], pv[2]) * 6u + argmax3(pd[0], pd[1], pd[2]) * 2u + sk;
}

fn save_state(c: u32, slot: u32, alpha: array<f32, 18>) {
    for (var j = 0u; j < NS; j++) {
        states[c * STATE_STRIDE + slot * NS + j] = alpha[j];
    }
}

fn load_seed(c: u32) -> array<f32, 18> {
    var a: array<f32, 18>;
    for (var j = 0u; j < NS; j++) {
        a[j] = states[c * STATE_STRIDE + j];
    }
    return a;
}
