// Shared by every regime kernel (prepended to each kernel's source before NVRTC compiles it).
// The computation is the CPU reference's (regime-core/src/backend.rs) in f32, line for line
// the same as shaders/wgsl/common.wgsl: the same window edges, NaN policy and step order.

#define NS 18u
#define N_OBS 5u
#define N_PROBS 8u
#define PARAM_STRIDE 64u
// Per chunk in `states`: seed (18) | state before the first output row (18) | after the last (18).
#define STATE_STRIDE 54u
#define VOLUME_SPAN 1000.0f
// model::PriceGrid's constants
#define GRID_SPAN 1000.0f
#define GRID_RELAX 0.001f
#define GRID_MIN_RETURNS 50u
#define GRID_ZERO_SHARE 0.1f

typedef unsigned int u32;

struct Chunk {
    u32 start;
    u32 len;
    u32 series_start;
    u32 warm_chunk;
    u32 param;
    u32 mode;      // 0 skip, 1 warm up from the warm chunk, 2 start from the seed
    u32 vol_n;     // valid volumes before `start` in the series
    float vol_avg; // slow log-volume average at `start`, relative to ln(vol_ref)
    float vol_ref; // the series' first valid volume: averages are kept relative to it
    u32 grid_n;       // the price grid at `start` (model::PriceGrid): returns seen,
    float grid_share; // their running share exactly 0,
    float grid_step;  // the least non-zero |return|, relaxed
};

__device__ __forceinline__ bool is_nan_f(float x) { return x != x; }
__device__ __forceinline__ bool is_finite_f(float x) { return isfinite(x); }
__device__ __forceinline__ float nan_f() { return __int_as_float(0x7fc00000); }

// ln(a / b) for positive a, b; near 1 through 2·atanh((a − b)/(a + b)); exactly
// antisymmetric, so a bar whose high and low are its open and close has an excess range of 0.
__device__ __forceinline__ float ln_ratio(float a, float b) {
    float y = (a - b) / (a + b);
    if (fabsf(y) < 0.02f) {
        float y2 = y * y;
        return 2.0f * y * (1.0f + y2 * (1.0f / 3.0f + y2 * (0.2f + y2 * (1.0f / 7.0f))));
    }
    return a >= b ? logf(a / b) : -logf(b / a);
}

__device__ __forceinline__ u32 chunk_index() {
    return blockIdx.x * blockDim.x + threadIdx.x;
}

// ---- features (the CPU's ObsExtractor); src holds the five columns one after another ----

struct ObsState {
    float prev_close;
    float prev_r;
    bool started;
    float vol_avg;
    u32 vol_n;
    float vol_ref;
    u32 grid_n;
    float grid_share;
    float grid_step;
};

__device__ __forceinline__ float col(const float* src, u32 n_rows, u32 k, u32 i) {
    return src[(size_t)k * n_rows + i];
}

// Open, high and low equal to the close: a bar made of one print, whose open is no gap of
// its own (ObsExtractor::update; false when they are absent, NaN).
__device__ __forceinline__ bool single_print(float o, float h, float l, float c) {
    return o == c && h == c && l == c;
}

// One print and no volume.
__device__ __forceinline__ bool flat_no_volume(float o, float h, float l, float c, float v) {
    return single_print(o, h, l, c) && !(v > 0.0f);
}

// Row i (after its series' first) is a bar with no trade: open, high, low and close all the
// previous close, no volume (ObsExtractor::update): all its channels are absent.
__device__ bool no_trade(const float* src, u32 n_rows, u32 i) {
    float c = col(src, n_rows, 3, i);
    return flat_no_volume(col(src, n_rows, 0, i), col(src, n_rows, 1, i), col(src, n_rows, 2, i), c,
                          col(src, n_rows, 4, i)) &&
           c == col(src, n_rows, 3, i - 1);
}

__device__ ObsState obs_state_at(const float* src, u32 n_rows, Chunk ch) {
    ObsState st;
    st.vol_avg = ch.vol_avg;
    st.vol_n = ch.vol_n;
    st.vol_ref = ch.vol_ref;
    st.grid_n = ch.grid_n;
    st.grid_share = ch.grid_share;
    st.grid_step = ch.grid_step;
    st.prev_r = nan_f();
    st.prev_close = 1.0f;
    st.started = false;
    if (ch.start > ch.series_start) {
        st.started = true;
        st.prev_close = col(src, n_rows, 3, ch.start - 1);
        if (ch.start - 1 > ch.series_start && !no_trade(src, n_rows, ch.start - 1)) {
            st.prev_r = ln_ratio(col(src, n_rows, 3, ch.start - 1), col(src, n_rows, 3, ch.start - 2));
        }
    }
    return st;
}

// model::PriceGrid::update (the host's Plan::set_grid_states runs the same in f32).
__device__ void grid_update(ObsState* st, float r) {
    if (is_nan_f(r)) return;
    st->grid_n += 1;
    float a = 1.0f / fminf((float)st->grid_n, GRID_SPAN);
    float zero = r == 0.0f ? 1.0f : 0.0f;
    st->grid_share = st->grid_share + a * (zero - st->grid_share);
    float m = fabsf(r);
    float relaxed = st->grid_step * (1.0f + GRID_RELAX);
    st->grid_step = (m > 0.0f && (st->grid_step == 0.0f || m < relaxed)) ? m : relaxed;
}

// model::PriceGrid::zero_excess: whether the grid is coarse.
__device__ __forceinline__ bool grid_coarse(const ObsState* st) {
    return st->grid_n >= GRID_MIN_RETURNS && st->grid_share >= GRID_ZERO_SHARE && st->grid_step > 0.0f;
}

__device__ void obs_update(ObsState* st, const float* src, u32 n_rows, u32 i, float o_out[5]) {
    float o = col(src, n_rows, 0, i);
    float h = col(src, n_rows, 1, i);
    float l = col(src, n_rows, 2, i);
    float c = col(src, n_rows, 3, i);
    float v = col(src, n_rows, 4, i);
    if (st->started && c == st->prev_close && flat_no_volume(o, h, l, c, v)) {
        st->prev_r = nan_f();
        for (int k = 0; k < 5; k++) o_out[k] = nan_f();
        return;
    }
    float r = nan_f();
    if (st->started) r = ln_ratio(c, st->prev_close);
    float gap = nan_f();
    float lr = nan_f();
    if (!(is_nan_f(o) && is_nan_f(h) && is_nan_f(l))) {
        if (st->started && !single_print(o, h, l, c)) {
            float g = ln_ratio(o, st->prev_close);
            if (fabsf(g) > 1e-12f) gap = g;
        }
        float excess = ln_ratio(h, l) - fabsf(ln_ratio(c, o));
        if (excess > 1e-10f) {
            lr = logf(excess);
        } else if (!is_nan_f(excess) && !single_print(o, h, l, c) && grid_coarse(st)) {
            // on a coarse grid a zero excess range is half a step (model::PriceGrid)
            lr = logf(0.5f * st->grid_step);
        }
    }
    float rel = nan_f();
    if (v > 0.0f && is_finite_f(v)) {
        // ln(v / vol_ref): small numbers keep f32 precision (ln v itself is ~14)
        float lv = ln_ratio(v, st->vol_ref);
        rel = 0.0f;
        if (st->vol_n > 0) rel = lv - st->vol_avg;
        st->vol_n += 1;
        float a = 1.0f / fminf((float)st->vol_n, VOLUME_SPAN);
        st->vol_avg = st->vol_avg + a * (lv - st->vol_avg);
    }
    grid_update(st, r);
    o_out[0] = r;
    o_out[1] = st->prev_r;
    o_out[2] = gap;
    o_out[3] = lr;
    o_out[4] = rel;
    st->prev_close = c;
    st->prev_r = r;
    st->started = true;
}

// ---- emission (Compiled::log_emission; the packing of Compiled::pack_f32) ----

__device__ void log_emission(const float o[5], const float* P, float ll[18]) {
    float lv[3];
    for (u32 v = 0; v < 3; v++) {
        float acc = 0.0f;
        if (!is_nan_f(o[2])) {
            // normal (P[55] = 0) or Student t(5): Compiled::level_terms
            float q = P[20 + v] * o[2] * o[2];
            acc += P[17 + v] + (P[55] == 0.0f ? q : P[55] * log1pf(q));
        }
        if (!is_nan_f(o[3])) {
            // normal (P[27] < 0) or log-gamma (P[27] > 0): Compiled::level_terms
            float e = o[3] - P[23 + v];
            acc += P[26] + (P[27] < 0.0f ? P[27] * e * e : P[27] * e - expf(e));
        }
        if (!is_nan_f(o[4])) {
            float e = o[4] - P[28 + v];
            acc += P[31] + P[32] * e * e;
        }
        lv[v] = acc;
    }
    float mx = fmaxf(lv[0], fmaxf(lv[1], lv[2]));
    bool has_r = !is_nan_f(o[0]);
    bool has_prev = !is_nan_f(o[1]);
    for (u32 v = 0; v < 3; v++) {
        float base = lv[v] - mx;
        if (!has_r) {
            for (u32 k = 0; k < 6; k++) ll[v * 6 + k] = base;
            continue;
        }
        float is = P[v];
        float bv = base + P[3 + v];
        for (u32 d = 0; d < 3; d++) {
            float mu = P[6 + v * 3 + d];
            for (u32 s = 0; s < 2; s++) {
                float e = has_prev ? o[0] - mu - P[56 + v * 2 + s] * (o[1] - mu) : o[0] - mu;
                float z = e * is;
                ll[v * 6 + d * 2 + s] = bv - 3.0f * logf(1.0f + z * z * (1.0f / 3.0f));
            }
        }
    }
}

// ---- forward filter ----

__device__ void predict(const float alpha[18], const float* P, float pred[18]) {
    float t1[18];
    for (u32 vd = 0; vd < 9; vd++) {
        float a0 = alpha[vd * 2], a1 = alpha[vd * 2 + 1];
        t1[vd * 2] = a0 * P[51] + a1 * P[53];
        t1[vd * 2 + 1] = a0 * P[52] + a1 * P[54];
    }
    float t2[18];
    for (u32 v = 0; v < 3; v++) {
        for (u32 s = 0; s < 2; s++) {
            float x0 = t1[v * 6 + s], x1 = t1[v * 6 + 2 + s], x2 = t1[v * 6 + 4 + s];
            for (u32 d2 = 0; d2 < 3; d2++)
                t2[v * 6 + d2 * 2 + s] = x0 * P[42 + d2] + x1 * P[45 + d2] + x2 * P[48 + d2];
        }
    }
    for (u32 k = 0; k < 6; k++) {
        float x0 = t2[k], x1 = t2[6 + k], x2 = t2[12 + k];
        for (u32 v2 = 0; v2 < 3; v2++)
            pred[v2 * 6 + k] = x0 * P[33 + v2] + x1 * P[36 + v2] + x2 * P[39 + v2];
    }
}

__device__ void uniform_state(float a[18]) {
    for (u32 j = 0; j < NS; j++) a[j] = 1.0f / 18.0f;
}

// alpha <- normalize(pred ⊙ exp(ll − max ll)); pred is uniform before the first step.
__device__ void filter_step(float alpha[18], bool started, const float ll[18], const float* P) {
    float pred[18];
    if (started) predict(alpha, P, pred);
    else uniform_state(pred);
    float mx = ll[0];
    for (u32 j = 1; j < NS; j++) mx = fmaxf(mx, ll[j]);
    float z = 0.0f;
    for (u32 j = 0; j < NS; j++) {
        float x = pred[j] * expf(ll[j] - mx);
        alpha[j] = x;
        z += x;
    }
    if (z > 0.0f && is_finite_f(z)) {
        float inv = 1.0f / z;
        for (u32 j = 0; j < NS; j++) alpha[j] *= inv;
    } else {
        float zp = 0.0f;
        for (u32 j = 0; j < NS; j++) zp += pred[j];
        for (u32 j = 0; j < NS; j++) alpha[j] = pred[j] / zp;
    }
}

__device__ __forceinline__ u32 argmax3(float a, float b, float c) {
    u32 k = 0;
    float m = a;
    if (b > m) { k = 1; m = b; }
    if (c > m) k = 2;
    return k;
}

__device__ void write_posterior(u32 i, const float alpha[18], float* out_f, u32* out_u) {
    float pv[3] = {0, 0, 0}, pd[3] = {0, 0, 0}, ps[2] = {0, 0};
    for (u32 v = 0; v < 3; v++)
        for (u32 d = 0; d < 3; d++)
            for (u32 s = 0; s < 2; s++) {
                float a = alpha[v * 6 + d * 2 + s];
                pv[v] += a;
                pd[d] += a;
                ps[s] += a;
            }
    float* o = out_f + (size_t)i * N_PROBS;
    o[0] = pv[0]; o[1] = pv[1]; o[2] = pv[2];
    o[3] = pd[0]; o[4] = pd[1]; o[5] = pd[2];
    o[6] = ps[0]; o[7] = ps[1];
    u32 sk = ps[1] > ps[0] ? 1 : 0;
    out_u[i] = argmax3(pv[0], pv[1], pv[2]) * 6 + argmax3(pd[0], pd[1], pd[2]) * 2 + sk;
}

__device__ void save_state(float* states, u32 c, u32 slot, const float alpha[18]) {
    for (u32 j = 0; j < NS; j++) states[(size_t)c * STATE_STRIDE + slot * NS + j] = alpha[j];
}

__device__ void load_seed(const float* states, u32 c, float alpha[18]) {
    for (u32 j = 0; j < NS; j++) alpha[j] = states[(size_t)c * STATE_STRIDE + j];
}
