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


@pytest.fixture(scope="session")
def served_store(tmp_path_factory):
    """(directory, store path, bars file): two symbols x 2 days of minute bars replayed
    into a real service, which is then stopped with SIGTERM (everything flushed)."""
    b = regime_bin()
    if b is None:
        pytest.skip("regime binary not built (cargo build --release -p regime-server)")
    d = tmp_path_factory.mktemp("served")
    bars = regime.generate(symbols=2, bars=2880, seed=4, step_secs=60, start_ms=1_795_651_200_000)
    cols = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    pacsv.write_csv(bars.select(cols), d / "replay.csv")
    (d / "config.yaml").write_text(
        "feeds:\n  demo: false\n  replay:\n    - {path: replay.csv, bars_per_second: 100000}\n"
        "storage: {path: data/regime.sqlite}\n"
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
    store = d / "data" / "regime.sqlite"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if store.is_file():
                try:
                    if regime.history(str(store)).num_rows >= bars.num_rows:
                        break
                except regime.StoreError:
                    pass
            time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    return d, store, d / "replay.csv", bars.num_rows
