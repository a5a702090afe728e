//! The store writer's spool: while the store refuses writes (database down, disk full on the
//! store's volume), rows acknowledged from the retry buffer are also appended here and
//! fsynced, so a `kill -9` during the outage loses nothing; at start the spool is read back
//! into the retry buffer and written once the store takes writes. Delivery is at-least-once:
//! a crash between a store commit and the spool's truncation writes those rows twice.
//!
//! Format: one JSON array per row, `[ts, symbol, regime_id, volatility, trend, structure,
//! confidence, p0..p7, model_version]`; a torn last line (crash mid-append) is skipped.

use crate::store::HistoryRow;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// An append-only, fsynced row file.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: Option<File>,
    /// The open file's (device, inode): see [`Spool::lost`].
    opened: Option<(u64, u64)>,
    /// Rows currently in the file.
    pub rows: usize,
}

/// A row as the spool writes it (a JSON array; also the unwritable rows' file).
pub fn encode(r: &HistoryRow) -> Value {
    json!([
        r.ts,
        r.symbol,
        r.regime_id,
        r.volatility,
        r.trend,
        r.structure,
        r.confidence,
        r.p_volatility[0],
        r.p_volatility[1],
        r.p_volatility[2],
        r.p_trend[0],
        r.p_trend[1],
        r.p_trend[2],
        r.p_structure[0],
        r.p_structure[1],
        r.model_version
    ])
}

fn decode(v: &Value) -> Option<HistoryRow> {
    let a = v.as_array()?;
    if a.len() != 16 {
        return None;
    }
    let f = |i: usize| a[i].as_f64();
    let u = |i: usize| a[i].as_u64().and_then(|x| u8::try_from(x).ok());
    let row = HistoryRow {
        ts: a[0].as_i64()?,
        symbol: a[1].as_str()?.to_string(),
        regime_id: u(2).filter(|x| *x < 18)?,
        volatility: u(3).filter(|x| *x < 3)?,
        trend: u(4).filter(|x| *x < 3)?,
        structure: u(5).filter(|x| *x < 2)?,
        confidence: f(6)?,
        p_volatility: [f(7)?, f(8)?, f(9)?],
        p_trend: [f(10)?, f(11)?, f(12)?],
        p_structure: [f(13)?, f(14)?],
        model_version: u32::try_from(a[15].as_u64()?).ok()?,
    };
    Some(row)
}

/// Whether the file of length `len` ends with a newline (an unreadable end counts as not).
fn ends_with_newline(f: &File, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut last = [0u8; 1];
    f.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n'
}

impl Spool {
    /// Open the spool at `path` and return the rows it holds (from an earlier run).
    pub fn open(path: &Path) -> io::Result<(Spool, Vec<HistoryRow>)> {
        let mut rows = Vec::new();
        let mut torn = 0usize;
        if path.exists() {
            // lines as bytes: a write torn inside a multi-byte character (a symbol such as
            // "日経") is a torn line like any other; read as text, it stopped the service's
            // start ("stream did not contain valid UTF-8") with every row there unwritten
            for line in BufReader::new(File::open(path)?).split(b'\n') {
                let line = line?;
                match serde_json::from_slice::<Value>(&line)
                    .ok()
                    .as_ref()
                    .and_then(decode)
                {
                    Some(r) => rows.push(r),
                    None => torn += 1,
                }
            }
        }
        if torn > 0 {
            tracing::warn!(target: "regime_server::store", "spool {}: {torn} unreadable line(s) skipped (torn write at a crash)", path.display());
        }
        let n = rows.len();
        Ok((
            Spool {
                path: path.to_path_buf(),
                file: None,
                opened: None,
                rows: n,
            },
            rows,
        ))
    }

    /// The spool's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the rows the spool held are gone from its path: the file removed (an operator
    /// freeing space during an outage) or another put in its place. The spool then starts
    /// afresh (no rows), and the caller appends every acknowledged row it still holds again:
    /// before, later rows went to the removed file (lost at a crash though acknowledged), and
    /// the earlier ones were not written again.
    pub fn lost(&mut self) -> bool {
        let gone = if self.file.is_some() {
            crate::io::file_id(&self.path) != self.opened
        } else {
            self.rows > 0 && !self.path.exists()
        };
        if gone {
            self.file = None;
            self.opened = None;
            self.rows = 0;
        }
        gone
    }

    /// Append rows and fsync; they survive a crash once this returns Ok.
    pub fn append(&mut self, rows: &[HistoryRow]) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // a spool file (or folder) created here has a name that is durable only once its
        // folder is synced: the rows it holds are acknowledged when this returns
        let (mut new_dir, mut new_file) = (None, false);
        // a torn last line (a crash mid-append, before this file was opened) stays a line
        // of its own: the first row appended now must not be glued to it, and lost with it
        // at the next read
        let mut torn = false;
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.exists() {
                    std::fs::create_dir_all(dir)?;
                    new_dir = Some(dir);
                }
            }
            new_file = !self.path.exists();
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&self.path)?;
            let len = f.metadata()?.len();
            torn = len > 0 && !ends_with_newline(&f, len);
            self.file = Some(f);
            self.opened = crate::io::file_id(&self.path);
        }
        let Some(f) = self.file.as_mut() else {
            return Err(io::Error::other("spool not open"));
        };
        let mut buf = Vec::with_capacity(rows.len() * 160 + 1);
        if torn {
            buf.push(b'\n');
        }
        // where a failed append is cut back to
        let len = f.metadata()?.len();
        for r in rows {
            serde_json::to_writer(&mut buf, &encode(r)).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        if let Err(e) = f.write_all(&buf).and_then(|()| f.sync_data()) {
            // a full disk may take part of the rows: cut them off again (the caller appends
            // them again later), and open the file afresh next time
            let _ = f.set_len(len);
            self.file = None;
            return Err(e);
        }
        if let Some(dir) = new_dir {
            crate::io::fsync_parent(dir);
        }
        if new_file {
            crate::io::fsync_parent(&self.path);
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Everything in the spool is in the store now: empty it.
    pub fn clear(&mut self) -> io::Result<()> {
        if self.rows == 0 && !self.path.exists() {
            return Ok(());
        }
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // make the removal itself durable
            crate::io::fsync_dir(dir);
        }
        self.rows = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spool's file removed while it holds rows (an operator freeing space during an
    /// outage): `lost` says so once and starts afresh, so that the writer appends every
    /// acknowledged row again; a spool whose file is in place is not lost.
    #[test]
    fn a_removed_spool_file_is_lost_once_and_written_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spool.jsonl");
        let rows = crate::store::tests::rows("S", 6, 1_000);
        let (mut sp, held) = Spool::open(&p).unwrap();
        assert!(held.is_empty());
        sp.append(&rows[..3]).unwrap();
        assert!(!sp.lost());
        std::fs::remove_file(&p).unwrap();
        assert!(sp.lost());
        assert_eq!(sp.rows, 0);
        assert!(!sp.lost(), "said once");
        sp.append(&rows).unwrap();
        let (_, back) = Spool::open(&p).unwrap();
        assert_eq!(back, rows);
        // rows read at a start, the file then removed before the first append
        let (mut sp, held) = Spool::open(&p).unwrap();
        assert_eq!(held.len(), 6);
        std::fs::remove_file(&p).unwrap();
        assert!(sp.lost());
    }

    #[test]
    fn round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d/spool.jsonl");
        let rows = crate::store::tests::rows("S", 5, 1_000);
        {
            let (mut s, old) = Spool::open(&p).unwrap();
            assert!(old.is_empty());
            s.append(&rows[..3]).unwrap();
            s.append(&rows[3..]).unwrap();
        }
        // a crash mid-append leaves half a line
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"[1700000000000,\"S\",3,0").unwrap();
        drop(f);
        let (mut s, back) = Spool::open(&p).unwrap();
        assert_eq!(back, rows, "every complete row comes back exactly");
        // rows appended after the torn line (the store still down after the restart) are
        // not glued to it
        let more = crate::store::tests::rows("S", 2, 9_000);
        s.append(&more).unwrap();
        drop(s);
        let (mut s, back) = Spool::open(&p).unwrap();
        assert_eq!(back.len(), rows.len() + more.len());
        assert_eq!(&back[rows.len()..], &more[..]);
        s.clear().unwrap();
        assert!(!p.exists());
        let (_, none) = Spool::open(&p).unwrap();
        assert!(none.is_empty());
    }

    /// A write torn inside a multi-byte character leaves bytes that are not UTF-8: a torn
    /// line, skipped, and every whole row before and after it read (it had stopped the
    /// service's start).
    #[test]
    fn a_line_torn_inside_a_character_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spool.jsonl");
        let rows = crate::store::tests::rows("日経", 3, 1_000);
        let (mut s, _) = Spool::open(&p).unwrap();
        s.append(&rows[..2]).unwrap();
        drop(s);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"[1700000000000,\"\xe6\x97").unwrap();
        drop(f);
        let (mut s, back) = Spool::open(&p).unwrap();
        assert_eq!(back, rows[..2]);
        s.append(&rows[2..]).unwrap();
        drop(s);
        let (_, back) = Spool::open(&p).unwrap();
        assert_eq!(back, rows);
    }
}
