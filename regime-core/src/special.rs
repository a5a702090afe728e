//! The few special functions the range channel's log-gamma density needs, evaluated at
//! model refits only (not per bar). Recurrence up to 12, then the asymptotic series: about
//! 1e-13 relative error for positive arguments. (`statrs` has them too, but brings
//! `nalgebra` along for four short functions.)

/// Shift the argument up to at least this before the asymptotic series.
const ASYMPTOTIC_FROM: f64 = 12.0;

/// ln Γ(x) for x > 0.
pub fn ln_gamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < ASYMPTOTIC_FROM {
        shift += x.ln();
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series = (1.0 / 12.0 - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r / 1680.0))) / x;
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + series - shift
}

/// The digamma function ψ(x) = d ln Γ(x)/dx for x > 0.
pub fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < ASYMPTOTIC_FROM {
        shift += 1.0 / x;
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series = r * (1.0 / 12.0 - r * (1.0 / 120.0 - r * (1.0 / 252.0 - r / 240.0)));
    x.ln() - 0.5 / x - series - shift
}

/// The trigamma function ψ′(x) for x > 0.
pub fn trigamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < ASYMPTOTIC_FROM {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series =
        1.0 / x + r / 2.0 + r / x * (1.0 / 6.0 - r * (1.0 / 30.0 - r * (1.0 / 42.0 - r / 30.0)));
    series + shift
}

/// The tetragamma function ψ″(x) for x > 0.
pub fn tetragamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < ASYMPTOTIC_FROM {
        shift -= 2.0 / (x * x * x);
        x += 1.0;
    }
    let r = 1.0 / (x * x);
    let series = -r * (1.0 + 1.0 / x + r / 2.0 - r * r * (1.0 / 6.0 - r * (1.0 / 6.0 - r * 0.3)));
    series + shift
}

/// The k > 0 with ψ′(k) = v (v > 0): the log-gamma shape whose log has variance v.
/// Newton's method from `1/v + 1/2` (ψ′(k) ≈ 1/(k − 1/2) for large k): ψ′ is convex and
/// falling, so from the first step on the iterates approach the root from below; a step
/// past zero is halved instead. Converges in 4–8 steps (refits call it, not bars).
pub fn inverse_trigamma(v: f64) -> f64 {
    let mut k = 1.0 / v + 0.5;
    for _ in 0..60 {
        let step = (trigamma(k) - v) / tetragamma(k);
        let next = if k - step > 0.0 { k - step } else { 0.5 * k };
        if (next - k).abs() <= 1e-14 * k {
            return next;
        }
        k = next;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn values_match_known_constants() {
        let euler = 0.577_215_664_901_532_9;
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        assert!(close(digamma(1.0), -euler, 1e-12), "{}", digamma(1.0));
        assert!(close(digamma(0.5), -euler - 2.0 * 2f64.ln(), 1e-12));
        assert!(close(trigamma(1.0), pi2 / 6.0, 1e-12), "{}", trigamma(1.0));
        assert!(close(trigamma(0.5), pi2 / 2.0, 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        assert!(close(ln_gamma(1.0), 0.0, 1e-12) && close(ln_gamma(2.0), 0.0, 1e-12));
        // ln Γ(11) = ln 10!
        assert!(close(ln_gamma(11.0), 3_628_800f64.ln(), 1e-12));
        // recurrences across the switch to the asymptotic series
        for x in [0.3, 2.7, 7.5, 11.99, 12.0, 150.0] {
            assert!(
                close(digamma(x + 1.0), digamma(x) + 1.0 / x, 1e-12),
                "ψ at {x}"
            );
            assert!(
                close(trigamma(x), trigamma(x + 1.0) + 1.0 / (x * x), 1e-12),
                "ψ′ at {x}"
            );
            assert!(
                close(ln_gamma(x + 1.0), ln_gamma(x) + x.ln(), 1e-12),
                "lnΓ at {x}"
            );
        }
    }

    #[test]
    fn tetragamma_is_the_derivative_of_trigamma() {
        for x in [0.2, 1.0, 3.3, 11.9, 12.0, 40.0, 900.0] {
            let h = 1e-5 * x;
            let numeric = (trigamma(x + h) - trigamma(x - h)) / (2.0 * h);
            assert!(
                close(tetragamma(x), numeric, 1e-7),
                "ψ″ at {x}: {}",
                tetragamma(x)
            );
        }
        // ψ″(1) = −2 ζ(3)
        assert!(close(
            tetragamma(1.0),
            -2.0 * 1.202_056_903_159_594_2,
            1e-12
        ));
    }

    #[test]
    fn inverse_trigamma_inverts() {
        for k in [0.01, 0.05, 0.7, 1.0, 2.4, 9.0, 300.0, 1e5, 1e8] {
            let v = trigamma(k);
            assert!(
                close(inverse_trigamma(v), k, 1e-9),
                "k {k}: {}",
                inverse_trigamma(v)
            );
        }
    }
}
