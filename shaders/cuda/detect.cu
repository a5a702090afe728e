// detect_f32: features, emission and the forward filter fused, one thread per chunk (OHLCV in,
// eight probabilities and the regime id out). Warm-up and hand-off as in filter_f32.
extern "C" __global__ void detect_f32(const float* src, const Chunk* chunks, const float* params,
                                      float* states, float* out_f, u32* out_u, u32 n_rows,
                                      u32 n_chunks) {
    u32 c = chunk_index();
    if (c >= n_chunks) return;
    Chunk ch = chunks[c];
    if (ch.mode == 0) return;
    const float* P = params + (size_t)ch.param * PARAM_STRIDE;
    float alpha[18], ll[18], o[5];
    bool started = false;
    Chunk from = ch;
    if (ch.mode == 2) {
        load_seed(states, c, alpha);
        started = true;
    } else {
        uniform_state(alpha);
        from = chunks[ch.warm_chunk];
    }
    ObsState st = obs_state_at(src, n_rows, from);
    for (u32 i = from.start; i < ch.start; i++) {
        obs_update(&st, src, n_rows, i, o);
        log_emission(o, P, ll);
        filter_step(alpha, started, ll, P);
        started = true;
    }
    save_state(states, c, 1, alpha);
    for (u32 i = ch.start; i < ch.start + ch.len; i++) {
        obs_update(&st, src, n_rows, i, o);
        log_emission(o, P, ll);
        filter_step(alpha, started, ll, P);
        started = true;
        write_posterior(i, alpha, out_f, out_u);
    }
    save_state(states, c, 2, alpha);
}
