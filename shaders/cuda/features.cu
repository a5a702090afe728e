// features_f32: the five observation channels of every row, one thread per chunk, from the
// exact extractor state at the chunk's first row.
extern "C" __global__ void features_f32(const float* src, const Chunk* chunks, float* out_f,
                                        u32 n_rows, u32 n_chunks) {
    u32 c = chunk_index();
    if (c >= n_chunks) return;
    Chunk ch = chunks[c];
    ObsState st = obs_state_at(src, n_rows, ch);
    float o[5];
    for (u32 i = ch.start; i < ch.start + ch.len; i++) {
        obs_update(&st, src, n_rows, i, o);
        for (u32 k = 0; k < N_OBS; k++) out_f[(size_t)i * N_OBS + k] = o[k];
    }
}
