//! Backups and restores (SPEC §6, the manual's "Backup & Recovery"): `regime backup [NAME]`,
//! `regime restore NAME|latest`, `regime restore-to-time "YYYY-MM-DD HH:MM:SS"`.
//!
//! A backup is one folder `<storage.backup_dir>/<NAME>/` holding the table (`regime_history`
//! as a consistent SQLite snapshot, or PostgreSQL's binary `COPY` dump), the config file,
//! the model files, the application state (the spool of acknowledged rows not yet in the
//! store; each symbol's pipeline state and the bar journals, so a restored service resumes
//! its learning), the last day's logs, and `manifest.json`. It is written as `.NAME.partial` and
//! renamed when complete, so a listed backup is always whole. Backups run while the service
//! runs; restores need it stopped (`regime serve` holds `regime.lock` next to the spool).
//!
//! Every row carries the wall-clock time its transaction was written (`stored_at`), and the
//! table is append-only between restores, so the table's state at time T is exactly the rows
//! with `stored_at <= T` — of the live table when no restore happened since T, otherwise of
//! the earliest backup taken after T with no restore in between. Each restore first takes a
//! `before-restore-…` backup of the current state: nothing stored is lost by a restore.

use crate::config::{Config, StorageKind};
use crate::io::fsync_dir;
use crate::store::{self, Store, StoreError, LAST_RESTORE_AT};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Folder of the pipeline states and bar journals in a backup.
const STATES: &str = "state/pipelines";

/// A symbol's saved pipeline state or a bar journal (not a temporary file being written).
fn pipeline_state_file(f: &Path) -> bool {
    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && (name.ends_with(".state") || crate::journal::is_journal(f))
}

/// File name of the embedded table in a backup.
const TABLE_SQLITE: &str = "regime_history.sqlite";
/// File name of the PostgreSQL dump in a backup.
const TABLE_PGCOPY: &str = "regime_history.pgcopy";
/// Logs modified within this many seconds go into a backup.
const RECENT_LOGS_SECS: u64 = 24 * 3600;

/// Backup and restore failures; each names what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bad backup name.
    #[error("backup name {0:?}: use letters, digits, '_', '-' and '.', not starting with '.'")]
    BadName(String),
    /// The backup exists already.
    #[error("backup {0} exists already")]
    Exists(String),
    /// No such backup.
    #[error("no backup {name} in {dir}")]
    NotFound {
        /// Requested name.
        name: String,
        /// Backup folder.
        dir: String,
    },
    /// The service holds the lock.
    #[error(
        "the service is running ({0} is locked): stop it first (systemctl stop adaptive_regime)"
    )]
    Running(String),
    /// A bad time argument.
    #[error("time {0:?}: expected \"YYYY-MM-DD HH:MM:SS\" (UTC)")]
    BadTime(String),
    /// A time after now.
    #[error("time {0} is in the future")]
    Future(String),
    /// No source holds the state at that time.
    #[error("{0}")]
    NotCovered(String),
    /// A backup whose files are not what its manifest says (missing, another size or
    /// checksum, a table that fails its store's check): nothing was changed.
    #[error("backup {name} is damaged: {reason}; nothing was changed (restore another backup: ls {dir})")]
    Damaged {
        /// The backup.
        name: String,
        /// What is wrong, naming the file.
        reason: String,
        /// The backup folder.
        dir: String,
    },
    /// The backup of the current state a restore takes first could not be written (its
    /// disk full, its folder not writable): the restore stopped before changing anything.
    #[error("nothing was restored or changed: the before-restore backup of the current state failed: {0}")]
    SafetyBackup(#[source] Box<BackupError>),
    /// A manifest that does not parse.
    #[error("{path}: bad manifest: {reason}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// Why.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The refused rows' file in a backup's `state/` (see [`crate::engine::unwritable_path`]).
const UNWRITABLE: &str = "unwritable.jsonl";

/// What a backup holds (`manifest.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Backup name (its folder).
    pub name: String,
    /// When it was taken (ms since the epoch, UTC).
    pub created_at_ms: i64,
    /// The same, readable.
    pub created_at: String,
    /// `embedded` or `postgres`.
    pub store: String,
    /// Rows of `regime_history` in the backup.
    pub rows: u64,
    /// The table's last restore before this backup (ms), if any: a backup can serve a
    /// point-in-time restore to T only when no restore happened between T and the backup.
    pub last_restore_at_ms: Option<i64>,
    /// The config file it holds (name in `config/`), if one was given.
    pub config_file: Option<String>,
    /// Every file, relative to the backup folder, with its size in bytes.
    pub files: Vec<(String, u64)>,
    /// Every file's CRC-32 (IEEE), in the order of `files`; empty in backups written before
    /// these were kept (their sizes are checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crc32: Vec<u32>,
    /// Set on the automatic backup a restore takes when the live table could not be read
    /// (what SQLite said): its table file is copied as found, for recovery by hand
    /// (`sqlite3 … .recover`), and the backup is not restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
    /// Version of `regime` that wrote it.
    pub version: String,
}

/// Where the service's lock lives: `regime.lock` beside the spool (`./data` by default).
pub fn lock_path(cfg: &Config) -> PathBuf {
    cfg.storage
        .spool_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("regime.lock")
}

/// Take the service lock (held for the life of the returned file). `Err(Running)` when
/// another process holds it.
pub fn lock(cfg: &Config) -> Result<File, BackupError> {
    let p = lock_path(cfg);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io_err(&p))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(fs::TryLockError::WouldBlock) => Err(BackupError::Running(p.display().to_string())),
        Err(fs::TryLockError::Error(e)) => Err(io_err(&p)(e)),
    }
}

fn check_name(name: &str) -> Result<(), BackupError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name != "latest"
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BackupError::BadName(name.to_string()))
    }
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Parse `"YYYY-MM-DD HH:MM:SS"` (or with `T`), UTC, to ms since the epoch.
pub fn parse_time(s: &str) -> Result<i64, BackupError> {
    let t = s.trim();
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
    .map(|n| n.and_utc().timestamp_millis())
    .ok_or_else(|| BackupError::BadTime(s.to_string()))
}

/// Copy one file and fsync the copy; returns its size.
fn copy_file(from: &Path, to: &Path) -> Result<u64, BackupError> {
    if let Some(d) = to.parent() {
        fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let n = fs::copy(from, to).map_err(io_err(from))?;
    File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(io_err(to))?;
    Ok(n)
}

/// The entries of `dir` (none if it does not exist).
fn entries(dir: &Path) -> Result<Vec<fs::DirEntry>, BackupError> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.map_err(io_err(dir))).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Regular files directly in `dir` (none if it does not exist).
fn files_in(dir: &Path) -> Result<Vec<PathBuf>, BackupError> {
    let mut out = Vec::new();
    for e in entries(dir)? {
        if e.file_type().map_err(io_err(&e.path()))?.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Write a backup of everything the service keeps; returns its manifest. `config_file` is
/// the service's config file (none when it runs on defaults).
pub fn create(
    cfg: &Config,
    config_file: Option<&Path>,
    name: Option<&str>,
) -> Result<Manifest, BackupError> {
    create_with(cfg, config_file, name, false)
}

/// [`create`]; `as_found`: an embedded table SQLite reports damaged is copied as its files
/// are (see [`Manifest::damaged`]) instead of failing the backup — for the backup a restore
/// takes of the state it replaces, so that a damaged store can be replaced by a good backup.
fn create_with(
    cfg: &Config,
    config_file: Option<&Path>,
    name: Option<&str>,
    as_found: bool,
) -> Result<Manifest, BackupError> {
    store::require_store(&cfg.storage, "back up")?;
    let now = store::now_ms();
    let name = match name {
        Some(n) => n.to_string(),
        None => chrono::DateTime::from_timestamp_millis(now)
            .map(|t| t.format("%Y%m%d_%H%M%S").to_string())
            .unwrap_or_else(|| now.to_string()),
    };
    check_name(&name)?;
    let root = &cfg.storage.backup_dir;
    fs::create_dir_all(root).map_err(io_err(root))?;
    let dest = root.join(&name);
    if dest.exists() {
        return Err(BackupError::Exists(dest.display().to_string()));
    }
    let tmp = root.join(format!(".{name}.partial"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let result = write_backup(cfg, config_file, &name, now, &tmp, as_found);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    fsync_dir(root);
    Ok(manifest)
}

fn write_backup(
    cfg: &Config,
    config_file: Option<&Path>,
    name: &str,
    now: i64,
    tmp: &Path,
    as_found: bool,
) -> Result<Manifest, BackupError> {
    let mut files: Vec<(String, u64)> = Vec::new();
    let mut damaged = None;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    // 0. application state: acknowledged rows waiting in the spool — copied before the
    // table: the running service empties the spool once its rows are in the store, so a
    // copy taken after the table's snapshot could miss rows written between the two (in
    // neither); copied first, rows written meanwhile are in both, and a start drops the
    // spooled rows the table holds
    let spool = &cfg.storage.spool_path;
    if spool.is_file() && size(spool) > 0 {
        let rel = format!(
            "state/{}",
            spool.file_name().unwrap_or_default().to_string_lossy()
        );
        files.push((rel.clone(), copy_file(spool, &tmp.join(&rel))?));
    }
    // acknowledged rows the store refused as data (kept for an operator to see to): a host
    // lost with them lost the only copy
    let unwritable = crate::engine::unwritable_path(&cfg.storage);
    if unwritable.is_file() && size(&unwritable) > 0 {
        let rel = format!("state/{UNWRITABLE}");
        files.push((rel.clone(), copy_file(&unwritable, &tmp.join(&rel))?));
    }
    // 1. the table, from one consistent snapshot
    let (rows, last_restore) = match cfg.storage.kind {
        StorageKind::Embedded => {
            let p = tmp.join(TABLE_SQLITE);
            let snapshot = || -> Result<(u64, Option<i64>), StoreError> {
                let mut s = store::Embedded::open(&cfg.storage.path)?;
                let last = s.meta(LAST_RESTORE_AT)?;
                Ok((s.snapshot_to(&p)?, last))
            };
            match snapshot() {
                Ok((rows, last)) => {
                    File::open(&p)
                        .and_then(|f| f.sync_all())
                        .map_err(io_err(&p))?;
                    files.push((TABLE_SQLITE.into(), size(&p)));
                    (rows, last)
                }
                Err(e) if as_found && e.is_damage() => {
                    // the file and its write-ahead log as they are
                    let _ = fs::remove_file(&p);
                    for ext in ["", "-wal"] {
                        let from = PathBuf::from(format!("{}{ext}", cfg.storage.path.display()));
                        if from.is_file() {
                            let rel = format!("{TABLE_SQLITE}{ext}");
                            files.push((rel.clone(), copy_file(&from, &tmp.join(&rel))?));
                        }
                    }
                    damaged = Some(e.to_string());
                    (0, None)
                }
                Err(e) => return Err(e.into()),
            }
        }
        StorageKind::Postgres => {
            let mut s = store::Pg::connect(&cfg.storage.url)?;
            let last = s.meta(LAST_RESTORE_AT)?;
            let p = tmp.join(TABLE_PGCOPY);
            let f = File::create(&p).map_err(io_err(&p))?;
            let mut w = BufWriter::new(f);
            let rows = s.dump(&mut w)?;
            let f = w.into_inner().map_err(|e| io_err(&p)(e.into_error()))?;
            f.sync_all().map_err(io_err(&p))?;
            files.push((TABLE_PGCOPY.into(), size(&p)));
            (rows, last)
        }
    };
    // 2. the config file
    let mut config_name = None;
    if let Some(c) = config_file {
        let n = c
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.yaml".into());
        let rel = format!("config/{n}");
        files.push((rel.clone(), copy_file(c, &tmp.join(&rel))?));
        config_name = Some(n);
    }
    // 3. model files
    for f in files_in(&cfg.regime.models_dir)? {
        let rel = format!(
            "models/{}",
            f.file_name().unwrap_or_default().to_string_lossy()
        );
        files.push((rel.clone(), copy_file(&f, &tmp.join(&rel))?));
    }
    // 4. pipeline states and bar journals, after the table: a state at or before the table's
    // newest row of its symbol catches up from the journals at start. Journals first: a
    // checkpoint between the two copies leaves newer states, which the journals copied
    // before it still cover. A file the service removes meanwhile (a journal after a
    // checkpoint) is skipped.
    let sdir = cfg.state_dir();
    let (journals, states): (Vec<PathBuf>, Vec<PathBuf>) = files_in(&sdir)?
        .into_iter()
        .filter(|f| pipeline_state_file(f))
        .partition(|f| f.extension().is_none_or(|e| e != "state"));
    for f in journals.iter().chain(&states) {
        let rel = format!(
            "{STATES}/{}",
            f.file_name().unwrap_or_default().to_string_lossy()
        );
        match copy_file(f, &tmp.join(&rel)) {
            Ok(n) => files.push((rel, n)),
            Err(BackupError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // 5. recent logs
    let recent = std::time::Duration::from_secs(RECENT_LOGS_SECS);
    for f in files_in(&cfg.logging.dir)? {
        let fresh = fs::metadata(&f)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age <= recent);
        if fresh {
            let rel = format!(
                "logs/{}",
                f.file_name().unwrap_or_default().to_string_lossy()
            );
            files.push((rel.clone(), copy_file(&f, &tmp.join(&rel))?));
        }
    }
    let crc32 = files
        .iter()
        .map(|(rel, _)| crc32_of(&tmp.join(rel)))
        .collect::<Result<_, _>>()?;
    let manifest = Manifest {
        name: name.to_string(),
        created_at_ms: now,
        created_at: fmt_ms(now),
        store: match cfg.storage.kind {
            StorageKind::Embedded => "embedded".into(),
            StorageKind::Postgres => "postgres".into(),
        },
        rows,
        last_restore_at_ms: last_restore,
        config_file: config_name,
        files,
        crc32,
        damaged,
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let p = tmp.join("manifest.json");
    let mut f = File::create(&p).map_err(io_err(&p))?;
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| BackupError::Manifest {
        path: p.display().to_string(),
        reason: e.to_string(),
    })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io_err(&p))?;
    fsync_dir(tmp);
    Ok(manifest)
}

fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let p = dir.join("manifest.json");
    let text = fs::read_to_string(&p).map_err(io_err(&p))?;
    serde_json::from_str(&text).map_err(|e| BackupError::Manifest {
        path: p.display().to_string(),
        reason: e.to_string(),
    })
}

/// Every complete backup in `storage.backup_dir`, oldest first.
pub fn list(cfg: &Config) -> Result<Vec<(PathBuf, Manifest)>, BackupError> {
    let mut out = Vec::new();
    for e in entries(&cfg.storage.backup_dir)? {
        let p = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if hidden || !p.join("manifest.json").is_file() {
            continue;
        }
        out.push((p.clone(), read_manifest(&p)?));
    }
    out.sort_by_key(|(_, m)| m.created_at_ms);
    Ok(out)
}

fn find(cfg: &Config, name: &str) -> Result<(PathBuf, Manifest), BackupError> {
    let all = list(cfg)?;
    // `latest` is the newest backup an operator or the schedule took, not the automatic
    // copy of the state a restore replaced (restore that one by name to undo a restore)
    let hit = if name == "latest" {
        all.into_iter()
            .rfind(|(_, m)| !m.name.starts_with(SAFETY_PREFIX))
    } else {
        all.into_iter().find(|(_, m)| m.name == name)
    };
    hit.ok_or_else(|| BackupError::NotFound {
        name: name.to_string(),
        dir: cfg.storage.backup_dir.display().to_string(),
    })
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The backup restored from (None: the live table was rewound).
    pub from: Option<String>,
    /// The safety backup of the state before the restore.
    pub safety: String,
    /// Why the live table could not be read, when the safety backup holds it as found.
    pub safety_damaged: Option<String>,
    /// Rows in the table afterwards.
    pub rows: u64,
    /// Rows a point-in-time restore removed (stored after the target time).
    pub removed: u64,
    /// Model files restored.
    pub models: usize,
    /// Symbol pipeline states restored.
    pub states: usize,
    /// Config file written (path), if any.
    pub config: Option<PathBuf>,
    /// Rows of the spool a point-in-time restore set aside (kept in the safety backup).
    pub spool_set_aside: usize,
}

/// CRC-32 of a file's bytes.
fn crc32_of(path: &Path) -> Result<u32, BackupError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match io::Read::read(&mut f, &mut buf) {
            Ok(0) => return Ok(h.finalize()),
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
}

/// Check a backup whole before a restore changes anything: every file its manifest lists
/// present, of its size and (when the manifest keeps them) its CRC-32, or else an embedded
/// table passing SQLite's `quick_check` with the manifest's row count. A bit flipped in a
/// backup's table had been restored as the live store (`integrity_check`: "Rowid 879 out of
/// order"), which the service would then have run on.
fn verify(cfg: &Config, dir: &Path, m: &Manifest) -> Result<(), BackupError> {
    let damaged = |reason: String| BackupError::Damaged {
        name: m.name.clone(),
        reason,
        dir: cfg.storage.backup_dir.display().to_string(),
    };
    if let Some(why) = &m.damaged {
        return Err(damaged(format!(
            "it holds a table copied as found when a restore replaced it ({why}), for recovery by hand"
        )));
    }
    for (i, (rel, size)) in m.files.iter().enumerate() {
        let p = dir.join(rel);
        let len = match fs::metadata(&p) {
            Ok(md) => md.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(damaged(format!("{rel} is missing")))
            }
            Err(e) => return Err(io_err(&p)(e)),
        };
        if len != *size {
            return Err(damaged(format!(
                "{rel} holds {len} bytes, its manifest says {size}"
            )));
        }
        if let Some(want) = m.crc32.get(i) {
            if crc32_of(&p)? != *want {
                return Err(damaged(format!(
                    "{rel} has changed since the backup was written (CRC-32)"
                )));
            }
        }
    }
    // with checksums the table is bit for bit the snapshot `VACUUM INTO` wrote from a
    // readable store: SQLite's check would read it a second time to learn nothing more.
    // Without them (backups from before they were kept) it is what catches damage.
    if m.store == "embedded" && m.crc32.is_empty() {
        let p = dir.join(TABLE_SQLITE);
        let problems = crate::store::quick_check(&p, 3)
            .map_err(|e| damaged(format!("{TABLE_SQLITE}: {e}")))?;
        if !problems.is_empty() {
            return Err(damaged(format!(
                "{TABLE_SQLITE} fails SQLite's check: {}",
                problems.join("; ")
            )));
        }
        let count = || -> rusqlite::Result<u64> {
            let c = rusqlite::Connection::open_with_flags(
                &p,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            let rows: i64 = c.query_row("SELECT count(*) FROM regime_history", [], |r| r.get(0))?;
            Ok(u64::try_from(rows).unwrap_or(0))
        };
        match count() {
            Ok(rows) if rows != m.rows => {
                return Err(damaged(format!(
                    "{TABLE_SQLITE} holds {rows} rows, its manifest says {}",
                    m.rows
                )))
            }
            Ok(_) => {}
            Err(e) => return Err(damaged(format!("{TABLE_SQLITE}: {e}"))),
        }
    }
    Ok(())
}

/// Put a backup's table in place of the live one (the service is stopped).
fn restore_table(cfg: &Config, dir: &Path, m: &Manifest, now: i64) -> Result<(), BackupError> {
    match (&cfg.storage.kind, m.store.as_str()) {
        (StorageKind::Embedded, "embedded") => {
            let db = &cfg.storage.path;
            if let Some(d) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(d).map_err(io_err(d))?;
            }
            let staged = PathBuf::from(format!("{}.restore-tmp", db.display()));
            copy_file(&dir.join(TABLE_SQLITE), &staged)?;
            // the live file's WAL belongs to the old contents: drop it with the file (the
            // safety backup taken before holds everything they had)
            for ext in ["-wal", "-shm"] {
                let p = PathBuf::from(format!("{}{ext}", db.display()));
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&p)(e)),
                }
            }
            fs::rename(&staged, db).map_err(io_err(db))?;
            if let Some(d) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
                fsync_dir(d);
            }
            store::Embedded::open(db)?.record_restore(now)?;
            Ok(())
        }
        (StorageKind::Postgres, "postgres") => {
            let p = dir.join(TABLE_PGCOPY);
            let f = File::open(&p).map_err(io_err(&p))?;
            let mut s = store::Pg::connect(&cfg.storage.url)?;
            s.load(&mut BufReader::new(f), now)?;
            Ok(())
        }
        (_, other) => Err(BackupError::NotCovered(format!(
            "backup {} holds a {other} table; the configured store is {:?} (use `regime export` \
             and a load instead)",
            m.name, cfg.storage.kind
        ))),
    }
}

fn count_rows(cfg: &Config) -> Result<u64, BackupError> {
    Ok(store::open(&cfg.storage, store::Role::Reader)?
        .stats()?
        .rows)
}

/// `regime restore NAME|latest`: the table, model files, config and spool of a backup
/// replace the current ones (the service must be stopped). The current state is first
/// saved as a `before-restore-…` backup. `config_file`: where to write the backup's config.
pub fn restore(
    cfg: &Config,
    config_file: Option<&Path>,
    name: &str,
) -> Result<Restored, BackupError> {
    let _lock = lock(cfg)?;
    let (dir, m) = find(cfg, name)?;
    verify(cfg, &dir, &m)?;
    let now = store::now_ms();
    let safety = create_with(cfg, config_file, Some(&safety_name(now)), true)
        .map_err(|e| BackupError::SafetyBackup(Box::new(e)))?;
    restore_table(cfg, &dir, &m, now)?;
    // model files: exactly the backup's set
    let models_dir = &cfg.regime.models_dir;
    for f in files_in(models_dir)? {
        fs::remove_file(&f).map_err(io_err(&f))?;
    }
    let mut models = 0;
    for f in files_in(&dir.join("models"))? {
        copy_file(&f, &models_dir.join(f.file_name().unwrap_or_default()))?;
        models += 1;
    }
    // pipeline states and bar journals: exactly the backup's set (a backup without them
    // leaves none, and every symbol learns afresh)
    let sdir = cfg.state_dir();
    for f in files_in(&sdir)?
        .into_iter()
        .filter(|f| pipeline_state_file(f))
    {
        fs::remove_file(&f).map_err(io_err(&f))?;
    }
    let mut states = 0;
    for f in files_in(&dir.join(STATES))? {
        copy_file(&f, &sdir.join(f.file_name().unwrap_or_default()))?;
        states += usize::from(f.extension().is_some_and(|e| e == "state"));
    }
    // the spool: acknowledged rows of that moment not yet stored then
    let spool = &cfg.storage.spool_path;
    let saved = dir
        .join("state")
        .join(spool.file_name().unwrap_or_default());
    if saved.is_file() {
        copy_file(&saved, spool)?;
    } else if spool.exists() {
        fs::remove_file(spool).map_err(io_err(spool))?;
    }
    // the refused rows: a record, not state — one here is kept as it is (it holds at least
    // the backup's, or an operator has seen to them); restored where there is none (a new
    // host)
    let unwritable = crate::engine::unwritable_path(&cfg.storage);
    let saved = dir.join("state").join(UNWRITABLE);
    if saved.is_file() && !unwritable.exists() {
        copy_file(&saved, &unwritable)?;
    }
    // the config file, written atomically where the service reads it
    let mut config = None;
    if let (Some(target), Some(n)) = (config_file, &m.config_file) {
        let staged = PathBuf::from(format!("{}.restore-tmp", target.display()));
        copy_file(&dir.join("config").join(n), &staged)?;
        fs::rename(&staged, target).map_err(io_err(target))?;
        config = Some(target.to_path_buf());
    }
    Ok(Restored {
        from: Some(m.name),
        safety: safety.name,
        safety_damaged: safety.damaged,
        rows: count_rows(cfg)?,
        removed: 0,
        models,
        states,
        config,
        spool_set_aside: 0,
    })
}

/// Name prefix of the automatic backups restores take of the state they replace.
pub const SAFETY_PREFIX: &str = "before-restore-";

fn safety_name(now: i64) -> String {
    chrono::DateTime::from_timestamp_millis(now)
        .map(|t| format!("{SAFETY_PREFIX}{}", t.format("%Y%m%d_%H%M%S_%3f")))
        .unwrap_or_else(|| format!("{SAFETY_PREFIX}{now}"))
}

/// `regime restore-to-time T`: return the table to exactly its state at `t` (ms, UTC): the
/// rows stored at or before `t`. Model files and config are left as they are.
pub fn restore_to_time(cfg: &Config, t: i64) -> Result<Restored, BackupError> {
    store::require_store(&cfg.storage, "return to a past time")?;
    let _lock = lock(cfg)?;
    let now = store::now_ms();
    if t > now {
        return Err(BackupError::Future(fmt_ms(t)));
    }
    let last = store::open(&cfg.storage, store::Role::Writer)?.meta(LAST_RESTORE_AT)?;
    // the source: the live table when it has only grown since t, else a backup taken after t
    // with no restore between t and it
    let source = match last {
        Some(l) if l > t => {
            let all = list(cfg)?;
            let hit = all.into_iter().find(|(_, m)| {
                // a table kept as found when a restore replaced it holds no known state
                m.damaged.is_none()
                    && m.created_at_ms >= t
                    && m.last_restore_at_ms.is_none_or(|r| r <= t)
            });
            match hit {
                Some(h) => Some(h),
                None => {
                    return Err(BackupError::NotCovered(format!(
                        "the table was restored at {} (after {}), and no backup was taken between \
                         {} and that restore: its state at that time is not kept anywhere",
                        fmt_ms(l),
                        fmt_ms(t),
                        fmt_ms(t)
                    )))
                }
            }
        }
        _ => None,
    };
    if let Some((dir, m)) = &source {
        verify(cfg, dir, m)?;
    }
    let safety = create_with(cfg, None, Some(&safety_name(now)), true)
        .map_err(|e| BackupError::SafetyBackup(Box::new(e)))?;
    if let Some((dir, m)) = &source {
        restore_table(cfg, dir, m, now)?;
    }
    let removed = store::open(&cfg.storage, store::Role::Writer)?.rewind(t, now)?;
    // rows acknowledged during an outage and still in the spool were not in the table at t:
    // written at the next start, they would leave it otherwise than it was (they are in the
    // safety backup, which a restore of it puts back)
    let spool = &cfg.storage.spool_path;
    let spool_set_aside = match fs::read_to_string(spool) {
        Ok(text) => {
            fs::remove_file(spool).map_err(io_err(spool))?;
            text.lines().filter(|l| !l.trim().is_empty()).count()
        }
        Err(_) => 0,
    };
    Ok(Restored {
        from: source.map(|(_, m)| m.name),
        safety: safety.name,
        safety_damaged: safety.damaged,
        rows: count_rows(cfg)?,
        removed,
        models: 0,
        states: 0,
        config: None,
        spool_set_aside,
    })
}
