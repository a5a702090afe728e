// emission_f32: 18 log-likelihoods per row from the five channels (src = features, row-major).
extern "C" __global__ void emission_f32(const float* src, const Chunk* chunks, const float* params,
                                        float* out_f, u32 n_chunks) {
    u32 c = chunk_index();
    if (c >= n_chunks) return;
    Chunk ch = chunks[c];
    const float* P = params + (size_t)ch.param * PARAM_STRIDE;
    float o[5], ll[18];
    for (u32 i = ch.start; i < ch.start + ch.len; i++) {
        for (u32 k = 0; k < N_OBS; k++) o[k] = src[(size_t)i * N_OBS + k];
        log_emission(o, P, ll);
        for (u32 j = 0; j < NS; j++) out_f[(size_t)i * NS + j] = ll[j];
    }
}
