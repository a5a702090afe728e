#!/usr/bin/env python3
"""Monthly US market returns 1926-2018 (arch's Fama-French file: market excess return plus
the risk-free rate, cumulated into a close-only price series, 1,109 bars), detected causally
as one lone series. Prints, per eight-year block, the block's annualized volatility and the
volatility labels' shares (low/medium/high, %), and switches a year. The Depression years
should read high and the calm post-war decades low (benches/accuracy/README.md, "Session 28").

    pip install arch pandas && python3 benches/accuracy/monthly.py
"""
import os, subprocess, sys
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    from arch.data import frenchdata
    d = frenchdata.load()
    # arch stores the month as nanoseconds since the epoch spelling YYYYMM
    ym = d.index.astype("int64").astype(str)
    dates = pd.to_datetime([f"{s[:4]}-{s[4:6]}-28" for s in ym])
    ret = (d["Mkt-RF"] + d["RF"]).values / 100
    out = os.path.join(ROOT, "benches/accuracy/out")
    os.makedirs(out, exist_ok=True)
    src, dst = os.path.join(out, "monthly_market.csv"), os.path.join(out, "monthly_market_regimes.csv")
    pd.DataFrame({"timestamp": dates, "symbol": "MKT", "close": 100 * np.cumprod(1 + ret)}).to_csv(src, index=False, date_format="%Y-%m-%d")
    regime = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "regime")
    subprocess.run([regime, "detect", "--input", src, "--output", dst], check=True, capture_output=True)
    g = pd.read_csv(dst, parse_dates=["timestamp"]).set_index("timestamp")
    r = pd.Series(np.log1p(ret), index=dates)
    for y in range(1926, 2019, 8):
        x, a, b = g.loc[str(y):str(y + 7)], str(y), str(y + 7)
        shares = "/".join(str(int(100 * x.volatility.eq(k).mean())) for k in ["low", "medium", "high"])
        print(f"{y}-{min(y + 7, 2018)}: volatility {r.loc[a:b].std() * np.sqrt(12):.2f} a year, labels low/medium/high {shares}")
    years = len(g) / 12
    sw = {c: round((g[c].values[1:] != g[c].values[:-1]).sum() / years, 2) for c in ["regime_id", "volatility", "trend", "structure"]}
    print(f"switches a year: {sw}")


if __name__ == "__main__":
    sys.exit(main())
