// detect_f32: features, emission and the forward filter fused, one thread per chunk (OHLCV
// in, eight probabilities and the regime id out). Warm-up and hand-off as in filter_f32;
// the extractor starts from the exact state of the first row it reads.

@compute @workgroup_size(64)
fn detect_f32(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
    var from_chunk = ch;
    if (ch.mode == 2u) {
        alpha = load_seed(c);
        started = true;
    } else {
        from_chunk = chunks[ch.warm_chunk];
    }
    var st = obs_state_at(from_chunk);
    for (var i = from_chunk.start; i < ch.start; i++) {
        let o = obs_update(&st, i);
        alpha = filter_step(alpha, started, log_emission(o, ch.param), ch.param);
        started = true;
    }
    save_state(c, 1u, alpha);
    for (var i = ch.start; i < ch.start + ch.len; i++) {
        let o = obs_update(&st, i);
        alpha = filter_step(alpha, started, log_emission(o, ch.param), ch.param);
        started = true;
        write_posterior(i, alpha);
    }
    save_state(c, 2u, alpha);
}
