"""The operations scripts in scripts/: --help, real runs on a store a service wrote, the
charts they claim, and a clear exit 2 when the store or the service is absent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
ALL = [
    "daily_report.py",
    "weekly_analysis.py",
    "performance_benchmark.py",
    "test_regime_detection.py",
    "test_db_connection.py",
    "analyze_profile.py",
]


def run(script: str, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("script", ALL)
def test_help(script):
    r = run(script, "--help")
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


def is_png(p: Path) -> bool:
    return p.is_file() and p.stat().st_size > 2000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_daily_report_from_a_replayed_day(served_store, tmp_path):
    d, store, bars, _ = served_store
    out = tmp_path / "daily"
    r = run("daily_report.py", "--store", store, "--bars", bars, "--out", out)
    assert r.returncode == 0, r.stderr
    for png in ["timeline.png", "distribution.png", "price_SYN000.png", "price_SYN001.png"]:
        assert is_png(out / png), png
    md = (out / "report.md").read_text()
    assert "SYN000" in md and "SYN001" in md and "## Transitions" in md
    assert "1440" in md, "a full day of minute bars per symbol"
    assert (out / "report.html").read_text().count("<img") == 4
    r = run("daily_report.py", "--store", store, "--api", "http://127.0.0.1:9", "--out", tmp_path / "x")
    assert r.returncode == 2 and "unreachable" in r.stderr


def test_weekly_analysis(served_store, tmp_path):
    _, store, _, _ = served_store
    out = tmp_path / "weekly"
    r = run("weekly_analysis.py", "--store", store, "--out", out)
    assert r.returncode == 0, r.stderr
    assert is_png(out / "volatility_mix.png") and is_png(out / "switches.png")
    assert "## Per day" in (out / "report.md").read_text()


def test_absent_store_is_one_clear_line(tmp_path):
    for script in ["daily_report.py", "weekly_analysis.py"]:
        r = run(script, "--store", tmp_path / "none.sqlite", "--out", tmp_path / "o")
        assert r.returncode == 2
        assert "no such store file" in r.stderr and "Traceback" not in r.stderr


def test_db_connection(served_store, tmp_path):
    _, store, _, _ = served_store
    r = run("test_db_connection.py", "--store", store)
    assert r.returncode == 0 and r.stdout.startswith("OK"), r.stdout + r.stderr
    r = run("test_db_connection.py", "--store", tmp_path / "none.sqlite")
    assert r.returncode == 1 and r.stdout.startswith("FAIL")


def test_detection_on_known_data_passes_and_fails_on_an_impossible_threshold():
    r = run("test_regime_detection.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout
    r = run("test_regime_detection.py", "--symbols", 2, "--bars", 3000, "--min-volatility", 0.999)
    assert r.returncode == 1 and "FAIL" in r.stdout


def test_performance_baseline_flags_a_regression(tmp_path):
    base = tmp_path / "baseline.json"
    args = ["--baseline", base, "--symbols", 2, "--bars", 3000, "--repeats", 1]
    r = run("performance_benchmark.py", *args)
    assert r.returncode == 0, r.stderr
    first = json.loads(base.read_text())
    assert first["detect"]["bars_per_s"] > 0
    # a previous baseline 10x faster than anything this machine does: a regression
    first["detect"]["bars_per_s"] *= 10
    base.write_text(json.dumps(first))
    r = run("performance_benchmark.py", *args)
    assert r.returncode == 1 and "REGRESSION" in r.stdout
    assert (tmp_path / "baseline.json.prev").is_file()


def test_analyze_profile(tmp_path):
    prof = tmp_path / "profile.jsonl"
    lines = []
    for i in range(30):
        lines.append(
            json.dumps(
                {
                    "ts": f"2026-11-28T10:{i:02d}:00Z",
                    "interval_s": 10.0,
                    "bars_per_s": 20000.0,
                    "detect_us_per_bar": 5.0,
                    "detect_core_share": 0.1,
                    "stored_rows_per_s": 20000.0,
                    "requests_per_s": 100.0,
                    "errors": 0,
                    "latency_ms": {"p50": 0.2, "p90": 0.5, "p99": 1.0},
                    "process_cpu_cores": 0.4,
                    "queue_depth": 900 if i > 20 else 0,
                    "queue_capacity": 1024,
                    "rows_buffered": 0,
                    "db_up": True,
                    "rss_bytes": 60_000_000,
                    "backend": "cpu",
                }
            )
        )
    prof.write_text("\n".join(lines) + "\nnot json\n")
    r = run("analyze_profile.py", "--profile", prof)
    assert r.returncode == 0, r.stderr
    assert "detection takes 25% of the process's CPU" in r.stdout
    assert "queue is often over half full" in r.stdout
    r = run("analyze_profile.py", "--profile", prof, "--json")
    assert json.loads(r.stdout)["intervals"] == 30
    r = run("analyze_profile.py", "--profile", tmp_path / "none.jsonl")
    assert r.returncode == 2 and "PROFILE=1" in r.stderr
