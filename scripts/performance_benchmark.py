#!/usr/bin/env python3
"""Performance baseline (manual: Monthly Maintenance, "Performance Baseline").

Measures detection throughput through `import regime` (batch, on a seeded synthetic panel)
and, when the service answers at --api, HTTP latency of /api/v1/health and
/api/v1/regime/current (sequential requests on one connection per request, loopback).
Writes the results to --baseline (JSON, default benchmarks/baseline.json) after comparing
them with the previous baseline there: a throughput drop or a latency rise of more than
--tolerance (10%) is a regression, printed and exit 1. The previous file is kept as
<baseline>.prev.

  python scripts/performance_benchmark.py --api http://localhost:8080
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reportlib as rl  # noqa: E402


def bench_detect(regime, symbols: int, bars: int, repeats: int) -> dict:
    t = regime.generate(symbols=symbols, bars=bars, seed=7)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        regime.detect(t)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"bars": t.num_rows, "median_s": med, "bars_per_s": t.num_rows / med}


def bench_http(base: str, path: str, key: str, n: int) -> dict:
    lat = []
    for _ in range(n):
        req = urllib.request.Request(base.rstrip("/") + path)
        if key:
            req.add_header("X-API-Key", key)
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return {"requests": n, "p50_ms": lat[n // 2], "p99_ms": lat[min(n - 1, int(n * 0.99))]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rl.add_source_args(p)
    p.add_argument("--baseline", default="benchmarks/baseline.json", help="baseline file (default %(default)s)")
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--bars", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--requests", type=int, default=500, help="HTTP requests per route (default 500)")
    p.add_argument("--tolerance", type=float, default=0.10, help="regression threshold (default 0.10)")
    a = p.parse_args()
    regime = rl.import_regime()
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "regime_version": regime.__version__,
        "detect": bench_detect(regime, a.symbols, a.bars, a.repeats),
    }
    if a.api:
        rl.api_get(a.api, "/api/v1/health", a.key)  # clear error when the service is absent
        result["http"] = {
            "health": bench_http(a.api, "/api/v1/health", a.key, a.requests),
            "regime_current": bench_http(a.api, "/api/v1/regime/current", a.key, a.requests),
        }
    print(json.dumps(result, indent=2))
    base = Path(a.baseline)
    regressions = []
    if base.is_file():
        prev = json.loads(base.read_text())
        checks = [("detect.bars_per_s", "higher")]
        if "http" in result and "http" in prev:
            # the median: a p99 of a few hundred sequential requests is too noisy to gate on
            checks += [(f"http.{r}.p50_ms", "lower") for r in ("health", "regime_current")]
        for key, better in checks:
            old, new = prev, result
            for part in key.split("."):
                old, new = (old or {}).get(part), (new or {}).get(part)
            if not old or not new:
                continue
            change = (new - old) / old
            worse = -change if better == "higher" else change
            mark = "REGRESSION" if worse > a.tolerance else "ok"
            print(f"{key}: {old:.4g} -> {new:.4g} ({change:+.1%}) {mark}")
            if mark != "ok":
                regressions.append(key)
        base.with_name(base.name + ".prev").write_text(base.read_text())
    else:
        print(f"no previous baseline at {base}: this run becomes the baseline")
    base.parent.mkdir(parents=True, exist_ok=True)
    base.write_text(json.dumps(result, indent=2) + "\n")
    if regressions:
        print(f"regression over {a.tolerance:.0%}: {', '.join(regressions)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
