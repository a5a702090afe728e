#!/usr/bin/env python3
"""Share of the oracle's lift, per seed and summarized, for many fresh seeds (no anchors).

Runs the `oracle_check` example (our causal pipeline, the HMM member alone and the oracle on
the same generated series) once per seed and prints, for the final labels, each dimension and
the full label; then min / mean over the seeds, and how often the ensemble (before the
transition manager) beats the HMM member on the full label.

    cargo build --release -p datasets --examples
    python3 benches/accuracy/seeds.py --symbols 1 --bars 100000 --seeds 40001-40010
"""
import argparse, os, re, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROW = re.compile(r"^\s*(\S+)((?:\s+(?:[0-9.]+|n/a)\s+\(\s*(?:-?[0-9.]+|n/a)\))+)\s*$")
SHARE = re.compile(r"\(\s*(-?[0-9.]+|n/a)\)")


def shares(text):
    rows = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = [None if s == "n/a" else float(s) for s in SHARE.findall(m.group(2))]
    return rows


def seeds(spec):
    out = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=1)
    ap.add_argument("--bars", type=int, default=100000)
    ap.add_argument("--seeds", default="40001-40010")
    a = ap.parse_args()
    exe = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                       "release", "examples", "oracle_check")
    dims = ["volatility", "trend", "structure", "all 18"]
    print(f"| seed | {' | '.join(dims)} | ensemble vs HMM (all 18) |")
    print("|---|" + "---|" * (len(dims) + 1))
    finals, wins, n = [], 0, 0
    for s in seeds(a.seeds):
        txt = subprocess.run([exe, str(a.symbols), str(a.bars), str(s)], check=True,
                             capture_output=True, text=True).stdout
        r = shares(txt)
        f, e, h = r["final"], r["ensemble_raw"], r["hmm"]
        finals.append(f)
        n += 1
        wins += e[3] > h[3]
        print(f"| {s} | " + " | ".join(f"{x:.3f}" for x in f) + f" | {e[3]:.3f} vs {h[3]:.3f} |")
    cols = list(zip(*finals))
    print("| min | " + " | ".join(f"{min(c):.3f}" for c in cols) + " | |")
    print("| mean | " + " | ".join(f"{sum(c) / len(c):.3f}" for c in cols) +
          f" | ensemble ahead on {wins} of {n} |")


if __name__ == "__main__":
    sys.exit(main())
