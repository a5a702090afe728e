//! Logs (SPEC §6): `system.log`, `error.log`, `performance.log` and `features.log` in
//! `logging.dir`, rotated daily or past `logging.max_file_bytes`, compressed with gzip, and
//! deleted after `logging.keep_days`. Levels (global and per component) reload on SIGHUP.

use crate::config::LoggingConfig;
use crate::state::LogControl;
use flate2::write::GzEncoder;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tracing_subscriber::filter::{filter_fn, EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, Layer};

/// Target of the periodic performance lines.
pub const PERF_TARGET: &str = "regime_server::perf";
/// Target of the periodic feature/boundary lines.
pub const FEATURES_TARGET: &str = "regime_server::features";

/// A log file that rotates itself.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: Duration,
    inner: Mutex<Option<(File, u64, String)>>,
    /// When the path was last checked to still name the open file (Unix seconds).
    checked: std::sync::atomic::AtomicU64,
}

fn today() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}

impl RotatingFile {
    /// Open (append) `dir/name`.
    pub fn open(dir: &Path, name: &str, max_bytes: u64, keep_days: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let f = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = f.metadata()?.len();
        Ok(RotatingFile {
            path,
            max_bytes,
            keep: Duration::from_secs(keep_days * 86_400),
            inner: Mutex::new(Some((f, size, today()))),
            checked: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Whether the path no longer names the open file: an operator removed it to free space
    /// (its blocks then stay taken, and every later line goes where nobody can read it) or
    /// moved it, or the whole folder. Checked at most once a second.
    fn replaced(&self, f: &File) -> bool {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.checked.swap(now, std::sync::atomic::Ordering::Relaxed) == now {
            return false;
        }
        // an open file whose identity cannot be read is kept
        f.metadata()
            .is_ok_and(|o| crate::io::file_id(&self.path) != Some(crate::io::metadata_id(&o)))
    }

    /// Open the path afresh (its folder too), after [`RotatingFile::replaced`].
    fn reopen(&self, slot: &mut Option<(File, u64, String)>) -> io::Result<()> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let size = f.metadata()?.len();
        *slot = Some((f, size, today()));
        Ok(())
    }

    fn rotate(&self, slot: &mut Option<(File, u64, String)>) -> io::Result<()> {
        if let Some((f, _, _)) = slot.take() {
            let _ = f.sync_all();
        }
        // the sequence number keeps two rotations within one millisecond apart
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S%.3f").to_string();
        let rotated = PathBuf::from(format!("{}.{stamp}-{seq}", self.path.display()));
        fs::rename(&self.path, &rotated)?;
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        *slot = Some((f, 0, today()));
        let keep = self.keep;
        let dir = self
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        // compress off the logging path
        std::thread::spawn(move || {
            if let Err(e) = gzip_and_remove(&rotated) {
                eprintln!("log rotation: compressing {}: {e}", rotated.display());
            }
            prune(&dir, keep);
        });
        Ok(())
    }
}

fn gzip_and_remove(path: &Path) -> io::Result<()> {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let part = PathBuf::from(format!("{}.gz.part", path.display()));
    let mut input = File::open(path)?;
    let out = File::create(&part)?;
    let mut enc = GzEncoder::new(out, flate2::Compression::default());
    io::copy(&mut input, &mut enc)?;
    enc.finish()?.sync_all()?;
    // only complete archives carry the .gz name
    fs::rename(&part, &gz)?;
    fs::remove_file(path)
}

/// Delete compressed logs older than `keep`.
fn prune(dir: &Path, keep: Duration) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let now = SystemTime::now();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("gz") {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > keep);
        if old {
            let _ = fs::remove_file(&p);
        }
    }
}

impl Write for &RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("log file lock poisoned"))?;
        if g.as_ref().is_some_and(|(f, _, _)| self.replaced(f)) {
            if let Err(e) = self.reopen(&mut g) {
                eprintln!(
                    "log file {} removed; reopening it: {e}",
                    self.path.display()
                );
            }
        }
        let due = match g.as_ref() {
            Some((_, size, day)) => *size + buf.len() as u64 > self.max_bytes || *day != today(),
            None => true,
        };
        if due {
            if let Err(e) = self.rotate(&mut g) {
                eprintln!("log rotation of {}: {e}", self.path.display());
                if g.is_none() {
                    *g = Some((
                        OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&self.path)?,
                        0,
                        today(),
                    ));
                }
            }
        }
        let Some((f, size, _)) = g.as_mut() else {
            return Ok(buf.len());
        };
        f.write_all(buf)?;
        *size += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.inner.lock() {
            Ok(mut g) => match g.as_mut() {
                Some((f, _, _)) => f.flush(),
                None => Ok(()),
            },
            Err(_) => Ok(()),
        }
    }
}

/// The filter directive for a logging config (`level,target=level,…`), with the perf and
/// features targets kept at info so their files fill whatever the global level.
pub fn directives(cfg: &LoggingConfig, debug: bool) -> String {
    let mut d = vec![if debug {
        "debug".to_string()
    } else {
        cfg.level.clone()
    }];
    d.push(format!("{PERF_TARGET}=info"));
    d.push(format!("{FEATURES_TARGET}=info"));
    // dependencies stay quiet unless asked for by name
    for noisy in ["hyper", "tower", "h2", "tokio_postgres", "postgres"] {
        d.push(format!("{noisy}=warn"));
    }
    for (k, v) in &cfg.components {
        d.push(format!("{k}={v}"));
    }
    d.join(",")
}

/// Install the global subscriber: stderr plus the four files. Returns the level control used
/// by SIGHUP and `/debug/enable`.
pub fn init(cfg: &LoggingConfig) -> io::Result<LogControl> {
    let dir = &cfg.dir;
    let f = |name: &str| -> io::Result<Arc<RotatingFile>> {
        Ok(Arc::new(RotatingFile::open(
            dir,
            name,
            cfg.max_file_bytes,
            cfg.keep_days,
        )?))
    };
    let system = f("system.log")?;
    let error = f("error.log")?;
    let perf = f("performance.log")?;
    let feats = f("features.log")?;
    let filter = EnvFilter::try_new(directives(cfg, false))
        .map_err(|e| io::Error::other(format!("logging levels: {e}")))?;
    let (filter, handle) = reload::Layer::new(filter);
    let not_periodic = filter_fn(|m| m.target() != PERF_TARGET && m.target() != FEATURES_TARGET);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_writer(io::stderr)
                .with_filter(not_periodic.clone()),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(system)
                .with_filter(not_periodic),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(error)
                .with_filter(LevelFilter::WARN),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(perf)
                .with_filter(filter_fn(|m| m.target() == PERF_TARGET)),
        )
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(feats)
                .with_filter(filter_fn(|m| m.target() == FEATURES_TARGET)),
        )
        .try_init()
        .map_err(|e| io::Error::other(format!("logging already initialised: {e}")))?;
    Ok(Arc::new(move |cfg: &LoggingConfig, debug: bool| {
        let f = EnvFilter::try_new(directives(cfg, debug)).map_err(|e| e.to_string())?;
        handle.reload(f).map_err(|e| e.to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A log file removed (to free space) or its folder moved away is opened afresh within a
    /// second: the lines after it are where an operator looks. Before, they went to the
    /// removed file, whose blocks stayed taken.
    #[test]
    fn a_removed_log_file_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let rf = RotatingFile::open(&logs, "error.log", 1 << 20, 30).unwrap();
        let mut w = &rf;
        w.write_all(b"before\n").unwrap();
        fs::remove_file(logs.join("error.log")).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        w.write_all(b"after removal\n").unwrap();
        assert_eq!(
            fs::read_to_string(logs.join("error.log")).unwrap(),
            "after removal\n"
        );
        fs::rename(&logs, dir.path().join("logs.old")).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        w.write_all(b"after the folder moved\n").unwrap();
        assert_eq!(
            fs::read_to_string(logs.join("error.log")).unwrap(),
            "after the folder moved\n"
        );
    }

    #[test]
    fn rotates_and_compresses() {
        let dir = tempfile::tempdir().unwrap();
        let rf = RotatingFile::open(dir.path(), "system.log", 100, 30).unwrap();
        let mut w = &rf;
        for i in 0..10 {
            // one write per line, as the fmt layer does
            w.write_all(format!("line {i:03} of the log, about thirty\n").as_bytes())
                .unwrap();
        }
        // wait for the background compression of the rotated files
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let gz = loop {
            let gz: Vec<PathBuf> = fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "gz"))
                .collect();
            let plain_rotated = fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.starts_with("system.log.") && !n.ends_with(".gz")
                })
                .count();
            if (gz.len() >= 3 && plain_rotated == 0) || std::time::Instant::now() > deadline {
                break gz;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(gz.len() >= 3, "rotated files compressed: {gz:?}");
        let mut s = String::new();
        flate2::read::GzDecoder::new(File::open(&gz[0]).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        assert!(s.starts_with("line "), "compressed content readable: {s:?}");
        let live = fs::read_to_string(dir.path().join("system.log")).unwrap();
        assert!(live.len() <= 100 && live.contains("line 009"));
    }

    #[test]
    fn directives_include_components() {
        let mut c = crate::config::Config::default().logging;
        c.components
            .insert("regime_server::store".into(), "debug".into());
        let d = directives(&c, false);
        assert!(d.starts_with("info,"));
        assert!(d.contains("regime_server::store=debug"));
        assert!(directives(&c, true).starts_with("debug,"));
        assert!(EnvFilter::try_new(d).is_ok());
    }
}
