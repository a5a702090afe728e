//! `regime._regime`: the Python bindings (SPEC §7). Each function converts its input
//! (an Arrow table arrives through the C data interface, without a copy), releases the GIL
//! for the Rust call, and hands an Arrow table back the same way. The Python package in
//! `python/regime/` wraps these with the conversions from pandas, polars and numpy.

use arrow::record_batch::RecordBatch;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use regime_core::bars::{Bar, RejectReason};
use regime_core::pipeline::{Detection, PipelineConfig, SymbolPipeline};
use regime_server::commands::{self, CommandError, Mode, ModelSource};
use regime_server::io::{self, Column, Input, IoError, Table};
use regime_server::store::{self, HistoryQuery, Role};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

create_exception!(
    _regime,
    RegimeError,
    PyException,
    "Base class of every error raised by regime."
);
create_exception!(
    _regime,
    BadInputError,
    RegimeError,
    "Input rows or columns were rejected; the message names row, column and reason."
);
create_exception!(
    _regime,
    BackendError,
    RegimeError,
    "The requested compute backend is not compiled in, has no device, or failed."
);
create_exception!(
    _regime,
    StoreError,
    RegimeError,
    "The store (embedded file or PostgreSQL) is absent or failed."
);

/// Nanoseconds the last batch call spent in Rust with the GIL released (for measuring the
/// Python-side overhead: `last_compute_seconds()`).
static LAST_COMPUTE_NS: AtomicU64 = AtomicU64::new(0);

/// Run `f` without the GIL and remember how long it took.
fn timed_detach<T: Send>(py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
    py.detach(|| {
        let t = Instant::now();
        let out = f();
        LAST_COMPUTE_NS.store(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        out
    })
}

/// Where a bar's timestamp and values are among `keys` (the file readers' column rules):
/// (timestamp position, [open, high, low, close, volume] positions, the position of a
/// time-of-day key beside a `date`), None where absent. Two keys read as one field (`close`
/// and `Close`) raise BadInputError naming both.
#[allow(clippy::type_complexity)]
#[pyfunction]
fn bar_fields(keys: Vec<String>) -> PyResult<(Option<usize>, [Option<usize>; 5], Option<usize>)> {
    let f = io::bar_fields(&keys);
    if let Some((i, j)) = f.twin {
        return Err(BadInputError::new_err(format!(
            "bar has two fields of one name: '{}' and '{}'; rename or drop one",
            keys[i], keys[j]
        )));
    }
    Ok((f.ts, f.values, f.time))
}

/// A date (ms, midnight) with a time of day's text added, as the file readers add a `time`
/// column to a `date` column.
#[pyfunction]
fn date_and_time(date_ms: i64, time: &str) -> PyResult<i64> {
    io::date_and_time(date_ms, time)
        .map_err(|reason| BadInputError::new_err(format!("bar field time: {reason}")))
}

/// Seconds the last batch call (detect, generate, evaluate, history) spent in Rust.
#[pyfunction]
fn last_compute_seconds() -> f64 {
    LAST_COMPUTE_NS.load(Ordering::Relaxed) as f64 / 1e9
}

/// Where errors say the data came from.
const SOURCE: &str = "<input table>";

/// A failure computed without the GIL, turned into a Python exception afterwards.
enum Failure {
    BadInput(String),
    Backend(String),
    Store(String),
    Other(String),
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::BadInput(m) => BadInputError::new_err(m),
            Failure::Backend(m) => BackendError::new_err(m),
            Failure::Store(m) => StoreError::new_err(m),
            Failure::Other(m) => RegimeError::new_err(m),
        }
    }
}

fn core_failure(e: regime_core::Error) -> Failure {
    use regime_core::Error as E;
    match e {
        E::NotCompiled { .. } | E::Unavailable { .. } | E::Backend(_) => {
            Failure::Backend(e.to_string())
        }
        E::BadBar { .. } | E::Shape { .. } | E::NoData(_) | E::InvalidParameter { .. } => {
            Failure::BadInput(e.to_string())
        }
        other => Failure::Other(other.to_string()),
    }
}

impl From<CommandError> for Failure {
    fn from(e: CommandError) -> Failure {
        match e {
            CommandError::Core(c) => core_failure(c),
            CommandError::Io(_) | CommandError::BadRows { .. } | CommandError::NoData { .. } => {
                Failure::BadInput(e.to_string())
            }
            CommandError::Argument(m) => Failure::BadInput(m),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl From<IoError> for Failure {
    fn from(e: IoError) -> Failure {
        Failure::BadInput(e.to_string())
    }
}

type Res<T> = Result<T, Failure>;

/// What `detect` and `evaluate` read: an Arrow table, a file by its path (CSV, Parquet,
/// Arrow IPC, read as `regime detect` reads it), or several files as one panel.
#[derive(FromPyObject)]
enum Source {
    Path(PathBuf),
    Paths(Vec<PathBuf>),
    Table(PyTable),
}

/// A [`Source`]'s data, taken out of Python's objects so that it can be read with the GIL
/// released.
enum Data {
    Path(PathBuf),
    Paths(Vec<PathBuf>),
    Table(Vec<RecordBatch>, arrow::datatypes::SchemaRef),
}

impl From<Source> for Data {
    fn from(s: Source) -> Data {
        match s {
            Source::Path(p) => Data::Path(p),
            Source::Paths(p) => Data::Paths(p),
            Source::Table(t) => {
                let (batches, schema) = t.into_inner();
                Data::Table(batches, schema)
            }
        }
    }
}

/// Validated bars and the [`commands::reading_notes`] of a file; rejected rows are an error
/// naming them unless skipped.
fn read_input(data: &Data, label: Option<&str>, skip_bad_rows: bool) -> Res<(Input, Vec<String>)> {
    let input = match data {
        Data::Table(batches, schema) => {
            io::read_batches(batches, schema, Path::new(SOURCE), label)?
        }
        Data::Path(p) => io::read_bars(p, label)?,
        Data::Paths(paths) => return read_panel(paths, label, skip_bad_rows),
    };
    let notes = commands::reading_notes(&input);
    checked(input, skip_bad_rows)
        .map(|i| (i, notes))
        .map_err(|e| match (data, e) {
            (Data::Path(p), Failure::BadInput(m)) => {
                Failure::BadInput(format!("{}: {m}", p.display()))
            }
            (_, e) => e,
        })
}

/// Several files as one panel, as `regime detect --input a.csv b.csv` reads them: each
/// checked on its own, then [`commands::panel_of`]; notes carry their file's name.
fn read_panel(
    paths: &[PathBuf],
    label: Option<&str>,
    skip_bad_rows: bool,
) -> Res<(Input, Vec<String>)> {
    let mut files = Vec::with_capacity(paths.len());
    let mut notes = Vec::new();
    for p in paths {
        let (input, said) = read_input(&Data::Path(p.clone()), label, skip_bad_rows)?;
        notes.extend(said.into_iter().map(|n| format!("{}: {n}", p.display())));
        files.push((p.clone(), input));
    }
    let (all, _) = commands::panel_of(files)?;
    if all.series.is_empty() {
        return Err(Failure::BadInput("no valid bars in the input".into()));
    }
    Ok((all, notes))
}

/// The input, or an error naming its rejected rows (unless skipped) or saying it has none.
fn checked(input: Input, skip_bad_rows: bool) -> Res<Input> {
    if !input.errors.is_empty() && !skip_bad_rows {
        let first: Vec<String> = input
            .errors
            .iter()
            .take(10)
            .map(|e| {
                if e.symbol.is_empty() {
                    format!("row {}: {}", e.row, e.reason)
                } else {
                    format!("row {} ({}): {}", e.row, e.symbol, e.reason)
                }
            })
            .collect();
        // hints first: after ten long row messages they are cut off by whoever prints
        let mut hints: Vec<String> = Vec::new();
        let order = commands::newest_first(&input, "the table");
        if !order.is_empty() {
            hints.push(format!(
                "the rows of {} run newest first, sort them oldest first",
                order.join(", ")
            ));
        }
        hints.extend(commands::unread_field_hints(&input));
        let hint = if hints.is_empty() {
            String::new()
        } else {
            format!(": {}", hints.join("; "))
        };
        return Err(Failure::BadInput(format!(
            "{} bad row{}{hint} ({}{}); pass skip_bad_rows=True to keep the valid ones",
            input.errors.len(),
            if input.errors.len() == 1 { "" } else { "s" },
            first.join("; "),
            if input.errors.len() > 10 { "; ..." } else { "" }
        )));
    }
    if input.series.is_empty() {
        return Err(Failure::BadInput("no valid bars in the input".into()));
    }
    Ok(input)
}

fn to_pyarrow(py: Python<'_>, batch: RecordBatch) -> PyResult<Bound<'_, PyAny>> {
    let schema = batch.schema();
    PyTable::try_new(vec![batch], schema)?.into_pyarrow(py)
}

fn preference(backend: Option<&str>) -> Res<regime_kernels::Preference> {
    match backend {
        Some(b) => b.parse().map_err(core_failure),
        None => regime_kernels::Preference::from_env().map_err(core_failure),
    }
}

/// The pipeline's settings with the transition manager's two (`regime.confidence_threshold`,
/// `regime.switch_margin` of the service's config), checked: BadInputError names the bad one.
fn settings(confidence_threshold: f64, switch_margin: f64) -> PyResult<PipelineConfig> {
    let cfg = PipelineConfig {
        confidence_threshold,
        switch_margin,
        ..PipelineConfig::default()
    };
    cfg.validate()
        .map_err(|e| BadInputError::new_err(e.to_string()))?;
    Ok(cfg)
}

/// Detect regimes for every bar of an Arrow table (columns as in `regime detect`).
#[pyfunction]
#[pyo3(signature = (table, mode = "causal", model = None, backend = None, skip_bad_rows = false, confidence_threshold = 0.7, switch_margin = 0.05))]
#[allow(clippy::too_many_arguments)]
fn detect<'py>(
    py: Python<'py>,
    table: Source,
    mode: &str,
    model: Option<PathBuf>,
    backend: Option<String>,
    skip_bad_rows: bool,
    confidence_threshold: f64,
    switch_margin: f64,
) -> PyResult<(Bound<'py, PyAny>, Vec<String>)> {
    let cfg = settings(confidence_threshold, switch_margin)?;
    let data = Data::from(table);
    let mode = match mode {
        "causal" => Mode::Causal,
        "ex-post" | "ex_post" => Mode::ExPost,
        m => {
            return Err(BadInputError::new_err(format!(
                "mode `{m}`: expected causal or ex-post"
            )))
        }
    };
    let mut notes = Vec::new();
    let batch = timed_detach(py, || -> Res<RecordBatch> {
        let (input, said) = read_input(&data, None, skip_bad_rows)?;
        notes = said;
        let dets: Vec<(String, Vec<Detection>)> = match model {
            Some(path) => {
                if mode != Mode::Causal {
                    return Err(Failure::BadInput(
                        "model scoring is causal (the forward filter); ex-post needs the adaptive pipeline".into(),
                    ));
                }
                let models = ModelSource::open(&path)?;
                let selected = regime_kernels::select(preference(backend.as_deref())?)
                    .map_err(core_failure)?;
                commands::score_input(&input, &models, selected.backend.as_ref())?
            }
            None => {
                let pref = preference(backend.as_deref())?;
                if !matches!(
                    pref,
                    regime_kernels::Preference::Auto | regime_kernels::Preference::Cpu
                ) {
                    return Err(Failure::Backend(format!(
                        "backend {pref}: the adaptive pipeline runs on the CPU; GPU backends score fixed models (pass model=...)"
                    )));
                }
                if mode == Mode::Causal {
                    // each group's detections are copied into the output columns and
                    // dropped: the call holds one copy of the output, not two
                    let rows: usize = input.series.iter().map(|s| s.bars.len()).sum();
                    let mut out = io::DetectionsBuilder::with_capacity(rows, input.series.len());
                    commands::detect_causal_grouped(
                        &input.series,
                        &cfg,
                        &mut |named| {
                            for (sym, d) in &named {
                                out.push(sym, d);
                            }
                            Ok(())
                        },
                        &mut |_, _| Ok(()),
                    )?;
                    return Ok(io::into_record_batch(out.finish())?);
                }
                commands::run_detection(&input, &cfg, mode)?
            }
        };
        Ok(io::into_record_batch(io::detections_table(&dets))?)
    })?;
    Ok((to_pyarrow(py, batch)?, notes))
}

/// A synthetic OHLCV panel with its true labels.
#[pyfunction]
#[pyo3(signature = (symbols = 1, bars = 2000, seed = 42, step_secs = 86_400, start_ms = None, tick = None))]
fn generate(
    py: Python<'_>,
    symbols: usize,
    bars: usize,
    seed: u64,
    step_secs: i64,
    start_ms: Option<i64>,
    tick: Option<f64>,
) -> PyResult<Bound<'_, PyAny>> {
    let cfg = commands::synth_config(symbols, bars, step_secs, start_ms)
        .map_err(|e| BadInputError::new_err(format!("generate: {e}")))?;
    let batch = timed_detach(py, || -> Res<RecordBatch> {
        let (t, _) = commands::generate_table(&cfg, seed, tick)?;
        Ok(io::into_record_batch(t)?)
    })?;
    to_pyarrow(py, batch)
}

/// Accuracy against a label column, as `regime evaluate --json` (a JSON string).
#[pyfunction]
#[pyo3(signature = (table, label_column = "true_regime_id", score_last = 1.0, confidence_threshold = 0.7, switch_margin = 0.05))]
fn evaluate(
    py: Python<'_>,
    table: Source,
    label_column: &str,
    score_last: f64,
    confidence_threshold: f64,
    switch_margin: f64,
) -> PyResult<(String, Vec<String>)> {
    let cfg = settings(confidence_threshold, switch_margin)?;
    let data = Data::from(table);
    let label = label_column.to_string();
    Ok(timed_detach(py, || -> Res<(String, Vec<String>)> {
        let (input, notes) = read_input(&data, Some(&label), false)?;
        let shown = match &data {
            Data::Path(p) => p.as_path(),
            Data::Paths(_) | Data::Table(..) => Path::new(SOURCE),
        };
        let v = commands::evaluate_input(&input, shown, score_last, &cfg)?;
        Ok((v.to_string(), notes))
    })?)
}

fn history_table(rows: Vec<store::HistoryRow>) -> Table {
    let n = rows.len();
    let mut ts = Vec::with_capacity(n);
    let mut sym = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut dims: [Vec<i64>; 3] = Default::default();
    let mut conf = Vec::with_capacity(n);
    let mut probs: [Vec<f64>; 8] = Default::default();
    let mut ver = Vec::with_capacity(n);
    for r in rows {
        ts.push(r.ts);
        ids.push(r.regime_id as i64);
        dims[0].push(r.volatility as i64);
        dims[1].push(r.trend as i64);
        dims[2].push(r.structure as i64);
        conf.push(r.confidence);
        for (k, p) in r
            .p_volatility
            .iter()
            .chain(&r.p_trend)
            .chain(&r.p_structure)
            .enumerate()
        {
            probs[k].push(*p);
        }
        ver.push(r.model_version as i64);
        sym.push(r.symbol);
    }
    let mut t = Table::default();
    t.push("timestamp", Column::Ts(ts));
    t.push("symbol", Column::Str(sym));
    t.push("regime_id", Column::Int(ids));
    let [v, tr, st] = dims;
    t.push("volatility", Column::Int(v));
    t.push("trend", Column::Int(tr));
    t.push("structure", Column::Int(st));
    t.push("confidence", Column::F64(conf));
    for (k, p) in probs.into_iter().enumerate() {
        t.push(io::PROB_COLUMNS[k], Column::F64(p));
    }
    t.push("model_version", Column::Int(ver));
    t
}

/// Rows of `regime_history` from the embedded file or PostgreSQL (oldest first).
#[pyfunction]
#[pyo3(signature = (store, symbol = None, start_ms = None, end_ms = None, limit = 100_000))]
fn history<'py>(
    py: Python<'py>,
    store: &str,
    symbol: Option<String>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    limit: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let target = store.to_string();
    let batch = timed_detach(py, || -> Res<RecordBatch> {
        let mut cfg = regime_server::config::Config::default().storage;
        let pg = target.starts_with("postgres://")
            || target.starts_with("postgresql://")
            || target.contains("host=");
        if pg {
            cfg.kind = regime_server::config::StorageKind::Postgres;
            cfg.url = target.clone();
        } else {
            let path = PathBuf::from(&target);
            if !path.is_file() {
                return Err(Failure::Store(format!(
                    "{target}: no such store file (the service's storage.path, e.g. data/regime.sqlite)"
                )));
            }
            cfg.path = path;
        }
        cfg.pool_size = 1;
        let mut s = store::open(&cfg, Role::Reader)
            .map_err(|e| Failure::Store(format!("{target}: {e}")))?;
        let rows = s
            .history(&HistoryQuery {
                symbol,
                from: start_ms,
                to: end_ms,
                limit,
            })
            .map_err(|e| Failure::Store(format!("{target}: {e}")))?;
        Ok(io::into_record_batch(history_table(rows))?)
    })?;
    to_pyarrow(py, batch)
}

/// The backend `select` would choose: (name, device, reason).
#[pyfunction]
#[pyo3(signature = (backend = None))]
fn select_backend(py: Python<'_>, backend: Option<String>) -> PyResult<(String, String, String)> {
    Ok(timed_detach(py, || -> Res<(String, String, String)> {
        let s = regime_kernels::select(preference(backend.as_deref())?).map_err(core_failure)?;
        Ok((s.backend.name().to_string(), s.backend.device(), s.reason))
    })?)
}

/// Streaming detection: one causal pipeline per symbol, fed bar by bar.
#[pyclass(module = "regime._regime")]
struct Engine {
    cfg: PipelineConfig,
    pipes: HashMap<String, SymbolPipeline>,
    /// Each symbol's last bar taken (time, [`Bar::fingerprint`]) and what it gave: the same
    /// bar again is answered with it, as the service answers a resend (not kept in a pickle).
    last: HashMap<String, (i64, u64, Detection)>,
}

/// One detection as the dict `Engine.update` returns.
fn detection_dict<'py>(
    py: Python<'py>,
    symbol: &str,
    d: &Detection,
    duplicate: bool,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let out = pyo3::types::PyDict::new(py);
    out.set_item("symbol", symbol)?;
    out.set_item("timestamp_ms", d.ts)?;
    out.set_item("regime_id", d.regime.id())?;
    out.set_item("regime", d.regime.snake_name())?;
    out.set_item("volatility", d.regime.volatility.as_str())?;
    out.set_item("trend", d.regime.trend.as_str())?;
    out.set_item("structure", d.regime.structure.as_str())?;
    out.set_item("confidence", d.confidence)?;
    out.set_item("p_volatility", d.p_volatility.to_vec())?;
    out.set_item("p_trend", d.p_trend.to_vec())?;
    out.set_item("p_structure", d.p_structure.to_vec())?;
    out.set_item("warming_up", d.warming_up)?;
    out.set_item("model_version", d.model_version)?;
    out.set_item("duplicate", duplicate)?;
    Ok(out)
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (confidence_threshold = 0.7, switch_margin = 0.05))]
    fn new(confidence_threshold: f64, switch_margin: f64) -> PyResult<Self> {
        Ok(Engine {
            cfg: settings(confidence_threshold, switch_margin)?,
            pipes: HashMap::new(),
            last: HashMap::new(),
        })
    }

    /// Feed one bar; returns the regime for it (a dict).
    #[pyo3(signature = (symbol, timestamp_ms, close, open = f64::NAN, high = f64::NAN, low = f64::NAN, volume = f64::NAN))]
    #[allow(clippy::too_many_arguments)]
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        symbol: &str,
        timestamp_ms: i64,
        close: f64,
        open: f64,
        high: f64,
        low: f64,
        volume: f64,
    ) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let bar = Bar::new(timestamp_ms, open, high, low, close, volume);
        let refused =
            |r: RejectReason| BadInputError::new_err(format!("{symbol} @ {timestamp_ms}: {r}"));
        // the same bar again (a feed polled twice, a retry): what it gave, nothing learned
        if let Some((ts, fp, d)) = self.last.get(symbol) {
            if *ts == bar.ts && *fp == bar.fingerprint() {
                return detection_dict(py, symbol, d, true);
            }
        }
        // validated by the pipeline (another bar not after the last, as a forming bar updated
        // in place, is refused too); a new symbol's pipeline is kept only if its bar passes
        let d = match self.pipes.get_mut(symbol) {
            Some(p) => p.try_update(&bar).map_err(refused)?,
            None => {
                // a symbol the service would take (an empty one is a caller's missing field,
                // not a series: the service files symbol-less rows under "default")
                if symbol.trim().is_empty() {
                    return Err(BadInputError::new_err(format!(
                        "symbol is empty (bar @ {timestamp_ms}): name the series"
                    )));
                }
                regime_server::io::check_symbol(symbol)
                    .map_err(|(r, short)| BadInputError::new_err(format!("{short}: {r}")))?;
                let mut p = SymbolPipeline::new(self.cfg.clone())
                    .map_err(|e| RegimeError::new_err(e.to_string()))?;
                let d = p.try_update(&bar).map_err(refused)?;
                self.pipes.insert(symbol.to_string(), p);
                d
            }
        };
        self.last
            .insert(symbol.to_string(), (bar.ts, bar.fingerprint(), d));
        detection_dict(py, symbol, &d, false)
    }

    /// The whole engine (settings and every symbol's pipeline) as bytes: what pickling
    /// saves. Loaded only under the same state identity (the layout is not self-describing;
    /// the Python side checks that).
    fn dump<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
        let bytes = postcard::to_stdvec(&(&self.cfg, &self.pipes))
            .map_err(|e| RegimeError::new_err(format!("saving the engine: {e}")))?;
        // with a checksum: a changed byte in a pickle kept on disk otherwise loads as a
        // silently different engine (281 of 300 pickles with a bit or two flipped did)
        Ok(pyo3::types::PyBytes::new(
            py,
            &regime_server::resume::seal(bytes),
        ))
    }

    /// An engine from [`Engine::dump`]'s bytes.
    #[staticmethod]
    fn load(bytes: &[u8]) -> PyResult<Self> {
        let bytes = regime_server::resume::checked(bytes)
            .map_err(|e| BadInputError::new_err(format!("engine state: {e}")))?;
        match postcard::take_from_bytes::<(PipelineConfig, HashMap<String, SymbolPipeline>)>(bytes)
        {
            Ok(((cfg, pipes), [])) => Ok(Engine {
                cfg,
                pipes,
                last: HashMap::new(),
            }),
            Ok(_) => Err(BadInputError::new_err(
                "engine state: trailing bytes (damaged)",
            )),
            Err(e) => Err(BadInputError::new_err(format!(
                "engine state unreadable ({e})"
            ))),
        }
    }

    /// Symbols seen so far.
    fn symbols(&self) -> Vec<String> {
        let mut v: Vec<String> = self.pipes.keys().cloned().collect();
        v.sort();
        v
    }
}

/// An epoch number as ms, read by its size as the file readers read it (seconds, ms, µs or
/// ns; a fraction allowed); None when it is no time at all (NaN, beyond any unit).
#[pyfunction]
fn epoch_ms(x: &Bound<'_, PyAny>) -> Option<i64> {
    match x.extract::<i64>() {
        Ok(i) => Some(io::integer_timestamp(i)),
        Err(_) => x.extract::<f64>().ok().and_then(io::float_timestamp),
    }
}

/// The identity an engine's pickle carries: the state's format and layout and what the
/// detection computes (the same in every copy and rebuild of the same code).
#[pyfunction]
fn state_identity() -> &'static str {
    regime_core::pipeline::state_identity()
}

/// Why a state saved under the identity `written` cannot be loaded here (None: it can).
#[pyfunction]
fn identity_mismatch(written: &str) -> Option<String> {
    regime_core::pipeline::identity_mismatch(written)
}

#[pymodule]
fn _regime(m: &Bound<'_, PyModule>) -> PyResult<()> {
    regime_core::check_cpu().map_err(pyo3::exceptions::PyImportError::new_err)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RegimeError", m.py().get_type::<RegimeError>())?;
    m.add("BadInputError", m.py().get_type::<BadInputError>())?;
    m.add("BackendError", m.py().get_type::<BackendError>())?;
    m.add("StoreError", m.py().get_type::<StoreError>())?;
    m.add_function(wrap_pyfunction!(detect, m)?)?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(history, m)?)?;
    m.add_function(wrap_pyfunction!(select_backend, m)?)?;
    m.add_function(wrap_pyfunction!(last_compute_seconds, m)?)?;
    m.add_function(wrap_pyfunction!(bar_fields, m)?)?;
    m.add_function(wrap_pyfunction!(date_and_time, m)?)?;
    m.add_function(wrap_pyfunction!(state_identity, m)?)?;
    m.add_function(wrap_pyfunction!(epoch_ms, m)?)?;
    m.add_function(wrap_pyfunction!(identity_mismatch, m)?)?;
    m.add_class::<Engine>()?;
    Ok(())
}
