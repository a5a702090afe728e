//! Each symbol's whole pipeline state, saved when the service stops and loaded when it
//! starts, so a restart resumes every symbol where it stopped: the labels after a restart
//! are the ones an uninterrupted run gives, where a fresh pipeline would learn each symbol
//! again from scratch (its first hundreds of bars warming up).
//!
//! A state is used only when it is certainly the state after the symbol's latest stored
//! bar: written by this very build (the layout is not self-describing), for this symbol,
//! with the settings now configured, and ending at the timestamp the store's newest row of
//! the symbol has. Anything else (a crash after more bars were stored, a restore, another
//! build, changed settings, a damaged file) starts the symbol fresh, with the reason logged.

use regime_core::pipeline::{PipelineConfig, SymbolPipeline};
use std::path::{Path, PathBuf};

/// What is saved of one symbol.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    /// [`build_id`] of the binary that wrote it.
    pub build: String,
    /// The symbol (file names fold some characters together).
    pub symbol: String,
    /// Timestamp of the last bar the pipeline took.
    pub last_ts: i64,
    /// When the current regime began, and its id (the current-regime answer's `since`).
    pub since_ts: i64,
    /// Current regime id.
    pub last_id: Option<u8>,
    /// The pipeline.
    pub pipe: SymbolPipeline,
}

/// This binary's identity: version, size and modification time of the executable. Any
/// rebuild changes it, so a state is never read by code with another layout.
pub fn build_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let meta = std::env::current_exe().and_then(std::fs::metadata);
        let (len, mtime) = match &meta {
            Ok(m) => (
                m.len(),
                m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            ),
            Err(_) => (0, 0),
        };
        format!("{} {len} {mtime}", env!("CARGO_PKG_VERSION"))
    })
}

/// The state file of `symbol` in `dir`.
pub fn path(dir: &Path, symbol: &str) -> PathBuf {
    dir.join(format!("{}.state", crate::commands::model_stem(symbol)))
}

/// Write one symbol's state (a temporary file renamed over the old one). Not synced file
/// by file: the caller syncs the folder once; a state lost to a power cut only means a
/// fresh start for that symbol (a damaged one is refused when read).
pub fn save(dir: &Path, s: &Saved) -> std::io::Result<()> {
    let bytes = postcard::to_stdvec(s).map_err(std::io::Error::other)?;
    let dest = path(dir, &s.symbol);
    let tmp = dir.join(format!(
        ".{}.state.tmp{}",
        crate::commands::model_stem(&s.symbol),
        std::process::id()
    ));
    let res = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &dest));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Load `symbol`'s state when it may be resumed: the store's newest row of the symbol is at
/// `stored_last` (None: none known). Err: why the symbol starts fresh (None: no file).
pub fn load(
    dir: &Path,
    symbol: &str,
    stored_last: Option<i64>,
    cfg: &PipelineConfig,
) -> Result<Saved, Option<String>> {
    let p = path(dir, symbol);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(None),
        Err(e) => return Err(Some(format!("{}: {e}", p.display()))),
    };
    let why = |m: String| Err(Some(format!("{}: {m}", p.display())));
    let s: Saved = match postcard::take_from_bytes::<Saved>(&bytes) {
        Ok((s, [])) => s,
        Ok(_) => return why("trailing bytes (damaged)".into()),
        Err(e) => return why(format!("unreadable ({e})")),
    };
    if s.build != build_id() {
        return why(format!(
            "written by another build ({}), this is {}",
            s.build,
            build_id()
        ));
    }
    if s.symbol != symbol {
        return why(format!("holds symbol {:?}", s.symbol));
    }
    if s.pipe.config() != cfg {
        return why("the pipeline settings changed since it was written".into());
    }
    if stored_last != Some(s.last_ts) {
        let stored = stored_last.map_or("none".into(), crate::io::format_timestamp);
        return why(format!(
            "it ends at {}, the store's newest row of the symbol is at {stored}",
            crate::io::format_timestamp(s.last_ts)
        ));
    }
    Ok(s)
}
