#!/usr/bin/env python3
"""Profile analysis (manual: Performance Tuning, "PROFILE=1 systemctl restart ...").

With PROFILE=1 the service appends one JSON line every 10 s to <logging.dir>/profile.jsonl:
throughput, detection time per bar and the share of a core it takes, store rows/s, request
rate and latency quantiles, CPU cores used, queue depth, buffered rows. This script
summarises a file (median / p95 / max per measure), shows where the CPU goes, and names
the bottleneck it sees. Exit 0, or 2 when there is no profile to read.

  python scripts/analyze_profile.py --profile /var/log/adaptive_regime/profile.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reportlib as rl  # noqa: E402


def pct(v: list[float], q: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))] if v else float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="/var/log/adaptive_regime/profile.jsonl", help="profile.jsonl (default %(default)s)")
    p.add_argument("--last", type=int, default=360, help="intervals analysed, newest first (default 360 = 1 hour)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = p.parse_args()
    path = Path(a.profile)
    if not path.is_file():
        rl.fail(f"{path}: no profile (start the service with PROFILE=1 and wait at least 10 s)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            print(f"warning: {path}:{n}: not JSON ({e}); skipped", file=sys.stderr)
    rows = rows[-a.last:]
    if not rows:
        rl.fail(f"{path}: no profile lines yet")
    measures = {
        "bars_per_s": [r["bars_per_s"] for r in rows],
        "detect_us_per_bar": [r["detect_us_per_bar"] for r in rows if r["bars_per_s"] > 0],
        "detect_core_share": [r["detect_core_share"] for r in rows],
        "stored_rows_per_s": [r["stored_rows_per_s"] for r in rows],
        "requests_per_s": [r["requests_per_s"] for r in rows],
        "latency_p99_ms": [r["latency_ms"]["p99"] for r in rows if r["latency_ms"]["p99"] is not None],
        "process_cpu_cores": [r["process_cpu_cores"] for r in rows],
        "queue_fill": [r["queue_depth"] / max(1, r["queue_capacity"]) for r in rows],
        "rows_buffered": [r["rows_buffered"] for r in rows],
        "rss_mb": [r["rss_bytes"] / 1e6 for r in rows],
    }
    summary = {
        k: {"median": statistics.median(v), "p95": pct(v, 0.95), "max": max(v)} if v else None
        for k, v in measures.items()
    }
    findings = []
    cpu = summary["process_cpu_cores"]["median"] if summary["process_cpu_cores"] else 0
    det = summary["detect_core_share"]["median"] if summary["detect_core_share"] else 0
    if cpu > 0:
        findings.append(f"detection takes {det / cpu:.0%} of the process's CPU ({det:.2f} of {cpu:.2f} cores)")
    if summary["queue_fill"] and summary["queue_fill"]["p95"] > 0.5:
        findings.append("the ingest queue is often over half full: detection or the store is the bottleneck")
    if summary["rows_buffered"] and summary["rows_buffered"]["max"] > 0:
        findings.append("rows were buffered for the store: the database was down or slow")
    if not any(r["db_up"] for r in rows[-3:]):
        findings.append("the database is down in the latest intervals")
    if summary["latency_p99_ms"] and summary["latency_p99_ms"]["p95"] > 2.0:
        findings.append("request p99 latency above 2 ms in at least 5% of intervals")
    if summary["rss_mb"] and len(measures["rss_mb"]) > 6:
        first, last = measures["rss_mb"][: len(rows) // 3], measures["rss_mb"][-(len(rows) // 3):]
        growth = statistics.mean(last) / statistics.mean(first) - 1
        if growth > 0.05:
            findings.append(f"memory grew {growth:.0%} over the period")
    if not findings[1:]:
        findings.append("no bottleneck flagged")
    if a.json:
        print(json.dumps({"intervals": len(rows), "summary": summary, "findings": findings}, indent=2))
        return 0
    print(f"{path}: {len(rows)} intervals of ~10 s, {rows[0]['ts']} .. {rows[-1]['ts']}, backend {rows[-1].get('backend')}")
    print(f"{'measure':<20}{'median':>12}{'p95':>12}{'max':>12}")
    for k, v in summary.items():
        if v:
            print(f"{k:<20}{v['median']:>12.3f}{v['p95']:>12.3f}{v['max']:>12.3f}")
    print("findings:")
    for f in findings:
        print(f"  - {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
