"""Shared helpers of the operations scripts (daily_report.py, weekly_analysis.py, ...).

They read the regime history through `import regime` (the embedded store file or
PostgreSQL) and the live numbers from the HTTP API. Every failure to reach either ends
the script with one clear line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

REGIME_NAMES = [
    f"{v}_vol_{t}_{s}"
    for v in ("low", "medium", "high")
    for t in ("down", "neutral", "up")
    for s in ("trending", "mean_reverting")
]


# Detection on known data (a seeded synthetic panel, last 30% scored): thresholds below what
# the engine reaches there (volatility 0.98, trend 0.60, structure 0.80, all 18 0.48; trend
# varies most between seeds, 0.50-0.60) and far above chance (1/3, 1/3, 1/2, 1/18): a
# broken detector falls to chance and fails. test_regime_detection.py and
# deploy/validate_deployment.py judge with them.
DETECTION_MIN = {"volatility": 0.70, "trend": 0.45, "structure": 0.60, "regime": 0.30}


def manual_metrics(m: dict) -> list:
    """The manual's metric table judged on an `/api/v1/metrics` answer: (name, value or
    None, display format, "ok" | "WARNING" | "CRITICAL" (None without a value)) per row."""
    acc = m.get("regime_accuracy")
    rows = [
        # name, value, warning, critical, high is bad, format
        ("cpu %", m.get("cpu_usage_percent"), 70, 85, True, "{:.1f}"),
        ("memory %", m.get("memory_usage_percent"), 70, 90, True, "{:.1f}"),
        ("disk free %", m.get("disk_free_percent"), 20, 10, False, "{:.1f}"),
        ("latency p99 ms", (m.get("latency_ms") or {}).get("p99"), 150, 200, True, "{:.1f}"),
        ("error rate %", 100 * (m.get("error_rate") or 0), 2, 5, True, "{:.2f}"),
        ("queue depth", m.get("queue_depth"), 500, 1000, True, "{:.0f}"),
        ("regime accuracy %", None if acc is None else 100 * acc, 85, 80, False, "{:.1f}"),
    ]
    out = []
    for name, v, warn, crit, high_is_bad, fmt in rows:
        if v is None:
            out.append((name, None, fmt, None))
            continue
        bad = (lambda t: v > t) if high_is_bad else (lambda t: v < t)
        out.append((name, v, fmt, "CRITICAL" if bad(crit) else "WARNING" if bad(warn) else "ok"))
    return out


def fail(msg: str, code: int = 2) -> "NoReturn":  # noqa: F821
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def import_regime():
    try:
        import regime  # noqa: F401
    except ImportError as e:
        fail(f"the regime Python module is not installed ({e}); run: pip install ./regime-py")
    return sys.modules["regime"]


def plotting():
    """matplotlib (headless) and polars, or one line saying how to install them."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import polars as pl
    except ImportError as e:
        fail(f"the reports need matplotlib and polars ({e}); run: pip install './regime-py[reports]'")
    return plt, pl


def add_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        default=os.environ.get("REGIME_STORE", "data/regime.sqlite"),
        help="embedded store file, or a PostgreSQL connection string "
        "(default: $REGIME_STORE or data/regime.sqlite)",
    )
    p.add_argument(
        "--api",
        default=os.environ.get("REGIME_API", ""),
        help="service base URL for live metrics, e.g. http://localhost:8080 (default: $REGIME_API; none = store only)",
    )
    p.add_argument(
        "--key",
        default=os.environ.get("REGIME_API_KEY", ""),
        help="API key with read scope (default: $REGIME_API_KEY)",
    )


def api_get(base: str, path: str, key: str = "", timeout: float = 5.0) -> dict:
    req = urllib.request.Request(base.rstrip("/") + path)
    if key:
        req.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        fail(f"{base}{path}: HTTP {e.code} {e.read().decode(errors='replace')[:200]}")
    except (urllib.error.URLError, OSError) as e:
        fail(f"{base}{path}: service unreachable ({e}); is `regime serve` running?")


def load_history(store: str, start: datetime | None = None, end: datetime | None = None, limit: int = 5_000_000):
    """The history between start and end (UTC) as a polars DataFrame, oldest first."""
    regime = import_regime()
    if "://" not in store and "host=" not in store and not Path(store).is_file():
        fail(f"{store}: no such store file (the service's storage.path); pass --store")
    ms = lambda d: int(d.timestamp() * 1000) if d else None  # noqa: E731
    try:
        df = regime.history(store, start_ms=ms(start), end_ms=ms(end), limit=limit, as_polars=True)
    except regime.StoreError as e:
        fail(str(e))
    return df.sort(["symbol", "timestamp"])


def day_bounds(day: str | None, df_latest=None) -> tuple[datetime, datetime]:
    if day in (None, "", "today"):
        d = datetime.now(timezone.utc).date()
    elif day == "latest":
        if df_latest is None:
            fail("no data to find the latest day in")
        d = df_latest.date()
    else:
        try:
            d = datetime.strptime(day, "%Y-%m-%d").date()
        except ValueError:
            fail(f"--date {day!r}: expected YYYY-MM-DD, today or latest")
    start = datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
    return start, start + timedelta(days=1) - timedelta(milliseconds=1)


def segments(df):
    """Runs of one regime per symbol: symbol, regime_id, start, end, bars."""
    import polars as pl

    return (
        df.with_columns(
            (pl.col("regime_id") != pl.col("regime_id").shift(1).over("symbol")).fill_null(True).cum_sum().alias("run")
        )
        .group_by(["symbol", "run"], maintain_order=True)
        .agg(
            pl.col("regime_id").first(),
            pl.col("timestamp").first().alias("start"),
            pl.col("timestamp").last().alias("end"),
            pl.len().alias("bars"),
        )
    )


def transitions(df):
    """Counts of (from, to) regime changes per symbol, summed."""
    import polars as pl

    return (
        df.with_columns(pl.col("regime_id").shift(1).over("symbol").alias("prev"))
        .filter(pl.col("prev").is_not_null() & (pl.col("prev") != pl.col("regime_id")))
        .group_by(["prev", "regime_id"])
        .agg(pl.len().alias("count"))
        .sort("count", descending=True)
    )


def regime_colors():
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(18)]


def md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


def write_html(md_path: Path, title: str) -> Path:
    """A self-contained HTML page of the Markdown report (images referenced beside it)."""
    import html
    import re

    lines = md_path.read_text().splitlines()
    body, in_table = [], False
    for ln in lines:
        if ln.startswith("|"):
            cells = [c.strip() for c in ln.strip("|").split("|")]
            if all(re.fullmatch(r"-+", c) for c in cells):
                continue
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        m = re.fullmatch(r"!\[(.*)\]\((.*)\)", ln.strip())
        if m:
            body.append(f'<p><img alt="{html.escape(m[1])}" src="{html.escape(m[2])}" style="max-width:100%"></p>')
        elif ln.startswith("#"):
            level = len(ln) - len(ln.lstrip("#"))
            body.append(f"<h{level}>{html.escape(ln[level:].strip())}</h{level}>")
        elif ln.strip():
            body.append(f"<p>{html.escape(ln)}</p>")
    if in_table:
        body.append("</table>")
    out = md_path.with_suffix(".html")
    out.write_text(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "td{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}</style>\n"
        + "\n".join(body)
    )
    return out
