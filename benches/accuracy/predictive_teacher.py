#!/usr/bin/env python3
"""A teacher for the ensemble's weights that the model does not write, tried offline: the
pool's per-dimension weights fitted (in-sample, no labels) to the one-step predictive log-score
— each bar's emission likelihoods under the model, weighted by the pool's posterior of the bar
before moved one step by the model's transitions — then scored against the true labels
beside the HMM alone and the causal ensemble: raw accuracy (volatility, trend, structure, all
18), then the mean probability of the chosen state per dimension (what the pool says).

    cargo build --release -p datasets --example member_probs
    WANDER=0.4 python3 benches/accuracy/predictive_teacher.py 10000 102700 102710   # BARS FIRST_SEED END_SEED

Needs numpy, pandas and scipy. `accuracy/README.md`, "Session 30", has what it found.
"""
import io, os, subprocess, sys
import numpy as np, pandas as pd
from scipy.optimize import minimize
exe = os.environ.get("CARGO_TARGET_DIR", "/tmp/v3-target") + "/release/examples/member_probs"
bars = int(sys.argv[1]); s0, s1 = int(sys.argv[2]), int(sys.argv[3])
M = ["hmm", "threshold", "kalman", "jump", "changepoint", "hmm_averaged"]
CELLS = ["v_low", "v_med", "v_high", "d_down", "d_neutral", "d_up", "s_trend", "s_mr"]
DS = [slice(0, 3), slice(3, 6), slice(6, 8)]
env = dict(os.environ, PREDICTIVE="1")
series = []
for sd in range(s0, s1):
    df = pd.read_csv(io.StringIO(subprocess.run([exe, str(bars), str(sd)], capture_output=True, text=True, check=True, env=env).stdout))
    logs = np.stack([np.nan_to_num(np.log(df[[f"{m}_{c}" for c in CELLS]].to_numpy()), nan=0.0) for m in M], 1)  # T x M x 8
    ens = df[[f"ensemble_{c}" for c in CELLS]].to_numpy()
    lb = df[[f"lb{j}" for j in range(18)]].to_numpy()
    A = [df[[f"av{j}" for j in range(9)]].to_numpy().reshape(-1, 3, 3), df[[f"ad{j}" for j in range(9)]].to_numpy().reshape(-1, 3, 3), df[[f"as{j}" for j in range(4)]].to_numpy().reshape(-1, 2, 2)]
    truth = df[["truth_v", "truth_d", "truth_s"]].to_numpy()
    series.append((logs, ens, lb, A, truth))

def pooled(logs, W):  # W: 3 x M -> T x 8 probabilities
    out = []
    for d, sl in enumerate(DS):
        z = np.einsum("tmk,m->tk", logs[:, :, sl], W[d])
        z -= z.max(1, keepdims=True); p = np.exp(z); p /= p.sum(1, keepdims=True)
        out.append(p)
    return out

def score(W):
    tot = 0.0; n = 0
    for logs, ens, lb, A, truth in series:
        p = pooled(logs, W)
        q = [np.einsum("tij,ti->tj", A[d][1:], p[d][:-1]) for d in range(3)]
        joint = np.einsum("ta,tb,tc->tabc", q[0], q[1], q[2]).reshape(-1, 18)
        l = lb[1:]; mx = l.max(1, keepdims=True)
        tot += np.sum(np.log(np.sum(joint * np.exp(l - mx), 1)) + mx[:, 0]); n += len(l)
    return tot / n

def acc(W=None):
    """Accuracy (volatility, trend, structure, all 18), then the mean probability of the
    chosen state per dimension (said: calibrated where it equals the accuracy)."""
    hits = np.zeros(4); said = np.zeros(3); n = 0
    for logs, ens, lb, A, truth in series:
        if W is None:
            p = [ens[:, sl] for sl in DS]
        else:
            p = pooled(logs, W)
        lab = np.stack([p[d].argmax(1) for d in range(3)], 1)
        h = lab == truth
        hits[:3] += h.sum(0); hits[3] += h.all(1).sum(); n += len(truth)
        said += [p[d].max(1).sum() for d in range(3)]
    return np.round(np.concatenate([hits / n, said / n]), 4)

hmm = np.zeros((3, 6)); hmm[:, 0] = 1.0
print("ensemble (causal)  ", acc(None))
print("hmm alone          ", acc(hmm), "score", round(score(hmm), 5))
res = minimize(lambda w: -score(w.reshape(3, 6)), hmm.ravel(), method="L-BFGS-B", bounds=[(-1, 3)] * 18, options={"maxiter": 60})
W = res.x.reshape(3, 6)
print("predictive-fitted  ", acc(W), "score", round(score(W), 5))
for d, name in enumerate(["vol", "trend", "struct"]):
    print(f"  {name}: " + " ".join(f"{m}={w:.2f}" for m, w in zip(M, W[d])))
