//! `config.yaml` (SPEC §6): typed settings with defaults that run with no file at all, and a
//! schema check that reports every problem with its key path (not just the first one).

use serde::Serialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `performance.max_workers` or `auth.keys[1].scopes[0]`.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Loading a config failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Read {
        /// Config file.
        path: PathBuf,
        /// Underlying error (in the message, not chained: the one-line error would say it
        /// twice).
        error: std::io::Error,
    },
    /// The file is not YAML.
    #[error("{path}: not valid YAML: {message}")]
    Syntax {
        /// Config file.
        path: PathBuf,
        /// Parser message (with line and column).
        message: String,
    },
    /// The YAML does not match the schema; every problem is listed.
    #[error("{path}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Config file.
        path: PathBuf,
        /// Every problem, with its key path.
        problems: Vec<Problem>,
    },
}

/// API key scopes (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read-only GET routes.
    Read,
    /// `POST /api/v1/bars`.
    Ingest,
    /// Admin and debug routes.
    Admin,
}

impl Scope {
    fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "ingest" => Some(Scope::Ingest),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// One API key: only its SHA-256 is stored, so a leaked config does not leak keys.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// Label for logs (never the key itself).
    pub name: String,
    /// Lower-case hex SHA-256 of the key.
    pub sha256: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
}

/// Storage backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// Bundled SQLite file (WAL, fsync on commit); needs no server.
    Embedded,
    /// PostgreSQL server.
    Postgres,
}

/// `server.*`
#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    /// Listen address.
    pub bind: String,
    /// Request timeout (408 after it).
    pub request_timeout_ms: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Ingest refuses a bar stamped more than this many seconds after the service's clock
    /// (0: no check). A bar accepted from the future would hold its symbol there: every
    /// later bar is earlier, so refused as not increasing, until the clock passes it.
    pub max_future_secs: u64,
    /// Connections held at most; a new one waits in the kernel's backlog until one closes
    /// (keep it well under the process's file limit: the store, logs and states need files).
    pub max_connections: usize,
    /// A connection on which nothing is read or written for this many seconds is closed
    /// (an idle keep-alive, a request head never finished).
    pub idle_timeout_secs: u64,
}

/// `storage.*`
#[derive(Debug, Clone, Serialize)]
pub struct StorageConfig {
    /// Which store.
    pub kind: StorageKind,
    /// Embedded store file.
    pub path: PathBuf,
    /// PostgreSQL connection string (`host=… user=… dbname=…` or a `postgres://` URL).
    pub url: String,
    /// Connections kept (reads use them; one writer).
    pub pool_size: usize,
    /// Rows held in memory while the database is down, before ingest answers 503.
    pub retry_buffer_rows: usize,
    /// Fsynced file that keeps those rows across a crash.
    pub spool_path: PathBuf,
    /// Where `regime backup` writes and `regime restore` looks (one folder per backup).
    pub backup_dir: PathBuf,
    /// Seconds `regime serve` waits at start for a PostgreSQL server that is not reachable
    /// yet (a host reboot starts both at once) before running degraded: what the store holds
    /// is what lets each symbol resume its saved state.
    pub wait_at_start_secs: u64,
    /// Check the embedded store's file at start (SQLite's `quick_check`, on a thread of its
    /// own beside the writer; ~0.7 GB/s read). While it runs the WAL cannot be reset, so a
    /// very large store under heavy ingest at start may want it off.
    pub check_at_start: bool,
}

/// `performance.*`
#[derive(Debug, Clone, Serialize)]
pub struct PerformanceConfig {
    /// Detection workers; symbols are sharded across them.
    pub max_workers: usize,
    /// Rows per store write.
    pub batch_size: usize,
    /// Queued ingest batches before ingest answers 429.
    pub queue_capacity: usize,
    /// Symbols whose pipelines the service holds at most; a bar of a new symbol beyond them
    /// is refused (`symbol_limit`). Each takes ~30 KB at its first bar, ~280 KB once warm: a
    /// feed that puts something else in the symbol field (an order id, a time) would
    /// otherwise fill the memory in seconds.
    pub max_symbols: usize,
    /// Compute backend: auto (CUDA, then a hardware wgpu adapter, then the CPU), cpu, cuda
    /// or wgpu. `REGIME_DEVICE` overrides it.
    pub backend: String,
}

/// `caching.*` (applied to history queries).
#[derive(Debug, Clone, Serialize)]
pub struct CachingConfig {
    /// Cache on/off.
    pub enabled: bool,
    /// Seconds an entry lives.
    pub ttl: u64,
    /// Entries kept.
    pub max_size: usize,
}

/// `regime.*`
#[derive(Debug, Clone, Serialize)]
pub struct RegimeConfig {
    /// Intelligent transition manager: probability at which a new state wins at once.
    pub confidence_threshold: f64,
    /// Intelligent transition manager: below the threshold, the lead over the current
    /// state a new state needs (larger: fewer switches, each later).
    pub switch_margin: f64,
    /// Bars after which the ex-post reference is taken (ensemble feedback, accuracy).
    pub feedback_lag: usize,
    /// Ensemble weight learning rate.
    pub ensemble_learning_rate: f64,
    /// Where learned models are written.
    pub models_dir: PathBuf,
    /// Symbol answered by `/regime/current` with no `?symbol=` (default: first seen).
    pub default_symbol: Option<String>,
    /// Seconds between saves of one symbol's model (it is also saved at shutdown).
    pub model_save_interval_secs: u64,
    /// Model files kept per symbol.
    pub models_keep: usize,
    /// Seconds between saves of the symbols' pipeline states while running, the bars since
    /// kept in the bar journal, so a crash loses no learning (0: saved only at a stop).
    pub state_checkpoint_secs: u64,
}

/// `logging.*`
#[derive(Debug, Clone, Serialize)]
pub struct LoggingConfig {
    /// Default level.
    pub level: String,
    /// Per-component (module target) levels.
    pub components: BTreeMap<String, String>,
    /// Log directory.
    pub dir: PathBuf,
    /// Rotated logs kept this many days.
    pub keep_days: u64,
    /// Rotate a log when it passes this size.
    pub max_file_bytes: u64,
}

/// `auth.*`
#[derive(Debug, Clone, Serialize)]
pub struct AuthConfig {
    /// Close the read-only GET routes to requests without a key.
    pub require_key_for_reads: bool,
    /// Active keys (several at once, so keys can be rotated).
    pub keys: Vec<ApiKey>,
    /// Requests per second per key (or per client address without a key).
    pub rate_limit_per_second: f64,
    /// Burst size of the per-key token bucket.
    pub rate_limit_burst: f64,
}

/// One replay feed: a CSV, Parquet or Arrow IPC file played at a chosen speed.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayFeed {
    /// Input file.
    pub path: PathBuf,
    /// Bars per second (all symbols together); 0 = as fast as the queue takes them.
    pub bars_per_second: f64,
    /// Start again at the end (timestamps shifted so they keep increasing).
    pub repeat: bool,
}

/// `feeds.*`
#[derive(Debug, Clone, Serialize)]
pub struct FeedsConfig {
    /// Replay the sample bars built into the binary.
    pub demo: bool,
    /// Demo feed speed, bars per second.
    pub demo_bars_per_second: f64,
    /// File replays.
    pub replay: Vec<ReplayFeed>,
}

/// A PostgreSQL connection string with its password replaced by `***` (`password=…` of a
/// key-value string, `user:…@` of a URL), for printing.
pub fn mask_password(url: &str) -> String {
    if let Some(scheme) = url.find("://") {
        let rest = &url[scheme + 3..];
        let auth_end = rest.find('@');
        let slash = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = auth_end.filter(|&at| at < slash) {
            if let Some(colon) = rest[..at].find(':') {
                return format!(
                    "{}{}***{}",
                    &url[..scheme + 3],
                    &rest[..=colon],
                    &rest[at..]
                );
            }
        }
        return url.to_string();
    }
    url.split(' ')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The whole config.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `server`
    pub server: ServerConfig,
    /// `storage`
    pub storage: StorageConfig,
    /// `performance`
    pub performance: PerformanceConfig,
    /// `caching`
    pub caching: CachingConfig,
    /// `regime`
    pub regime: RegimeConfig,
    /// `logging`
    pub logging: LoggingConfig,
    /// `auth`
    pub auth: AuthConfig,
    /// `feeds`
    pub feeds: FeedsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig {
                bind: "0.0.0.0:8080".into(),
                request_timeout_ms: 10_000,
                max_connections: 1024,
                idle_timeout_secs: 60,
                max_body_bytes: 64 << 20,
                max_future_secs: 86_400,
            },
            storage: StorageConfig {
                kind: StorageKind::Embedded,
                path: "data/regime.sqlite".into(),
                url: String::new(),
                pool_size: 4,
                retry_buffer_rows: 1_000_000,
                wait_at_start_secs: 15,
                check_at_start: true,
                spool_path: "data/spool.jsonl".into(),
                backup_dir: "backups".into(),
            },
            performance: PerformanceConfig {
                max_workers: 4,
                batch_size: 1000,
                queue_capacity: 1024,
                max_symbols: 10_000,
                backend: "auto".into(),
            },
            caching: CachingConfig {
                enabled: true,
                ttl: 300,
                max_size: 1000,
            },
            regime: RegimeConfig {
                confidence_threshold: 0.7,
                switch_margin: 0.05,
                feedback_lag: 32,
                ensemble_learning_rate: 0.01,
                models_dir: "models".into(),
                default_symbol: None,
                model_save_interval_secs: 300,
                models_keep: 5,
                state_checkpoint_secs: 300,
            },
            logging: LoggingConfig {
                level: "info".into(),
                components: BTreeMap::new(),
                dir: "logs".into(),
                keep_days: 30,
                max_file_bytes: 50 << 20,
            },
            auth: AuthConfig {
                require_key_for_reads: false,
                keys: Vec::new(),
                rate_limit_per_second: 10_000.0,
                rate_limit_burst: 20_000.0,
            },
            feeds: FeedsConfig {
                demo: true,
                demo_bars_per_second: 20.0,
                replay: Vec::new(),
            },
        }
    }
}

/// Keys that SIGHUP applies without a restart; every other key needs one.
pub const HOT_RELOADABLE: &[&str] = &[
    "logging.level",
    "logging.components",
    "auth",
    "caching",
    "regime.default_symbol",
    "performance.batch_size",
];

const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

/// Walks a YAML tree against the schema, collecting problems with their paths.
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn bad(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// The mapping at `path`, reporting unknown keys; `None` (with a problem) if not a mapping.
    fn section<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'a serde_yaml_ng::Mapping> {
        let Value::Mapping(m) = v else {
            self.bad(path, format!("expected a mapping, got {}", kind(v)));
            return None;
        };
        for k in m.keys() {
            match k.as_str() {
                Some(name) if known.contains(&name) => {}
                Some(name) => self.bad(
                    &join(path, name),
                    format!("unknown key (known: {})", known.join(", ")),
                ),
                None => self.bad(path, format!("keys must be strings, got {}", kind(k))),
            }
        }
        Some(m)
    }

    fn get<'a>(&self, m: &'a serde_yaml_ng::Mapping, key: &str) -> Option<&'a Value> {
        m.get(key).filter(|v| !v.is_null())
    }

    fn uint(
        &mut self,
        m: &serde_yaml_ng::Mapping,
        sec: &str,
        key: &str,
        min: u64,
        max: u64,
        out: &mut u64,
    ) {
        let Some(v) = self.get(m, key) else { return };
        let path = join(sec, key);
        match v.as_u64() {
            Some(x) if (min..=max).contains(&x) => *out = x,
            Some(x) => self.bad(&path, format!("{x} is out of range [{min}, {max}]")),
            // a negative or fractional number: say which, not only that it is a number
            None => match v.as_f64() {
                Some(x) => self.bad(
                    &path,
                    format!("expected a whole number in [{min}, {max}], got {x}"),
                ),
                None => self.bad(&path, format!("expected a whole number, got {}", kind(v))),
            },
        }
    }

    fn usize(
        &mut self,
        m: &serde_yaml_ng::Mapping,
        sec: &str,
        key: &str,
        min: u64,
        max: u64,
        out: &mut usize,
    ) {
        let mut x = *out as u64;
        self.uint(m, sec, key, min, max, &mut x);
        *out = x as usize;
    }

    fn float(
        &mut self,
        m: &serde_yaml_ng::Mapping,
        sec: &str,
        key: &str,
        min: f64,
        max: f64,
        out: &mut f64,
    ) {
        let Some(v) = self.get(m, key) else { return };
        let path = join(sec, key);
        match v.as_f64() {
            Some(x) if x.is_finite() && x >= min && x <= max => *out = x,
            Some(x) => self.bad(&path, format!("{x} is out of range [{min}, {max}]")),
            None => self.bad(&path, format!("expected a number, got {}", kind(v))),
        }
    }

    fn boolean(&mut self, m: &serde_yaml_ng::Mapping, sec: &str, key: &str, out: &mut bool) {
        let Some(v) = self.get(m, key) else { return };
        match v.as_bool() {
            Some(b) => *out = b,
            None => self.bad(
                &join(sec, key),
                format!("expected true or false, got {}", kind(v)),
            ),
        }
    }

    fn string(
        &mut self,
        m: &serde_yaml_ng::Mapping,
        sec: &str,
        key: &str,
        out: &mut String,
    ) -> bool {
        let Some(v) = self.get(m, key) else {
            return false;
        };
        match v.as_str() {
            Some(s) => {
                *out = s.to_string();
                true
            }
            None => {
                self.bad(
                    &join(sec, key),
                    format!("expected a string, got {}", kind(v)),
                );
                false
            }
        }
    }

    fn path(&mut self, m: &serde_yaml_ng::Mapping, sec: &str, key: &str, out: &mut PathBuf) {
        let mut s = String::new();
        if self.string(m, sec, key, &mut s) {
            if s.is_empty() {
                self.bad(&join(sec, key), "must not be empty");
            } else {
                *out = s.into();
            }
        }
    }

    fn level(&mut self, path: &str, v: &Value) -> Option<String> {
        match v.as_str() {
            Some(s) if LEVELS.contains(&s.to_ascii_lowercase().as_str()) => {
                Some(s.to_ascii_lowercase())
            }
            Some(s) => {
                self.bad(
                    path,
                    format!("unknown level {s:?} (one of {})", LEVELS.join(", ")),
                );
                None
            }
            None => {
                self.bad(path, format!("expected a level string, got {}", kind(v)));
                None
            }
        }
    }
}

fn join(sec: &str, key: &str) -> String {
    if sec.is_empty() {
        key.to_string()
    } else {
        format!("{sec}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl Config {
    /// Where each symbol's pipeline state and the bar journals are kept: `state/` beside the
    /// spool (`data/state` by default).
    pub fn state_dir(&self) -> PathBuf {
        self.storage
            .spool_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("state")
    }

    /// The pipeline settings of `regime.*` (the rest at their defaults): what `serve` runs
    /// with, and `detect` / `evaluate` with `--config`.
    pub fn pipeline(&self) -> regime_core::pipeline::PipelineConfig {
        regime_core::pipeline::PipelineConfig {
            confidence_threshold: self.regime.confidence_threshold,
            switch_margin: self.regime.switch_margin,
            feedback_lag: self.regime.feedback_lag,
            ensemble_learning_rate: self.regime.ensemble_learning_rate,
            ..Default::default()
        }
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ParseError::Syntax(message) => ConfigError::Syntax {
                path: path.to_path_buf(),
                message,
            },
            ParseError::Invalid(problems) => ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            },
        })
    }

    /// Parse and validate YAML text.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        let v: Value =
            serde_yaml_ng::from_str(text).map_err(|e| ParseError::Syntax(e.to_string()))?;
        let mut cfg = Config::default();
        let mut c = Checker {
            problems: Vec::new(),
        };
        if v.is_null() {
            return Ok(cfg); // an empty file means all defaults
        }
        let sections = [
            "server",
            "storage",
            "performance",
            "caching",
            "regime",
            "logging",
            "auth",
            "feeds",
        ];
        let Some(root) = c.section(&v, "", &sections) else {
            return Err(ParseError::Invalid(c.problems));
        };
        let sec = |c: &mut Checker, name: &str, known: &[&str]| {
            root.get(name)
                .filter(|v| !v.is_null())
                .and_then(|v| c.section(v, name, known))
                .cloned()
        };

        if let Some(m) = sec(
            &mut c,
            "server",
            &[
                "bind",
                "request_timeout_ms",
                "max_body_bytes",
                "max_future_secs",
                "max_connections",
                "idle_timeout_secs",
            ],
        ) {
            let s = &mut cfg.server;
            if c.string(&m, "server", "bind", &mut s.bind)
                && s.bind.parse::<std::net::SocketAddr>().is_err()
            {
                c.bad("server.bind", format!("{:?} is not ADDR:PORT", s.bind));
            }
            c.uint(
                &m,
                "server",
                "request_timeout_ms",
                1,
                3_600_000,
                &mut s.request_timeout_ms,
            );
            c.usize(
                &m,
                "server",
                "max_body_bytes",
                1024,
                1 << 34,
                &mut s.max_body_bytes,
            );
            c.uint(
                &m,
                "server",
                "max_future_secs",
                0,
                366 * 86_400,
                &mut s.max_future_secs,
            );
            c.usize(
                &m,
                "server",
                "max_connections",
                1,
                1 << 20,
                &mut s.max_connections,
            );
            c.uint(
                &m,
                "server",
                "idle_timeout_secs",
                1,
                86_400,
                &mut s.idle_timeout_secs,
            );
        }
        if let Some(m) = sec(
            &mut c,
            "storage",
            &[
                "type",
                "path",
                "url",
                "pool_size",
                "retry_buffer_rows",
                "spool_path",
                "backup_dir",
                "wait_at_start_secs",
                "check_at_start",
            ],
        ) {
            let s = &mut cfg.storage;
            let mut t = String::new();
            let typed = c.string(&m, "storage", "type", &mut t);
            if typed {
                match t.as_str() {
                    "embedded" => s.kind = StorageKind::Embedded,
                    "postgres" | "postgresql" => s.kind = StorageKind::Postgres,
                    other => c.bad(
                        "storage.type",
                        format!("unknown store {other:?} (embedded or postgres)"),
                    ),
                }
            }
            c.path(&m, "storage", "path", &mut s.path);
            c.path(&m, "storage", "spool_path", &mut s.spool_path);
            c.path(&m, "storage", "backup_dir", &mut s.backup_dir);
            // a database URL with no type names the database to use: not the embedded
            // store, which would take the rows while the URL was ignored
            if c.string(&m, "storage", "url", &mut s.url) && !typed && !s.url.is_empty() {
                s.kind = StorageKind::Postgres;
            }
            c.usize(&m, "storage", "pool_size", 1, 256, &mut s.pool_size);
            c.usize(
                &m,
                "storage",
                "retry_buffer_rows",
                1000,
                1 << 32,
                &mut s.retry_buffer_rows,
            );
            c.uint(
                &m,
                "storage",
                "wait_at_start_secs",
                0,
                3600,
                &mut s.wait_at_start_secs,
            );
            c.boolean(&m, "storage", "check_at_start", &mut s.check_at_start);
            if s.kind == StorageKind::Postgres && s.url.is_empty() {
                c.bad("storage.url", "required when storage.type is postgres");
            }
        }
        if let Some(m) = sec(
            &mut c,
            "performance",
            &[
                "max_workers",
                "batch_size",
                "queue_capacity",
                "max_symbols",
                "backend",
            ],
        ) {
            let p = &mut cfg.performance;
            c.usize(
                &m,
                "performance",
                "max_workers",
                1,
                1024,
                &mut p.max_workers,
            );
            c.usize(
                &m,
                "performance",
                "batch_size",
                1,
                1_000_000,
                &mut p.batch_size,
            );
            c.usize(
                &m,
                "performance",
                "queue_capacity",
                1,
                1_000_000,
                &mut p.queue_capacity,
            );
            c.usize(
                &m,
                "performance",
                "max_symbols",
                1,
                10_000_000,
                &mut p.max_symbols,
            );
            if c.string(&m, "performance", "backend", &mut p.backend)
                && p.backend.parse::<regime_kernels::Preference>().is_err()
            {
                let msg = format!("`{}` is not one of auto, cpu, cuda, wgpu", p.backend);
                c.bad("performance.backend", msg);
            }
        }
        if let Some(m) = sec(&mut c, "caching", &["enabled", "ttl", "max_size"]) {
            let k = &mut cfg.caching;
            c.boolean(&m, "caching", "enabled", &mut k.enabled);
            c.uint(&m, "caching", "ttl", 0, 86_400 * 7, &mut k.ttl);
            c.usize(&m, "caching", "max_size", 0, 10_000_000, &mut k.max_size);
        }
        if let Some(m) = sec(
            &mut c,
            "regime",
            &[
                "confidence_threshold",
                "switch_margin",
                "feedback_lag",
                "ensemble_learning_rate",
                "models_dir",
                "default_symbol",
                "model_save_interval_secs",
                "models_keep",
                "state_checkpoint_secs",
            ],
        ) {
            let r = &mut cfg.regime;
            c.float(
                &m,
                "regime",
                "confidence_threshold",
                0.0,
                1.0,
                &mut r.confidence_threshold,
            );
            c.float(
                &m,
                "regime",
                "switch_margin",
                0.0,
                1.0,
                &mut r.switch_margin,
            );
            c.usize(&m, "regime", "feedback_lag", 1, 4096, &mut r.feedback_lag);
            c.float(
                &m,
                "regime",
                "ensemble_learning_rate",
                0.0,
                1.0,
                &mut r.ensemble_learning_rate,
            );
            c.path(&m, "regime", "models_dir", &mut r.models_dir);
            c.uint(
                &m,
                "regime",
                "model_save_interval_secs",
                0,
                86_400 * 7,
                &mut r.model_save_interval_secs,
            );
            c.usize(&m, "regime", "models_keep", 1, 10_000, &mut r.models_keep);
            c.uint(
                &m,
                "regime",
                "state_checkpoint_secs",
                0,
                86_400,
                &mut r.state_checkpoint_secs,
            );
            let mut s = String::new();
            if c.string(&m, "regime", "default_symbol", &mut s) {
                r.default_symbol = Some(s);
            }
        }
        if let Some(m) = sec(
            &mut c,
            "logging",
            &["level", "components", "dir", "keep_days", "max_file_bytes"],
        ) {
            let l = &mut cfg.logging;
            if let Some(v) = c.get(&m, "level") {
                if let Some(level) = c.level("logging.level", v) {
                    l.level = level;
                }
            }
            if let Some(v) = c.get(&m, "components") {
                match v {
                    Value::Mapping(cm) => {
                        for (k, v) in cm {
                            let Some(name) = k.as_str() else {
                                c.bad("logging.components", "component names must be strings");
                                continue;
                            };
                            let path = format!("logging.components.{name}");
                            if !name
                                .chars()
                                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
                            {
                                c.bad(&path, "component names are letters, digits, '_' and '::'");
                            } else if let Some(level) = c.level(&path, v) {
                                l.components.insert(name.to_string(), level);
                            }
                        }
                    }
                    other => c.bad(
                        "logging.components",
                        format!(
                            "expected a mapping of component: level, got {}",
                            kind(other)
                        ),
                    ),
                }
            }
            c.path(&m, "logging", "dir", &mut l.dir);
            c.uint(&m, "logging", "keep_days", 1, 3650, &mut l.keep_days);
            c.uint(
                &m,
                "logging",
                "max_file_bytes",
                4096,
                1 << 40,
                &mut l.max_file_bytes,
            );
        }
        if let Some(m) = sec(
            &mut c,
            "auth",
            &[
                "require_key_for_reads",
                "keys",
                "rate_limit_per_second",
                "rate_limit_burst",
            ],
        ) {
            let a = &mut cfg.auth;
            c.boolean(
                &m,
                "auth",
                "require_key_for_reads",
                &mut a.require_key_for_reads,
            );
            c.float(
                &m,
                "auth",
                "rate_limit_per_second",
                0.001,
                1e9,
                &mut a.rate_limit_per_second,
            );
            c.float(
                &m,
                "auth",
                "rate_limit_burst",
                1.0,
                1e9,
                &mut a.rate_limit_burst,
            );
            if let Some(v) = c.get(&m, "keys") {
                match v {
                    Value::Sequence(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let p = format!("auth.keys[{i}]");
                            if let Some(km) = c.section(item, &p, &["name", "sha256", "scopes"]) {
                                let km = km.clone();
                                let mut key = ApiKey {
                                    name: format!("key{i}"),
                                    sha256: String::new(),
                                    scopes: Vec::new(),
                                };
                                c.string(&km, &p, "name", &mut key.name);
                                if c.string(&km, &p, "sha256", &mut key.sha256) {
                                    key.sha256 = key.sha256.to_ascii_lowercase();
                                    if key.sha256.len() != 64
                                        || !key.sha256.chars().all(|ch| ch.is_ascii_hexdigit())
                                    {
                                        c.bad(
                                            &join(&p, "sha256"),
                                            "expected 64 hex digits (sha256sum of the key)",
                                        );
                                    }
                                } else if c.get(&km, "sha256").is_none() {
                                    c.bad(
                                        &join(&p, "sha256"),
                                        "required (store the key's SHA-256, not the key)",
                                    );
                                }
                                match c.get(&km, "scopes") {
                                    Some(Value::Sequence(ss)) => {
                                        for (j, s) in ss.iter().enumerate() {
                                            let sp = format!("{p}.scopes[{j}]");
                                            match s.as_str().and_then(Scope::parse) {
                                                Some(scope) => key.scopes.push(scope),
                                                None => c.bad(
                                                    &sp,
                                                    "unknown scope (read, ingest or admin)",
                                                ),
                                            }
                                        }
                                    }
                                    Some(other) => c.bad(
                                        &join(&p, "scopes"),
                                        format!("expected a list, got {}", kind(other)),
                                    ),
                                    None => c.bad(
                                        &join(&p, "scopes"),
                                        "required (a list of read, ingest, admin)",
                                    ),
                                }
                                a.keys.push(key);
                            }
                        }
                    }
                    other => c.bad("auth.keys", format!("expected a list, got {}", kind(other))),
                }
            }
        }
        if let Some(m) = sec(&mut c, "feeds", &["demo", "demo_bars_per_second", "replay"]) {
            let f = &mut cfg.feeds;
            c.boolean(&m, "feeds", "demo", &mut f.demo);
            c.float(
                &m,
                "feeds",
                "demo_bars_per_second",
                0.0,
                1e9,
                &mut f.demo_bars_per_second,
            );
            if let Some(v) = c.get(&m, "replay") {
                match v {
                    Value::Sequence(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let p = format!("feeds.replay[{i}]");
                            if let Some(rm) =
                                c.section(item, &p, &["path", "bars_per_second", "repeat"])
                            {
                                let rm = rm.clone();
                                let mut r = ReplayFeed {
                                    path: PathBuf::new(),
                                    bars_per_second: 0.0,
                                    repeat: false,
                                };
                                if c.get(&rm, "path").is_none() {
                                    c.bad(&join(&p, "path"), "required");
                                }
                                c.path(&rm, &p, "path", &mut r.path);
                                c.float(
                                    &rm,
                                    &p,
                                    "bars_per_second",
                                    0.0,
                                    1e9,
                                    &mut r.bars_per_second,
                                );
                                c.boolean(&rm, &p, "repeat", &mut r.repeat);
                                f.replay.push(r);
                            }
                        }
                    }
                    other => c.bad(
                        "feeds.replay",
                        format!("expected a list, got {}", kind(other)),
                    ),
                }
            }
        }
        if c.problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ParseError::Invalid(c.problems))
        }
    }

    /// Hot-reloadable keys ([`HOT_RELOADABLE`]) whose values differ between `self`
    /// (running) and `new`.
    pub fn hot_changed(&self, new: &Config) -> Vec<&'static str> {
        let same = |a: &dyn erased::Ser, b: &dyn erased::Ser| a.json() == b.json();
        let mut out = Vec::new();
        if self.logging.level != new.logging.level {
            out.push("logging.level");
        }
        if self.logging.components != new.logging.components {
            out.push("logging.components");
        }
        if !same(&self.auth, &new.auth) {
            out.push("auth");
        }
        if !same(&self.caching, &new.caching) {
            out.push("caching");
        }
        if self.regime.default_symbol != new.regime.default_symbol {
            out.push("regime.default_symbol");
        }
        if self.performance.batch_size != new.performance.batch_size {
            out.push("performance.batch_size");
        }
        out
    }

    /// Keys whose values differ between `self` (running) and `new` and that need a restart.
    pub fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        let mut out = Vec::new();
        let same = |a: &dyn erased::Ser, b: &dyn erased::Ser| a.json() == b.json();
        if !same(&self.server, &new.server) {
            out.push("server");
        }
        if !same(&self.storage, &new.storage) {
            out.push("storage");
        }
        if self.performance.max_workers != new.performance.max_workers {
            out.push("performance.max_workers");
        }
        if self.performance.backend != new.performance.backend {
            out.push("performance.backend");
        }
        if self.performance.queue_capacity != new.performance.queue_capacity {
            out.push("performance.queue_capacity");
        }
        if self.performance.max_symbols != new.performance.max_symbols {
            out.push("performance.max_symbols");
        }
        if self.regime.confidence_threshold != new.regime.confidence_threshold
            || self.regime.switch_margin != new.regime.switch_margin
            || self.regime.feedback_lag != new.regime.feedback_lag
            || self.regime.ensemble_learning_rate != new.regime.ensemble_learning_rate
        {
            out.push(
                "regime (confidence_threshold, switch_margin, feedback_lag, ensemble_learning_rate)",
            );
        }
        if self.regime.models_dir != new.regime.models_dir
            || self.regime.model_save_interval_secs != new.regime.model_save_interval_secs
            || self.regime.models_keep != new.regime.models_keep
            || self.regime.state_checkpoint_secs != new.regime.state_checkpoint_secs
        {
            out.push(
                "regime (models_dir, model_save_interval_secs, models_keep, state_checkpoint_secs)",
            );
        }
        if self.logging.dir != new.logging.dir
            || self.logging.keep_days != new.logging.keep_days
            || self.logging.max_file_bytes != new.logging.max_file_bytes
        {
            out.push("logging (dir, keep_days, max_file_bytes)");
        }
        if !same(&self.feeds, &new.feeds) {
            out.push("feeds");
        }
        out
    }
}

mod erased {
    /// Serialize-to-JSON comparison without naming each type.
    pub(super) trait Ser {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

/// Why YAML text was refused.
#[derive(Debug)]
pub enum ParseError {
    /// Not YAML.
    Syntax(String),
    /// Schema problems.
    Invalid(Vec<Problem>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_for_printing() {
        assert_eq!(
            mask_password("host=db user=regime password=s3cret dbname=regime"),
            "host=db user=regime password=*** dbname=regime"
        );
        assert_eq!(
            mask_password("postgres://regime:s3cret@db:5432/regime"),
            "postgres://regime:***@db:5432/regime"
        );
        assert_eq!(
            mask_password("postgres://regime@db/regime"),
            "postgres://regime@db/regime"
        );
        assert_eq!(mask_password("host=db user=regime"), "host=db user=regime");
    }

    #[test]
    fn empty_is_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.performance.max_workers, 4);
        assert_eq!(c.performance.batch_size, 1000);
        assert_eq!(c.caching.ttl, 300);
        assert_eq!(c.caching.max_size, 1000);
        assert!(c.caching.enabled);
        assert_eq!(c.storage.kind, StorageKind::Embedded);
        assert!(c.storage.check_at_start);
        let c = Config::parse("storage:\n  check_at_start: false\n").unwrap();
        assert!(!c.storage.check_at_start);
        let Err(ParseError::Invalid(p)) = Config::parse("storage:\n  check_at_start: 1\n") else {
            panic!("expected a problem")
        };
        assert_eq!(p[0].path, "storage.check_at_start");
    }

    /// A database URL with no `type` is that database, not the embedded store beside an
    /// ignored URL; an explicit type is kept, and a URL left empty changes nothing.
    #[test]
    fn a_database_url_alone_names_the_store() {
        let url = "host=127.0.0.1 port=5432 user=regime dbname=regime";
        let c = Config::parse(&format!("storage:\n  url: \"{url}\"\n")).unwrap();
        assert_eq!(
            (c.storage.kind, c.storage.url.as_str()),
            (StorageKind::Postgres, url)
        );
        let c = Config::parse(&format!("storage:\n  type: embedded\n  url: \"{url}\"\n")).unwrap();
        assert_eq!(c.storage.kind, StorageKind::Embedded);
        let c = Config::parse("storage:\n  url: \"\"\n").unwrap();
        assert_eq!(c.storage.kind, StorageKind::Embedded);
    }

    #[test]
    fn every_problem_has_its_path() {
        let text = "server:\n  bind: nowhere\nperformance:\n  max_workers: 0\n  batch_size: lots\n  turbo: true\ncaching:\n  ttl: -3\nauth:\n  keys:\n    - name: a\n      sha256: xyz\n      scopes: [read, write]\nlogging:\n  level: loud\nstorage:\n  type: postgres\nnonsense: 1\n";
        let Err(ParseError::Invalid(p)) = Config::parse(text) else {
            panic!("expected problems")
        };
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        for want in [
            "server.bind",
            "performance.max_workers",
            "performance.batch_size",
            "performance.turbo",
            "caching.ttl",
            "auth.keys[0].sha256",
            "auth.keys[0].scopes[1]",
            "logging.level",
            "storage.url",
            "nonsense",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        // a negative or fractional count says what was wrong with it
        let ttl = p.iter().find(|p| p.path == "caching.ttl").expect("ttl");
        assert!(ttl.message.contains("whole number in [") && ttl.message.contains("got -3"));
        let Err(ParseError::Invalid(p)) = Config::parse("regime: {state_checkpoint_secs: 1.5}")
        else {
            panic!("expected a problem")
        };
        assert!(p[0].message.ends_with("got 1.5"), "{}", p[0].message);
    }

    #[test]
    fn the_transition_managers_settings_reach_the_pipeline() {
        let c = Config::parse("regime: {confidence_threshold: 0.8, switch_margin: 0.25}").unwrap();
        let p = c.pipeline();
        assert_eq!((p.confidence_threshold, p.switch_margin), (0.8, 0.25));
        assert!(p.validate().is_ok());
        assert_eq!(Config::default().pipeline().switch_margin, 0.05);
        let r = Config::default().restart_needed(&c);
        assert!(r.iter().any(|k| k.contains("switch_margin")), "{r:?}");
        let Err(ParseError::Invalid(p)) = Config::parse("regime: {switch_margin: 1.5}") else {
            panic!("expected a problem")
        };
        assert_eq!(p[0].path, "regime.switch_margin");
        // a threshold the schema takes but the pipeline does not is caught by the pipeline's
        // own check (what `validate-config`, `serve` and `detect --config` run)
        let c = Config::parse("regime: {confidence_threshold: 0.2}").unwrap();
        let e = c.pipeline().validate().unwrap_err().to_string();
        assert!(e.contains("regime.confidence_threshold"), "{e}");
    }

    #[test]
    fn full_config_parses() {
        let text = r#"
server: {bind: "127.0.0.1:9000", request_timeout_ms: 5000}
storage: {type: postgres, url: "host=localhost user=regime", pool_size: 8}
performance: {max_workers: 8, batch_size: 2000}
caching: {enabled: false, ttl: 60, max_size: 10}
regime: {confidence_threshold: 0.8, default_symbol: SPX}
logging: {level: debug, components: {regime_server::store: warn}, dir: /tmp/x}
auth:
  require_key_for_reads: true
  keys:
    - {name: ops, sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", scopes: [read, admin]}
feeds: {demo: false, replay: [{path: a.csv, bars_per_second: 100, repeat: true}]}
"#;
        let c = Config::parse(text).unwrap();
        assert_eq!(c.performance.max_workers, 8);
        assert_eq!(c.storage.kind, StorageKind::Postgres);
        assert_eq!(c.auth.keys[0].scopes, vec![Scope::Read, Scope::Admin]);
        assert_eq!(c.logging.components["regime_server::store"], "warn");
        assert!(!c.feeds.demo);
        assert_eq!(c.feeds.replay[0].bars_per_second, 100.0);
        let d = Config::default();
        let r = d.restart_needed(&c);
        assert!(r.contains(&"server") && r.contains(&"performance.max_workers"));
        assert!(!r.iter().any(|k| k.starts_with("caching")));
    }
}
