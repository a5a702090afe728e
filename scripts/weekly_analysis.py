#!/usr/bin/env python3
"""Weekly regime analysis (manual: Weekly Maintenance, every Monday).

Per day of the last 7 (ending --end, default the last day with data): bars, regime
switches, mean run length, mean confidence and the share of each volatility state, per
symbol and overall, with the week-over-week trend; a Markdown/HTML report and PNG charts
(daily volatility mix, daily switches per symbol).

  python scripts/weekly_analysis.py --store data/regime.sqlite
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reportlib as rl  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rl.add_source_args(p)
    p.add_argument("--end", default="latest", help="last day of the week: YYYY-MM-DD, today or latest (default)")
    p.add_argument("--days", type=int, default=7, help="days covered (default 7)")
    p.add_argument("--out", help="output directory (default reports/weekly-<end>)")
    a = p.parse_args()
    if a.days < 1:
        rl.fail("--days must be >= 1")

    plt, pl = rl.plotting()

    latest = rl.load_history(a.store, limit=1)
    if latest.height == 0:
        rl.fail(f"{a.store}: the store holds no regime history yet")
    _, end = rl.day_bounds(a.end, latest["timestamp"][0])
    start = end - timedelta(days=a.days) + timedelta(milliseconds=1)
    df = rl.load_history(a.store, start, end)
    if df.height == 0:
        rl.fail(f"no regime history between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
    out = Path(a.out or f"reports/weekly-{end:%Y-%m-%d}")
    out.mkdir(parents=True, exist_ok=True)

    df = df.with_columns(
        pl.col("timestamp").dt.date().alias("day"),
        (pl.col("regime_id") != pl.col("regime_id").shift(1).over("symbol")).fill_null(False).alias("switch"),
    )
    daily = (
        df.group_by("day")
        .agg(
            pl.len().alias("bars"),
            pl.col("switch").sum().alias("switches"),
            pl.col("confidence").mean().alias("confidence"),
            (pl.col("volatility") == 0).mean().alias("low_vol"),
            (pl.col("volatility") == 1).mean().alias("medium_vol"),
            (pl.col("volatility") == 2).mean().alias("high_vol"),
        )
        .sort("day")
        .with_columns((pl.col("bars") / (pl.col("switches") + 1)).alias("mean_run"))
    )
    per_symbol = (
        df.group_by(["symbol", "day"]).agg(pl.col("switch").sum().alias("switches")).sort(["symbol", "day"])
    )

    def trend(col: str) -> str:
        v = daily[col].to_list()
        if len(v) < 2 or v[0] == 0:
            return "n/a"
        return f"{(v[-1] - v[0]) / abs(v[0]):+.1%}"

    fig, ax = plt.subplots(figsize=(10, 4))
    days = [str(d) for d in daily["day"]]
    bottom = [0.0] * len(days)
    for col, color in [("low_vol", "#55a868"), ("medium_vol", "#dd8452"), ("high_vol", "#c44e52")]:
        vals = daily[col].to_list()
        ax.bar(days, vals, bottom=bottom, color=color, label=col.replace("_", " "))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("share of bars")
    ax.set_title("Volatility mix per day")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(out / "volatility_mix.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    for s in per_symbol["symbol"].unique(maintain_order=True).to_list()[:12]:
        d = per_symbol.filter(pl.col("symbol") == s)
        ax.plot([str(x) for x in d["day"]], d["switches"], marker="o", label=s)
    ax.set_ylabel("regime switches")
    ax.set_title("Switches per day per symbol")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    fig.savefig(out / "switches.png", dpi=110)
    plt.close(fig)

    md = [f"# Weekly regime analysis — {start:%Y-%m-%d} to {end:%Y-%m-%d}", ""]
    md.append(f"From `{a.store}`: {df.height} bars, {df['symbol'].n_unique()} symbols, {daily.height} days with data.")
    md += ["", "## Per day", ""]
    md.append(rl.md_table(
        ["day", "bars", "switches", "mean run", "mean confidence", "low vol", "medium vol", "high vol"],
        [[d, b, s, f"{r:.1f}", f"{c:.3f}", f"{l:.1%}", f"{m:.1%}", f"{h:.1%}"]
         for d, b, s, r, c, l, m, h in zip(days, daily["bars"], daily["switches"], daily["mean_run"], daily["confidence"], daily["low_vol"], daily["medium_vol"], daily["high_vol"])],
    ))
    md += ["", "## Trend over the period (last day vs first)", ""]
    md.append(rl.md_table(["measure", "change"], [[c, trend(c)] for c in ["switches", "mean_run", "confidence", "high_vol"]]))
    md += ["", "![volatility mix](volatility_mix.png)", "", "![switches](switches.png)", ""]
    if a.api:
        live = rl.api_get(a.api, "/api/v1/metrics", a.key)
        md += ["## Live service", "", rl.md_table(["ex-post accuracy", "error rate", "requests", "uptime s"],
               [[live.get("regime_accuracy"), live.get("error_rate"), live.get("requests_total"), round(live.get("uptime_seconds", 0))]])]
    md_path = out / "report.md"
    md_path.write_text("\n".join(md) + "\n")
    html = rl.write_html(md_path, "Weekly regime analysis")
    print(f"wrote {md_path} and {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
