#!/usr/bin/env python3
"""Bars whose high and low echo the bar's own move, against bars with a real intrabar path.

A market's bar range comes from the path within the bar: given the volatility, a bigger body
leaves less of the range unexplained (S&P 500 / NASDAQ daily: within-regime correlation of
ln|r| and the log excess range -0.3 to -0.4). Some vendors' and test generators' bars build
the wicks from the bar's own move instead (high = max(open, close) * exp(|N| * (|r| + floor)
/ 2)), which ties the two closely (+0.7). This writes such series -- two or three volatility
levels, Gaussian or Student-t(4) returns -- and a control whose bars come from a simulated
path, runs `regime detect` on each, and reports how often the volatility label is the true
one (last 70%) and how often it changes a year.

    python3 benches/accuracy/range_tied.py [--regime PATH_TO_REGIME]
"""
import os, subprocess, sys, tempfile
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 20_000


def states(rng, levels):
    if levels == 2:  # blocks of 2,000 bars
        return (np.arange(N) // 2000) % 2 * 2
    s = np.zeros(N, int)
    for t in range(1, N):
        s[t] = s[t - 1] if rng.random() < 0.99 else rng.choice([x for x in range(3) if x != s[t - 1]])
    return s


def tied_bars(rng, r, floor=0.002):
    c = 50 * np.exp(np.cumsum(r))
    o = np.r_[c[0], c[:-1]]
    size = np.abs(r) + floor
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 1, N)) * size * 0.5)
    l = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 1, N)) * size * 0.5)
    return o, h, l, c


def path_bars(rng, sigma, steps=24):
    sub = rng.standard_normal((N, steps)) * (sigma / np.sqrt(steps))[:, None]
    path = np.cumsum(sub.ravel()).reshape(N, steps)
    prev = np.r_[0.0, path[:-1, -1]]
    p = lambda x: 50 * np.exp(x)
    return p(prev), p(np.maximum(path.max(1), prev)), p(np.minimum(path.min(1), prev)), p(path[:, -1])


def main():
    args = sys.argv[1:]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    regime = args[args.index("--regime") + 1] if "--regime" in args else os.path.join(target, "release", "regime")
    rng = np.random.default_rng(98500)
    ts = pd.date_range("2000-01-03", periods=N, freq="B")
    names = ["low", "medium", "high"]
    print(f"{'series':34} {'vol right':>9} {'switches/yr':>11} {'true':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for levels in (2, 3):
            st = states(rng, levels)
            sigma = np.array([0.01, 0.02, 0.03] if levels == 2 else [0.006, 0.012, 0.024])[st]
            cases = {
                "tied ranges, Gaussian": tied_bars(rng, rng.standard_normal(N) * sigma),
                "tied ranges, t(4)": tied_bars(rng, rng.standard_t(4, N) * sigma / np.sqrt(2)),
                "intrabar path (control)": path_bars(rng, sigma),
            }
            for what, (o, h, l, c) in cases.items():
                src, dst = os.path.join(tmp, "in.csv"), os.path.join(tmp, "out.csv")
                vol = rng.lognormal(10, 0.5, N)
                pd.DataFrame(dict(timestamp=ts, open=o, high=h, low=l, close=c, volume=vol)).to_csv(src, index=False)
                subprocess.run([regime, "detect", "--input", src, "--output", dst], check=True, capture_output=True)
                v = pd.read_csv(dst)["volatility"].map({n: i for i, n in enumerate(names)}).to_numpy()
                tail = slice(int(N * 0.3), N)
                if levels == 2:  # two levels: right = the lower read low or medium, the higher high
                    right = np.where(st == 2, v == 2, v < 2)
                else:
                    right = v == st
                yrs = N / 252
                print(f"{levels} levels, {what:24} {right[tail].mean():9.3f} {np.sum(v[1:] != v[:-1]) / yrs:11.1f} {np.sum(st[1:] != st[:-1]) / yrs:6.1f}")


if __name__ == "__main__":
    main()
