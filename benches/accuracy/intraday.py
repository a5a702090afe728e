#!/usr/bin/env python3
"""Minute bars with volatility regimes that last days.

Writes a year of minute bars (390 a session, 09:30-16:00, weekdays) per seed: each session
in one of three volatility states (daily 0.7% / 1.4% / 2.8%, a chain that stays with
probability 0.95 a session), bars cut from a 20-step path, volume by state. Four kinds:
with or without a U-shaped time-of-day profile of volatility and volume (first minutes
~2.1x the day's average, midday ~0.85x), with or without an overnight gap (t(4), half the
session's volatility). Runs `regime detect` on each and reports how often the volatility
label is the true one (last 70%), how often it changes a session against the truth's
changes, and how often a session's first bar is right.

    python3 benches/accuracy/intraday.py [--regime PATH_TO_REGIME] [--seeds 98600,98601,98602]
"""
import os, subprocess, sys, tempfile
import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from intraday_spacings import bars  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PER = 390
NAMES = {"low": 0, "medium": 1, "high": 2}


def minute_bars(seed, days=250, season=True, overnight=True):
    """A year of minute sessions (the generator `intraday_spacings.py` shares)."""
    return bars(seed, PER, 1, days=days, overnight=overnight, season=season)


def main():
    args = sys.argv[1:]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    regime = args[args.index("--regime") + 1] if "--regime" in args else os.path.join(target, "release", "regime")
    seeds = [int(s) for s in args[args.index("--seeds") + 1].split(",")] if "--seeds" in args else [98600, 98601, 98602]
    print(f"{'profile':8} {'gaps':5} {'vol right (per seed)':24} {'switches a session':24} {'truth':>6} {'first bar right':18}")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.csv"), os.path.join(tmp, "out.csv")
        for season in (False, True):
            for overnight in (False, True):
                rows = []
                for seed in seeds:
                    df, st = minute_bars(seed, season=season, overnight=overnight)
                    df.to_csv(src, index=False)
                    subprocess.run([regime, "detect", "--input", src, "--output", dst], check=True, capture_output=True)
                    v = pd.read_csv(dst)["volatility"].map(NAMES).to_numpy()
                    n = len(v)
                    tail = np.arange(n) >= int(0.3 * n)
                    first = tail & (np.arange(n) % PER == 0)
                    days = n / PER
                    rows.append((np.mean(v[tail] == st[tail]), np.sum(v[1:] != v[:-1]) / days,
                                 np.sum(st[1:] != st[:-1]) / days, np.mean(v[first] == st[first])))
                r = np.array(rows)
                fmt = lambda col, p: " ".join(f"{x:.{p}f}" for x in r[:, col])
                print(f"{'U' if season else 'flat':8} {'yes' if overnight else 'no':5} {fmt(0, 3):24} {fmt(1, 2):24} {r[:, 2].mean():6.3f} {fmt(3, 2):18}")


if __name__ == "__main__":
    main()
