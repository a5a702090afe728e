#!/usr/bin/env python3
"""Causal run on real daily data shipped with `arch` (S&P 500 and NASDAQ, 1999-2018).

Reports: share of high volatility Sep 15-Dec 31 2008, share of low volatility in 2017,
regime switches per year and mean regime duration. Both indices go into one file by
default (a two-instrument panel: they share the population prior); `--alone` detects each
in a file of its own (one instrument learning alone, as a user with one symbol runs it).

    pip install arch pandas && python3 benches/accuracy/real_data.py [--alone]
"""
import os, subprocess, sys
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    from arch.data import sp500, nasdaq
    alone = "--alone" in sys.argv[1:]
    out = os.path.join(ROOT, "benches/accuracy/out")
    os.makedirs(out, exist_ok=True)
    regime = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "regime")
    frames = []
    for name, mod in [("SPX", sp500), ("NDX", nasdaq)]:
        d = mod.load().reset_index()
        d = d.rename(columns={"Date": "timestamp", "Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"})
        d["symbol"] = name
        frames.append(d[["timestamp", "symbol", "open", "high", "low", "close", "volume"]])
    groups = [[f] for f in frames] if alone else [frames]
    parts = []
    for g in groups:
        stem = "arch_" + (g[0]["symbol"].iloc[0] if alone else "indices")
        src = os.path.join(out, stem + ".csv")
        pd.concat(g).to_csv(src, index=False, date_format="%Y-%m-%d")
        dst = os.path.join(out, stem + "_regimes.csv")
        subprocess.run([regime, "detect", "--input", src, "--output", dst, "--skip-bad-rows"], check=True)
        parts.append(pd.read_csv(dst, parse_dates=["timestamp"]))
    r = pd.concat(parts)
    for sym, g in r.groupby("symbol"):
        g = g.set_index("timestamp")
        crisis = g.loc["2008-09-15":"2008-12-31"]
        y2017 = g.loc["2017-01-01":"2017-12-31"]
        ids = g["regime_id"].to_numpy()
        switches = int((ids[1:] != ids[:-1]).sum())
        years = (g.index[-1] - g.index[0]).days / 365.25
        dims = {}
        for dim in ["volatility", "trend", "structure"]:
            s = g[dim].to_numpy()
            dims[dim] = round(len(s) / (1 + (s[1:] != s[:-1]).sum()), 1)
        print(f"{sym}: high-vol share Sep15-Dec31 2008 = {(crisis['volatility'] == 'high').mean():.3f}; "
              f"low-vol share 2017 = {(y2017['volatility'] == 'low').mean():.3f}; "
              f"switches/year = {switches / years:.1f}; mean regime duration = {len(ids) / (switches + 1):.1f} bars; "
              f"mean duration per dimension (bars) = {dims}")


if __name__ == "__main__":
    sys.exit(main())
