// volume_scan_f32: the slow log-volume average across chunk boundaries, exactly.
// pass 0: states[c·54] = number of valid volumes in chunk c.
// pass 1: with chunks[c].vol_n = valid volumes before the chunk, the chunk's average update
//         as an affine map avg_end = m·avg_start + a: states[c·54] = m, states[c·54 + 1] = a
//         (averages of ln(v / vol_ref), as in obs_update).
// The host composes the maps per series (regime-kernels/src/plan.rs).

@compute @workgroup_size(64)
fn volume_scan_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = chunk_index(gid, nwg);
    if (c >= info.n_chunks) {
        return;
    }
    let ch = chunks[c];
    if (info.pass_index == 0u) {
        var count = 0u;
        for (var i = ch.start; i < ch.start + ch.len; i++) {
            let v = col(4u, i);
            if (v > 0.0 && is_finite(v)) {
                count++;
            }
        }
        states[c * STATE_STRIDE] = f32(count);
        return;
    }
    var m = 1.0;
    var a = 0.0;
    var k = ch.vol_n;
    for (var i = ch.start; i < ch.start + ch.len; i++) {
        let v = col(4u, i);
        if (v > 0.0 && is_finite(v)) {
            k++;
            let w = 1.0 / min(f32(k), VOLUME_SPAN);
            m = (1.0 - w) * m;
            a = (1.0 - w) * a + w * ln_ratio(v, ch.vol_ref);
        }
    }
    states[c * STATE_STRIDE] = m;
    states[c * STATE_STRIDE + 1u] = a;
}
