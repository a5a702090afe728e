//! Reading bars and writing detections: CSV, Parquet and Arrow IPC (arrow-rs).
//!
//! Columns are matched case-insensitively: `timestamp` (or `date`, `datetime`, `time`),
//! `open`, `high`, `low`, `close` (required), `volume`, `symbol`, and optionally a label column.
//! Timestamps: ISO dates/datetimes (`2008-09-15`, `2008-09-15 14:30:00`, RFC 3339, UTC
//! offsets), integer `YYYYMMDD` dates, or integer epoch seconds (|x| < 1e11) / milliseconds.

use arrow::array::{
    Array, ArrayRef, Float32Array, Float64Array, Int32Array, Int64Array, LargeStringArray,
    RecordBatch, RecordBatchReader as _, StringArray, StringViewArray, TimestampMillisecondArray,
    UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use regime_core::bars::{push_digits, push_timestamp, Bar, BarValidator, RejectReason};
use regime_core::pipeline::Detection;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// I/O errors, each naming the file and, where it applies, the column.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IoError {
    /// The file cannot be opened or read.
    #[error("{path}: {source}")]
    Open {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A required column is absent.
    #[error("{path}: missing required column `{column}` (found: {found}){hint}")]
    MissingColumn {
        /// File.
        path: PathBuf,
        /// Column.
        column: &'static str,
        /// Columns present.
        found: String,
        /// What probably happened, when something is known ("" or "; …").
        hint: &'static str,
    },
    /// The label column `evaluate` scores against is not in the file.
    #[error("{path}: missing the label column `{column}` (found: {found}); name another with --label-column (label_column= in Python)")]
    MissingLabel {
        /// File.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// Columns present.
        found: String,
    },
    /// A column has a type that cannot be read as needed.
    #[error("{path}: column `{column}` has unsupported type {dtype}")]
    ColumnType {
        /// File.
        path: PathBuf,
        /// Column.
        column: String,
        /// Arrow type.
        dtype: String,
    },
    /// Malformed file (CSV structure, Parquet metadata).
    #[error("{path}: {message}")]
    Format {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Unknown file extension (an output), or neither extension nor content known (an input).
    #[error(
        "{path}: unknown format (use .csv, .csv.gz, .parquet, or .arrow / .feather for Arrow IPC)"
    )]
    UnknownFormat {
        /// File.
        path: PathBuf,
    },
    /// Writing the output failed (nothing is left at the destination).
    #[error("{path}: {message}")]
    Write {
        /// Destination file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

thread_local! {
    /// How many [`unpanicked`] calls this thread is inside (the panic hook keeps quiet then).
    static DECODING: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Calls `decode`, returning a panic inside it as `Err` with the panic's message.
///
/// arrow-rs and parquet panic instead of returning an error on some corrupt files — an
/// embedded Arrow schema naming an integer 15,728,704 bits wide or a type tag it does not
/// know, a column chunk at a negative offset — which ended `regime detect` with a
/// backtrace, a Python call with a `PanicException` and an Arrow ingest request with a
/// dropped connection. Every decoder call on outside bytes goes through here. The first
/// call chains a panic hook that stays silent while a thread is inside this function (the
/// error carries the message) and calls the hook before it otherwise.
pub(crate) fn unpanicked<T>(decode: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DECODING.with(std::cell::Cell::get) == 0 {
                previous(info);
            }
        }));
    });
    DECODING.with(|d| d.set(d.get() + 1));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    DECODING.with(|d| d.set(d.get() - 1));
    out.map_err(|payload| {
        panic_message(payload.as_ref())
            .unwrap_or("the decoder failed")
            .to_string()
    })
}

/// The message a panic was raised with (`panic!`'s text), when it has one.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// The error for a decoder that panicked on `path` (see [`unpanicked`]).
fn corrupt(path: &Path, message: String) -> IoError {
    IoError::Format {
        path: path.to_path_buf(),
        message: format!("corrupt file, its decoder failed: {message}"),
    }
}

/// The error for an Arrow IPC input whose declared sizes do not fit (see [`ipc_sizes_fit`]).
fn corrupt_ipc(path: &Path, message: String) -> IoError {
    IoError::Format {
        path: path.to_path_buf(),
        message: format!("corrupt Arrow IPC input: {message}"),
    }
}

/// Record batches of `batches`, a panic while decoding one ending the stream with an error
/// (see [`unpanicked`]).
fn unpanicked_batches<E: std::fmt::Display>(
    mut batches: impl Iterator<Item = Result<RecordBatch, E>>,
) -> impl Iterator<Item = Result<RecordBatch, String>> {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        match unpanicked(|| batches.next()) {
            Ok(next) => next.map(|b| b.map_err(|e| e.to_string())),
            Err(message) => {
                failed = true;
                Some(Err(format!("corrupt file, its decoder failed: {message}")))
            }
        }
    })
}

/// The most bytes an Arrow IPC buffer may declare it decompresses to: half the machine's
/// memory (`/proc/meminfo`), 1 TiB where that cannot be read. More cannot be decoded here
/// anyway, and asking the allocator for it aborts the process (see [`ipc_sizes_fit`]).
fn ipc_decompressed_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        total_kib.map_or(1 << 40, |k| k.saturating_mul(1024) / 2)
    })
}

/// One IPC message's checks for [`ipc_sizes_fit`]: `meta` its flatbuffer, its body at byte
/// `at` of an input of `len` bytes; the body's length, or `None` where the metadata does not
/// parse (arrow-rs reports that).
fn ipc_message_fits(
    at: u64,
    meta: &[u8],
    len: u64,
    read_at: &mut dyn FnMut(u64, usize) -> Result<Vec<u8>, String>,
) -> Result<Option<u64>, String> {
    let Ok(msg) = arrow::ipc::root_as_message(meta) else {
        return Ok(None);
    };
    let body = u64::try_from(msg.bodyLength())
        .ok()
        .filter(|b| at.checked_add(*b).is_some_and(|end| end <= len));
    let Some(body) = body else {
        return Err(format!(
            "a message at byte {at} declares a body of {} bytes; the input has {} from there",
            msg.bodyLength(),
            len.saturating_sub(at)
        ));
    };
    let batch = msg
        .header_as_record_batch()
        .or_else(|| msg.header_as_dictionary_batch().and_then(|d| d.data()));
    let Some(batch) = batch.filter(|b| b.compression().is_some()) else {
        return Ok(Some(body));
    };
    for buf in batch.buffers().into_iter().flatten() {
        if buf.length() < 8 {
            continue;
        }
        let start = u64::try_from(buf.offset())
            .ok()
            .filter(|o| o.saturating_add(8) <= body)
            .ok_or_else(|| {
                format!(
                    "a buffer at offset {} lies outside its message's body of {body} bytes at byte {at}",
                    buf.offset()
                )
            })?;
        let head = read_at(at + start, 8)?;
        let declared = i64::from_le_bytes(head.try_into().unwrap_or([0; 8]));
        if u64::try_from(declared).is_ok_and(|d| d > ipc_decompressed_limit()) {
            return Err(format!(
                "a compressed buffer at byte {} declares {declared} bytes uncompressed, more than half this machine's memory",
                at + start
            ));
        }
    }
    Ok(Some(body))
}

/// Checks what an Arrow IPC file or stream of `len` bytes declares before arrow-rs allocates
/// it: every message's body within the input, and every compressed buffer's uncompressed
/// size within [`ipc_decompressed_limit`]. arrow-rs takes these sizes on trust and asks the
/// allocator for them, and a failed allocation aborts the process — no panic to catch — so
/// a flipped byte in a Feather file's footer ended `regime detect` with `memory allocation
/// of 863288481216 bytes failed`, and an Arrow ingest request would have ended the service.
/// Reads only the messages' metadata and each compressed buffer's 8-byte length prefix;
/// what it cannot parse is left for arrow-rs to report as it reads the same bytes.
fn ipc_sizes_fit<R: std::io::Read + std::io::Seek>(r: &mut R, len: u64) -> Result<(), String> {
    use std::io::SeekFrom;
    let mut read_at = |at: u64, n: usize| -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n];
        r.seek(SeekFrom::Start(at))
            .and_then(|_| r.read_exact(&mut buf))
            .map_err(|e| format!("reading byte {at}: {e}"))?;
        Ok(buf)
    };
    let head = read_at(0, 6.min(len as usize))?;
    if head == b"ARROW1" {
        // the file format: the footer's blocks are what the reader reads
        if len < 16 {
            return Ok(());
        }
        let tail = read_at(len - 10, 10)?;
        let footer_len = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let Some(footer_at) = u64::try_from(footer_len)
            .ok()
            .and_then(|f| (len - 10).checked_sub(f))
        else {
            return Ok(());
        };
        let footer = read_at(footer_at, footer_len as usize)?;
        let Ok(footer) = arrow::ipc::root_as_footer(&footer) else {
            return Ok(());
        };
        let blocks = footer
            .dictionaries()
            .into_iter()
            .flatten()
            .chain(footer.recordBatches().into_iter().flatten());
        for b in blocks {
            let (Ok(at), Ok(meta_len)) =
                (u64::try_from(b.offset()), u64::try_from(b.metaDataLength()))
            else {
                return Err(format!(
                    "a block at byte {} of {} metadata bytes",
                    b.offset(),
                    b.metaDataLength()
                ));
            };
            let body_len = u64::try_from(b.bodyLength()).unwrap_or(u64::MAX);
            if at.saturating_add(meta_len).saturating_add(body_len) > len {
                return Err(format!(
                    "a block at byte {at} declares {meta_len} + {} bytes; the file has {len}",
                    b.bodyLength()
                ));
            }
            if meta_len < 8 {
                continue;
            }
            let meta = read_at(at, meta_len as usize)?;
            let skip = if meta[..4] == [0xff; 4] { 8 } else { 4 };
            if ipc_message_fits(at + meta_len, &meta[skip..], len, &mut read_at)?.is_none() {
                // arrow-rs parses the message from the whole block, body included, where a
                // damaged flatbuffer can still pass its checks: so must this
                let block = read_at(at, (meta_len + body_len) as usize)?;
                ipc_message_fits(at + meta_len, &block[skip..], len, &mut read_at)?;
            }
        }
        return Ok(());
    }
    // the stream format: messages one after another
    let mut at = 0u64;
    while at + 4 <= len {
        let mut word = read_at(at, 4)?;
        let mut prefix = 4;
        if word == [0xff; 4] {
            if at + 8 > len {
                break;
            }
            word = read_at(at + 4, 4)?;
            prefix = 8;
        }
        let meta_len = i32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        let Ok(meta_len) = u64::try_from(meta_len) else {
            break;
        };
        let meta_at = at + prefix;
        if meta_len == 0 || meta_at + meta_len > len {
            break;
        }
        let meta = read_at(meta_at, meta_len as usize)?;
        match ipc_message_fits(meta_at + meta_len, &meta, len, &mut read_at)? {
            Some(body) => at = meta_at + meta_len + body,
            None => break,
        }
    }
    Ok(())
}

/// Internal result of the write helpers before the path is attached.
type WriteResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One rejected input row.
#[derive(Debug, Clone)]
pub struct RowError {
    /// 1-based data row (header not counted).
    pub row: usize,
    /// Symbol of the row.
    pub symbol: String,
    /// Why.
    pub reason: RejectReason,
}

/// Bars of one symbol, in input order, with optional labels.
#[derive(Debug, Clone, Default)]
pub struct SymbolBars {
    /// Symbol (`""` when the input has no symbol column).
    pub symbol: String,
    /// Valid bars.
    pub bars: Vec<Bar>,
    /// Label per bar (when a label column was requested).
    pub labels: Vec<Option<u8>>,
}

/// Everything read from one input.
#[derive(Debug, Default)]
pub struct Input {
    /// Per symbol, in order of first appearance.
    pub series: Vec<SymbolBars>,
    /// Rejected rows.
    pub errors: Vec<RowError>,
    /// Validation counters.
    pub validator: BarValidator,
    /// Rows read.
    pub rows: usize,
    /// How numeric dates (`01/02/2020`) were read, where the file held them and showed how.
    pub date_order: Option<DateOrderSeen>,
    /// The rows ran newest first and were read last row first (a CSV file only).
    pub newest_first: bool,
}

/// Input format from the extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text.
    Csv,
    /// The same, gzip-compressed (`.csv.gz`).
    CsvGz,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC: the file format (Feather v2) or the stream format, told apart by the
    /// file's first bytes when read; written as the file format.
    Arrow,
}

impl Format {
    /// From a path's extension.
    pub fn of(path: &Path) -> Result<Self, IoError> {
        let ext = |p: &Path| {
            p.extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase())
        };
        match ext(path).as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("gz") if ext(&path.with_extension("")).as_deref() == Some("csv") => {
                Ok(Format::CsvGz)
            }
            Some("parquet") | Some("pq") => Ok(Format::Parquet),
            Some("arrow") | Some("feather") | Some("ipc") | Some("arrows") => Ok(Format::Arrow),
            _ => Err(IoError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// An input file's format: by its extension, else (`.txt`, `.dat`, none, …) by its
    /// first bytes — Parquet's and Arrow's magic numbers, gzip's, else text read as CSV.
    pub fn of_input(path: &Path) -> Result<Self, IoError> {
        let by_name = Format::of(path);
        if by_name.is_ok() {
            return by_name;
        }
        let mut head = Vec::with_capacity(512);
        {
            use std::io::Read;
            open_input(path)?
                .take(512)
                .read_to_end(&mut head)
                .map_err(|e| IoError::Open {
                    path: path.to_path_buf(),
                    source: e,
                })?;
        }
        let head = head.as_slice();
        if utf16(head) {
            // text, though not the kind read: the CSV reader says what it is
            Ok(Format::Csv)
        } else if head.starts_with(b"PAR1") {
            Ok(Format::Parquet)
        } else if head.starts_with(b"ARROW1") || head.starts_with(&[0xff, 0xff, 0xff, 0xff]) {
            Ok(Format::Arrow)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Format::CsvGz)
        } else if !head.contains(&0) && text_prefix(head) {
            Ok(Format::Csv)
        } else {
            by_name
        }
    }
}

/// Whether `head` (a file's first bytes) starts with a UTF-16 byte-order mark: text as
/// Excel's "Unicode Text" and some Windows tools save it.
fn utf16(head: &[u8]) -> bool {
    head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff])
}

/// Whether `head` (a file's first bytes) is UTF-8 text, allowing a character cut at its end.
fn text_prefix(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// Epoch numbers below these magnitudes are seconds, ms and µs (above: ns); see
/// [`integer_timestamp`].
const SECONDS_BELOW: u64 = 100_000_000_000;
const MS_BELOW: u64 = SECONDS_BELOW * 1000;
const US_BELOW: u64 = MS_BELOW * 1000;

/// An integer timestamp in ms: a `YYYYMMDD` date (years 1800–2200, as CRSP and many
/// databases store dates; as epoch seconds those would be 1970–1973, and whole days in
/// seconds never end in a valid day of the month), else by its size epoch seconds
/// (|x| < 1e11: before 5138), milliseconds (< 1e14), microseconds (< 1e17) or nanoseconds
/// (pandas' and Arrow's default unit) — each unit's present-day values are a thousand
/// times the last's, so no time from 1973 to 5138 reads as another unit's.
pub fn integer_timestamp(i: i64) -> i64 {
    if (18_000_101..=22_001_231).contains(&i) {
        let (y, m, d) = (i / 10_000, (i / 100) % 100, i % 100);
        if let Some(day) = NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32) {
            return day
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis();
        }
    }
    match i.unsigned_abs() {
        a if a < SECONDS_BELOW => i * 1000,
        a if a < MS_BELOW => i,
        a if a < US_BELOW => i.div_euclid(1000),
        _ => i.div_euclid(1_000_000),
    }
}

/// A number with a fraction as a timestamp in ms (`time.time()`'s float seconds, or ms
/// with a fraction), by its size as [`integer_timestamp`] reads whole numbers; None when
/// not finite or beyond any unit's range.
pub fn float_timestamp(x: f64) -> Option<i64> {
    let ms = match x.abs() {
        a if a < SECONDS_BELOW as f64 => x * 1e3,
        a if a < MS_BELOW as f64 => x,
        a if a < US_BELOW as f64 => x / 1e3,
        a if a < 9.2e18 => x / 1e6,
        _ => return None,
    };
    ms.is_finite().then(|| ms.floor() as i64)
}

/// Parse a timestamp in any accepted form to ms since epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(ms) = parse_plain_datetime(s) {
        return Some(ms);
    }
    if let Ok(i) = s.parse::<i64>() {
        return Some(integer_timestamp(i));
    }
    // epoch time with a fraction (`time.time()`'s seconds)
    if s.contains('.')
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        if let Ok(x) = s.parse::<f64>() {
            return float_timestamp(x);
        }
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    // a UTC offset without the colon RFC 3339 wants (`strftime`'s %z: -0500)
    for f in ["%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f%z"] {
        if let Ok(d) = DateTime::parse_from_str(s, f) {
            return Some(d.timestamp_millis());
        }
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S",
        // MetaTrader's exports: 2024.01.02 09:30[:00]
        "%Y.%m.%d %H:%M:%S",
        "%Y.%m.%d %H:%M",
        // Interactive Brokers': 20240102 09:30:00 (two spaces between in TWS's)
        "%Y%m%d %H:%M:%S",
        "%Y%m%d  %H:%M:%S",
        "%Y%m%d %H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc().timestamp_millis());
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return d
                .and_hms_opt(0, 0, 0)
                .map(|x| x.and_utc().timestamp_millis());
        }
    }
    named_month_date(s)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|x| x.and_utc().timestamp_millis())
}

/// A date whose month is named, which leaves no doubt which number is the day:
/// `02-Jan-2024`, `02-Jan-24` (spreadsheets, NSE), `2 Jan 2024`, `Jan 2, 2024`, `January 2,
/// 2024` (US web pages); the year last, four digits or two (00-68: 2000s, 69-99: 1900s).
fn named_month_date(s: &str) -> Option<NaiveDate> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if !s.bytes().any(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let parts: Vec<&str> = s
        .split([' ', '-', ',', '/', '.'])
        .filter(|p| !p.is_empty())
        .collect();
    let [a, b, y] = parts.as_slice() else {
        return None;
    };
    let month = |t: &str| {
        let t = t.to_ascii_lowercase();
        (t.len() >= 3)
            .then(|| MONTHS.iter().position(|m| m.starts_with(&t)))
            .flatten()
            .map(|i| i as u32 + 1)
    };
    let number = |t: &str, len: std::ops::RangeInclusive<usize>| {
        (len.contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit()))
            .then(|| t.parse::<u32>().ok())
            .flatten()
    };
    let (m, d) = match (month(a), month(b)) {
        (None, Some(m)) => (m, number(a, 1..=2)?),
        (Some(m), None) => (m, number(b, 1..=2)?),
        _ => return None,
    };
    let year = match y.len() {
        4 => number(y, 4..=4)? as i32,
        2 => {
            let yy = number(y, 2..=2)? as i32;
            if yy < 69 {
                2000 + yy
            } else {
                1900 + yy
            }
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(year, m, d)
}

/// `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (the forms files mostly
/// hold), read digit by digit; None for anything else, which the general parser then tries.
/// chrono's `parse_from_str` reads its format string again on every call: with this, a
/// 1M-row CSV file is read in about half the time. Same values as the general path
/// (`plain_datetimes_parse_like_chrono`).
fn parse_plain_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 && b.len() != 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (h, m, sec) = if b.len() == 19 {
        if !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        (num(11..13)?, num(14..16)?, num(17..19)?)
    } else {
        (0, 0, 0)
    };
    Some(date.and_hms_opt(h, m, sec)?.and_utc().timestamp_millis())
}

/// Append a CSV number: six decimals ([`push_fixed6`]), except a value those would write as
/// zero, which is written in the shortest form that reads back as it (`1.5e-7`): a
/// generated price series that drifts below 5e-7 (a random walk over ~2,000 years of daily
/// bars) was written as rows of zero prices that `detect` then rejected.
fn push_number(out: &mut String, v: f64) {
    if v != 0.0 && v.abs() < 5e-7 {
        use std::fmt::Write as _;
        let _ = write!(out, "{v:e}");
    } else {
        push_fixed6(out, v);
    }
}

/// Append `v` as `format!("{v:.6}")` would: by integer arithmetic when `v` is small enough
/// for `v·10⁶` to be exact to well under half a unit and not near a tie, by the formatter
/// otherwise (the float formatter was a sixth of the time `regime detect` spent writing CSV).
fn push_fixed6(out: &mut String, v: f64) {
    let x = v.abs() * 1e6;
    let frac = x - x.floor();
    if !x.is_finite() || x >= 1e12 || (frac - 0.5).abs() < 1e-3 {
        use std::fmt::Write as _;
        let _ = write!(out, "{v:.6}");
        return;
    }
    let n = x.round() as u64;
    if v.is_sign_negative() {
        out.push('-');
    }
    push_digits(out, n / 1_000_000, 1);
    out.push('.');
    push_digits(out, n % 1_000_000, 6);
}

/// Format ms since epoch as `YYYY-MM-DD HH:MM:SS` (UTC; milliseconds only when present).
pub fn format_timestamp(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(d) if ms % 1000 != 0 => d.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        Some(d) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ms.to_string(),
    }
}

/// Raw values of one row before validation.
struct RawRow<'a> {
    symbol: &'a str,
    ts: Result<i64, RejectReason>,
    vals: [Result<f64, RejectReason>; 5],
    label: Option<Result<u8, RejectReason>>,
}

impl RawRow<'_> {
    /// The bar (and label), or the first field that failed to parse.
    fn parse(&self) -> Result<(Bar, Option<u8>), RejectReason> {
        let ts = self.ts.clone()?;
        let mut v = [0.0; 5];
        for (i, x) in self.vals.iter().enumerate() {
            v[i] = x.clone()?;
        }
        let label = match &self.label {
            Some(l) => Some(l.clone()?),
            None => None,
        };
        Ok((Bar::new(ts, v[0], v[1], v[2], v[3], v[4]), label))
    }
}

/// A row's bar and label once parsed, or why it could not be.
type Parsed = Result<(Bar, Option<u8>), RejectReason>;
/// Rows of one run, numbered, parsed.
type Rows<'a> = dyn Iterator<Item = (usize, Parsed)> + 'a;

struct Collector {
    input: Input,
    index: BTreeMap<String, usize>,
    want_labels: bool,
    /// The input has a symbol column: a row with none (empty or null) is a bad row, not a
    /// series of its own.
    symbol_column: bool,
}

impl Collector {
    fn new(want_labels: bool, symbol_column: bool) -> Self {
        Collector {
            input: Input::default(),
            index: BTreeMap::new(),
            want_labels,
            symbol_column,
        }
    }

    fn push(&mut self, row: usize, r: RawRow<'_>) {
        self.push_run(r.symbol, &mut std::iter::once((row, r.parse())));
    }

    /// Consecutive rows of one symbol: its counters and its series are looked up once for
    /// the run, not once per row.
    fn push_run(&mut self, symbol: &str, rows: &mut Rows<'_>) {
        let q = self.input.validator.symbol_mut(symbol);
        let no_symbol = self.symbol_column && symbol.is_empty();
        // the series is created with the symbol's first accepted bar
        let mut series: Option<usize> = None;
        for (row, parsed) in rows {
            self.input.rows += 1;
            let parsed = match parsed {
                Ok(_) if no_symbol => Err(RejectReason::Missing {
                    field: "symbol".into(),
                }),
                p => p,
            };
            let (bar, label) = match parsed {
                Ok(x) => x,
                Err(reason) => {
                    q.count_rejected(&reason);
                    self.input.errors.push(RowError {
                        row,
                        symbol: symbol.to_string(),
                        reason,
                    });
                    continue;
                }
            };
            if let Err(reason) = BarValidator::check_symbol(q, &bar) {
                self.input.errors.push(RowError {
                    row,
                    symbol: symbol.to_string(),
                    reason,
                });
                continue;
            }
            let idx = *series.get_or_insert_with(|| match self.index.get(symbol) {
                Some(i) => *i,
                None => {
                    self.input.series.push(SymbolBars {
                        symbol: symbol.to_string(),
                        ..Default::default()
                    });
                    let i = self.input.series.len() - 1;
                    self.index.insert(symbol.to_string(), i);
                    i
                }
            });
            let s = &mut self.input.series[idx];
            s.bars.push(bar);
            if self.want_labels {
                s.labels.push(label);
            }
        }
    }
}

/// The names a timestamp column goes by; last, pandas' name for an index without one (a
/// Parquet or Feather file written from a frame whose DatetimeIndex has no name).
const TS_NAMES: [&str; 6] = [
    "timestamp",
    "datetime",
    "date",
    "time",
    "ts",
    "__index_level_0__",
];
/// The names a symbol column goes by.
const SYMBOL_NAMES: [&str; 2] = ["symbol", "ticker"];

/// The names of a schema's fields, in order.
fn field_names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}
/// Value columns in `Bar` order.
const VALUE_NAMES: [&str; 5] = ["open", "high", "low", "close", "volume"];
/// The names each value column goes by, in `Bar` order: Bloomberg's `PX_` names too;
/// "Adj Close" only when there is no close.
const VALUE_ALIASES: [&[&str]; 5] = [
    &["open", "px_open"],
    &["high", "px_high"],
    &["low", "px_low"],
    &[
        "close",
        "px_last",
        "last",
        "adj_close",
        "price",
        "close/last",
    ],
    &["volume", "px_volume", "vol."],
];

/// Positions of the value columns among `names` in `Bar` order; None without a close.
fn value_columns(names: &[String]) -> Option<[Option<usize>; 5]> {
    let v: [Option<usize>; 5] = std::array::from_fn(|k| find(names, VALUE_ALIASES[k]));
    v[3].map(|_| v)
}

/// Where a bar's fields are among one bar's keys (or a header), by the rules the file readers
/// use (any case, spaces as `_`, `date`/`datetime`, Bloomberg's `PX_` names, `Adj Close`
/// without a close, a `time` beside a `date`): each None when absent (the close is the only
/// value a bar needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarFields {
    /// The timestamp.
    pub ts: Option<usize>,
    /// A time of day beside a `date` timestamp (`time_of_day_field`).
    pub time: Option<usize>,
    /// open, high, low, close, volume.
    pub values: [Option<usize>; 5],
    /// `symbol` or `ticker`.
    pub symbol: Option<usize>,
    /// Two names that would both be read as the timestamp, the time or a value (`close` and
    /// `Close`), which the readers refuse.
    pub twin: Option<(usize, usize)>,
    /// The same for the symbol (`symbol` and `Symbol`).
    pub symbol_twin: Option<(usize, usize)>,
}

/// [`BarFields`] of `names`, each name normalized once (JSON ingest asks this of every row
/// whose keys are not the plain ones).
pub fn bar_fields(names: &[String]) -> BarFields {
    let normed: Vec<String> = names.iter().map(|h| norm(h)).collect();
    let ts = position(&normed, &TS_NAMES);
    let time = ts.and_then(|t| time_beside(&normed, t));
    let values: [Option<usize>; 5] = std::array::from_fn(|k| position(&normed, VALUE_ALIASES[k]));
    let symbol = position(&normed, &SYMBOL_NAMES);
    BarFields {
        ts,
        time,
        values,
        symbol,
        twin: twin_normed(&normed, [ts, time].into_iter().chain(values).flatten()),
        symbol_twin: twin_normed(&normed, symbol),
    }
}

/// Positions of the input columns in a header, shared by the CSV and Parquet readers.
struct Columns {
    ts: usize,
    /// A time-of-day column beside a `date` timestamp column (intraday exports: `Date,Time,
    /// Open,...`), added to the date.
    time: Option<usize>,
    /// open, high, low, close (always present), volume.
    values: [Option<usize>; 5],
    symbol: Option<usize>,
    label: Option<usize>,
}

impl Columns {
    /// The columns read, in any order.
    fn used(&self) -> Vec<usize> {
        let mut v: Vec<usize> = [Some(self.ts), self.time, self.symbol, self.label]
            .into_iter()
            .chain(self.values)
            .flatten()
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn locate(
        path: &Path,
        headers: &[String],
        label_column: Option<&str>,
    ) -> Result<Self, IoError> {
        if headers.iter().all(|h| h.trim().is_empty()) {
            // an empty file (or an empty first line): "missing column `timestamp` (found: )"
            // would send the reader looking for a misnamed column
            return Err(IoError::Format {
                path: path.to_path_buf(),
                message: "no header row: the file is empty (expected columns timestamp, \
                          open, high, low, close, volume, optionally symbol)"
                    .into(),
            });
        }
        let missing = |column, hint| IoError::MissingColumn {
            path: path.to_path_buf(),
            column,
            found: headers.join(","),
            hint,
        };
        // pandas' to_csv writes an index without a name under an empty header
        let unnamed_first = headers.first().is_some_and(|h| h.trim().is_empty());
        let ts = find(headers, &TS_NAMES).ok_or_else(|| {
            missing(
                "timestamp",
                if unnamed_first {
                    "; the first column has no name — an index written by pandas' to_csv? \
                     name it (df.index.name = \"timestamp\") before writing"
                } else {
                    ""
                },
            )
        })?;
        let values = value_columns(headers).ok_or_else(|| missing("close", ""))?;
        let label = match label_column {
            Some(l) => Some(find(headers, &[l]).ok_or_else(|| IoError::MissingLabel {
                path: path.to_path_buf(),
                column: l.to_string(),
                found: headers.join(","),
            })?),
            None => None,
        };
        let cols = Columns {
            ts,
            time: time_of_day_field(headers, ts),
            values,
            symbol: find(headers, &SYMBOL_NAMES),
            label,
        };
        // two columns of one name (`Close` and `close`): reading either would be a guess
        if let Some((i, j)) = twin(headers, cols.used()) {
            return Err(IoError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "column `{}` appears twice (columns {} and {}): rename or drop one",
                    headers[i].trim(),
                    i + 1,
                    j + 1
                ),
            });
        }
        Ok(cols)
    }
}

/// The first of the `used` names that another of `names` repeats (as the readers compare
/// names), as `(first, second)` positions, in order.
fn twin(names: &[String], used: impl IntoIterator<Item = usize>) -> Option<(usize, usize)> {
    let normed: Vec<String> = names.iter().map(|h| norm(h)).collect();
    twin_normed(&normed, used)
}

/// [`twin`] among names already normalized.
fn twin_normed(normed: &[String], used: impl IntoIterator<Item = usize>) -> Option<(usize, usize)> {
    used.into_iter().find_map(|i| {
        (0..normed.len())
            .find(|&j| j != i && normed[j] == normed[i])
            .map(|j| (i.min(j), i.max(j)))
    })
}

/// A column name as the readers compare it: without case, spaces and dashes read as
/// underscores (`Adj Close` is `adj_close`), and without the angle brackets MetaTrader puts
/// around its names (`<DATE>`, `<TIME>`, `<CLOSE>`).
fn norm(h: &str) -> String {
    let h = h.trim();
    let h = h
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(h);
    h.trim()
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Where a time-of-day column is among `names` when the timestamp (at `ts`) is a `date`: a
/// column named `time`, as intraday exports split them (`Date,Time,Open,...`). None otherwise
/// (a `timestamp` or `datetime` column holds the time already).
fn time_of_day_field(names: &[String], ts: usize) -> Option<usize> {
    let normed: Vec<String> = names.iter().map(|h| norm(h)).collect();
    time_beside(&normed, ts)
}

/// [`time_of_day_field`] among names already normalized.
fn time_beside(normed: &[String], ts: usize) -> Option<usize> {
    (normed[ts] == "date")
        .then(|| position(normed, &["time"]))
        .flatten()
}

/// Which of a numeric date's first two fields is the day: `01/02/2020` is 1 February
/// day-first (most of the world, and `DD.MM.YYYY` everywhere) and 2 January month-first
/// (US spreadsheets). Read only where a file shows which (`csv_date_order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    /// `DD/MM/YYYY`.
    DayFirst,
    /// `MM/DD/YYYY`.
    MonthFirst,
}

impl DateOrder {
    /// The form, as a person writes it.
    pub fn form(self) -> &'static str {
        match self {
            DateOrder::DayFirst => "day first, DD/MM/YYYY",
            DateOrder::MonthFirst => "month first, MM/DD/YYYY",
        }
    }
}

/// How a file's numeric dates were read, and what showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateOrderSeen {
    /// The order.
    pub order: DateOrder,
    /// The first data row whose date can be read one way only, and its text (None: dotted
    /// dates none of which tells, read day-first as they are written everywhere).
    pub shown_by: Option<(usize, String)>,
}

/// A date `A/B/YYYY` (or `.` or `-` between the fields), with an optional time after a
/// space or `T`: (A, B, year, separator, time text); None for any other form.
fn numeric_date(s: &str) -> Option<(u32, u32, i32, char, &str)> {
    let s = s.trim();
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let sep = date.chars().find(|c| matches!(c, '/' | '.' | '-'))?;
    let mut it = date.split(sep);
    let (a, b, y) = (it.next()?, it.next()?, it.next()?);
    let digits = |t: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&t.len()) && t.bytes().all(|c| c.is_ascii_digit())
    };
    if it.next().is_some() || !digits(a, 1..=2) || !digits(b, 1..=2) || !digits(y, 4..=4) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?, y.parse().ok()?, sep, time))
}

/// The order a numeric date's fields allow: a field above 12 can only be the day.
fn order_shown(a: u32, b: u32) -> Option<DateOrder> {
    match (a > 12, b > 12) {
        (true, false) => Some(DateOrder::DayFirst),
        (false, true) => Some(DateOrder::MonthFirst),
        _ => None,
    }
}

/// A timestamp's time of day after a numeric date: `H:MM[:SS[.fff]]`, and `AM`/`PM` after
/// it as US spreadsheets write it (`9:30:00 AM`; hours 1-12 then).
fn clock_time(t: &str) -> Option<i64> {
    let upper = t.trim().to_ascii_uppercase();
    let (body, half) = match (upper.strip_suffix("AM"), upper.strip_suffix("PM")) {
        (Some(b), _) => (b.trim_end(), Some(false)),
        (_, Some(b)) => (b.trim_end(), Some(true)),
        _ => (upper.as_str(), None),
    };
    if !body.contains(':') {
        return None;
    }
    let ms = parse_time_of_day(body)?;
    const HOUR: i64 = 3_600_000;
    match half {
        None => Some(ms),
        Some(_) if !(HOUR..13 * HOUR).contains(&ms) => None,
        // 12:xx AM is just after midnight, 12:xx PM just after noon
        Some(pm) => Some(ms % (12 * HOUR) + if pm { 12 * HOUR } else { 0 }),
    }
}

/// [`parse_timestamp`], and besides its forms a numeric date (`01/02/2020 09:30`) read in
/// `order` when one is given.
pub fn parse_timestamp_in(s: &str, order: Option<DateOrder>) -> Option<i64> {
    parse_timestamp(s).or_else(|| {
        let order = order?;
        let (a, b, y, _, time) = numeric_date(s)?;
        let (d, m) = match order {
            DateOrder::DayFirst => (a, b),
            DateOrder::MonthFirst => (b, a),
        };
        let day = NaiveDate::from_ymd_opt(y, m, d)?;
        let ms = if time.is_empty() {
            0
        } else {
            clock_time(time)?
        };
        Some(
            day.and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis()
                + ms,
        )
    })
}

/// Records of a CSV file, plain or gzipped.
type CsvRecords = csv::Reader<std::io::BufReader<Box<dyn std::io::Read>>>;

/// A CSV file (plain or gzipped) opened for a look ahead of reading it: its records and
/// where its columns are. None for any other format, or a file the readers would refuse
/// (reading it proper says why).
fn csv_records(path: &Path, fmt: Format) -> Option<(CsvRecords, Columns)> {
    let file = open_input(path).ok()?;
    let reader: Box<dyn std::io::Read> = match fmt {
        Format::Csv => Box::new(file),
        Format::CsvGz => Box::new(Gunzip(flate2::read::MultiGzDecoder::new(file))),
        Format::Parquet | Format::Arrow => return None,
    };
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let delimiter = sniff_delimiter(std::io::BufRead::fill_buf(&mut reader).ok()?);
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(reader);
    let headers: Vec<String> = rdr.headers().ok()?.iter().map(String::from).collect();
    let cols = Columns::locate(path, &headers, None).ok()?;
    Some((rdr, cols))
}

/// Whether a CSV file's rows run newest first, as web pages' downloads do (Investing.com,
/// Nasdaq.com, many brokers): every symbol's timestamps strictly decreasing, and some
/// symbol's at least twice. Rows whose timestamp does not read do not count. A file whose
/// first two rows of a symbol rise is known at once (most files: two rows read); one that
/// runs newest first is read through.
fn csv_newest_first(path: &Path, fmt: Format, order: Option<DateOrder>) -> bool {
    let Some((mut rdr, cols)) = csv_records(path, fmt) else {
        return false;
    };
    let mut newest: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut fell = false;
    let mut rec = csv::StringRecord::new();
    while rdr.read_record(&mut rec).unwrap_or(false) {
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("");
        let ts = timestamp_field_in(get(Some(cols.ts)), order)
            .and_then(|d| cols.time.map_or(Ok(d), |t| date_and_time(d, get(Some(t)))));
        let Ok(ts) = ts else {
            continue;
        };
        let symbol = get(cols.symbol).trim();
        match newest.get_mut(symbol) {
            Some(prev) if ts < *prev => {
                *prev = ts;
                fell = true;
            }
            Some(_) => return false,
            None => {
                newest.insert(symbol.to_string(), ts);
            }
        }
    }
    fell
}

/// How a CSV file's numeric dates (`01/02/2020`) are to be read, when its timestamps are in
/// that form: the first date with a field above 12 shows the order (the file is read up to
/// it: within a fortnight of daily bars), and dotted dates none of which tells are
/// day-first (no one writes MM.DD.YYYY). None when the first timestamp is in another form
/// (most files: one row read), the file cannot be read (reading it proper says why) or its
/// slashed dates never tell — they are then refused with a hint.
fn csv_date_order(path: &Path, fmt: Format) -> Option<DateOrderSeen> {
    let (mut rdr, cols) = csv_records(path, fmt)?;
    let ts = cols.ts;
    let mut rec = csv::StringRecord::new();
    let (mut row, mut seen, mut dotted) = (0usize, false, false);
    while rdr.read_record(&mut rec).ok()? {
        row += 1;
        let text = rec.get(ts).unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let Some((a, b, _, sep, _)) = numeric_date(text) else {
            if !seen {
                // the first timestamp is in another form: the file's dates are not these
                return None;
            }
            continue;
        };
        seen = true;
        dotted |= sep == '.';
        if let Some(order) = order_shown(a, b) {
            return Some(DateOrderSeen {
                order,
                shown_by: Some((row, text.to_string())),
            });
        }
    }
    dotted.then_some(DateOrderSeen {
        order: DateOrder::DayFirst,
        shown_by: None,
    })
}

/// A time of day as ms after midnight: `H:MM`, `HH:MM:SS`, `HH:MM:SS.fff` (any digits of a
/// fraction), or digits alone as `HMM`/`HHMM`/`HMMSS`/`HHMMSS` (`930`, `093000`, as
/// TradeStation and NinjaTrader write them); hours 0-23.
pub fn parse_time_of_day(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |t: &str| -> Option<i64> {
        (!t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (h, m, sec, frac) = if s.contains(':') {
        let (hms, frac) = s.split_once('.').unwrap_or((s, ""));
        let mut it = hms.split(':');
        let (h, m) = (num(it.next()?)?, num(it.next()?)?);
        let sec = match it.next() {
            Some(t) => num(t)?,
            None => 0,
        };
        if it.next().is_some() {
            return None;
        }
        (h, m, sec, frac)
    } else {
        if !(3..=6).contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = s.parse().ok()?;
        if s.len() <= 4 {
            (v / 100, v % 100, 0, "")
        } else {
            (v / 10_000, v / 100 % 100, v % 100, "")
        }
    };
    if h > 23 || m > 59 || sec > 59 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // the fraction's first three digits are the ms
    let ms = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |a, b| a * 10 + i64::from(b - b'0'));
    Some(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// A `date` timestamp (ms) with a time-of-day field's text added; the reasons name `time`.
pub fn date_and_time(date_ms: i64, time: &str) -> Result<i64, RejectReason> {
    if time.trim().is_empty() {
        return Err(RejectReason::Missing {
            field: "time".into(),
        });
    }
    let tod = parse_time_of_day(time).ok_or_else(|| RejectReason::Unparseable {
        field: "time".into(),
        value: time.to_string(),
    })?;
    add_time_of_day(date_ms, tod).ok_or_else(|| time_on_a_datetime(time))
}

/// `date_ms` (a day's midnight) plus `tod` ms. A date that holds a time already is taken as
/// it is where that time is `tod` (a datetime column beside its own time of day), and is
/// None otherwise (which of the two times is meant cannot be told).
fn add_time_of_day(date_ms: i64, tod: i64) -> Option<i64> {
    match date_ms.rem_euclid(86_400_000) {
        0 => Some(date_ms + tod),
        t => (t == tod).then_some(date_ms),
    }
}

/// The reason for a time-of-day field (its `text`) beside a date that holds a time already.
fn time_on_a_datetime(text: &str) -> RejectReason {
    RejectReason::Unparseable {
        field: "time".into(),
        value: format!("{text} (its date holds another time of day)"),
    }
}

/// The first of `names` among `headers`, compared without case and with spaces and dashes
/// read as underscores (`Adj Close` is `adj_close`).
fn find(headers: &[String], names: &[&str]) -> Option<usize> {
    let headers: Vec<String> = headers.iter().map(|h| norm(h)).collect();
    names.iter().find_map(|n| {
        let n = norm(n);
        headers.iter().position(|h| *h == n)
    })
}

/// The first of `names` (written as [`norm`] writes them, as the readers' name lists are)
/// among headers already normalized.
fn position(normed: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| normed.iter().position(|h| h == n))
}

/// A number of a CSV field; with `decimal_comma` (a `;`-separated file) `101,25` is 101.25.
/// Spreadsheets' and web pages' exports are read too: digits grouped in thousands
/// (`4,697.24`, `1,234,567`; `4.697,24` with `decimal_comma`), a dollar sign (`$182.52`), a
/// volume with a K/M/B suffix (`2.93B`, as Investing.com writes it), and `-` in an optional
/// field as absent.
fn parse_f64(
    field: &'static str,
    s: &str,
    optional: bool,
    decimal_comma: bool,
) -> Result<f64, RejectReason> {
    let t = s.trim();
    if t.is_empty() || optional && t == "-" {
        return if optional {
            Ok(f64::NAN)
        } else {
            Err(RejectReason::Missing {
                field: field.to_string(),
            })
        };
    }
    let v = t
        .parse::<f64>()
        .ok()
        .or_else(|| {
            if decimal_comma && t.bytes().filter(|&b| b == b',').count() == 1 {
                t.replace(',', ".").parse::<f64>().ok()
            } else {
                None
            }
        })
        .or_else(|| grouped_number(t, decimal_comma))
        .or_else(|| {
            (field == "volume")
                .then(|| suffixed_count(t, decimal_comma))
                .flatten()
        })
        .ok_or_else(|| RejectReason::Unparseable {
            field: field.to_string(),
            value: t.to_string(),
        })?;
    // an explicit NaN/inf is a bad value; only an empty field means "absent"
    if v.is_finite() {
        Ok(v)
    } else {
        Err(RejectReason::NonFinite { field })
    }
}

/// A number whose integer digits are grouped in threes (`4,697.24`, `1,234,567`; with
/// `decimal_comma` `4.697,24`): None unless every group is exactly that, and None for one
/// group without a fraction (`1,234` is 1.234 where commas are decimal points, and a quoted
/// field of a comma-separated file can be either). A dollar sign before it is dropped
/// (Nasdaq.com's `$182.52`).
fn grouped_number(t: &str, decimal_comma: bool) -> Option<f64> {
    let (group, point) = if decimal_comma {
        ('.', ',')
    } else {
        (',', '.')
    };
    let t = t.strip_prefix('$').unwrap_or(t);
    if let Ok(x) = t.parse::<f64>() {
        // `$182.52`
        return Some(x);
    }
    let (int, frac) = match t.split_once(point) {
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    let digits = int.strip_prefix(['-', '+']).unwrap_or(int);
    let mut groups = digits.split(group);
    let first = groups.next()?;
    let all_digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    let mut n = 0;
    for g in groups {
        if g.len() != 3 || !all_digits(g) {
            return None;
        }
        n += 1;
    }
    let frac_ok = frac.is_none_or(all_digits);
    if n == 0 || n == 1 && frac.is_none() || first.len() > 3 || !all_digits(first) || !frac_ok {
        return None;
    }
    let plain: String = t.chars().filter(|&c| c != group).collect();
    plain.replace(point, ".").parse().ok()
}

/// A count with a thousand, million or billion suffix: `850.50K`, `2.93M`, `1.2B`.
fn suffixed_count(t: &str, decimal_comma: bool) -> Option<f64> {
    let scale = match t.chars().last()?.to_ascii_uppercase() {
        'K' => 1e3,
        'M' => 1e6,
        'B' => 1e9,
        _ => return None,
    };
    let body = &t[..t.len() - 1];
    let body = if decimal_comma {
        body.replace(',', ".")
    } else {
        body.to_string()
    };
    let x: f64 = body.parse().ok()?;
    Some(x * scale)
}

fn parse_label(s: &str) -> Result<u8, RejectReason> {
    let t = s.trim();
    let bad = || RejectReason::Unparseable {
        field: "label".to_string(),
        value: t.to_string(),
    };
    if let Ok(i) = t.parse::<u8>() {
        return if i < 18 { Ok(i) } else { Err(bad()) };
    }
    regime_core::Regime::from_snake_name(t)
        .map(|r| r.id())
        .ok_or_else(bad)
}

/// One symbol's bars of a bar file (read and validated as [`read_bars`] does; bad rows
/// skipped); an error naming the symbols there are when it holds no such symbol.
pub fn read_symbol(path: &Path, symbol: &str) -> Result<SymbolBars, IoError> {
    let input = read_bars(path, None)?;
    let names: Vec<String> = input.series.iter().map(|s| s.symbol.clone()).collect();
    input
        .series
        .into_iter()
        .find(|s| s.symbol == symbol)
        .ok_or_else(|| IoError::Format {
            path: path.to_path_buf(),
            message: format!("no symbol {symbol:?} (it holds {})", names.join(", ")),
        })
}

/// Read a CSV, Parquet or Arrow IPC file of bars (rows failing validation go to `Input::errors`).
pub fn read_bars(path: &Path, label_column: Option<&str>) -> Result<Input, IoError> {
    read_bars_watched(path, label_column, &mut |_| {})
}

/// Whether the file is known, without reading it through, to hold rows of more than one
/// symbol: a Parquet file by its symbol column's statistics (a row group whose least and
/// greatest symbol differ, or two row groups whose symbols differ), a plain CSV or an Arrow
/// IPC file (the file format, whose footer finds its last batch) by its first and last
/// rows' symbols. False when that cannot be told cheaply (no statistics, a compressed CSV,
/// an Arrow stream or a file of one batch, no symbol column) and on any error (reading the
/// file proper reports it). A hint only: nothing read depends on it.
pub fn known_multi_symbol(path: &Path) -> bool {
    match Format::of_input(path) {
        Ok(Format::Parquet) => unpanicked(|| parquet_multi_symbol(path)) == Ok(Some(true)),
        Ok(Format::Csv) => csv_multi_symbol(path).unwrap_or(false),
        Ok(Format::Arrow) => unpanicked(|| arrow_multi_symbol(path)) == Ok(Some(true)),
        _ => false,
    }
}

fn arrow_multi_symbol(path: &Path) -> Option<bool> {
    use arrow::array::{Array as _, AsArray as _};
    let mut f = open_input(path).ok()?;
    let len = f.metadata().ok()?.len();
    ipc_sizes_fit(&mut f, len).ok()?;
    let open = |projection| {
        let file = std::io::BufReader::new(open_input(path).ok()?);
        arrow::ipc::reader::FileReader::try_new(file, projection).ok()
    };
    // the footer first (schema, batch count), then the symbol column alone
    let sym = find(&field_names(&open(None)?.schema()), &SYMBOL_NAMES)?;
    let mut r = open(Some(vec![sym]))?;
    let batches = r.num_batches();
    if batches < 2 {
        // one batch is read whole before `detect` looks at it anyway: nothing to tell early
        return None;
    }
    let symbol_at = |b: &RecordBatch, row: usize| -> Option<String> {
        let text = arrow::compute::cast(&b.column(0).slice(row, 1), &DataType::Utf8).ok()?;
        let text = text.as_string_opt::<i32>()?;
        (!text.is_null(0)).then(|| text.value(0).trim().to_string())
    };
    let head = r.next()?.ok()?;
    let first = symbol_at(&head, 0)?;
    r.set_index(batches - 1).ok()?;
    let tail = r.next()?.ok()?;
    Some(symbol_at(&tail, tail.num_rows().checked_sub(1)?)? != first)
}

fn parquet_multi_symbol(path: &Path) -> Option<bool> {
    use parquet::file::statistics::Statistics;
    let builder = ParquetRecordBatchReaderBuilder::try_new(open_input(path).ok()?).ok()?;
    let headers = field_names(builder.schema());
    let name = &headers[find(&headers, &SYMBOL_NAMES)?];
    let meta = builder.metadata();
    let col = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == *name)?;
    let mut seen: Option<Vec<u8>> = None;
    for rg in meta.row_groups() {
        let Statistics::ByteArray(st) = rg.column(col).statistics()? else {
            return None;
        };
        let (lo, hi) = (st.min_opt()?.data(), st.max_opt()?.data());
        if lo != hi || seen.as_deref().is_some_and(|v| v != lo) {
            return Some(true);
        }
        seen = Some(lo.to_vec());
    }
    Some(false)
}

fn csv_multi_symbol(path: &Path) -> Option<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    const PEEK: u64 = 1 << 16;
    fn records(bytes: &[u8], delimiter: u8) -> csv::StringRecordsIntoIter<&[u8]> {
        csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(bytes)
            .into_records()
    }
    let mut f = open_input(path).ok()?;
    let len = f.metadata().ok()?.len();
    let mut head = Vec::new();
    (&mut f).take(PEEK).read_to_end(&mut head).ok()?;
    let delimiter = sniff_delimiter(&head);
    let mut rows = records(&head, delimiter);
    let headers: Vec<String> = rows.next()?.ok()?.iter().map(String::from).collect();
    let sym = find(&headers, &SYMBOL_NAMES)?;
    let first = rows.next()?.ok()?.get(sym)?.trim().to_string();
    f.seek(SeekFrom::Start(len.saturating_sub(PEEK))).ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    let body = tail.trim_ascii_end();
    let cut = body.iter().rposition(|&b| b == b'\n')?;
    let last = records(&body[cut + 1..], delimiter).next()?.ok()?;
    Some(last.get(sym)?.trim() != first)
}

/// Rows between two looks of [`read_bars_watched`]'s `watch` at a CSV file's progress (a
/// Parquet or Arrow file is looked at after each record batch, as many rows or fewer).
const WATCH_ROWS: usize = 65_536;

/// [`read_bars`], showing `watch` what has been read so far every `WATCH_ROWS` rows or
/// so, and once more at the end. Rows are only ever appended, so `watch` may take a series'
/// bars out as they come (what it takes is then not in the result; the validation, counts
/// and rejected rows are).
pub fn read_bars_watched(
    path: &Path,
    label_column: Option<&str>,
    watch: &mut dyn FnMut(&mut Input),
) -> Result<Input, IoError> {
    let fmt = Format::of_input(path)?;
    let dates = csv_date_order(path, fmt);
    let layout = CsvLayout {
        order: dates.as_ref().map(|d| d.order),
        newest_first: csv_newest_first(path, fmt, dates.as_ref().map(|d| d.order)),
    };
    let mut input = match fmt {
        Format::Csv => read_csv_from(open_input(path)?, path, label_column, layout, watch)?,
        Format::CsvGz => {
            let gz = Gunzip(flate2::read::MultiGzDecoder::new(open_input(path)?));
            read_csv_from(gz, path, label_column, layout, watch)?
        }
        Format::Parquet => read_parquet(path, label_column, watch)?,
        Format::Arrow => read_arrow_file(path, label_column, watch)?,
    };
    input.date_order = dates;
    watch(&mut input);
    Ok(input)
}

/// Open an input file, the error naming it (a stream's copy when it was spooled:
/// [`crate::streams`]).
fn open_input(path: &Path) -> Result<File, IoError> {
    File::open(crate::streams::resolve(path)).map_err(|e| IoError::Open {
        path: path.to_path_buf(),
        source: e,
    })
}

/// The field separator of a delimited text file, from its header line: whichever of `,`
/// `;` (spreadsheets in locales with a decimal comma), tab and `|` it holds most of,
/// outside quotes; `,` when it holds none.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b',' => counts[0] += 1,
            b';' => counts[1] += 1,
            b'\t' => counts[2] += 1,
            b'|' => counts[3] += 1,
            _ => {}
        }
    }
    let (best, n) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
        .map_or((0, 0), |(i, &n)| (i, n));
    if n == 0 {
        b','
    } else {
        [b',', b';', b'\t', b'|'][best]
    }
}

/// Read CSV bars from memory (the demo feed's built-in sample); `what` names it in errors.
pub fn read_csv_bytes(bytes: &[u8], what: &Path) -> Result<Input, IoError> {
    read_csv_from(bytes, what, None, CsvLayout::default(), &mut |_| {})
}

/// What a look ahead found of a CSV file: how its numeric dates read, and whether its rows
/// run newest first (they are then read last row first, each under its own row number).
#[derive(Debug, Clone, Copy, Default)]
struct CsvLayout {
    order: Option<DateOrder>,
    newest_first: bool,
}

fn read_csv_from<R: std::io::Read>(
    reader: R,
    path: &Path,
    label_column: Option<&str>,
    layout: CsvLayout,
    watch: &mut dyn FnMut(&mut Input),
) -> Result<Input, IoError> {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, reader);
    let head = std::io::BufRead::fill_buf(&mut reader).map_err(|e| IoError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if utf16(head) {
        return Err(IoError::Format {
            path: path.to_path_buf(),
            message: "the file is UTF-16 text (Excel's \"Unicode Text\" saves it so): save it \
                      as \"CSV UTF-8\", or convert it (iconv -f UTF-16 -t UTF-8)"
                .into(),
        });
    }
    let delimiter = sniff_delimiter(head);
    let decimal_comma = delimiter == b';';
    // flexible: a row with the wrong number of fields is one bad row, not a failed file
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(reader);
    let fmt_err = |e: csv::Error| IoError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let headers: Vec<String> = rdr
        .headers()
        .map_err(fmt_err)?
        .iter()
        .map(|s| s.to_string())
        .collect();
    let two_level = if find(&headers, &TS_NAMES).is_none() && label_column.is_none() {
        two_level_sources(&mut rdr, &headers).map_err(fmt_err)?
    } else {
        None
    };
    // the timestamp column, and the records already read: a two-level header's ticker and
    // date rows
    let (sources, ts_col, time_col, mut row) = match two_level {
        Some(s) => (s, 0, None, 2),
        None => {
            let cols = Columns::locate(path, &headers, label_column)?;
            let flat = RowSource {
                symbol: SymbolOf::Column(cols.symbol),
                values: cols.values,
                label: cols.label,
            };
            (vec![flat], cols.ts, cols.time, 0)
        }
    };
    let symbol_column = sources
        .iter()
        .any(|s| matches!(s.symbol, SymbolOf::Column(Some(_))));
    let mut col = Collector::new(label_column.is_some(), symbol_column);
    let order = layout.order;
    let take = |col: &mut Collector, row: usize, rec: &csv::StringRecord| {
        let get = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("");
        if rec.len() != headers.len() {
            let reason = RejectReason::FieldCount {
                got: rec.len(),
                want: headers.len(),
            };
            // a row of a two-level file belongs to every ticker: counted once, under the first
            col.push_run(
                sources[0].symbol(rec),
                &mut std::iter::once((row, Err(reason))),
            );
            return;
        }
        let ts = timestamp_field_in(get(Some(ts_col)), order)
            .and_then(|d| time_col.map_or(Ok(d), |t| date_and_time(d, get(Some(t)))));
        for src in &sources {
            if matches!(src.symbol, SymbolOf::Fixed(_))
                && src.values.iter().all(|v| get(*v).trim().is_empty())
            {
                // a ticker with no value at all on this row (not yet trading): no bar
                continue;
            }
            let vals = std::array::from_fn(|k| {
                // close is required; the others may be absent (empty)
                parse_f64(VALUE_NAMES[k], get(src.values[k]), k != 3, decimal_comma)
            });
            col.push(
                row,
                RawRow {
                    symbol: src.symbol(rec),
                    ts: ts.clone(),
                    vals,
                    label: src.label.map(|i| parse_label(get(Some(i)))),
                },
            );
        }
    };
    let mut rec = csv::StringRecord::new();
    // newest first: every record held, then taken last row first
    let mut held = Vec::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(fmt_err(e)),
        }
        row += 1;
        if layout.newest_first {
            held.push((row, rec.clone()));
            continue;
        }
        if row % WATCH_ROWS == 0 {
            watch(&mut col.input);
        }
        take(&mut col, row, &rec);
    }
    for (row, rec) in held.iter().rev() {
        take(&mut col, *row, rec);
    }
    if layout.newest_first {
        // rejected rows listed in the file's order, as always
        col.input.errors.sort_by_key(|e| e.row);
        col.input.newest_first = true;
    }
    Ok(col.input)
}

/// Where a CSV row's bar comes from (besides the timestamp): its symbol, value and label
/// columns.
struct RowSource {
    symbol: SymbolOf,
    values: [Option<usize>; 5],
    label: Option<usize>,
}

/// A row's symbol: a column's text (none: "") or, in a two-level file, the ticker.
enum SymbolOf {
    Column(Option<usize>),
    Fixed(String),
}

impl RowSource {
    fn symbol<'a>(&'a self, rec: &'a csv::StringRecord) -> &'a str {
        match &self.symbol {
            SymbolOf::Column(i) => i.and_then(|i| rec.get(i)).unwrap_or("").trim(),
            SymbolOf::Fixed(t) => t,
        }
    }
}

/// A CSV whose columns have two header levels, field and ticker, as pandas writes a frame
/// with `(field, ticker)` columns — what `yfinance.download(...)` returns, saved with
/// `to_csv()`:
///
/// ```text
/// Price,Close,Close,High,High,...
/// Ticker,AAPL,MSFT,AAPL,MSFT,...
/// Date,,,,,...
/// 2024-01-02,184.29,370.87,...
/// ```
///
/// (the first cells may be empty when the levels have no names). Each ticker's columns
/// become one series named after the ticker; a row where a ticker has no value at all (not
/// yet trading) is left out for that ticker, not rejected.
///
/// Read the two further header rows if the file has that shape and return one source per
/// ticker; `None` when it does not (nothing consumed that a one-level file would need: it
/// has no timestamp column either way).
fn two_level_sources<R: std::io::Read>(
    rdr: &mut csv::Reader<R>,
    headers: &[String],
) -> Result<Option<Vec<RowSource>>, csv::Error> {
    let first = |r: &[String]| r.first().map(|h| h.trim().to_ascii_lowercase());
    if !matches!(first(headers).as_deref(), Some("price" | "")) || headers.len() < 2 {
        return Ok(None);
    }
    let mut rec = csv::StringRecord::new();
    let mut next = |rec: &mut csv::StringRecord| -> Result<Option<Vec<String>>, csv::Error> {
        Ok(rdr
            .read_record(rec)?
            .then(|| rec.iter().map(|f| f.to_string()).collect()))
    };
    let Some(tickers) = next(&mut rec)? else {
        return Ok(None);
    };
    let Some(dates) = next(&mut rec)? else {
        return Ok(None);
    };
    let ts_row = dates
        .first()
        .is_some_and(|d| find(std::slice::from_ref(d), &TS_NAMES).is_some())
        && dates[1..].iter().all(|f| f.trim().is_empty());
    if !matches!(first(&tickers).as_deref(), Some("ticker" | ""))
        || tickers.len() != headers.len()
        || !ts_row
    {
        return Ok(None);
    }
    let mut order: Vec<String> = Vec::new();
    for t in &tickers[1..] {
        let t = t.trim();
        if !t.is_empty() && !order.iter().any(|o| o == t) {
            order.push(t.to_string());
        }
    }
    let mut out = Vec::new();
    for t in order {
        let idx: Vec<usize> = (1..headers.len())
            .filter(|&i| tickers[i].trim() == t)
            .collect();
        let names: Vec<String> = idx.iter().map(|&i| headers[i].clone()).collect();
        // a ticker without a close has no bars
        if let Some(v) = value_columns(&names) {
            out.push(RowSource {
                symbol: SymbolOf::Fixed(t),
                values: v.map(|k| k.map(|k| idx[k])),
                label: None,
            });
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// A batch's numeric column as f64 (NaN where null).
fn col_f64(path: &Path, name: &str, a: &ArrayRef) -> Result<Vec<f64>, IoError> {
    macro_rules! take {
        ($t:ty) => {{
            let x = a
                .as_any()
                .downcast_ref::<$t>()
                .ok_or_else(|| IoError::ColumnType {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                    dtype: a.data_type().to_string(),
                })?;
            if x.null_count() == 0 {
                x.values().iter().map(|v| *v as f64).collect()
            } else {
                (0..x.len())
                    .map(|i| {
                        if x.is_valid(i) {
                            x.value(i) as f64
                        } else {
                            f64::NAN
                        }
                    })
                    .collect()
            }
        }};
    }
    Ok(match a.data_type() {
        DataType::Float64 => take!(Float64Array),
        DataType::Float32 => take!(Float32Array),
        DataType::Int64 => take!(Int64Array),
        DataType::Int32 => take!(Int32Array),
        DataType::UInt64 => take!(UInt64Array),
        DataType::UInt32 => take!(UInt32Array),
        DataType::UInt8 => take!(UInt8Array),
        d if numeric_like(d) => {
            // decimals (prices from a database), narrow integers, half floats, dictionaries
            // of numbers: Arrow's own cast, then as a Float64 column
            let cast =
                arrow::compute::cast(a, &DataType::Float64).map_err(|e| IoError::Format {
                    path: path.to_path_buf(),
                    message: format!("column {name}: {e}"),
                })?;
            return col_f64(path, name, &cast);
        }
        d => {
            return Err(IoError::ColumnType {
                path: path.to_path_buf(),
                column: name.to_string(),
                dtype: d.to_string(),
            })
        }
    })
}

/// Whether a value column holds text (prices kept as strings: a pandas object column, a
/// Parquet file from a tool that wrote them so, a dictionary of strings). Such columns are
/// read as the CSV reader reads fields, a field that is not a number rejecting its row with
/// the text, where before the whole input was refused ("column `close` has unsupported type
/// Utf8").
fn text_valued(d: &DataType) -> bool {
    match d {
        DataType::Dictionary(_, v) => is_text(v),
        d => is_text(d),
    }
}

/// Arrow's string types.
fn is_text(d: &DataType) -> bool {
    matches!(d, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// A text value column's numbers (NaN where absent or unreadable), the reasons of the
/// unreadable ones in `unread` (close is required, the other fields optional, as in CSV).
fn text_f64(a: &ArrayRef, k: usize, unread: &mut Option<Vec<Option<RejectReason>>>) -> Vec<f64> {
    let text = TextCol::of(Some(a));
    (0..a.len())
        .map(
            |i| match parse_f64(VALUE_NAMES[k], text.get(i), k != 3, false) {
                Ok(v) => v,
                Err(reason) => {
                    unread.get_or_insert_with(|| vec![None; a.len()])[i] = Some(reason);
                    f64::NAN
                }
            },
        )
        .collect()
}

/// Numbers that are not one of the column types read directly.
fn numeric_like(d: &DataType) -> bool {
    match d {
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..)
        | DataType::Int8
        | DataType::Int16
        | DataType::UInt16
        | DataType::Float16 => true,
        DataType::Dictionary(_, v) => v.is_numeric(),
        _ => false,
    }
}

/// A batch's symbol (or text label) column as text: strings as they are; dictionaries of
/// strings (pandas categoricals) and integers (ids such as CRSP's PERMNO) cast to strings.
/// Anything else is an error naming the column: a symbol read as none at all would run every
/// instrument together as one series.
fn text_column(path: &Path, name: &str, a: &ArrayRef) -> Result<ArrayRef, IoError> {
    let castable = match a.data_type() {
        d if is_text(d) => return Ok(a.clone()),
        DataType::Dictionary(_, v) => is_text(v) || v.is_integer(),
        d => d.is_integer(),
    };
    if !castable {
        return Err(IoError::ColumnType {
            path: path.to_path_buf(),
            column: name.to_string(),
            dtype: a.data_type().to_string(),
        });
    }
    arrow::compute::cast(a, &DataType::Utf8).map_err(|e| IoError::Format {
        path: path.to_path_buf(),
        message: format!("column {name}: {e}"),
    })
}

/// A column of a type the readers do not take for `name`.
fn column_type_error(path: &Path, name: &str, a: &ArrayRef) -> IoError {
    IoError::ColumnType {
        path: path.to_path_buf(),
        column: name.to_string(),
        dtype: a.data_type().to_string(),
    }
}

/// A primitive column's values mapped by `f` (ms), per row: None where null or `f` gives None.
fn map_values<T: arrow::datatypes::ArrowPrimitiveType>(
    path: &Path,
    name: &str,
    a: &ArrayRef,
    f: impl Fn(T::Native) -> Option<i64>,
) -> Result<Vec<Option<i64>>, IoError> {
    use arrow::array::AsArray as _;
    let x = a
        .as_primitive_opt::<T>()
        .ok_or_else(|| column_type_error(path, name, a))?;
    Ok((0..x.len())
        .map(|i| x.is_valid(i).then(|| f(x.value(i))).flatten())
        .collect())
}

/// A text column's values read by `f`, per row (null: `f("")`).
fn map_text(a: &ArrayRef, f: impl Fn(&str) -> Option<i64>) -> Vec<Option<i64>> {
    let text = TextCol::of(Some(a));
    (0..a.len()).map(|i| f(text.get(i))).collect()
}

/// A batch's timestamps in ms (None where null or unreadable: see [`ts_error`]).
fn col_ts(path: &Path, name: &str, a: &ArrayRef) -> Result<Vec<Option<i64>>, IoError> {
    use arrow::datatypes::{
        Date32Type, Date64Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
        TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt32Type,
    };
    let (p, n) = (path, name);
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            map_values::<TimestampSecondType>(p, n, a, |v| Some(v * 1000))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            map_values::<TimestampMillisecondType>(p, n, a, Some)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            map_values::<TimestampMicrosecondType>(p, n, a, |v| Some(v.div_euclid(1000)))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            map_values::<TimestampNanosecondType>(p, n, a, |v| Some(v.div_euclid(1_000_000)))
        }
        DataType::Date32 => map_values::<Date32Type>(p, n, a, |v| Some(i64::from(v) * 86_400_000)),
        DataType::Date64 => map_values::<Date64Type>(p, n, a, Some),
        DataType::Int64 => map_values::<Int64Type>(p, n, a, |v| Some(integer_timestamp(v))),
        DataType::Int32 => {
            map_values::<Int32Type>(p, n, a, |v| Some(integer_timestamp(i64::from(v))))
        }
        DataType::UInt32 => {
            map_values::<UInt32Type>(p, n, a, |v| Some(integer_timestamp(i64::from(v))))
        }
        DataType::Float64 => map_values::<Float64Type>(p, n, a, float_timestamp),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Ok(map_text(a, parse_timestamp))
        }
        _ => Err(column_type_error(p, n, a)),
    }
}

/// A time-of-day column as ms after midnight per row (None: null or unreadable): Arrow
/// `time32`/`time64` columns, or text as [`parse_time_of_day`] reads it.
fn col_time_of_day(path: &Path, name: &str, a: &ArrayRef) -> Result<Vec<Option<i64>>, IoError> {
    use arrow::datatypes::{
        Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType,
    };
    let (p, n) = (path, name);
    match a.data_type() {
        DataType::Time32(TimeUnit::Second) => {
            map_values::<Time32SecondType>(p, n, a, |v| Some(i64::from(v) * 1000))
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            map_values::<Time32MillisecondType>(p, n, a, |v| Some(i64::from(v)))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            map_values::<Time64MicrosecondType>(p, n, a, |v| Some(v.div_euclid(1000)))
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            map_values::<Time64NanosecondType>(p, n, a, |v| Some(v.div_euclid(1_000_000)))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Ok(map_text(a, parse_time_of_day))
        }
        _ => Err(column_type_error(p, n, a)),
    }
}

/// A timestamp field's text read as ms: empty is a missing timestamp, anything else that
/// does not parse is reported with its text.
pub fn timestamp_field(s: &str) -> Result<i64, RejectReason> {
    timestamp_field_in(s, None)
}

/// [`timestamp_field`], numeric dates read in `order` when one is given.
fn timestamp_field_in(s: &str, order: Option<DateOrder>) -> Result<i64, RejectReason> {
    let t = s.trim();
    if t.is_empty() {
        return Err(RejectReason::Missing {
            field: "timestamp".into(),
        });
    }
    parse_timestamp_in(t, order).ok_or_else(|| RejectReason::Unparseable {
        field: "timestamp".into(),
        value: t.to_string(),
    })
}

/// Why row `i` of a timestamp column has no timestamp: the text that did not parse, or
/// (null, or a typed column's null) that it is missing.
fn ts_error(a: &ArrayRef, i: usize) -> RejectReason {
    let missing = || RejectReason::Missing {
        field: "timestamp".into(),
    };
    match a.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            timestamp_field(TextCol::of(Some(a)).get(i))
                .err()
                .unwrap_or_else(missing)
        }
        _ => missing(),
    }
}

fn read_parquet(
    path: &Path,
    label_column: Option<&str>,
    watch: &mut dyn FnMut(&mut Input),
) -> Result<Input, IoError> {
    let file = open_input(path)?;
    let fmt = |e: parquet::errors::ParquetError| IoError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let builder = unpanicked(|| ParquetRecordBatchReaderBuilder::try_new(file))
        .map_err(|m| corrupt(path, m))?
        .map_err(fmt)?;
    // decode only the columns used: a wide file (factors, news text) costs no more than a
    // narrow one
    let headers = field_names(builder.schema());
    let loc = Columns::locate(path, &headers, label_column)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), loc.used());
    let reader = unpanicked(|| {
        builder
            .with_projection(mask)
            .with_batch_size(65_536)
            .build()
    })
    .map_err(|m| corrupt(path, m))?
    .map_err(fmt)?;
    let schema = reader.schema();
    read_batch_stream(path, &schema, reader, label_column, watch)
}

/// Bars from an Arrow IPC file: the file format (Feather v2, `ARROW1` magic) or the stream
/// format; LZ4- or ZSTD-compressed buffers (pyarrow's Feather default) are read too.
fn read_arrow_file(
    path: &Path,
    label_column: Option<&str>,
    watch: &mut dyn FnMut(&mut Input),
) -> Result<Input, IoError> {
    use std::io::{Read as _, Seek as _};
    let mut f = open_input(path)?;
    let mut magic = [0u8; 6];
    let is_file = f.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    ipc_sizes_fit(&mut f, len).map_err(|m| corrupt_ipc(path, m))?;
    f.rewind().map_err(|e| IoError::Open {
        path: path.to_path_buf(),
        source: e,
    })?;
    let file = std::io::BufReader::with_capacity(1 << 20, f);
    let fmt = |e: arrow::error::ArrowError| IoError::Format {
        path: path.to_path_buf(),
        message: format!("not an Arrow IPC file or stream ({e})"),
    };
    if is_file {
        let r = unpanicked(|| arrow::ipc::reader::FileReader::try_new(file, None))
            .map_err(|m| corrupt(path, m))?
            .map_err(fmt)?;
        let schema = r.schema();
        read_batch_stream(path, &schema, r, label_column, watch)
    } else {
        let r = unpanicked(|| arrow::ipc::reader::StreamReader::try_new(file, None))
            .map_err(|m| corrupt(path, m))?
            .map_err(fmt)?;
        let schema = r.schema();
        read_batch_stream(path, &schema, r, label_column, watch)
    }
}

/// Validate and collect the rows of a file's record batches, in order, showing `watch`
/// the progress after each batch.
fn read_batch_stream<E: std::fmt::Display>(
    path: &Path,
    schema: &Schema,
    batches: impl Iterator<Item = Result<RecordBatch, E>>,
    label_column: Option<&str>,
    watch: &mut dyn FnMut(&mut Input),
) -> Result<Input, IoError> {
    let headers = field_names(schema);
    let loc = Columns::locate(path, &headers, label_column)?;
    let mut col = Collector::new(label_column.is_some(), loc.symbol.is_some());
    let mut row = 0usize;
    for batch in unpanicked_batches(batches) {
        let batch = batch.map_err(|message| IoError::Format {
            path: path.to_path_buf(),
            message,
        })?;
        batch_rows(
            path,
            &headers,
            &loc,
            &batch,
            &mut row,
            &mut |symbol, rows| col.push_run(symbol, rows),
        )?;
        watch(&mut col.input);
    }
    Ok(col.input)
}

/// Bars from in-memory Arrow record batches (the Python bindings' input), validated and
/// numbered like a file's rows; `what` names the source in errors.
pub fn read_batches(
    batches: &[RecordBatch],
    schema: &arrow::datatypes::Schema,
    what: &Path,
    label_column: Option<&str>,
) -> Result<Input, IoError> {
    let headers = field_names(schema);
    let loc = Columns::locate(what, &headers, label_column)?;
    let mut col = Collector::new(label_column.is_some(), loc.symbol.is_some());
    let mut row = 0usize;
    for batch in batches {
        batch_rows(
            what,
            &headers,
            &loc,
            batch,
            &mut row,
            &mut |symbol, rows| col.push_run(symbol, rows),
        )?;
    }
    Ok(col.input)
}

/// A column set for output tables.
#[derive(Debug, Default)]
pub struct Table {
    /// Column names in order.
    pub names: Vec<String>,
    /// Columns.
    pub columns: Vec<Column>,
}

/// One output column.
#[derive(Debug, Clone)]
pub enum Column {
    /// Timestamps (ms since epoch, UTC).
    Ts(Vec<i64>),
    /// Text from a fixed vocabulary (no allocation per row).
    Static(Vec<&'static str>),
    /// Run-length text: `(value, repeat)` (symbols of grouped rows).
    Runs(Vec<(String, usize)>),
    /// Text.
    Str(Vec<String>),
    /// Integers.
    Int(Vec<i64>),
    /// Floats.
    F64(Vec<f64>),
}

impl Table {
    /// Add a column.
    pub fn push(&mut self, name: &str, c: Column) {
        self.names.push(name.to_string());
        self.columns.push(c);
    }
    fn rows(&self) -> usize {
        match self.columns.first() {
            Some(Column::Ts(v)) => v.len(),
            Some(Column::Static(v)) => v.len(),
            Some(Column::Runs(v)) => v.iter().map(|r| r.1).sum(),
            Some(Column::Str(v)) => v.len(),
            Some(Column::Int(v)) => v.len(),
            Some(Column::F64(v)) => v.len(),
            None => 0,
        }
    }
}

/// Names of the eight per-dimension probability columns, in output order (shared by
/// `detect` output, `regime_history` and `export`).
pub const PROB_COLUMNS: [&str; 8] = [
    "p_vol_low",
    "p_vol_medium",
    "p_vol_high",
    "p_trend_down",
    "p_trend_neutral",
    "p_trend_up",
    "p_trending",
    "p_mean_reverting",
];

/// Detections of many symbols as an output table.
pub fn detections_table(series: &[(String, Vec<Detection>)]) -> Table {
    let n: usize = series.iter().map(|s| s.1.len()).sum();
    let mut b = DetectionsBuilder::with_capacity(n, series.len());
    for (s, dets) in series {
        b.push(s, dets);
    }
    b.finish()
}

/// Output columns of detections, filled series by series (so a caller can drop each
/// series' detections as soon as they are copied in: one copy of the output, not two).
#[derive(Debug, Default)]
pub struct DetectionsBuilder {
    ts: Vec<i64>,
    sym: Vec<(String, usize)>,
    id: Vec<i64>,
    name: Vec<&'static str>,
    dims: [Vec<&'static str>; 3],
    conf: Vec<f64>,
    probs: [Vec<f64>; 8],
    ver: Vec<i64>,
}

impl DetectionsBuilder {
    /// Room for `rows` rows of `series` series.
    pub fn with_capacity(rows: usize, series: usize) -> Self {
        DetectionsBuilder {
            ts: Vec::with_capacity(rows),
            sym: Vec::with_capacity(series),
            id: Vec::with_capacity(rows),
            name: Vec::with_capacity(rows),
            dims: std::array::from_fn(|_| Vec::with_capacity(rows)),
            conf: Vec::with_capacity(rows),
            probs: std::array::from_fn(|_| Vec::with_capacity(rows)),
            ver: Vec::with_capacity(rows),
        }
    }

    /// Append one series' detections.
    pub fn push(&mut self, symbol: &str, dets: &[Detection]) {
        self.sym.push((symbol.to_string(), dets.len()));
        for d in dets {
            self.ts.push(d.ts);
            self.id.push(d.regime.id() as i64);
            self.name.push(d.regime.snake_name());
            self.dims[0].push(d.regime.volatility.as_str());
            self.dims[1].push(d.regime.trend.as_str());
            self.dims[2].push(d.regime.structure.as_str());
            self.conf.push(d.confidence);
            let p = d
                .p_volatility
                .iter()
                .chain(&d.p_trend)
                .chain(&d.p_structure);
            for (k, v) in p.enumerate() {
                self.probs[k].push(*v);
            }
            self.ver.push(d.model_version as i64);
        }
    }

    /// The table (columns as `regime detect` writes them).
    pub fn finish(self) -> Table {
        let mut t = Table::default();
        t.push("timestamp", Column::Ts(self.ts));
        t.push("symbol", Column::Runs(self.sym));
        t.push("regime_id", Column::Int(self.id));
        t.push("regime_name", Column::Static(self.name));
        let [v, tr, st] = self.dims;
        t.push("volatility", Column::Static(v));
        t.push("trend", Column::Static(tr));
        t.push("structure", Column::Static(st));
        t.push("confidence", Column::F64(self.conf));
        for (k, p) in self.probs.into_iter().enumerate() {
            t.push(PROB_COLUMNS[k], Column::F64(p));
        }
        t.push("model_version", Column::Int(self.ver));
        t
    }
}

/// A gzip stream whose read errors say that they are the compression's (flate2's own
/// read "unexpected end of file" for a file that is not gzip at all).
struct Gunzip<R>(R);

impl<R: std::io::Read> std::io::Read for Gunzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("not a complete gzip file ({e})")))
    }
}

/// Where CSV text goes: the file, or a gzip stream into it.
enum CsvSink {
    Plain(BufWriter<File>),
    Gz(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Write for CsvSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            CsvSink::Plain(w) => w.write(buf),
            CsvSink::Gz(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            CsvSink::Plain(w) => w.flush(),
            CsvSink::Gz(w) => w.flush(),
        }
    }
}

impl CsvSink {
    /// Everything written out (the gzip trailer too); the file, to sync.
    fn finish(self) -> std::io::Result<File> {
        let b = match self {
            CsvSink::Plain(w) => w,
            CsvSink::Gz(w) => w.finish()?,
        };
        b.into_inner().map_err(|e| e.into_error())
    }
}

/// How long a dead run's temporary file stays untouched before a later run removes it.
pub(crate) const STALE_TEMP_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Remove the temporary files `.{name}.tmp<pid>` in `dir` (any `name` when None) that a
/// killed run left (a `kill -9` skips the clean-up of a failed write): those whose process
/// is gone and that nothing has written for [`STALE_TEMP_AFTER`]. Both, because a PID
/// invisible here may be a live writer in another PID namespace sharing the folder. Best
/// effort.
pub(crate) fn remove_stale_temps(dir: &Path, name: Option<&str>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| match name {
                Some(name) => n.strip_prefix(name)?.strip_prefix(".tmp"),
                None => n.rsplit_once(".tmp").map(|(_, pid)| pid),
            })
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let idle = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_TEMP_AFTER);
        if idle {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Sync directory `d`, which makes the renames and new files in it durable (best effort:
/// not every file system lets a directory be synced).
pub(crate) fn fsync_dir(d: &Path) {
    if let Ok(f) = File::open(d) {
        let _ = f.sync_all();
    }
}

/// A file's identity, (device, inode): a path still naming an open file, two paths naming
/// one file.
pub(crate) fn metadata_id(m: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (m.dev(), m.ino())
}

/// [`metadata_id`] of the file at `path`, or None when it cannot be read (gone).
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| metadata_id(&m))
}

/// [`fsync_dir`] of the folder that holds `path` (`.` for a bare file name).
pub(crate) fn fsync_parent(path: &Path) {
    fsync_dir(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    );
}

/// Writes tables batch by batch into a temporary file in the destination folder and renames
/// it into place on [`TableWriter::finish`]: a failure (or a drop without `finish`) leaves no
/// half-written output. Parquet gets one row group per batch, so memory stays bounded by the
/// largest batch.
pub struct TableWriter {
    path: PathBuf,
    tmp: PathBuf,
    csv: Option<CsvSink>,
    parquet: Option<ArrowWriter<File>>,
    arrow: Option<arrow::ipc::writer::FileWriter<BufWriter<File>>>,
    format: Format,
    header: bool,
    done: bool,
}

impl std::fmt::Debug for TableWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableWriter")
            .field("path", &self.path)
            .finish()
    }
}

impl TableWriter {
    /// Start writing `path` (`.csv`, `.parquet`, or `.arrow` / `.feather`).
    pub fn create(path: &Path) -> Result<Self, IoError> {
        let fmt = Format::of(path)?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let fname = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("output");
        remove_stale_temps(dir, Some(fname));
        let tmp = dir.join(format!(".{fname}.tmp{}", std::process::id()));
        let file = File::create(&tmp).map_err(|e| IoError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut w = TableWriter {
            path: path.to_path_buf(),
            tmp,
            csv: None,
            parquet: None,
            arrow: None,
            format: fmt,
            header: false,
            done: false,
        };
        match fmt {
            Format::Csv => w.csv = Some(CsvSink::Plain(BufWriter::with_capacity(1 << 20, file))),
            Format::CsvGz => {
                let b = BufWriter::with_capacity(1 << 20, file);
                w.csv = Some(CsvSink::Gz(flate2::write::GzEncoder::new(
                    b,
                    flate2::Compression::fast(),
                )))
            }
            Format::Parquet | Format::Arrow => {
                // the writer is created with the first batch's schema
                drop(file);
            }
        }
        Ok(w)
    }

    /// Append a batch of rows (all batches must have the same columns). The table is
    /// consumed: Parquet takes its numeric columns into Arrow without a copy.
    pub fn write(&mut self, t: Table) -> Result<(), IoError> {
        let res = match self.format {
            Format::Csv | Format::CsvGz => self.write_csv(&t),
            Format::Parquet => self.write_parquet(t),
            Format::Arrow => self.write_arrow(t),
        };
        res.map_err(|e| IoError::Write {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    /// Flush, sync and move the file into place.
    pub fn finish(mut self) -> Result<(), IoError> {
        let res = (|| -> WriteResult<()> {
            if let Some(w) = self.csv.take() {
                w.finish()?.sync_all()?;
            }
            if let Some(w) = self.parquet.take() {
                let f = w.into_inner()?;
                f.sync_all()?;
            } else if let Some(mut w) = self.arrow.take() {
                w.finish()?;
                let f = w.into_inner()?.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
            } else if !self.header {
                // nothing was written: leave an empty file of the right name
                File::create(&self.tmp)?.sync_all()?;
            }
            std::fs::rename(&self.tmp, &self.path)?;
            // the rename itself survives a crash only once its directory is synced: the
            // command's success line must not name an output that a power cut can take back
            fsync_parent(&self.path);
            Ok(())
        })();
        self.done = true;
        if res.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        res.map_err(|e| IoError::Write {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    fn write_csv(&mut self, t: &Table) -> WriteResult<()> {
        let Some(w) = self.csv.as_mut() else {
            return Ok(());
        };
        if !self.header {
            writeln!(w, "{}", t.names.join(","))?;
            self.header = true;
        }
        let mut line = String::new();
        // run-length columns: expand lazily with a cursor per column
        let mut runs: Vec<(usize, usize)> = vec![(0, 0); t.columns.len()];
        for r in 0..t.rows() {
            line.clear();
            for (k, c) in t.columns.iter().enumerate() {
                if k > 0 {
                    line.push(',');
                }
                match c {
                    Column::Ts(v) => push_timestamp(&mut line, v[r]),
                    Column::Static(v) => line.push_str(v[r]),
                    Column::Runs(v) => {
                        let (i, used) = &mut runs[k];
                        while *i < v.len() && *used >= v[*i].1 {
                            *i += 1;
                            *used = 0;
                        }
                        if let Some(run) = v.get(*i) {
                            line.push_str(&run.0);
                        }
                        *used += 1;
                    }
                    Column::Str(v) => line.push_str(&v[r]),
                    Column::Int(v) => {
                        if v[r] < 0 {
                            line.push('-');
                        }
                        push_digits(&mut line, v[r].unsigned_abs(), 1);
                    }
                    Column::F64(v) => push_number(&mut line, v[r]),
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    fn write_parquet(&mut self, t: Table) -> WriteResult<()> {
        // the label columns, named once: the writer's settings are fixed by the first table
        let labels: Vec<String> = (t.names.iter().zip(&t.columns))
            .filter(|(_, c)| self.parquet.is_none() && matches!(c, Column::Static(_)))
            .map(|(n, _)| n.clone())
            .collect();
        let batch = into_batch(t)?;
        if self.parquet.is_none() {
            let f = File::create(&self.tmp)?;
            let props = parquet_properties(&batch.schema(), &labels);
            self.parquet = Some(ArrowWriter::try_new(f, batch.schema(), Some(props))?);
            self.header = true;
        }
        if let Some(w) = self.parquet.as_mut() {
            w.write(&batch)?;
            w.flush()?; // close the row group: bounded memory
        }
        Ok(())
    }

    /// Arrow IPC file format, uncompressed (readable by memory map), one record batch per
    /// table.
    fn write_arrow(&mut self, t: Table) -> WriteResult<()> {
        let batch = into_batch(t)?;
        if self.arrow.is_none() {
            let f = BufWriter::with_capacity(1 << 20, File::create(&self.tmp)?);
            self.arrow = Some(arrow::ipc::writer::FileWriter::try_new(f, &batch.schema())?);
            self.header = true;
        }
        if let Some(w) = self.arrow.as_mut() {
            w.write(&batch)?;
        }
        Ok(())
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Dictionary encoding for the text and integer columns (few distinct values: symbols,
/// regime names, ids, versions) and not for floats and timestamps, where nearly every value
/// is distinct — the writer would hash each one only to fall back to plain encoding once
/// the dictionary page fills. No min/max statistics for the `labels` columns (text from a
/// fixed vocabulary: regime names, volatility, trend, structure): every page holds most of
/// their values, so the statistics prune nothing, and computing them compares each row's
/// text (1M rows of `regime detect`: wall 1.055 → 1.005 s, user 1.55 → 1.50 s, medians of 8
/// alternating runs).
/// The symbol's statistics stay: they tell a reader which symbols a file holds.
fn parquet_properties(schema: &Schema, labels: &[String]) -> WriterProperties {
    let mut b = WriterProperties::builder();
    for f in schema.fields() {
        let col = || ColumnPath::from(f.name().as_str());
        if matches!(f.data_type(), DataType::Float64 | DataType::Timestamp(..)) {
            b = b.set_column_dictionary_enabled(col(), false);
        }
        if labels.iter().any(|l| l == f.name()) {
            b = b.set_column_statistics_enabled(col(), EnabledStatistics::None);
        }
    }
    b.build()
}

/// Write one table atomically.
pub fn write_table(path: &Path, t: Table) -> Result<(), IoError> {
    let mut w = TableWriter::create(path)?;
    w.write(t)?;
    w.finish()
}

/// The table as one Arrow record batch; numeric columns move into Arrow buffers without a
/// copy (what the Python bindings hand to pyarrow).
pub fn into_record_batch(t: Table) -> Result<RecordBatch, IoError> {
    into_batch(t).map_err(|e| IoError::Format {
        path: PathBuf::from("(output table)"),
        message: e.to_string(),
    })
}

fn into_batch(t: Table) -> WriteResult<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (name, c) in t.names.iter().zip(t.columns) {
        match c {
            Column::Ts(v) => {
                fields.push(Field::new(
                    name,
                    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                    false,
                ));
                arrays.push(Arc::new(
                    TimestampMillisecondArray::from(v).with_timezone("UTC"),
                ));
            }
            Column::Static(v) => {
                fields.push(Field::new(name, DataType::Utf8, false));
                arrays.push(Arc::new(StringArray::from_iter_values(v.iter())));
            }
            Column::Runs(v) => {
                fields.push(Field::new(name, DataType::Utf8, false));
                let rows: usize = v.iter().map(|r| r.1).sum();
                let bytes: usize = v.iter().map(|r| r.0.len() * r.1).sum();
                let mut b = arrow::array::StringBuilder::with_capacity(rows, bytes);
                for (s, n) in &v {
                    for _ in 0..*n {
                        b.append_value(s);
                    }
                }
                arrays.push(Arc::new(b.finish()));
            }
            Column::Str(v) => {
                fields.push(Field::new(name, DataType::Utf8, false));
                arrays.push(Arc::new(StringArray::from_iter_values(v.iter())));
            }
            Column::Int(v) => {
                fields.push(Field::new(name, DataType::Int64, false));
                arrays.push(Arc::new(Int64Array::from(v)));
            }
            Column::F64(v) => {
                fields.push(Field::new(name, DataType::Float64, false));
                arrays.push(Arc::new(Float64Array::from(v)));
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// A text column resolved to its Arrow type once per batch.
enum TextCol<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
    /// Absent, or not text: every row reads as `""`.
    Empty,
}

impl<'a> TextCol<'a> {
    fn of(a: Option<&'a ArrayRef>) -> Self {
        let Some(a) = a else {
            return TextCol::Empty;
        };
        let any = a.as_any();
        if let Some(x) = any.downcast_ref::<StringArray>() {
            TextCol::Utf8(x)
        } else if let Some(x) = any.downcast_ref::<LargeStringArray>() {
            TextCol::Large(x)
        } else if let Some(x) = any.downcast_ref::<StringViewArray>() {
            TextCol::View(x)
        } else {
            TextCol::Empty
        }
    }

    /// Row `i`'s text (`""` where null).
    fn get(&self, i: usize) -> &'a str {
        match self {
            TextCol::Utf8(x) if x.is_valid(i) => x.value(i),
            TextCol::Large(x) if x.is_valid(i) => x.value(i),
            TextCol::View(x) if x.is_valid(i) => x.value(i),
            _ => "",
        }
    }
}

/// A batch's label column.
enum Labels<'a> {
    /// Regime ids as numbers.
    Num(Vec<f64>),
    /// Regime ids or names as text.
    Text(TextCol<'a>),
}

/// Walk the rows of one record batch (Parquet or Arrow IPC), numbering them from `*row + 1`,
/// handing `each` every run of consecutive rows of one symbol, parsed.
fn batch_rows(
    path: &Path,
    headers: &[String],
    loc: &Columns,
    batch: &arrow::record_batch::RecordBatch,
    row: &mut usize,
    each: &mut dyn FnMut(&str, &mut Rows<'_>),
) -> Result<(), IoError> {
    let n = batch.num_rows();
    let ts_col = batch.column(loc.ts);
    let ts = col_ts(path, &headers[loc.ts], ts_col)?;
    let time_col = loc.time.map(|i| batch.column(i));
    let time = match (loc.time, time_col) {
        (Some(i), Some(a)) => Some(col_time_of_day(path, &headers[i], a)?),
        _ => None,
    };
    let mut cols: [Option<Vec<f64>>; 5] = Default::default();
    // a text column's fields that do not read as numbers, per row (allocated at the first)
    let mut unread: [Option<Vec<Option<RejectReason>>>; 5] = Default::default();
    for (k, i) in loc.values.iter().enumerate() {
        if let Some(i) = i {
            let a = batch.column(*i);
            cols[k] = Some(if text_valued(a.data_type()) {
                // as text, the way the symbol column is taken
                let text = text_column(path, VALUE_NAMES[k], a)?;
                text_f64(&text, k, &mut unread[k])
            } else {
                col_f64(path, VALUE_NAMES[k], a)?
            });
        }
    }
    // labels as regime ids (numbers), or as ids or names in text (as in CSV)
    let label_col = loc.label.map(|i| batch.column(i));
    let label_text = match label_col {
        Some(a) if !a.data_type().is_numeric() => Some(text_column(path, "label", a)?),
        _ => None,
    };
    let labels = match (label_col, &label_text) {
        (_, Some(t)) => Some(Labels::Text(TextCol::of(Some(t)))),
        (Some(a), None) => Some(Labels::Num(col_f64(path, "label", a)?)),
        (None, None) => None,
    };
    let symbol_col = match loc.symbol {
        Some(i) => Some(text_column(path, &headers[i], batch.column(i))?),
        None => None,
    };
    let symbols = TextCol::of(symbol_col.as_ref());
    let value = |k: usize, r: usize| cols[k].as_ref().map_or(f64::NAN, |c| c[r]);
    // the checks of `RawRow::parse`, in its order: timestamp, close, label
    let parse = |r: usize| -> Parsed {
        let mut ts = ts[r].ok_or_else(|| ts_error(ts_col, r))?;
        if let (Some(tod), Some(a)) = (&time, time_col) {
            let text = || TextCol::of(Some(a)).get(r);
            ts = match tod[r] {
                Some(t) => add_time_of_day(ts, t).ok_or_else(|| time_on_a_datetime(text()))?,
                // text that does not read as a time: its reason; a null: missing
                None => date_and_time(ts, text())?,
            };
        }
        // text fields that are not numbers, in the CSV reader's order (open first)
        for u in unread.iter().flatten() {
            if let Some(reason) = &u[r] {
                return Err(reason.clone());
            }
        }
        let close = value(3, r);
        if cols[3].is_some() && close.is_nan() {
            return Err(RejectReason::Missing {
                field: "close".into(),
            });
        }
        let label = match &labels {
            Some(Labels::Num(l)) => {
                let x = l[r];
                if x.is_finite() && (0.0..18.0).contains(&x) && x.fract() == 0.0 {
                    Some(x as u8)
                } else {
                    return Err(RejectReason::Unparseable {
                        field: "label".into(),
                        value: x.to_string(),
                    });
                }
            }
            Some(Labels::Text(t)) => Some(parse_label(t.get(r))?),
            None => None,
        };
        let bar = Bar::new(
            ts,
            value(0, r),
            value(1, r),
            value(2, r),
            close,
            value(4, r),
        );
        Ok((bar, label))
    };
    let mut start = 0;
    while start < n {
        // trimmed, as the CSV and JSON readers do: "SPX " is SPX
        let symbol = symbols.get(start).trim();
        let mut end = start + 1;
        while end < n && symbols.get(end).trim() == symbol {
            end += 1;
        }
        let first = *row + 1;
        each(
            symbol,
            &mut (start..end).map(|r| (first + r - start, parse(r))),
        );
        *row += end - start;
        start = end;
    }
    Ok(())
}

/// The longest symbol the service takes, in bytes (tickers, OCC option symbols, ISINs, FIGIs
/// and vendor codes are far shorter; every stored row, log line and state file carries it).
pub const MAX_SYMBOL_BYTES: usize = 128;

/// A symbol the service takes: at most [`MAX_SYMBOL_BYTES`] bytes, no control characters (a
/// newline in a symbol breaks CSV exports, log lines and the scripts that read them). Err:
/// the row's rejection, and the symbol shortened for counting and echoing.
pub fn check_symbol(s: &str) -> Result<(), (RejectReason, String)> {
    let short = || {
        let head: String = s.chars().take(32).collect();
        if head.len() < s.len() {
            format!("{head}…")
        } else {
            head
        }
    };
    if s.len() > MAX_SYMBOL_BYTES {
        return Err((
            RejectReason::Unparseable {
                field: "symbol".into(),
                value: format!(
                    "{} ({} bytes; at most {MAX_SYMBOL_BYTES})",
                    short(),
                    s.len()
                ),
            },
            short(),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err((
            RejectReason::Unparseable {
                field: "symbol".into(),
                value: format!("{} (a control character)", s.escape_default()),
            },
            short().escape_default().to_string(),
        ));
    }
    Ok(())
}

/// One row of an ingest body, parsed but not yet validated.
#[derive(Debug, Clone)]
pub struct ParsedRow {
    /// Row number (1-based, as in files).
    pub row: usize,
    /// Instrument (empty when the body has no symbol column).
    pub symbol: String,
    /// The bar, or why the row could not be parsed.
    pub bar: Result<Bar, RejectReason>,
}

/// Parse an Arrow IPC body (stream or file format) of bars; `what` names the source in errors.
pub fn read_arrow_ipc(bytes: &[u8], what: &Path) -> Result<Vec<ParsedRow>, IoError> {
    let fmt = |e: arrow::error::ArrowError| IoError::Format {
        path: what.to_path_buf(),
        message: e.to_string(),
    };
    ipc_sizes_fit(&mut std::io::Cursor::new(bytes), bytes.len() as u64)
        .map_err(|m| corrupt_ipc(what, m))?;
    let decoded = unpanicked(|| -> Result<Vec<RecordBatch>, arrow::error::ArrowError> {
        if bytes.starts_with(b"ARROW1") {
            arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None)?.collect()
        } else {
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)?.collect()
        }
    });
    let batches = decoded.map_err(|m| corrupt(what, m))?.map_err(fmt)?;
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let headers = field_names(&first.schema());
    let loc = Columns::locate(what, &headers, None)?;
    let mut out = Vec::new();
    let mut row = 0usize;
    for b in &batches {
        batch_rows(what, &headers, &loc, b, &mut row, &mut |symbol, rows| {
            out.extend(rows.map(|(row, parsed)| ParsedRow {
                row,
                symbol: symbol.to_string(),
                bar: parsed.map(|x| x.0),
            }))
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, TimestampNanosecondArray};

    #[test]
    fn fast_timestamp_text_matches_chrono() {
        for ms in [
            0i64,
            946_857_600_000,
            1_221_436_800_000,
            1_700_000_000_123,
            -86_400_000,
            4_102_444_800_000,
        ] {
            let mut s = String::new();
            push_timestamp(&mut s, ms);
            assert_eq!(s, format_timestamp(ms), "{ms}");
            assert_eq!(parse_timestamp(&s), Some(ms));
        }
        // years 0..=9999, with and without milliseconds
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % 315_537_897_600_000) as i64 - 62_167_219_200_000;
            let ms = if x & 1 == 0 { ms - ms % 1000 } else { ms };
            let mut s = String::new();
            push_timestamp(&mut s, ms);
            assert_eq!(s, format_timestamp(ms), "{ms}");
            assert_eq!(parse_timestamp(&s), Some(ms), "{s}");
        }
    }

    #[test]
    fn fixed6_matches_the_formatter() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut vals = vec![
            0.0,
            -0.0,
            1.0,
            0.5,
            0.0000005,
            0.0000015,
            0.0000025,
            -0.0000004,
            0.9999995,
            0.99999949999,
            123456.1234565,
            999_999.9999995,
            1e6,
            1e7 + 0.25,
            -2.5e-7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            1e300,
        ];
        for _ in 0..200_000 {
            let bits = next();
            vals.push(f64::from_bits(bits));
            vals.push((bits >> 11) as f64 / (1u64 << 53) as f64);
            vals.push((bits % 2_000_000_001) as f64 * 1e-6 - 1000.0);
            vals.push((bits % 20_000_001) as f64 * 5e-8);
        }
        for v in vals {
            let mut s = String::new();
            push_fixed6(&mut s, v);
            assert_eq!(s, format!("{v:.6}"), "{v:e} ({:#x})", v.to_bits());
        }
    }

    #[test]
    fn csv_numbers_too_small_for_six_decimals_keep_their_value() {
        for v in [1.5e-7, -3.25e-9, 4.9999e-7, f64::MIN_POSITIVE] {
            let mut s = String::new();
            push_number(&mut s, v);
            assert_eq!(s.parse::<f64>().ok(), Some(v), "{s}");
            assert!(
                parse_f64("close", &s, false, false).is_ok_and(|x| x == v),
                "{s}"
            );
        }
        for v in [0.0, -0.0, 5e-7, 0.25, 115.553493, -1e6] {
            let (mut a, mut b) = (String::new(), String::new());
            push_number(&mut a, v);
            push_fixed6(&mut b, v);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn plain_datetimes_parse_like_chrono() {
        let general = |s: &str| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
                .map(|d| d.and_utc().timestamp_millis())
                .ok()
                .or_else(|| {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|d| d.and_utc().timestamp_millis())
                })
        };
        for s in [
            "2008-09-15",
            "2008-09-15 14:30:00",
            "2008-09-15T14:30:59",
            "1999-12-31 23:59:59",
            "2024-02-29",
            "1970-01-01 00:00:00",
            "0001-01-01",
            "9999-12-31 23:59:59",
        ] {
            assert_eq!(parse_plain_datetime(s), general(s), "{s}");
            assert!(parse_plain_datetime(s).is_some(), "{s}");
            assert_eq!(parse_timestamp(s), general(s), "{s}");
        }
        // not the plain forms, or not valid dates: left to the general parser, same result
        for s in [
            "2023-02-29",
            "2008-13-01",
            "2008-09-31",
            "2008-09-15 24:00:00",
            "2008-09-15 12:60:00",
            "2008-09-15 12:00:61",
            "2008-09-15X12:00:00",
            "2008/09/15",
            "2008-9-15",
            "+008-09-15",
            "2008-09-15 1:30:000",
            "2008-09-15 14:30:00.5",
            "20080915",
            "abcd-ef-gh",
        ] {
            assert_eq!(parse_plain_datetime(s), None, "{s}");
        }
        assert_eq!(
            parse_timestamp("2008-09-15 14:30:00.5"),
            Some(1_221_489_000_500)
        );
        assert_eq!(parse_timestamp("2008-09-31"), None);
        // integer dates (YYYYMMDD), epoch seconds and milliseconds
        let day = parse_timestamp("2008-09-15");
        assert_eq!(parse_timestamp("20080915"), day);
        assert_eq!(integer_timestamp(20_080_915), day.expect("date"));
        assert_eq!(integer_timestamp(1_221_436_800), day.expect("date"));
        assert_eq!(integer_timestamp(1_221_436_800_000), day.expect("date"));
        // microseconds and nanoseconds (a feed's, pandas' default), and epoch seconds with a
        // fraction, as time.time() gives them
        let ms = 1_221_489_000_500;
        assert_eq!(integer_timestamp(ms * 1000 + 999), ms);
        assert_eq!(integer_timestamp(ms * 1_000_000 + 999_999), ms);
        assert_eq!(float_timestamp(1_221_489_000.5), Some(ms));
        assert_eq!(float_timestamp(1_221_489_000_500.7), Some(ms));
        assert_eq!(float_timestamp(1.2214890005e15), Some(ms));
        assert_eq!(float_timestamp(f64::NAN), None);
        assert_eq!(float_timestamp(1e300), None);
        assert_eq!(parse_timestamp("1221489000.5"), Some(ms));
        assert_eq!(parse_timestamp("1221489000500123"), Some(ms));
        // before 1970 too: the floor, as for later times
        assert_eq!(integer_timestamp(-1_500), -1_500_000);
        assert_eq!(integer_timestamp(-100_000_000_000_001), -100_000_000_001);
        // not a date (day 00, month 13): epoch seconds
        assert_eq!(integer_timestamp(20_080_900), 20_080_900_000);
        assert_eq!(integer_timestamp(20_081_301), 20_081_301_000);
        // UTC offsets, with and without the colon
        let utc = parse_timestamp("2008-09-15 14:30:00");
        for s in [
            "2008-09-15 09:30:00-05:00",
            "2008-09-15 09:30:00-0500",
            "2008-09-15T09:30:00-0500",
            "2008-09-15T14:30:00Z",
            "2008-09-15 16:30:00.000+0200",
        ] {
            assert_eq!(parse_timestamp(s), utc, "{s}");
        }
    }

    /// Semicolons (spreadsheets where the decimal mark is a comma), tabs and pipes separate
    /// fields as commas do; a quoted header field's separators do not count.
    #[test]
    fn csv_delimiter_is_read_from_the_header() {
        assert_eq!(sniff_delimiter(b"timestamp,open,close\n1;2;3"), b',');
        assert_eq!(sniff_delimiter(b"timestamp;open;close\r\n1,5;2,5;3"), b';');
        assert_eq!(sniff_delimiter(b"timestamp\topen\tclose\n"), b'\t');
        assert_eq!(sniff_delimiter(b"timestamp|open|close"), b'|');
        assert_eq!(sniff_delimiter(b"\"a,b\";c;d\n"), b';');
        assert_eq!(sniff_delimiter(b"close\n1\n"), b',');
        assert_eq!(sniff_delimiter(b""), b',');
        let rows = |sep: &str| {
            let text =
                "timestamp,symbol,close\n2024-01-02,A,10\n2024-01-03,A,11\n".replace(',', sep);
            let input = read_csv_bytes(text.as_bytes(), Path::new("mem.csv")).expect("read");
            assert!(input.errors.is_empty(), "{sep:?}: {:?}", input.errors);
            input.series[0]
                .bars
                .iter()
                .map(|b| b.close)
                .collect::<Vec<_>>()
        };
        for sep in [",", ";", "\t", "|"] {
            assert_eq!(rows(sep), vec![10.0, 11.0], "{sep:?}");
        }
        // with semicolons, a decimal comma; "1,234,5" is still not a number
        let text =
            "timestamp;symbol;close;volume\n2024-01-02;A;101,25;1000\n2024-01-03;A;1,234,5;7\n";
        let input = read_csv_bytes(text.as_bytes(), Path::new("mem.csv")).expect("read");
        assert_eq!(input.series[0].bars[0].close, 101.25);
        assert_eq!(input.errors.len(), 1);
        assert_eq!(
            input.errors[0].reason.to_string(),
            "cannot parse close from \"1,234,5\""
        );
    }

    /// Column names as Bloomberg (PX_*) and spreadsheets (`Adj Close`) write them.
    #[test]
    fn two_level_headers_as_pandas_writes_yfinance_frames() {
        // yf.download(["AAPL", "MSFT"]).to_csv(): field and ticker levels, then a date row;
        // MSFT has no data on the first day (not yet trading: left out, not rejected)
        let wide = "Price,Close,Close,High,High,Low,Low,Open,Open,Volume,Volume\n\
                    Ticker,AAPL,MSFT,AAPL,MSFT,AAPL,MSFT,AAPL,MSFT,AAPL,MSFT\n\
                    Date,,,,,,,,,,\n\
                    2024-01-02,10,,11,,9,,9.5,,100,\n\
                    2024-01-03,10.5,20,11,21,10,19,10,19.5,120,300\n\
                    2024-01-04,abc,21,12,22,10,20,10.5,20,130,310\n\
                    2024-01-05,11,22,12,23\n";
        let long = "timestamp,symbol,open,high,low,close,volume\n\
                    2024-01-02,AAPL,9.5,11,9,10,100\n\
                    2024-01-03,AAPL,10,11,10,10.5,120\n\
                    2024-01-03,MSFT,19.5,21,19,20,300\n\
                    2024-01-04,MSFT,20,22,20,21,310\n";
        let w = read_csv_bytes(wide.as_bytes(), Path::new("yf.csv")).expect("two levels");
        let l = read_csv_bytes(long.as_bytes(), Path::new("long.csv")).expect("long");
        let names = |i: &Input| {
            i.series
                .iter()
                .map(|s| s.symbol.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&w), ["AAPL", "MSFT"]);
        for (a, b) in w.series.iter().zip(&l.series) {
            assert_eq!(a.bars, b.bars, "{}", a.symbol);
        }
        // the bad close of AAPL on row 5 (records after the first header line: the ticker and
        // date rows are 1 and 2) and the short last row, each named
        let errs: Vec<String> = w
            .errors
            .iter()
            .map(|e| format!("{} {} {}", e.row, e.symbol, e.reason))
            .collect();
        assert_eq!(
            errs,
            [
                "5 AAPL cannot parse close from \"abc\"",
                "6 AAPL row has 5 fields where the header has 11"
            ]
        );
        // one ticker, levels without names (empty first cells)
        let one = ",Close,High,Low,Open,Volume\n,SPY,SPY,SPY,SPY,SPY\nDate,,,,,\n\
                   2024-01-02,10,11,9,9.5,100\n2024-01-03,10.5,11,10,10,120\n";
        let o = read_csv_bytes(one.as_bytes(), Path::new("spy.csv")).expect("one ticker");
        assert_eq!(names(&o), ["SPY"]);
        assert_eq!(o.series[0].bars, l.series[0].bars);
        // a first header cell "Price" alone does not make a file two-level
        let plain = "Price,Close\n2024-01-02,10\n";
        let err = read_csv_bytes(plain.as_bytes(), Path::new("p.csv")).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing required column `timestamp`"),
            "{err}"
        );
    }

    #[test]
    fn dates_with_month_names_and_brokers_forms_parse() {
        let day = parse_timestamp("2024-01-02").expect("day");
        for s in [
            "02-Jan-2024",
            "2-Jan-2024",
            "02-Jan-24",
            "02-JAN-2024",
            "2 Jan 2024",
            "Jan 2, 2024",
            "January 2, 2024",
            "2 January 2024",
            "Jan 02 2024",
        ] {
            assert_eq!(parse_timestamp(s), Some(day), "{s}");
        }
        let at = parse_timestamp("2024-01-02 09:30:00").expect("at");
        for s in ["20240102 09:30:00", "20240102  09:30:00", "20240102 09:30"] {
            assert_eq!(parse_timestamp(s), Some(at), "{s}");
        }
        for s in ["32-Jan-2024", "Jan 32, 2024", "02-Foo-2024", "Jan 2024"] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn exported_numbers_are_read_as_spreadsheets_write_them() {
        let f = |field: &'static str, s: &str, dc: bool| parse_f64(field, s, field != "close", dc);
        for (s, dc, v) in [
            ("4,697.24", false, 4697.24),
            ("1,234,567", false, 1_234_567.0),
            ("-1,234.5", false, -1234.5),
            ("$182.52", false, 182.52),
            ("$1,182.52", false, 1182.52),
            ("4.697,24", true, 4697.24),
            ("1.234.567", true, 1_234_567.0),
            ("101,25", true, 101.25),
            ("4697.24", false, 4697.24),
        ] {
            assert_eq!(f("close", s, dc), Ok(v), "{s}");
        }
        // groups that are not thousands are not numbers
        for (s, dc) in [
            ("4,69.24", false),
            ("46,97", false),
            ("1,234", false), // 1.234 with decimal commas: not guessed
            ("1.234,", true),
            ("1234,567", false),
            (",123", false),
            ("4.69,2", true),
            ("2.93B", false),
        ] {
            assert!(f("close", s, dc).is_err(), "{s}");
        }
        // a volume's K/M/B; "-" is an absent optional field, never an absent close
        assert_eq!(f("volume", "2.93B", false), Ok(2.93e9));
        assert_eq!(f("volume", "850.50K", false), Ok(850_500.0));
        assert_eq!(f("volume", "1,5M", true), Ok(1.5e6));
        assert!(f("volume", "-", false).is_ok_and(f64::is_nan));
        assert!(f("open", "-", false).is_ok_and(f64::is_nan));
        assert!(f("close", "-", false).is_err());
        assert!(f("volume", "3X", false).is_err());
    }

    #[test]
    fn numeric_dates_are_read_in_the_order_their_file_shows() {
        let ms = |s: &str| parse_timestamp(s).expect(s);
        let jan13 = ms("2024-01-13");
        let (day, mf) = (Some(DateOrder::DayFirst), Some(DateOrder::MonthFirst));
        // the forms, in each order; a time after the date, US spreadsheets' AM/PM too
        assert_eq!(parse_timestamp_in("13/01/2024", day), Some(jan13));
        assert_eq!(parse_timestamp_in("1/13/2024", mf), Some(jan13));
        assert_eq!(parse_timestamp_in("13.01.2024", day), Some(jan13));
        assert_eq!(parse_timestamp_in("13-1-2024", day), Some(jan13));
        assert_eq!(
            parse_timestamp_in("01/02/2024", day),
            Some(ms("2024-02-01"))
        );
        assert_eq!(parse_timestamp_in("01/02/2024", mf), Some(ms("2024-01-02")));
        for (t, at) in [
            ("1/13/2024 09:30", "2024-01-13 09:30:00"),
            ("1/13/2024 9:30:15 AM", "2024-01-13 09:30:15"),
            ("1/13/2024 12:05 AM", "2024-01-13 00:05:00"),
            ("1/13/2024 12:05 PM", "2024-01-13 12:05:00"),
            ("1/13/2024 4:00:00 pm", "2024-01-13 16:00:00"),
            ("1/13/2024T16:00", "2024-01-13 16:00:00"),
        ] {
            assert_eq!(parse_timestamp_in(t, mf), Some(ms(at)), "{t}");
        }
        for t in [
            "13/01/2024",         // no 13th month
            "1/13/24",            // two-digit years are not read
            "1/13/2024 13:00 PM", // no 13 PM
            "1/13/2024 0:30 AM",
            "1/13/2024 0930",
            "1/2/3/2024",
            "100/1/2024",
        ] {
            assert_eq!(parse_timestamp_in(t, mf), None, "{t}");
        }
        // no order given: refused, as before
        assert_eq!(parse_timestamp_in("13/01/2024", None), None);

        // a file's order: the first date only one order reads
        let dir = tempfile::tempdir().expect("tmp");
        let order_of = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            csv_date_order(&p, Format::of_input(&p).expect("format"))
        };
        let rows = |dates: &[&str]| {
            let mut t = String::from("Date,Close\n");
            for (i, d) in dates.iter().enumerate() {
                t += &format!("{d},{}\n", 100 + i);
            }
            t
        };
        let us = rows(&["01/11/2024", "01/12/2024", "01/13/2024", "01/14/2024"]);
        assert_eq!(
            order_of("us.csv", &us),
            Some(DateOrderSeen {
                order: DateOrder::MonthFirst,
                shown_by: Some((3, "01/13/2024".into())),
            })
        );
        let uk = rows(&["11/01/2024", "12/01/2024", "13/01/2024"]);
        assert_eq!(
            order_of("uk.csv", &uk).map(|d| d.order),
            Some(DateOrder::DayFirst)
        );
        // dotted dates none of which tells: day first; slashed ones: not known
        let dotted = order_of("de.csv", "Date;Close\n02.01.2024;1,5\n03.01.2024;1,6\n");
        assert_eq!(
            dotted,
            Some(DateOrderSeen {
                order: DateOrder::DayFirst,
                shown_by: None,
            })
        );
        assert_eq!(
            order_of("amb.csv", &rows(&["01/02/2024", "01/03/2024"])),
            None
        );
        // a file in a form read anyway is not looked into past its first row
        assert_eq!(
            order_of("iso.csv", &rows(&["2024-01-02", "13/01/2024"])),
            None
        );
        // compressed too; and read through, each row in the file's order
        let gz = dir.path().join("us.csv.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(us.as_bytes()).expect("gz");
        std::fs::write(&gz, e.finish().expect("gz")).expect("write");
        let input = read_bars(&gz, None).expect("read");
        assert!(input.errors.is_empty(), "{:?}", input.errors);
        assert_eq!(
            input.date_order.map(|d| d.order),
            Some(DateOrder::MonthFirst)
        );
        let ts: Vec<i64> = input.series[0].bars.iter().map(|b| b.ts).collect();
        assert_eq!(ts[2], jan13);
        assert_eq!(ts[0], ms("2024-01-11"));
        // a row the file's order cannot read is that row's error, with its text
        let mixed = dir.path().join("mixed.csv");
        std::fs::write(&mixed, rows(&["01/12/2024", "01/13/2024", "14/01/2024"])).expect("w");
        let input = read_bars(&mixed, None).expect("read");
        assert_eq!(input.errors.len(), 1);
        assert_eq!(input.errors[0].row, 3);
        assert!(input.errors[0].reason.to_string().contains("14/01/2024"));
    }

    #[test]
    fn a_time_column_beside_a_date_column_is_added_to_it() {
        // the forms of a time of day
        for (t, ms) in [
            ("09:30", 34_200_000),
            ("9:30", 34_200_000),
            ("09:30:15", 34_215_000),
            ("09:30:15.5", 34_215_500),
            ("23:59:59.999999", 86_399_999),
            ("0930", 34_200_000),
            ("930", 34_200_000),
            ("093015", 34_215_000),
            ("00:00", 0),
        ] {
            assert_eq!(parse_time_of_day(t), Some(ms), "{t}");
        }
        for t in [
            "24:00",
            "09:60",
            "9",
            "09:30:15:00",
            "1234567",
            "ab:cd",
            "09:30.x",
            "",
        ] {
            assert_eq!(parse_time_of_day(t), None, "{t}");
        }
        // CSV (Stooq's and many intraday exports' shape): the rows' times, and the bad ones
        // named by the time field
        let text = "Date,Time,Open,High,Low,Close,Volume\n\
                    2024-01-02,09:30,10,11,9,10.5,100\n\
                    2024-01-02,09:31:00,10.5,11,10,10.7,120\n\
                    2024-01-02,,10.7,11,10,10.6,90\n\
                    2024-01-02,9h32,10.7,11,10,10.6,90\n\
                    2024-01-02 09:33,09:34,10.7,11,10,10.6,90\n\
                    2024-01-02,0934,10.7,11,10,10.6,90\n\
                    2024-01-02 09:35,09:35,10.7,11,10,10.6,90\n";
        let input = read_csv_bytes(text.as_bytes(), Path::new("m.csv")).expect("read");
        let ts: Vec<i64> = input.series[0].bars.iter().map(|b| b.ts).collect();
        let day = 1_704_153_600_000; // 2024-01-02
        assert_eq!(
            ts,
            [
                day + 34_200_000,
                day + 34_260_000,
                day + 34_440_000,
                // a datetime beside its own time of day: taken as it is
                day + 34_500_000
            ]
        );
        let why: Vec<String> = input
            .errors
            .iter()
            .map(|e| format!("{} {}", e.row, e.reason))
            .collect();
        assert_eq!(
            why,
            [
                "3 time is missing",
                "4 cannot parse time from \"9h32\"",
                "5 cannot parse time from \"09:34 (its date holds another time of day)\""
            ]
        );
        // MetaTrader 5's export: tab-separated, names in angle brackets, dotted dates
        let mt5 = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n\
                   2024.01.02\t09:30:00\t1.1\t1.2\t1.0\t1.15\t120\t0\t2\n\
                   2024.01.02\t09:31:00\t1.15\t1.2\t1.1\t1.12\t80\t0\t2\n";
        let input = read_csv_bytes(mt5.as_bytes(), Path::new("mt5.csv")).expect("read");
        assert!(input.errors.is_empty(), "{:?}", input.errors);
        let bars = &input.series[0].bars;
        assert_eq!(
            (bars[0].ts, bars[1].ts),
            (day + 34_200_000, day + 34_260_000)
        );
        assert_eq!((bars[1].open, bars[1].close), (1.15, 1.12));
        assert_eq!(parse_timestamp("2024.01.02 09:30"), Some(day + 34_200_000));
        // a timestamp column keeps its own time: a `time` column beside it is not read
        let plain = "timestamp,time,close\n2024-01-02 10:00,09:30,1\n";
        let input = read_csv_bytes(plain.as_bytes(), Path::new("p.csv")).expect("read");
        assert_eq!(input.series[0].bars[0].ts, day + 36_000_000);
        // Arrow: a date32 column with a time64 column, and with text times
        use arrow::array::{StringArray, Time64MicrosecondArray};
        let dates = Date32Array::from(vec![19_724, 19_724, 19_724]);
        let close = Float64Array::from(vec![1.0, 1.1, 1.2]);
        for times in [
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(34_200_000_000),
                Some(34_260_000_000),
                None,
            ])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("09:30"), Some("09:31"), None])),
        ] {
            let schema = Arc::new(Schema::new(vec![
                Field::new("Date", DataType::Date32, false),
                Field::new("Time", times.data_type().clone(), true),
                Field::new("Close", DataType::Float64, false),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(dates.clone()),
                    times.clone(),
                    Arc::new(close.clone()),
                ],
            )
            .expect("batch");
            let input = read_batches(&[batch], &schema, Path::new("mem"), None).expect("read");
            let ts: Vec<i64> = input.series[0].bars.iter().map(|b| b.ts).collect();
            assert_eq!(
                ts,
                [day + 34_200_000, day + 34_260_000],
                "{}",
                times.data_type()
            );
            assert_eq!(input.errors[0].reason.to_string(), "time is missing");
        }
    }

    #[test]
    fn column_names_in_other_spellings() {
        let read = |text: &str| {
            let input = read_csv_bytes(text.as_bytes(), Path::new("mem.csv")).expect("read");
            assert!(input.errors.is_empty(), "{:?}", input.errors);
            let b = input.series[0].bars[0];
            (b.open, b.high, b.low, b.close, b.volume)
        };
        assert_eq!(
            read("Date,PX_OPEN,PX_HIGH,PX_LOW,PX_LAST,PX_VOLUME\n2024-01-02,10,12,9,11,500\n"),
            (10.0, 12.0, 9.0, 11.0, 500.0)
        );
        // yfinance: Close is preferred to Adj Close
        assert_eq!(
            read("Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,12,9,11,10.5,500\n").3,
            11.0
        );
        assert_eq!(read("Date,Adj Close\n2024-01-02,10.5\n").3, 10.5);
        // two columns of one name: an error naming both, not a silent pick (CSV and Arrow)
        let twice = |text: &str| {
            read_csv_bytes(text.as_bytes(), Path::new("mem.csv"))
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            twice("Date,Close,close\n2024-01-02,10,11\n").as_deref(),
            Some("mem.csv: column `Close` appears twice (columns 2 and 3): rename or drop one")
        );
        assert_eq!(
            twice("date,close,Date\n2024-01-02,10,2024-01-03\n").as_deref(),
            Some("mem.csv: column `date` appears twice (columns 1 and 3): rename or drop one")
        );
        // a duplicate among the columns not read is no one's business
        assert_eq!(twice("Date,Close,note,Note\n2024-01-02,10,a,b\n"), None);
        let schema = Arc::new(Schema::new(vec![
            Field::new("timestamp", DataType::Int64, false),
            Field::new("Close", DataType::Float64, false),
            Field::new("close", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![20240102])),
                Arc::new(Float64Array::from(vec![10.0])),
                Arc::new(Float64Array::from(vec![11.0])),
            ],
        )
        .expect("batch");
        let err = read_batches(&[batch], &schema, Path::new("mem"), None).unwrap_err();
        assert!(
            err.to_string()
                .contains("column `Close` appears twice (columns 2 and 3)"),
            "{err}"
        );
        // pandas' index without a name: `__index_level_0__` in Parquet and Feather (a
        // nanosecond timestamp with a time zone, as a DatetimeIndex is stored), read as the
        // timestamp; an empty header in a CSV, named as the likely cause
        let ts = TimestampNanosecondArray::from(vec![1_704_205_800_000_000_000i64])
            .with_timezone("America/New_York");
        let close = Float64Array::from(vec![101.5]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("close", DataType::Float64, false),
            Field::new("__index_level_0__", ts.data_type().clone(), false),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(close), Arc::new(ts)])
            .expect("batch");
        let input = read_batches(&[batch], &schema, Path::new("mem"), None).expect("read");
        assert_eq!(input.series[0].bars[0].ts, 1_704_205_800_000);
        // a float column of epoch seconds with a fraction
        let schema = Arc::new(Schema::new(vec![
            Field::new("timestamp", DataType::Float64, false),
            Field::new("close", DataType::Float64, false),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(vec![1_704_205_800.25])),
            Arc::new(Float64Array::from(vec![101.5])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        let input = read_batches(&[batch], &schema, Path::new("mem"), None).expect("read");
        assert_eq!(input.series[0].bars[0].ts, 1_704_205_800_250);
        let err = read_csv_bytes(",Close\n2024-01-02,10\n".as_bytes(), Path::new("p.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the first column has no name"), "{err}");
    }

    /// Symbols as pandas categoricals (dictionary, int8 keys, large strings) or integer ids,
    /// prices as decimals: read as such. A symbol column of another type is an error naming
    /// it (it used to read as no symbol, running every instrument together as one series).
    #[test]
    fn dictionary_and_integer_symbols_and_decimal_prices_are_read() {
        use arrow::array::{Decimal128Array, DictionaryArray, Int8Array};
        use arrow::datatypes::Int8Type;
        let ts = TimestampMillisecondArray::from(vec![1000, 1000, 2000, 2000]);
        let close = Decimal128Array::from(vec![101_2500i128, 55_0000, 101_5000, 54_7500])
            .with_precision_and_scale(10, 4)
            .expect("decimal");
        let dict = DictionaryArray::<Int8Type>::try_new(
            Int8Array::from(vec![0, 1, 0, 1]),
            Arc::new(LargeStringArray::from(vec!["SPX", "NDX"])),
        )
        .expect("dictionary");
        let ids = Int64Array::from(vec![10107, 14593, 10107, 14593]);
        let floats = Float64Array::from(vec![1.0, 2.0, 1.0, 2.0]);
        let read = |sym: ArrayRef| {
            let schema = Arc::new(Schema::new(vec![
                Field::new(
                    "timestamp",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                    false,
                ),
                Field::new("symbol", sym.data_type().clone(), false),
                Field::new("close", close.data_type().clone(), false),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(ts.clone()), sym, Arc::new(close.clone())],
            )
            .expect("batch");
            read_batches(&[batch], &schema, Path::new("mem"), None)
        };
        for (sym, names) in [
            (Arc::new(dict) as ArrayRef, ["SPX", "NDX"]),
            (Arc::new(ids) as ArrayRef, ["10107", "14593"]),
        ] {
            let input = read(sym).expect("read");
            assert!(input.errors.is_empty(), "{:?}", input.errors);
            let got: Vec<(&str, Vec<f64>)> = input
                .series
                .iter()
                .map(|s| (s.symbol.as_str(), s.bars.iter().map(|b| b.close).collect()))
                .collect();
            assert_eq!(
                got,
                vec![
                    (names[0], vec![101.25, 101.5]),
                    (names[1], vec![55.0, 54.75])
                ]
            );
        }
        let e = read(Arc::new(floats)).expect_err("float symbols");
        assert!(
            e.to_string()
                .contains("column `symbol` has unsupported type Float64"),
            "{e}"
        );

        // labels as names or ids in text, as in CSV; a bad one is named
        let schema = Arc::new(Schema::new(vec![
            Field::new("timestamp", DataType::Int64, false),
            Field::new("close", DataType::Float64, false),
            Field::new("truth", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(Float64Array::from(vec![10.0, 10.5, 10.2])),
                Arc::new(StringArray::from(vec![
                    "high_vol_up_mean_reverting",
                    "4",
                    "sideways",
                ])),
            ],
        )
        .expect("batch");
        let input = read_batches(&[batch], &schema, Path::new("mem"), Some("truth")).expect("read");
        assert_eq!(input.series[0].labels, vec![Some(17), Some(4)]);
        assert_eq!(input.errors.len(), 1);
        assert_eq!(
            input.errors[0].reason.to_string(),
            "cannot parse label from \"sideways\""
        );
    }

    /// Prices kept as text (a pandas object column, a tool that wrote them as strings) are
    /// read as the CSV reader reads fields: grouped digits, `-` for an absent optional field,
    /// K/M/B volumes; a field that is no number rejects its row with its text, in the CSV
    /// reader's order (open before close). Before, the whole input was refused ("column
    /// `close` has unsupported type Utf8").
    #[test]
    fn text_price_columns_are_read_as_csv_fields() {
        let text = |v: [Option<&str>; 6]| Arc::new(StringArray::from(v.to_vec())) as ArrayRef;
        let schema = Arc::new(Schema::new(vec![
            Field::new("timestamp", DataType::Int64, false),
            Field::new("open", DataType::Utf8, true),
            Field::new("high", DataType::Utf8, true),
            Field::new("low", DataType::Utf8, true),
            Field::new("close", DataType::LargeUtf8, true),
            Field::new(
                "volume",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
        ]));
        let volume: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> = vec![
            Some("1.5M"),
            Some("-"),
            Some("7"),
            Some("8"),
            None,
            Some("9"),
        ]
        .into_iter()
        .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6])),
                text([
                    Some("1,000.25"),
                    Some("1,001.5"),
                    Some("x"),
                    Some("1002"),
                    Some("1002"),
                    Some("1003"),
                ]),
                text([
                    Some("1,001.0"),
                    Some("1002"),
                    Some("1003"),
                    Some("1003"),
                    Some("1003"),
                    Some("1005"),
                ]),
                text([
                    Some("999.5"),
                    Some("1000"),
                    Some("1000"),
                    Some("1001"),
                    Some("1001"),
                    Some("1002"),
                ]),
                Arc::new(LargeStringArray::from(vec![
                    Some("1,000.5"),
                    Some(" 1001.25 "),
                    Some("y"),
                    Some(""),
                    Some("NaN"),
                    Some("1004"),
                ])),
                Arc::new(volume),
            ],
        )
        .expect("batch");
        let input = read_batches(&[batch], &schema, Path::new("mem"), None).expect("read");
        let said: Vec<(usize, String)> = input
            .errors
            .iter()
            .map(|e| (e.row, e.reason.to_string()))
            .collect();
        assert_eq!(
            said,
            vec![
                (3, "cannot parse open from \"x\"".to_string()),
                (4, "close is missing".to_string()),
                (5, "close is not finite".to_string()),
            ]
        );
        let got: Vec<(f64, f64, f64, f64)> = input.series[0]
            .bars
            .iter()
            .map(|b| (b.open, b.high, b.close, b.volume))
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (1000.25, 1001.0, 1000.5, 1_500_000.0));
        assert_eq!((got[1].0, got[1].2), (1001.5, 1001.25));
        assert!(got[1].3.is_nan(), "`-`: volume absent");
        assert_eq!(got[2], (1003.0, 1005.0, 1004.0, 9.0));
    }

    /// Arrow input goes through runs of one symbol: rows keep their numbers and order,
    /// a symbol that comes back later continues its series, null fields are named, and a
    /// row with no symbol is a bad row (it once formed a series of its own, named "").
    #[test]
    fn arrow_rows_are_numbered_validated_and_grouped_by_symbol() {
        let ts: Vec<Option<i64>> = vec![
            Some(1000),
            Some(2000),
            None,
            Some(3000),
            Some(500),
            Some(4000),
        ];
        let sym = vec![
            Some("A"),
            Some("A "),
            Some("B"),
            Some(" B"),
            Some("A"),
            None,
        ];
        let close = vec![
            Some(10.0),
            None,
            Some(10.0),
            Some(10.0),
            Some(10.0),
            Some(10.0),
        ];
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new("symbol", DataType::Utf8, true),
            Field::new("close", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(TimestampMillisecondArray::from(ts)),
                Arc::new(StringArray::from(sym)),
                Arc::new(Float64Array::from(close)),
            ],
        )
        .expect("batch");
        // the same rows split across two batches read the same
        let split = [batch.slice(0, 3), batch.slice(3, 3)];
        for batches in [std::slice::from_ref(&batch), &split[..]] {
            let input = read_batches(batches, &schema, Path::new("mem"), None).expect("read");
            assert_eq!(input.rows, 6);
            let errs: Vec<(usize, &str, String)> = input
                .errors
                .iter()
                .map(|e| (e.row, e.symbol.as_str(), e.reason.to_string()))
                .collect();
            assert_eq!(
                errs,
                vec![
                    (2, "A", "close is missing".to_string()),
                    (3, "B", "timestamp is missing".to_string()),
                    (
                        5,
                        "A",
                        "timestamp 1970-01-01 00:00:00.500 is not after the previous bar's 1970-01-01 00:00:01 for this symbol"
                            .to_string()
                    ),
                    (6, "", "symbol is missing".to_string()),
                ]
            );
            let got: Vec<(&str, Vec<i64>)> = input
                .series
                .iter()
                .map(|s| (s.symbol.as_str(), s.bars.iter().map(|b| b.ts).collect()))
                .collect();
            assert_eq!(got, vec![("A", vec![1000]), ("B", vec![3000])]);
            let q = input.validator.quality();
            assert_eq!(q["A"].rejected["missing_field"], 1);
            assert_eq!(q["A"].rejected["timestamp_not_increasing"], 1);
            assert_eq!(q["B"].rejected["missing_field"], 1);
            assert_eq!(q["B"].accepted, 1);
            assert_eq!(q[""].rejected["missing_field"], 1);
        }
    }

    /// In CSV too, a row with an empty symbol field is rejected when the file has a
    /// symbol column; a file without one is one series.
    #[test]
    fn csv_rows_without_a_symbol_are_rejected() {
        let text = "timestamp,symbol,close\n2024-01-02,A,10\n2024-01-03, ,11\n2024-01-04,A,12\n";
        let input = read_csv_bytes(text.as_bytes(), Path::new("mem.csv")).expect("read");
        let errs: Vec<(usize, String)> = input
            .errors
            .iter()
            .map(|e| (e.row, e.reason.to_string()))
            .collect();
        assert_eq!(errs, vec![(2, "symbol is missing".to_string())]);
        assert_eq!(input.series.len(), 1);
        assert_eq!(input.series[0].symbol, "A");
        assert_eq!(input.series[0].bars.len(), 2);
        let plain = "timestamp,close\n2024-01-02,10\n2024-01-03,11\n";
        let input = read_csv_bytes(plain.as_bytes(), Path::new("mem.csv")).expect("read");
        assert!(input.errors.is_empty());
        assert_eq!(input.series.len(), 1);
        assert_eq!(input.series[0].symbol, "");
    }
}
