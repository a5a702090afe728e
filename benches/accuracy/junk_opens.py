#!/usr/bin/env python3
"""Opening prints that do not follow volatility: `regime generate` series re-opened at the
previous close times exp(s z), z standard normal and s the series' return sd divided by
DIVISOR (the same in every state; high and low widened to hold the open), scored with
`regime evaluate` on the last 30% against the generator's opens. Prints the volatility and
full-label accuracy (final labels), mean and worst over the seeds.

    python3 benches/accuracy/junk_opens.py --divisor 3 --seeds 103510-103529 [--regime PATH]
"""
import argparse, json, os, subprocess, sys, tempfile
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def evaluate(regime, path):
    p = subprocess.run([regime, "evaluate", "--input", path, "--score-last", "0.3", "--json"],
                       check=True, capture_output=True, text=True)
    return json.loads(p.stdout)["accuracy"]["final"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--divisor", type=float, default=3.0)
    ap.add_argument("--seeds", default="103510-103529")
    ap.add_argument("--bars", type=int, default=3000)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--regime", default=os.path.join(target, "release", "regime"))
    a = ap.parse_args()
    lo, _, hi = a.seeds.partition("-")
    rows = {"generator's opens": [], "junk opens": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(int(lo), int(hi or lo) + 1):
            clean = os.path.join(tmp, f"s{seed}.csv")
            subprocess.run([a.regime, "generate", "--output", clean, "--bars", str(a.bars), "--seed", str(seed)],
                           check=True, capture_output=True)
            d = pd.read_csv(clean)
            rng = np.random.default_rng(seed)
            prev = d.close.shift(1).fillna(d.open)
            sd = np.log(d.close).diff().std() / a.divisor
            d["open"] = prev * np.exp(rng.standard_normal(len(d)) * sd)
            d["high"] = np.maximum(d.high, d.open)
            d["low"] = np.minimum(d.low, d.open)
            junk = os.path.join(tmp, f"j{seed}.csv")
            d.to_csv(junk, index=False)
            rows["generator's opens"].append(evaluate(a.regime, clean))
            rows["junk opens"].append(evaluate(a.regime, junk))
    for name, accs in rows.items():
        v = [x["volatility"] for x in accs]
        f = [x["regime"] for x in accs]
        print(f"{name}: volatility mean {np.mean(v):.3f} worst {np.min(v):.3f}; full label mean {np.mean(f):.3f}")


if __name__ == "__main__":
    sys.exit(main())
