#!/usr/bin/env python3
"""A price that mostly does not move: 3,000 daily bars, 95% of closes unchanged, moves of
2-4% otherwise, and a wild spell (bars 2,000-2,299) with a move every other bar. Every
non-zero move is large, so a coarse grid's step (and the noise floor taken from it) is
large: checks that the calm bars read low, the wild spell high, and the labels hold still.

    cargo build --release -p regime-server --bin regime
    python3 benches/accuracy/stuck_price.py
"""
import os, subprocess, sys, tempfile
import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    rng = np.random.default_rng(7)
    p, rows = 100.0, []
    for t in range(3000):
        wild = 2000 <= t < 2300
        if rng.random() < (0.5 if wild else 0.05):
            p *= np.exp(rng.choice([-1, 1]) * rng.uniform(0.02, 0.04))
        p = round(p, 2)
        rows.append(dict(timestamp=pd.Timestamp("2010-01-01") + pd.Timedelta(days=t),
                         symbol="PEG", open=p, high=p, low=p, close=p, volume=1000))
    regime = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                          "release", "regime")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "peg.csv"), os.path.join(tmp, "peg_regimes.csv")
        pd.DataFrame(rows).to_csv(src, index=False)
        subprocess.run([regime, "detect", "--input", src, "--output", dst], check=True)
        d = pd.read_csv(dst)
    v = d["volatility"]
    switches = int((d["regime_id"].values[1:] != d["regime_id"].values[:-1]).sum())
    print(f"calm (bars 500-1999): {v[500:2000].value_counts().to_dict()}")
    print(f"wild (bars 2050-2299): {v[2050:2300].value_counts().to_dict()}")
    print(f"after (bars 2400-): {v[2400:].value_counts().to_dict()}")
    print(f"switches: {switches}")


if __name__ == "__main__":
    sys.exit(main())
