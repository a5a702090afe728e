// features_f32: the five observation channels of every row, one thread per chunk, started
// from the exact extractor state at the chunk's first row (no warm-up needed).

@compute @workgroup_size(64)
fn features_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = chunk_index(gid, nwg);
    if (c >= info.n_chunks) {
        return;
    }
    let ch = chunks[c];
    var st = obs_state_at(ch);
    for (var i = ch.start; i < ch.start + ch.len; i++) {
        let o = obs_update(&st, i);
        for (var k = 0u; k < N_OBS; k++) {
            out_f[i * N_OBS + k] = o[k];
        }
    }
}
