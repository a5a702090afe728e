#!/usr/bin/env python3
"""Instructions per bar of the full causal pipeline, in total and per component (callgrind).

Timing on this shared machine varies by ±20% from run to run; instruction counts are exact
and repeatable, so a change that saves 3% shows as 3%. Runs the `one_pass` example under
callgrind twice (N and 2N bars, collecting inside `detect_series` only) and reports the
difference per bar: the steady state, without the batch-EM warm-up of the first 4,096 bars.
Also prints each run's digest of the detections, to check that two builds agree.

    cargo build --release -p regime-benches --example one_pass
    python3 benches/instructions/count.py [--bars 100000] [--exe PATH]

Needs valgrind (apt-get install valgrind).
"""
import argparse, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# component -> function names whose inclusive counts are summed (names as callgrind shows them)
COMPONENTS = [
    ("whole pass (per bar)", ["regime_core::pipeline::detect_series"]),
    ("bar side", ["regime_core::pipeline::BarSide::update"]),
    ("  HMM filter + online learning", ["regime_core::hmm::OnlineHmm::update"]),
    ("    expected transition counts", ["regime_core::hmm::Stats::add_transitions"]),
    ("    observation statistics", ["regime_core::hmm::Stats::add_obs"]),
    ("  shared features", ["regime_core::pipeline::methods::ContextBuilder::update"]),
    ("pool side", ["regime_core::pipeline::PoolSide::update"]),
    ("  other members' scores", [
        "regime_core::pipeline::methods::ThresholdMethod::score",
        "regime_core::pipeline::methods::KalmanMethod::score",
        "regime_core::pipeline::methods::JumpMethod::score",
        "regime_core::pipeline::methods::ChangePointMethod::score",
    ]),
    ("  log-linear pool (combine)", ["regime_core::pipeline::combine"]),
    ("libm logf + expf (all callers)", ["__logf_fma", "__expf_fma"]),
    ("libm log + exp, f64 (all callers)", ["__ieee754_log_fma", "__ieee754_exp_fma"]),
]
LINE = re.compile(r"^\s*([0-9,]+)\s+\([^)]*\)\s+(\S+?):(\S.*?)(?:\s+\[[^\]]*\])?\s*$")


def run(exe, bars, tmp):
    out = os.path.join(tmp, f"cg.{bars}")
    p = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        "--toggle-collect=regime_core::pipeline::detect_series*", exe, str(bars)],
                       check=True, capture_output=True, text=True)
    digest = p.stdout.strip()
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out],
                         check=True, capture_output=True, text=True).stdout
    best = {}
    for line in ann.splitlines():
        m = LINE.match(line)
        if m:
            n, fn = int(m.group(1).replace(",", "")), m.group(3).strip()
            # an inlined function shows once per source file; its entry is the largest
            best[fn] = max(best.get(fn, 0), n)
    return digest, best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=100_000)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--exe", default=os.path.join(target, "release", "examples", "one_pass"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d1, c1 = run(a.exe, a.bars, tmp)
        d2, c2 = run(a.exe, 2 * a.bars, tmp)
    print(d1)
    print(d2)
    print(f"| instructions per bar, steady state (bars {a.bars}..{2 * a.bars}) | count |")
    print("|---|---|")
    for name, fns in COMPONENTS:
        n = sum(c2.get(f, 0) - c1.get(f, 0) for f in fns) / a.bars
        print(f"| {name} | {n:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
