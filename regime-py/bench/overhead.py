"""Python-side cost of `regime.detect` (issue 5's bar), in one run:

1. call overhead on 1 M bars: wall time of regime.detect(pyarrow table) against the time
   the call spent in Rust (regime._regime.last_compute_seconds()), median of 5;
2. memory on 10 M bars: peak RSS of this process while detecting, against the input and
   the output table's own sizes (one copy of the output = output nbytes).

  python regime-py/bench/overhead.py [--big-bars 10000000]
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import time

import regime
from regime import _regime


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bars", type=int, default=1_000_000)
    p.add_argument("--big-bars", type=int, default=10_000_000)
    a = p.parse_args()

    t = regime.generate(symbols=10, bars=a.bars // 10, seed=3)
    regime.detect(t)  # warm
    walls, inner = [], []
    for _ in range(5):
        t0 = time.perf_counter()
        regime.detect(t)
        walls.append(time.perf_counter() - t0)
        inner.append(_regime.last_compute_seconds())
    w, i = statistics.median(walls), statistics.median(inner)
    print(f"1) {t.num_rows} bars: call {w:.3f} s, in Rust {i:.3f} s, Python-side overhead {w - i:.4f} s = {(w - i) / i:.2%} of the Rust time")
    del t
    gc.collect()

    big = regime.generate(symbols=100, bars=a.big_bars // 100, seed=4)
    big = big.select(["timestamp", "symbol", "open", "high", "low", "close", "volume"])
    gc.collect()
    before = rss_mb()
    base_peak = peak_mb()
    out = regime.detect(big)
    after = rss_mb()
    print(
        f"2) {big.num_rows} bars: input table {big.nbytes / 1e6:.0f} MB, output table {out.nbytes / 1e6:.0f} MB; "
        f"RSS before {before:.0f} MB, after {after:.0f} MB (+{after - before:.0f} MB held = the output), "
        f"peak during the call {peak_mb():.0f} MB (peak before {base_peak:.0f} MB)"
    )
    print(f"   in Rust {_regime.last_compute_seconds():.2f} s")


if __name__ == "__main__":
    main()
