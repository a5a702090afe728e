//! Intraday bars: the session's shape taken out before the model sees them.
//!
//! Minute or hourly bars carry two patterns that are not regimes: the overnight gap (the
//! first bar of a session opens hours of news away from the last close) and the time-of-day
//! profile (volatility and volume high at the open and the close, low at midday). Fed as
//! they are, with volatility regimes lasting days, the volatility label flipped 4–22 times
//! a day where the truth changed 0.07 times, and with the profile it was right on only
//! 0.46–0.69 of the bars (`benches/accuracy/intraday.py`).
//!
//! [`IntradayAdjuster`] learns from the timestamps alone whether a series is intraday (its
//! most common bar spacing from [`INTRADAY_MIN_SPACING_MS`] to [`INTRADAY_MAX_SPACING_MS`])
//! and, when it is, hands on
//! an adjusted bar: a session's first bar (a pause of at least twelve spacings and three
//! hours) opens at the previous close (its overnight gap left out: the extractor reads an
//! open equal to the previous close as no gap), and every bar's moves (open, high, low and
//! close against the previous close, in logs) are divided by its time of day's volatility
//! factor, its volume by its time of day's volume factor. The factors are learned causally
//! per 5-minute slot of the session (time since the session's first bar, so a daylight-
//! saving shift of the exchange's clock in UTC moves nothing; a market with no pauses uses
//! the time of day since its first bar), as the slot's mean log range (log |return| where a
//! bar has no range) against a slow level, centred over the slots. Daily and slower bars
//! pass untouched (the same bits).

use crate::bars::Bar;

/// The longest most-common spacing that makes a series intraday: 4 hours, in ms.
pub const INTRADAY_MAX_SPACING_MS: i64 = 4 * 3600 * 1000;
/// The shortest: 1 second. Bars closer than that are stamped by something other than an
/// exchange's clock (the service's demo feed replays daily bars a few hundred ms apart;
/// numbered bars) or are tick bars, whose time of day this does not model: they pass as
/// they are.
pub const INTRADAY_MIN_SPACING_MS: i64 = 1000;
/// A pause of at least this many typical spacings (and [`SESSION_MIN_PAUSE_MS`]) starts a
/// new session.
const SESSION_PAUSE_SPACINGS: i64 = 12;
/// The shortest pause that starts a session: 3 hours (a lunch break does not; a night does).
const SESSION_MIN_PAUSE_MS: i64 = 3 * 3600 * 1000;
/// Width of a time-of-day slot: 5 minutes.
const SLOT_MS: i64 = 5 * 60 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// Slots in a day.
pub const SLOTS: usize = (DAY_MS / SLOT_MS) as usize;
/// A slot's factor is used once it has this many bars.
const SLOT_MIN_BARS: u32 = 8;
/// Memory of a slot's mean, in bars of that slot.
const SLOT_MEMORY: u32 = 128;
/// Memory of the slow level the slots are measured against, in bars.
const LEVEL_MEMORY: u32 = 500;
/// The largest factor either way (e^±2: a slot at most 7.4 times as volatile as the day).
const FACTOR_MAX: f64 = 2.0;
/// log2 buckets of bar spacings in ms (2^47 ms is 4,000 years).
const SPACING_BUCKETS: usize = 48;

/// Whether bars this far apart (ms, the typical spacing) are intraday bars.
fn intraday_spacing(t: i64) -> bool {
    (INTRADAY_MIN_SPACING_MS..=INTRADAY_MAX_SPACING_MS).contains(&t)
}

/// Most common bar spacing, by log2 bucket, and the shortest spacing seen in each bucket.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Spacing {
    counts: Vec<u32>,
    shortest: Vec<i64>,
    mode: usize,
}

impl Default for Spacing {
    fn default() -> Self {
        Spacing {
            counts: vec![0; SPACING_BUCKETS],
            shortest: vec![i64::MAX; SPACING_BUCKETS],
            mode: 0,
        }
    }
}

impl Spacing {
    fn add(&mut self, dt: i64) {
        if dt <= 0 {
            return;
        }
        let b = (63 - dt.leading_zeros() as usize).min(SPACING_BUCKETS - 1);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.shortest[b] = self.shortest[b].min(dt);
        if self.counts[b] > self.counts[self.mode] {
            self.mode = b;
        }
    }

    /// The typical spacing (ms), once one is known.
    fn typical(&self) -> Option<i64> {
        (self.counts[self.mode] > 0).then(|| self.shortest[self.mode])
    }
}

/// Per-slot means of one log quantity against its slow level.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct SlotTable {
    dev: Vec<f64>,
    n: Vec<u32>,
    /// `Σ n·dev` and `Σ n` over the slots: the centre the factors are measured from.
    sum: f64,
    total: f64,
    level: f64,
    level_n: u32,
}

impl SlotTable {
    fn new() -> Self {
        SlotTable {
            dev: vec![0.0; SLOTS],
            n: vec![0; SLOTS],
            sum: 0.0,
            total: 0.0,
            level: 0.0,
            level_n: 0,
        }
    }

    /// The slot's log factor, once it has enough bars.
    fn factor(&self, slot: usize) -> Option<f64> {
        (self.n[slot] >= SLOT_MIN_BARS && self.total > 0.0)
            .then(|| (self.dev[slot] - self.sum / self.total).clamp(-FACTOR_MAX, FACTOR_MAX))
    }

    fn add(&mut self, slot: usize, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.level_n == 0 {
            self.level = x;
            self.level_n = 1;
            return;
        }
        let (n0, d0) = (self.n[slot] as f64, self.dev[slot]);
        let n = (self.n[slot] + 1).min(SLOT_MEMORY);
        self.n[slot] = n;
        self.dev[slot] += (x - self.level - d0) / n as f64;
        self.sum += n as f64 * self.dev[slot] - n0 * d0;
        self.total += n as f64 - n0;
        // the level follows the bars with their slot's shape taken out
        let seasonal = self.dev[slot] - self.sum / self.total;
        self.level_n = (self.level_n + 1).min(LEVEL_MEMORY);
        self.level += (x - seasonal - self.level) / self.level_n as f64;
    }

    /// Recompute the running sums exactly (they drift by rounding over millions of bars).
    fn resum(&mut self) {
        self.sum = self
            .dev
            .iter()
            .zip(&self.n)
            .map(|(d, n)| d * *n as f64)
            .sum();
        self.total = self.n.iter().map(|n| *n as f64).sum();
    }
}

/// The learned time-of-day profile (allocated once a series is found to be intraday).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Profile {
    range: SlotTable,
    ret: SlotTable,
    volume: SlotTable,
}

impl Profile {
    fn new() -> Self {
        Profile {
            range: SlotTable::new(),
            ret: SlotTable::new(),
            volume: SlotTable::new(),
        }
    }

    /// A slot's log volatility factor: from the ranges, else the returns.
    fn vol_factor(&self, slot: usize) -> Option<f64> {
        self.range.factor(slot).or_else(|| self.ret.factor(slot))
    }

    fn resum(&mut self) {
        self.range.resum();
        self.ret.resum();
        self.volume.resum();
    }
}

/// Takes the overnight gap and the time-of-day profile out of intraday bars (see the module
/// documentation); other bars pass untouched.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IntradayAdjuster {
    spacing: Spacing,
    prev_ts: Option<i64>,
    /// ln of the previous bar's close, as it came and as handed on.
    raw_prev: f64,
    adj_prev: f64,
    /// The previous close as it came, while the bars pass untouched (no logarithm taken).
    #[cfg_attr(feature = "serde", serde(default))]
    passed_close: Option<f64>,
    /// Start of the current session (ms).
    anchor: i64,
    sessions: u64,
    profile: Option<Box<Profile>>,
}

/// What the adjuster knows of a series (the `base_regime_detector` status shows it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntradayStatus {
    /// The most common bar spacing, seconds (None before the second bar).
    pub spacing_secs: Option<f64>,
    /// Whether the bars are adjusted (intraday).
    pub intraday: bool,
    /// Sessions started (pauses found), the first bar's included.
    pub sessions: u64,
    /// The largest and smallest learned volatility factors over the time-of-day slots.
    pub vol_factor_range: Option<(f64, f64)>,
}

impl IntradayAdjuster {
    /// A fresh adjuster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the series is intraday (so far).
    pub fn is_intraday(&self) -> bool {
        self.spacing.typical().is_some_and(intraday_spacing)
    }

    /// What it knows.
    pub fn status(&self) -> IntradayStatus {
        let range = self.profile.as_ref().and_then(|p| {
            let f: Vec<f64> = (0..SLOTS)
                .filter_map(|s| p.vol_factor(s))
                .map(f64::exp)
                .collect();
            let lo = f.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = f.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (!f.is_empty()).then_some((lo, hi))
        });
        IntradayStatus {
            spacing_secs: self.spacing.typical().map(|t| t as f64 / 1000.0),
            intraday: self.is_intraday(),
            sessions: self.sessions,
            vol_factor_range: range,
        }
    }

    /// The bar the model sees for `bar` (validated, timestamps increasing): `bar` itself
    /// unless the series is intraday.
    pub fn adjust(&mut self, bar: &Bar) -> Bar {
        let Some(prev_ts) = self.prev_ts.replace(bar.ts) else {
            self.anchor = bar.ts;
            self.sessions = 1;
            self.passed_close = Some(bar.close);
            return *bar;
        };
        let dt = bar.ts - prev_ts;
        self.spacing.add(dt);
        let typical = match self.spacing.typical() {
            Some(t) if intraday_spacing(t) => t,
            _ => {
                // not intraday (yet): untouched, and the handed-on path follows the bars
                self.passed_close = Some(bar.close);
                return *bar;
            }
        };
        if let Some(c) = self.passed_close.take() {
            // the first adjusted bar: the handed-on path continues from the bars so far
            self.raw_prev = c.ln();
            self.adj_prev = self.raw_prev;
        }
        let lc = bar.close.ln();
        let new_session = dt >= (SESSION_PAUSE_SPACINGS * typical).max(SESSION_MIN_PAUSE_MS);
        if new_session {
            self.anchor = bar.ts;
            self.sessions += 1;
        }
        let slot = (((bar.ts - self.anchor).rem_euclid(DAY_MS)) / SLOT_MS) as usize;
        let p = self.profile.get_or_insert_with(|| Box::new(Profile::new()));
        if new_session {
            p.resum();
        }
        // this bar's factors come from earlier bars
        let f = p.vol_factor(slot).unwrap_or(0.0);
        let fv = p.volume.factor(slot).unwrap_or(0.0);
        // learn from this bar
        let has_range = bar.has_ohl() && bar.high > bar.low;
        if has_range {
            p.range.add(slot, (bar.high / bar.low).ln().ln());
        }
        if !new_session {
            let r = (lc - self.raw_prev).abs();
            if r > 0.0 {
                p.ret.add(slot, r.ln());
            }
        }
        if bar.volume > 0.0 && bar.volume.is_finite() {
            p.volume.add(slot, bar.volume.ln());
        }
        // a session's first bar is measured from its own open: no overnight gap
        let base = if new_session && bar.has_ohl() {
            bar.open.ln()
        } else {
            self.raw_prev
        };
        let scale = (-f).exp();
        let at = |x: f64| (self.adj_prev + (x.ln() - base) * scale).exp();
        let out = Bar {
            ts: bar.ts,
            open: at(bar.open),
            high: at(bar.high),
            low: at(bar.low),
            close: at(bar.close),
            volume: if fv == 0.0 {
                bar.volume
            } else {
                bar.volume * (-fv).exp()
            },
        };
        self.raw_prev = lc;
        self.adj_prev += (lc - base) * scale;
        out
    }
}

/// A whole series as the pipeline's model sees it: `None` when every bar passes untouched
/// (daily and slower bars), else the adjusted bars. Scoring with a fixed model learned by
/// the pipeline (`regime detect --model`) reads the bars the model was learned on.
pub fn adjust_series(bars: &[Bar]) -> Option<Vec<Bar>> {
    let mut a = IntradayAdjuster::new();
    crate::bars::map_series(bars, |b| a.adjust(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(ts: i64, o: f64, h: f64, l: f64, c: f64) -> Bar {
        Bar {
            ts,
            open: o,
            high: h,
            low: l,
            close: c,
            volume: 100.0,
        }
    }

    #[test]
    fn daily_bars_pass_untouched() {
        let mut a = IntradayAdjuster::new();
        let mut c = 100.0;
        for i in 0..300i64 {
            // weekdays only: weekends and holidays are longer pauses
            let ts = (i + 2 * (i / 5)) * DAY_MS;
            let b = bar(ts, c * 1.001, c * 1.02, c * 0.98, c * 1.005);
            assert_eq!(a.adjust(&b), b);
            c *= 1.005;
        }
        assert!(!a.is_intraday());
        assert_eq!(a.status().spacing_secs, Some(86400.0));
    }

    #[test]
    fn bars_a_few_ms_apart_pass_untouched() {
        // the demo feed's warm start (1 ms apart) and its live bars (~200 ms apart)
        let mut a = IntradayAdjuster::new();
        for i in 0..3000i64 {
            let ts = if i < 2000 { i } else { 2000 + (i - 2000) * 200 };
            let c = 100.0 + (i % 11) as f64 * 0.3;
            let b = bar(ts, c, c + 0.5, c - 0.5, c + 0.1);
            assert_eq!(a.adjust(&b), b);
        }
        assert!(!a.is_intraday());
    }

    #[test]
    fn a_whole_series_is_adjusted_as_bar_by_bar() {
        let daily: Vec<Bar> = (0..50i64)
            .map(|i| bar(i * DAY_MS, 100.0, 101.0, 99.0, 100.5))
            .collect();
        assert_eq!(adjust_series(&daily), None);
        let minutes: Vec<Bar> = (0..50i64)
            .map(|i| {
                let c = 100.0 + (i % 7) as f64 * 0.1;
                bar(i * 60_000, c, c + 0.2, c - 0.2, c + 0.05)
            })
            .collect();
        let mut a = IntradayAdjuster::new();
        let one_by_one: Vec<Bar> = minutes.iter().map(|b| a.adjust(b)).collect();
        assert_eq!(adjust_series(&minutes), Some(one_by_one));
    }

    #[test]
    fn a_session_opens_at_the_previous_close() {
        let mut a = IntradayAdjuster::new();
        let minute = 60_000;
        let mut last = None;
        for i in 0..20i64 {
            let b = bar(i * minute, 100.0, 100.2, 99.9, 100.1);
            last = Some(a.adjust(&b));
        }
        let prev_close = last.map(|b| b.close).unwrap_or(f64::NAN);
        // the next morning, 5% higher
        let b = bar(20 * minute + 17 * 3600 * 1000, 105.0, 105.2, 104.9, 105.1);
        let out = a.adjust(&b);
        assert!(a.is_intraday());
        assert_eq!(a.status().sessions, 2);
        assert!(
            (out.open / prev_close - 1.0).abs() < 1e-12,
            "{out:?} {prev_close}"
        );
        // the bar's own move is kept (no factor learned yet: 8 bars per slot)
        assert!(((out.close / out.open).ln() - (105.1f64 / 105.0).ln()).abs() < 1e-12);
        assert!(out.high >= out.close && out.low <= out.open);
    }
}
