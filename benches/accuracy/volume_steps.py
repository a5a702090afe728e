#!/usr/bin/env python3
"""What a permanent step in the volume level, or a split, does to the volatility labels.

arch's S&P 500 and NASDAQ daily bars 1999–2018, each run through `regime detect` as they are
and with prices divided by f and volume multiplied by v from a date on (a split: f = v; a
feed switching to consolidated volume: f = 1). Prints the share of the bars from that date
on whose volatility label differs, in all, in the first 252 bars and after them, and the
shares whose trend and structure labels differ. Splits (f = v: 2:1, 3:1, 1:2, 1:10) are read
as splits since session 41 (`regime_core::splits`) and should change nothing; so are steps
of the volume alone from ×3.3 (or ÷3.3) on: a change of unit (×10, ×100, ×0.01), a feed
switching to consolidated volume (×5). A ×3 step stays below what is read.

    cargo build --release -p regime-server --bin regime
    python3 benches/accuracy/volume_steps.py [--exe PATH]

Needs `pip install arch pandas`.
"""
import argparse, os, subprocess, tempfile

import pandas as pd
from arch.data import nasdaq, sp500

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = [("2005-06-01", 2, 2), ("2012-03-01", 3, 3), ("2005-06-01", 0.5, 0.5),
         ("2016-01-04", 0.1, 0.1), ("2009-01-02", 1, 3), ("2009-01-02", 1, 1 / 3),
         ("2012-03-01", 1, 10), ("2009-01-02", 1, 100), ("2009-01-02", 1, 0.01), ("2009-01-02", 1, 5)]


def detect(exe, df, tmp, tag):
    src, dst = os.path.join(tmp, f"{tag}.csv"), os.path.join(tmp, f"{tag}_out.csv")
    d = df.reset_index()
    d.columns = ["timestamp", "open", "high", "low", "close", "volume"]
    d.to_csv(src, index=False)
    subprocess.run([exe, "detect", "--input", src, "--output", dst], check=True, capture_output=True)
    return pd.read_csv(dst)


def main():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap = argparse.ArgumentParser()
    ap.add_argument("--exe", default=os.path.join(target, "release", "regime"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, loader in [("S&P 500", sp500), ("NASDAQ", nasdaq)]:
            df = loader.load()[["Open", "High", "Low", "Close", "Volume"]].astype(float)
            base = detect(a.exe, df, tmp, "base")
            for when, f, v in CASES:
                at = df.index.searchsorted(pd.Timestamp(when))
                moved = df.copy()
                moved.iloc[at:, :4] = moved.iloc[at:, :4] / f
                moved.iloc[at:, 4] = moved.iloc[at:, 4] * v
                got = detect(a.exe, moved, tmp, "moved")
                diff = (got.volatility.values != base.volatility.values)[at:]
                other = ", ".join(f"{d} {(got[d].values != base[d].values)[at:].mean():.3f}"
                                  for d in ("trend", "structure"))
                print(f"{name}: prices ÷{f:g}, volume ×{v:.3g} from {when}: volatility labels differ on "
                      f"{diff.mean():.3f} of the later bars ({diff[:252].mean():.2f} in the first 252, "
                      f"{diff[252:].mean():.3f} after); {other}")


if __name__ == "__main__":
    main()
