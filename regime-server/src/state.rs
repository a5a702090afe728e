//! Shared service state: engine, config, keys, rate limiter, history cache, reader pool,
//! request statistics and process statistics.

use crate::config::{ApiKey, Config, Scope, StorageConfig};
use crate::engine::Engine;
use crate::store::{self, HistoryQuery, Store, StoreError};
use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Applies logging levels at run time (SIGHUP, `/debug/enable`).
pub type LogControl =
    Arc<dyn Fn(&crate::config::LoggingConfig, bool) -> Result<(), String> + Send + Sync>;

/// Cheaply clonable handle to everything the routes need.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// The state behind [`AppState`].
pub struct Inner {
    /// Detection engine.
    pub engine: Arc<Engine>,
    /// Running config (hot-reloadable parts are swapped on SIGHUP).
    pub config: ArcSwap<Config>,
    /// Where the config came from (None = defaults).
    pub config_path: Option<PathBuf>,
    /// `serve --bind`, which overrides the file's `server.bind` at every reload as at start.
    pub bind_override: Option<String>,
    /// Keys by SHA-256.
    pub auth: ArcSwap<AuthTable>,
    /// Per-key token buckets.
    pub limiter: RateLimiter,
    /// History query cache.
    pub cache: HistoryCache,
    /// Read connections to the store.
    pub readers: Arc<ReadPool>,
    /// Request counters and latency histogram.
    pub http: HttpStats,
    /// Start time.
    pub started: Instant,
    /// Prometheus renderer.
    pub prom: PrometheusHandle,
    /// Last CPU sample.
    pub proc_sample: Mutex<ProcSample>,
    /// SAFE_MODE=1.
    pub safe_mode: bool,
    /// Config reloads done.
    pub reloads: AtomicU64,
    /// Feeds paused by `/admin/reduce_load`.
    pub feeds_paused: Arc<AtomicBool>,
    /// Debug logging on.
    pub debug: AtomicBool,
    /// Logging level control.
    pub log_control: Option<LogControl>,
    /// Compute backend in use and how it was chosen.
    pub compute: crate::compute::ComputeInfo,
    /// HTTP connections open now (see [`crate::conn::Bounded`]).
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

/// Active API keys.
#[derive(Debug, Default)]
pub struct AuthTable {
    by_hash: HashMap<String, ApiKey>,
}

/// SHA-256 of a key, lower-case hex.
pub fn sha256_hex(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuthTable {
    /// Table of the configured keys.
    pub fn new(keys: &[ApiKey]) -> Self {
        AuthTable {
            by_hash: keys.iter().map(|k| (k.sha256.clone(), k.clone())).collect(),
        }
    }
    /// The key entry for a presented secret.
    pub fn lookup(&self, presented: &str) -> Option<&ApiKey> {
        self.by_hash.get(&sha256_hex(presented))
    }
    /// Number of active keys.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }
    /// No keys at all.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// A key with every scope, for development runs with no configured keys.
pub fn dev_key(secret: &str) -> ApiKey {
    ApiKey {
        name: "development".into(),
        sha256: sha256_hex(secret),
        scopes: vec![Scope::Read, Scope::Ingest, Scope::Admin],
    }
}

/// Token bucket per key name.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Take one token for `who`; false when the bucket is empty.
    pub fn allow(&self, who: &str, per_second: f64, burst: f64) -> bool {
        let Ok(mut b) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        if !b.contains_key(who) {
            b.insert(who.to_string(), (burst, now));
        }
        let Some(e) = b.get_mut(who) else {
            return true;
        };
        let refill = now.duration_since(e.1).as_secs_f64() * per_second;
        e.0 = (e.0 + refill).min(burst);
        e.1 = now;
        if e.0 >= 1.0 {
            e.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// When it was stored, the store generation it reflects, the JSON body.
type CacheEntry = (Instant, u64, Arc<Vec<u8>>);

/// Cached history answers, valid while the TTL lasts and no newer rows were committed.
#[derive(Debug, Default)]
pub struct HistoryCache {
    map: Mutex<HashMap<HistoryQuery, CacheEntry>>,
    /// Hits.
    pub hits: AtomicU64,
    /// Misses.
    pub misses: AtomicU64,
}

impl HistoryCache {
    /// A cached body for `q` at store generation `gen`.
    pub fn get(&self, q: &HistoryQuery, gen: u64, ttl: Duration) -> Option<Arc<Vec<u8>>> {
        let m = self.map.lock().ok()?;
        let hit = m
            .get(q)
            .filter(|(t, g, _)| *g == gen && t.elapsed() < ttl)
            .map(|e| e.2.clone());
        if hit.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
    /// Remember a body (evicting the oldest entry beyond `max`).
    pub fn put(&self, q: HistoryQuery, gen: u64, body: Arc<Vec<u8>>, max: usize) {
        if max == 0 {
            return;
        }
        let Ok(mut m) = self.map.lock() else { return };
        if m.len() >= max && !m.contains_key(&q) {
            if let Some(old) = m.iter().min_by_key(|(_, v)| v.0).map(|(k, _)| k.clone()) {
                m.remove(&old);
            }
        }
        m.insert(q, (Instant::now(), gen, body));
    }
    /// Drop everything.
    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }
    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
    /// Nothing cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Read connections, at most `pool_size` at once.
pub struct ReadPool {
    cfg: StorageConfig,
    idle: Mutex<Vec<Box<dyn Store>>>,
    permits: tokio::sync::Semaphore,
    /// Connections checked out now.
    pub active: AtomicU64,
}

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool").finish_non_exhaustive()
    }
}

impl ReadPool {
    /// A pool for `cfg` (connections open lazily).
    pub fn new(cfg: StorageConfig) -> Self {
        let n = cfg.pool_size.max(1);
        ReadPool {
            cfg,
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(n),
            active: AtomicU64::new(0),
        }
    }

    /// Pool size.
    pub fn size(&self) -> usize {
        self.cfg.pool_size.max(1)
    }

    /// Store type name.
    pub fn kind(&self) -> &'static str {
        match self.cfg.kind {
            crate::config::StorageKind::Embedded => "embedded",
            crate::config::StorageKind::Postgres => "postgres",
        }
    }

    /// Run `f` on a connection in a blocking thread. A connection that fails is dropped, so
    /// the next call reconnects.
    pub async fn with<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Corrupt("pool closed".into()))?;
        let me = self.clone();
        self.active.fetch_add(1, Ordering::Relaxed);
        let res = tokio::task::spawn_blocking(move || {
            // a connection to a file no longer at the store's path (removed or replaced
            // under the service) would read the old table: opened afresh instead
            let conn = me
                .idle
                .lock()
                .ok()
                .and_then(|mut v| v.pop())
                .filter(|c| !c.file_replaced());
            let mut conn = match conn {
                Some(c) => c,
                None => store::open(&me.cfg, store::Role::Reader)?,
            };
            let r = f(conn.as_mut());
            if r.is_ok() {
                if let Ok(mut v) = me.idle.lock() {
                    v.push(conn);
                }
            }
            r
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Corrupt(format!("reader task: {e}"))));
        self.active.fetch_sub(1, Ordering::Relaxed);
        res
    }
}

/// Request counters and a latency histogram (log-spaced buckets) for the JSON metrics.
#[derive(Debug)]
pub struct HttpStats {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Requests answered 5xx.
    pub errors: AtomicU64,
    buckets: Vec<AtomicU64>,
}

/// Bucket edges grow by 2^(1/4) from 1 µs: ~19% resolution up to ~17 minutes.
const LAT_BUCKETS: usize = 120;

impl Default for HttpStats {
    fn default() -> Self {
        HttpStats {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: (0..LAT_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl HttpStats {
    /// Record one answered request.
    pub fn record(&self, seconds: f64, server_error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if server_error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let us = (seconds * 1e6).max(1.0);
        let i = ((us.log2() * 4.0) as usize).min(LAT_BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Latency quantile in milliseconds (upper edge of its bucket); None before any request.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = (q * total as f64).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if acc >= target {
                return Some(2f64.powf((i + 1) as f64 / 4.0) / 1000.0);
            }
        }
        None
    }
}

/// Process CPU time at a moment, for CPU % between two samples.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    /// When.
    pub at: Instant,
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// Last computed CPU % (of all cores).
    pub last_percent: f64,
}

/// utime + stime of this process in seconds (Linux `/proc/self/stat`).
pub fn process_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the ")" of the command name; utime and stime are fields 14 and 15
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ is 100 on Linux
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / ticks)
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Share of the file system holding `path` (or its nearest existing parent) that is free
/// for unprivileged writers, 0..1.
pub fn disk_free_ratio(path: &std::path::Path) -> Option<f64> {
    let mut p = Some(path);
    while let Some(q) = p {
        let probe = if q.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            q
        };
        if let Ok(st) = rustix::fs::statvfs(probe) {
            return (st.f_blocks > 0).then(|| st.f_bavail as f64 / st.f_blocks as f64);
        }
        p = q.parent();
    }
    None
}

/// Total memory of the machine in bytes.
pub fn mem_total_bytes() -> Option<u64> {
    meminfo_bytes("MemTotal:")
}

/// Memory available to a new allocation without swapping, in bytes (Linux's estimate).
pub fn mem_available_bytes() -> Option<u64> {
    meminfo_bytes("MemAvailable:")
}

/// A `/proc/meminfo` line's value in bytes (None off Linux).
fn meminfo_bytes(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Inner {
    /// CPU use of this process in percent of all cores since the previous call (≥ 1 s apart;
    /// calls closer together return the previous value).
    pub fn cpu_percent(&self) -> f64 {
        let Ok(mut s) = self.proc_sample.lock() else {
            return 0.0;
        };
        let Some(now_cpu) = process_cpu_seconds() else {
            return 0.0;
        };
        let dt = s.at.elapsed().as_secs_f64();
        if dt >= 1.0 {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1) as f64;
            s.last_percent = ((now_cpu - s.cpu_s) / dt / cores * 100.0).clamp(0.0, 100.0);
            s.at = Instant::now();
            s.cpu_s = now_cpu;
        }
        s.last_percent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_follow_the_data() {
        let h = HttpStats::default();
        assert_eq!(h.quantile_ms(0.5), None);
        for _ in 0..98 {
            h.record(0.001, false); // 1 ms
        }
        h.record(0.1, true);
        h.record(0.1, false);
        let p50 = h.quantile_ms(0.5).unwrap();
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((1.0..1.25).contains(&p50), "p50 {p50}");
        assert!((100.0..125.0).contains(&p99), "p99 {p99}");
        assert_eq!(h.errors.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn bucket_refills() {
        let r = RateLimiter::default();
        assert!(r.allow("k", 1.0, 2.0));
        assert!(r.allow("k", 1.0, 2.0));
        assert!(!r.allow("k", 1.0, 2.0), "burst of 2 used up");
        assert!(r.allow("other", 1.0, 2.0), "buckets are per key");
    }

    #[test]
    fn keys_are_matched_by_hash() {
        let t = AuthTable::new(&[dev_key("s3cret")]);
        assert!(t.lookup("s3cret").is_some());
        assert!(t.lookup("s3cret ").is_none());
        assert_eq!(
            sha256_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
