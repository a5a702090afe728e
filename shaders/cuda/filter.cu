// filter_f32: the forward filter over log-likelihoods (src = 18 per row), one thread per
// chunk. Mode 1 warms up from the uniform state over the chunks before it; mode 2 starts
// from the seed the host checked. States before the first and after the last output row
// are saved so the host can verify every hand-off.
extern "C" __global__ void filter_f32(const float* src, const Chunk* chunks, const float* params,
                                      float* states, float* out_f, u32* out_u, u32 n_chunks) {
    u32 c = chunk_index();
    if (c >= n_chunks) return;
    Chunk ch = chunks[c];
    if (ch.mode == 0) return;
    const float* P = params + (size_t)ch.param * PARAM_STRIDE;
    float alpha[18], ll[18];
    bool started = false;
    u32 begin = ch.start;
    if (ch.mode == 2) {
        load_seed(states, c, alpha);
        started = true;
    } else {
        uniform_state(alpha);
        begin = chunks[ch.warm_chunk].start;
    }
    for (u32 i = begin; i < ch.start; i++) {
        for (u32 j = 0; j < NS; j++) ll[j] = src[(size_t)i * NS + j];
        filter_step(alpha, started, ll, P);
        started = true;
    }
    save_state(states, c, 1, alpha);
    for (u32 i = ch.start; i < ch.start + ch.len; i++) {
        for (u32 j = 0; j < NS; j++) ll[j] = src[(size_t)i * NS + j];
        filter_step(alpha, started, ll, P);
        started = true;
        write_posterior(i, alpha, out_f, out_u);
    }
    save_state(states, c, 2, alpha);
}
