//! `regime serve`: config, logs, store, engine, feeds, HTTP, signals (SPEC §6).
//!
//! SIGHUP reloads the hot-reloadable keys and logs the ones that need a restart; SIGTERM (and
//! Ctrl-C) stops accepting connections, stops the feeds, drains the queue, flushes the store
//! and returns, so the process exits 0. SIGUSR1 writes a memory report to the log directory.

use crate::config::{Config, ConfigError, HOT_RELOADABLE};
use crate::engine::{Engine, EngineConfig};
use crate::state::{dev_key, AppState, AuthTable, Inner, LogControl, ProcSample, ReadPool};
use crate::store;
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// What `regime serve` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--config F`.
    pub config: Option<PathBuf>,
    /// `--bind ADDR:PORT` (overrides `server.bind`).
    pub bind: Option<String>,
    /// `DRY_RUN=1`: load and validate everything, start nothing.
    pub dry_run: bool,
    /// `SAFE_MODE=1`: critical components only.
    pub safe_mode: bool,
}

/// Why the service could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Bad config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad `--bind`.
    #[error("--bind {0:?}: expected ADDR:PORT")]
    Bind(String),
    /// Listening failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Logs could not be set up.
    #[error("logging.dir: {0}")]
    Logs(std::io::Error),
    /// The metrics recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Engine start.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// A feed could not start.
    #[error("feeds: {0}")]
    Feed(#[from] crate::feeds::FeedError),
    /// The requested compute backend is unavailable.
    #[error("performance.backend: {0}")]
    Compute(regime_core::Error),
    /// The store was unreachable in a dry run.
    #[error("storage: {0}")]
    Store(#[from] store::StoreError),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
    /// Another service runs on the same data.
    #[error("another regime serve is running on this data ({0} is locked)")]
    AlreadyRunning(String),
    /// The lock file cannot be made.
    #[error("{0}")]
    Lock(#[from] crate::backup::BackupError),
}

/// Load the config (defaults when no path), apply `--bind`.
pub fn load_config(opts: &ServeOptions) -> Result<Config, ServeError> {
    let mut cfg = match &opts.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(b) = &opts.bind {
        if b.parse::<std::net::SocketAddr>().is_err() {
            return Err(ServeError::Bind(b.clone()));
        }
        cfg.server.bind = b.clone();
    }
    Ok(cfg)
}

/// `DRY_RUN=1`: validate the config, the pipeline settings, the store connection and the feed
/// files; start nothing. Returns a summary.
pub fn dry_run(opts: &ServeOptions) -> Result<String, ServeError> {
    let cfg = load_config(opts)?;
    cfg.pipeline()
        .validate()
        .map_err(crate::engine::EngineError::from)?;
    let compute = crate::compute::choose(&cfg.performance.backend).map_err(ServeError::Compute)?;
    let mut s = store::open(&cfg.storage, store::Role::Reader)?;
    let stats = s.stats()?;
    for r in &cfg.feeds.replay {
        crate::io::read_bars(&r.path, None).map_err(crate::feeds::FeedError::from)?;
    }
    Ok(format!(
        "DRY_RUN: config {} valid; {}; store {} reachable ({} rows); {} replay feed(s) readable; demo feed {}; would listen on {}",
        opts.config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(defaults)".into()),
        compute.reason,
        s.kind(),
        stats.rows,
        cfg.feeds.replay.len(),
        if cfg.feeds.demo { "on" } else { "off" },
        cfg.server.bind
    ))
}

fn auth_table(cfg: &Config, dev: &str) -> AuthTable {
    let mut keys = cfg.auth.keys.clone();
    if keys.is_empty() {
        keys.push(dev_key(dev));
    }
    AuthTable::new(&keys)
}

/// Apply SIGHUP / `POST /admin/reload`: re-read the file, swap in the hot-reloadable keys,
/// report the ones that need a restart. A bad file changes nothing.
pub fn reload(st: &AppState) -> Result<Value, String> {
    let Some(path) = &st.config_path else {
        return Ok(
            json!({"reloaded": false, "reason": "started without --config; nothing to reload"}),
        );
    };
    let refused = |e: String| {
        tracing::error!(target: "regime_server::config", "reload refused, running config kept: {e}");
        e
    };
    let mut new = Config::load(path).map_err(|e| refused(e.to_string()))?;
    let old = st.config.load_full();
    // a file emptied or stripped of its keys is far more often a truncated write or a bad
    // edit than a wish to drop every key: taken, every client's key stopped working at once
    // (a service with no keys answers only a development key)
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(refused(format!(
            "{}: the file is empty (a truncated write?); to run on the defaults, restart",
            path.display()
        )));
    }
    if new.auth.keys.is_empty() && !old.auth.keys.is_empty() {
        return Err(refused(format!(
            "{}: auth.keys is empty where the running config has {} key(s); a service with no \
             keys answers only a development key, so every client would be refused: restart \
             to run so",
            path.display(),
            old.auth.keys.len()
        )));
    }
    // `--bind` holds over the file, as at start (else every reload of a service started
    // with it said `server` had changed and needed a restart)
    if let Some(b) = &st.bind_override {
        new.server.bind = b.clone();
    }
    let restart = old.restart_needed(&new);
    let applied = old.hot_changed(&new);
    let mut merged = (*old).clone();
    merged.auth = new.auth.clone();
    merged.caching = new.caching.clone();
    merged.logging.level = new.logging.level.clone();
    merged.logging.components = new.logging.components.clone();
    merged.regime.default_symbol = new.regime.default_symbol.clone();
    merged.performance.batch_size = new.performance.batch_size;
    if let Some(ctl) = &st.log_control {
        ctl(&merged.logging, st.debug.load(Ordering::Relaxed))?;
    }
    st.auth.store(Arc::new(auth_table(&merged, dev_secret())));
    st.engine
        .shared
        .batch_size
        .store(merged.performance.batch_size.max(1), Ordering::Relaxed);
    if !merged.caching.enabled {
        st.cache.clear();
    }
    let log_dir = merged.logging.dir.clone();
    st.config.store(Arc::new(merged));
    st.reloads.fetch_add(1, Ordering::Relaxed);
    if !applied.is_empty() || !restart.is_empty() {
        let mut f = crate::deployments::config_fields(Some(path));
        f.push(("applied", applied.join(",")));
        f.push(("restart_required", restart.join(",")));
        crate::deployments::record_or_warn(&log_dir, "reload", &f);
    }
    if restart.is_empty() {
        tracing::info!(target: "regime_server::config", "config reloaded from {}", path.display());
    } else {
        tracing::warn!(
            target: "regime_server::config",
            "config reloaded from {}; changed keys that need a restart (not applied): {}",
            path.display(),
            restart.join(", ")
        );
    }
    Ok(json!({
        "reloaded": true,
        "applied": HOT_RELOADABLE,
        "restart_required": restart,
    }))
}

/// The development key (only used when the config has no keys): `REGIME_DEV_KEY` or one
/// generated at start.
fn dev_secret() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        std::env::var("REGIME_DEV_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| {
                use rand::Rng;
                let mut r = rand::rng();
                (0..32)
                    .map(|_| format!("{:x}", r.random_range(0..16u8)))
                    .collect()
            })
    })
}

fn memory_report(st: &AppState) -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    let sh = &st.engine.shared;
    let symbols = sh.current.load().len();
    let per_symbol = std::mem::size_of::<regime_core::pipeline::SymbolPipeline>();
    json!({
        "at": chrono::Utc::now().to_rfc3339(),
        "allocator": "system (glibc malloc)",
        "rss_bytes": field("VmRSS:"),
        "peak_rss_bytes": field("VmHWM:"),
        "data_bytes": field("VmData:"),
        "threads": field("Threads:").map(|x| x / 1024),
        "components": {
            "symbol_pipelines": {"count": symbols, "inline_bytes_each": per_symbol},
            "ingest_queue": {"batches": sh.queue_depth.load(Ordering::Relaxed), "capacity": sh.queue_capacity},
            "store_retry_buffer": {"rows": sh.pending_rows.load(Ordering::Relaxed), "bytes_estimate": sh.pending_rows.load(Ordering::Relaxed) * std::mem::size_of::<store::HistoryRow>()},
            "history_cache": {"entries": st.cache.len()},
        },
    })
}

fn write_memory_report(st: &AppState) {
    let dir = st.config.load().logging.dir.clone();
    let name = format!(
        "memory-report-{}.json",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    let path = dir.join(name);
    let body = serde_json::to_string_pretty(&memory_report(st)).unwrap_or_default();
    match std::fs::write(&path, body) {
        Ok(()) => tracing::info!("SIGUSR1: memory report written to {}", path.display()),
        Err(e) => tracing::error!("SIGUSR1: memory report {}: {e}", path.display()),
    }
}

/// `PROFILE=1`: where the time went in each 10 s interval, one JSON line each in
/// `profile.jsonl` (read by `scripts/analyze_profile.py`).
async fn profile_lines(st: AppState, path: PathBuf) {
    let snap = |st: &AppState| {
        let sh = &st.engine.shared;
        (
            Instant::now(),
            sh.detections.load(Ordering::Relaxed),
            sh.detect_ns.load(Ordering::Relaxed),
            sh.stored_rows.load(Ordering::Relaxed),
            st.http.requests.load(Ordering::Relaxed),
            st.http.errors.load(Ordering::Relaxed),
            crate::state::process_cpu_seconds().unwrap_or(0.0),
        )
    };
    let mut last = snap(&st);
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let now = snap(&st);
        let dt = now.0.duration_since(last.0).as_secs_f64().max(1e-9);
        let det = now.1 - last.1;
        let sh = &st.engine.shared;
        let line = serde_json::json!({
            "ts": chrono::Utc::now().to_rfc3339(),
            "interval_s": dt,
            "bars_per_s": det as f64 / dt,
            "detect_us_per_bar": if det > 0 { (now.2 - last.2) as f64 / det as f64 / 1e3 } else { 0.0 },
            "detect_core_share": (now.2 - last.2) as f64 / 1e9 / dt,
            "stored_rows_per_s": (now.3 - last.3) as f64 / dt,
            "requests_per_s": (now.4 - last.4) as f64 / dt,
            "errors": now.5 - last.5,
            "latency_ms": {
                "p50": st.http.quantile_ms(0.5),
                "p90": st.http.quantile_ms(0.9),
                "p99": st.http.quantile_ms(0.99),
            },
            "process_cpu_cores": (now.6 - last.6) / dt,
            "queue_depth": sh.queue_depth.load(Ordering::Relaxed),
            "queue_capacity": sh.queue_capacity,
            "rows_buffered": sh.pending_rows.load(Ordering::Relaxed),
            "db_up": sh.db_up.load(Ordering::Relaxed),
            "rss_bytes": crate::state::rss_bytes().unwrap_or(0),
            "backend": st.compute.name(),
        });
        last = now;
        let res = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "{line}")
            });
        if let Err(e) = res {
            tracing::warn!("PROFILE=1: {}: {e}", path.display());
        }
    }
}

/// Periodic lines for `performance.log` (every 10 s) and `features.log` (every 60 s).
async fn periodic_logs(st: AppState) {
    let mut last = (Instant::now(), 0u64);
    let mut tick = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        tick += 1;
        let sh = &st.engine.shared;
        let det = sh.detections.load(Ordering::Relaxed);
        let rate = (det - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), det);
        tracing::info!(
            target: crate::logs::PERF_TARGET,
            bars_per_s = format!("{rate:.1}"),
            detections = det,
            queue_depth = sh.queue_depth.load(Ordering::Relaxed),
            requests = st.http.requests.load(Ordering::Relaxed),
            p50_ms = st.http.quantile_ms(0.5).unwrap_or(0.0),
            p99_ms = st.http.quantile_ms(0.99).unwrap_or(0.0),
            rss_bytes = crate::state::rss_bytes().unwrap_or(0),
            cpu_percent = format!("{:.1}", st.cpu_percent()),
            db_up = sh.db_up.load(Ordering::Relaxed),
            "performance"
        );
        if tick.is_multiple_of(6) {
            let ins = sh.insight.load();
            let mut syms: Vec<&String> = ins.keys().collect();
            syms.sort();
            for s in syms.into_iter().take(50) {
                for c in ins[s].components.iter().filter(|c| {
                    c.name == "adaptive_noise_filter" || c.name == "dynamic_boundary_optimizer"
                }) {
                    let d: serde_json::Map<String, Value> = c
                        .details
                        .iter()
                        .map(|(k, v)| (k.clone(), crate::routes::detail_value(v)))
                        .collect();
                    let line = Value::Object(d).to_string();
                    tracing::info!(target: crate::logs::FEATURES_TARGET, symbol = %s, component = c.name, "{line}");
                }
            }
        }
    }
}

/// Run the service until SIGTERM/Ctrl-C; returns after the queue is drained and the store flushed.
pub async fn run(opts: ServeOptions) -> Result<(), ServeError> {
    let cfg = load_config(&opts)?;
    // held until the service exits: restores refuse to run under a live service, and a
    // second service on the same data refuses to start
    let _lock = crate::backup::lock(&cfg).map_err(|e| match e {
        crate::backup::BackupError::Running(p) => ServeError::AlreadyRunning(p),
        other => ServeError::Lock(other),
    })?;
    let log_control: LogControl = crate::logs::init(&cfg.logging).map_err(ServeError::Logs)?;
    // the port first: a port in use (another service, a second instance on other data) is
    // refused before the backend is chosen, the store opened or a feed has stored a row
    let bind = cfg.server.bind.clone();
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|source| ServeError::Listen {
            addr: bind.clone(),
            source,
        })?;
    let (cap, files) = crate::conn::connection_cap(cfg.server.max_connections);
    if cap < cfg.server.max_connections {
        tracing::warn!(
            "at most {cap} connections (server.max_connections {}): the file limit of {} keeps the rest for the store, logs and states (raise LimitNOFILE)",
            cfg.server.max_connections,
            files.unwrap_or(0)
        );
    }
    let listener = crate::conn::Bounded::new(
        listener,
        cap,
        Duration::from_secs(cfg.server.idle_timeout_secs),
    );
    let prom = PrometheusBuilder::new()
        .set_buckets(&[
            0.000_001, 0.000_005, 0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5,
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ])
        .map_err(|e| ServeError::Metrics(e.to_string()))?
        .install_recorder()
        .map_err(|e| ServeError::Metrics(e.to_string()))?;
    // counters exist from the start (at 0), so rates and ratios over them (the error-rate
    // alert) have data before the first error or detection
    metrics::counter!("regime_errors_total").increment(0);
    metrics::counter!("regime_detection_total").increment(0);
    metrics::counter!("regime_bars_duplicate_total").increment(0);
    for reason in regime_core::bars::RejectReason::KEYS {
        metrics::counter!("regime_bars_rejected_total", "reason" => reason).increment(0);
    }
    let safe_mode = opts.safe_mode;
    tracing::info!(
        "regime {} starting: config {}, store {:?}, workers {}, safe_mode {}",
        env!("CARGO_PKG_VERSION"),
        opts.config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(defaults, no file)".into()),
        cfg.storage.kind,
        cfg.performance.max_workers,
        safe_mode
    );
    // device probing and kernel compilation block: keep them off the runtime threads
    let configured = cfg.performance.backend.clone();
    let compute = tokio::task::spawn_blocking(move || crate::compute::choose(&configured))
        .await
        .map_err(|e| ServeError::Compute(regime_core::Error::Backend(e.to_string().into())))?
        .map_err(ServeError::Compute)?;
    tracing::info!(
        backend = compute.name(),
        device = %compute.backend.device(),
        "compute backend: {}",
        compute.reason
    );
    // the backend in use as a metric label (SPEC §8): an info-style gauge fixed at 1
    metrics::gauge!("regime_compute_backend_info", "backend" => compute.name(), "device" => compute.backend.device())
        .set(1.0);
    // A PostgreSQL server not reachable yet (a host reboot starts both at once) is waited for
    // a while: without what the store holds, no symbol can resume its saved state.
    let wait = match cfg.storage.kind {
        crate::config::StorageKind::Postgres => Duration::from_secs(cfg.storage.wait_at_start_secs),
        crate::config::StorageKind::Embedded => Duration::ZERO,
    };
    let waiting_since = std::time::Instant::now();
    let mut waited = false;
    let opened = loop {
        // the synchronous PostgreSQL client must not run on a runtime thread
        let storage = cfg.storage.clone();
        let warmup = cfg.pipeline().hmm.warmup;
        let r = tokio::task::spawn_blocking(move || {
            store::open(&storage, store::Role::ServiceWriter).map(|mut s| {
                let at_start = crate::engine::StoredAtStart::read(s.as_mut(), warmup);
                (s, at_start)
            })
        })
        .await
        .unwrap_or_else(|e| Err(store::StoreError::Corrupt(format!("store open task: {e}"))));
        match r {
            Err(e) if waiting_since.elapsed() < wait => {
                if !waited {
                    tracing::warn!(target: "regime_server::store", "store not reachable yet ({e}); waiting up to {} s (storage.wait_at_start_secs) before running degraded", wait.as_secs());
                    waited = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            r => break r,
        }
    };
    if waited && opened.is_ok() {
        tracing::info!(target: "regime_server::store", "store reachable after {:.1} s", waiting_since.elapsed().as_secs_f64());
    }
    let (writer, stored) = match opened {
        Ok((s, last)) => (Some(s), Some(last)),
        Err(e) => {
            tracing::error!(target: "regime_server::store", "store unreachable at start (running degraded, retrying): {e}");
            (None, None)
        }
    };
    let engine = Arc::new(Engine::start(
        EngineConfig {
            workers: cfg.performance.max_workers,
            queue_capacity: cfg.performance.queue_capacity,
            max_symbols: cfg.performance.max_symbols,
            batch_size: cfg.performance.batch_size,
            retry_buffer_rows: cfg.storage.retry_buffer_rows,
            spool_path: Some(cfg.storage.spool_path.clone()),
            pipeline: cfg.pipeline(),
            models_dir: (!safe_mode).then(|| cfg.regime.models_dir.clone()),
            model_save_every: Duration::from_secs(cfg.regime.model_save_interval_secs),
            models_keep: cfg.regime.models_keep,
            state_dir: (!safe_mode).then(|| cfg.state_dir()),
            state_checkpoint: (cfg.regime.state_checkpoint_secs > 0)
                .then(|| Duration::from_secs(cfg.regime.state_checkpoint_secs)),
            safe_mode,
        },
        writer,
        cfg.storage.clone(),
        stored,
    )?);
    crate::deployments::record_start(
        &cfg.logging.dir,
        crate::deployments::start_fields(
            opts.config.as_deref(),
            regime_core::pipeline::state_identity(),
            safe_mode,
        ),
    );
    let dev = dev_secret();
    let table = auth_table(&cfg, dev);
    if cfg.auth.keys.is_empty() {
        // printed so a fresh install can ingest and use the admin routes at once
        println!("development API key (all scopes; configure auth.keys for production): {dev}");
        tracing::warn!("no auth.keys configured: a development key with all scopes is active (printed on stdout)");
    }
    let stop_feeds = Arc::new(AtomicBool::new(false));
    let feeds_paused = Arc::new(AtomicBool::new(false));
    let feed_threads = if safe_mode {
        tracing::warn!("SAFE_MODE=1: feeds, model files and non-critical components are off");
        Vec::new()
    } else {
        crate::feeds::start(
            &cfg.feeds,
            engine.clone(),
            cfg.performance.batch_size,
            stop_feeds.clone(),
            feeds_paused.clone(),
        )?
    };
    let state = AppState(Arc::new(Inner {
        engine: engine.clone(),
        readers: Arc::new(ReadPool::new(cfg.storage.clone())),
        config: ArcSwap::from_pointee(cfg),
        config_path: opts.config.clone(),
        bind_override: opts.bind.clone(),
        auth: ArcSwap::from_pointee(table),
        limiter: Default::default(),
        cache: Default::default(),
        http: Default::default(),
        started: Instant::now(),
        prom,
        proc_sample: Mutex::new(ProcSample {
            at: Instant::now(),
            cpu_s: crate::state::process_cpu_seconds().unwrap_or(0.0),
            last_percent: 0.0,
        }),
        safe_mode,
        reloads: AtomicU64::new(0),
        feeds_paused,
        debug: AtomicBool::new(false),
        log_control: Some(log_control),
        compute,
        connections: listener.open_count(),
    }));
    let local = axum::serve::Listener::local_addr(&listener).map_err(ServeError::Serve)?;
    println!("regime serving on http://{local}");
    tracing::info!("listening on {local}");
    tokio::spawn(periodic_logs(state.clone()));
    if std::env::var("PROFILE").is_ok_and(|v| v == "1") {
        let path = state.config.load().logging.dir.join("profile.jsonl");
        tracing::info!("PROFILE=1: a profile line every 10 s in {}", path.display());
        tokio::spawn(profile_lines(state.clone(), path));
    }
    {
        // the exporter keeps histogram samples until upkeep folds them into the buckets:
        // without it they pile up between scrapes (a soak showed RSS rising ~5 MB/min)
        let prom = state.prom.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                prom.run_upkeep();
            }
        });
    }

    // The handlers are installed here, before the first connection is accepted: installed
    // inside the shutdown future they waited for axum to poll it, and a SIGHUP in between
    // (an operator reloading a service that already answers /health) took the default
    // action and killed the process — seen once in the test suite on a loaded machine.
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined1()),
        )
    };
    // set when the stop signal comes: connections then have a request's time to finish
    let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
    let shutdown = {
        let st = state.clone();
        async move {
            let _stopping = StopOnDrop(stopping_tx);
            let (Ok(mut term), Ok(mut hup), Ok(mut usr1)) = signals else {
                tracing::error!("cannot install signal handlers; stop with Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => { tracing::info!("SIGTERM: draining"); break; }
                    _ = tokio::signal::ctrl_c() => { tracing::info!("interrupt: draining"); break; }
                    _ = hup.recv() => {
                        if let Err(e) = reload(&st) { tracing::error!("SIGHUP reload failed: {e}"); }
                    }
                    _ = usr1.recv() => write_memory_report(&st),
                }
            }
        }
    };
    let app = crate::routes::app(state.clone());
    let grace = Duration::from_millis(state.config.load().server.request_timeout_ms)
        + Duration::from_secs(1);
    let serving = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    // the drain waits for open connections, but not for ever: a request in flight has its
    // timeout to finish; a client that left a request head unfinished is not waited for
    let connections = state.connections.clone();
    let served = tokio::select! {
        r = std::future::IntoFuture::into_future(serving) => r,
        _ = async {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(
                "{} connection(s) still open {:.1} s after the stop signal: closed without an answer",
                connections.load(Ordering::Relaxed),
                grace.as_secs_f64()
            );
            Ok(())
        }
    };
    stop_feeds.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let eng = engine.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for f in feed_threads {
            let _ = f.join();
        }
        eng.shutdown();
    })
    .await;
    let sh = &engine.shared;
    tracing::info!(
        "stopped: queue drained and store flushed in {:.2} s ({} rows written, {} buffered and not written)",
        t.elapsed().as_secs_f64(),
        sh.stored_rows.load(Ordering::Relaxed),
        sh.pending_rows.load(Ordering::Relaxed)
    );
    served.map_err(ServeError::Serve)
}

/// Says "stopping" when the shutdown future ends (it is dropped then).
struct StopOnDrop(tokio::sync::watch::Sender<bool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}
