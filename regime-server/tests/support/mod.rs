//! Test support: start the real `regime serve` binary on a loopback port and talk HTTP/1.1 to
//! it over a plain TCP socket (no client library, so nothing hides what goes over the wire).

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Run `cmd` to its end: (exit code, stdout then stderr as text).
pub fn run_text(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// A running server.
pub struct Server {
    pub child: Child,
    pub addr: String,
    pub dir: PathBuf,
    pub stdout_lines: mpsc::Receiver<String>,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl Server {
    /// Start `regime serve --config dir/config.yaml --bind 127.0.0.1:0` in `dir`.
    pub fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Server {
        Self::start_exe(Path::new(env!("CARGO_BIN_EXE_regime")), dir, config, env)
    }

    /// [`Server::start`] with the binary `exe` (a copy of the one built: a deploy).
    pub fn start_exe(exe: &Path, dir: &Path, config: &str, env: &[(&str, &str)]) -> Server {
        std::fs::write(dir.join("config.yaml"), config).expect("write config");
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--config", "config.yaml", "--bind", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("DRY_RUN")
            .env_remove("SAFE_MODE")
            .env("REGIME_DEV_KEY", "dev-key-for-tests")
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(dir.join("stderr.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            );
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn regime serve");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("regime serving on http://") {
                        break a.trim().to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "regime serve did not start within 30 s in {}",
                        dir.display()
                    );
                }
            }
        };
        Server {
            child,
            addr,
            dir: dir.to_path_buf(),
            stdout_lines: rx,
        }
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Resp {
        let h: Vec<(&str, &str)> = key.map(|k| vec![("X-API-Key", k)]).unwrap_or_default();
        request(&self.addr, "GET", path, &h, b"")
    }

    pub fn post_json(&self, path: &str, key: Option<&str>, body: &str) -> Resp {
        let mut h = vec![("Content-Type", "application/json")];
        let auth;
        if let Some(k) = key {
            auth = format!("Bearer {k}");
            h.push(("Authorization", auth.as_str()));
        }
        request(&self.addr, "POST", path, &h, body.as_bytes())
    }

    /// Wait until `f` holds (polling), or panic with `what`.
    pub fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {secs} s waiting for {what}");
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Wait for the process to exit; its exit code.
    pub fn wait_exit(&mut self, secs: u64) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("server did not exit within {secs} s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += &format!("Content-Length: {}\r\n\r\n", body.len());
    s.write_all(req.as_bytes()).expect("write head");
    // a server may answer (413) before reading the whole body; ignore a reset while sending
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let mut headers = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = raw[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..p]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < p + 2 + n {
            break;
        }
        out.extend_from_slice(&b[p + 2..p + 2 + n]);
        b = &b[(p + 4 + n).min(b.len())..];
    }
    out
}

/// `n` valid JSON bars for `symbol`, daily from `day0` (days since epoch), a gentle random walk.
pub fn json_bars(symbol: &str, n: usize, day0: i64) -> String {
    let mut rows = Vec::with_capacity(n);
    let mut c = 100.0f64;
    for i in 0..n {
        let o = c;
        let u = ((i as u64).wrapping_mul(2654435761) % 1000) as f64 / 1000.0 - 0.5;
        c *= 1.0 + 0.02 * u;
        let (h, l) = (o.max(c) * 1.003, o.min(c) * 0.997);
        rows.push(format!(
            "{{\"symbol\":\"{symbol}\",\"timestamp\":{},\"open\":{o:.5},\"high\":{h:.5},\"low\":{l:.5},\"close\":{c:.5},\"volume\":{}}}",
            (day0 + i as i64) * 86_400,
            1000 + (i % 17) * 10
        ));
    }
    format!("[{}]", rows.join(","))
}

/// SHA-256 hex of a key, as `auth.keys[].sha256` wants it.
pub fn sha(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
