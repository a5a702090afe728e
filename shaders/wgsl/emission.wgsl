// emission_f32: 18 log-likelihoods per row from the five channels (src = features, row-major).

@compute @workgroup_size(64)
fn emission_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = chunk_index(gid, nwg);
    if (c >= info.n_chunks) {
        return;
    }
    let ch = chunks[c];
    for (var i = ch.start; i < ch.start + ch.len; i++) {
        var o: array<f32, 5>;
        for (var k = 0u; k < N_OBS; k++) {
            o[k] = src[i * N_OBS + k];
        }
        let ll = log_emission(o, ch.param);
        for (var j = 0u; j < NS; j++) {
            out_f[i * NS + j] = ll[j];
        }
    }
}
