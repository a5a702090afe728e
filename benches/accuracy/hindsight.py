#!/usr/bin/env python3
"""Agreement of the causal labels of `real_starts.py`'s histories with hindsight, the check
later tries on real bars are held to (real bars have no true labels):

- volatility: Spearman correlation of the label (low, medium, high as 0, 1, 2) with the
  centred 21-bar realized volatility of close-to-close log returns;
- structure: share of bars whose label (trending 0, mean-reverting 1) has the sign of the
  centred 61-bar lag-one autocorrelation of returns (positive: trending), where that
  autocorrelation is beyond +-0.05;
- switches a year (all / volatility / trend / structure) and 2017's low-volatility share.

Reads `benches/accuracy/out/start_{SPX,NDX}{1999,2005,2010,2013}.csv` and their
`_regimes.csv` as `real_starts.py` leaves them (run it first, on the build to judge).

    python3 benches/accuracy/real_starts.py && python3 benches/accuracy/hindsight.py
"""
import os, sys
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOL = {"low": 0, "medium": 1, "high": 2}


def centred_autocorr(r, window):
    a, b = r.shift(1), r
    return a.rolling(window, center=True).corr(b)


def main():
    out = os.path.join(ROOT, "benches/accuracy/out")
    rows = []
    for name in ["SPX", "NDX"]:
        for start in ["1999", "2005", "2010", "2013"]:
            src = os.path.join(out, f"start_{name}{start}.csv")
            dst = src.replace(".csv", "_regimes.csv")
            if not (os.path.exists(src) and os.path.exists(dst)):
                print(f"missing {src} or its labels: run real_starts.py first", file=sys.stderr)
                return 1
            bars = pd.read_csv(src, parse_dates=["timestamp"]).set_index("timestamp")
            g = pd.read_csv(dst, parse_dates=["timestamp"]).set_index("timestamp")
            g = g[~g.index.duplicated()].reindex(bars.index)
            r = np.log(bars.close).diff()
            rv = r.rolling(21, center=True).std()
            vol = g.volatility.map(VOL)
            ok = rv.notna() & vol.notna()
            rho = vol[ok].rank().corr(rv[ok].rank())
            ac = centred_autocorr(r, 61)
            sure = ac.abs() > 0.05
            want = (ac[sure] < 0).astype(int)  # mean-reverting where negative
            got = (g.structure[sure] == "mean_reverting").astype(int)
            agree = (want == got).mean()
            years = (g.index[-1] - g.index[0]).days / 365.25
            sw = lambda c: (g[c].values[1:] != g[c].values[:-1]).sum() / years
            y17 = g.loc["2017"].volatility.eq("low").mean()
            rows.append((name, start, sw("regime_id"), sw("volatility"), sw("trend"), sw("structure"), y17, rho, agree))
            print(f"{name} from {start}: switches/year {rows[-1][2]:.1f} ({rows[-1][3]:.1f} / {rows[-1][4]:.1f} / {rows[-1][5]:.1f}); "
                  f"2017 low {100 * y17:.0f}%; vol vs hindsight {rho:.3f}; structure vs hindsight {agree:.3f}")
    print(f"mean: switches/year {np.mean([x[2] for x in rows]):.1f}; vol vs hindsight {np.mean([x[7] for x in rows]):.3f}; "
          f"structure vs hindsight {np.mean([x[8] for x in rows]):.3f}")


if __name__ == "__main__":
    sys.exit(main())
