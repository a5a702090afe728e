#!/usr/bin/env python3
"""Minute bars on a tick grid: how well each channel names the volatility state when the
parameters are known, against what the pipeline, which must learn them, reaches.

For each series `intraday_grid` writes (`DUMP`), a three-state volatility filter is run
with every parameter fitted on the series' own true labels (the generator's time-of-day
shape taken as known): the close-to-close return (normal, its variance the level's plus
the grid's rounding), the log excess range as the pipeline reads it (a zero excess range
as half a step; a normal per level, one spread), relative log volume (a normal per level),
and their sums. The chain stays with probability 1 - 0.05/390 a bar (the generator's
regimes change at a session's start with probability 0.05). Scored, like `intraday_grid`,
on the last 30% of each series, with each filter's volatility switches there. The
known-parameter filter is an upper reference for the
channels as modelled, not the exact oracle (rounded prices are not a normal return).

    cargo build --release -p datasets --example intraday_grid
    python3 benches/accuracy/grid_known_params.py [K] [FIRST] [SEEDS]     # default 1 106500 8
"""
import math, os, re, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PER = 390  # bars a session, as `datasets::minute_sessions`


def tod_shape():
    m = np.arange(PER, dtype=float)
    f = 1 + 1.5 * np.exp(-m / 30) + 0.8 * np.exp(-(PER - 1 - m) / 30)
    return f / np.sqrt((f ** 2).mean())


def load(path):
    with open(path) as fh:
        step = float(fh.readline().split(",")[1])
    d = np.loadtxt(path, delimiter=",", skiprows=1)
    return step, d[:, 1], d[:, 2], d[:, 3], d[:, 4], d[:, 5], d[:, 6].astype(int)


def normal_ll(x, mean, sd):
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)


def filt(ll):
    """Forward filter, three states; ll is (n, 3) log-likelihoods (0 where absent)."""
    stay = 1 - 0.05 / PER
    move = (1 - stay) / 2
    a = np.full(3, 1 / 3)
    out = np.empty(len(ll), dtype=int)
    lik = np.exp(ll - ll.max(axis=1, keepdims=True))
    for t in range(len(ll)):
        p0 = stay * a[0] + move * (a[1] + a[2])
        p1 = stay * a[1] + move * (a[0] + a[2])
        p2 = stay * a[2] + move * (a[0] + a[1])
        x0, x1, x2 = p0 * lik[t, 0], p1 * lik[t, 1], p2 * lik[t, 2]
        z = x0 + x1 + x2
        a = np.array([x0 / z, x1 / z, x2 / z])
        out[t] = 0 if x0 >= x1 and x0 >= x2 else (1 if x1 >= x2 else 2)
    return out


def channels(path):
    step, o, h, l, c, v, y = load(path)
    n = len(y)
    f = np.tile(tod_shape(), n // PER + 1)[:n]
    r = np.r_[np.nan, np.diff(np.log(c))]
    r[::PER] = np.nan  # a session's first close carries the overnight move
    r = r / f
    ex = np.log(h / l) - np.abs(np.log(c / o))
    lr = np.where(ex > 1e-10, np.log(np.maximum(ex, 1e-300)), math.log(0.5 * step) if step > 0 else np.nan) - np.log(f)
    lv = np.log(v) - 1.5 * np.log(f)
    out = {}
    sig = [math.sqrt(np.nanmean(r[y == s] ** 2)) for s in range(3)]  # rounding included
    out["return"] = np.nan_to_num(np.stack([normal_ll(r, 0, sig[s]) for s in range(3)], 1))
    ok = np.isfinite(lr)
    rho = [lr[ok & (y == s)].mean() for s in range(3)]
    tau = np.concatenate([lr[ok & (y == s)] - rho[s] for s in range(3)]).std()
    out["range"] = np.nan_to_num(np.stack([normal_ll(lr, rho[s], tau) for s in range(3)], 1))
    mu = [lv[y == s].mean() for s in range(3)]
    sv = np.concatenate([lv[y == s] - mu[s] for s in range(3)]).std()
    out["volume"] = np.stack([normal_ll(lv, mu[s], sv) for s in range(3)], 1)
    return out, y


def main():
    k = sys.argv[1] if len(sys.argv) > 1 else "1"
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 106500
    seeds = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    exe = os.path.join(target, "release", "examples", "intraday_grid")
    combos = [("return",), ("range",), ("volume",), ("return", "volume"), ("return", "range"), ("return", "range", "volume")]
    totals = {cmb: [] for cmb in combos}
    switches = {cmb: 0 for cmb in combos}
    truth = 0
    pipeline = []
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([exe, k, "250", str(seeds)], env={**os.environ, "DUMP": tmp, "FIRST": str(first)},
                           capture_output=True, text=True, check=True)
        for line in p.stderr.splitlines():
            m = re.search(r"^seed \d+:.*volatility right on ([0-9.]+), (\d+) switches", line)
            if m:
                pipeline.append((float(m.group(1)), int(m.group(2))))
        for i, seed in enumerate(range(first, first + seeds)):
            path = os.path.join(tmp, f"grid{float(k):g}_{seed}.csv")  # as Rust prints K
            if not os.path.exists(path):
                sys.exit(f"{exe} wrote no {os.path.basename(path)}: a build from before `DUMP`? "
                         "cargo build --release -p datasets --example intraday_grid (and CARGO_TARGET_DIR as for it)")
            ch, y = channels(path)
            start = len(y) * 7 // 10
            row = []
            for cmb in combos:
                said = filt(sum(ch[x] for x in cmb))
                acc = float(np.mean(said[start:] == y[start:]))
                moves = int(np.sum(said[start + 1:] != said[start:-1]))
                totals[cmb].append(acc)
                switches[cmb] += moves
                row.append(f"{acc:.3f} ({moves})")
            truth += int(np.sum(y[start + 1:] != y[start:-1]))
            print(f"seed {seed}: pipeline {pipeline[i][0]:.3f} ({pipeline[i][1]}) | known parameters " + " ".join(f"{'+'.join(c)} {a}" for c, a in zip(combos, row)))
    print(f"grid {k} sd, {seeds} series, volatility right (mean) and switches in the scored part (truth {truth}): "
          f"pipeline {np.mean([a for a, _ in pipeline]):.3f} ({sum(n for _, n in pipeline)}); known parameters: "
          + ", ".join(f"{'+'.join(c)} {np.mean(v):.3f} ({switches[c]})" for c, v in totals.items()))


if __name__ == "__main__":
    sys.exit(main())
