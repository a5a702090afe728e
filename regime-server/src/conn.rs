//! The service's connections: bounded in number, and closed when idle.
//!
//! `axum::serve` accepts every connection and keeps it as long as the client does: a client
//! that opened connections and never closed them (a leaking pool, a half-written request
//! head) held them for ever, up to the process's file limit — past which the store, the
//! logs and the saved states could not open a file — and a SIGTERM's drain waited on such a
//! connection without end (measured: a request head left unfinished kept `regime serve`
//! running after SIGTERM until the client went away). [`Bounded`] holds at most
//! `server.max_connections` (a new one waits in the kernel's backlog until one closes) and
//! closes a connection on which nothing is read or written for `server.idle_timeout_secs`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;

/// File descriptors kept for everything but connections (the store and its WAL, logs,
/// state and model files, backups' reads) where the limit allows; half of a smaller limit.
const FDS_KEPT: u64 = 256;

/// The connections to hold: `configured`, but no more than the file limit leaves beside
/// the 256 files kept for the rest. The soft limit is first raised to the hard one (the default soft limit of
/// many systems is 1024), as most servers do. Returns the cap and the limit in force.
pub fn connection_cap(configured: usize) -> (usize, Option<u64>) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum || (lim.current.is_some() && lim.maximum.is_none()) {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            lim = raised;
        }
    }
    (cap_for(configured, lim.current), lim.current)
}

/// [`connection_cap`]'s arithmetic: `configured`, at most the `limit` less what is kept.
fn cap_for(configured: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return configured;
    };
    let kept = FDS_KEPT.min(limit / 2);
    let room = usize::try_from(limit.saturating_sub(kept)).unwrap_or(usize::MAX);
    configured.min(room).max(1)
}

/// A listener that holds at most `max` connections, each closed after `idle` without a byte
/// read or written.
#[derive(Debug)]
pub struct Bounded {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    idle: Duration,
    /// Connections open now.
    open: Arc<std::sync::atomic::AtomicUsize>,
}

impl Bounded {
    /// Wrap a bound listener.
    pub fn new(listener: TcpListener, max: usize, idle: Duration) -> Self {
        Bounded {
            listener,
            permits: Arc::new(Semaphore::new(max.max(1))),
            idle,
            open: Arc::default(),
        }
    }

    /// Connections open now.
    pub fn open_count(&self) -> Arc<std::sync::atomic::AtomicUsize> {
        self.open.clone()
    }
}

/// One accepted connection: its deadlines, and its place among the `max` (given back when
/// the connection is dropped).
#[derive(Debug)]
pub struct Conn {
    io: Pin<Box<TimeoutStream<TcpStream>>>,
    _permit: OwnedSemaphorePermit,
    open: Arc<std::sync::atomic::AtomicUsize>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl axum::serve::Listener for Bounded {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        // the semaphore is never closed: acquiring fails only if it were
        let permit = loop {
            if let Ok(p) = self.permits.clone().acquire_owned().await {
                break p;
            }
        };
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    // small JSON answers go out at once, not after Nagle's delay
                    let _ = stream.set_nodelay(true);
                    let mut io = TimeoutStream::new(stream);
                    io.set_read_timeout(Some(self.idle));
                    io.set_write_timeout(Some(self.idle));
                    self.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let conn = Conn {
                        io: Box::pin(io),
                        _permit: permit,
                        open: self.open.clone(),
                    };
                    return (conn, addr);
                }
                Err(e) if connection_error(&e) => {}
                Err(e) => {
                    // out of file descriptors, most likely: wait, as axum's own listener does
                    tracing::error!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Errors of the one connection being accepted (the next accept is unaffected).
fn connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.io.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_files_for_the_store_and_logs() {
        assert_eq!(cap_for(1024, None), 1024);
        assert_eq!(cap_for(1024, Some(65_536)), 1024);
        assert_eq!(cap_for(1024, Some(1024)), 768);
        assert_eq!(cap_for(1024, Some(300)), 150);
        assert_eq!(cap_for(10, Some(1)), 1);
    }
}
