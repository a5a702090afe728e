#!/usr/bin/env python3
"""Daily regime report (manual: End of Day Procedures).

Reads one day of regime history from the store (`import regime`), and the service's live
numbers from the API when --api is given, and writes a Markdown and an HTML report with
PNG charts: price coloured by regime (with --bars, the day's OHLCV file), the regime
timeline per symbol, the regime distribution, and request/detection latency.

  python scripts/daily_report.py --store data/regime.sqlite --date latest \\
      --bars datasets/fixtures/sample.csv --api http://localhost:8080 --key $KEY
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reportlib as rl  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rl.add_source_args(p)
    p.add_argument("--date", default="latest", help="YYYY-MM-DD, today, or latest (the last day with data; default)")
    p.add_argument("--bars", help="the day's bars (CSV/Parquet with timestamp, symbol, close) for the price charts")
    p.add_argument("--out", help="output directory (default reports/daily-<date>)")
    p.add_argument("--max-symbols", type=int, default=8, help="symbols charted (default 8)")
    a = p.parse_args()

    plt, pl = rl.plotting()
    import matplotlib.dates
    import matplotlib.patches

    latest = rl.load_history(a.store, limit=1)
    if latest.height == 0:
        rl.fail(f"{a.store}: the store holds no regime history yet")
    start, end = rl.day_bounds(a.date, latest["timestamp"][0])
    df = rl.load_history(a.store, start, end)
    day = start.strftime("%Y-%m-%d")
    if df.height == 0:
        rl.fail(f"no regime history on {day} (try --date latest)")
    out = Path(a.out or f"reports/daily-{day}")
    out.mkdir(parents=True, exist_ok=True)
    colors = rl.regime_colors()
    symbols = df["symbol"].unique(maintain_order=True).to_list()
    shown = symbols[: a.max_symbols]
    seg = rl.segments(df)

    # --- numbers
    per_symbol = []
    for s in symbols:
        d = df.filter(pl.col("symbol") == s)
        sg = seg.filter(pl.col("symbol") == s)
        per_symbol.append(
            [s, d.height, sg.height - 1, f"{sg['bars'].mean():.1f}", rl.REGIME_NAMES[d["regime_id"][-1]], f"{d['confidence'].mean():.3f}"]
        )
    dist = df.group_by("regime_id").agg(pl.len().alias("n")).sort("n", descending=True)
    trans = rl.transitions(df).head(15)
    live = rl.api_get(a.api, "/api/v1/metrics", a.key) if a.api else None

    # --- charts
    gaps = df["timestamp"].diff().drop_nulls().dt.total_seconds()
    step = float(gaps.filter(gaps > 0).median() or 60.0) if gaps.len() else 60.0
    fig, ax = plt.subplots(figsize=(12, 0.6 * len(shown) + 1.5))
    for k, s in enumerate(shown):
        sg = seg.filter(pl.col("symbol") == s)
        for st, en, rid in zip(sg["start"], sg["end"], sg["regime_id"]):
            # matplotlib dates are in days; a run covers its bars up to the next one
            width = ((en - st).total_seconds() + step) / 86400
            ax.barh(k, width, left=matplotlib.dates.date2num(st), height=0.8, color=colors[rid])
    ax.set_yticks(range(len(shown)), shown)
    ax.xaxis_date()
    ax.set_title(f"Regime timeline {day} (UTC)")
    handles = [matplotlib.patches.Patch(color=colors[r], label=rl.REGIME_NAMES[r]) for r in sorted(df["regime_id"].unique().to_list())]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out / "timeline.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar([rl.REGIME_NAMES[r] for r in dist["regime_id"]], dist["n"], color=[colors[r] for r in dist["regime_id"]])
    ax.set_ylabel("bars")
    ax.set_title(f"Regime distribution {day}")
    ax.tick_params(axis="x", labelrotation=75, labelsize=7)
    fig.tight_layout()
    fig.savefig(out / "distribution.png", dpi=110)
    plt.close(fig)

    price_charts = []
    if a.bars:
        import regime

        path = Path(a.bars)
        if not path.is_file():
            rl.fail(f"--bars {path}: no such file")
        if path.suffix == ".parquet":
            bars = pl.read_parquet(path)
        else:
            bars = pl.read_csv(path, try_parse_dates=True)
        if "close" not in bars.columns or "timestamp" not in bars.columns:
            rl.fail(f"--bars {path}: needs timestamp and close columns (found {bars.columns})")
        if "symbol" not in bars.columns:
            bars = bars.with_columns(pl.lit(symbols[0]).alias("symbol"))
        bars = bars.with_columns(pl.col("timestamp").cast(pl.Datetime("ms", "UTC")))
        joined = df.join(bars.select(["symbol", "timestamp", "close"]), on=["symbol", "timestamp"], how="inner")
        for s in shown:
            d = joined.filter(pl.col("symbol") == s)
            if d.height == 0:
                continue
            fig, ax = plt.subplots(figsize=(12, 4))
            ax.plot(d["timestamp"], d["close"], color="#999", lw=0.6, zorder=1)
            ax.scatter(d["timestamp"], d["close"], c=[colors[r] for r in d["regime_id"]], s=6, zorder=2)
            ax.set_title(f"{s}: close coloured by regime, {day}")
            hs = [matplotlib.patches.Patch(color=colors[r], label=rl.REGIME_NAMES[r]) for r in sorted(d["regime_id"].unique().to_list())]
            ax.legend(handles=hs, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            fig.tight_layout()
            name = f"price_{''.join(c if c.isalnum() else '_' for c in s)}.png"
            fig.savefig(out / name, dpi=110)
            plt.close(fig)
            price_charts.append((s, name))
        del regime

    if live:
        lat = live.get("latency_ms") or {}
        fig, ax = plt.subplots(figsize=(6, 3.5))
        labels = ["request p50 (ms)", "request p99 (ms)", "detection mean (ms)"]
        vals = [lat.get("p50") or 0.0, lat.get("p99") or 0.0, (live.get("detection_latency_us_mean") or 0.0) / 1000]
        ax.bar(labels, vals, color=["#4c72b0", "#c44e52", "#55a868"])
        ax.set_title("Latency (live, from /api/v1/metrics)")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)

    # --- report
    md = [f"# Daily regime report — {day}", ""]
    md.append(f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from `{a.store}`: {df.height} bars, {len(symbols)} symbols.")
    md += ["", "## Per symbol", ""]
    md.append(rl.md_table(["symbol", "bars", "switches", "mean run (bars)", "regime at close", "mean confidence"], per_symbol))
    md += ["", "## Distribution", ""]
    md.append(rl.md_table(["regime", "bars", "share"], [[rl.REGIME_NAMES[r], n, f"{n / df.height:.1%}"] for r, n in zip(dist["regime_id"], dist["n"])]))
    md += ["", "![distribution](distribution.png)", "", "## Timeline", "", "![timeline](timeline.png)", ""]
    md += ["## Transitions (most frequent)", ""]
    md.append(rl.md_table(["from", "to", "count"], [[rl.REGIME_NAMES[f], rl.REGIME_NAMES[t], n] for f, t, n in zip(trans["prev"], trans["regime_id"], trans["count"])]))
    md += ["", "## Accuracy, latency and errors", ""]
    if live:
        lat = live.get("latency_ms") or {}
        fmt = lambda x: "n/a" if x is None else f"{x:.3f}"  # noqa: E731
        md.append(rl.md_table(
            ["ex-post accuracy (lag 32)", "request p50 ms", "request p99 ms", "detection mean µs", "error rate", "requests"],
            [[fmt(live.get("regime_accuracy")), fmt(lat.get("p50")), fmt(lat.get("p99")), fmt(live.get("detection_latency_us_mean")), fmt(live.get("error_rate")), live.get("requests_total")]],
        ))
        md += ["", "![latency](latency.png)"]
    else:
        md.append("Live accuracy, latency and error rate come from the service: pass `--api URL` (and `--key`).")
    md += ["", "## Price coloured by regime", ""]
    if price_charts:
        for s, name in price_charts:
            md += [f"![{s}]({name})", ""]
    else:
        md.append("Pass `--bars FILE` (the day's OHLCV) for price charts.")
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n")
    html = rl.write_html(md_path, f"Daily regime report {day}")
    print(f"wrote {md_path} and {html} ({len(price_charts)} price charts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
