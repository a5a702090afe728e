#!/usr/bin/env python3
"""Database connection check (manual: Service Won't Start, step 4).

Opens the store the service uses (the embedded file, or PostgreSQL), reads the latest row
of regime_history and reports latency and freshness. The store comes from --store, or from
storage.* of --config (default /etc/adaptive_regime/config.yaml when it exists). Exit 0
when the store answers, 1 when it does not, 2 on bad arguments.

  python scripts/test_db_connection.py --config /etc/adaptive_regime/config.yaml
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reportlib as rl  # noqa: E402


def store_from_config(path: Path) -> str:
    try:
        import yaml
    except ImportError:
        rl.fail("reading --config needs PyYAML (pip install pyyaml), or pass --store")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        rl.fail(f"{path}: {e}")
    st = cfg.get("storage") or {}
    if st.get("type") == "postgres":
        if not st.get("url"):
            rl.fail(f"{path}: storage.type is postgres but storage.url is empty")
        return st["url"]
    return str(st.get("path") or "data/regime.sqlite")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", help="embedded store file or PostgreSQL connection string")
    p.add_argument("--config", help="config.yaml to take storage.* from")
    a = p.parse_args()
    if a.store:
        store = a.store
    elif a.config:
        store = store_from_config(Path(a.config))
    elif Path("/etc/adaptive_regime/config.yaml").is_file():
        store = store_from_config(Path("/etc/adaptive_regime/config.yaml"))
    else:
        store = os.environ.get("REGIME_STORE", "data/regime.sqlite")
    regime = rl.import_regime()
    shown = store.split("password=")[0] if "password=" in store else store
    t = time.perf_counter()
    try:
        if "://" not in store and "host=" not in store and not Path(store).is_file():
            raise regime.StoreError(f"{store}: no such store file")
        h = regime.history(store, limit=1)
    except regime.StoreError as e:
        print(f"FAIL {shown}: {e}")
        return 1
    ms = (time.perf_counter() - t) * 1000
    if h.num_rows == 0:
        print(f"OK {shown}: connected in {ms:.1f} ms; regime_history is empty")
    else:
        row = h.to_pylist()[0]
        print(f"OK {shown}: connected in {ms:.1f} ms; latest row {row['timestamp']} {row['symbol']} regime {row['regime_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
