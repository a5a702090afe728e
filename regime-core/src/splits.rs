//! Unadjusted stock splits, read as splits.
//!
//! Many data sources give a stock's prices as they traded: at a 3:1 split the price falls to
//! a third and the share count — the volume — triples, for good. Fed as they are, the fall
//! is one enormous return (the trend and volatility features of every member see it for
//! their whole window) and the volume step reads as heavy trading, so as high volatility,
//! for months: arch's S&P 500 with a 3:1 split in March 2012 had 46% of the next year's
//! volatility labels changed, with 2:1 in June 2005 60%
//! (`benches/accuracy/volume_steps.py`).
//!
//! [`SplitAdjuster`] reads a split where a bar's close moves from the previous one by one
//! of the [`FORWARD_RATIOS`] or [`REVERSE_RATIOS`] (within [`PRICE_TOL`] in logs, either way)
//! by more than [`SPLIT_RMS`] root-mean-square returns, its open has moved as far (a split
//! rescales the whole bar; a fall within the day opens near the previous close), **and** its
//! volume moves the other way by about as much ([`VOLUME_TOL`]): a crash as deep as a split
//! ratio trades 10–30 times its usual volume, a change of price unit (pence to pounds) none.
//! From that bar on it hands on the bars as split-adjusted data would give them: prices
//! times the product of the ratios read so far, volume divided by it. Bars before the first
//! split pass untouched (the same bits), and a series without one is detected exactly as
//! before. Causal: a bar's adjustment depends on it and the bars before it only.
//!
//! It also reads a step of the volume level with the prices unmoved — a change of unit
//! (shares to lots of 100), a vendor switching to consolidated volume, two sources spliced.
//! Read as it came, ×10 from March 2012 changed 99% of the S&P 500's next year's volatility
//! labels and 95% of the later ones (the ladder renamed), ×5 from 2009 57% and 21%.
//! [`STEP_CONFIRM`] daily (or slower) bars in a row whose volume sits beyond [`STEP_MIN`]
//! times its running mean (or below its inverse) while their closes move as usual
//! ([`STEP_MOVE`]) make a step of their geometric mean ratio (the power of ten where it is
//! near one); the volume from then on is divided by it. A market's own volume does not hold
//! ×3.3 for a week (arch's S&P 500 and NASDAQ 1999–2018: never two days in a row); a frenzy
//! that does mostly moves its prices too, and where it reads as a step its end reads as the
//! step back; intraday bars, whose volume follows the time of day, are left to the
//! time-of-day profile.

use crate::bars::Bar;

/// Share-count ratios of forward stock splits (k:1; 3:2 and 5:2 as well).
pub const FORWARD_RATIOS: [f64; 15] = [
    1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 50.0,
];
/// Share-count ratios of reverse splits (1:k; whole numbers only). 1:100 is here; a change
/// of price unit by the same factor (pence to pounds) moves no volume.
pub const REVERSE_RATIOS: [f64; 15] = [
    2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 100.0,
];
/// A split moves the close by more than this many root-mean-square returns: 2:1 on a stock
/// moving 2.5% a day is 28, the largest market days sit near 20 (19 Oct 1987 on the S&P 500),
/// and the ratio and the volume must match as well.
pub const SPLIT_RMS: f64 = 12.0;
/// Largest |ln| distance between the close's move and a split ratio: the day's own move
/// rides on the split (0.08 is 2.7 sd of a stock moving 3% a day; the nearest ratios, 6, 7
/// and 8, sit 0.13–0.15 apart).
pub const PRICE_TOL: f64 = 0.08;
/// Largest |ln| distance between the bar's volume (against its running mean) and the
/// ratio: a split's share count moves volume by the ratio and the day's trading on top of
/// it stays within a factor e; a crash of −50% trades 10–30 times its usual volume (ln 2.3–3.4
/// against ln 2 = 0.69).
pub const VOLUME_TOL: f64 = 1.0;
/// Bars in a row that make a step of the volume level.
pub const STEP_CONFIRM: u32 = 5;
/// The least ratio of such a bar's volume to the running mean (either way).
pub const STEP_MIN: f64 = 3.3;
/// A bar counts toward a step only if its return is within this many root-mean-square
/// returns.
pub const STEP_MOVE: f64 = 3.0;
/// A step whose measured log ratio is within this of a power of ten is that power (a change
/// of unit).
const STEP_SNAP: f64 = 0.5;
/// The least spacing (ms) of bars that count toward a step: 20 hours (daily bars, with
/// weekends and holidays longer).
const STEP_SPACING_MS: i64 = 20 * 3600 * 1000;
/// Bars with a return and with a volume before a split can be read (a scale and a volume
/// level to measure against).
const MIN_BARS: u64 = 20;
/// Memory (bars) of the return scale and of the volume level.
const RETURN_MEMORY: f64 = 500.0;
const VOLUME_MEMORY: f64 = 250.0;
/// A bar's squared return enters the scale at most this many times the scale (five
/// root-mean-squares): one crash does not hide the next split.
const WINSOR: f64 = 25.0;

/// One split read: the bar (1 = the series' first), its timestamp, and the price ratio
/// (previous close over close in split terms: 3 for 3:1, 0.1 for 1:10).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Split {
    /// The split bar, 1 for the series' first.
    pub bar: u64,
    /// Its timestamp, ms since epoch.
    pub ts: i64,
    /// Shares after per share before: 3 for 3:1, 0.1 for a 1:10 reverse split.
    pub ratio: f64,
}

/// One step of the volume level read: the bar that confirmed it (1 = the series' first), its
/// timestamp, and the step (10 where volume became ten times as large: the volume from then
/// on is divided by it).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct VolumeStep {
    /// The bar that confirmed it, 1 for the series' first.
    pub bar: u64,
    /// Its timestamp, ms since epoch.
    pub ts: i64,
    /// The step: the confirming bars' geometric mean ratio to the running mean (the power of
    /// ten where it is near one).
    pub step: f64,
}

/// Reads splits in a stream of bars and hands on split-adjusted bars (see the module).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SplitAdjuster {
    /// The previous bar's close as it came (NaN before the first bar).
    prev_close: f64,
    /// Product of the ratios read so far: prices are multiplied by it, volume divided.
    factor: f64,
    /// Mean squared (simple, adjusted) return, winsorized, and the returns in it.
    r2: f64,
    r_n: u64,
    /// Mean adjusted volume, and the volumes in it.
    volume: f64,
    volume_n: u64,
    n: u64,
    splits: u64,
    last: Option<Split>,
    /// Product of the volume steps read so far: volume is divided by it (as well).
    unit: f64,
    /// The side (+1 above, −1 below) the last bars' volume sat beyond the mean, how many bars
    /// in a row, and the sum of their log ratios.
    pending: (i8, u32, f64),
    /// The previous bar's timestamp.
    prev_ts: Option<i64>,
    volume_steps: u64,
    last_step: Option<VolumeStep>,
}

impl Default for SplitAdjuster {
    fn default() -> Self {
        Self::new()
    }
}

impl SplitAdjuster {
    /// A fresh adjuster: no bar seen.
    pub fn new() -> Self {
        SplitAdjuster {
            prev_close: f64::NAN,
            factor: 1.0,
            r2: 0.0,
            r_n: 0,
            volume: 0.0,
            volume_n: 0,
            n: 0,
            splits: 0,
            last: None,
            unit: 1.0,
            pending: (0, 0, 0.0),
            prev_ts: None,
            volume_steps: 0,
            last_step: None,
        }
    }

    /// Splits read so far, and the last one.
    pub fn splits(&self) -> (u64, Option<Split>) {
        (self.splits, self.last)
    }

    /// Steps of the volume level read so far, and the last one.
    pub fn volume_steps(&self) -> (u64, Option<VolumeStep>) {
        (self.volume_steps, self.last_step)
    }

    /// What the adjusted volume is divided by: the splits' ratios and the volume steps.
    fn volume_divisor(&self) -> f64 {
        self.factor / self.unit
    }

    /// The bar as split-adjusted data would give it (a validated bar: close > 0).
    pub fn adjust(&mut self, bar: &Bar) -> Bar {
        self.n += 1;
        let prev = std::mem::replace(&mut self.prev_close, bar.close);
        let has_volume = bar.volume > 0.0 && bar.volume.is_finite();
        // whether the bar moved as the bars before it do (a change of the volume's unit
        // moves no price; a crash or a frenzy does), a day or more after the one before
        let daily = self
            .prev_ts
            .replace(bar.ts)
            .is_some_and(|t| bar.ts - t >= STEP_SPACING_MS);
        let mut ordinary = false;
        if prev.is_finite() {
            // the return as adjusted data gives it: the split's own fall is not a move
            let mut q = bar.close / prev;
            if let Some(k) = self.split_ratio(q, bar, prev, has_volume) {
                self.factor *= k;
                self.splits += 1;
                self.last = Some(Split {
                    bar: self.n,
                    ts: bar.ts,
                    ratio: k,
                });
                q *= k;
            }
            let x = q - 1.0;
            ordinary = daily && self.r_n >= MIN_BARS && x * x <= STEP_MOVE * STEP_MOVE * self.r2;
            let x2 = if self.r_n >= MIN_BARS {
                (x * x).min(WINSOR * self.r2)
            } else {
                x * x
            };
            self.r_n += 1;
            self.r2 += (x2 - self.r2) / (self.r_n as f64).min(RETURN_MEMORY);
        }
        if has_volume {
            let v = bar.volume / self.volume_divisor();
            if !self.volume_step(v, ordinary, bar.ts) {
                self.volume_n += 1;
                self.volume += (v - self.volume) / (self.volume_n as f64).min(VOLUME_MEMORY);
            }
        }
        if self.factor == 1.0 && self.unit == 1.0 {
            return *bar;
        }
        let f = self.factor;
        Bar {
            open: bar.open * f,
            high: bar.high * f,
            low: bar.low * f,
            close: bar.close * f,
            volume: bar.volume / self.volume_divisor(),
            ..*bar
        }
    }

    /// Whether the (adjusted) volume `v` sits beyond [`STEP_MIN`] times its running mean
    /// (or below its inverse) — such a bar stays out of the mean — counting it toward a step
    /// of the level, which the [`STEP_CONFIRM`]th such bar in a row on the same side that
    /// moved as usual (`ordinary`) makes.
    fn volume_step(&mut self, v: f64, ordinary: bool, ts: i64) -> bool {
        let side: i8 = if self.volume_n < MIN_BARS {
            0
        } else if v > STEP_MIN * self.volume {
            1
        } else if v * STEP_MIN < self.volume {
            -1
        } else {
            0
        };
        if side == 0 || !ordinary {
            self.pending = (0, 0, 0.0);
            return side != 0;
        }
        let u = (v / self.volume).ln();
        self.pending = if self.pending.0 == side {
            (side, self.pending.1 + 1, self.pending.2 + u)
        } else {
            (side, 1, u)
        };
        if self.pending.1 >= STEP_CONFIRM {
            // a change of unit is a power of ten exactly; the measured ratio carries the
            // bars' noise and the running (arithmetic) mean's lead over the geometric one
            let u = self.pending.2 / self.pending.1 as f64;
            let k = (u / std::f64::consts::LN_10).round();
            let step = if k != 0.0 && (u - k * std::f64::consts::LN_10).abs() < STEP_SNAP {
                10f64.powi(k as i32)
            } else {
                u.exp()
            };
            self.unit /= step;
            self.volume_steps += 1;
            self.last_step = Some(VolumeStep {
                bar: self.n,
                ts,
                step,
            });
            self.pending = (0, 0, 0.0);
        }
        true
    }

    /// The ratio of a split at `bar`, whose close is `q` times the previous close `prev`, if
    /// it is one (a bar without volume cannot confirm one).
    fn split_ratio(&self, q: f64, bar: &Bar, prev: f64, has_volume: bool) -> Option<f64> {
        if !has_volume || self.r_n < MIN_BARS || self.volume_n < MIN_BARS || self.r2 <= 0.0 {
            return None;
        }
        // the move in logs beyond SPLIT_RMS·rms, without a log on ordinary bars: with
        // t = SPLIT_RMS·rms, |ln q| ≤ ln(1 + t) ≤ t for q in [1/(1 + t), 1 + t]
        let bound = SPLIT_RMS * SPLIT_RMS * self.r2;
        let d = q - 1.0;
        if d * d <= if d >= 0.0 { bound } else { bound * q * q } {
            return None;
        }
        let lk = -q.ln();
        if lk * lk <= bound {
            return None;
        }
        let (ratios, sign) = if lk > 0.0 {
            (&FORWARD_RATIOS, 1.0)
        } else {
            (&REVERSE_RATIOS, -1.0)
        };
        let k = *ratios.iter().min_by(|a, b| {
            (sign * a.ln() - lk)
                .abs()
                .total_cmp(&(sign * b.ln() - lk).abs())
        })?;
        let lk_split = sign * k.ln();
        // a split rescales the whole bar, its open too; a fall within the day (news, a
        // crash) opens near the previous close (a close-only bar has no open to check)
        let opens_split = !(bar.open.is_finite() && bar.open > 0.0)
            || ((prev / bar.open).ln() - lk_split).abs() <= PRICE_TOL;
        let u = (bar.volume / self.volume_divisor() / self.volume).ln();
        let fits =
            (lk_split - lk).abs() <= PRICE_TOL && opens_split && (u - lk_split).abs() <= VOLUME_TOL;
        fits.then(|| if sign > 0.0 { k } else { 1.0 / k })
    }
}

/// Every split and volume step [`SplitAdjuster`] reads in `bars` (validated, one series, in
/// order).
pub fn find_adjustments(bars: &[Bar]) -> (Vec<Split>, Vec<VolumeStep>) {
    let mut a = SplitAdjuster::new();
    let (mut splits, mut units) = (Vec::new(), Vec::new());
    for b in bars {
        a.adjust(b);
        if let Some(s) = a.last.filter(|s| s.bar == a.n) {
            splits.push(s);
        }
        if let Some(u) = a.last_step.filter(|u| u.bar == a.n) {
            units.push(u);
        }
    }
    (splits, units)
}

/// The series as split-adjusted data would give it (volume in one unit), or `None` when
/// nothing is read (the bars as they are).
pub fn adjust_series(bars: &[Bar]) -> Option<Vec<Bar>> {
    let mut a = SplitAdjuster::new();
    crate::bars::map_series(bars, |b| a.adjust(b))
}
