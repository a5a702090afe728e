//! The bar journal: what lets a symbol resume its learning after a crash (`kill -9`, the
//! OOM killer, a power cut of the process), not only after a clean stop.
//!
//! Each worker appends every bar it feeds a pipeline — the symbol, the timestamp of the
//! symbol's previous accepted bar and the bar — and hands the bytes to the operating system
//! before the bars' rows go to the store, so every acknowledged row's bar is in the journal
//! when the process dies. Every `regime.state_checkpoint_secs` (or once the journal passes
//! [`CHECKPOINT_BYTES`]) the worker saves the states of the symbols that took bars since
//! ([`crate::resume`]) and starts its journal afresh. At start, a symbol whose saved state
//! ends before the store's newest row is brought up to it by replaying the journal's bars
//! after the state — when they are certainly all of them: each entry names the bar before
//! it, so the replay follows an unbroken chain from the state's last bar to the store's
//! newest, and the replayed label of that bar must equal the stored one.
//!
//! Not synced: the journal survives the process, not the machine; after a power cut a
//! journal missing bars leaves a broken chain, and that symbol starts fresh (logged).
//!
//! Format, little-endian, one record per bar: `u16` symbol length, the symbol's UTF-8 bytes,
//! `i64` previous timestamp (`i64::MIN`: none), `i64` timestamp, open, high, low, close and
//! volume as `f64`, and a CRC-32 of the record's bytes before it. A torn or damaged record
//! ends the file's reading (a crash mid-append tears only the last one).

use regime_core::bars::Bar;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A journal this large is checkpointed at once (bounds its disk use and the replay at start).
pub const CHECKPOINT_BYTES: u64 = 64 << 20;

const PREFIX: &str = "journal-";
const SUFFIX: &str = ".bin";
/// Record bytes besides the symbol: length, two timestamps, five prices, checksum.
const FIXED: usize = 2 + 8 + 8 + 5 * 8 + 4;

/// One worker's journal of this run.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    record: Vec<u8>,
    bytes: u64,
    /// A write failed: nothing more is appended until the next checkpoint starts it afresh
    /// (a journal with a hole must not be replayed past it; chains through it break).
    broken: bool,
    /// When the worker last saved its states (or started): the next checkpoint is due
    /// `regime.state_checkpoint_secs` after it.
    pub last_checkpoint: std::time::Instant,
}

impl JournalWriter {
    /// The journal of worker `worker` of the run that started at `run_ms`, in `dir`
    /// (created at its first bar).
    pub fn new(dir: &Path, run_ms: i64, worker: usize) -> Self {
        JournalWriter {
            path: dir.join(format!("{PREFIX}{run_ms:013}-{worker:03}{SUFFIX}")),
            out: None,
            record: Vec::with_capacity(128),
            bytes: 0,
            broken: false,
            last_checkpoint: std::time::Instant::now(),
        }
    }

    /// Bytes appended since the journal was last started afresh.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether a write failed since the journal was last started afresh.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Append one bar of `symbol` whose previous accepted bar was at `prev_ts`.
    pub fn append(&mut self, symbol: &str, prev_ts: Option<i64>, bar: &Bar) {
        if self.broken {
            return;
        }
        let r = &mut self.record;
        r.clear();
        let name = symbol.as_bytes();
        let name = &name[..name.len().min(u16::MAX as usize)];
        r.extend_from_slice(&(name.len() as u16).to_le_bytes());
        r.extend_from_slice(name);
        r.extend_from_slice(&prev_ts.unwrap_or(i64::MIN).to_le_bytes());
        r.extend_from_slice(&bar.ts.to_le_bytes());
        for x in [bar.open, bar.high, bar.low, bar.close, bar.volume] {
            r.extend_from_slice(&x.to_le_bytes());
        }
        let crc = crc32fast::hash(r);
        r.extend_from_slice(&crc.to_le_bytes());
        let res = match &mut self.out {
            Some(w) => w.write_all(&self.record),
            None => self
                .path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                })
                .and_then(|f| {
                    let mut w = BufWriter::with_capacity(1 << 16, f);
                    w.write_all(&self.record)?;
                    self.out = Some(w);
                    Ok(())
                }),
        };
        match res {
            Ok(()) => self.bytes += self.record.len() as u64,
            Err(e) => self.fail("append", &e),
        }
    }

    /// Hand what was appended to the operating system (before the rows are acknowledged).
    pub fn flush(&mut self) {
        if let Some(w) = &mut self.out {
            if let Err(e) = w.flush() {
                self.fail("write", &e);
            }
        }
    }

    fn fail(&mut self, what: &str, e: &io::Error) {
        tracing::error!(target: "regime_server::models", "bar journal {}: {what} failed ({e}); a crash before the next state checkpoint starts this worker's symbols afresh", self.path.display());
        self.broken = true;
        // the buffered bytes are dropped with the file: a hole, never replayed past
        if let Some(w) = self.out.take() {
            let (f, _) = w.into_parts();
            drop(f);
        }
    }

    /// Start afresh after every state was saved: the journal's bars are all behind them.
    pub fn restart(&mut self) {
        self.out = None;
        self.bytes = 0;
        self.broken = false;
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                // its bars stay behind the saved states: replays skip them
                tracing::warn!(target: "regime_server::models", "bar journal {}: not removed ({e})", self.path.display())
            }
        }
    }
}

/// Each symbol's journaled bars, keyed by the timestamp of the bar before each (so a replay
/// follows the chain), read from every journal in a folder.
#[derive(Debug, Default)]
pub struct Journaled {
    /// symbol → previous timestamp (`i64::MIN`: none) → bar.
    pub bars: HashMap<String, HashMap<i64, Bar>>,
    /// The files read (removed once every symbol replayed from them is saved again).
    pub files: Vec<PathBuf>,
    /// Bars read.
    pub records: usize,
}

impl Journaled {
    /// The bars of `symbol` from just after `from` up to `to`, in order, when the journal
    /// holds every one of them (an unbroken chain ending exactly at `to`); else None.
    pub fn chain(&self, symbol: &str, from: i64, to: i64) -> Option<Vec<Bar>> {
        let by_prev = self.bars.get(symbol)?;
        let mut out = Vec::new();
        let mut cur = from;
        while cur < to {
            let b = by_prev.get(&cur)?;
            if b.ts <= cur || b.ts > to {
                return None;
            }
            out.push(*b);
            cur = b.ts;
        }
        (cur == to).then_some(out)
    }
}

/// Whether `p` is a bar journal (by its name).
pub fn is_journal(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
}

/// Read every journal in `dir`, oldest run first, so a bar journaled again by a later run
/// (resent after a crash that kept it from being stored) replaces the earlier one.
pub fn read_dir(dir: &Path) -> Journaled {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_journal(p))
            .collect(),
        Err(_) => Vec::new(),
    };
    // names carry the run's start time with a fixed width: name order is run order
    files.sort();
    let mut out = Journaled::default();
    for p in &files {
        match std::fs::read(p) {
            Ok(bytes) => {
                let (n, damaged_at) = decode(&bytes, &mut out.bars);
                out.records += n;
                if let Some(at) = damaged_at {
                    tracing::warn!(target: "regime_server::models", "bar journal {}: a torn or damaged record at byte {at}; the {n} bars before it are read", p.display());
                }
            }
            Err(e) => {
                tracing::warn!(target: "regime_server::models", "bar journal {}: {e}", p.display())
            }
        }
    }
    out.files = files;
    out
}

/// Decode one journal's records into `bars`; returns the records read and, when the bytes
/// end in a torn or damaged record, where it begins.
fn decode(bytes: &[u8], bars: &mut HashMap<String, HashMap<i64, Bar>>) -> (usize, Option<usize>) {
    let mut at = 0;
    let mut n = 0;
    while at < bytes.len() {
        let Some(rec) = record(&bytes[at..]) else {
            return (n, Some(at));
        };
        let (symbol, prev, bar, len) = rec;
        bars.entry(symbol).or_default().insert(prev, bar);
        at += len;
        n += 1;
    }
    (n, None)
}

/// One record at the start of `b`: symbol, previous timestamp, bar, its length in bytes.
fn record(b: &[u8]) -> Option<(String, i64, Bar, usize)> {
    let name_len = u16::from_le_bytes(b.get(..2)?.try_into().ok()?) as usize;
    let len = FIXED + name_len;
    let rec = b.get(..len)?;
    let (body, crc) = rec.split_at(len - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
        return None;
    }
    let symbol = std::str::from_utf8(&body[2..2 + name_len])
        .ok()?
        .to_string();
    let mut words = body[2 + name_len..]
        .chunks_exact(8)
        .map(|c| <[u8; 8]>::try_from(c).ok());
    let mut int = || words.next().flatten().map(i64::from_le_bytes);
    let prev = int()?;
    let ts = int()?;
    let mut f = || int().map(|w| f64::from_bits(w as u64));
    let bar = Bar {
        ts,
        open: f()?,
        high: f()?,
        low: f()?,
        close: f()?,
        volume: f()?,
    };
    Some((symbol, prev, bar, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(ts: i64) -> Bar {
        Bar::new(ts, 10.0, 11.0, 9.5, 10.0 + ts as f64 * 0.01, f64::NAN)
    }

    #[test]
    fn the_chain_is_followed_only_when_every_bar_is_there() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let mut w = JournalWriter::new(d, 1, 0);
        w.append("A", Some(5), &bar(6));
        w.append("B", None, &bar(1));
        w.append("A", Some(6), &bar(8));
        w.append("A", Some(8), &bar(9));
        w.flush();
        // a later run journaled A's bar after 8 again (resent: it was never stored)
        let mut later = JournalWriter::new(d, 2, 3);
        later.append("A", Some(8), &bar(10));
        later.flush();
        let j = read_dir(d);
        assert_eq!(j.records, 5);
        assert_eq!(j.files.len(), 2);
        let ts = |c: Option<Vec<Bar>>| c.map(|v| v.iter().map(|b| b.ts).collect::<Vec<_>>());
        assert_eq!(ts(j.chain("A", 5, 10)), Some(vec![6, 8, 10]));
        assert_eq!(ts(j.chain("A", 6, 8)), Some(vec![8]));
        assert_eq!(ts(j.chain("A", 8, 8)), Some(vec![]));
        // the later run's bar replaced the one never stored
        assert_eq!(ts(j.chain("A", 5, 9)), None);
        // a state before the journal's first bar: the bars between are missing
        assert_eq!(ts(j.chain("A", 4, 8)), None);
        assert_eq!(ts(j.chain("B", i64::MIN, 1)), Some(vec![1]));
        assert_eq!(ts(j.chain("C", 1, 2)), None);
        // bit for bit, NaN volume included
        let b = &j.chain("A", 5, 6).expect("chain")[0];
        assert_eq!(b.close.to_bits(), bar(6).close.to_bits());
        assert!(b.volume.is_nan());
        // a checkpoint starts the journal afresh
        w.restart();
        later.restart();
        assert_eq!(read_dir(d).records, 0);
    }

    #[test]
    fn a_torn_or_damaged_record_ends_the_reading() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let mut w = JournalWriter::new(d, 1, 0);
        for ts in 1..=3 {
            w.append("SYM", Some(ts - 1), &bar(ts));
        }
        w.flush();
        let p = d.join(format!("{PREFIX}{:013}-{:03}{SUFFIX}", 1, 0));
        let bytes = std::fs::read(&p).expect("read");
        let rec = bytes.len() / 3;
        // torn mid-record (a crash mid-append)
        std::fs::write(&p, &bytes[..bytes.len() - 5]).expect("write");
        let j = read_dir(d);
        assert_eq!(j.records, 2);
        assert!(j.chain("SYM", 0, 2).is_some());
        assert!(j.chain("SYM", 0, 3).is_none());
        // a flipped bit in the second record
        let mut bad = bytes.clone();
        bad[rec + 20] ^= 1;
        std::fs::write(&p, &bad).expect("write");
        assert_eq!(read_dir(d).records, 1);
    }
}
