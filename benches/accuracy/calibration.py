#!/usr/bin/env python3
"""Does the reported probability mean what it says? Calibration of the pooled per-dimension
probabilities against the true labels.

`regime` reports, per bar and dimension, the probability of each state (and as `confidence`
their product for the chosen regime). A trading system that acts only above some
probability needs it calibrated: of the bars labelled with probability ~0.8, ~80% right.
This script bins the chosen state's probability (the pooled ensemble's, before the
transition manager) on the scored part (last 30%) of fresh synthetic series and prints, per
bin, the mean probability against the share of bars whose state is the true one.

    cargo build --release -p datasets --example member_probs
    python3 benches/accuracy/calibration.py --bars 2500 --seeds 100800-100839

Needs numpy and pandas.
"""
import argparse, io, os, subprocess, sys

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeds import seeds  # noqa: E402  (the seed-list syntax, shared)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIMS = [("volatility", ["v_low", "v_med", "v_high"], "truth_v"),
        ("trend", ["d_down", "d_neutral", "d_up"], "truth_d"),
        ("structure", ["s_trend", "s_mr"], "truth_s")]
EDGES = [0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=2500)
    ap.add_argument("--seeds", default="100800-100839")
    ap.add_argument("--who", default="ensemble", help="ensemble or a member (hmm, jump, ...)")
    a = ap.parse_args()
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                       "release", "examples", "member_probs")
    df = pd.concat([pd.read_csv(io.StringIO(subprocess.run(
        [exe, str(a.bars), str(s)], check=True, capture_output=True, text=True).stdout))
        for s in seeds(a.seeds)])
    print(f"{a.who}, {len(df)} scored bars of {a.bars}-bar series (seeds {a.seeds}): "
          "mean probability of the chosen state / share right (bars), per bin")
    for name, cells, truth in DIMS:
        p = df[[f"{a.who}_{c}" for c in cells]].to_numpy()
        ok = ~np.isnan(p).any(axis=1)  # a member that abstains has no row
        p, t = p[ok], df[truth].to_numpy()[ok]
        if len(p) == 0:
            print(f"- {name}: {a.who} abstains")
            continue
        conf, right = p.max(axis=1), p.argmax(axis=1) == t
        parts = []
        for lo, hi in zip(EDGES, EDGES[1:]):
            m = (conf >= lo) & ((conf < hi) | (hi == 1.0))
            if m.sum() >= 200:  # fewer bars: too noisy to read
                parts.append(f"{lo:.2f}–{hi:.2f}: {conf[m].mean():.3f} / {right[m].mean():.3f} "
                             f"({m.sum()})")
        print(f"- {name}: all {conf.mean():.3f} / {right.mean():.3f}; " + "; ".join(parts))


if __name__ == "__main__":
    main()
