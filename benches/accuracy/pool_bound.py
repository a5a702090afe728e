#!/usr/bin/env python3
"""What any weighting of the ensemble's members could reach: the bound on "beat the best member".

The ensemble pools its six members log-linearly with per-dimension weights it learns causally
against an ex-post reference. How far could *any* fixed weights go? This script fits the
weights on the **true labels** — once for the log-loss, once for accuracy itself (coordinate
search from the best member alone) — on half of the seeds and scores them on the other half
(two folds: every other series → the rest and back; a panel's members pooled as `detect`
pools them), and reports, beside them, the ensemble as it runs
and its two model-based members, as shares of the oracle's lift on the last 30% of each
series. A pool fitted on truth is something no causal method can have; where it too barely
beats the best member, the members hold little the best one lacks.

    cargo build --release -p datasets --example member_probs
    python3 benches/accuracy/pool_bound.py --bars 2500 --seeds 100800-100879
    python3 benches/accuracy/pool_bound.py --bars 2000 --seeds 100500 --symbols 500   # a panel

Needs numpy, pandas and scipy.
"""
import argparse, io, os, subprocess, sys

import numpy as np
import pandas as pd
from scipy.optimize import minimize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeds import seeds  # noqa: E402  (the seed-list syntax, shared)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METHODS = ["hmm", "threshold", "kalman", "jump", "changepoint", "hmm_averaged"]
DIMS = [("volatility", slice(0, 3)), ("trend", slice(3, 6)), ("structure", slice(6, 8))]
CELLS = ["v_low", "v_med", "v_high", "d_down", "d_neutral", "d_up", "s_trend", "s_mr"]
CHANCE = np.array([1 / 3, 1 / 3, 1 / 2, 1 / 18])


def load(exe, bars, seed, symbols):
    """One (truth, oracle, ensemble, member logs) tuple per series of the run."""
    csv = subprocess.run([exe, str(bars), str(seed), str(symbols)], check=True,
                         capture_output=True, text=True).stdout
    df = pd.read_csv(io.StringIO(csv))
    out = []
    for _, g in df.groupby("symbol", sort=True):
        truth = g[["truth_v", "truth_d", "truth_s"]].to_numpy()
        oracle = g[["oracle_v", "oracle_d", "oracle_s"]].to_numpy()
        ens = g[[f"ensemble_{c}" for c in CELLS]].to_numpy()
        # members' log-probabilities; an abstaining member's cells hold ln 1 = 0 (as in the pool)
        logs = np.stack([np.log(g[[f"{m}_{c}" for c in CELLS]].to_numpy()) for m in METHODS], axis=1)
        out.append((truth, oracle, ens, np.nan_to_num(logs, nan=0.0)))
    return out


def hits(pred, truth):
    """Per-dimension and full-label hits of per-dimension predictions (n × 3)."""
    ok = pred == truth
    return np.array([ok[:, 0].sum(), ok[:, 1].sum(), ok[:, 2].sum(), ok.all(1).sum()], float)


def member(logs, i):
    """Argmax per dimension of member i alone."""
    return np.stack([logs[:, i, sl].argmax(1) for _, sl in DIMS], axis=1)


def pooled(w, logs):
    """Argmax per dimension of the log-linear pool with weights w[dim][method]."""
    return np.stack([np.einsum("m,nmk->nk", w[d], logs[:, :, sl]).argmax(1)
                     for d, (_, sl) in enumerate(DIMS)], axis=1)


def fit_logloss(logs, y, sl):
    """Weights of least log-loss on (logs, y): convex in w, minimized to convergence
    (L-BFGS with the exact gradient)."""
    x = logs[:, :, sl]
    onehot = np.eye(x.shape[2])[y]

    def loss(w):
        z = np.einsum("m,nmk->nk", w, x)
        z = z - z.max(1, keepdims=True)
        lse = np.log(np.exp(z).sum(1, keepdims=True))
        p = np.exp(z - lse)
        nll = -(onehot * (z - lse)).sum() / len(y)
        return nll, -np.einsum("nk,nmk->m", onehot - p, x) / len(y)

    w0 = np.zeros(len(METHODS))
    w0[0] = 1.0
    r = minimize(loss, w0, jac=True, method="L-BFGS-B")
    return r.x


def fit_accuracy(logs, y, sl, start):
    x = logs[:, :, sl]
    acc = lambda w: (np.einsum("m,nmk->nk", w, x).argmax(1) == y).mean()
    w = np.zeros(len(METHODS))
    w[start] = 1.0
    best = acc(w)
    for _ in range(4):
        for m in range(len(METHODS)):
            if m == start:
                continue
            for step in (-0.5, -0.25, -0.1, -0.05, 0.05, 0.1, 0.25, 0.5):
                w2 = w.copy()
                w2[m] = max(0.0, w2[m] + step)
                a = acc(w2)
                if a > best + 1e-12:
                    best, w = a, w2
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=2500)
    ap.add_argument("--seeds", default="100800-100879")
    ap.add_argument("--symbols", type=int, default=1,
                    help="series per seed: a panel, pooled as `detect` pools it")
    a = ap.parse_args()
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                       "release", "examples", "member_probs")
    runs = [r for s in seeds(a.seeds) for r in load(exe, a.bars, s, a.symbols)]
    # which model-based member is best on the full label over all seeds
    tot = {i: sum(hits(member(r[3], i), r[0])[3] for r in runs) for i in (0, 5)}
    best_i = 0 if tot[0] >= tot[5] else 5
    rows = {k: [] for k in ["oracle", "best member", "ensemble", "fit: log-loss", "fit: accuracy"]}
    weights = []
    for fold in (0, 1):
        train = [r for i, r in enumerate(runs) if i % 2 == fold]
        test = [r for i, r in enumerate(runs) if i % 2 != fold]
        lt = np.concatenate([r[3] for r in train])
        yt = np.concatenate([r[0] for r in train])
        w_ll = [fit_logloss(lt, yt[:, d], sl) for d, (_, sl) in enumerate(DIMS)]
        w_acc = [fit_accuracy(lt, yt[:, d], sl, best_i) for d, (_, sl) in enumerate(DIMS)]
        weights.append((w_ll, w_acc))
        for truth, oracle, ens, logs in test:
            n = len(truth)
            e = np.stack([ens[:, sl].argmax(1) for _, sl in DIMS], 1)
            for k, pred in [("oracle", oracle), ("best member", member(logs, best_i)), ("ensemble", e),
                            ("fit: log-loss", pooled(w_ll, logs)),
                            ("fit: accuracy", pooled(w_acc, logs))]:
                rows[k].append(hits(pred, truth) / n)
    orc = np.array(rows["oracle"])
    # a dimension whose oracle is at chance on a series has no lift to share: NaN, left out
    lift = np.where(orc - CHANCE > 1e-9, orc - CHANCE, np.nan)
    share = {k: (np.array(v) - CHANCE) / lift for k, v in rows.items()}
    print(f"{len(runs)} series of {a.bars} bars (seeds {a.seeds}, {a.symbols} a seed), scored on "
          f"the last 30%; best member {METHODS[best_i]}; weights fitted on truth, two folds "
          f"(series by turn)")
    print("| pool | volatility | trend | structure | all 18 | all 18 minus best member (t) |")
    print("|---|---|---|---|---|---|")
    base = share["best member"][:, 3]
    for k, s in share.items():
        m = np.nanmean(s, axis=0)
        diff = (s[:, 3] - base)[~np.isnan(s[:, 3] - base)]
        t = diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff))) if diff.std() > 0 else 0.0
        print(f"| {k} | " + " | ".join(f"{x:.3f}" for x in m) +
              (f" | {diff.mean():+.4f} ({t:.1f}) |" if k != "best member" else " | — |"))
    for fold, (w_ll, w_acc) in enumerate(weights):
        for name, w in (("log-loss", w_ll), ("accuracy", w_acc)):
            print(f"fold {fold} {name} weights (" + ", ".join(METHODS) + "): " +
                  "; ".join(f"{d}: " + " ".join(f"{x:.2f}" for x in w[i])
                            for i, (d, _) in enumerate(DIMS)))


if __name__ == "__main__":
    main()
