#!/usr/bin/env python3
"""Detection on known data (manual: Problem: Regime Detection Errors, step 4).

Generates a seeded synthetic panel whose true regimes are known, runs causal detection
through `import regime`, and scores the last part of each series per dimension and for
all 18 regimes. Exit 0 when every score is at or above its threshold, 1 otherwise (2 when
the module is missing).

  python scripts/test_regime_detection.py            # defaults: 4 symbols x 4000 bars
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reportlib as rl  # noqa: E402

DEFAULTS = rl.DETECTION_MIN  # (see reportlib)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--symbols", type=int, default=4)
    p.add_argument("--bars", type=int, default=4000)
    p.add_argument("--seed", type=int, default=20261128)
    p.add_argument("--score-last", type=float, default=0.3, help="fraction of each series scored (default 0.3)")
    for k, v in DEFAULTS.items():
        p.add_argument(f"--min-{k}", type=float, default=v, help=f"threshold for {k} (default {v})")
    a = p.parse_args()
    regime = rl.import_regime()
    bars = regime.generate(symbols=a.symbols, bars=a.bars, seed=a.seed)
    try:
        r = regime.evaluate(bars, score_last=a.score_last)
    except regime.RegimeError as e:
        rl.fail(f"detection failed: {e}", code=1)
    acc = r["accuracy"]["final"]
    ok = True
    for k in DEFAULTS:
        need = getattr(a, f"min_{k}")
        got = acc[k]
        status = "ok" if got is not None and got >= need else "FAIL"
        ok &= status == "ok"
        print(f"{k:<11} accuracy {got:.3f}  (threshold {need:.2f})  {status}")
    print("PASS" if ok else "FAIL: detection below threshold on known data")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
