#!/usr/bin/env python3
"""A teacher the model does not write, tried offline: the one-step predictive log-score — each
bar's emission likelihoods under the model, weighted by a posterior of the bar before moved one
step by the model's transitions. It needs no labels, so it can judge real bars too.

Synthetic series (`member_probs`, true labels known): the pool's per-dimension weights fitted
in-sample to that score, and a single temperature on the pooled volatility probabilities, scored
against the truth beside the HMM alone and the causal ensemble — raw accuracy (volatility,
trend, structure, all 18), then the mean probability of the chosen state per dimension (what
the pool says; calibrated where it equals the accuracy):

    cargo build --release -p datasets --example member_probs
    WANDER=0.4 python3 benches/accuracy/predictive_teacher.py 10000 102700 102710   # BARS FIRST_SEED END_SEED

Real bars (`pooled_rows`, one symbol of a file, no labels): the temperature per dimension that
the score asks of the pooled probabilities, and what it would gain (nats a bar):

    cargo build --release -p regime-server --example pooled_rows
    pooled_rows benches/accuracy/out/arch_SPX.csv SPX > spx.csv   # real_data.py writes the file
    python3 benches/accuracy/predictive_teacher.py --rows spx.csv

Needs numpy, pandas and scipy. `accuracy/README.md`, "Session 30", has what it found.
"""
import io, os, subprocess, sys
import numpy as np, pandas as pd
from scipy.optimize import minimize, minimize_scalar

M = ["hmm", "threshold", "kalman", "jump", "changepoint", "hmm_averaged"]
CELLS = ["v_low", "v_med", "v_high", "d_down", "d_neutral", "d_up", "s_trend", "s_mr"]
DS = [slice(0, 3), slice(3, 6), slice(6, 8)]


def predictive_columns(df):
    """Emission log-likelihoods (T x 18) and transition matrices per dimension."""
    lb = df[[f"lb{j}" for j in range(18)]].to_numpy()
    A = [df[[f"{k}{j}" for j in range(n * n)]].to_numpy().reshape(-1, n, n) for k, n in [("av", 3), ("ad", 3), ("as", 2)]]
    return lb, A


def score(p, lb, A):
    """Mean one-step predictive log-score of per-dimension posteriors p[d] (T x n_d)."""
    q = [np.einsum("tij,ti->tj", A[d][1:], p[d][:-1]) for d in range(3)]
    joint = np.einsum("ta,tb,tc->tabc", *q).reshape(-1, 18)
    l = lb[1:]
    mx = l.max(1, keepdims=True)
    return np.mean(np.log(np.sum(joint * np.exp(l - mx), 1)) + mx[:, 0])


def temper(p, t):
    z = t * np.log(np.maximum(p, 1e-12))
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def temperature(ens, lb, A, d):
    """The temperature on dimension d's pooled probabilities that the score likes best, and
    what it gains over none (nats a bar)."""
    def s(t):
        p = [ens[:, sl] for sl in DS]
        p[d] = temper(p[d], t)
        return score(p, lb, A)
    r = minimize_scalar(lambda t: -s(t), bounds=(0.05, 3), method="bounded")
    return r.x, s(r.x) - s(1.0)


def real_rows(files):
    for f in files:
        df = pd.read_csv(f)
        ens = df[[f"ensemble_{c}" for c in CELLS]].to_numpy()
        lb, A = predictive_columns(df)
        for d, name in enumerate(["volatility", "trend", "structure"]):
            t, gain = temperature(ens, lb, A, d)
            said = ens[:, DS[d]].max(1).mean()
            print(f"{f} {name}: temperature {t:.3f}, gain {gain:.5f} nats a bar; "
                  f"mean probability of the chosen state {said:.4f} -> {temper(ens[:, DS[d]], t).max(1).mean():.4f}")


def synthetic(bars, s0, s1):
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "examples", "member_probs")
    env = dict(os.environ, PREDICTIVE="1")
    series = []
    for sd in range(s0, s1):
        df = pd.read_csv(io.StringIO(subprocess.run([exe, str(bars), str(sd)], capture_output=True, text=True,
                                                    check=True, env=env).stdout))
        logs = np.stack([np.nan_to_num(np.log(df[[f"{m}_{c}" for c in CELLS]].to_numpy()), nan=0.0) for m in M], 1)
        ens = df[[f"ensemble_{c}" for c in CELLS]].to_numpy()
        lb, A = predictive_columns(df)
        series.append((logs, ens, lb, A, df[["truth_v", "truth_d", "truth_s"]].to_numpy()))

    def pooled(logs, W):  # W: 3 x M -> per-dimension probabilities
        out = []
        for d, sl in enumerate(DS):
            z = np.einsum("tmk,m->tk", logs[:, :, sl], W[d])
            z -= z.max(1, keepdims=True)
            p = np.exp(z)
            out.append(p / p.sum(1, keepdims=True))
        return out

    def total(W):
        return np.mean([score(pooled(logs, W), lb, A) for logs, _, lb, A, _ in series])

    def report(name, probs):
        hits, said, n = np.zeros(4), np.zeros(3), 0
        for p, (_, _, _, _, truth) in zip(probs, series):
            h = np.stack([p[d].argmax(1) for d in range(3)], 1) == truth
            hits[:3] += h.sum(0)
            hits[3] += h.all(1).sum()
            said += [p[d].max(1).sum() for d in range(3)]
            n += len(truth)
        print(f"{name:<30}", np.round(np.concatenate([hits / n, said / n]), 4))

    hmm = np.zeros((3, 6))
    hmm[:, 0] = 1.0
    report("ensemble (causal)", [[ens[:, sl] for sl in DS] for _, ens, _, _, _ in series])
    report("hmm alone", [pooled(logs, hmm) for logs, *_ in series])
    res = minimize(lambda w: -total(w.reshape(3, 6)), hmm.ravel(), method="L-BFGS-B", bounds=[(-1, 3)] * 18,
                   options={"maxiter": 60})
    W = res.x.reshape(3, 6)
    report("weights fitted to the score", [pooled(logs, W) for logs, *_ in series])
    temps = [temperature(ens, lb, A, 0)[0] for _, ens, lb, A, _ in series]
    report("volatility temperature", [[temper(ens[:, DS[0]], t), ens[:, DS[1]], ens[:, DS[2]]]
                                      for t, (_, ens, *_) in zip(temps, series)])
    print("fitted weights (hmm, threshold, kalman, jump, changepoint, hmm_averaged):")
    for d, name in enumerate(["volatility", "trend", "structure"]):
        print(f"  {name}: " + " ".join(f"{w:.2f}" for w in W[d]))
    print("volatility temperature per series:", " ".join(f"{t:.2f}" for t in temps))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--rows"] and len(sys.argv) > 2:
        real_rows(sys.argv[2:])
    elif len(sys.argv) == 4 and all(a.isdigit() for a in sys.argv[1:]):
        synthetic(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: predictive_teacher.py BARS FIRST_SEED END_SEED | --rows FILE.csv ... (see the docstring)")
