#!/usr/bin/env python3
"""Real daily data from later starts: each index alone, its history cut to begin in 1999,
2005, 2010 or 2013 (a user with a few years of one instrument), and WTI crude oil's daily
closes (close-only bars, no open, range or volume; arch's FRED series) from 1986, 1995, 2005
or 2012. Reports regime switches a year (all, and per dimension: volatility, trend,
structure), the high-volatility share of Sep 15-Dec 31 2008 where the history has it, and
the volatility labels' shares (low/medium/high, %) of each year from 2010.

    pip install arch pandas && python3 benches/accuracy/real_starts.py
"""
import os, subprocess, sys
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    from arch.data import sp500, nasdaq, wti
    out = os.path.join(ROOT, "benches/accuracy/out")
    os.makedirs(out, exist_ok=True)
    regime = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "regime")
    series = []
    for name, mod in [("SPX", sp500), ("NDX", nasdaq)]:
        d = mod.load().reset_index().rename(columns={"Date": "timestamp", "Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"})
        series.append((name, d[["timestamp", "open", "high", "low", "close", "volume"]], ["1999", "2005", "2010", "2013"]))
    w = wti.load().dropna().reset_index()
    w.columns = ["timestamp", "close"]
    series.append(("WTI", w, ["1986", "1995", "2005", "2012"]))
    for name, d, starts in series:
        d = d.assign(symbol=name)
        cols = ["timestamp", "symbol"] + [c for c in ["open", "high", "low", "close", "volume"] if c in d]
        for start in starts:
            src = os.path.join(out, f"start_{name}{start}.csv")
            dst = src.replace(".csv", "_regimes.csv")
            d[d.timestamp >= start][cols].to_csv(src, index=False, date_format="%Y-%m-%d")
            subprocess.run([regime, "detect", "--input", src, "--output", dst, "--skip-bad-rows"], check=True, capture_output=True)
            g = pd.read_csv(dst, parse_dates=["timestamp"]).set_index("timestamp")
            years = (g.index[-1] - g.index[0]).days / 365.25
            sw = lambda c: (g[c].values[1:] != g[c].values[:-1]).sum() / years
            crisis = g.loc["2008-09-15":"2008-12-31"]
            hv = f"{(crisis.volatility == 'high').mean():.2f}" if len(crisis) else "n/a"
            shares = " ".join(f"{y % 100}:" + "/".join(str(int(100 * g.loc[str(y)].volatility.eq(k).mean())) for k in ["low", "medium", "high"])
                              for y in range(2010, 2019) if len(g.loc[str(y):str(y)]))
            print(f"{name} from {start}: switches/year {sw('regime_id'):.1f} (volatility {sw('volatility'):.1f}, trend {sw('trend'):.1f}, structure {sw('structure'):.1f}); high vol Sep-Dec 2008 {hv}; {shares}")


if __name__ == "__main__":
    sys.exit(main())
