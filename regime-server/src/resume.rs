//! Each symbol's whole pipeline state, saved when the service stops and loaded when it
//! starts, so a restart resumes every symbol where it stopped: the labels after a restart
//! are the ones an uninterrupted run gives, where a fresh pipeline would learn each symbol
//! again from scratch (its first hundreds of bars warming up).
//!
//! States are also saved while the service runs (every `regime.state_checkpoint_secs`), and
//! the bars since go to the bar journal ([`crate::journal`]), so a crash loses no learning
//! either: at start a state that ends before the store's newest row is brought up to it by
//! replaying the journaled bars after it.
//!
//! A state is used only when it is certainly the state after the symbol's latest stored
//! bar: written under this binary's state identity (the layout is not self-describing, and
//! the labels after the resume must be an uninterrupted run's: see
//! [`regime_core::pipeline::state_identity`]; a copy or rebuild of the same code has it),
//! for this symbol,
//! with the settings now configured, and ending at the timestamp the store's newest row of
//! the symbol has — or before it, with every bar between in the journal and the replayed
//! label of the newest row equal to the stored one. Anything else (a crash with the journal
//! missing bars, a restore to before the state, a build that detects otherwise, changed
//! settings, a damaged
//! file) starts the symbol fresh, with the reason logged.

use crate::journal::Journaled;
use crate::store::HistoryRow;
use regime_core::bars::Bar;
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

impl Saved {
    /// Borrowed, for [`save`].
    pub fn borrowed(&self) -> SavedRef<'_> {
        SavedRef {
            build: &self.build,
            symbol: &self.symbol,
            last_ts: self.last_ts,
            since_ts: self.since_ts,
            last_id: self.last_id,
            pipe: &self.pipe,
        }
    }
}

/// [`Saved`] borrowed, for saving a running pipeline: the same bytes.
#[derive(Debug, serde::Serialize)]
pub struct SavedRef<'a> {
    /// [`build_id`] of the binary that writes it.
    pub build: &'a str,
    /// The symbol.
    pub symbol: &'a str,
    /// Timestamp of the last bar the pipeline took.
    pub last_ts: i64,
    /// When the current regime began.
    pub since_ts: i64,
    /// Current regime id.
    pub last_id: Option<u8>,
    /// The pipeline.
    pub pipe: &'a SymbolPipeline,
}

/// The identity states are written and read with ([`regime_core::pipeline::state_identity`]:
/// the state's format and layout and what the detection computes).
pub fn build_id() -> &'static str {
    regime_core::pipeline::state_identity()
}

/// The state file of `symbol` in `dir`.
pub fn path(dir: &Path, symbol: &str) -> PathBuf {
    dir.join(format!("{}.state", crate::commands::model_stem(symbol)))
}

/// What ends a state file: these 4 bytes, then the CRC-32 of everything before them. A
/// state is mostly floating-point numbers, which a flipped bit leaves readable: before the
/// checksum, 10 of 12 states with a byte or three changed at random were resumed (the
/// current regime's confidence 0.421 read back as 0.271–0.421), learned values silently
/// altered. Files of earlier builds have no trailer and are read as before.
const CHECKED: &[u8; 4] = b"RSC1";

/// The bytes of a state file for `s`: its encoding, sealed ([`seal`]).
fn encode(s: &SavedRef) -> Result<Vec<u8>, postcard::Error> {
    Ok(seal(postcard::to_stdvec(s)?))
}

/// `bytes` with the checksum trailer (4 marker bytes and the CRC-32 of all before it) that
/// [`checked`] verifies: saved states, and the Python engine's pickles.
pub fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.extend_from_slice(CHECKED);
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The bytes [`seal`] sealed, checked against the CRC-32 when they carry the trailer,
/// whole otherwise (written before the trailer was).
pub fn checked(bytes: &[u8]) -> Result<&[u8], String> {
    let Some((sealed, crc)) = bytes.split_last_chunk::<4>() else {
        return Ok(bytes);
    };
    let Some(body) = sealed.strip_suffix(CHECKED) else {
        return Ok(bytes);
    };
    if crc32fast::hash(sealed).to_le_bytes() != *crc {
        return Err("damaged (its checksum does not match)".into());
    }
    Ok(body)
}

/// Write one symbol's state (a temporary file renamed over the old one). Not synced file
/// by file: the caller syncs the folder once; a state lost to a power cut only means a
/// fresh start for that symbol (a damaged one is refused when read: its checksum).
pub fn save(dir: &Path, s: &SavedRef) -> std::io::Result<()> {
    let bytes = encode(s).map_err(std::io::Error::other)?;
    let dest = path(dir, s.symbol);
    let tmp = dir.join(format!(
        ".{}.state.tmp{}",
        crate::commands::model_stem(s.symbol),
        std::process::id()
    ));
    let res = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &dest));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Load `symbol`'s state when it may be resumed: the store's newest row of the symbol is at
/// `stored_last` (None: none known), and the state ends there or before it ([`catch_up`]
/// brings it there). Err: why the symbol starts fresh (None: no file).
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
    let body = match checked(&bytes) {
        Ok(b) => b,
        Err(m) => return why(m),
    };
    let mut s: Saved = match postcard::take_from_bytes::<Saved>(body) {
        Ok((s, [])) => s,
        Ok(_) => return why("trailing bytes (damaged)".into()),
        Err(e) => return why(format!("unreadable ({e})")),
    };
    if let Some(m) = regime_core::pipeline::identity_mismatch(&s.build) {
        return why(m);
    }
    if s.symbol != symbol {
        return why(format!("holds symbol {:?}", s.symbol));
    }
    let want = cfg.effective();
    if s.pipe.config() != &want {
        // the transition manager's settings alone may change: nothing learned depends on them
        let learned_alike = PipelineConfig {
            confidence_threshold: want.confidence_threshold,
            switch_margin: want.switch_margin,
            ..s.pipe.config().clone()
        } == want;
        if !learned_alike {
            return why("the pipeline settings changed since it was written".into());
        }
        if let Err(e) = s
            .pipe
            .set_transition_settings(want.confidence_threshold, want.switch_margin)
        {
            return why(e.to_string());
        }
    }
    if stored_last.is_none_or(|t| t < s.last_ts) {
        let stored = stored_last.map_or("none".into(), crate::io::format_timestamp);
        return why(format!(
            "it ends at {}, the store's newest row of the symbol is at {stored}",
            crate::io::format_timestamp(s.last_ts)
        ));
    }
    Ok(s)
}

/// Bring `s` up to the store's newest row of its symbol (at `stored_last`; `newest`: that
/// row, when known) with the journal's bars after it. Ok: the bars replayed (every one of
/// them stored: they lead exactly to the store's newest row). Err: why the
/// symbol starts fresh (a bar missing from the journal, or a replayed label that is not the
/// stored one).
pub fn catch_up(
    s: &mut Saved,
    stored_last: i64,
    journal: &Journaled,
    newest: Option<&HistoryRow>,
) -> Result<Vec<Bar>, String> {
    if s.last_ts == stored_last {
        return Ok(Vec::new());
    }
    let when = |t: i64| {
        if t == i64::MIN {
            "its first bar".to_string()
        } else {
            crate::io::format_timestamp(t)
        }
    };
    let Some(bars) = journal.chain(&s.symbol, s.last_ts, stored_last) else {
        return Err(format!(
            "it ends at {}, the store's newest row of the symbol is at {}, and the bar journal \
             does not hold every bar between",
            when(s.last_ts),
            crate::io::format_timestamp(stored_last)
        ));
    };
    let mut last = None;
    for b in &bars {
        let d = s.pipe.update(b);
        let id = d.regime.id();
        if s.last_id != Some(id) {
            s.since_ts = d.ts;
            s.last_id = Some(id);
        }
        last = Some((id, d.confidence));
    }
    if let (Some(row), Some((id, confidence))) = (newest.filter(|r| r.ts == stored_last), last) {
        if row.regime_id != id || row.confidence.to_bits() != confidence.to_bits() {
            return Err(format!(
                "replaying {} journaled bars gave regime {id} (confidence {confidence}) at {}, \
                 the store holds regime {} (confidence {})",
                bars.len(),
                crate::io::format_timestamp(stored_last),
                row.regime_id,
                row.confidence
            ));
        }
    }
    s.last_ts = stored_last;
    Ok(bars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use regime_core::bars::Bar;

    fn pipeline(cfg: &PipelineConfig, bars: i64) -> SymbolPipeline {
        regime_core::pipeline::fed_pipeline(cfg, bars).expect("pipeline")
    }

    fn saved(symbol: &str, cfg: &PipelineConfig) -> Saved {
        Saved {
            build: build_id().to_string(),
            symbol: symbol.into(),
            last_ts: 399 * 60_000,
            since_ts: 0,
            last_id: Some(3),
            pipe: pipeline(cfg, 400),
        }
    }

    #[test]
    fn only_a_state_that_is_certainly_current_is_resumed() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let cfg = PipelineConfig::default();
        let last = Some(399 * 60_000);
        save(d, &saved("A/B", &cfg).borrowed()).expect("save");
        let s = load(d, "A/B", last, &cfg).expect("resumed");
        // the resumed pipeline goes on exactly as the one saved
        let mut a = s.pipe;
        let mut b = pipeline(&cfg, 400);
        for i in 400..600 {
            let bar = Bar::new(
                i * 60_000,
                100.0,
                101.0,
                99.0,
                100.0 + (i % 5) as f64 * 0.2,
                500.0,
            );
            assert_eq!(
                format!("{:?}", a.update(&bar)),
                format!("{:?}", b.update(&bar))
            );
        }
        let why = |r: Result<Saved, Option<String>>| match r {
            Err(Some(w)) => w,
            Err(None) => "no file".into(),
            Ok(_) => "resumed".into(),
        };
        // no file: no reason to report
        assert!(matches!(load(d, "C", last, &cfg), Err(None)));
        // the store is behind the state (a restore to an earlier time), or holds none of it
        assert!(why(load(d, "A/B", Some(398 * 60_000), &cfg)).contains("newest row"));
        assert!(why(load(d, "A/B", None, &cfg)).contains("at none"));
        // the store moved on (a kill -9 after more rows): loaded, but resumed only with every
        // bar since in the journal
        let mut s = load(d, "A/B", Some(400 * 60_000), &cfg).expect("loaded");
        let empty = crate::journal::Journaled::default();
        let e = catch_up(&mut s, 400 * 60_000, &empty, None).expect_err("no journal");
        assert!(e.contains("does not hold every bar"), "{e}");
        // other learning settings: fresh; other transition-manager settings: resumed under them
        let other = PipelineConfig {
            ensemble_learning_rate: cfg.ensemble_learning_rate * 2.0,
            ..cfg.clone()
        };
        assert!(why(load(d, "A/B", last, &other)).contains("settings changed"));
        let tm = PipelineConfig {
            confidence_threshold: 0.8,
            switch_margin: 0.2,
            ..cfg.clone()
        };
        let r = load(d, "A/B", last, &tm).expect("resumed under new transition settings");
        assert_eq!(r.pipe.config(), &tm.effective());
        // a feedback lag above the learning lag is what the pipeline runs with, not a change
        let long = PipelineConfig {
            feedback_lag: cfg.hmm.learn_lag + 72,
            ..cfg.clone()
        };
        let mut s = saved("L", &long);
        s.last_ts = 399 * 60_000;
        save(d, &s.borrowed()).expect("save");
        assert!(load(d, "L", last, &long).is_ok());
        // another symbol whose file name folds to the same one (A/B and A_B)
        assert!(why(load(d, "A_B", last, &cfg)).contains("holds symbol \"A/B\""));
        // another build: one from before the identity described the detection, one whose
        // state has another layout, one whose detection computes otherwise
        let this: Vec<&str> = build_id().split_whitespace().collect();
        let layout = format!("{} layout 0 detection {}", this[0], this[4]);
        let detection = format!("{} layout {} detection 0", this[0], this[2]);
        for (id, what) in [
            (
                "0.1.0 11916376 1764981390123456789 5d3c0f1e2a4b6c8d",
                "an older kind of binary",
            ),
            (layout.as_str(), "another state layout"),
            (detection.as_str(), "detection computes otherwise"),
            ("state-v0 layout 0 detection 0", "another state format"),
        ] {
            let mut s = saved("A/B", &cfg);
            s.build = id.into();
            save(d, &s.borrowed()).expect("save");
            let w = why(load(d, "A/B", last, &cfg));
            assert!(w.contains(what) && w.contains(id), "{id}: {w}");
        }
        // damaged: cut short, or with bytes after the state
        save(d, &saved("A/B", &cfg).borrowed()).expect("save");
        let p = path(d, "A/B");
        let bytes = std::fs::read(&p).expect("read");
        std::fs::write(&p, &bytes[..bytes.len() / 2]).expect("write");
        assert!(why(load(d, "A/B", last, &cfg)).contains("unreadable"));
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 1, 2]);
        std::fs::write(&p, &longer).expect("write");
        assert!(why(load(d, "A/B", last, &cfg)).contains("trailing bytes"));
        // damaged where it still reads: one bit of one number
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x10;
        std::fs::write(&p, &flipped).expect("write");
        assert!(why(load(d, "A/B", last, &cfg)).contains("checksum does not match"));
        // a file of an earlier build (no checksum trailer) is read as before
        let plain = postcard::to_stdvec(&saved("A/B", &cfg).borrowed()).expect("encode");
        std::fs::write(&p, &plain).expect("write");
        assert!(load(d, "A/B", last, &cfg).is_ok());
        // the identity is the same at every start, though the latencies sampled while the
        // pipeline it is taken on runs are not
        assert_eq!(regime_core::pipeline::compute_state_identity(), build_id());
        assert!(build_id().starts_with("state-v1 layout "), "{}", build_id());
    }

    #[test]
    fn a_state_behind_the_store_catches_up_from_the_journal_exactly() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let cfg = PipelineConfig::default();
        let bars = regime_core::pipeline::fixed_bars(700);
        // the state saved at bar 399 (a checkpoint), the bars after it journaled, the store
        // at bar 599 when the process died (bars 600.. were never acknowledged)
        save(d, &saved("X", &cfg).borrowed()).expect("save");
        let mut w = crate::journal::JournalWriter::new(d, 7, 0);
        for i in 400..700 {
            w.append("X", Some(bars[i - 1].ts), &bars[i]);
        }
        w.flush();
        let journal = crate::journal::read_dir(d);
        let stored = bars[599].ts;
        // what an uninterrupted run stored and holds
        let mut whole = pipeline(&cfg, 599);
        let d599 = whole.update(&bars[599]);
        let row = HistoryRow {
            ts: stored,
            symbol: "X".into(),
            regime_id: d599.regime.id(),
            volatility: 0,
            trend: 0,
            structure: 0,
            confidence: d599.confidence,
            p_volatility: [0.0; 3],
            p_trend: [0.0; 3],
            p_structure: [0.0; 2],
            model_version: 0,
        };
        let mut s = load(d, "X", Some(stored), &cfg).expect("loaded");
        assert_eq!(
            catch_up(&mut s, stored, &journal, Some(&row)).map(|b| b.len()),
            Ok(200)
        );
        assert_eq!(s.last_ts, stored);
        for b in &bars[600..] {
            assert_eq!(
                format!("{:?}", s.pipe.update(b)),
                format!("{:?}", whole.update(b))
            );
        }
        // a stored label the replay does not give: fresh
        let mut s = load(d, "X", Some(stored), &cfg).expect("loaded");
        let other = HistoryRow {
            confidence: row.confidence * 0.5,
            ..row.clone()
        };
        let e = catch_up(&mut s, stored, &journal, Some(&other)).expect_err("mismatch");
        assert!(e.contains("the store holds regime"), "{e}");
        // the store at a bar the journal never held
        let mut s = load(d, "X", Some(stored + 1), &cfg).expect("loaded");
        assert!(catch_up(&mut s, stored + 1, &journal, None).is_err());
    }
}
