#!/usr/bin/env python3
"""How much the S&P 500's daily returns say about trend regimes, outside the engine: the
returns standardized by a causal EWMA volatility (the engine's drifts are in units of the
volatility state's sigma), then the log-likelihood of a constant drift against three-state
Markov-switching drifts (down / neutral / up) with fixed mean durations of 70 / 250 / 500
bars (forward algorithm, numpy). A trend model the bars support would score above the
constant drift. See benches/accuracy/README.md, "Session 28".

    pip install arch pandas && python3 benches/accuracy/trend_evidence.py
"""
import numpy as np
from arch.data import sp500, nasdaq


def loglik(z, mu, dur):
    p = 1 - 1 / dur
    a_mat = np.full((3, 3), (1 - p) / 2)
    np.fill_diagonal(a_mat, p)
    b = np.exp(-0.5 * (z[:, None] - np.asarray(mu)[None, :]) ** 2) / np.sqrt(2 * np.pi)
    a, ll = np.ones(3) / 3, 0.0
    for t in range(len(z)):
        a = (a @ a_mat if t else a) * b[t]
        c = a.sum()
        ll += np.log(c)
        a /= c
    return ll


def main():
    for mod, name in [(sp500, "SPX"), (nasdaq, "NDX")]:
        d = mod.load()
        r = np.log(d["Adj Close"]).diff().dropna()
        v = r.pow(2).ewm(alpha=0.06).mean().shift(1).bfill()
        z = (r / np.sqrt(v)).clip(-5, 5).values
        z = z / z.std()
        m = z.mean()
        print(f"{name}: {len(z)} bars, mean standardized return {m:+.3f}")
        print(f"  constant drift: {loglik(z, (m, m, m), 100):.2f}")
        for dur in [70, 250, 500]:
            for mu in [(-0.1, 0.0, 0.08), (-0.15, 0.0, 0.1), (-0.08, 0.03, 0.06)]:
                print(f"  drifts {mu}, mean duration {dur}: {loglik(z, mu, dur):.2f}")


if __name__ == "__main__":
    main()
