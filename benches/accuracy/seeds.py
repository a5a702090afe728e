#!/usr/bin/env python3
"""Share of the oracle's lift, per seed and summarized, for many fresh seeds (no anchors).

Runs the `oracle_check` example (our causal pipeline, the HMM member alone and the oracle on
the same generated series) once per seed and prints, for the final labels, each dimension and
the full label; then min / mean over the seeds; and the ensemble (before the transition
manager) against its two model-based members, the HMM and the HMM on averaged parameters, on
the full label: per seed, how often it is ahead of each, and against the member that is best
on average the mean paired difference with its t statistic (per-seed differences between
such close methods are mostly noise: sd ~0.008 of the oracle's share).

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
    print(f"| seed | {' | '.join(dims)} | all 18: ensemble / HMM / HMM averaged |")
    print("|---|" + "---|" * (len(dims) + 1))
    finals, members, skipped = [], [], []
    for s in seeds(a.seeds):
        txt = subprocess.run([exe, str(a.symbols), str(a.bars), str(s)], check=True,
                             capture_output=True, text=True).stdout
        r = shares(txt)
        f = r["final"]
        e, h, v = (r[k][3] for k in ("ensemble_raw", "hmm", "hmm_averaged"))
        finals.append(f)
        fmt = lambda x, p=3: "n/a" if x is None else f"{x:.{p}f}"
        if None not in (e, h, v):
            members.append((e, h, v))
        else:
            skipped.append(s)
        print(f"| {s} | " + " | ".join(fmt(x) for x in f) + f" | {fmt(e)} / {fmt(h)} / {fmt(v)} |")
    # a dimension whose oracle is at chance on a series has no lift to share (n/a): left out
    cols = [[x for x in c if x is not None] for c in zip(*finals)]
    n = len(members)
    e, h, v = (list(c) for c in zip(*members))
    mean = lambda c: sum(c) / len(c)
    print("| min | " + " | ".join(f"{min(c):.3f}" for c in cols) +
          f" | {min(e):.3f} / {min(h):.3f} / {min(v):.3f} |")
    print("| mean | " + " | ".join(f"{mean(c):.3f}" for c in cols) +
          f" | {mean(e):.4f} / {mean(h):.4f} / {mean(v):.4f} |")
    if skipped or any(len(c) < len(finals) for c in cols):
        print(f"\n(n/a: the oracle at chance; per dimension left out on "
              f"{', '.join(str(len(finals) - len(c)) for c in cols)} series; all 18 of the "
              f"members on {skipped or 'none'})")
    ahead = lambda m: sum(x > y for x, y in zip(e, m))
    print(f"\nensemble ahead of the HMM on {ahead(h)} of {n} (level on "
          f"{sum(x == y for x, y in zip(e, h))}), of the averaged HMM on {ahead(v)}, "
          f"of both on {sum(x > max(y, z) for x, y, z in zip(e, h, v))}")
    name, best = max([("HMM", h), ("averaged HMM", v)], key=lambda t: mean(t[1]))
    d = [x - y for x, y in zip(e, best)]
    if n > 1:
        sd = (sum((x - mean(d)) ** 2 for x in d) / (n - 1)) ** 0.5
        t = f", t {mean(d) / sd * n ** 0.5:.2f}" if sd > 0 else ""
        print(f"against the best member on average ({name}): mean difference {mean(d):+.4f}, "
              f"sd {sd:.4f}{t}")

if __name__ == "__main__":
    sys.exit(main())
