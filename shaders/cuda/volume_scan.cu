// volume_scan_f32: the slow log-volume average across chunk boundaries, exactly.
// pass 0: states[c·54] = number of valid volumes in chunk c.
// pass 1: with chunks[c].vol_n = valid volumes before the chunk, the chunk's update as an
//         affine map avg_end = m·avg_start + a: states[c·54] = m, states[c·54 + 1] = a.
extern "C" __global__ void volume_scan_f32(const float* src, const Chunk* chunks, float* states,
                                           u32 n_rows, u32 n_chunks, u32 pass) {
    u32 c = chunk_index();
    if (c >= n_chunks) return;
    Chunk ch = chunks[c];
    if (pass == 0) {
        u32 count = 0;
        for (u32 i = ch.start; i < ch.start + ch.len; i++) {
            float v = col(src, n_rows, 4, i);
            if (v > 0.0f && is_finite_f(v)) count++;
        }
        states[(size_t)c * STATE_STRIDE] = (float)count;
        return;
    }
    float m = 1.0f, a = 0.0f;
    u32 k = ch.vol_n;
    for (u32 i = ch.start; i < ch.start + ch.len; i++) {
        float v = col(src, n_rows, 4, i);
        if (v > 0.0f && is_finite_f(v)) {
            k++;
            float w = 1.0f / fminf((float)k, VOLUME_SPAN);
            m = (1.0f - w) * m;
            a = (1.0f - w) * a + w * ln_ratio(v, ch.vol_ref);
        }
    }
    states[(size_t)c * STATE_STRIDE] = m;
    states[(size_t)c * STATE_STRIDE + 1] = a;
}
