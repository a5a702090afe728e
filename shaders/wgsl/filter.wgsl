// filter_f32: the forward filter over log-likelihoods (src = 18 per row), one thread per
// chunk. Mode 1 warms up from the uniform state over the chunks before it (from
// chunks[c].warm_chunk); mode 2 starts from the seed the host checked. The state before the
// first output row and after the last are saved so the host can verify every hand-off.

@compute @workgroup_size(64)
fn filter_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = chunk_index(gid, nwg);
    if (c >= info.n_chunks) {
        return;
    }
    let ch = chunks[c];
    if (ch.mode == 0u) {
        return;
    }
    var alpha = uniform_state();
    var started = false;
    var begin = ch.start;
    if (ch.mode == 2u) {
        alpha = load_seed(c);
        started = true;
    } else {
        begin = chunks[ch.warm_chunk].start;
    }
    var ll: array<f32, 18>;
    for (var i = begin; i < ch.start; i++) {
        for (var j = 0u; j < NS; j++) {
            ll[j] = src[i * NS + j];
        }
        alpha = filter_step(alpha, started, ll, ch.param);
        started = true;
    }
    save_state(c, 1u, alpha);
    for (var i = ch.start; i < ch.start + ch.len; i++) {
        for (var j = 0u; j < NS; j++) {
            ll[j] = src[i * NS + j];
        }
        alpha = filter_step(alpha, started, ll, ch.param);
        started = true;
        write_posterior(i, alpha);
    }
    save_state(c, 2u, alpha);
}
