//! `regime serve` on a real PostgreSQL server (the one `.ci/run` starts; `REGIME_TEST_PG`),
//! reached through a loopback TCP proxy the test can cut: database down → health degraded,
//! `regime_db_up 0`, ingest still acknowledged from the bounded retry buffer and its fsynced
//! spool; `kill -9` and a restart during the outage; database back → every acknowledged row
//! written, automatically. Then `regime export`, and a start before the database accepts
//! connections (a host reboot): waited for, the symbol's learning resumed.

mod support;

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use support::{json_bars, Server};

/// Forwards loopback connections to PostgreSQL; `cut()` drops them all and refuses new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (u, c) = (up.clone(), conns.clone());
        std::thread::spawn(move || {
            for inc in l.incoming() {
                let Ok(inc) = inc else { continue };
                if !u.load(Ordering::SeqCst) {
                    drop(inc);
                    continue;
                }
                let Ok(out) = TcpStream::connect(&target) else {
                    continue;
                };
                let mut g = c.lock().unwrap();
                g.push(inc.try_clone().unwrap());
                g.push(out.try_clone().unwrap());
                for (mut a, mut b) in [
                    (inc.try_clone().unwrap(), out.try_clone().unwrap()),
                    (out, inc),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut a, &mut b);
                        let _ = b.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, up, conns }
    }
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn field<'a>(conn: &'a str, key: &str) -> Option<&'a str> {
    conn.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The test PostgreSQL's database `db` with an empty table, a proxy to it, and a service
/// config that reaches it through the proxy (`storage` settings `extra` added); None (the
/// test `name` recorded as skipped) when no server is configured.
fn behind_a_proxy(name: &str, db: &str, extra: &str) -> Option<(postgres::Client, Proxy, String)> {
    let Ok(base) = std::env::var("REGIME_TEST_PG") else {
        regime_kernels::test_support::record_skip(
            name,
            "REGIME_TEST_PG not set (scripts/test.sh starts a server and sets it)",
        );
        return None;
    };
    let host = field(&base, "host").unwrap_or("127.0.0.1");
    let port = field(&base, "port").unwrap_or("5432");
    let user = field(&base, "user").unwrap_or("postgres");
    let mut admin = postgres::Client::connect(&format!("{base} dbname={db}"), postgres::NoTls)
        .expect("connect to the test PostgreSQL");
    admin
        .batch_execute("DROP TABLE IF EXISTS regime_history")
        .unwrap();
    let proxy = Proxy::start(format!("{host}:{port}"));
    let cfg = format!(
        "storage: {{type: postgres, url: \"host=127.0.0.1 port={} user={user} dbname={db} connect_timeout=2\", pool_size: 2, {extra}}}\nfeeds: {{demo: false}}\n",
        proxy.port
    );
    Some((admin, proxy, cfg))
}

#[test]
fn postgres_store_outage_and_recovery() {
    let Some((mut admin, proxy, cfg)) = behind_a_proxy(
        "postgres_store_outage_and_recovery",
        "regime_it",
        "wait_at_start_secs: 4",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &cfg, &[]);
    let key = Some("dev-key-for-tests");
    let r = s.post_json("/api/v1/bars", key, &json_bars("PG", 400, 0));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["committed"], true);
    let db = s.get("/api/v1/system/database", None).json();
    assert_eq!(
        (
            db["status"].as_str(),
            db["type"].as_str(),
            db["rows"].as_u64()
        ),
        (Some("connected"), Some("postgres"), Some(400))
    );
    let h = s.get("/api/v1/health", None).json();
    assert_eq!(
        (
            h["database"].as_str(),
            h["components"]["historical_analyzer"].as_str()
        ),
        (Some("connected"), Some("running"))
    );

    // a second symbol, stored before the outage (so not in the spool)
    let r = s.post_json("/api/v1/bars", key, &json_bars("Q", 200, 0));
    assert_eq!(r.json()["committed"], true, "{}", r.text());

    // the database goes away
    proxy.cut();
    s.wait_for("health degraded", 15, |s| {
        let h = s.get("/api/v1/health", None).json();
        h["status"] == "degraded"
            && h["database"] == "disconnected"
            && h["components"]["historical_analyzer"] == "degraded"
    });
    assert!(s
        .get("/metrics", None)
        .text()
        .lines()
        .any(|l| l == "regime_db_up 0"));
    assert_eq!(
        s.get("/api/v1/system/database", None).json()["status"],
        "disconnected"
    );
    let r = s.post_json("/api/v1/bars", key, &json_bars("PG", 300, 400));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json()["committed"],
        false,
        "acknowledged from the retry buffer"
    );
    let hist = s.get("/api/v1/regime/history?symbol=PG", None);
    assert_eq!(
        hist.status,
        503,
        "history needs the database: {}",
        hist.text()
    );
    assert!(hist.headers.contains_key("retry-after"));
    assert_eq!(r.json()["spooled"], true, "and in the fsynced spool");

    // kill -9 during the outage, restart while the database is still down
    let mut s = s;
    s.child.kill().unwrap();
    let _ = s.child.wait();
    drop(s);
    let s = Server::start(dir.path(), &cfg, &[]);
    assert_eq!(
        s.get("/api/v1/health", None).json()["database"],
        "disconnected"
    );

    // it comes back: the buffered rows are written without anyone doing anything
    proxy.restore();
    s.wait_for("buffered rows written", 30, |s| {
        s.get("/api/v1/system/database", None).json()["rows"].as_u64() == Some(900)
    });
    // (the status itself also depends on the detector: performance_feedback_system may be
    // degraded on this short synthetic series, so check the store's part of it)
    s.wait_for("store healthy again", 15, |s| {
        let h = s.get("/api/v1/health", None).json();
        let ok = h["database"] == "connected"
            && h["components"]["historical_analyzer"] == "running"
            && h["status"] != "unhealthy";
        if !ok {
            println!("health now: {h}");
        }
        ok
    });
    assert!(s
        .get("/metrics", None)
        .text()
        .lines()
        .any(|l| l == "regime_db_up 1"));
    let n: i64 = admin
        .query_one(
            "SELECT COUNT(*) FROM regime_history WHERE symbol = 'PG'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 700);
    let idx: i64 = admin
        .query_one(
            "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'regime_history' AND indexdef LIKE '%(\"timestamp\", regime_id)%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(idx, 1, "index on (timestamp, regime_id)");

    // export for HeavyDB's COPY FROM
    let out = dir.path().join("export.csv");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_regime"))
        .args([
            "export",
            "--format",
            "csv",
            "--config",
            "config.yaml",
            "--output",
        ])
        .arg(&out)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("timestamp,symbol,regime_id,regime_name"));
    assert_eq!(lines.count(), 900);

    // a host reboot: the service starts before PostgreSQL accepts connections. It waits for
    // it (storage.wait_at_start_secs) rather than start every symbol fresh. Q's state was
    // never saved (the first run was killed; the start during the outage could not tell
    // what the store held of Q — PG's newest rows were in the spool, so PG caught up then),
    // but its bars are all in the first run's bar journal, which that start kept: Q resumes
    // now, caught up from its first bar.
    let mut s = s;
    s.signal("TERM");
    assert_eq!(s.wait_exit(30), Some(0));
    proxy.cut();
    let up = proxy.up.clone();
    let back = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        up.store(true, Ordering::SeqCst);
    });
    let s = Server::start(dir.path(), &cfg, &[]);
    back.join().unwrap();
    assert_eq!(
        s.get("/api/v1/health", None).json()["database"],
        "connected"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/system.log")).unwrap();
    assert!(
        log.contains("store not reachable yet") && log.contains("store reachable after"),
        "{log}"
    );
    assert!(
        log.contains("1 of them caught up with 200 journaled bars"),
        "{log}"
    );
}

/// A full disk during a database outage (database `regime_full`): the spool cannot take the
/// rows either, so nothing is acknowledged (503 `no_durable_storage`; after the first batch,
/// before detection) until one of them takes rows again; the rows held meanwhile are written
/// then, and what was acknowledged survives a `kill -9`.
#[test]
fn a_full_disk_during_an_outage_stops_acknowledging() {
    let Some((mut admin, proxy, cfg)) = behind_a_proxy(
        "a_full_disk_during_an_outage_stops_acknowledging",
        "regime_full",
        "wait_at_start_secs: 0",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Some("dev-key-for-tests");
    let s = Server::start(dir.path(), &cfg, &[]);
    let r = s.post_json("/api/v1/bars", key, &json_bars("F", 300, 0));
    assert_eq!(r.json()["committed"], true, "{}", r.text());
    // the disk is full: every write to the spool fails (ENOSPC), and the database goes away
    let spool = dir.path().join("data/spool.jsonl");
    std::os::unix::fs::symlink("/dev/full", &spool).unwrap();
    proxy.cut();
    // the batch being written when that is found: detected and held in memory, but not
    // acknowledged (a crash would lose it)
    let r = s.post_json("/api/v1/bars", key, &json_bars("F", 100, 300));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "no_durable_storage");
    assert_eq!(
        (r.json()["accepted"].as_u64(), r.json()["spooled"].as_bool()),
        (Some(100), Some(false))
    );
    // the client resends it (as a 503 asks): refused at the door like any batch while nothing
    // is durable — the same 503, not a 400 calling the bars bad
    let held = json_bars("F", 100, 300);
    let r = s.post_json("/api/v1/bars", key, &held);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "no_durable_storage");
    // the next ones: refused before detection (a retry later is taken as new)
    let next = json_bars("G", 100, 0);
    let r = s.post_json("/api/v1/bars", key, &next);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "no_durable_storage");
    assert!(r.headers.contains_key("retry-after"));
    // space again: the held rows go to the spool at the writer's next try, and ingest is
    // acknowledged again, spooled
    std::fs::remove_file(&spool).unwrap();
    s.wait_for("acknowledged again", 15, |s| {
        let r = s.post_json("/api/v1/bars", key, &next);
        r.status == 202 && r.json()["spooled"] == true
    });
    // and F's resend now: received before, durable (spooled) — 200, nothing learned twice
    let r = s.post_json("/api/v1/bars", key, &held);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["duplicates"].as_u64(),
            r.json()["rejected"].as_u64(),
            r.json()["spooled"].as_bool()
        ),
        (Some(100), Some(0), Some(true)),
        "{}",
        r.text()
    );
    // kill -9, the database back, start: every acknowledged row is stored, once
    let mut s = s;
    s.child.kill().unwrap();
    let _ = s.child.wait();
    proxy.restore();
    let s = Server::start(dir.path(), &cfg, &[]);
    s.wait_for("the spooled rows written", 30, |s| {
        s.get("/api/v1/system/database", None).json()["rows"].as_u64() == Some(500)
    });
    let n: i64 = admin
        .query_one(
            "SELECT COUNT(DISTINCT (symbol, timestamp)) FROM regime_history",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 500, "F's 400 rows and G's 100, each once");
}

/// Two outages in one run (database `regime_spool`): once the spooled rows are in the
/// store the spool is emptied, and the second outage's rows go to it too. Before, the spool
/// kept the first outage's rows (a restart wrote them a second time) and answered the second
/// outage's as spooled without writing them (a `kill -9` lost them: 50 acknowledged rows). A
/// spool left holding rows the store has (a stop between a commit and emptying it) is not
/// written twice.
#[test]
fn two_outages_in_one_run_lose_nothing_and_store_nothing_twice() {
    let Some((mut admin, proxy, cfg)) = behind_a_proxy(
        "two_outages_in_one_run_lose_nothing_and_store_nothing_twice",
        "regime_spool",
        "wait_at_start_secs: 4, retry_buffer_rows: 1000",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Some("dev-key-for-tests");
    let spool = dir.path().join("data/spool.jsonl");
    let rows = |s: &Server| s.get("/api/v1/system/database", None).json()["rows"].as_u64();
    let s = Server::start(dir.path(), &cfg, &[]);
    let r = s.post_json("/api/v1/bars", key, &json_bars("A", 100, 0));
    assert_eq!(r.json()["committed"], true, "{}", r.text());
    let outage = |s: &Server, body: &str| {
        proxy.cut();
        s.wait_for("the outage seen", 15, |s| {
            s.get("/api/v1/health", None).json()["database"] == "disconnected"
        });
        let r = s.post_json("/api/v1/bars", key, body);
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(r.json()["spooled"], true, "{}", r.text());
    };
    outage(&s, &json_bars("A", 100, 100));
    proxy.restore();
    s.wait_for("the first outage's rows written", 30, |s| {
        rows(s) == Some(200)
    });
    s.wait_for("the spool emptied", 10, |_| !spool.exists());
    outage(&s, &json_bars("B", 50, 0));
    let lines = std::fs::read_to_string(&spool).expect("the spool holds the second outage's rows");
    assert_eq!(lines.lines().count(), 50, "only the second outage's rows");
    // the retry buffer (1,000 rows) filled: a batch then is answered 503 at once (it waited
    // for the store, and the client saw a 408 after server.request_timeout_ms)
    let r = s.post_json("/api/v1/bars", key, &json_bars("C", 1000, 0));
    assert_eq!(r.json()["spooled"], true, "{}", r.text());
    s.wait_for("the retry buffer full", 10, |s| {
        s.get("/api/v1/system/database", None).json()["rows_buffered"].as_u64() == Some(1050)
    });
    let t = std::time::Instant::now();
    let r = s.post_json("/api/v1/bars", key, &json_bars("D", 10, 0));
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "store_unavailable");
    assert!(r.headers.contains_key("retry-after"));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    proxy.restore();
    s.wait_for("the second outage's rows written", 30, |s| {
        rows(s) == Some(1250)
    });
    s.wait_for("the spool emptied again", 10, |_| !spool.exists());
    // a stop between the commit and emptying the spool: the spool still holds stored rows
    let mut s = s;
    s.child.kill().unwrap();
    let _ = s.child.wait();
    drop(s);
    std::fs::write(&spool, &lines).unwrap();
    let s = Server::start(dir.path(), &cfg, &[]);
    let r = s.post_json("/api/v1/bars", key, &json_bars("A", 10, 200));
    assert_eq!(r.json()["committed"], true, "{}", r.text());
    let per_symbol: Vec<(String, i64, i64)> = admin
        .query(
            "SELECT symbol, COUNT(*), COUNT(DISTINCT timestamp) FROM regime_history \
             GROUP BY symbol ORDER BY symbol",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        per_symbol,
        [
            ("A".to_string(), 210, 210),
            ("B".to_string(), 50, 50),
            ("C".to_string(), 1000, 1000)
        ],
        "every acknowledged row, each once"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/system.log")).unwrap();
    assert!(log.contains("50 rows are in the store already"), "{log}");

    // rows the database refuses as data (here a constraint; before validation refused
    // them, a year PostgreSQL cannot hold) are set aside, not retried for ever: one such
    // row used to hold back every row queued after it, the store reported down for good
    admin
        .batch_execute(
            "ALTER TABLE regime_history ADD CONSTRAINT no_poison CHECK (symbol <> 'POISON')",
        )
        .unwrap();
    let both = format!(
        "[{},{}]",
        json_bars("E", 30, 0).trim_matches(['[', ']']),
        json_bars("POISON", 3, 0).trim_matches(['[', ']'])
    );
    let r = s.post_json("/api/v1/bars", key, &both);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["committed"], true, "{}", r.text());
    let r = s.post_json("/api/v1/bars", key, &json_bars("E", 10, 30));
    assert_eq!(r.json()["committed"], true, "{}", r.text());
    let mut n = |sym: &str| -> i64 {
        admin
            .query_one(
                "SELECT COUNT(*) FROM regime_history WHERE symbol = $1",
                &[&sym],
            )
            .unwrap()
            .get(0)
    };
    let counts = (n("E"), n("POISON"));
    assert_eq!(counts, (40, 0));
    let kept = std::fs::read_to_string(dir.path().join("data/unwritable.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 3, "{kept}");
    assert!(
        kept.contains("no_poison") && kept.contains("23514"),
        "{kept}"
    );
    assert_eq!(
        s.get("/api/v1/health", None).json()["database"],
        "connected"
    );
    let log = std::fs::read_to_string(dir.path().join("logs/error.log")).unwrap();
    assert!(log.contains("the store refused 3 rows as data"), "{log}");
}

/// Backup, point-in-time restore and restore on PostgreSQL (database `regime_backup`): the
/// binary `COPY` dump brings every column back exactly, and a point-in-time restore after a
/// restore comes from the backup taken after that time.
#[test]
fn backup_and_restores_on_postgres() {
    use regime_server::store::{HistoryQuery, Pg, Store};
    let Ok(base) = std::env::var("REGIME_TEST_PG") else {
        println!("SKIP backup_and_restores_on_postgres: REGIME_TEST_PG not set (.ci/run sets it)");
        return;
    };
    let url = format!("{base} dbname=regime_backup");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("config.yaml"),
        format!("storage: {{type: postgres, url: \"{url}\"}}\n"),
    )
    .unwrap();
    let mut pg = Pg::connect(&url).unwrap();
    drop(pg);
    {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute("DROP TABLE IF EXISTS regime_history; DROP TABLE IF EXISTS regime_meta")
            .unwrap();
    }
    pg = Pg::connect(&url).unwrap();
    let row = |sym: &str, i: usize| regime_server::store::HistoryRow {
        ts: 1_600_000_000_000 + i as i64 * 60_000,
        symbol: sym.to_string(),
        regime_id: (i % 18) as u8,
        volatility: ((i % 18) / 6) as u8,
        trend: (((i % 18) / 2) % 3) as u8,
        structure: (i % 2) as u8,
        confidence: 0.1 + (i % 9) as f64 / 10.0 + 1e-13,
        p_volatility: [0.2, 0.3 + 1e-15, 0.5],
        p_trend: [0.1, 0.1, 0.8],
        p_structure: [1.0 / 3.0, 2.0 / 3.0],
        model_version: i as u32,
    };
    let a: Vec<_> = (0..120).map(|i| row("AAA", i)).collect();
    let b: Vec<_> = (120..200).map(|i| row("AAA", i)).collect();
    pg.insert(&a).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = (now / 1000 + 1) * 1000;
    std::thread::sleep(std::time::Duration::from_millis((t - now + 100) as u64));
    let t_text = chrono::DateTime::from_timestamp_millis(t)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    pg.insert(&b).unwrap();
    let all = |pg: &mut Pg| {
        pg.history(&HistoryQuery {
            symbol: Some("AAA".into()),
            limit: 10_000,
            ..Default::default()
        })
        .unwrap()
    };
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_regime"))
            .args(args)
            .args(["--config", "config.yaml"])
            .current_dir(dir)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{args:?}: {out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    };
    let out = run(&["backup", "pb1"]);
    assert!(out.contains("200 rows"), "{out}");
    assert!(dir.join("backups/pb1/regime_history.pgcopy").is_file());

    let out = run(&["restore-to-time", &t_text]);
    assert!(out.contains("120 rows kept, 80 removed"), "{out}");
    assert_eq!(all(&mut pg), a);

    let out = run(&["restore", "pb1"]);
    assert!(out.contains("restored backup pb1: 200 rows"), "{out}");
    let mut want = a.clone();
    want.extend(b.clone());
    assert_eq!(all(&mut pg), want, "every column back exactly");

    // a restore happened after T: the state at T comes from pb1 (taken after T)
    let out = run(&["restore-to-time", &t_text]);
    assert!(
        out.contains("(from backup pb1)") && out.contains("120 rows kept"),
        "{out}"
    );
    assert_eq!(all(&mut pg), a);
}

/// The spool removed during an outage (an operator freeing space; database `regime_lost`):
/// the writer notices at its next append, says so, and writes every acknowledged row it still
/// holds to a new spool, so a `kill -9` then loses nothing. Before, later rows went to the
/// removed file and the earlier ones were not written again: all of them lost at the crash.
#[test]
fn a_spool_removed_during_an_outage_is_written_again() {
    let Some((mut admin, proxy, cfg)) = behind_a_proxy(
        "a_spool_removed_during_an_outage_is_written_again",
        "regime_lost",
        "wait_at_start_secs: 0",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Some("dev-key-for-tests");
    let spool = dir.path().join("data/spool.jsonl");
    let s = Server::start(dir.path(), &cfg, &[]);
    let r = s.post_json("/api/v1/bars", key, &json_bars("L", 100, 0));
    assert_eq!(r.json()["committed"], true, "{}", r.text());
    proxy.cut();
    s.wait_for("the outage seen", 15, |s| {
        s.get("/api/v1/health", None).json()["database"] == "disconnected"
    });
    let r = s.post_json("/api/v1/bars", key, &json_bars("L", 150, 0));
    assert_eq!(r.json()["spooled"], true, "{}", r.text());
    std::fs::remove_file(&spool).expect("the spool was written");
    let r = s.post_json("/api/v1/bars", key, &json_bars("L", 180, 0));
    assert_eq!(r.json()["spooled"], true, "{}", r.text());
    let held = std::fs::read_to_string(&spool).expect("a new spool");
    assert_eq!(
        held.lines().count(),
        80,
        "both batches of the outage, again"
    );
    let mut s = s;
    s.child.kill().unwrap();
    let _ = s.child.wait();
    drop(s);
    let log = std::fs::read_to_string(dir.path().join("logs/error.log")).unwrap();
    assert!(
        log.contains("the file was removed while it held acknowledged rows"),
        "{log}"
    );
    proxy.restore();
    let s = Server::start(dir.path(), &cfg, &[]);
    s.wait_for("every acknowledged row stored", 30, |s| {
        s.get("/api/v1/system/database", None).json()["rows"].as_u64() == Some(180)
    });
    let n: i64 = admin
        .query_one("SELECT COUNT(DISTINCT timestamp) FROM regime_history", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 180);
}
