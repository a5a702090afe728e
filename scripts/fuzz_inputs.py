#!/usr/bin/env python3
"""Damaged input files against `regime detect`: byte-level mutants of a small file of ours
(a byte changed, a run deleted or inserted), each run once, reporting every run that ends
other than as `detect` promises — exit 0 (read) or 2 (one `error:` line naming the file,
or the listed bad rows), no output and no temporary file left behind on an error.

    python3 scripts/fuzz_inputs.py --format feather --runs 5000 --seed 21
    python3 scripts/fuzz_inputs.py --format all --runs 2000

Formats: csv, csv.gz, parquet, arrow (Arrow IPC file), feather (LZ4-compressed Arrow
file, as pyarrow writes it), arrows (ZSTD-compressed Arrow stream). Needs a release build
(`REGIME_BIN`, else $CARGO_TARGET_DIR/release/regime, else target/release/regime) and
pyarrow. Exit 1 when any run failed; the failing inputs are kept in the work folder
(`case-N.EXT`) to reproduce them. The committed cases are in
regime-server/tests/data/corrupt/ (tested by cli.rs).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

FORMATS = ["csv", "csv.gz", "parquet", "arrow", "feather", "arrows"]


def regime_bin() -> Path:
    cands = [os.environ.get("REGIME_BIN")]
    if os.environ.get("CARGO_TARGET_DIR"):
        cands.append(os.path.join(os.environ["CARGO_TARGET_DIR"], "release", "regime"))
    cands.append(str(Path(__file__).resolve().parents[1] / "target" / "release" / "regime"))
    for c in cands:
        if c and Path(c).is_file():
            return Path(c)
    sys.exit("no regime binary: cargo build --release -p regime-server (or set REGIME_BIN)")


def sample(regime: Path, fmt: str, work: Path) -> bytes:
    """A small valid file of two symbols in `fmt`."""
    import pyarrow.feather as feather
    import pyarrow.ipc as ipc

    base = work / "base.arrow"
    subprocess.run([regime, "generate", "--output", base, "--bars", "300", "--symbols", "2",
                    "--seed", "107500"], check=True, capture_output=True)
    out = work / f"sample.{fmt}"
    if fmt in ("csv", "csv.gz", "parquet", "arrow"):
        subprocess.run([regime, "generate", "--output", out, "--bars", "300", "--symbols", "2",
                        "--seed", "107500"], check=True, capture_output=True)
    else:
        t = feather.read_table(base)
        if fmt == "feather":
            feather.write_feather(t, out, compression="lz4")
        else:
            options = ipc.IpcWriteOptions(compression="zstd")
            with ipc.new_stream(out, t.schema, options=options) as w:
                w.write_table(t, max_chunksize=100)
    return out.read_bytes()


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        p = rng.randrange(len(b))
        op = rng.random()
        if op < 0.6:
            b[p] = rng.randrange(256)
        elif op < 0.8:
            del b[p:p + rng.randrange(1, 40)]
        else:
            b[p:p] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 10)))
    return bytes(b)


def run(regime: Path, fmt: str, runs: int, seed: int, work: Path) -> int:
    data = sample(regime, fmt, work)
    rng = random.Random(seed)
    inp, out = work / f"m.{fmt}", work / "out" / "o.csv"
    out.parent.mkdir(exist_ok=True)
    failed = 0
    for i in range(runs):
        b = mutate(data, rng)
        inp.write_bytes(b)
        try:
            r = subprocess.run([regime, "detect", "--input", inp, "--output", out],
                               capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            r = None
        err = r.stderr.decode(errors="replace") if r else ""
        left = sorted(os.listdir(out.parent))
        why = None
        if r is None:
            why = "timed out"
        elif r.returncode not in (0, 2) or "panicked" in err:
            why = f"exit {r.returncode}: {err.strip().splitlines()[-1:] if err.strip() else ''}"
        elif r.returncode == 2 and "(listed above)" not in err and len(err.strip().splitlines()) != 1:
            why = f"not one line: {err[:200]!r}"
        elif r.returncode == 2 and left:
            why = f"left behind: {left}"
        for f in left:
            (out.parent / f).unlink()
        if why:
            failed += 1
            case = work / f"case-{i}.{fmt}"
            case.write_bytes(b)
            print(f"{fmt} run {i}: {why} (input kept: {case})")
    print(f"{fmt}: {runs} mutants, {failed} failed")
    return failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--format", default="all", choices=FORMATS + ["all"])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", help="folder for the inputs (default: a new temporary one)")
    a = ap.parse_args()
    regime = regime_bin()
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="regime-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    fmts = FORMATS if a.format == "all" else [a.format]
    failed = sum(run(regime, f, a.runs, a.seed, work) for f in fmts)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
