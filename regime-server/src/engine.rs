//! The service's detection engine: a bounded ingest queue, `max_workers` detection threads
//! with symbols sharded across them (one causal [`SymbolPipeline`] per symbol), and one
//! store-writer thread that commits rows in batches and acknowledges each ingest batch only
//! once its rows are committed (or, while the database is down, held in the bounded retry
//! buffer, which is retried until the database is back).
//!
//! Readers never take a lock the workers hold while computing: the current regime of every
//! symbol and the slower-moving insight (components, transitions, ensemble) are immutable
//! snapshots swapped in with `arc-swap`.

use crate::config::StorageConfig;
use crate::store::{self, HistoryRow, Store, StoreError};
use arc_swap::ArcSwap;
use regime_core::bars::{Bar, BarValidator, RejectReason, SymbolQuality};
use regime_core::pipeline::{ComponentStatus, PipelineConfig, SymbolPipeline, N_METHODS};
use regime_core::regime::N_REGIMES;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// One bar to ingest, with where it came from (row index in the request or file).
#[derive(Debug, Clone)]
pub struct IngestRow {
    /// Instrument (empty = the default symbol `"default"`).
    pub symbol: String,
    /// The bar.
    pub bar: Bar,
    /// Row number in the request (0-based) for error messages.
    pub row: usize,
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Row number in the request (0-based).
    pub row: usize,
    /// Instrument.
    pub symbol: String,
    /// Reason key (SPEC §3 counts use it).
    pub reason: String,
    /// Readable message.
    pub message: String,
}

/// What happened to one ingest batch.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Bars detected and stored.
    pub accepted: usize,
    /// Bars rejected by validation.
    pub rejected: usize,
    /// Bars received before (a resend of an accepted bar: same time, same values), taken as
    /// already there: neither detected again nor rejected.
    pub duplicates: usize,
    /// The rejected rows.
    pub errors: Vec<RowError>,
    /// True once committed to the store; false while held in the retry buffer.
    pub committed: bool,
    /// While not committed: the rows are also in the fsynced spool (they survive a crash).
    pub spooled: bool,
}

/// Why a batch was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The ingest queue is full (429).
    QueueFull,
    /// The store is down and its retry buffer is full (503).
    StoreDown,
    /// The store is down and the spool cannot be written (a full disk): nothing new can be
    /// acknowledged without a crash losing it (503).
    NotDurable,
    /// The engine is shutting down (503).
    ShuttingDown,
}

/// The current regime of one symbol (what `/api/v1/regime/current` serves).
#[derive(Debug, Clone)]
pub struct Current {
    /// Instrument.
    pub symbol: String,
    /// Last bar's timestamp (ms).
    pub ts: i64,
    /// The label.
    pub row: HistoryRow,
    /// Timestamp (ms) of the first bar of the current regime.
    pub since: i64,
    /// Bars in the current regime.
    pub duration_bars: u64,
    /// Whether the label came while the model was still warming up (its first
    /// `hmm.warmup` bars: no fitted model yet, the label is the other members' alone) — as
    /// `warming_up` in the Python engine's updates.
    pub warming_up: bool,
    /// Wall-clock time the last bar arrived (ms since epoch).
    pub arrived_ms: i64,
}

/// Slower-moving per-symbol state, published at most a few times a second.
#[derive(Debug, Clone)]
pub struct Insight {
    /// Component snapshots of this symbol's pipeline.
    pub components: Vec<ComponentStatus>,
    /// Transition counts `[from][to]`.
    pub transitions: Vec<[u64; N_REGIMES]>,
    /// Ensemble weights `[dimension][method]`.
    pub weights: [[f64; N_METHODS]; 3],
    /// Per-method accuracy `[method][dimension]`.
    pub method_accuracy: [[f64; 3]; N_METHODS],
    /// Causal vs ex-post accuracy of the final label (`regime_accuracy`, see
    /// [`SymbolPipeline::regime_accuracy`]; None while too few bars were evaluated).
    pub accuracy: Option<f64>,
    /// Share of bars whose label agrees in all three dimensions.
    pub exact_accuracy: Option<f64>,
    /// Share of bars whose label agrees, per dimension, since the start: the measure of
    /// `method_accuracy`, so the ensemble and its members compare.
    pub plain_accuracy: Option<[f64; 3]>,
    /// Bars seen.
    pub bars: u64,
    /// Agreement: share of methods agreeing with the final label on the last bar, per dimension.
    pub agreement: [f64; 3],
}

/// The embedded store's integrity check, run once at start on a thread of its own (SQLite's
/// `quick_check`, read-only, beside the writer). A file with a few damaged pages still opens,
/// and the service looked healthy until a write or a history query touched one; the check
/// finds such damage at start, whatever part of the file it is in.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreCheck {
    /// Not run: PostgreSQL (its server checks its own pages), no file at start, or
    /// `storage.check_at_start: false`.
    NotRun,
    /// Running since the service started.
    Running,
    /// The file is sound; the check took this many seconds.
    Passed {
        /// Seconds the check took.
        seconds: f64,
    },
    /// SQLite names damage in the file.
    Damaged(String),
    /// The check could not run (the file could not be opened, or went away).
    Failed(String),
}

impl StoreCheck {
    /// The name `/system/database` and the `historical_analyzer` component report.
    pub fn name(&self) -> &'static str {
        match self {
            StoreCheck::NotRun => "not_run",
            StoreCheck::Running => "checking",
            StoreCheck::Passed { .. } => "ok",
            StoreCheck::Damaged(_) => "damaged",
            StoreCheck::Failed(_) => "check_failed",
        }
    }
}

/// Problems named in the check's result (the first few of them).
const CHECK_PROBLEMS: u32 = 5;

/// Run [`StoreCheck`] on `path` on a thread of its own; the result goes to `shared`, and a
/// damaged file is one ERROR line with what to do. The thread is not joined: a stop does not
/// wait for a check of a large file.
fn spawn_store_check(path: std::path::PathBuf, shared: Arc<Shared>) {
    if let Ok(mut c) = shared.store_check.lock() {
        *c = StoreCheck::Running;
    }
    let on_thread = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("store-check".into())
        .spawn(move || {
            let shared = on_thread;
            let t = Instant::now();
            let result = store::quick_check(&path, CHECK_PROBLEMS);
            let seconds = t.elapsed().as_secs_f64();
            let outcome = match result {
                Ok(p) if p.is_empty() => {
                    tracing::info!(target: "regime_server::store", "store check: {} is sound (SQLite quick_check, {seconds:.1} s)", path.display());
                    StoreCheck::Passed { seconds }
                }
                Ok(p) => StoreCheck::Damaged(p.join("; ")),
                Err(e) if e.is_damage() => StoreCheck::Damaged(e.to_string()),
                Err(e) => {
                    tracing::warn!(target: "regime_server::store", "store check of {} could not run: {e}", path.display());
                    StoreCheck::Failed(e.to_string())
                }
            };
            if let StoreCheck::Damaged(what) = &outcome {
                tracing::error!(target: "regime_server::store", "store check: {} is damaged (SQLite quick_check: {what}). Stored rows may be unreadable and writes may fail; acknowledged rows are never dropped (they wait in the spool). Stop the service and restore a backup (regime restore latest): the damaged file and the spool are kept in its before-restore backup", path.display());
            }
            // a statement: the guard is dropped before `shared`
            if let Ok(mut c) = shared.store_check.lock() {
                *c = outcome;
            };
        });
    if let Err(e) = spawned {
        tracing::warn!(target: "regime_server::store", "store check not started: {e}");
        if let Ok(mut c) = shared.store_check.lock() {
            *c = StoreCheck::Failed(format!("not started: {e}"));
        }
    }
}

/// Counters and snapshots shared with the HTTP side.
#[derive(Debug)]
pub struct Shared {
    /// Current regime per symbol.
    pub current: ArcSwap<HashMap<String, Arc<Current>>>,
    /// Insight per symbol.
    pub insight: ArcSwap<HashMap<String, Arc<Insight>>>,
    /// Data quality per symbol (validation counts of the workers).
    pub quality: Mutex<BTreeMap<String, SymbolQuality>>,
    /// Rows that failed to parse before reaching a worker: symbol -> reason -> count.
    pub unparsed: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    /// Batches waiting for a worker.
    pub queue_depth: AtomicUsize,
    /// Queue capacity in batches.
    pub queue_capacity: usize,
    /// Symbols whose pipelines the workers hold (resumed or created since start).
    pub symbols_held: AtomicUsize,
    /// `performance.max_symbols`: also the most symbols `unparsed` names.
    pub max_symbols: usize,
    /// `storage.retry_buffer_rows`: rows held while the store is down.
    pub retry_buffer_rows: usize,
    /// When a refused new symbol was last logged (ms; at most one line a minute).
    pub symbol_limit_logged: AtomicI64,
    /// Bars detected since start.
    pub detections: AtomicU64,
    /// Rows committed since start.
    pub stored_rows: AtomicU64,
    /// Rows waiting in the retry buffer.
    pub pending_rows: AtomicUsize,
    /// Store reachable.
    pub db_up: AtomicBool,
    /// Bumped at every commit (history cache keys use it).
    pub store_generation: AtomicU64,
    /// First symbol seen (the default for `/regime/current`).
    pub first_symbol: Mutex<Option<String>>,
    /// Rows per store transaction (hot-reloadable).
    pub batch_size: AtomicUsize,
    /// Last store error.
    pub last_store_error: Mutex<Option<String>>,
    /// Whether the last store failure was a damaged file (see [`StoreError::is_damage`]):
    /// reconnecting then is not news, and the error says what to do.
    pub store_damaged: AtomicBool,
    /// The embedded store's integrity check at start (see [`StoreCheck`]).
    pub store_check: Mutex<StoreCheck>,
    /// Sum of per-bar detection latency (ns) and count, for the mean.
    pub detect_ns: AtomicU64,
    /// Set when shutting down.
    pub closing: AtomicBool,
    /// Safe mode: critical components only (no model files, feeds off).
    pub safe_mode: bool,
    /// Each symbol's newest timestamp in the store and the spool when the service started:
    /// validation resumes after it, and replay feeds skip what it already holds.
    pub stored_at_start: Arc<HashMap<String, i64>>,
    /// Whether the store could be read at start (else `stored_at_start` holds only the
    /// spool's part).
    pub stored_known: bool,
    /// The store is down and the spool's last append failed: batches are refused before
    /// detection until either takes rows again.
    pub not_durable: AtomicBool,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Detection workers.
    pub workers: usize,
    /// Queue capacity in batches.
    pub queue_capacity: usize,
    /// Symbols held at most (`performance.max_symbols`).
    pub max_symbols: usize,
    /// Rows per store transaction.
    pub batch_size: usize,
    /// Rows held while the store is down.
    pub retry_buffer_rows: usize,
    /// The spool that makes the retry buffer crash-safe (None: memory only).
    pub spool_path: Option<PathBuf>,
    /// Pipeline settings for every symbol.
    pub pipeline: PipelineConfig,
    /// Model files go here (none in safe mode).
    pub models_dir: Option<PathBuf>,
    /// A symbol's model is saved at most this often (and at shutdown).
    pub model_save_every: Duration,
    /// Model files kept per symbol (older versions are deleted).
    pub models_keep: usize,
    /// Each symbol's pipeline state is saved here at shutdown and resumed from at start
    /// ([`crate::resume`]; none in safe mode).
    pub state_dir: Option<PathBuf>,
    /// States are also saved this often while running, with the bars since in the bar
    /// journal ([`crate::journal`]), so a crash loses no learning (None: only at shutdown).
    pub state_checkpoint: Option<Duration>,
    /// Safe mode.
    pub safe_mode: bool,
}

struct Job {
    rows: Vec<IngestRow>,
    reply: Option<oneshot::Sender<Outcome>>,
}

struct WriteMsg {
    rows: Vec<HistoryRow>,
    outcome: Outcome,
    reply: Option<oneshot::Sender<Outcome>>,
}

/// Starting the engine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Bad pipeline settings.
    #[error(transparent)]
    Core(#[from] regime_core::Error),
    /// A thread could not be started.
    #[error("starting a thread: {0}")]
    Spawn(std::io::Error),
}

/// The running engine.
#[derive(Debug)]
pub struct Engine {
    senders: Mutex<Option<Vec<SyncSender<Job>>>>,
    workers: usize,
    /// Shared snapshots and counters.
    pub shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn shard(symbol: &str, n: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    symbol.hash(&mut h);
    (h.finish() % n as u64) as usize
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Start the workers and the store writer. `store` is the writer's connection; `reopen`
    /// makes a new one after the database comes back. `stored`: what the store held at
    /// start ([`StoredAtStart::read`], read where blocking is allowed), None when it is down.
    pub fn start(
        cfg: EngineConfig,
        store: Option<Box<dyn Store>>,
        storage: StorageConfig,
        stored: Option<Result<StoredAtStart, StoreError>>,
    ) -> Result<Engine, EngineError> {
        cfg.pipeline.validate()?;
        if let Some(dir) = &cfg.models_dir {
            // once at start, not per model saved: model files half-written when the service
            // was killed
            crate::io::remove_stale_temps(dir, None);
        }
        if let Some(dir) = &cfg.state_dir {
            crate::io::remove_stale_temps(dir, None);
        }
        let workers = cfg.workers.max(1);
        let (spool, spooled_rows) = match &cfg.spool_path {
            Some(p) => {
                let (sp, mut rows) = crate::spool::Spool::open(p).map_err(EngineError::Spawn)?;
                if let Some(Ok(st)) = &stored {
                    let before = rows.len();
                    rows.retain(|r| !already_stored(r, &st.last));
                    let n = before - rows.len();
                    if n > 0 {
                        tracing::warn!(target: "regime_server::store", "spool {}: {n} rows are in the store already (a stop between a commit and emptying the spool): not written again", p.display());
                    }
                }
                if !rows.is_empty() {
                    tracing::warn!(target: "regime_server::store", "spool {}: {} rows from an earlier run will be written to the store", p.display(), rows.len());
                }
                (Some(sp), rows)
            }
            None => (None, Vec::new()),
        };
        // what the store holds is known (else no saved state can be checked against it: none
        // is resumed, none removed, no journal removed)
        let stored_known = matches!(stored, Some(Ok(_)));
        let StoredAtStart { last, currents } = stored_at_start(stored, &spooled_rows);
        let stored = Arc::new(last);
        // each stored symbol's current regime, served before its next bar arrives
        let currents: HashMap<String, Arc<Current>> = currents
            .into_iter()
            .map(|c| {
                metrics::gauge!("regime_current", "symbol" => c.symbol.clone())
                    .set(c.row.regime_id as f64);
                metrics::gauge!("regime_confidence", "symbol" => c.symbol.clone())
                    .set(c.row.confidence);
                (c.symbol.clone(), Arc::new(c))
            })
            .collect();
        let first_symbol = currents.keys().min().cloned();
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(currents),
            insight: ArcSwap::from_pointee(HashMap::new()),
            // every stored symbol listed from the start, its last bar the stored one (counts
            // are since this start)
            quality: Mutex::new(
                stored
                    .iter()
                    .map(|(sym, &ts)| {
                        let mut q = SymbolQuality::default();
                        q.last_ts = Some(ts);
                        (sym.clone(), q)
                    })
                    .collect(),
            ),
            unparsed: Mutex::new(BTreeMap::new()),
            queue_depth: AtomicUsize::new(0),
            queue_capacity: cfg.queue_capacity.max(1),
            symbols_held: AtomicUsize::new(0),
            max_symbols: cfg.max_symbols,
            retry_buffer_rows: cfg.retry_buffer_rows,
            symbol_limit_logged: AtomicI64::new(i64::MIN),
            detections: AtomicU64::new(0),
            stored_rows: AtomicU64::new(0),
            pending_rows: AtomicUsize::new(0),
            db_up: AtomicBool::new(store.is_some()),
            store_generation: AtomicU64::new(0),
            // after a restart the default symbol is the first stored one by name (before, the
            // first to arrive)
            first_symbol: Mutex::new(first_symbol),
            batch_size: AtomicUsize::new(cfg.batch_size.max(1)),
            last_store_error: Mutex::new(None),
            store_damaged: AtomicBool::new(false),
            store_check: Mutex::new(StoreCheck::NotRun),
            detect_ns: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            safe_mode: cfg.safe_mode,
            stored_at_start: stored,
            stored_known,
            not_durable: AtomicBool::new(false),
        });
        if storage.kind == crate::config::StorageKind::Embedded
            && storage.check_at_start
            && storage.path.is_file()
        {
            spawn_store_check(storage.path.clone(), shared.clone());
        }
        let (wtx, wrx) = mpsc::sync_channel::<WriteMsg>(64);
        let mut threads = Vec::new();
        {
            let shared = shared.clone();
            let retry = cfg.retry_buffer_rows;
            threads.push(
                std::thread::Builder::new()
                    .name("store-writer".into())
                    .spawn(move || {
                        writer_loop(wrx, store, storage, shared, retry, spool, spooled_rows)
                    })
                    .map_err(EngineError::Spawn)?,
            );
        }
        let mut senders = Vec::new();
        if cfg.state_dir.is_some() {
            // computed once here, not by the first worker to need it
            let t = std::time::Instant::now();
            let id = crate::resume::build_id();
            tracing::info!(target: "regime_server::models", "states are read and written as {id} (identity taken in {:.0} ms)", t.elapsed().as_secs_f64() * 1e3);
        }
        // the bars journaled since the last states were saved: a state behind the store (a
        // crash) catches up with them
        let journal = Arc::new(match &cfg.state_dir {
            Some(dir) => crate::journal::read_dir(dir),
            None => crate::journal::Journaled::default(),
        });
        let run_ms = now_ms();
        // each worker says when it has resumed its share of the saved states (and whether
        // every state it replayed is saved again): the service answers only then, so nothing
        // is served from an empty pipeline that is about to be replaced
        let (ready_tx, ready_rx) = mpsc::channel::<bool>();
        for w in 0..workers {
            // each worker's channel can hold the whole queue: the global reservation in
            // `try_submit` is what bounds it, so a reserved send never fails
            let (tx, rx) = mpsc::sync_channel::<Job>(shared.queue_capacity);
            senders.push(tx);
            let shared = shared.clone();
            let wtx = wtx.clone();
            let cfg = cfg.clone();
            let ready = ready_tx.clone();
            let journal = journal.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("detect-{w}"))
                    .spawn(move || {
                        worker_loop(rx, wtx, shared, cfg, (w, workers), ready, (journal, run_ms))
                    })
                    .map_err(EngineError::Spawn)?,
            );
        }
        drop(ready_tx);
        // a worker that panicked while resuming drops its sender: the wait ends either way
        let mut all_saved = true;
        for _ in 0..workers {
            match ready_rx.recv() {
                Ok(saved) => all_saved &= saved,
                Err(_) => {
                    all_saved = false;
                    break;
                }
            }
        }
        // the journals read are behind every saved state now (else kept for the next start)
        if all_saved && shared.stored_known && !journal.files.is_empty() {
            for f in &journal.files {
                let _ = std::fs::remove_file(f);
            }
            if let Some(dir) = &cfg.state_dir {
                crate::io::fsync_dir(dir);
            }
        }
        Ok(Engine {
            senders: Mutex::new(Some(senders)),
            workers,
            shared,
            threads: Mutex::new(threads),
        })
    }

    /// Queue a batch without waiting; one receiver per worker batch it was split into.
    pub fn try_submit(
        &self,
        rows: Vec<IngestRow>,
    ) -> Result<Vec<oneshot::Receiver<Outcome>>, Busy> {
        let parts = self.split(rows);
        self.reserve(&parts)?;
        self.send(parts, true)
    }

    /// Queue a batch, waiting for room (feeds); returns when queued.
    pub fn submit_blocking(&self, rows: Vec<IngestRow>) -> Result<(), Busy> {
        // split once; only the reservation is retried
        let parts = self.split(rows);
        loop {
            match self.reserve(&parts) {
                Ok(()) => return self.send(parts, false).map(|_| ()),
                Err(Busy::QueueFull) | Err(Busy::StoreDown) | Err(Busy::NotDurable) => {
                    if self.shared.closing.load(Ordering::Relaxed) {
                        return Err(Busy::ShuttingDown);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Rows per worker (symbols sharded by hash; order within a symbol kept).
    fn split(&self, rows: Vec<IngestRow>) -> Vec<Vec<IngestRow>> {
        let n = self.workers;
        let mut parts: Vec<Vec<IngestRow>> = vec![Vec::new(); n];
        for r in rows {
            parts[shard(&r.symbol, n)].push(r);
        }
        parts
    }

    /// Reserve queue room for every non-empty part at once: a batch is queued whole or not
    /// at all.
    fn reserve(&self, parts: &[Vec<IngestRow>]) -> Result<(), Busy> {
        let needed = parts.iter().filter(|p| !p.is_empty()).count();
        let s = &self.shared;
        if s.not_durable.load(Ordering::Acquire) {
            return Err(Busy::NotDurable);
        }
        // the store down and the retry buffer full: the writer takes no more rows, so a
        // batch queued now would wait for the store (the client saw a 408 at
        // server.request_timeout_ms, then its retry refused as already seen)
        if !s.db_up.load(Ordering::Relaxed)
            && s.pending_rows.load(Ordering::Relaxed) >= s.retry_buffer_rows
        {
            return Err(Busy::StoreDown);
        }
        let mut cur = s.queue_depth.load(Ordering::Acquire);
        loop {
            if cur + needed > s.queue_capacity {
                let down =
                    !s.db_up.load(Ordering::Relaxed) && s.pending_rows.load(Ordering::Relaxed) > 0;
                return Err(if down {
                    Busy::StoreDown
                } else {
                    Busy::QueueFull
                });
            }
            match s.queue_depth.compare_exchange_weak(
                cur,
                cur + needed,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(x) => cur = x,
            }
        }
    }

    /// Send reserved parts to their workers (a reserved send only fails at shutdown).
    fn send(
        &self,
        parts: Vec<Vec<IngestRow>>,
        want_reply: bool,
    ) -> Result<Vec<oneshot::Receiver<Outcome>>, Busy> {
        let s = &self.shared;
        let mut unsent = parts.iter().filter(|p| !p.is_empty()).count();
        let guard = self.senders.lock().ok();
        let Some(senders) = guard.as_ref().and_then(|g| g.as_ref()) else {
            s.queue_depth.fetch_sub(unsent, Ordering::AcqRel);
            return Err(Busy::ShuttingDown);
        };
        let mut out = Vec::new();
        for (w, part) in parts.into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            let (reply, rx) = if want_reply {
                let (t, r) = oneshot::channel();
                (Some(t), Some(r))
            } else {
                (None, None)
            };
            if senders[w].try_send(Job { rows: part, reply }).is_err() {
                s.queue_depth.fetch_sub(unsent, Ordering::AcqRel);
                return Err(Busy::ShuttingDown);
            }
            unsent -= 1;
            out.extend(rx);
        }
        Ok(out)
    }

    /// Stop taking work, let the workers drain the queue and the writer flush, and wait.
    pub fn shutdown(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.senders.lock() {
            g.take();
        }
        let threads = match self.threads.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(_) => Vec::new(),
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A symbol's insight (components, weights, accuracy) is rebuilt at most this often.
const INSIGHT_EVERY: Duration = Duration::from_millis(250);

struct SymbolState {
    pipe: SymbolPipeline,
    since_ts: i64,
    last_id: Option<u8>,
    last_insight: Option<Instant>,
    /// Bars arrived since the last published insight (held back by its rate limit): the
    /// worker publishes it once idle, so a burst (a backfill, a replay at full speed) does
    /// not leave its symbols' components and accuracy as they were early in the burst.
    insight_stale: bool,
    saved_version: u64,
    last_save: Option<Instant>,
    saved_files: std::collections::VecDeque<PathBuf>,
    agreement: [f64; 3],
    /// Bars taken since its state was last saved.
    dirty: bool,
    /// The last bars taken, to know a resend of them.
    recent: RecentBars,
}

/// Accepted bars a resend is recognized within, per symbol (a retried batch after a
/// timeout, a feed redelivering after a reconnect): 16 bytes each.
const RECENT_BARS: usize = 256;

/// The last [`RECENT_BARS`] accepted bars of a symbol: time and a fingerprint of the
/// values, in time order.
#[derive(Debug, Default)]
struct RecentBars(std::collections::VecDeque<(i64, u64)>);

impl RecentBars {
    fn push(&mut self, b: &Bar) {
        if self.0.len() == RECENT_BARS {
            self.0.pop_front();
        }
        self.0.push_back((b.ts, b.fingerprint()));
    }

    /// Whether `b` is one of the recent bars again, values and all.
    fn holds(&self, b: &Bar) -> bool {
        self.0
            .binary_search_by_key(&b.ts, |&(ts, _)| ts)
            .is_ok_and(|i| self.0[i].1 == b.fingerprint())
    }
}

/// Row indices grouped by symbol: groups in order of first appearance, rows in arrival
/// order within a group.
fn group_by_symbol(rows: &[IngestRow]) -> Vec<Vec<u32>> {
    let mut group_of: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<u32>> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let g = *group_of.entry(r.symbol.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i as u32);
    }
    groups
}

/// What the store holds at start: each symbol's newest timestamp, and its current regime.
#[derive(Debug, Default)]
pub struct StoredAtStart {
    /// Newest stored timestamp (ms) per symbol.
    pub last: HashMap<String, i64>,
    /// Each symbol's newest row and the run of its regime up to it.
    pub currents: Vec<Current>,
}

impl StoredAtStart {
    /// Read it (a blocking call: the PostgreSQL client must not run on a runtime thread).
    /// The run behind each symbol's newest row is read back in growing steps (64 rows, then
    /// 4× more, up to 65,536: a longer run shows as that many bars). `warmup` is the model's
    /// warm-up in bars: a symbol with fewer rows stored was still warming up at its newest.
    pub fn read(store: &mut dyn Store, warmup: usize) -> Result<Self, StoreError> {
        let last = store.last_timestamps()?;
        let mut currents = Vec::with_capacity(last.len());
        for (sym, &ts) in &last {
            // at least the warm-up's rows at once, so a full first read means it has passed
            let mut k = warmup.max(64);
            loop {
                let rows = store.history(&store::HistoryQuery {
                    symbol: Some(sym.clone()),
                    from: None,
                    to: Some(ts),
                    limit: k,
                })?;
                let Some(newest) = rows.last() else {
                    break;
                };
                let run = rows
                    .iter()
                    .rev()
                    .take_while(|r| r.regime_id == newest.regime_id)
                    .count();
                if run < rows.len() || rows.len() < k || k >= 65_536 {
                    currents.push(Current {
                        symbol: sym.clone(),
                        ts: newest.ts,
                        row: newest.clone(),
                        since: rows[rows.len() - run].ts,
                        // bars after the one the regime began with, as the pipeline counts
                        duration_bars: run as u64 - 1,
                        // every row the symbol has when fewer than asked for came back
                        warming_up: rows.len() < k && rows.len() < warmup,
                        arrived_ms: 0,
                    });
                    break;
                }
                k *= 4;
            }
        }
        Ok(StoredAtStart { last, currents })
    }
}

/// What the store held at start, each symbol's latest timestamp raised to the spool's (rows
/// acknowledged while the store was down, written by the writer after start). Without these
/// a restarted service took every bar it had already stored (a client's retry of an
/// acknowledged batch, a feed replayed from its start) as new and stored it a second time.
/// The store's part is missing when it is down at start or could not be read (logged).
fn stored_at_start(
    stored: Option<Result<StoredAtStart, StoreError>>,
    spooled: &[HistoryRow],
) -> StoredAtStart {
    let mut at_start = match stored {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            tracing::error!(target: "regime_server::store", "reading each symbol's latest stored bar: {e}; bars older than what is stored will be stored again");
            StoredAtStart::default()
        }
        None => {
            tracing::warn!(target: "regime_server::store", "store down at start: for a symbol with no rows in the spool, bars already stored cannot be told from new ones until its first new bar, and its saved state is not resumed (it starts fresh; the state and the bar journals are kept for a later start)");
            StoredAtStart::default()
        }
    };
    for r in spooled {
        let e = at_start.last.entry(r.symbol.clone()).or_insert(r.ts);
        *e = (*e).max(r.ts);
    }
    warn_of_future_rows(&at_start.last, crate::store::now_ms());
    at_start
}

/// Log (as an error) the symbols whose newest stored row lies more than a day ahead of the
/// clock — stored before ingest refused such bars (`server.max_future_secs`), by a feed
/// whose timestamps were in microseconds: every bar of theirs until then is refused as not
/// increasing — and how to remove those rows. Returns how many there are.
fn warn_of_future_rows(last: &HashMap<String, i64>, now: i64) -> usize {
    let cutoff = now + 86_400_000;
    let mut future: Vec<(&String, i64)> = last
        .iter()
        .filter(|(_, &t)| t > cutoff)
        .map(|(s, &t)| (s, t))
        .collect();
    if future.is_empty() {
        return 0;
    }
    future.sort();
    let named: Vec<String> = future
        .iter()
        .take(3)
        .map(|(s, t)| format!("{s} (at {})", crate::io::format_timestamp(*t)))
        .collect();
    let more = future.len().saturating_sub(3);
    let cut = crate::io::format_timestamp(cutoff);
    tracing::error!(
        target: "regime_server::store",
        "{} symbols' newest stored rows lie in the future, so every bar of theirs up to then is refused as not increasing: {}{}. With the service stopped (after a `regime backup`), delete those rows — embedded store: DELETE FROM regime_history WHERE timestamp > {cutoff}; PostgreSQL: DELETE FROM regime_history WHERE timestamp > '{cut}' — and start it again",
        future.len(),
        named.join(", "),
        if more > 0 { format!(" and {more} more") } else { String::new() },
    );
    future.len()
}

fn worker_loop(
    rx: Receiver<Job>,
    wtx: SyncSender<WriteMsg>,
    shared: Arc<Shared>,
    cfg: EngineConfig,
    (index, workers): (usize, usize),
    ready: mpsc::Sender<bool>,
    // the bars journaled by earlier runs, and this run's start (its journal's name)
    (journaled, run_ms): (Arc<crate::journal::Journaled>, i64),
) {
    let stored = shared.stored_at_start.clone();
    let mut symbols: HashMap<String, SymbolState> = HashMap::new();
    let mut validator = BarValidator::new();
    let mut journal = match (&cfg.state_dir, cfg.state_checkpoint) {
        (Some(dir), Some(_)) => Some(crate::journal::JournalWriter::new(dir, run_ms, index)),
        _ => None,
    };
    let mut replayed_saved = true;
    if let Some(dir) = &cfg.state_dir {
        // this worker's share of the stored symbols, resumed before the first batch so their
        // components, weights and accuracy are served at once (not after each one's next bar)
        let t = Instant::now();
        let (mut resumed, mut fresh, mut replayed, mut replayed_bars) = (0usize, 0usize, 0, 0);
        let currents = shared.current.load();
        for (sym, &ts) in stored.iter().filter(|(s, _)| shard(s, workers) == index) {
            let newest = currents.get(sym).map(|c| &c.row);
            let caught_up = match crate::resume::load(dir, sym, Some(ts), &cfg.pipeline) {
                Ok(mut s) => crate::resume::catch_up(&mut s, ts, &journaled, newest)
                    .map(|n| (s, n))
                    .map_err(Some),
                // no state saved yet (a symbol new since the last checkpoint): the journal
                // may hold every bar it ever had (a pipeline is built only when it holds some)
                Err(None) if !journaled.bars.contains_key(sym.as_str()) => Err(None),
                Err(None) => match SymbolPipeline::new(cfg.pipeline.clone()) {
                    Ok(pipe) => {
                        let mut s = crate::resume::Saved {
                            build: String::new(),
                            symbol: sym.clone(),
                            last_ts: i64::MIN,
                            since_ts: 0,
                            last_id: None,
                            pipe,
                        };
                        crate::resume::catch_up(&mut s, ts, &journaled, newest)
                            .map(|n| (s, n))
                            .map_err(|_| None)
                    }
                    Err(_) => Err(None),
                },
                Err(Some(why)) => Err(Some(why)),
            };
            match caught_up {
                Ok((s, replayed_now)) => {
                    let n = replayed_now.len();
                    // the replayed bars are stored: a resend of them (a client retrying a
                    // batch the crash left unanswered) is known as one
                    let mut recent = RecentBars::default();
                    replayed_now.iter().for_each(|b| recent.push(b));
                    validator.symbol_mut(sym).last_ts = Some(ts);
                    let dirty = n > 0;
                    if dirty {
                        replayed += 1;
                        replayed_bars += n;
                    }
                    let saved_version = s.pipe.hmm().model_version();
                    shared.symbols_held.fetch_add(1, Ordering::AcqRel);
                    symbols.insert(
                        sym.clone(),
                        SymbolState {
                            pipe: s.pipe,
                            since_ts: s.since_ts,
                            last_id: s.last_id,
                            last_insight: None,
                            insight_stale: true,
                            saved_version,
                            last_save: None,
                            saved_files: Default::default(),
                            agreement: [f64::NAN; 3],
                            dirty,
                            recent,
                        },
                    );
                    resumed += 1;
                }
                Err(None) => {}
                Err(Some(why)) => {
                    // never usable again (the store only grows past it, the build does not
                    // change back, the journal is not written again): removed, so it is
                    // reported once
                    fresh += 1;
                    if fresh <= 3 {
                        tracing::warn!(target: "regime_server::models", symbol = %sym, "saved state not resumed, starting fresh: {why}");
                    }
                    let _ = std::fs::remove_file(crate::resume::path(dir, sym));
                }
            }
        }
        if fresh > 3 {
            tracing::warn!(target: "regime_server::models", "{} more saved states not resumed (the first reasons above)", fresh - 3);
        }
        if replayed > 0 {
            // saved again at once: the journals read are removed once every worker is ready
            let (_, failed) = save_states(dir, &mut symbols, &validator);
            replayed_saved = failed == 0;
        }
        if resumed > 0 {
            publish_stale(&shared, &mut symbols);
            let caught_up = if replayed > 0 {
                format!(" ({replayed} of them caught up with {replayed_bars} journaled bars)")
            } else {
                String::new()
            };
            tracing::info!(target: "regime_server::models", "{resumed} symbols resumed from {} in {:.2} s{caught_up}", dir.display(), t.elapsed().as_secs_f64());
        }
    }
    let _ = ready.send(replayed_saved);
    drop(ready);
    // the bars read back are not needed past the start
    drop(journaled);
    let hist = metrics::histogram!("regime_detection_latency_seconds");
    let det_counter = metrics::counter!("regime_detection_total");
    let dup_counter = metrics::counter!("regime_bars_duplicate_total");
    let mut stale = false;
    loop {
        let job = match rx.recv_timeout(INSIGHT_EVERY) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if stale {
                    publish_stale(&shared, &mut symbols);
                    stale = false;
                }
                checkpoint(&cfg, &mut symbols, &validator, &mut journal);
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        stale = true;
        shared.queue_depth.fetch_sub(1, Ordering::AcqRel);
        let mut out = Outcome::default();
        let mut rows = Vec::with_capacity(job.rows.len());
        let mut touched: Vec<String> = Vec::new();
        let mut dup_syms: Vec<String> = Vec::new();
        let arrived = now_ms();
        let t_job = Instant::now();
        // One symbol's rows at a time (each in arrival order): a pipeline's state (tens of
        // KiB) stays in cache for its whole run instead of being evicted by the other
        // symbols of an interleaved batch; symbols are independent, so labels are the same.
        let groups = group_by_symbol(&job.rows);
        for group in &groups {
            let Some(&first) = group.first() else {
                continue;
            };
            let r0 = &job.rows[first as usize];
            let sym = if r0.symbol.is_empty() {
                "default"
            } else {
                r0.symbol.as_str()
            };
            // a new symbol beyond the limit: refused before anything of it is kept
            if !symbols.contains_key(sym) && !take_symbol_slot(&shared) {
                refuse_symbol(&shared, sym, group, &job.rows, &mut out);
                continue;
            }
            // the symbol's validation state and pipeline are looked up once per group
            let quality = validator.symbol_mut(sym);
            let st = match symbols.get_mut(sym) {
                Some(s) => s,
                None => {
                    // first sight since start: a symbol the store holds no row of starts
                    // fresh (the ones it holds were resumed at start when they could be); a
                    // state file of it is stale
                    if let Some(dir) = cfg
                        .state_dir
                        .as_deref()
                        .filter(|_| shared.stored_known && !stored.contains_key(sym))
                    {
                        let p = crate::resume::path(dir, sym);
                        if std::fs::remove_file(&p).is_ok() {
                            tracing::warn!(target: "regime_server::models", symbol = sym, "saved state not resumed, starting fresh: {}: the store holds no row of the symbol", p.display());
                        }
                    }
                    let pipe = match SymbolPipeline::new(cfg.pipeline.clone()) {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(symbol = sym, "pipeline: {e}");
                            shared.symbols_held.fetch_sub(1, Ordering::AcqRel);
                            continue;
                        }
                    };
                    if let Ok(mut f) = shared.first_symbol.lock() {
                        f.get_or_insert_with(|| sym.to_string());
                    }
                    // bars at or before what is stored are not new
                    if quality.last_ts.is_none() {
                        quality.last_ts = stored.get(sym).copied();
                    }
                    symbols.entry(sym.to_string()).or_insert(SymbolState {
                        pipe,
                        since_ts: r0.bar.ts,
                        last_id: None,
                        last_insight: None,
                        insight_stale: false,
                        saved_version: 0,
                        last_save: None,
                        saved_files: Default::default(),
                        agreement: [f64::NAN; 3],
                        dirty: true,
                        recent: RecentBars::default(),
                    })
                }
            };
            let rows_before = rows.len();
            for &i in group {
                let r = &job.rows[i as usize];
                let prev_ts = quality.last_ts;
                if prev_ts.is_some_and(|t| r.bar.ts <= t) && st.recent.holds(&r.bar) {
                    // a resend of a bar taken: already there (a retry after a timeout or a
                    // 503 must not read as bad data), not learned twice
                    out.duplicates += 1;
                    quality.duplicates += 1;
                    dup_counter.increment(1);
                    if !dup_syms.iter().any(|x| x == sym) {
                        dup_syms.push(sym.to_string());
                    }
                    continue;
                }
                if let Err(reason) = BarValidator::check_symbol(quality, &r.bar) {
                    reject_row(&mut out, r.row, sym, &reason);
                    continue;
                }
                st.recent.push(&r.bar);
                if let Some(j) = &mut journal {
                    j.append(sym, prev_ts, &r.bar);
                }
                st.dirty = true;
                let d = st.pipe.update(&r.bar);
                let id = d.regime.id();
                if st.last_id != Some(id) {
                    st.since_ts = d.ts;
                    st.last_id = Some(id);
                }
                let [v, t, s] = d.regime.indices();
                let fin = [v as u8, t as u8, s as u8];
                for (dim, a) in st.agreement.iter_mut().enumerate() {
                    let voters = d.methods.iter().filter(|m| m[dim] != u8::MAX);
                    let (n, agree) = voters.fold((0u32, 0u32), |(n, k), m| {
                        (n + 1, k + (m[dim] == fin[dim]) as u32)
                    });
                    *a = if n > 0 {
                        agree as f64 / n as f64
                    } else {
                        f64::NAN
                    };
                }
                rows.push(HistoryRow {
                    ts: d.ts,
                    symbol: sym.to_string(),
                    regime_id: id,
                    volatility: v as u8,
                    trend: t as u8,
                    structure: s as u8,
                    confidence: d.confidence,
                    p_volatility: d.p_volatility,
                    p_trend: d.p_trend,
                    p_structure: d.p_structure,
                    model_version: d.model_version,
                });
            }
            if rows.len() > rows_before && !touched.iter().any(|x| x == sym) {
                touched.push(sym.to_string());
            }
        }
        out.accepted = rows.len();
        if !rows.is_empty() {
            let per_bar = t_job.elapsed().as_secs_f64() / rows.len() as f64;
            hist.record(per_bar);
            det_counter.increment(rows.len() as u64);
            shared
                .detections
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            shared.detect_ns.fetch_add(
                (per_bar * 1e9 * rows.len() as f64) as u64,
                Ordering::Relaxed,
            );
        }
        publish(&shared, &mut symbols, &touched, &rows, arrived, &cfg);
        if let Ok(mut q) = shared.quality.lock() {
            let vq = validator.quality();
            for sym in touched
                .iter()
                .chain(&dup_syms)
                .chain(out.errors.iter().map(|e| &e.symbol))
            {
                if let Some(v) = vq.get(sym) {
                    q.insert(sym.clone(), v.clone());
                }
            }
        }
        // the bars are with the operating system before their rows can be acknowledged
        if let Some(j) = &mut journal {
            j.flush();
        }
        let msg = WriteMsg {
            rows,
            outcome: out,
            reply: job.reply,
        };
        if wtx.send(msg).is_err() {
            tracing::error!("store writer stopped; worker exits");
            return;
        }
        checkpoint(&cfg, &mut symbols, &validator, &mut journal);
    }
    // queue closed (shutdown): save every model that changed since its last save
    if let Some(dir) = &cfg.models_dir {
        for (sym, st) in symbols.iter_mut() {
            maybe_save_model(dir, sym, st, Duration::ZERO, cfg.models_keep, true);
        }
    }
    if let Some(dir) = &cfg.state_dir {
        let t = Instant::now();
        let (saved, failed) = save_states(dir, &mut symbols, &validator);
        if saved + failed > 0 {
            tracing::info!(target: "regime_server::models", "{saved} symbol states saved to {} in {:.2} s ({failed} failed)", dir.display(), t.elapsed().as_secs_f64());
        }
        if failed == 0 {
            if let Some(j) = &mut journal {
                j.restart();
            }
        }
    }
}

/// Save the states of the symbols that took bars since their last save, when a checkpoint
/// is due (its interval passed, or the journal is large), and start the journal afresh
/// once every one is saved (else it keeps the bars behind the states not saved).
fn checkpoint(
    cfg: &EngineConfig,
    symbols: &mut HashMap<String, SymbolState>,
    validator: &BarValidator,
    journal: &mut Option<crate::journal::JournalWriter>,
) {
    let (Some(dir), Some(every), Some(j)) = (&cfg.state_dir, cfg.state_checkpoint, journal) else {
        return;
    };
    if j.last_checkpoint.elapsed() < every && j.bytes() < crate::journal::CHECKPOINT_BYTES {
        return;
    }
    let t = Instant::now();
    j.last_checkpoint = t;
    let (saved, failed) = save_states(dir, symbols, validator);
    if failed == 0 {
        j.restart();
    }
    if saved + failed > 0 {
        tracing::debug!(target: "regime_server::models", "checkpoint: {saved} symbol states saved in {:.3} s ({failed} failed)", t.elapsed().as_secs_f64());
    }
}

/// Save the pipeline states ([`crate::resume`]) of the symbols that took bars since their
/// last save (the others' files are current); returns (saved, failed). The folder is synced.
fn save_states(
    dir: &std::path::Path,
    symbols: &mut HashMap<String, SymbolState>,
    validator: &BarValidator,
) -> (usize, usize) {
    if !symbols.values().any(|s| s.dirty) {
        return (0, 0);
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        tracing::error!(target: "regime_server::models", "state folder {}: {e}; the next start learns every symbol afresh", dir.display());
        return (0, symbols.len());
    }
    let (mut saved, mut failed) = (0usize, 0usize);
    let mut first_error = String::new();
    let build = crate::resume::build_id();
    for (sym, st) in symbols.iter_mut().filter(|(_, s)| s.dirty) {
        let Some(last_ts) = validator.quality().get(sym).and_then(|q| q.last_ts) else {
            continue;
        };
        let s = crate::resume::SavedRef {
            build,
            symbol: sym,
            last_ts,
            since_ts: st.since_ts,
            last_id: st.last_id,
            pipe: &st.pipe,
        };
        match crate::resume::save(dir, &s) {
            Ok(()) => {
                saved += 1;
                st.dirty = false;
            }
            Err(e) => {
                failed += 1;
                if failed == 1 {
                    first_error = format!("{sym}: {e}");
                }
            }
        }
    }
    crate::io::fsync_dir(dir);
    if failed > 0 {
        // one line, not one a symbol (a full disk fails them all, at every checkpoint)
        tracing::error!(target: "regime_server::models", "{failed} symbol states not saved to {} (the first: {first_error}); a restart before their next save starts them afresh", dir.display());
    }
    (saved, failed)
}

fn publish(
    shared: &Shared,
    symbols: &mut HashMap<String, SymbolState>,
    touched: &[String],
    rows: &[HistoryRow],
    arrived: i64,
    cfg: &EngineConfig,
) {
    if touched.is_empty() {
        return;
    }
    // last row per touched symbol
    let mut last: HashMap<&str, &HistoryRow> = HashMap::new();
    for r in rows {
        last.insert(r.symbol.as_str(), r);
    }
    let mut cur_updates = Vec::with_capacity(touched.len());
    let mut ins_updates = Vec::new();
    for sym in touched {
        let (Some(st), Some(r)) = (symbols.get_mut(sym), last.get(sym.as_str())) else {
            continue;
        };
        metrics::gauge!("regime_current", "symbol" => sym.clone()).set(r.regime_id as f64);
        metrics::gauge!("regime_confidence", "symbol" => sym.clone()).set(r.confidence);
        cur_updates.push(Arc::new(Current {
            symbol: sym.clone(),
            ts: r.ts,
            row: (*r).clone(),
            since: st.since_ts,
            duration_bars: st.pipe.current_duration(),
            // the model is fitted at the last bar of its warm-up, so none yet after the
            // last bar means that bar's label was a warm-up one
            warming_up: st.pipe.hmm().params().is_none(),
            arrived_ms: arrived,
        }));
        let due = st.last_insight.is_none_or(|t| t.elapsed() >= INSIGHT_EVERY);
        if due {
            st.last_insight = Some(Instant::now());
            st.insight_stale = false;
            ins_updates.push((sym.clone(), Arc::new(insight_of(&st.pipe, st.agreement))));
        } else {
            st.insight_stale = true;
        }
        if let Some(dir) = &cfg.models_dir {
            maybe_save_model(dir, sym, st, cfg.model_save_every, cfg.models_keep, false);
        }
    }
    shared.current.rcu(|m| {
        let mut m = HashMap::clone(m);
        for c in &cur_updates {
            m.insert(c.symbol.clone(), c.clone());
        }
        m
    });
    store_insights(shared, &ins_updates);
}

fn store_insights(shared: &Shared, updates: &[(String, Arc<Insight>)]) {
    if !updates.is_empty() {
        shared.insight.rcu(|m| {
            let mut m = HashMap::clone(m);
            for (s, i) in updates {
                m.insert(s.clone(), i.clone());
            }
            m
        });
    }
}

/// Publish the insights the rate limit held back (the worker is idle).
fn publish_stale(shared: &Shared, symbols: &mut HashMap<String, SymbolState>) {
    let updates: Vec<(String, Arc<Insight>)> = symbols
        .iter_mut()
        .filter(|(_, st)| st.insight_stale)
        .map(|(sym, st)| {
            st.insight_stale = false;
            st.last_insight = Some(Instant::now());
            (sym.clone(), Arc::new(insight_of(&st.pipe, st.agreement)))
        })
        .collect();
    store_insights(shared, &updates);
}

/// Save a symbol's model when its version changed and `every` has passed since the last
/// save (or always, at shutdown); keep the newest `keep` files.
fn maybe_save_model(
    dir: &std::path::Path,
    sym: &str,
    st: &mut SymbolState,
    every: Duration,
    keep: usize,
    shutdown: bool,
) {
    let v = st.pipe.hmm().model_version();
    if v == st.saved_version || st.pipe.hmm().params().is_none() {
        return;
    }
    if !shutdown && st.last_save.is_some_and(|t| t.elapsed() < every) {
        return;
    }
    st.saved_version = v;
    st.last_save = Some(Instant::now());
    match crate::commands::save_model(dir, sym, &st.pipe, std::path::Path::new("service")) {
        Ok(p) => {
            tracing::info!(target: "regime_server::models", symbol = %sym, version = v, "model saved to {}", p.display());
            st.saved_files.push_back(p);
            while st.saved_files.len() > keep.max(1) {
                if let Some(old) = st.saved_files.pop_front() {
                    let _ = std::fs::remove_file(old);
                }
            }
        }
        Err(e) => {
            tracing::error!(target: "regime_server::models", symbol = %sym, "model save failed: {e}")
        }
    }
}

fn insight_of(p: &SymbolPipeline, agreement: [f64; 3]) -> Insight {
    Insight {
        components: p.components(),
        transitions: p.transition_counts().to_vec(),
        weights: p.ensemble_weights(),
        method_accuracy: p.method_accuracy(),
        accuracy: p.regime_accuracy(),
        exact_accuracy: p.exact_accuracy(),
        plain_accuracy: p.agreement_all_bars(),
        bars: p.hmm().n(),
        agreement,
    }
}

fn writer_loop(
    rx: Receiver<WriteMsg>,
    mut store: Option<Box<dyn Store>>,
    storage: StorageConfig,
    shared: Arc<Shared>,
    retry_rows: usize,
    mut spool: Option<crate::spool::Spool>,
    from_spool: Vec<HistoryRow>,
) {
    let db_gauge = metrics::gauge!("regime_db_up");
    db_gauge.set(if store.is_some() { 1.0 } else { 0.0 });
    // rows not yet committed (those of an earlier run's spool first), how many of them are
    // already in the spool, and the acknowledgements that wait for them
    let mut spooled = from_spool.len();
    let mut pending: Vec<HistoryRow> = from_spool;
    let mut waiting: Vec<(Outcome, oneshot::Sender<Outcome>)> = Vec::new();
    let mut last_try = Instant::now() - Duration::from_secs(10);
    let mut disconnected = false;
    let mut gave_up_at: Option<Instant> = None;
    let mut last_maintain = Instant::now();
    let mut last_file_check = Instant::now();
    // commits of a deferred-sync store are acknowledged by the syncer once its fsync is done
    let (sync_tx, sync_rx) = mpsc::channel::<SyncJob>();
    let syncer = std::thread::Builder::new()
        .name("store-syncer".into())
        .spawn(move || syncer_loop(sync_rx))
        .map_err(|e| tracing::error!(target: "regime_server::store", "syncer thread: {e}; syncing in the writer"))
        .ok();
    let sync_tx = syncer.as_ref().map(|_| sync_tx);
    loop {
        let batch = shared.batch_size.load(Ordering::Relaxed).max(1);
        // 1. gather: block when idle; while rows wait for a dead store, poll so retries run,
        //    and stop taking more once the retry buffer is full (workers then block, the
        //    queue fills, and ingest answers 503)
        if pending.len() < retry_rows && !disconnected {
            let got = if pending.is_empty() && waiting.is_empty() {
                // idle: wake every 2 s to check the store, so an outage shows in health
                // (and `regime_db_up`) even when nothing is being written
                rx.recv_timeout(IDLE_CHECK)
            } else {
                rx.recv_timeout(Duration::from_millis(200))
            };
            match got {
                Ok(m) => {
                    take(m, &mut pending, &mut waiting);
                    while pending.len() < batch {
                        match rx.try_recv() {
                            Ok(m) => take(m, &mut pending, &mut waiting),
                            Err(_) => break,
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => disconnected = true,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if pending.is_empty() && waiting.is_empty() {
                        idle_check(&mut store, &storage, &shared, &db_gauge, &mut last_try);
                        continue;
                    }
                }
            }
        } else if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
        shared.pending_rows.store(pending.len(), Ordering::Relaxed);
        if pending.is_empty() {
            // rejected-only batches: nothing to write
            for (o, tx) in waiting.drain(..) {
                let _ = tx.send(Outcome {
                    committed: true,
                    ..o
                });
            }
            if disconnected {
                break;
            }
            continue;
        }
        // the file removed or replaced under the service: these rows go to the one now there
        if last_file_check.elapsed() >= IDLE_CHECK {
            last_file_check = Instant::now();
            drop_if_replaced(&mut store, &storage, &shared);
        }
        // 2. make sure there is a connection (reconnect at most once a second)
        if store.is_none() && last_try.elapsed() >= Duration::from_secs(1) {
            last_try = Instant::now();
            match store::open(&storage, store::Role::ServiceWriter) {
                Ok(s) => {
                    if shared.store_damaged.load(Ordering::Relaxed) {
                        // the file opens again each second and fails again at the write
                        tracing::debug!(target: "regime_server::store", "store reopened; writing {} buffered rows", pending.len());
                    } else {
                        tracing::warn!(target: "regime_server::store", "store reconnected; writing {} buffered rows", pending.len());
                    }
                    store = Some(s);
                }
                Err(e) => note_err(&shared, &e),
            }
        }
        // 3. write everything pending in one transaction (rows the store refuses as data
        //    set aside, not retried for ever)
        let result = match store.as_mut() {
            Some(s) => insert_setting_aside(s.as_mut(), &pending),
            None => Err(StoreError::Corrupt("not connected".into())),
        };
        match result {
            Ok(refused) => {
                shared.store_damaged.store(false, Ordering::Relaxed);
                if !refused.is_empty() {
                    set_aside(&storage, &pending, &refused);
                }
                shared
                    .stored_rows
                    .fetch_add((pending.len() - refused.len()) as u64, Ordering::Relaxed);
                // the spooled rows are in the store now: once that is durable, the spool is
                // emptied (it kept them, and a restart wrote them a second time; and with
                // `spooled` left counting them, a later outage's rows were answered as
                // spooled without being written to it)
                if spooled > 0 || spool.as_ref().is_some_and(|sp| sp.rows > 0) {
                    empty_spool(store.as_deref(), spool.as_mut());
                }
                spooled = 0;
                pending.clear();
                shared.pending_rows.store(0, Ordering::Relaxed);
                shared.store_generation.fetch_add(1, Ordering::Release);
                if last_maintain.elapsed() >= MAINTAIN_EVERY {
                    last_maintain = Instant::now();
                    if let Some(Err(e)) = store.as_mut().map(|s| s.maintain()) {
                        tracing::warn!(target: "regime_server::store", "store maintenance: {e}");
                    }
                }
                if !shared.db_up.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: "regime_server::store", "store is back up");
                }
                if shared.not_durable.swap(false, Ordering::AcqRel) {
                    tracing::warn!(target: "regime_server::store", "rows are durable again (committed): ingest is acknowledged again");
                }
                db_gauge.set(1.0);
                let acks = std::mem::take(&mut waiting);
                match store.as_ref().and_then(|s| s.sync_file()) {
                    None => ack(acks, true),
                    Some(file) => {
                        let job = SyncJob { file, acks };
                        if let Err(mpsc::SendError(job)) = match &sync_tx {
                            Some(t) => t.send(job),
                            None => Err(mpsc::SendError(job)),
                        } {
                            let r = fsync_durable(&job.file);
                            if let Err(e) = &r {
                                tracing::error!(target: "regime_server::store", "fsync of {} failed: {e}", job.file.display());
                            }
                            ack(job.acks, r.is_ok());
                        }
                    }
                }
            }
            Err(e) => {
                if store.is_some() {
                    note_err(&shared, &e);
                    store = None;
                    last_try = Instant::now();
                }
                shared.db_up.store(false, Ordering::Relaxed);
                db_gauge.set(0.0);
                // the rows stay in `pending` and are retried; the spool makes them crash-safe
                let mut safe = false;
                if let Some(sp) = spool.as_mut() {
                    if sp.lost() {
                        tracing::error!(target: "regime_server::store", "spool {}: the file was removed while it held acknowledged rows; writing all {} rows not yet stored to it again", sp.path().display(), pending.len());
                        spooled = 0;
                    }
                    match sp.append(&pending[spooled.min(pending.len())..]) {
                        Ok(()) => {
                            spooled = pending.len();
                            safe = true;
                        }
                        Err(e) => {
                            if !shared.not_durable.load(Ordering::Acquire) {
                                tracing::error!(target: "regime_server::store", "spool append failed ({e}): the store is down and the spool cannot take rows, so new batches are refused (503) until either does; the {} rows already acknowledged are held in memory and retried", pending.len());
                            }
                        }
                    }
                }
                // refuse what is not yet detected; what is (these batches) is answered
                // with committed and spooled false, and written once the store or the spool
                // takes it
                if shared.not_durable.swap(!safe, Ordering::AcqRel) && safe {
                    tracing::warn!(target: "regime_server::store", "the spool takes rows again: ingest is acknowledged again");
                }
                for (o, tx) in waiting.drain(..) {
                    let _ = tx.send(Outcome {
                        committed: false,
                        spooled: safe,
                        ..o
                    });
                }
                if disconnected {
                    let t0 = *gave_up_at.get_or_insert_with(Instant::now);
                    if t0.elapsed() > Duration::from_secs(10) {
                        tracing::error!(target: "regime_server::store", "shutting down with {} rows not written to the unreachable store ({} of them in the spool, written at the next start)", pending.len(), spooled.min(pending.len()));
                        break;
                    }
                }
            }
        }
    }
    // every commit's acknowledgement goes out before the writer reports done
    drop(sync_tx);
    if let Some(h) = syncer {
        let _ = h.join();
    }
}

/// Acknowledgements waiting for an fsync of `file`.
struct SyncJob {
    file: std::path::PathBuf,
    acks: Vec<(Outcome, oneshot::Sender<Outcome>)>,
}

/// Answer the waiting batches: committed when the commit is durable.
fn ack(acks: Vec<(Outcome, oneshot::Sender<Outcome>)>, durable: bool) {
    for (o, tx) in acks {
        let _ = tx.send(Outcome {
            committed: durable,
            spooled: false,
            ..o
        });
    }
}

/// fsync `file` (the WAL); when it is gone, SQLite has checkpointed it into the database
/// (and synced that) — the database file is synced then, to be sure.
fn fsync_durable(file: &std::path::Path) -> std::io::Result<()> {
    let open = |p: &std::path::Path| std::fs::OpenOptions::new().write(true).open(p);
    match open(file) {
        Ok(f) => f.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let db = file.to_string_lossy();
            let db = db.strip_suffix("-wal").unwrap_or(&db);
            open(std::path::Path::new(db))?.sync_data()
        }
        Err(e) => Err(e),
    }
}

/// The syncer: one fsync covers every commit queued before it (group commit), then their
/// batches are acknowledged. A failed fsync is retried once; if it fails again the batches
/// are answered `committed: false` (their durability is unknown) and the error is logged.
fn syncer_loop(rx: Receiver<SyncJob>) {
    // the WAL is created by the service's first commit, and a new file's name is durable
    // only once its folder is synced: done once, with the first sync
    let mut folder_synced = false;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        let file = jobs[jobs.len() - 1].file.clone();
        let r = fsync_durable(&file).or_else(|_| fsync_durable(&file));
        if r.is_ok() && !folder_synced {
            crate::io::fsync_parent(&file);
            folder_synced = true;
        }
        if let Err(e) = &r {
            tracing::error!(target: "regime_server::store", "fsync of {} failed: {e}; the batches of {} commits are answered as not committed", file.display(), jobs.len());
        }
        for j in jobs {
            ack(j.acks, r.is_ok());
        }
    }
}

/// How often the writer runs store maintenance (WAL reset of the embedded store).
const MAINTAIN_EVERY: Duration = Duration::from_secs(10);

/// How often an idle writer checks the store.
const IDLE_CHECK: Duration = Duration::from_secs(2);

/// The embedded store's file removed or replaced while the service runs (a file copied over
/// it, `rm` to free space): the connection still wrote to the old file, where every later
/// row was lost at the next start. Said once, as an error, and the connection dropped, so
/// that the next write opens the file now at the path.
fn drop_if_replaced(store: &mut Option<Box<dyn Store>>, storage: &StorageConfig, shared: &Shared) {
    if !store.as_ref().is_some_and(|s| s.file_replaced()) {
        return;
    }
    let msg = format!(
        "embedded store {}: the file was removed or replaced while the service ran (a restore \
         needs the service stopped); rows committed since then went to the old file. Writing \
         to the file now at that path",
        storage.path.display()
    );
    tracing::error!(target: "regime_server::store", "{msg}");
    if let Ok(mut l) = shared.last_store_error.lock() {
        *l = Some(msg);
    }
    *store = None;
}

/// Ping the store (or reconnect to it) while nothing is being written.
fn idle_check(
    store: &mut Option<Box<dyn Store>>,
    storage: &StorageConfig,
    shared: &Shared,
    gauge: &metrics::Gauge,
    last_try: &mut Instant,
) {
    drop_if_replaced(store, storage, shared);
    match store.as_mut() {
        Some(s) => {
            if let Err(e) = s.ping() {
                note_err(shared, &e);
                *store = None;
                *last_try = Instant::now();
            }
        }
        None if last_try.elapsed() >= Duration::from_secs(1) => {
            *last_try = Instant::now();
            match store::open(storage, store::Role::ServiceWriter) {
                Ok(s) => {
                    if !shared.store_damaged.load(Ordering::Relaxed) {
                        tracing::warn!(target: "regime_server::store", "store reconnected");
                    }
                    *store = Some(s);
                }
                Err(e) => note_err(shared, &e),
            }
        }
        None => {}
    }
    let up = store.is_some();
    if shared.db_up.swap(up, Ordering::Relaxed) != up && up {
        tracing::warn!(target: "regime_server::store", "store is back up");
    }
    gauge.set(if up { 1.0 } else { 0.0 });
}

fn take(
    m: WriteMsg,
    pending: &mut Vec<HistoryRow>,
    waiting: &mut Vec<(Outcome, oneshot::Sender<Outcome>)>,
) {
    pending.extend(m.rows);
    if let Some(tx) = m.reply {
        waiting.push((m.outcome, tx));
    }
}

fn note_err(shared: &Shared, e: &StoreError) {
    let damaged = e.is_damage();
    shared.store_damaged.store(damaged, Ordering::Relaxed);
    let msg = if damaged {
        format!(
            "{e}: the store's file is damaged. Acknowledged rows wait in the spool and are \
             retried; none is dropped. Stop the service and restore a backup (regime restore \
             latest): the damaged file and the spool are kept in its before-restore backup"
        )
    } else {
        e.to_string()
    };
    if let Ok(mut l) = shared.last_store_error.lock() {
        // one error line per distinct failure, not one per retry
        if l.as_deref() != Some(msg.as_str()) || shared.db_up.load(Ordering::Relaxed) {
            tracing::error!(target: "regime_server::store", "store error: {msg}");
        } else {
            tracing::debug!(target: "regime_server::store", "store still failing: {msg}");
        }
        *l = Some(msg);
    }
}

/// Empty the spool once what the store just committed is durable (a store that defers its
/// sync is synced here: this runs once after an outage). On failure the spool keeps its
/// rows; the next start drops the ones the store holds ([`already_stored`]).
fn empty_spool(store: Option<&dyn Store>, spool: Option<&mut crate::spool::Spool>) {
    let Some(sp) = spool else {
        return;
    };
    if let Some(file) = store.and_then(|s| s.sync_file()) {
        if let Err(e) = fsync_durable(&file) {
            tracing::error!(target: "regime_server::store", "fsync of {} failed: {e}; the spool keeps its {} rows (a start drops those the store holds)", file.display(), sp.rows);
            return;
        }
    }
    let n = sp.rows;
    match sp.clear() {
        Ok(()) => {
            tracing::info!(target: "regime_server::store", "spool emptied: its {n} rows are in the store")
        }
        Err(e) => {
            tracing::error!(target: "regime_server::store", "emptying the spool failed ({e}): a start drops the rows the store holds")
        }
    }
}

/// Whether the store already holds a spooled row (each symbol's rows are written in time
/// order, a spool's with everything queued with them in one transaction, so a row at or
/// before the store's newest of its symbol is in it): a crash between a commit and emptying
/// the spool left it there.
fn already_stored(r: &HistoryRow, last: &HashMap<String, i64>) -> bool {
    last.get(&r.symbol).is_some_and(|&t| r.ts <= t)
}

/// Insert `rows`; when the store refuses them as data ([`StoreError::is_data_error`]: no
/// retry would pass), find the refused rows by halving the batch in trial transactions
/// (rolled back: nothing is committed until they are known, so an outage meanwhile leaves
/// every row to be retried, none stored twice) and write the rest in one transaction. Ok:
/// the refused rows (index, the store's reason); Err: an outage (retry them all). One
/// refused row used to fail every write after it: all symbols' rows held, the store
/// reported down for good.
fn insert_setting_aside(
    s: &mut dyn Store,
    rows: &[HistoryRow],
) -> Result<Vec<(usize, String)>, StoreError> {
    fn find(
        s: &mut dyn Store,
        rows: &[HistoryRow],
        base: usize,
        out: &mut Vec<(usize, String)>,
    ) -> Result<(), StoreError> {
        match s.trial_insert(rows) {
            Ok(()) => Ok(()),
            Err(e) if e.is_data_error() && rows.len() == 1 => {
                out.push((base, e.to_string()));
                Ok(())
            }
            Err(e) if e.is_data_error() && !rows.is_empty() => {
                let mid = rows.len() / 2;
                find(s, &rows[..mid], base, out)?;
                find(s, &rows[mid..], base + mid, out)
            }
            Err(e) => Err(e),
        }
    }
    match s.insert(rows) {
        Ok(()) => Ok(Vec::new()),
        Err(e) if e.is_data_error() => {
            let mut refused = Vec::new();
            find(s, rows, 0, &mut refused)?;
            if refused.is_empty() {
                // refused together, taken one half at a time: nothing to set aside
                return Err(e);
            }
            let mut skip = refused.iter().map(|r| r.0).peekable();
            let rest: Vec<HistoryRow> = rows
                .iter()
                .enumerate()
                .filter(|(i, _)| skip.next_if_eq(i).is_none())
                .map(|(_, r)| r.clone())
                .collect();
            s.insert(&rest)?;
            Ok(refused)
        }
        Err(e) => Err(e),
    }
}

/// Where rows the store refused as data are kept: `unwritable.jsonl` beside the spool.
pub fn unwritable_path(storage: &StorageConfig) -> std::path::PathBuf {
    storage.spool_path.with_file_name("unwritable.jsonl")
}

/// Keep the rows the store refused (indexes into `rows`, with its reasons) in
/// `unwritable.jsonl` beside the spool, synced, and log them: acknowledged rows are never
/// dropped unseen.
fn set_aside(storage: &StorageConfig, rows: &[HistoryRow], refused: &[(usize, String)]) {
    use std::io::Write as _;
    let path = unwritable_path(storage);
    let mut text = String::new();
    for (i, why) in refused {
        let line = serde_json::json!({"row": crate::spool::encode(&rows[*i]), "error": why});
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let kept = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    let first = &rows[refused[0].0];
    let kept = match kept {
        Ok(()) => format!("kept in {}", path.display()),
        Err(e) => format!("could not be kept in {} ({e}): lost", path.display()),
    };
    tracing::error!(
        target: "regime_server::store",
        "the store refused {} rows as data, written without them ({kept}); first: {} at {}: {}",
        refused.len(),
        first.symbol,
        crate::io::format_timestamp(first.ts),
        refused[0].1
    );
}

/// A row a worker refuses: named in the batch's answer and counted in the metric.
fn reject_row(out: &mut Outcome, row: usize, sym: &str, reason: &RejectReason) {
    out.rejected += 1;
    metrics::counter!("regime_bars_rejected_total", "reason" => reason.key()).increment(1);
    out.errors.push(RowError {
        row,
        symbol: sym.to_string(),
        reason: reason.key().to_string(),
        message: reason.to_string(),
    });
}

/// Reserve a place for a new symbol's pipeline; false when `max_symbols` are held already.
fn take_symbol_slot(shared: &Shared) -> bool {
    let max = shared.max_symbols;
    shared
        .symbols_held
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// Refuse the rows `group` of `rows` (a new symbol beyond `max_symbols`): named in the
/// answer and counted in the metric, not in data quality (whose table would grow with every
/// such symbol); logged at most once a minute.
fn refuse_symbol(shared: &Shared, sym: &str, group: &[u32], rows: &[IngestRow], out: &mut Outcome) {
    let max = shared.max_symbols;
    let reason = RejectReason::SymbolLimit { limit: max };
    for &i in group {
        reject_row(out, rows[i as usize].row, sym, &reason);
    }
    let now = now_ms();
    let last = shared.symbol_limit_logged.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 60_000
        && shared
            .symbol_limit_logged
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(target: "regime_server::ingest", "bars of a new symbol refused ({sym}, and any others within a minute): the service holds performance.max_symbols = {max} symbols' pipelines; a feed putting something else in the symbol field? for a larger universe raise the limit (restart)");
    }
}

/// Count rows that failed to parse (before the engine saw them) in the data-quality table.
/// Past `max_symbols` symbols a new one is counted in the metric only (every row of a
/// garbage feed could name another).
pub fn count_unparsed(shared: &Shared, symbol: &str, reason_key: &'static str) {
    metrics::counter!("regime_bars_rejected_total", "reason" => reason_key).increment(1);
    if let Ok(mut q) = shared.unparsed.lock() {
        if q.len() >= shared.max_symbols && !q.contains_key(symbol) {
            return;
        }
        *q.entry(symbol.to_string())
            .or_default()
            .entry(reason_key.to_string())
            .or_insert(0) += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_rows_in_the_future_are_named() {
        let now = 1_765_000_000_000;
        let last: HashMap<String, i64> = [
            ("OK".to_string(), now),
            ("TOMORROW".to_string(), now + 3_600_000),
            ("MICROS".to_string(), now * 1000),
        ]
        .into();
        assert_eq!(warn_of_future_rows(&last, now), 1);
        assert_eq!(warn_of_future_rows(&HashMap::new(), now), 0);
    }

    #[test]
    fn rows_are_grouped_by_symbol_keeping_each_symbols_order() {
        let syms = ["B", "A", "B", "C", "A", "B"];
        let rows: Vec<IngestRow> = syms
            .iter()
            .enumerate()
            .map(|(i, s)| IngestRow {
                symbol: s.to_string(),
                bar: Bar::close_only(i as i64, 100.0),
                row: i,
            })
            .collect();
        assert_eq!(
            group_by_symbol(&rows),
            vec![vec![0, 2, 5], vec![1, 4], vec![3]]
        );
        assert!(group_by_symbol(&[]).is_empty());
    }
}
