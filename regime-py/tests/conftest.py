"""Shared fixtures: the `regime` binary and a store written by a real `regime serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

import regime

ROOT = Path(__file__).resolve().parents[2]


def regime_bin() -> Path | None:
    cands = []
    if os.environ.get("REGIME_BIN"):
        cands.append(Path(os.environ["REGIME_BIN"]))
    if os.environ.get("CARGO_TARGET_DIR"):
        cands.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "regime")
    cands.append(ROOT / "target" / "release" / "regime")
    for c in cands:
        if c.is_file():
            return c
    return None


def serve_replay(d: Path, storage_yaml: str, store_arg: str, ready) -> int:
    """Replay two symbols x 2 days of minute bars into a real `regime serve` with the given
    storage section until `ready(store_arg, n)` says all rows are in; stop it with SIGTERM
    (everything flushed). Returns the number of bars."""
    b = regime_bin()
    if b is None:
        pytest.skip("regime binary not built (cargo build --release -p regime-server)")
    bars = regime.generate(symbols=2, bars=2880, seed=4, step_secs=60, start_ms=1_795_651_200_000)
    cols = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    pacsv.write_csv(bars.select(cols), d / "replay.csv")
    (d / "config.yaml").write_text(
        "feeds:\n  demo: false\n  replay:\n    - {path: replay.csv, bars_per_second: 100000}\n" + storage_yaml
    )
    env = dict(os.environ, REGIME_DEV_KEY="k", REGIME_DEVICE="cpu")
    p = subprocess.Popen(
        [b, "serve", "--config", "config.yaml", "--bind", "127.0.0.1:0"],
        cwd=d,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not ready(store_arg, bars.num_rows):
            time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    return bars.num_rows


def _all_in(store: str, n: int) -> bool:
    if "host=" not in store and not Path(store).is_file():
        return False
    try:
        return regime.history(store, limit=10_000_000).num_rows >= n
    except regime.StoreError:
        return False


@pytest.fixture(scope="session")
def served_pg(tmp_path_factory):
    """(connection string, bars): the same replay into PostgreSQL (REGIME_TEST_PG, which
    scripts/test.sh sets after starting a throwaway cluster with a regime_py database)."""
    base = os.environ.get("REGIME_TEST_PG")
    if not base:
        pytest.skip("REGIME_TEST_PG not set (scripts/test.sh starts PostgreSQL and sets it)")
    url = f"{base} dbname=regime_py"
    # a fresh database each run: a cluster kept between runs holds the last run's rows
    for sql in ["DROP DATABASE IF EXISTS regime_py", "CREATE DATABASE regime_py"]:
        r = subprocess.run(["psql", f"{base} dbname=postgres", "-qc", sql], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail(f"psql {sql}: {r.stderr.strip()}")
    d = tmp_path_factory.mktemp("served_pg")
    n = serve_replay(d, f"storage: {{type: postgres, url: '{url}'}}\n", url, _all_in)
    return url, n


@pytest.fixture(scope="session")
def served_store(tmp_path_factory):
    """(directory, store path, bars file, bars): the replay into the embedded store."""
    d = tmp_path_factory.mktemp("served")
    store = d / "data" / "regime.sqlite"
    n = serve_replay(d, "storage: {path: data/regime.sqlite}\n", str(store), _all_in)
    return d, store, d / "replay.csv", n
