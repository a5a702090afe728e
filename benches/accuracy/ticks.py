#!/usr/bin/env python3
"""Prices on a tick grid: how much of the exact filter's lift the pipeline keeps when every
open, high, low and close is rounded to a grid (a liquid stock's minute bars move a few
cents: a tick of a quarter to one return sd).

For each tick (a multiple of the series' close-to-close return sd, in log price: a relative
tick) and each seed, `oracle_check` with `TICK` runs the pipeline on the rounded bars and the
oracle (the exact filter on the generator's true parameters) on the bars as generated, and
also that oracle on the rounded bars (`oracle_rounded`: a model that knows no grid). With
`--noise`, each price gets its own uniform noise of the grid's width instead of the rounding
(the same variance without the grid: a bid-ask bounce); with `--absolute`, the grid is in
price (a stock's cent: the step at the median close, so the relative step varies as the
price wanders). Prints
the mean and min share of the unrounded oracle's lift, per dimension and for all 18, of the
final labels, the HMM member and `oracle_rounded`.

    cargo build --release -p datasets --examples
    python3 benches/accuracy/ticks.py --bars 20000 --seeds 105400-105419 --ticks 0,0.25,0.5,1,2
    python3 benches/accuracy/ticks.py --noise --bars 20000 --seeds 105500-105523 --ticks 0.5,1,2
"""
import argparse, os, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeds import ROOT, seeds, shares  # noqa: E402

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=20000)
    ap.add_argument("--seeds", default="105400-105419")
    ap.add_argument("--ticks", default="0,0.25,0.5,1,2")
    ap.add_argument("--noise", action="store_true",
                    help="noise of the grid's width on every price instead of rounding")
    ap.add_argument("--absolute", action="store_true",
                    help="a grid in price (the step at the median close), not in log price")
    a = ap.parse_args()
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                       "release", "examples", "oracle_check")
    rows = ["final", "hmm", "oracle_rounded"]
    print("| tick (return sd) | labels | volatility | trend | structure | all 18 | min all 18 |")
    print("|---|---|---|---|---|---|---|")
    for tick in [float(t) for t in a.ticks.split(",")]:
        got = {r: [] for r in rows}
        for s in seeds(a.seeds):
            env = dict(os.environ, TICK=str(tick))
            if a.noise:
                env["NOISE"] = "1"
            if a.absolute:
                env["ABSOLUTE"] = "1"
            txt = subprocess.run([exe, "1", str(a.bars), str(s)], check=True,
                                 capture_output=True, text=True, env=env).stdout
            r = shares(txt)
            for k in rows:
                if k in r:
                    got[k].append(r[k])
        for k in rows:
            if not got[k]:
                continue
            cols = [[x for x in c if x is not None] for c in zip(*got[k])]
            mean = [sum(c) / len(c) if c else float("nan") for c in cols]
            print(f"| {tick:g} | {k} | " + " | ".join(f"{m:.3f}" for m in mean) +
                  f" | {min(cols[3]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
