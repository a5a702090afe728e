//! The batch commands behind `regime detect | evaluate | generate`.

use crate::io::{self, Column, Input, Table};
use datasets::{generate, SynthConfig};
use rayon::prelude::*;
use regime_core::backend::{ComputeBackend, Panel, ParamTable, Posteriors, SeriesScorer, N_PROBS};
use regime_core::bars::RejectReason;
use regime_core::hmm::{dims, smooth};
use regime_core::model::JointParams;
use regime_core::pipeline::{
    detect_panel, panel_prefix, pool_events, Detection, PanelMember, PipelineConfig, PoolEvent,
    SymbolPipeline, METHOD_NAMES, N_METHODS,
};
use regime_core::regime::N_REGIMES;
use regime_core::Regime;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Bars of a panel's part before its last pooling time that `detect` runs once and keeps
/// at least (a larger one is run for its pooling events and then replayed symbol by symbol:
/// ~1.7 times the work, in memory bounded by the input and the members), and where the
/// memory available is unknown. Kept, each such bar holds its detection (112 B) until its
/// symbol is written: 2,000 × 2,000 bars (3.1 M kept) 16.3 → 9.1 s, 0.90 → 1.37 GB peak;
/// 5,000 × 2,000 (7.7 M) 37.3 → 26.1 s, 2.19 → 3.17 GB. See [`prefix_limit`].
const CHUNK_BARS: usize = 1 << 22;

/// The most bars of a panel's prefix `detect` keeps: as many detections as fit in a
/// quarter of the memory available now (Linux's `MemAvailable`), never fewer than
/// [`CHUNK_BARS`]. The labels are the same either way; only time and memory differ.
fn prefix_limit() -> usize {
    crate::state::mem_available_bytes().map_or(CHUNK_BARS, |bytes| {
        let fits = usize::try_from(bytes / 4).unwrap_or(usize::MAX) / size_of::<Detection>();
        fits.max(CHUNK_BARS)
    })
}
/// Rows of a group of series detected side by side (one series per thread).
const PIECE_BARS: usize = 1 << 18;
/// Bars per piece of a series detected by itself: each piece is handed on (written) while
/// the next is detected, so only the last one's writing follows the detection; smaller
/// than a group to keep that tail short (the writer builds and encodes ~1/3 of a core's
/// worth of the detecting thread's work).
const STREAM_PIECE_BARS: usize = 1 << 16;

/// The piece a series alone streams in when the one-pass prefix is up to `chunk` bars: what
/// `grouped` cuts and what `detect` feeds while reading, so that both write the same file.
fn stream_piece(chunk: usize) -> usize {
    chunk.min(PIECE_BARS).min(STREAM_PIECE_BARS)
}

/// Failures of the batch commands; each message names the file (and row or key) involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] io::IoError),
    /// The thread writing the output ended before detection did (a panic there).
    #[error("the output writer stopped before the detection was done")]
    WriterStopped,
    /// The thread reading the input ended without a result (a panic there).
    #[error("the input reader stopped before the input was read")]
    ReaderStopped,
    /// The thread writing the output could not be started.
    #[error("cannot start the output writer thread: {0}")]
    WriterThread(String),
    /// The engine rejected a setting or failed.
    #[error(transparent)]
    Core(#[from] regime_core::Error),
    /// The history store could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Some input rows were rejected and `--skip-bad-rows` was not given.
    #[error("{path}: {count} bad rows (listed above); nothing written. Fix them or pass --skip-bad-rows")]
    BadRows {
        /// Input file.
        path: PathBuf,
        /// Rejected rows.
        count: usize,
    },
    /// No usable data.
    #[error("{path}: {what}")]
    NoData {
        /// Input file.
        path: PathBuf,
        /// What is missing.
        what: String,
    },
    /// A command-line value is out of range.
    #[error("{0}")]
    Argument(String),
}

type Result<T> = std::result::Result<T, CommandError>;

/// Models for `detect --model`: one file for every symbol, or a directory of
/// `<symbol>.v<version>.json` files (as `--models-dir` and the service write them), the
/// newest version per symbol.
#[derive(Debug)]
pub struct ModelSource {
    path: PathBuf,
    single: Option<(JointParams, u32)>,
    by_symbol: HashMap<String, (u32, PathBuf)>,
}

fn read_model(path: &Path) -> Result<(JointParams, u32)> {
    let bad = |m: String| CommandError::Argument(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let params = doc
        .get("params")
        .ok_or_else(|| bad("no `params` object (is this a model file?)".into()))?;
    let p: JointParams =
        serde_json::from_value(params.clone()).map_err(|e| bad(format!("params: {e}")))?;
    p.validate().map_err(|e| bad(e.to_string()))?;
    let version = doc
        .get("model_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as u32;
    Ok((p, version))
}

/// The file-name form of a symbol (as `save_model` writes it).
pub(crate) fn model_stem(symbol: &str) -> String {
    if symbol.is_empty() { "default" } else { symbol }
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ModelSource {
    /// Open a model file or directory.
    pub fn open(path: &Path) -> Result<Self> {
        let mut src = ModelSource {
            path: path.to_path_buf(),
            single: None,
            by_symbol: HashMap::new(),
        };
        if path.is_file() {
            src.single = Some(read_model(path)?);
            return Ok(src);
        }
        let dir = std::fs::read_dir(path).map_err(|e| {
            CommandError::Argument(format!(
                "{}: {e} (expected a model file or directory)",
                path.display()
            ))
        })?;
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".json") else {
                continue;
            };
            let Some((sym, ver)) = stem.rsplit_once(".v") else {
                continue;
            };
            let Ok(ver) = ver.parse::<u32>() else {
                continue;
            };
            let newer = src.by_symbol.get(sym).is_none_or(|(v, _)| ver > *v);
            if newer {
                src.by_symbol.insert(sym.to_string(), (ver, entry.path()));
            }
        }
        if src.by_symbol.is_empty() {
            return Err(CommandError::Argument(format!(
                "{}: no <symbol>.v<version>.json model files",
                path.display()
            )));
        }
        Ok(src)
    }

    /// The model for `symbol`, or an error naming it.
    pub fn for_symbol(&self, symbol: &str) -> Result<(JointParams, u32)> {
        if let Some(m) = &self.single {
            return Ok(m.clone());
        }
        match self.by_symbol.get(&model_stem(symbol)) {
            Some((_, path)) => read_model(path),
            None => Err(CommandError::Argument(format!(
                "{}: no model for symbol `{symbol}`",
                self.path.display()
            ))),
        }
    }
}

/// Read and validate `detect`'s input: rejected rows are listed and are an error unless
/// skipped; no valid bar at all is an error.
fn read_for_detect(input_path: &Path, skip_bad: bool) -> Result<Input> {
    check_for_detect(io::read_bars(input_path, None)?, input_path, skip_bad)
}

/// `detect`'s output, checked before anything is read or written: a format its extension
/// names, and not one of the inputs — `--output` naming an input file (by any path: a link,
/// `./`, `..`) would replace the bars with their labels once the output is renamed into place.
fn check_output(inputs: &[PathBuf], output: &Path) -> Result<()> {
    io::Format::of(output)?;
    // an output that does not exist yet cannot be an input
    let Some(o) = io::file_id(output) else {
        return Ok(());
    };
    for input in inputs {
        if io::file_id(input) == Some(o) {
            return Err(CommandError::Argument(format!(
                "--output {} is the input file {}: writing there would replace the bars with \
                 their labels; choose another output path",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// [`read_for_detect`]'s checks of input already read.
fn check_for_detect(input: Input, input_path: &Path, skip_bad: bool) -> Result<Input> {
    report_rejects(&input, input_path);
    if !input.errors.is_empty() && !skip_bad {
        return Err(CommandError::BadRows {
            path: input_path.to_path_buf(),
            count: input.errors.len(),
        });
    }
    if input.series.is_empty() {
        return Err(CommandError::NoData {
            path: input_path.to_path_buf(),
            what: "no valid bars".into(),
        });
    }
    Ok(input)
}

/// The symbol of a file's bars when it has no symbol column, from its name: `AAPL.csv`,
/// `AAPL.csv.gz`, `AAPL.parquet` → `AAPL` (`BRK.B.csv` → `BRK.B`).
pub fn file_symbol(path: &Path) -> String {
    const EXTENSIONS: [&str; 10] = [
        "gz", "csv", "txt", "tsv", "parquet", "pq", "arrow", "feather", "ipc", "arrows",
    ];
    let mut name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    while let Some((stem, ext)) = name.rsplit_once('.') {
        if stem.is_empty() || !EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) {
            break;
        }
        name = stem.to_string();
    }
    name
}

/// Several files read as one panel (`regime detect --input a.csv b.csv ...`): each read and
/// checked as one input is (its bad rows listed under its name), then [`panel_of`].
pub fn read_many(paths: &[PathBuf], skip_bad: bool) -> Result<(Input, BTreeMap<String, PathBuf>)> {
    let files = paths
        .iter()
        .map(|p| read_for_detect(p, skip_bad).map(|input| (p.clone(), input)))
        .collect::<Result<Vec<_>>>()?;
    panel_of(files)
}

/// Inputs read from several files, as one: the bars of a file without a symbol column named
/// by [`file_symbol`], and where each symbol came from. A symbol in two files is refused,
/// naming both: which of its bars to take would be a guess.
pub fn panel_of(files: Vec<(PathBuf, Input)>) -> Result<(Input, BTreeMap<String, PathBuf>)> {
    let mut all = Input::default();
    let mut from: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (p, mut input) in files {
        for s in &mut input.series {
            if s.symbol.is_empty() {
                s.symbol = file_symbol(&p);
            }
            if let Some(q) = from.insert(s.symbol.clone(), p.clone()) {
                return Err(CommandError::Argument(format!(
                    "symbol `{}` is in both {} and {}: give each file its own symbols (a file \
                     without a symbol column is named by its file name)",
                    s.symbol,
                    q.display(),
                    p.display()
                )));
            }
        }
        all.series.append(&mut input.series);
        all.errors.append(&mut input.errors);
        all.rows += input.rows;
    }
    Ok((all, from))
}

/// `regime detect --model`: score every bar with fixed models on a compute backend (the
/// causal forward filter of SPEC §8; parallel over symbols and time on a GPU). Several
/// inputs are read as one panel ([`read_many`]). Every symbol's model is found before
/// anything is scored; the symbols then go to the backend in groups of whole series of
/// about half a million rows (`MODEL_SIZES`), each group written while the next is scored, so the
/// scoring's working set is a group's, not the input's. A one-symbol file on the CPU backend
/// is scored while it is read instead (`score_one_streamed`; the same bits), on one thread.
pub fn detect_with_models(
    inputs: &[PathBuf],
    output_path: &Path,
    skip_bad: bool,
    models: &ModelSource,
    backend: &dyn ComputeBackend,
) -> Result<Scored> {
    check_output(inputs, output_path)?;
    let input = match inputs {
        // a one-symbol file is scored as it is read where the backend scores as the host
        // does (the CPU backend), else read whole
        [one] if backend.scores_like_series_scorer() && !io::known_multi_symbol(one) => {
            match score_one_streamed(one, output_path, skip_bad, models)? {
                Fed::Whole((bars, rejected)) => {
                    return Ok(Scored {
                        bars,
                        rejected,
                        streamed: true,
                    })
                }
                Fed::Read(input) => check_for_detect(input, one, skip_bad)?,
            }
        }
        [one] => read_for_detect(one, skip_bad)?,
        many => read_many(many, skip_bad)?.0,
    };
    let found = models_for(&input.series, models)?;
    write_detections(output_path, &mut |emit| {
        score_grouped(&input.series, &found, backend, MODEL_SIZES, emit).map(|()| true)
    })?;
    Ok(Scored {
        bars: input.series.iter().map(|s| s.bars.len()).sum(),
        rejected: input.errors.len(),
        streamed: false,
    })
}

/// What [`detect_with_models`] scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scored {
    /// Bars scored.
    pub bars: usize,
    /// Rows rejected (skipped).
    pub rejected: usize,
    /// Whether a one-symbol file was scored on the host while it was read (one thread),
    /// rather than on the backend as a panel.
    pub streamed: bool,
}

/// `detect --model` of one input on the host ([`SeriesScorer`]), as `detect` streams a
/// one-symbol file ([`read_while_fed`]): its bars scored as they are read and written while
/// the rest is read, so neither the input nor a panel and its posteriors are held (10 M
/// bars of one symbol: a panel ~55 B a bar, the input ~50 B). A value beyond `f32`'s room
/// (which the panel rescales over the whole series) also sends it the whole-input way.
fn score_one_streamed(
    input_path: &Path,
    output_path: &Path,
    skip_bad: bool,
    models: &ModelSource,
) -> Result<Fed> {
    read_while_fed(input_path, output_path, skip_bad, &mut |feed, emit| {
        score_fed(feed, models, emit, input_path)
    })
}

/// Score the bars `feed` sends with their symbol's model ([`SeriesScorer`], after the
/// adjustments [`as_learned`] makes), handing the detections to `emit` in pieces of
/// [`STREAM_PIECE_BARS`] rows (written while the next is scored), and saying what splits
/// and volume steps of `input_path` it read. True once the whole input went through; false
/// when it was abandoned, a bar left `f32`'s room, or the reader stopped without saying the
/// input was whole.
fn score_fed(
    feed: &std::sync::mpsc::Receiver<Feed>,
    models: &ModelSource,
    emit: &mut Emit,
    input_path: &Path,
) -> Result<bool> {
    struct Scoring {
        symbol: String,
        version: u32,
        learned: AsLearned,
        scorer: SeriesScorer,
        piece: Vec<Detection>,
    }
    let mut scoring: Option<Scoring> = None;
    while let Ok(f) = feed.recv() {
        match f {
            Feed::Bars(symbol, bars) => {
                let sc = match scoring.as_mut() {
                    Some(sc) => sc,
                    None => {
                        let (params, version) = models.for_symbol(&symbol)?;
                        scoring.insert(Scoring {
                            scorer: SeriesScorer::new(&params)?,
                            symbol,
                            version,
                            learned: AsLearned::default(),
                            piece: Vec::with_capacity(STREAM_PIECE_BARS),
                        })
                    }
                };
                for b in &bars {
                    let learned = sc.learned.adjust(b);
                    if !SeriesScorer::holds(&learned) {
                        return Ok(false);
                    }
                    let mut probs = [0f32; N_PROBS];
                    let id = sc.scorer.step(&learned, &mut probs);
                    sc.piece
                        .push(scored_detection(&probs, id, b.ts, sc.version));
                    if sc.piece.len() == STREAM_PIECE_BARS {
                        let piece =
                            std::mem::replace(&mut sc.piece, Vec::with_capacity(STREAM_PIECE_BARS));
                        emit(vec![(sc.symbol.clone(), piece)])?;
                    }
                }
            }
            Feed::End => {
                let Some(sc) = scoring else {
                    return Ok(false);
                };
                if !sc.piece.is_empty() {
                    emit(vec![(sc.symbol.clone(), sc.piece)])?;
                }
                let split = &sc.learned.split;
                let (splits, steps) = (split.splits(), split.volume_steps());
                say_adjustments(input_path, &sc.symbol, splits, steps);
                return Ok(true);
            }
            Feed::Abandon => return Ok(false),
        }
    }
    Ok(false)
}

/// How fixed-model scoring cuts its work: `group` rows of whole series handed to a backend
/// at once (a longer series goes alone), their detections handed on in pieces of `piece`
/// rows.
#[derive(Debug, Clone, Copy)]
struct ScoreSizes {
    group: usize,
    piece: usize,
}

/// A group holds its panel and posteriors (~55 B a row, and an adjusted copy of bars that
/// held splits) until its last piece is written, a piece its detections and their table
/// (~0.5 KB a row); 10 M bars scored as one panel, all held at once, took 3.6 GB beside the
/// input's 0.5 GB. Half a million rows is still a launch a GPU fills; pieces of 2^18 rows
/// wrote 10 × 1 M bars in 5.6–6.5 s against 6.7–7.3 s with 2^16 (RSS 0.79 / 0.63 GB).
const MODEL_SIZES: ScoreSizes = ScoreSizes {
    group: 1 << 19,
    piece: PIECE_BARS,
};

/// Score `series` with their models (`found`, one per series) in groups, each as one panel
/// ([`score_series`]).
fn score_grouped(
    series: &[io::SymbolBars],
    found: &[(JointParams, u32)],
    backend: &dyn ComputeBackend,
    sizes: ScoreSizes,
    emit: &mut Emit,
) -> Result<()> {
    let mut i = 0;
    while i < series.len() {
        let mut rows = series[i].bars.len();
        let mut j = i + 1;
        while j < series.len() && rows + series[j].bars.len() <= sizes.group {
            rows += series[j].bars.len();
            j += 1;
        }
        score_series(&series[i..j], &found[i..j], backend, sizes.piece, emit)?;
        i = j;
    }
    Ok(())
}

/// Every series' model and version, or the error naming the first symbol without one.
fn models_for(series: &[io::SymbolBars], models: &ModelSource) -> Result<Vec<(JointParams, u32)>> {
    series
        .iter()
        .map(|s| models.for_symbol(&s.symbol))
        .collect()
}

/// A series as the pipeline that learns a model sees it (`None`: as it is): unadjusted
/// splits taken out ([`regime_core::splits`]), then for intraday series the overnight gaps
/// and the time-of-day profile ([`regime_core::intraday`]). A fixed model scores, and the
/// ex-post mode smooths, the bars the model was learned on.
fn as_learned(bars: &[regime_core::bars::Bar]) -> Option<Vec<regime_core::bars::Bar>> {
    let mut learned = AsLearned::default();
    regime_core::bars::map_series(bars, |b| learned.adjust(b))
}

/// [`as_learned`] bar by bar, in the learning pipeline's order (its bar side takes the
/// splits out, then the intraday profile), so a series scored as it is read sees the bars
/// a whole series does.
#[derive(Debug, Default)]
struct AsLearned {
    split: regime_core::splits::SplitAdjuster,
    intraday: regime_core::intraday::IntradayAdjuster,
}

impl AsLearned {
    fn adjust(&mut self, bar: &regime_core::bars::Bar) -> regime_core::bars::Bar {
        self.intraday.adjust(&self.split.adjust(bar))
    }
}

/// Score validated input with fixed models on a backend: per symbol, one detection per bar.
pub fn score_input(
    input: &Input,
    models: &ModelSource,
    backend: &dyn ComputeBackend,
) -> Result<Vec<(String, Vec<Detection>)>> {
    let found = models_for(&input.series, models)?;
    let mut out: Vec<SymbolDetections> = Vec::with_capacity(input.series.len());
    let all = ScoreSizes {
        group: usize::MAX,
        piece: usize::MAX,
    };
    score_grouped(&input.series, &found, backend, all, &mut |piece| {
        for (symbol, dets) in piece {
            match out.last_mut() {
                Some((last, d)) if *last == symbol => d.extend(dets),
                _ => out.push((symbol, dets)),
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// Score `series` with their models (`found`, one per series) on a backend in one panel,
/// handing the detections to `emit` in pieces of about `piece_rows` rows (a series' pieces
/// in order): a long series' detections and their table are never all held at once (10 M
/// bars of one symbol would take ~5 GB), only its posteriors.
fn score_series(
    series: &[io::SymbolBars],
    found: &[(JointParams, u32)],
    backend: &dyn ComputeBackend,
    piece_rows: usize,
    emit: &mut Emit,
) -> Result<()> {
    let adjusted: Vec<Option<Vec<regime_core::bars::Bar>>> =
        series.par_iter().map(|s| as_learned(&s.bars)).collect();
    let refs: Vec<&[regime_core::bars::Bar]> = series
        .iter()
        .zip(&adjusted)
        .map(|(s, a)| a.as_deref().unwrap_or(&s.bars))
        .collect();
    let panel = Panel::from_series(&refs).map_err(|e| match e {
        // the panel knows the series by its place in this group: name the symbol
        regime_core::Error::PriceSpan {
            series: k,
            bar,
            lo,
            hi,
        } => CommandError::Argument(format!(
            "{}, bar {} of its {}: prices from {lo:e} to {hi:e}, a span the compute backends' \
             f32 cannot hold (10^76 at most); `detect` without --model reads them in f64",
            series[k].symbol,
            bar + 1,
            series[k].bars.len()
        )),
        e => e.into(),
    })?;
    drop(adjusted);
    let params: Vec<JointParams> = found.iter().map(|(p, _)| p.clone()).collect();
    let table = ParamTable::new(&params)?;
    let post = backend.detect(&panel, &table)?;
    let mut piece: Vec<SymbolDetections> = Vec::new();
    let mut rows = 0;
    for (k, s) in series.iter().enumerate() {
        let (first, version) = (panel.series(k).start, found[k].1);
        if s.bars.is_empty() {
            piece.push((s.symbol.clone(), Vec::new()));
        }
        for (c, bars) in s.bars.chunks(piece_rows).enumerate() {
            let at = first + c * piece_rows;
            let dets = bars
                .iter()
                .enumerate()
                .map(|(i, b)| posterior_detection(&post, at + i, b.ts, version))
                .collect();
            piece.push((s.symbol.clone(), dets));
            rows += bars.len();
            if rows >= piece_rows {
                emit(std::mem::take(&mut piece))?;
                rows = 0;
            }
        }
    }
    if !piece.is_empty() {
        emit(piece)?;
    }
    Ok(())
}

fn posterior_detection(post: &Posteriors, i: usize, ts: i64, version: u32) -> Detection {
    let p = &post.probs[i * N_PROBS..i * N_PROBS + N_PROBS];
    scored_detection(p, post.regime[i], ts, version)
}

/// A fixed model's detection of a bar from its eight marginals `p` and regime `id`.
fn scored_detection(p: &[f32], id: u8, ts: i64, version: u32) -> Detection {
    let regime = Regime::from_id(id).unwrap_or(Regime::from_id(0).expect("id 0 exists"));
    let [v, t, st] = regime.indices();
    let pv = [p[0] as f64, p[1] as f64, p[2] as f64];
    let pt = [p[3] as f64, p[4] as f64, p[5] as f64];
    let ps = [p[6] as f64, p[7] as f64];
    Detection {
        ts,
        regime,
        confidence: pv[v] * pt[t] * ps[st],
        p_volatility: pv,
        p_trend: pt,
        p_structure: ps,
        raw: [v as u8, t as u8, st as u8],
        methods: [[255; 3]; N_METHODS],
        warming_up: false,
        model_version: version,
    }
}

/// Causal (real-time) or ex-post (smoothed with later bars, for historical analysis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Bar t uses bars ≤ t only.
    Causal,
    /// Forward-backward smoothing with the final model: uses later bars.
    ExPost,
}

/// A line to stderr for whoever runs the command. A stderr that has gone (`regime detect
/// ... 2>&1 | head -3`) loses the line, not the run: `eprintln!` panics there, and a panic in
/// the rejected-rows listing stopped a `--skip-bad-rows` run before its output was written.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// What the reader settled about a file that was not plain — rows newest first read
/// oldest first, numeric dates (`01/02/2020`) read in the order the file shows — one line
/// each: what was settled should not be silent.
pub fn reading_notes(input: &Input) -> Vec<String> {
    let mut notes = Vec::new();
    if input.newest_first {
        notes.push("rows run newest first (as web downloads do): read oldest first".to_string());
    }
    if let Some(d) = &input.date_order {
        notes.push(match &d.shown_by {
            Some((row, text)) => format!(
                "dates read {} (row {row}'s {text:?} can only be read so)",
                d.order.form()
            ),
            None => "dotted dates read day first, DD.MM.YYYY (none of them shows the order, \
                     and dotted dates are not written month first)"
                .to_string(),
        });
    }
    notes.extend(zero_return_notes(input));
    notes.extend(split_notes(input));
    notes
}

/// Symbols whose closes stay unchanged on many bars (prices on a tick grid coarse for the
/// bar length, or stale closes), where the labels lose accuracy: one note each for the first
/// few, then how many more.
fn zero_return_notes(input: &Input) -> Vec<String> {
    const SHOWN: usize = 5;
    let many: Vec<(&String, f64)> = input
        .validator
        .quality()
        .iter()
        .filter_map(|(s, q)| q.zero_return_share().map(|z| (s, z)))
        .filter(|&(_, z)| z >= regime_core::bars::ZERO_RETURN_NOTE_SHARE)
        .collect();
    let mut notes: Vec<String> = many
        .iter()
        .take(SHOWN)
        .map(|(s, z)| {
            format!(
                "{s}: {:.0}% of its close-to-close returns are exactly 0 (prices on a coarse \
                 tick grid for this bar length, or stale closes): expect less accurate labels \
                 (synthetic series on a grid of half a return sd, ~30% zeros, keep 0.90 of the \
                 labels' lift over chance; one sd, ~50% zeros, 0.74); longer bars help",
                100.0 * z
            )
        })
        .collect();
    if many.len() > SHOWN {
        notes.push(format!(
            "... and {} more symbols with {:.0}% or more zero returns",
            many.len() - SHOWN,
            100.0 * regime_core::bars::ZERO_RETURN_NOTE_SHARE
        ));
    }
    notes
}

/// Print the [`reading_notes`], rejected rows (first 20) and the counts per reason to stderr.
pub fn report_rejects(input: &Input, path: &Path) {
    for note in reading_notes(input) {
        crate::say!("{}: {note}", path.display());
    }
    for e in input.errors.iter().take(20) {
        let sym = if e.symbol.is_empty() {
            String::new()
        } else {
            format!(" [{}]", e.symbol)
        };
        crate::say!("{}: row {}{}: {}", path.display(), e.row, sym, e.reason);
    }
    if input.errors.len() > 20 {
        crate::say!("... {} more rejected rows", input.errors.len() - 20);
    }
    if !input.errors.is_empty() {
        let counts: Vec<String> = input
            .validator
            .rejected_by_reason()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        crate::say!(
            "{}: {} of {} rows rejected ({})",
            path.display(),
            input.errors.len(),
            input.rows,
            counts.join(", ")
        );
        for hint in unread_field_hints(input) {
            crate::say!("{}: hint: {hint}", path.display());
        }
        let newest_first = newest_first(input, "the file");
        if !newest_first.is_empty() {
            crate::say!(
                "{}: hint: the rows of {} run newest first (many vendors' downloads do); \
                 sort them oldest first",
                path.display(),
                newest_first.join(", ")
            );
        }
    }
}

/// What to say of fields no form read, one line each: timestamps (most often a whole file
/// in a form not read, a spreadsheet's 01/02/2020) with the forms that are read, and labels
/// (`evaluate`'s label column; most often the wrong column named) with what a label is.
pub fn unread_field_hints(input: &Input) -> Vec<String> {
    let unread = |name: &str| {
        input
            .errors
            .iter()
            .filter(
                |e| matches!(&e.reason, RejectReason::Unparseable { field, .. } if field == name),
            )
            .count()
    };
    let was = |n: usize| if n == 1 { " was" } else { "s were" };
    let mut hints = Vec::new();
    let n = unread("timestamp");
    if n > 0 {
        hints.push(format!(
            "{n} timestamp{} not read; timestamps are read as YYYY-MM-DD (or YYYY/MM/DD, \
             YYYY.MM.DD, YYYYMMDD) with an optional time HH:MM[:SS[.fff]] after a space or T, RFC 3339 \
             with an offset, Unix seconds / milliseconds, or with the month named (02-Jan-2024, \
             Jan 2, 2024); a CSV file's dates such as \
             01/02/2020 are read day or month first where one of them shows which (a field \
             above 12), else they are ambiguous: write them as YYYY-MM-DD",
            was(n)
        ));
    }
    let n = unread("time");
    if n > 0 {
        hints.push(format!(
            "{n} time{} of day {} not read; a time column beside a date column is read as \
             HH:MM[:SS[.fff]] or HHMM[SS]",
            if n == 1 { "" } else { "s" },
            if n == 1 { "was" } else { "were" }
        ));
    }
    let n = repeated_timestamps(input).count();
    if n > 0 {
        hints.push(format!(
            "{n} row{} the timestamp of the bar before (same symbol): times of day in a \
             column not read (a `time` column beside `date` is), or rows given twice",
            if n == 1 { " repeats" } else { "s repeat" }
        ));
    }
    // a value written as a word for "none": Yahoo's downloads mark days without trading
    // with `null` in every field
    let n = input
        .errors
        .iter()
        .filter(|e| {
            matches!(&e.reason, RejectReason::Unparseable { field, value }
                if field != "timestamp" && field != "time" && field != "label"
                    && ["null", "none", "nan", "n/a", "na", "#n/a"]
                        .contains(&value.to_ascii_lowercase().as_str()))
        })
        .count();
    if n > 0 {
        hints.push(format!(
            "{n} row{} a value as `null` or `N/A` (days without trading, in Yahoo's \
             downloads): a bar with no close is no bar; pass --skip-bad-rows to leave {} out",
            if n == 1 { " holds" } else { "s hold" },
            if n == 1 { "it" } else { "them" }
        ));
    }
    let n = unread("label");
    if n > 0 {
        hints.push(format!(
            "{n} label{} not read; a label is a regime id 0-17 or a regime name such as \
             low_vol_up_trending (as `regime generate` writes in true_regime_id); \
             --label-column names the column that holds them",
            was(n)
        ));
    }
    hints
}

/// The rejected rows whose timestamp equals their symbol's bar before.
fn repeated_timestamps(input: &Input) -> impl Iterator<Item = &io::RowError> {
    input.errors.iter().filter(|e| {
        matches!(e.reason, RejectReason::TimestampNotIncreasing { previous, got } if got == previous)
    })
}

/// Symbols whose rows all came in descending time order: one bar accepted (the newest),
/// every other one rejected as before it (not equal: a day's intraday rows whose times were
/// not read look the same by the counts). The series of an input without a symbol column
/// is called `unnamed` ("the file", "the table").
pub fn newest_first(input: &Input, unnamed: &str) -> Vec<String> {
    let repeats: std::collections::HashSet<&str> = repeated_timestamps(input)
        .map(|e| e.symbol.as_str())
        .collect();
    input
        .validator
        .quality()
        .iter()
        .filter(|(s, q)| {
            let back = q.rejected.get("timestamp_not_increasing").copied();
            q.accepted == 1
                && back >= Some(2)
                && back == Some(q.rejected_total())
                && !repeats.contains(s.as_str())
        })
        .map(|(s, _)| {
            if s.is_empty() {
                unnamed.to_string()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// Run detection over every symbol of `input` in parallel.
pub fn run_detection(
    input: &Input,
    cfg: &PipelineConfig,
    mode: Mode,
) -> Result<Vec<(String, Vec<Detection>)>> {
    if mode == Mode::ExPost {
        let mut out: Vec<SymbolDetections> = Vec::with_capacity(input.series.len());
        detect_ex_post(
            &input.series,
            cfg,
            &mut |named| {
                out.extend(named);
                Ok(())
            },
            &mut |_, _| Ok(()),
        )?;
        return Ok(out);
    }
    let series: Vec<&[regime_core::bars::Bar]> =
        input.series.iter().map(|s| s.bars.as_slice()).collect();
    let out = detect_panel(&series, cfg)?;
    Ok(input
        .series
        .iter()
        .map(|s| s.symbol.clone())
        .zip(out)
        .collect())
}

/// `--mode ex-post`: each series learned causally as [`detect_causal_grouped`] learns it
/// (a panel pooled), then its detections smoothed with the model it ended with
/// (`smooth_detections`). A series' detections are held from its first bar until it is
/// smoothed, and handed to `emit` (several series at a time, in order) once about
/// `PIECE_BARS` rows are smoothed; `finished` gets each pipeline as it ends. The panel's
/// pipelines run once (they ran twice, a panel and a replay for the models, with every
/// detection of the input held: 10 × 1 M bars 25.8 s and 3.5 GB).
pub fn detect_ex_post(
    series: &[io::SymbolBars],
    cfg: &PipelineConfig,
    emit: &mut Emit,
    finished: &mut dyn FnMut(&str, &SymbolPipeline) -> Result<()>,
) -> Result<()> {
    // the causal detections of series not yet finished (in order), and finished series
    // waiting to be smoothed: (index, detections, final model)
    type Job = (usize, Vec<Detection>, Option<JointParams>);
    let pending = std::cell::RefCell::new(std::collections::VecDeque::<SymbolDetections>::new());
    let mut ready: Vec<Job> = Vec::new();
    let (mut next, mut ready_rows) = (0, 0);
    let flush = |ready: &mut Vec<Job>, emit: &mut Emit| -> Result<()> {
        let jobs = std::mem::take(ready);
        let done: Vec<SymbolDetections> = jobs
            .into_par_iter()
            .map(|(k, mut dets, params)| {
                if let Some(p) = params {
                    smooth_detections(&series[k].bars, &p, &mut dets)?;
                }
                Ok((series[k].symbol.clone(), dets))
            })
            .collect::<Result<_>>()?;
        emit(done)
    };
    detect_causal_grouped(
        series,
        cfg,
        &mut |named| {
            let mut pending = pending.borrow_mut();
            for (symbol, dets) in named {
                match pending.back_mut() {
                    Some((last, d)) if *last == symbol => d.extend(dets),
                    _ => pending.push_back((symbol, dets)),
                }
            }
            Ok(())
        },
        &mut |symbol, p| {
            finished(symbol, p)?;
            // a series' detections are all handed on before its pipeline (`grouped`)
            let dets = match pending.borrow_mut().pop_front() {
                Some((s, d)) if s == symbol => d,
                _ => {
                    return Err(CommandError::Argument(format!(
                        "ex-post: the detections of `{symbol}` did not come before its model"
                    )))
                }
            };
            ready_rows += dets.len();
            ready.push((next, dets, p.hmm().params().cloned()));
            next += 1;
            if ready_rows >= PIECE_BARS {
                flush(&mut ready, emit)?;
                ready_rows = 0;
            }
            Ok(())
        },
    )?;
    if !ready.is_empty() {
        flush(&mut ready, emit)?;
    }
    Ok(())
}

/// Replace causal detections of `bars` by the smoothed posteriors of the model `params`
/// (fitted on them causally): regime, confidence and probabilities; the timestamps and
/// model versions stay.
fn smooth_detections(
    bars: &[regime_core::bars::Bar],
    params: &JointParams,
    dets: &mut [Detection],
) -> Result<()> {
    let g = smooth(as_learned(bars).as_deref().unwrap_or(bars), params)?;
    for (d, gj) in dets.iter_mut().zip(g) {
        let (pv, pd, ps) = dims(&gj);
        let am = |x: &[f64]| (0..x.len()).fold(0, |b, i| if x[i] > x[b] { i } else { b });
        let (v, t, s) = (am(&pv), am(&pd), am(&ps));
        if let Some(r) = Regime::from_indices(v, t, s) {
            d.regime = r;
            d.confidence = pv[v] * pd[t] * ps[s];
            d.p_volatility = pv;
            d.p_trend = pd;
            d.p_structure = ps;
        }
    }
    Ok(())
}

/// One symbol's detections.
pub type SymbolDetections = (String, Vec<Detection>);

/// Where detections go as they are made (the output writer).
type Emit<'a> = dyn FnMut(Vec<SymbolDetections>) -> Result<()> + 'a;

/// A symbol's starting point: its member, the detections it already has, and how many bars
/// of its series those cover.
type Start<'e> = (PanelMember<'e>, Vec<Detection>, usize);
/// What a one-pass panel run hands over per symbol (see [`panel_prefix`]).
type Resumed = Option<(SymbolPipeline, Vec<Detection>, usize)>;

fn start<'e>(
    resumed: &mut [Resumed],
    i: usize,
    cfg: &PipelineConfig,
    events: &'e [PoolEvent],
) -> Result<Start<'e>> {
    match resumed.get_mut(i).and_then(Option::take) {
        Some((m, d, n)) => Ok((PanelMember::resume(m), d, n)),
        None => Ok((PanelMember::new(cfg.clone(), events, i)?, Vec::new(), 0)),
    }
}

/// Causal detection of `series` in groups of about `PIECE_BARS` rows (a multiple of the
/// thread count of series where it can): symbols in parallel within a group; a series
/// longer than that, or alone in its group, streams through its pipeline by itself, its bar
/// side on a second thread, in pieces of `STREAM_PIECE_BARS`. `emit` receives each group's (or
/// piece's) detections, which are dropped afterwards, so memory stays bounded by the input
/// plus a group or two (plus what `emit` keeps); `finished` gets each symbol's pipeline once
/// its series is done (to save its model). A panel (two or more series) pools what
/// instruments share causally (SPEC §2 continuous learning): when its part before the last
/// pooling time holds at most `prefix_limit()` bars, that part runs once as a panel with its
/// detections kept and every member continues from there; otherwise the panel runs to its
/// last pooling time for the events only and every symbol replays them. Either way the
/// labels equal `detect_panel`'s, symbol by symbol.
pub fn detect_causal_grouped(
    series: &[io::SymbolBars],
    cfg: &PipelineConfig,
    emit: &mut dyn FnMut(Vec<SymbolDetections>) -> Result<()>,
    finished: &mut dyn FnMut(&str, &SymbolPipeline) -> Result<()>,
) -> Result<()> {
    grouped(series, cfg, prefix_limit(), emit, finished)
}

/// [`detect_causal_grouped`] with the one-pass prefix of up to `chunk` bars, and groups and
/// pieces of up to `chunk.min(PIECE_BARS)`.
fn grouped(
    series: &[io::SymbolBars],
    cfg: &PipelineConfig,
    chunk: usize,
    emit: &mut dyn FnMut(Vec<SymbolDetections>) -> Result<()>,
    finished: &mut dyn FnMut(&str, &SymbolPipeline) -> Result<()>,
) -> Result<()> {
    let bars: Vec<&[regime_core::bars::Bar]> = series.iter().map(|s| s.bars.as_slice()).collect();
    let mut resumed: Vec<Resumed> = Vec::new();
    let events = match panel_prefix(&bars, cfg, chunk)? {
        Some(pre) => {
            resumed = pre
                .members
                .into_iter()
                .zip(pre.detections)
                .zip(pre.done)
                .map(|((m, d), n)| Some((m, d, n)))
                .collect();
            Vec::new()
        }
        None => pool_events(&bars, cfg)?,
    };
    let threads = rayon::current_num_threads();
    let two_threads = threads > 1;
    // rows of a group, and bars of a piece of a series that streams by itself
    let group = chunk.min(PIECE_BARS);
    let mut i = 0;
    while i < series.len() {
        let mut j = i;
        let mut rows = 0;
        // a group holds about `group` rows, in a multiple of the thread count of series
        // when it can (so that no thread idles at its end)
        while j < series.len()
            && series[j].bars.len() <= group
            && (rows < group || ((j - i) % threads != 0 && rows < chunk))
        {
            rows += series[j].bars.len();
            j += 1;
        }
        if j <= i + 1 {
            // a series longer than a group, or alone in its group: it streams by itself in
            // pieces (emitted as they are done, so the output is written meanwhile), its
            // bar side on the other core
            let s = &series[i];
            let (mut p, prefix, done) = start(&mut resumed, i, cfg, &events)?;
            if !prefix.is_empty() {
                emit(vec![(s.symbol.clone(), prefix)])?;
            }
            for piece in s.bars[done..].chunks(stream_piece(chunk)) {
                let mut dets = Vec::new();
                p.update_batch(piece, two_threads, &mut dets);
                emit(vec![(s.symbol.clone(), dets)])?;
            }
            finished(&s.symbol, p.pipeline())?;
            i += 1;
            continue;
        }
        let starts: Vec<Start> = (i..j)
            .map(|k| start(&mut resumed, k, cfg, &events))
            .collect::<Result<_>>()?;
        // fewer series than threads: each series' bar side takes a thread of its own
        let split = two_threads && j - i < threads;
        let out: Vec<(Vec<Detection>, PanelMember)> = series[i..j]
            .par_iter()
            .zip(starts.into_par_iter())
            .map(|(s, (mut p, mut d, done))| {
                p.update_batch(&s.bars[done..], split, &mut d);
                (d, p)
            })
            .collect();
        // the detections first, then the pipelines: a symbol's are all handed on before
        // `finished` sees it, on either path (what ex-post smoothing relies on)
        let (named, members): (Vec<SymbolDetections>, Vec<PanelMember>) = series[i..j]
            .iter()
            .zip(out)
            .map(|(s, (d, p))| ((s.symbol.clone(), d), p))
            .unzip();
        emit(named)?;
        for (s, p) in series[i..j].iter().zip(&members) {
            finished(&s.symbol, p.pipeline())?;
        }
        i = j;
    }
    Ok(())
}

/// `regime detect`: one input, or several read as one panel ([`read_many`]).
pub fn detect(
    inputs: &[PathBuf],
    output_path: &Path,
    mode: Mode,
    skip_bad: bool,
    models_dir: Option<&Path>,
    cfg: &PipelineConfig,
) -> Result<(usize, usize)> {
    check_output(inputs, output_path)?;
    if let Some(dir) = models_dir {
        // once per run, not per model saved: model files left half-written by a killed run
        io::remove_stale_temps(dir, None);
    }
    match inputs {
        [one] => detect_one(one, output_path, mode, skip_bad, models_dir, cfg),
        many => detect_many(many, output_path, mode, skip_bad, models_dir, cfg),
    }
}

/// What was read in a symbol's bars when they held unadjusted splits (see
/// [`regime_core::splits`]): `n` splits, the last one `last` — a rescaling is never silent.
pub fn split_note(symbol: &str, n: usize, last: &regime_core::splits::Split) -> String {
    // forward ratios are whole numbers or halves (3:2, 5:2), reverse ones whole numbers
    let ratio = if last.ratio >= 1.0 {
        let halves = (last.ratio * 2.0).round() as u64;
        if halves.is_multiple_of(2) {
            format!("{}:1", halves / 2)
        } else {
            format!("{halves}:2")
        }
    } else {
        format!("1:{}", (1.0 / last.ratio).round() as u64)
    };
    let what = if n == 1 {
        format!("an unadjusted {ratio} split read")
    } else {
        format!("{n} unadjusted splits read, the last {ratio}")
    };
    format!(
        "{symbol}{}{what} at {} (prices and volume stepped by the ratio at once): the bars from \
         it on are detected as split-adjusted data gives them",
        if symbol.is_empty() { "" } else { ": " },
        io::format_timestamp(last.ts)
    )
}

/// What was read when a symbol's volume stepped with its prices unmoved (see
/// [`regime_core::splits`]): `n` steps, the last one `last`.
pub fn volume_step_note(symbol: &str, n: usize, last: &regime_core::splits::VolumeStep) -> String {
    let what = if n == 1 {
        "its volume stepped".to_string()
    } else {
        format!("{n} steps of its volume read, the last")
    };
    format!(
        "{symbol}{}{what} ×{:.3} at {} with its prices unmoved (a change of unit, of source, \
         or to consolidated volume?): the volume from it on is read on the level before",
        if symbol.is_empty() { "" } else { ": " },
        last.step,
        io::format_timestamp(last.ts)
    )
}

/// [`split_note`] and [`volume_step_note`] for a symbol: what was read (counts, and the
/// last of each), none when nothing was.
fn adjustment_notes(
    symbol: &str,
    splits: (usize, Option<&regime_core::splits::Split>),
    steps: (usize, Option<&regime_core::splits::VolumeStep>),
) -> Vec<String> {
    let split = splits.1.map(|l| split_note(symbol, splits.0, l));
    let step = steps.1.map(|l| volume_step_note(symbol, steps.0, l));
    split.into_iter().chain(step).collect()
}

/// Say on stderr what splits and volume steps (counts, the last ones) a streamed series of
/// `path` held: its bars are not kept for the reading notes.
fn say_adjustments(
    path: &Path,
    symbol: &str,
    splits: (u64, Option<regime_core::splits::Split>),
    steps: (u64, Option<regime_core::splits::VolumeStep>),
) {
    let notes = adjustment_notes(
        symbol,
        (splits.0 as usize, splits.1.as_ref()),
        (steps.0 as usize, steps.1.as_ref()),
    );
    for note in notes {
        crate::say!("{}: {note}", path.display());
    }
}

/// [`adjustment_notes`] for every series of `input` whose bars hold splits or volume steps.
fn split_notes(input: &Input) -> Vec<String> {
    let mut notes = Vec::new();
    for s in &input.series {
        let (splits, steps) = regime_core::splits::find_adjustments(&s.bars);
        notes.extend(adjustment_notes(
            &s.symbol,
            (splits.len(), splits.last()),
            (steps.len(), steps.last()),
        ));
    }
    notes
}

/// [`detect`] of one input: a one-symbol file streamed through the pipeline as it is read.
fn detect_one(
    input_path: &Path,
    output_path: &Path,
    mode: Mode,
    skip_bad: bool,
    models_dir: Option<&Path>,
    cfg: &PipelineConfig,
) -> Result<(usize, usize)> {
    let mut save = |symbol: &str, p: &SymbolPipeline| match models_dir {
        Some(dir) => save_model(dir, symbol, p, input_path).map(|_| ()),
        None => Ok(()),
    };
    // a streamed symbol's bars are not kept for the reading notes: its pipeline says what
    // splits and volume steps it read
    let mut save_streamed = |symbol: &str, p: &SymbolPipeline| {
        say_adjustments(input_path, symbol, p.splits(), p.volume_steps());
        save(symbol, p)
    };
    if mode == Mode::ExPost || io::known_multi_symbol(input_path) {
        // smoothing needs each whole series at once; a file known to hold several symbols
        // is not fed while read (its first symbol's rows could run to the millions before
        // the second shows)
        let input = read_for_detect(input_path, skip_bad)?;
        return detect_read(&input, output_path, mode, cfg, &mut save);
    }
    match read_while_fed(input_path, output_path, skip_bad, &mut |feed, emit| {
        stream_fed(feed, cfg, emit, &mut save_streamed)
    })? {
        Fed::Whole(done) => Ok(done),
        Fed::Read(input) => {
            let input = check_for_detect(input, input_path, skip_bad)?;
            detect_read(&input, output_path, mode, cfg, &mut save)
        }
    }
}

/// What [`read_while_fed`] gave: the whole input went through (bars, rejected rows), or
/// not, and here it is, read whole.
enum Fed {
    Whole((usize, usize)),
    Read(Input),
}

/// Read `input_path` on a thread of its own; while it holds one symbol (and no bad row that
/// would stop the command), that symbol's bars go to `body` as they are read, moved out of
/// the input (so a one-symbol file is never held whole), and what `body` emits is written
/// to `output_path`. If a second symbol or such a row turns up, or `body` gives up (false),
/// what was written is dropped and the input comes back read whole. A few batches are in
/// flight at most: the reader waits for `body`.
fn read_while_fed(
    input_path: &Path,
    output_path: &Path,
    skip_bad: bool,
    body: &mut dyn FnMut(&std::sync::mpsc::Receiver<Feed>, &mut Emit) -> Result<bool>,
) -> Result<Fed> {
    let (feed_tx, feed_rx) = std::sync::mpsc::sync_channel(4);
    let (read, streamed) = std::thread::scope(|s| {
        let reader = std::thread::Builder::new()
            .name("regime-reader".into())
            .spawn_scoped(s, move || read_feeding(input_path, skip_bad, &feed_tx));
        match reader {
            Ok(reader) => {
                let streamed = write_detections(output_path, &mut |emit| body(&feed_rx, emit));
                // drop the receiver first: a reader still sending then stops feeding
                drop(feed_rx);
                let read = reader
                    .join()
                    .unwrap_or_else(|_| Err(CommandError::ReaderStopped));
                (Some(read), streamed)
            }
            // no thread to be had: read here, below
            Err(_) => (None, Ok(false)),
        }
    });
    let (input, sent) = match read {
        Some(read) => read?,
        None => (io::read_bars(input_path, None)?, 0),
    };
    if streamed? {
        report_rejects(&input, input_path);
        let n = sent + input.series.iter().map(|s| s.bars.len()).sum::<usize>();
        return Ok(Fed::Whole((n, input.errors.len())));
    }
    // the bars sent were taken out of the input: read it again, whole
    Ok(Fed::Read(if sent > 0 {
        drop(input);
        io::read_bars(input_path, None)?
    } else {
        input
    }))
}

/// [`detect`] of several files as one panel ([`read_many`]): their symbols detected
/// together (pooled, as a multi-symbol file's are), written to one output.
fn detect_many(
    inputs: &[PathBuf],
    output_path: &Path,
    mode: Mode,
    skip_bad: bool,
    models_dir: Option<&Path>,
    cfg: &PipelineConfig,
) -> Result<(usize, usize)> {
    let (input, from) = read_many(inputs, skip_bad)?;
    let mut save = |symbol: &str, p: &SymbolPipeline| match (models_dir, from.get(symbol)) {
        (Some(dir), Some(source)) => save_model(dir, symbol, p, source).map(|_| ()),
        _ => Ok(()),
    };
    detect_read(&input, output_path, mode, cfg, &mut save)
}

/// `detect` of input read whole: `(bars, rejected rows)`.
fn detect_read(
    input: &Input,
    output_path: &Path,
    mode: Mode,
    cfg: &PipelineConfig,
    save: &mut dyn FnMut(&str, &SymbolPipeline) -> Result<()>,
) -> Result<(usize, usize)> {
    if mode == Mode::ExPost {
        write_detections(output_path, &mut |emit| {
            detect_ex_post(&input.series, cfg, emit, save).map(|()| true)
        })?;
    } else {
        write_detections(output_path, &mut |emit| {
            detect_causal_grouped(&input.series, cfg, emit, save).map(|()| true)
        })?;
    }
    let n = input.series.iter().map(|s| s.bars.len()).sum();
    Ok((n, input.errors.len()))
}

/// What `detect`'s reader thread hands on while it reads.
enum Feed {
    /// More bars of the input's only symbol (its name, the bars read since the last ones).
    Bars(String, Vec<regime_core::bars::Bar>),
    /// The input is read and held that one symbol throughout (and no bad row, or only
    /// rows to skip).
    End,
    /// The input holds more than one symbol, or a bad row that is not to be skipped: what
    /// was sent is not the detection's input.
    Abandon,
}

/// Read `path` for `detect`, moving its one symbol's bars to `feed` as they are read (see
/// [`Feed`]). The input, less the bars moved, and how many those were.
fn read_feeding(
    path: &Path,
    skip_bad: bool,
    feed: &std::sync::mpsc::SyncSender<Feed>,
) -> Result<(Input, usize)> {
    let mut sent = 0;
    let mut live = true;
    let one_symbol = |i: &Input| i.series.len() == 1 && (skip_bad || i.errors.is_empty());
    let input = io::read_bars_watched(path, None, &mut |i| {
        if !live {
            return;
        }
        if i.series.len() > 1 || !skip_bad && !i.errors.is_empty() {
            live = false;
            let _ = feed.send(Feed::Abandon);
            return;
        }
        if let Some(s) = i.series.first_mut().filter(|s| !s.bars.is_empty()) {
            let room = s.bars.len();
            let bars = std::mem::replace(&mut s.bars, Vec::with_capacity(room));
            sent += bars.len();
            // a closed channel: the detection stopped (its error is reported)
            live = feed.send(Feed::Bars(s.symbol.clone(), bars)).is_ok();
        }
    })?;
    if live {
        let _ = feed.send(if one_symbol(&input) {
            Feed::End
        } else {
            Feed::Abandon
        });
    }
    Ok((input, sent))
}

/// Detect the bars `feed` sends, in the pieces [`detect_causal_grouped`] would cut the
/// series into (the same calls, so the same detections and the same output), handing each
/// piece's detections to `emit`. True once the whole input went through; false when it was
/// abandoned (or the reader stopped without saying the input was whole: a read error, which
/// the caller reports).
fn stream_fed(
    feed: &std::sync::mpsc::Receiver<Feed>,
    cfg: &PipelineConfig,
    emit: &mut Emit,
    finished: &mut dyn FnMut(&str, &SymbolPipeline) -> Result<()>,
) -> Result<bool> {
    let piece = stream_piece(CHUNK_BARS);
    let two_threads = rayon::current_num_threads() > 1;
    let mut member: Option<(String, PanelMember)> = None;
    let mut pending = Vec::new();
    let mut run = |(symbol, p): &mut (String, PanelMember), bars: &[regime_core::bars::Bar]| {
        let mut dets = Vec::new();
        p.update_batch(bars, two_threads, &mut dets);
        emit(vec![(symbol.clone(), dets)])
    };
    while let Ok(f) = feed.recv() {
        match f {
            Feed::Bars(symbol, bars) => {
                let m = match member.as_mut() {
                    Some(m) => m,
                    None => member.insert((symbol, PanelMember::new(cfg.clone(), &[], 0)?)),
                };
                if pending.is_empty() {
                    pending = bars;
                } else {
                    pending.extend(bars);
                }
                // whole pieces from the front, the rest (less than a piece) kept
                let whole = pending.len() / piece * piece;
                for chunk in pending[..whole].chunks(piece) {
                    run(m, chunk)?;
                }
                pending.drain(..whole);
            }
            Feed::End => {
                let Some(mut m) = member else {
                    return Ok(false);
                };
                if !pending.is_empty() {
                    run(&mut m, &pending)?;
                }
                finished(&m.0, m.1.pipeline())?;
                return Ok(true);
            }
            Feed::Abandon => return Ok(false),
        }
    }
    Ok(false)
}

/// Write the detections `body` emits to `output_path`, building and encoding them on a
/// thread of their own while detection goes on (one emitted batch in the channel and one
/// being written at most). The file appears only when `body` returns true and everything
/// was written; on false or an error nothing is left behind.
fn write_detections(
    output_path: &Path,
    body: &mut dyn FnMut(&mut Emit) -> Result<bool>,
) -> Result<bool> {
    let w = io::TableWriter::create(output_path)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<SymbolDetections>>(1);
    std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("regime-writer".into())
            .spawn_scoped(s, move || -> Result<io::TableWriter> {
                let mut w = w;
                // the table is built here too: detection's own thread is the busier one
                for named in rx {
                    w.write(io::detections_table(&named))?;
                }
                Ok(w)
            })
            .map_err(|e| CommandError::WriterThread(e.to_string()))?;
        let detected = body(&mut |named| {
            // a closed channel means the writer failed: its error is reported below
            tx.send(named).map_err(|_| CommandError::WriterStopped)
        });
        drop(tx);
        let written = writer.join().unwrap_or(Err(CommandError::WriterStopped));
        match (detected, written) {
            // the writer's own error says more than "stopped"
            (Err(CommandError::WriterStopped), Err(e)) | (Ok(_), Err(e)) => Err(e),
            // unfinished: the temporary file is removed when `w` drops
            (Err(e), _) => Err(e),
            (Ok(false), Ok(_)) => Ok(false),
            (Ok(true), Ok(w)) => {
                w.finish()?;
                Ok(true)
            }
        }
    })
}

/// Write a symbol's learned model as `DIR/<symbol>.v<version>.json` (atomically).
pub fn save_model(dir: &Path, symbol: &str, p: &SymbolPipeline, source: &Path) -> Result<PathBuf> {
    let write_err = |path: &Path, e: &dyn std::fmt::Display| {
        CommandError::Io(io::IoError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, &e))?;
    let name = model_stem(symbol);
    let h = p.hmm();
    let path = dir.join(format!("{name}.v{}.json", h.model_version()));
    let doc = json!({
        "symbol": symbol,
        "model_version": h.model_version(),
        "bars_seen": h.n(),
        "source": source.display().to_string(),
        "params": h.params(),
    });
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let text = serde_json::to_string_pretty(&doc).map_err(|e| write_err(&path, &e))?;
    // written, synced, renamed, and the rename synced: a crash leaves the previous versions
    // and either no file of this version or the whole of it, never an empty one (a new
    // name gets none of ext4's rename-over-a-file flush)
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        io::fsync_dir(dir);
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_err(&path, &e)
    })?;
    Ok(path)
}

/// The generator's settings for `regime generate` and `regime.generate`, checked: at least
/// one symbol and one bar, a step of a second or more, and every bar's time within the years
/// 1–9999 that every store and file format holds (10 million daily bars from 2000 would run
/// into the year 29,000, and `detect` would refuse them as out of range).
pub fn synth_config(
    symbols: usize,
    bars: usize,
    step_secs: i64,
    start_ms: Option<i64>,
) -> std::result::Result<SynthConfig, String> {
    if symbols == 0 || bars == 0 {
        return Err("symbols and bars must be >= 1".into());
    }
    if step_secs < 1 {
        return Err(format!("the step must be >= 1 second, got {step_secs}"));
    }
    let cfg = SynthConfig {
        symbols,
        bars,
        start_ms: start_ms.unwrap_or(SynthConfig::default().start_ms),
        step_ms: step_secs.saturating_mul(1000),
        ..Default::default()
    };
    // the last bar's time; None where the span overflows
    let last = i64::try_from(bars - 1)
        .ok()
        .and_then(|n| step_secs.checked_mul(1000)?.checked_mul(n))
        .and_then(|span| span.checked_add(cfg.start_ms));
    let in_range = |t: i64| (regime_core::bars::MIN_TS..=regime_core::bars::MAX_TS).contains(&t);
    match last {
        Some(t) if in_range(cfg.start_ms) && in_range(t) => Ok(cfg),
        _ => {
            let mut start = String::new();
            regime_core::bars::push_timestamp(&mut start, cfg.start_ms);
            Err(format!(
                "{bars} bars {step_secs} s apart from {start} run outside the years 1-9999 \
                 (what stores and files hold): fewer bars, a shorter step or an earlier start"
            ))
        }
    }
}

/// `regime generate`.
pub fn generate_file(
    output: &Path,
    cfg: &SynthConfig,
    seed: u64,
    tick: Option<f64>,
) -> Result<usize> {
    io::Format::of(output)?;
    let (t, n) = generate_table(cfg, seed, tick)?;
    io::write_table(output, t)?;
    Ok(n)
}

/// A synthetic panel as a table (OHLCV and the true labels) and its row count. With
/// `tick`, every price is rounded to a multiple of it (never below one tick), as a market
/// quotes it — a grid coarse beside the bars' moves is what `model::PriceGrid` reads; the
/// true labels are those of the series before rounding.
pub fn generate_table(cfg: &SynthConfig, seed: u64, tick: Option<f64>) -> Result<(Table, usize)> {
    if let Some(t) = tick {
        if !(t.is_finite() && t > 0.0) {
            return Err(CommandError::Argument(format!(
                "the tick must be a finite price > 0, got {t}"
            )));
        }
    }
    let mut data = generate(cfg, seed);
    if let Some(t) = tick {
        for d in &mut data {
            d.bars = datasets::quote::on_price_grid(&d.bars, t);
        }
    }
    let n: usize = data.iter().map(|d| d.bars.len()).sum();
    let mut cols: Vec<Vec<f64>> = (0..5).map(|_| Vec::with_capacity(n)).collect();
    let mut ts = Vec::with_capacity(n);
    let mut sym = Vec::with_capacity(data.len());
    let mut lab: [Vec<i64>; 4] = Default::default();
    for d in &data {
        sym.push((d.symbol.clone(), d.bars.len()));
        for (b, l) in d.bars.iter().zip(&d.labels) {
            ts.push(b.ts);
            for (k, v) in [b.open, b.high, b.low, b.close, b.volume]
                .iter()
                .enumerate()
            {
                cols[k].push(*v);
            }
            lab[0].push((l[0] * 6 + l[1] * 2 + l[2]) as i64);
            for k in 0..3 {
                lab[k + 1].push(l[k] as i64);
            }
        }
    }
    let mut t = Table::default();
    t.push("timestamp", Column::Ts(ts));
    t.push("symbol", Column::Runs(sym));
    for (k, name) in ["open", "high", "low", "close", "volume"]
        .iter()
        .enumerate()
    {
        t.push(name, Column::F64(std::mem::take(&mut cols[k])));
    }
    for (k, name) in [
        "true_regime_id",
        "true_volatility",
        "true_trend",
        "true_structure",
    ]
    .iter()
    .enumerate()
    {
        t.push(name, Column::Int(std::mem::take(&mut lab[k])));
    }
    Ok((t, n))
}

/// Edges of the probability bins of [`Calibration`].
const CALIBRATION_EDGES: [f64; CALIBRATION_BINS + 1] =
    [0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0];
const CALIBRATION_BINS: usize = 9;

/// Whether a reported probability means what it says: per bin of the probability given for
/// the final label, the bars, the sum of those probabilities and how many were right.
#[derive(Debug, Clone, Copy, Default)]
struct Calibration {
    bars: [u64; CALIBRATION_BINS],
    sum_p: [f64; CALIBRATION_BINS],
    right: [u64; CALIBRATION_BINS],
}

impl Calibration {
    fn add(&mut self, p: f64, right: bool) {
        if !p.is_finite() {
            return;
        }
        // the bin whose upper edge is the first above p (1.0 falls in the last)
        let b = CALIBRATION_EDGES[1..]
            .iter()
            .position(|&e| p < e)
            .unwrap_or(CALIBRATION_BINS - 1);
        self.bars[b] += 1;
        self.sum_p[b] += p;
        self.right[b] += u64::from(right);
    }

    /// The non-empty bins: `from`, `to`, `bars`, `mean_probability`, `share_right`.
    fn json(&self) -> serde_json::Value {
        let bins: Vec<serde_json::Value> = (0..CALIBRATION_BINS)
            .filter(|&b| self.bars[b] > 0)
            .map(|b| {
                let n = self.bars[b] as f64;
                json!({
                    "from": CALIBRATION_EDGES[b],
                    "to": CALIBRATION_EDGES[b + 1],
                    "bars": self.bars[b],
                    "mean_probability": self.sum_p[b] / n,
                    "share_right": self.right[b] as f64 / n,
                })
            })
            .collect();
        serde_json::Value::Array(bins)
    }
}

fn runs(labels: &[u8]) -> (usize, f64) {
    if labels.is_empty() {
        return (0, 0.0);
    }
    let switches = labels.windows(2).filter(|w| w[0] != w[1]).count();
    (switches, labels.len() as f64 / (switches + 1) as f64)
}

/// `regime evaluate`: accuracy against a label column, per dimension and for all 18, for the
/// final labels, the raw ensemble and each method; confusion matrix; calibration of the
/// reported probabilities; durations; switches.
pub fn evaluate(
    inputs: &[PathBuf],
    label_column: &str,
    score_last: f64,
    cfg: &PipelineConfig,
) -> Result<serde_json::Value> {
    if !(score_last > 0.0 && score_last <= 1.0) {
        return Err(CommandError::Argument(format!(
            "--score-last must be in (0, 1], got {score_last}"
        )));
    }
    let mut files = Vec::with_capacity(inputs.len());
    for p in inputs {
        let input = io::read_bars(p, Some(label_column))?;
        report_rejects(&input, p);
        files.push((p.clone(), input));
    }
    if let [(p, input)] = files.as_slice() {
        return evaluate_input(input, p, score_last, cfg);
    }
    // several files: one panel, as `detect` reads them
    let (input, _) = panel_of(files)?;
    evaluate_input(&input, Path::new("(the input files)"), score_last, cfg)
}

/// [`evaluate`] on input already read (with its label column); `source` names it in errors.
pub fn evaluate_input(
    input: &Input,
    source: &Path,
    score_last: f64,
    cfg: &PipelineConfig,
) -> Result<serde_json::Value> {
    if !(score_last > 0.0 && score_last <= 1.0) {
        return Err(CommandError::Argument(format!(
            "score_last must be in (0, 1], got {score_last}"
        )));
    }
    if input.series.is_empty() {
        return Err(CommandError::NoData {
            path: source.to_path_buf(),
            what: "no valid bars".into(),
        });
    }
    let rows = 2 + METHOD_NAMES.len();
    let mut hits = vec![[0u64; 4]; rows];
    let mut covered = vec![[0u64; 4]; rows];
    let mut n = 0u64;
    let mut confusion = vec![vec![0u64; N_REGIMES]; N_REGIMES];
    let mut calibration = [Calibration::default(); 4];
    let (mut true_sw, mut det_sw, mut true_dur, mut det_dur, mut nser) = (0, 0, 0.0, 0.0, 0.0);
    // the series being scored, the bars of it scored so far, and its scored labels (true,
    // detected): each piece of detections is scored as it comes and dropped, so the input
    // (with its labels) is all that is held whole
    let (mut cur, mut at) = (0usize, 0usize);
    let (mut tl, mut dl) = (Vec::new(), Vec::new());
    let mut end_series = |tl: &mut Vec<u8>, dl: &mut Vec<u8>| {
        let (a, b) = runs(tl);
        let (c, e) = runs(dl);
        true_sw += a;
        true_dur += b;
        det_sw += c;
        det_dur += e;
        nser += 1.0;
        tl.clear();
        dl.clear();
    };
    let series = &input.series;
    detect_causal_grouped(
        series,
        cfg,
        &mut |named| {
            for (symbol, d) in named {
                while cur < series.len() && at == series[cur].bars.len() {
                    end_series(&mut tl, &mut dl);
                    (cur, at) = (cur + 1, 0);
                }
                let s = match series.get(cur) {
                    Some(s) if s.symbol == symbol && at + d.len() <= s.bars.len() => s,
                    _ => {
                        return Err(CommandError::Argument(format!(
                            "evaluate: detections of `{symbol}` came out of order"
                        )))
                    }
                };
                let start = ((1.0 - score_last) * s.bars.len() as f64).floor() as usize;
                for (k, det) in d.iter().enumerate() {
                    let t = at + k;
                    if t < start {
                        continue;
                    }
                    let Some(Some(y)) = s.labels.get(t) else {
                        continue;
                    };
                    let Some(truth) = Regime::from_id(*y) else {
                        continue;
                    };
                    let ty = truth.indices();
                    n += 1;
                    let r = det.regime.indices();
                    let mut cands = vec![[r[0] as u8, r[1] as u8, r[2] as u8], det.raw];
                    cands.extend(det.methods.iter().copied());
                    for (k, c) in cands.iter().enumerate() {
                        // 255 = the method abstained on that dimension: not scored there
                        let mut all = true;
                        for dim in 0..3 {
                            if c[dim] == 255 {
                                all = false;
                                continue;
                            }
                            covered[k][dim] += 1;
                            if c[dim] as usize == ty[dim] {
                                hits[k][dim] += 1;
                            } else {
                                all = false;
                            }
                        }
                        if c.iter().all(|x| *x != 255) {
                            covered[k][3] += 1;
                            if all {
                                hits[k][3] += 1;
                            }
                        }
                    }
                    confusion[*y as usize][det.regime.id() as usize] += 1;
                    // the probability reported for each final label, against whether it
                    // is right
                    let p = [
                        det.p_volatility[r[0]],
                        det.p_trend[r[1]],
                        det.p_structure[r[2]],
                        det.confidence,
                    ];
                    for (k, cal) in calibration.iter_mut().enumerate() {
                        let right = if k < 3 {
                            r[k] == ty[k]
                        } else {
                            det.regime == truth
                        };
                        cal.add(p[k], right);
                    }
                    tl.push(*y);
                    dl.push(det.regime.id());
                }
                at += d.len();
            }
            Ok(())
        },
        &mut |_, _| Ok(()),
    )?;
    // the series left: the last one detected (and any with no bars)
    while cur < series.len() {
        end_series(&mut tl, &mut dl);
        cur += 1;
    }
    if n == 0 {
        return Err(CommandError::NoData {
            path: source.to_path_buf(),
            what: "no labelled bars in the label column".into(),
        });
    }
    let names: Vec<String> = ["final", "ensemble_raw"]
        .iter()
        .map(|s| s.to_string())
        .chain(METHOD_NAMES.iter().map(|m| format!("method_{m}")))
        .collect();
    let mut acc = serde_json::Map::new();
    for (k, name) in names.iter().enumerate() {
        let f = |i: usize| (covered[k][i] > 0).then(|| hits[k][i] as f64 / covered[k][i] as f64);
        acc.insert(
            name.clone(),
            json!({"volatility": f(0), "trend": f(1), "structure": f(2), "regime": f(3)}),
        );
    }
    Ok(json!({
        "bars_scored": n,
        "symbols": input.series.len(),
        "accuracy": acc,
        "confusion_matrix": confusion,
        "calibration": {
            "volatility": calibration[0].json(),
            "trend": calibration[1].json(),
            "structure": calibration[2].json(),
            "regime": calibration[3].json(),
        },
        "switches": {"true": true_sw, "detected": det_sw},
        "mean_duration_bars": {"true": true_dur / nser, "detected": det_dur / nser},
        "rejected_rows": input.errors.len(),
    }))
}

/// An evaluation as a table (lines of text).
pub fn format_evaluation(v: &serde_json::Value) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "bars scored: {}  symbols: {}",
        v["bars_scored"], v["symbols"]
    );
    let _ = writeln!(
        o,
        "{:<22} {:>10} {:>8} {:>10} {:>8}",
        "labels", "volatility", "trend", "structure", "all 18"
    );
    if let Some(acc) = v["accuracy"].as_object() {
        for (name, a) in acc {
            let g = |k: &str| match a[k].as_f64() {
                Some(x) => format!("{x:.4}"),
                None => "n/a".to_string(),
            };
            let _ = writeln!(
                o,
                "{:<22} {:>10} {:>8} {:>10} {:>8}",
                name,
                g("volatility"),
                g("trend"),
                g("structure"),
                g("regime")
            );
        }
    }
    let _ = writeln!(
        o,
        "switches: true {} detected {}; mean duration (bars): true {:.1} detected {:.1}",
        v["switches"]["true"],
        v["switches"]["detected"],
        v["mean_duration_bars"]["true"].as_f64().unwrap_or(0.0),
        v["mean_duration_bars"]["detected"].as_f64().unwrap_or(0.0)
    );
    let _ = writeln!(
        o,
        "calibration of the final labels (per bin of the probability reported for the label: \
         mean probability / share right, bars; `regime` is the confidence)"
    );
    for dim in ["volatility", "trend", "structure", "regime"] {
        let bins = v["calibration"][dim]
            .as_array()
            .map_or(&[][..], Vec::as_slice);
        let cells: Vec<String> = bins
            .iter()
            .map(|b| {
                format!(
                    "{:.2}-{:.2}: {:.3} / {:.3} ({})",
                    b["from"].as_f64().unwrap_or(0.0),
                    b["to"].as_f64().unwrap_or(0.0),
                    b["mean_probability"].as_f64().unwrap_or(0.0),
                    b["share_right"].as_f64().unwrap_or(0.0),
                    b["bars"].as_u64().unwrap_or(0)
                )
            })
            .collect();
        let _ = writeln!(o, "  {dim:<11} {}", cells.join("; "));
    }
    let Some(m) = v["confusion_matrix"].as_array() else {
        return o;
    };
    let counts: Vec<Vec<u64>> = m
        .iter()
        .map(|r| {
            r.as_array()
                .map(|r| r.iter().map(|x| x.as_u64().unwrap_or(0)).collect())
                .unwrap_or_default()
        })
        .collect();
    let _ = writeln!(o, "confusion of the final labels (rows: true state, columns: detected; share of each true state's bars; 18 x 18 counts with --json)");
    for (name, states) in [
        ("volatility", &["low", "medium", "high"][..]),
        ("trend", &["down", "neutral", "up"][..]),
        ("structure", &["trending", "mean_reverting"][..]),
    ] {
        let dim = |id: usize| -> usize {
            match name {
                "volatility" => id / 6,
                "trend" => (id / 2) % 3,
                _ => id % 2,
            }
        };
        let k = states.len();
        let mut c = vec![vec![0u64; k]; k];
        for (t, row) in counts.iter().enumerate() {
            for (d, &n) in row.iter().enumerate() {
                c[dim(t)][dim(d)] += n;
            }
        }
        let _ = write!(o, "  {name:<16}");
        for s in states {
            let _ = write!(o, " {s:>14}");
        }
        let _ = writeln!(o, " {:>10}", "bars");
        for (i, row) in c.iter().enumerate() {
            let total: u64 = row.iter().sum();
            let _ = write!(o, "    {:<14}", states[i]);
            for &n in row {
                if total > 0 {
                    let _ = write!(o, " {:>14.3}", n as f64 / total as f64);
                } else {
                    let _ = write!(o, " {:>14}", "-");
                }
            }
            let _ = writeln!(o, " {total:>10}");
        }
    }
    o
}

/// Which rows `regime export` writes (everything when empty).
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only these symbols (all when empty).
    pub symbols: std::collections::BTreeSet<String>,
    /// From this time (ms, inclusive).
    pub from: Option<i64>,
    /// Up to this time (ms, inclusive).
    pub to: Option<i64>,
}

impl ExportFilter {
    /// No condition at all.
    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty() && self.from.is_none() && self.to.is_none()
    }

    /// Whether `r` is exported.
    pub fn keeps(&self, r: &crate::store::HistoryRow) -> bool {
        (self.symbols.is_empty() || self.symbols.contains(&r.symbol))
            && self.from.is_none_or(|t| r.ts >= t)
            && self.to.is_none_or(|t| r.ts <= t)
    }
}

/// `regime export`: every row of `regime_history` to CSV or Parquet (by extension), in
/// `(symbol, timestamp)` order, streamed in batches. The CSV loads with HeavyDB's
/// `COPY regime_history FROM '…' WITH (header='true')` (timestamps `YYYY-MM-DD HH:MM:SS.fff`).
pub fn export(
    storage: &crate::config::StorageConfig,
    output: &Path,
    filter: &ExportFilter,
) -> Result<u64> {
    use crate::store::HistoryRow;
    crate::store::require_store(storage, "export")?;
    let mut store = crate::store::open(storage, crate::store::Role::Reader)?;
    let mut w = io::TableWriter::create(output)?;
    let mut n = 0u64;
    let mut write_err: Option<io::IoError> = None;
    let res = store.scan(65_536, &mut |mut rows: Vec<HistoryRow>| {
        if !filter.is_empty() {
            rows.retain(|r| filter.keeps(r));
            if rows.is_empty() {
                return Ok(());
            }
        }
        n += rows.len() as u64;
        let mut t = Table::default();
        t.push("timestamp", Column::Ts(rows.iter().map(|r| r.ts).collect()));
        t.push(
            "symbol",
            Column::Str(rows.iter().map(|r| r.symbol.clone()).collect()),
        );
        t.push(
            "regime_id",
            Column::Int(rows.iter().map(|r| r.regime_id as i64).collect()),
        );
        t.push(
            "regime_name",
            Column::Static(
                rows.iter()
                    .map(|r| {
                        Regime::from_id(r.regime_id)
                            .map(|g| g.snake_name())
                            .unwrap_or("unknown")
                    })
                    .collect(),
            ),
        );
        t.push(
            "volatility",
            Column::Int(rows.iter().map(|r| r.volatility as i64).collect()),
        );
        t.push(
            "trend",
            Column::Int(rows.iter().map(|r| r.trend as i64).collect()),
        );
        t.push(
            "structure",
            Column::Int(rows.iter().map(|r| r.structure as i64).collect()),
        );
        t.push(
            "confidence",
            Column::F64(rows.iter().map(|r| r.confidence).collect()),
        );
        for (k, name) in io::PROB_COLUMNS.iter().enumerate() {
            t.push(
                name,
                Column::F64(
                    rows.iter()
                        .map(|r| match k {
                            0..=2 => r.p_volatility[k],
                            3..=5 => r.p_trend[k - 3],
                            _ => r.p_structure[k - 6],
                        })
                        .collect(),
                ),
            );
        }
        t.push(
            "model_version",
            Column::Int(rows.iter().map(|r| r.model_version as i64).collect()),
        );
        if let Err(e) = w.write(t) {
            write_err = Some(e);
            return Err(crate::store::StoreError::Corrupt("write failed".into()));
        }
        Ok(())
    });
    if let Some(e) = write_err {
        return Err(e.into());
    }
    res?;
    w.finish()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The symbols and regime ids of a `detect` output file (Parquet).
    fn output_regimes(path: &Path) -> Vec<(String, i64)> {
        use arrow::array::{AsArray, StringArray};
        use arrow::datatypes::Int64Type;
        let file = std::fs::File::open(path).expect("output");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.expect("batch");
            let sym = batch.column_by_name("symbol").expect("symbol");
            let sym = sym.as_any().downcast_ref::<StringArray>().expect("text");
            let id = batch.column_by_name("regime_id").expect("regime_id");
            let id = id.as_primitive::<Int64Type>();
            for k in 0..batch.num_rows() {
                out.push((sym.value(k).to_string(), id.value(k)));
            }
        }
        out
    }

    /// Rewrite an Arrow IPC file (ours has one batch) in batches of `rows`.
    fn rebatch_arrow(path: &Path, rows: usize) {
        let file = std::fs::File::open(path).expect("arrow");
        let reader = arrow::ipc::reader::FileReader::try_new(file, None).expect("reader");
        let schema = reader.schema();
        let batches: Vec<_> = reader.map(|b| b.expect("batch")).collect();
        let out = std::fs::File::create(path).expect("rewrite");
        let mut w = arrow::ipc::writer::FileWriter::try_new(out, &schema).expect("writer");
        for b in &batches {
            let mut at = 0;
            while at < b.num_rows() {
                let n = rows.min(b.num_rows() - at);
                w.write(&b.slice(at, n)).expect("write");
                at += n;
            }
        }
        w.finish().expect("finish");
    }

    fn expected_regimes(symbols: &[String], dets: &[Vec<Detection>]) -> Vec<(String, i64)> {
        symbols
            .iter()
            .zip(dets)
            .flat_map(|(s, d)| d.iter().map(move |d| (s.clone(), i64::from(d.regime.id()))))
            .collect()
    }

    /// Every row of a `detect` output file (Parquet), as one batch.
    fn output_rows(path: &Path) -> arrow::record_batch::RecordBatch {
        use arrow::record_batch::RecordBatchReader;
        let file = std::fs::File::open(path).expect("output");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        let schema = reader.schema();
        let batches: Vec<_> = reader.map(|b| b.expect("batch")).collect();
        arrow::compute::concat_batches(&schema, &batches).expect("concat")
    }

    /// `detect --model` of a one-symbol file on the CPU backend scores its bars as they are
    /// read, each exactly as a panel scores them (a split taken out first, as the learning
    /// pipeline takes it out); a series a panel would rescale into `f32`'s room goes the
    /// panel's way. Longer than a piece (65,536 bars), so pieces are written while the rest
    /// is read.
    #[test]
    fn a_one_symbol_file_is_scored_while_read_as_in_a_panel() {
        let dir = tempfile::tempdir().expect("tmp");
        let synth = SynthConfig {
            symbols: 1,
            bars: 70_000,
            ..SynthConfig::default()
        };
        let data = generate(&synth, 107_405);
        let model = dir.path().join("m.json");
        let doc = json!({"params": data[0].true_params, "model_version": 7});
        std::fs::write(&model, doc.to_string()).expect("model");
        let models = ModelSource::open(&model).expect("models");
        let cpu = regime_core::backend::CpuBackend::new();
        for scale in [1.0, 2f64.powi(130)] {
            // an unadjusted 3:1 split at bar 40,000
            let csv: String = data[0]
                .bars
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let (p, v) = if i < 40_000 {
                        (scale, 1.0)
                    } else {
                        (scale / 3.0, 3.0)
                    };
                    format!(
                        "{},{:e},{:e},{:e},{:e},{}\n",
                        b.ts,
                        b.open * p,
                        b.high * p,
                        b.low * p,
                        b.close * p,
                        b.volume * v
                    )
                })
                .collect();
            let input = dir.path().join("X.csv");
            std::fs::write(
                &input,
                format!("timestamp,open,high,low,close,volume\n{csv}"),
            )
            .expect("input");
            let streamed = dir.path().join(format!("streamed{scale}.parquet"));
            match score_one_streamed(&input, &streamed, false, &models).expect("scored") {
                Fed::Whole((n, bad)) => {
                    assert_eq!(scale, 1.0, "prices at 2^130 are not scored while read");
                    assert_eq!((n, bad), (70_000, 0));
                }
                Fed::Read(read) => {
                    assert_ne!(scale, 1.0, "prices near 100 are scored while read");
                    assert_eq!(read.series[0].bars.len(), 70_000, "read whole again");
                    assert!(!streamed.exists(), "nothing written");
                    // what `detect --model` then does
                    let scored = detect_with_models(
                        std::slice::from_ref(&input),
                        &streamed,
                        false,
                        &models,
                        &cpu,
                    )
                    .expect("scored");
                    assert_eq!(
                        scored,
                        Scored {
                            bars: 70_000,
                            rejected: 0,
                            streamed: false
                        }
                    );
                }
            }
            // the panel's way: the input read whole, scored in groups
            let read = read_for_detect(&input, false).expect("read");
            let (splits, _) = regime_core::splits::find_adjustments(&read.series[0].bars);
            assert_eq!(splits.len(), 1, "the split is read");
            let found = models_for(&read.series, &models).expect("found");
            let whole = dir.path().join(format!("whole{scale}.parquet"));
            let written = write_detections(&whole, &mut |emit| {
                score_grouped(&read.series, &found, &cpu, MODEL_SIZES, emit).map(|()| true)
            });
            assert!(written.expect("written"));
            let (got, want) = (output_rows(&streamed), output_rows(&whole));
            assert_eq!(got.num_rows(), 70_000);
            assert_eq!(got, want, "scale {scale}");
        }
    }

    /// `detect` runs a one-symbol file through the pipeline while reading it; a second
    /// symbol turning up after the first piece was detected (symbol-major rows in a gzip
    /// CSV, which gives no hint beforehand), or a bad row not to be skipped, drops that for
    /// the whole input read again. A Parquet, CSV or Arrow file known to hold several
    /// symbols is read whole first. Each way the labels are those of detecting the whole
    /// input at once, and a refused input leaves no file.
    #[test]
    fn a_files_symbol_is_its_name_without_the_formats_extensions() {
        for (name, sym) in [
            ("AAPL.csv", "AAPL"),
            ("data/AAPL.csv.gz", "AAPL"),
            ("SPY.parquet", "SPY"),
            ("BRK.B.csv", "BRK.B"),
            ("aapl.us.txt", "aapl.us"),
            ("QQQ", "QQQ"),
            (".csv", ".csv"),
        ] {
            assert_eq!(file_symbol(Path::new(name)), sym, "{name}");
        }
    }

    /// Fixed-model scoring in groups of whole series, written in pieces, gives the labels
    /// of one panel scored at once: series of 4,000, 3,000 and 9,000 bars in groups of
    /// 7,500 rows (two series, then one) and pieces of 2,500 (across a series' end, and
    /// within one).
    #[test]
    fn fixed_models_score_in_groups_and_pieces_as_in_one_panel() {
        let dir = tempfile::tempdir().expect("tmp");
        let synth = SynthConfig {
            symbols: 3,
            bars: 9_000,
            ..SynthConfig::default()
        };
        let mut data = generate(&synth, 11);
        data[0].bars.truncate(4_000);
        data[1].bars.truncate(3_000);
        let series: Vec<io::SymbolBars> = data
            .iter()
            .map(|d| io::SymbolBars {
                symbol: d.symbol.clone(),
                bars: d.bars.clone(),
                labels: Vec::new(),
            })
            .collect();
        let found: Vec<(JointParams, u32)> =
            data.iter().map(|d| (d.true_params.clone(), 7)).collect();
        let cpu = regime_core::backend::CpuBackend::new();
        let sizes = ScoreSizes {
            group: 7_500,
            piece: 2_500,
        };
        let out = dir.path().join("out.parquet");
        let mut pieces = Vec::new();
        let written = write_detections(&out, &mut |emit| {
            score_grouped(&series, &found, &cpu, sizes, &mut |piece| {
                pieces.push(
                    piece
                        .iter()
                        .map(|(s, d)| (s.clone(), d.len()))
                        .collect::<Vec<_>>(),
                );
                emit(piece)
            })
            .map(|()| true)
        });
        assert!(written.expect("written"));
        // group one: 2,500 of A; 1,500 of A and 1,000 of B; 2,000 of B. Group two: C in
        // 2,500, 2,500, 2,500 and 1,500
        let [a, b, c] = [0, 1, 2].map(|k| data[k].symbol.clone());
        let want_pieces = vec![
            vec![(a.clone(), 2_500)],
            vec![(a, 1_500), (b.clone(), 2_500)],
            vec![(b, 500)],
            vec![(c.clone(), 2_500)],
            vec![(c.clone(), 2_500)],
            vec![(c.clone(), 2_500)],
            vec![(c, 1_500)],
        ];
        assert_eq!(pieces, want_pieces);
        let bars: Vec<&[regime_core::bars::Bar]> = data.iter().map(|d| d.bars.as_slice()).collect();
        let panel = Panel::from_series(&bars).expect("panel");
        let params: Vec<JointParams> = found.iter().map(|f| f.0.clone()).collect();
        let post = cpu
            .detect(&panel, &ParamTable::new(&params).expect("table"))
            .expect("scored");
        let want: Vec<(String, i64)> = data
            .iter()
            .enumerate()
            .flat_map(|(k, d)| panel.series(k).map(move |i| (d.symbol.clone(), i)))
            .map(|(s, i)| (s, i64::from(post.regime[i])))
            .collect();
        assert_eq!(output_regimes(&out), want);
        // the labels move over the series: a constant output would not test the order
        let distinct: std::collections::HashSet<i64> = want.iter().map(|w| w.1).collect();
        assert!(distinct.len() >= 9, "{} regimes", distinct.len());
    }

    /// `--mode ex-post` smooths each series with the model its causal run ended with —
    /// the model `--models-dir` saves, in either mode — and hands the series on as they
    /// are smoothed (four series of 100,000 bars: one group, smoothed and written after
    /// the third and the fourth).
    #[test]
    fn ex_post_smooths_each_series_with_the_model_it_saves() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = PipelineConfig::default();
        let synth = SynthConfig {
            symbols: 4,
            bars: 100_000,
            ..SynthConfig::default()
        };
        assert!(3 * synth.bars >= PIECE_BARS && 2 * synth.bars < PIECE_BARS);
        let input = dir.path().join("in.parquet");
        generate_file(&input, &synth, 17, None).expect("generate");
        let run = |mode: Mode, name: &str| {
            let models = dir.path().join(format!("models_{name}"));
            std::fs::create_dir_all(&models).expect("dir");
            let out = dir.path().join(format!("{name}.parquet"));
            detect(
                std::slice::from_ref(&input),
                &out,
                mode,
                false,
                Some(&models),
                &cfg,
            )
            .expect("detect");
            (out, models)
        };
        let (smoothed, models) = run(Mode::ExPost, "expost");
        let (_, causal_models) = run(Mode::Causal, "causal");
        let got = output_regimes(&smoothed);
        let data = generate(&synth, 17);
        let mut want = Vec::new();
        for d in &data {
            let source = ModelSource::open(&models).expect("models");
            let (params, _) = source.for_symbol(&d.symbol).expect("model");
            let (same, _) = ModelSource::open(&causal_models)
                .and_then(|m| m.for_symbol(&d.symbol))
                .expect("causal model");
            assert!(
                params == same,
                "{}: ex-post and causal runs saved different models",
                d.symbol
            );
            for g in smooth(&d.bars, &params).expect("smooth") {
                let (pv, pd, ps) = dims(&g);
                let am = |x: &[f64]| (0..x.len()).fold(0, |b, i| if x[i] > x[b] { i } else { b });
                let r = Regime::from_indices(am(&pv), am(&pd), am(&ps)).expect("regime");
                want.push((d.symbol.clone(), i64::from(r.id())));
            }
        }
        assert_eq!(got.len(), want.len());
        assert!(
            got == want,
            "the ex-post labels are not the saved models' smoothing"
        );
    }

    /// `evaluate` scores the detections piece by piece as they are made: a series alone
    /// (150,000 bars, streamed in pieces of 65,536) and a group of three short ones give
    /// the counts and accuracy of the whole panel's labels scored at once.
    #[test]
    fn evaluate_scores_pieces_as_the_whole_panel() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = PipelineConfig::default();
        for (symbols, bars) in [(1usize, 150_000usize), (3, 5_000)] {
            let synth = SynthConfig {
                symbols,
                bars,
                ..SynthConfig::default()
            };
            let input = dir.path().join(format!("in{symbols}.parquet"));
            generate_file(&input, &synth, 19, None).expect("generate");
            let v = evaluate(std::slice::from_ref(&input), "true_regime_id", 0.3, &cfg)
                .expect("evaluate");
            let data = generate(&synth, 19);
            let all: Vec<&[regime_core::bars::Bar]> =
                data.iter().map(|d| d.bars.as_slice()).collect();
            let dets = detect_panel(&all, &cfg).expect("panel");
            let (mut n, mut right, mut vol) = (0u64, 0u64, 0u64);
            for (d, det) in data.iter().zip(&dets) {
                let start = (0.7 * d.bars.len() as f64).floor() as usize;
                for (label, got) in d.labels.iter().zip(det).skip(start) {
                    let [v, tr, st] = label.map(usize::from);
                    let truth = Regime::from_indices(v, tr, st).expect("a true regime");
                    n += 1;
                    right += u64::from(got.regime == truth);
                    vol += u64::from(got.regime.volatility == truth.volatility);
                }
            }
            assert_eq!(v["bars_scored"], json!(n), "{symbols}");
            let acc = &v["accuracy"]["final"];
            assert_eq!(acc["regime"], json!(right as f64 / n as f64), "{symbols}");
            assert_eq!(acc["volatility"], json!(vol as f64 / n as f64), "{symbols}");
            assert!(
                vol as f64 / n as f64 > 0.9,
                "{symbols}: volatility {vol} of {n}"
            );
        }
    }

    #[test]
    fn detecting_while_reading_gives_the_labels_of_the_whole_input() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = PipelineConfig::default();
        // longer than a piece (65,536 bars), so a piece is detected before the end
        for (symbols, ext) in [
            (1usize, "parquet"),
            (2, "csv.gz"),
            (2, "parquet"),
            (2, "arrow"),
            (1, "arrow"),
        ] {
            let synth = SynthConfig {
                symbols,
                bars: 70_000,
                ..SynthConfig::default()
            };
            let input = dir.path().join(format!("in{symbols}.{ext}"));
            generate_file(&input, &synth, 5, None).expect("generate");
            if ext == "arrow" {
                rebatch_arrow(&input, 65_536);
            }
            assert_eq!(
                io::known_multi_symbol(&input),
                ext != "csv.gz" && symbols > 1
            );
            let out = dir.path().join(format!("out{symbols}{ext}.parquet"));
            let (n, bad) = detect(
                std::slice::from_ref(&input),
                &out,
                Mode::Causal,
                false,
                None,
                &cfg,
            )
            .expect("detect");
            assert_eq!((n, bad), (symbols * 70_000, 0));
            let data = generate(&synth, 5);
            let bars: Vec<&[regime_core::bars::Bar]> =
                data.iter().map(|d| d.bars.as_slice()).collect();
            let names: Vec<String> = data.iter().map(|d| d.symbol.clone()).collect();
            let want = detect_panel(&bars, &cfg).expect("panel");
            assert_eq!(
                output_regimes(&out),
                expected_regimes(&names, &want),
                "{symbols}"
            );
        }
        // one symbol, one bad row (high below low) after the first piece
        let synth = SynthConfig {
            symbols: 1,
            bars: 70_000,
            ..SynthConfig::default()
        };
        let data = generate(&synth, 6);
        let mut csv = String::from("timestamp,symbol,open,high,low,close,volume\n");
        let bad_at = 68_000;
        for (k, b) in data[0].bars.iter().enumerate() {
            let (h, l) = if k == bad_at {
                (b.low * 0.9, b.high)
            } else {
                (b.high, b.low)
            };
            csv += &format!("{},X,{},{h},{l},{},{}\n", b.ts, b.open, b.close, b.volume);
        }
        let input = dir.path().join("bad.csv");
        std::fs::write(&input, &csv).expect("write");
        assert!(!io::known_multi_symbol(&input));
        let two = dir.path().join("two.csv");
        std::fs::write(&two, csv.replace(",X,", ",Y,").replacen(",Y,", ",X,", 1)).expect("write");
        assert!(io::known_multi_symbol(&two));
        let out = dir.path().join("bad_out.parquet");
        let refused = detect(
            std::slice::from_ref(&input),
            &out,
            Mode::Causal,
            false,
            None,
            &cfg,
        );
        assert!(
            matches!(refused, Err(CommandError::BadRows { count: 1, .. })),
            "{refused:?}"
        );
        assert!(!out.exists());
        assert_eq!(
            std::fs::read_dir(dir.path())
                .expect("dir")
                .filter(|e| e
                    .as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("bad_out")))
                .count(),
            0,
            "no temporary file left"
        );
        let (n, bad) = detect(
            std::slice::from_ref(&input),
            &out,
            Mode::Causal,
            true,
            None,
            &cfg,
        )
        .expect("skip");
        assert_eq!((n, bad), (69_999, 1));
        let mut kept = data[0].bars.clone();
        kept.remove(bad_at);
        let want = detect_panel(&[kept.as_slice()], &cfg).expect("alone");
        assert_eq!(output_regimes(&out), expected_regimes(&["X".into()], &want));
    }

    /// One pass (prefix kept) and replay (events only), with and without a series longer
    /// than a group, give `detect_panel`'s labels symbol by symbol.
    #[test]
    fn grouped_detection_equals_the_panel_in_one_pass_and_in_replay() {
        let cfg_data = SynthConfig {
            symbols: 4,
            bars: 2500,
            ..SynthConfig::default()
        };
        let mut data = generate(&cfg_data, 7);
        // a longer series, so that small groups stream it in chunks
        let long = SynthConfig {
            symbols: 1,
            bars: 20_000,
            ..SynthConfig::default()
        };
        data.extend(generate(&long, 8));
        let series: Vec<io::SymbolBars> = data
            .iter()
            .enumerate()
            .map(|(k, d)| io::SymbolBars {
                symbol: format!("S{k}"),
                bars: d.bars.clone(),
                labels: Vec::new(),
            })
            .collect();
        let cfg = PipelineConfig::default();
        let bars: Vec<&[regime_core::bars::Bar]> =
            series.iter().map(|s| s.bars.as_slice()).collect();
        let want = detect_panel(&bars, &cfg).expect("panel");
        // the prefix before the last pooling time is 4 × 2,500 + 4,096 bars: kept with
        // 1 << 20 (one group); replayed with 3,000 (the long series in chunks); kept with
        // 16,000, the long series continuing in chunks after it
        for chunk in [1usize << 20, 3000, 16_000] {
            let mut got: HashMap<String, Vec<Detection>> = HashMap::new();
            let mut models = 0;
            grouped(
                &series,
                &cfg,
                chunk,
                &mut |named| {
                    for (sym, d) in named {
                        got.entry(sym).or_default().extend(d);
                    }
                    Ok(())
                },
                &mut |_, _| {
                    models += 1;
                    Ok(())
                },
            )
            .expect("grouped");
            assert_eq!(models, series.len(), "chunk {chunk}");
            for (k, s) in series.iter().enumerate() {
                assert_eq!(got[&s.symbol], want[k], "chunk {chunk}, {}", s.symbol);
            }
        }
    }
}
