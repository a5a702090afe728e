//! Bars, their validation (SPEC §3) and per-symbol data-quality counts.
//!
//! A bar with absent `open`/`high`/`low` (a close-only series) carries `NaN` in all three;
//! an absent volume is `NaN`. Those are valid. Anything else non-finite is rejected.

use std::collections::BTreeMap;
use std::fmt;

/// One OHLCV bar. `ts` is milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Bar {
    /// Timestamp, ms since epoch.
    pub ts: i64,
    /// Open price (`NaN` when the series is close-only).
    pub open: f64,
    /// High price (`NaN` when the series is close-only).
    pub high: f64,
    /// Low price (`NaN` when the series is close-only).
    pub low: f64,
    /// Close price.
    pub close: f64,
    /// Volume (`NaN` when absent).
    pub volume: f64,
}

impl Bar {
    /// A full OHLCV bar.
    pub fn new(ts: i64, open: f64, high: f64, low: f64, close: f64, volume: f64) -> Self {
        Bar {
            ts,
            open,
            high,
            low,
            close,
            volume,
        }
    }
    /// A close-only bar.
    pub fn close_only(ts: i64, close: f64) -> Self {
        Bar::new(ts, f64::NAN, f64::NAN, f64::NAN, close, f64::NAN)
    }
    /// A fingerprint of the values (open, high, low, close, volume, bit for bit: an absent
    /// field's NaN equals itself), to know the same bar when it comes again.
    pub fn fingerprint(&self) -> u64 {
        [self.open, self.high, self.low, self.close, self.volume]
            .iter()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
                (h ^ x.to_bits()).wrapping_mul(0x0100_0000_01b3)
            })
    }

    /// Whether open/high/low are present.
    pub fn has_ohl(&self) -> bool {
        !(self.open.is_nan() && self.high.is_nan() && self.low.is_nan())
    }
    /// Whether a volume is present.
    pub fn has_volume(&self) -> bool {
        !self.volume.is_nan()
    }
    /// One print: open, high and low equal to the close (false when they are absent).
    pub fn is_single_print(&self) -> bool {
        self.open == self.close && self.high == self.close && self.low == self.close
    }
    /// No volume traded: absent, or 0.
    pub fn has_no_volume(&self) -> bool {
        self.volume.is_nan() || self.volume <= 0.0
    }
    /// The same bar to the bit (`NaN` fields included, which `==` never finds equal).
    pub fn same_bits(&self, other: &Bar) -> bool {
        let bits = |b: &Bar| [b.open, b.high, b.low, b.close, b.volume].map(f64::to_bits);
        self.ts == other.ts && bits(self) == bits(other)
    }
}

/// `bars` through a per-bar map (a stateful adjuster), or `None` while every bar comes out
/// as it went in, to the bit: the copy starts at the first bar the map changes.
pub fn map_series(bars: &[Bar], mut f: impl FnMut(&Bar) -> Bar) -> Option<Vec<Bar>> {
    let mut out: Option<Vec<Bar>> = None;
    for (i, b) in bars.iter().enumerate() {
        let x = f(b);
        match &mut out {
            Some(v) => v.push(x),
            None if !x.same_bits(b) => {
                let mut v = Vec::with_capacity(bars.len());
                v.extend_from_slice(&bars[..i]);
                v.push(x);
                out = Some(v);
            }
            None => {}
        }
    }
    out
}

/// Accessor traits so features can take a [`Bar`] or a raw close price.
pub trait Close {
    /// Close price.
    fn close(&self) -> f64;
}
/// High price accessor.
pub trait High {
    /// High price (falls back to close when absent).
    fn high(&self) -> f64;
}
/// Low price accessor.
pub trait Low {
    /// Low price (falls back to close when absent).
    fn low(&self) -> f64;
}
/// Open price accessor.
pub trait Open {
    /// Open price (falls back to close when absent).
    fn open(&self) -> f64;
}
/// Volume accessor.
pub trait Volume {
    /// Volume (`NaN` when absent).
    fn volume(&self) -> f64;
}

impl Close for f64 {
    fn close(&self) -> f64 {
        *self
    }
}
impl High for f64 {
    fn high(&self) -> f64 {
        *self
    }
}
impl Low for f64 {
    fn low(&self) -> f64 {
        *self
    }
}
impl Open for f64 {
    fn open(&self) -> f64 {
        *self
    }
}
impl Volume for f64 {
    fn volume(&self) -> f64 {
        f64::NAN
    }
}
impl Close for Bar {
    fn close(&self) -> f64 {
        self.close
    }
}
impl High for Bar {
    fn high(&self) -> f64 {
        if self.high.is_nan() {
            self.close
        } else {
            self.high
        }
    }
}
impl Low for Bar {
    fn low(&self) -> f64 {
        if self.low.is_nan() {
            self.close
        } else {
            self.low
        }
    }
}
impl Open for Bar {
    fn open(&self) -> f64 {
        if self.open.is_nan() {
            self.close
        } else {
            self.open
        }
    }
}
impl Volume for Bar {
    fn volume(&self) -> f64 {
        self.volume
    }
}

/// Why a bar was rejected. `key()` is the stable counter name.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RejectReason {
    /// A field is NaN or infinite.
    NonFinite {
        /// Field name.
        field: &'static str,
    },
    /// A price is zero or negative.
    NonPositivePrice {
        /// Field name.
        field: &'static str,
        /// The value.
        value: f64,
    },
    /// `high < low`.
    HighBelowLow {
        /// High.
        high: f64,
        /// Low.
        low: f64,
    },
    /// `open` or `close` lies outside `[low, high]`.
    OutsideRange {
        /// Field name (`open` or `close`).
        field: &'static str,
        /// The value.
        value: f64,
        /// Low.
        low: f64,
        /// High.
        high: f64,
    },
    /// Volume below zero.
    NegativeVolume {
        /// The value.
        value: f64,
    },
    /// Timestamp not after the previous bar of the same symbol.
    TimestampNotIncreasing {
        /// Previous accepted timestamp (ms).
        previous: i64,
        /// This bar's timestamp (ms).
        got: i64,
    },
    /// Timestamp later than the receiving service's clock allows (`server.max_future_secs`).
    TimestampInFuture {
        /// This bar's timestamp (ms).
        got: i64,
        /// The latest timestamp accepted now (ms).
        limit: i64,
    },
    /// Timestamp outside the years 1–9999 ([`MIN_TS`], [`MAX_TS`]).
    TimestampOutOfRange {
        /// This bar's timestamp (ms).
        got: i64,
    },
    /// A new symbol beyond the number of symbols the service holds (`performance.max_symbols`).
    SymbolLimit {
        /// The limit.
        limit: usize,
    },
    /// A field could not be parsed.
    Unparseable {
        /// Field name.
        field: String,
        /// The raw text.
        value: String,
    },
    /// A required field is empty.
    Missing {
        /// Field name.
        field: String,
    },
    /// Only some of open/high/low are present.
    PartialOhl,
    /// Two fields of one row read as one (`Close` and `close` in one JSON object; counted as
    /// `unparseable`: which one is meant cannot be told).
    DuplicateField {
        /// The first name.
        first: String,
        /// The other name.
        second: String,
    },
    /// A text row with more or fewer fields than its file's header (counted as
    /// `unparseable`: its fields cannot be told apart).
    FieldCount {
        /// Fields in the row.
        got: usize,
        /// Fields in the header.
        want: usize,
    },
}

impl RejectReason {
    /// Every [`RejectReason::key`], for counters that should exist before the first
    /// rejection.
    pub const KEYS: [&'static str; 13] = [
        "non_finite",
        "non_positive_price",
        "high_below_low",
        "open_outside_range",
        "close_outside_range",
        "negative_volume",
        "timestamp_not_increasing",
        "timestamp_in_future",
        "timestamp_out_of_range",
        "symbol_limit",
        "unparseable",
        "missing_field",
        "partial_ohl",
    ];

    /// Stable counter key for `/api/v1/data/quality` and reports.
    pub fn key(&self) -> &'static str {
        match self {
            RejectReason::NonFinite { .. } => "non_finite",
            RejectReason::NonPositivePrice { .. } => "non_positive_price",
            RejectReason::HighBelowLow { .. } => "high_below_low",
            RejectReason::OutsideRange { field, .. } => {
                if *field == "open" {
                    "open_outside_range"
                } else {
                    "close_outside_range"
                }
            }
            RejectReason::NegativeVolume { .. } => "negative_volume",
            RejectReason::TimestampNotIncreasing { .. } => "timestamp_not_increasing",
            RejectReason::TimestampInFuture { .. } => "timestamp_in_future",
            RejectReason::TimestampOutOfRange { .. } => "timestamp_out_of_range",
            RejectReason::SymbolLimit { .. } => "symbol_limit",
            RejectReason::Unparseable { .. }
            | RejectReason::FieldCount { .. }
            | RejectReason::DuplicateField { .. } => "unparseable",
            RejectReason::Missing { .. } => "missing_field",
            RejectReason::PartialOhl => "partial_ohl",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::NonFinite { field } => write!(f, "{field} is not finite"),
            RejectReason::NonPositivePrice { field, value } => {
                write!(f, "{field} must be > 0, got {value}")
            }
            RejectReason::HighBelowLow { high, low } => {
                write!(f, "high {high} is below low {low}")
            }
            RejectReason::OutsideRange {
                field,
                value,
                low,
                high,
            } => write!(f, "{field} {value} is outside [low {low}, high {high}]"),
            RejectReason::NegativeVolume { value } => write!(f, "volume must be >= 0, got {value}"),
            RejectReason::TimestampNotIncreasing { previous, got } => {
                let (mut g, mut p) = (String::new(), String::new());
                push_timestamp(&mut g, *got);
                push_timestamp(&mut p, *previous);
                write!(
                    f,
                    "timestamp {g} is not after the previous bar's {p} for this symbol"
                )
            }
            RejectReason::TimestampInFuture { got, limit } => {
                let (mut g, mut l) = (String::new(), String::new());
                push_timestamp(&mut g, *got);
                push_timestamp(&mut l, *limit);
                write!(
                    f,
                    "timestamp {g} is in the future: after {l}, this service's clock plus \
                     server.max_future_secs (a timestamp in microseconds or nanoseconds read \
                     as milliseconds? a bar from the future would hold back every later bar \
                     of the symbol)"
                )
            }
            RejectReason::TimestampOutOfRange { got } => {
                let mut g = String::new();
                push_timestamp(&mut g, *got);
                write!(f, "timestamp {g} is outside the years 1-9999")
            }
            RejectReason::SymbolLimit { limit } => write!(
                f,
                "a new symbol, and the service already holds performance.max_symbols = {limit} \
                 symbols' pipelines (a feed putting something else in the symbol field? for a \
                 larger universe raise the limit)"
            ),
            RejectReason::Unparseable { field, value } => {
                write!(f, "cannot parse {field} from {value:?}")
            }
            RejectReason::Missing { field } => write!(f, "{field} is missing"),
            RejectReason::PartialOhl => {
                write!(f, "open/high/low must be all present or all absent")
            }
            RejectReason::FieldCount { got, want } => {
                write!(f, "row has {got} fields where the header has {want}")
            }
            RejectReason::DuplicateField { first, second } => write!(
                f,
                "fields {first:?} and {second:?} both name one field: rename or drop one"
            ),
        }
    }
}

/// The earliest bar time accepted: 0001-01-01 00:00:00 UTC (ms). Every store, file format
/// and four-digit year holds the years 1–9999; a time outside them is a unit or typing
/// error, and PostgreSQL refuses years before 4713 BC — a row it refuses held back every row
/// queued after it.
pub const MIN_TS: i64 = -62_135_596_800_000;
/// The latest bar time accepted: 9999-12-31 23:59:59.999 UTC (ms).
pub const MAX_TS: i64 = 253_402_300_799_999;

/// A symbol's next bar must come after its last one (`previous`; None before the first).
pub fn check_after(previous: Option<i64>, ts: i64) -> Result<(), RejectReason> {
    match previous {
        Some(previous) if ts <= previous => {
            Err(RejectReason::TimestampNotIncreasing { previous, got: ts })
        }
        _ => Ok(()),
    }
}

/// Check one bar on its own (no ordering check).
pub fn check_bar(b: &Bar) -> Result<(), RejectReason> {
    if !(MIN_TS..=MAX_TS).contains(&b.ts) {
        return Err(RejectReason::TimestampOutOfRange { got: b.ts });
    }
    if !b.close.is_finite() {
        return Err(RejectReason::NonFinite { field: "close" });
    }
    if b.close <= 0.0 {
        return Err(RejectReason::NonPositivePrice {
            field: "close",
            value: b.close,
        });
    }
    let absent = [b.open.is_nan(), b.high.is_nan(), b.low.is_nan()];
    if absent.iter().any(|a| *a) {
        if !absent.iter().all(|a| *a) {
            return Err(RejectReason::PartialOhl);
        }
    } else {
        for (field, v) in [("open", b.open), ("high", b.high), ("low", b.low)] {
            if !v.is_finite() {
                return Err(RejectReason::NonFinite { field });
            }
            if v <= 0.0 {
                return Err(RejectReason::NonPositivePrice { field, value: v });
            }
        }
        if b.high < b.low {
            return Err(RejectReason::HighBelowLow {
                high: b.high,
                low: b.low,
            });
        }
        // Relative slack of 1e-9 absorbs decimal rounding in the source files.
        let slack = 1e-9 * b.high;
        for (field, v) in [("open", b.open), ("close", b.close)] {
            if v < b.low - slack || v > b.high + slack {
                return Err(RejectReason::OutsideRange {
                    field,
                    value: v,
                    low: b.low,
                    high: b.high,
                });
            }
        }
    }
    if b.volume.is_infinite() {
        return Err(RejectReason::NonFinite { field: "volume" });
    }
    if b.volume < 0.0 {
        return Err(RejectReason::NegativeVolume { value: b.volume });
    }
    Ok(())
}

/// Per-symbol quality counters.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SymbolQuality {
    /// Bars accepted.
    pub accepted: u64,
    /// Bars rejected, by [`RejectReason::key`].
    pub rejected: BTreeMap<String, u64>,
    /// Timestamp (ms) of the last accepted bar.
    pub last_ts: Option<i64>,
    /// Bars received again (a resend of an accepted bar, recognized by the service): neither
    /// accepted twice nor rejected.
    #[cfg_attr(feature = "serde", serde(default))]
    pub duplicates: u64,
    /// Gaps: intervals more than 3× the median spacing seen so far (approximated by the running minimum spacing × 3).
    pub gaps: u64,
    /// Close-to-close returns of accepted bars (a bar with no trade — every price the
    /// previous close and no volume — is not one: the model reads it as absent).
    #[cfg_attr(feature = "serde", serde(default))]
    pub returns: u64,
    /// Of those, returns exactly 0 (the close unchanged): many mean prices on a coarse tick
    /// grid or stale closes, where labels lose accuracy ([`ZERO_RETURN_NOTE_SHARE`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub zero_returns: u64,
    #[cfg_attr(feature = "serde", serde(skip))]
    min_spacing: Option<i64>,
    #[cfg_attr(feature = "serde", serde(skip))]
    last_close: Option<f64>,
}

/// The share of exactly-zero close-to-close returns from which a symbol's prices are worth
/// a note ([`SymbolQuality::zero_return_share`]): on the generator's series rounded to a
/// grid, 30% zero returns is a grid step of half a return sd, where the full label keeps
/// 0.90 of the oracle's lift (a quarter sd, ~17% zeros: 0.95; one sd, ~50%: 0.74;
/// `benches/accuracy/README.md`, "Session 36").
pub const ZERO_RETURN_NOTE_SHARE: f64 = 0.3;
/// Returns a symbol needs before its zero-return share is read.
pub const ZERO_RETURN_MIN_RETURNS: u64 = 100;

impl SymbolQuality {
    /// Total rejected bars.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Count one rejected row (also one that failed to parse before it became a bar).
    pub fn count_rejected(&mut self, reason: &RejectReason) {
        *self.rejected.entry(reason.key().to_string()).or_insert(0) += 1;
    }

    /// Share of the close-to-close returns that are exactly 0; None before
    /// [`ZERO_RETURN_MIN_RETURNS`] returns.
    pub fn zero_return_share(&self) -> Option<f64> {
        (self.returns >= ZERO_RETURN_MIN_RETURNS)
            .then(|| self.zero_returns as f64 / self.returns as f64)
    }

    /// Count an accepted bar's close-to-close return.
    fn count_return(&mut self, bar: &Bar) {
        if let Some(prev) = self.last_close {
            // as the model reads it (`model::ObsExtractor::update`)
            let no_trade = bar.close == prev && bar.is_single_print() && bar.has_no_volume();
            if !no_trade {
                self.returns += 1;
                self.zero_returns += u64::from(bar.close == prev);
            }
        }
        self.last_close = Some(bar.close);
    }
}

/// Validates bars in arrival order and keeps the counts per symbol.
#[derive(Debug, Clone, Default)]
pub struct BarValidator {
    symbols: BTreeMap<String, SymbolQuality>,
}

impl BarValidator {
    /// A validator with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validate one bar of `symbol`; on success it becomes the symbol's latest bar.
    pub fn check(&mut self, symbol: &str, bar: &Bar) -> Result<(), RejectReason> {
        Self::check_symbol(self.symbol_mut(symbol), bar)
    }

    /// The counters of `symbol` (created empty if new), to validate many of its bars with
    /// [`BarValidator::check_symbol`] after one lookup.
    pub fn symbol_mut(&mut self, symbol: &str) -> &mut SymbolQuality {
        if !self.symbols.contains_key(symbol) {
            self.symbols
                .insert(symbol.to_string(), SymbolQuality::default());
        }
        match self.symbols.get_mut(symbol) {
            Some(q) => q,
            None => unreachable!("inserted above"),
        }
    }

    /// Validate one bar against a symbol's counters (from [`BarValidator::symbol_mut`]); on
    /// success it becomes the symbol's latest bar.
    pub fn check_symbol(q: &mut SymbolQuality, bar: &Bar) -> Result<(), RejectReason> {
        let res = check_bar(bar).and(check_after(q.last_ts, bar.ts));
        match &res {
            Ok(()) => {
                if let Some(prev) = q.last_ts {
                    let dt = bar.ts - prev;
                    match q.min_spacing {
                        Some(m) if dt > 3 * m && m > 0 => q.gaps += 1,
                        _ => {}
                    }
                    q.min_spacing = Some(q.min_spacing.map_or(dt, |m| m.min(dt)));
                }
                q.accepted += 1;
                q.last_ts = Some(bar.ts);
                q.count_return(bar);
            }
            Err(r) => q.count_rejected(r),
        }
        res
    }

    /// Count a row that failed before it became a bar (parse errors).
    pub fn count_unparsed(&mut self, symbol: &str, reason: &RejectReason) {
        self.symbol_mut(symbol).count_rejected(reason);
    }

    /// Counts per symbol.
    pub fn quality(&self) -> &BTreeMap<String, SymbolQuality> {
        &self.symbols
    }

    /// Rejections summed over symbols, by reason.
    pub fn rejected_by_reason(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for q in self.symbols.values() {
            for (k, v) in &q.rejected {
                *out.entry(k.clone()).or_insert(0) += v;
            }
        }
        out
    }
}

/// Append the decimal digits of `n`, zero-padded to at least `width` (at most 20).
pub fn push_digits(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    start = start.min(buf.len().saturating_sub(width));
    out.extend(buf[start..].iter().map(|&c| char::from(c)));
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian; H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Append `YYYY-MM-DD HH:MM:SS[.mmm]` for `ms` (UTC; what `regime detect` writes: the same text as chrono's `%Y-%m-%d %H:%M:%S[%.3f]`).
pub fn push_timestamp(out: &mut String, ms: i64) {
    use std::fmt::Write as _;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let secs = (rem / 1000) as u64;
    if (0..=9999).contains(&y) {
        push_digits(out, y as u64, 4);
    } else {
        let _ = write!(out, "{y:04}");
    }
    for (sep, v) in [
        ('-', u64::from(m)),
        ('-', u64::from(d)),
        (' ', secs / 3600),
        (':', secs / 60 % 60),
        (':', secs % 60),
    ] {
        out.push(sep);
        push_digits(out, v, 2);
    }
    if rem % 1000 != 0 {
        out.push('.');
        push_digits(out, (rem % 1000) as u64, 3);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zero_returns_are_counted_and_bars_with_no_trade_are_not_returns() {
        let mut v = BarValidator::new();
        let day = 86_400_000;
        // 150 bars on a grid of 0.5: every other close unchanged
        for i in 0..150i64 {
            let c = 100.0 + 0.5 * ((i / 2) % 3) as f64;
            let b = Bar::new(i * day, c, c + 0.5, c - 0.5, c, 1000.0);
            v.check("GRID", &b).unwrap();
        }
        // a rejected bar counts nothing
        let bad = Bar::new(150 * day, 101.0, 100.0, 102.0, 101.0, 1.0);
        assert!(v.check("GRID", &bad).is_err());
        // a bar with no trade (all prices the last close, no volume) is no return
        let last = 100.0 + 0.5 * ((149 / 2) % 3) as f64;
        v.check("GRID", &Bar::new(151 * day, last, last, last, last, 0.0))
            .unwrap();
        let q = &v.quality()["GRID"];
        assert_eq!((q.accepted, q.returns), (151, 149));
        // closes 0,0,1,1,2,2,0,0,...: a change every second bar
        assert_eq!(q.zero_returns, 75);
        let share = q.zero_return_share().unwrap();
        assert!((share - 75.0 / 149.0).abs() < 1e-12, "{share}");
        assert!(share >= ZERO_RETURN_NOTE_SHARE);
        // under 100 returns: no share
        let mut w = BarValidator::new();
        for i in 0..50i64 {
            w.check("S", &Bar::close_only(i * day, 10.0)).unwrap();
        }
        assert_eq!(w.quality()["S"].returns, 49);
        assert_eq!(w.quality()["S"].zero_return_share(), None);
    }

    #[test]
    fn times_outside_the_years_1_to_9999_are_refused() {
        let bar = |ts| Bar::close_only(ts, 10.0);
        assert_eq!(check_bar(&bar(MIN_TS)), Ok(()));
        assert_eq!(check_bar(&bar(MAX_TS)), Ok(()));
        for ts in [MIN_TS - 1, MAX_TS + 1, i64::MIN, i64::MAX] {
            let e = check_bar(&bar(ts)).unwrap_err();
            assert_eq!(e.key(), "timestamp_out_of_range");
        }
        let e = check_bar(&bar(MAX_TS + 1)).unwrap_err().to_string();
        assert!(
            e.contains("10000-01-01 00:00:00 is outside the years 1-9999"),
            "{e}"
        );
    }

    #[test]
    fn every_reason_key_is_listed() {
        let field = || "f".to_string();
        let all = [
            RejectReason::NonFinite { field: "close" },
            RejectReason::NonPositivePrice {
                field: "close",
                value: 0.0,
            },
            RejectReason::HighBelowLow {
                high: 1.0,
                low: 2.0,
            },
            RejectReason::OutsideRange {
                field: "open",
                value: 3.0,
                low: 1.0,
                high: 2.0,
            },
            RejectReason::OutsideRange {
                field: "close",
                value: 3.0,
                low: 1.0,
                high: 2.0,
            },
            RejectReason::NegativeVolume { value: -1.0 },
            RejectReason::TimestampNotIncreasing {
                previous: 1,
                got: 0,
            },
            RejectReason::TimestampInFuture { got: 2, limit: 1 },
            RejectReason::SymbolLimit { limit: 3 },
            RejectReason::TimestampOutOfRange { got: MIN_TS - 1 },
            RejectReason::Unparseable {
                field: field(),
                value: field(),
            },
            RejectReason::FieldCount { got: 1, want: 2 },
            RejectReason::DuplicateField {
                first: field(),
                second: field(),
            },
            RejectReason::Missing { field: field() },
            RejectReason::PartialOhl,
        ];
        let keys: std::collections::BTreeSet<&str> = all.iter().map(RejectReason::key).collect();
        let listed: std::collections::BTreeSet<&str> = RejectReason::KEYS.into_iter().collect();
        assert_eq!(keys, listed);
    }

    use super::*;

    fn ok_bar(ts: i64) -> Bar {
        Bar::new(ts, 100.0, 101.0, 99.0, 100.5, 1000.0)
    }

    #[test]
    fn each_bad_kind_is_rejected_with_its_key() {
        let cases: Vec<(Bar, &str)> = vec![
            (Bar::new(1, 100.0, 101.0, 99.0, f64::NAN, 1.0), "non_finite"),
            (
                Bar::new(1, 100.0, f64::INFINITY, 99.0, 100.0, 1.0),
                "non_finite",
            ),
            (
                Bar::new(1, 100.0, 101.0, 99.0, -1.0, 1.0),
                "non_positive_price",
            ),
            (
                Bar::new(1, 0.0, 101.0, 99.0, 100.0, 1.0),
                "non_positive_price",
            ),
            (Bar::new(1, 100.0, 98.0, 99.0, 98.5, 1.0), "high_below_low"),
            (
                Bar::new(1, 102.0, 101.0, 99.0, 100.0, 1.0),
                "open_outside_range",
            ),
            (
                Bar::new(1, 100.0, 101.0, 99.0, 98.0, 1.0),
                "close_outside_range",
            ),
            (
                Bar::new(1, 100.0, 101.0, 99.0, 100.0, -5.0),
                "negative_volume",
            ),
            (
                Bar::new(1, 100.0, f64::NAN, 99.0, 100.0, 5.0),
                "partial_ohl",
            ),
        ];
        for (b, key) in cases {
            let err = check_bar(&b).expect_err(key);
            assert_eq!(err.key(), key, "{b:?}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn degenerate_bars_are_valid() {
        assert!(check_bar(&Bar::new(1, 5.0, 5.0, 5.0, 5.0, 0.0)).is_ok());
        assert!(check_bar(&Bar::close_only(1, 5.0)).is_ok());
        assert!(check_bar(&Bar::new(1, 5.0, 6.0, 4.0, 5.5, f64::NAN)).is_ok());
    }

    #[test]
    fn ordering_is_per_symbol_and_counted() {
        let mut v = BarValidator::new();
        assert!(v.check("A", &ok_bar(10)).is_ok());
        assert!(v.check("B", &ok_bar(5)).is_ok());
        let e = v.check("A", &ok_bar(10)).expect_err("duplicate ts");
        assert_eq!(e.key(), "timestamp_not_increasing");
        assert!(v.check("A", &ok_bar(11)).is_ok());
        let q = &v.quality()["A"];
        assert_eq!(q.accepted, 2);
        assert_eq!(q.rejected["timestamp_not_increasing"], 1);
        assert_eq!(q.last_ts, Some(11));
        assert_eq!(v.rejected_by_reason()["timestamp_not_increasing"], 1);
    }
}
