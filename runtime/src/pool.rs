//! Keep-alive connections to one upstream target (host:port), on hyper's low-level
//! `client::conn::http1`.
//!
//! A connection goes back to the pool only once its response body has been read to the end
//! (`PooledBody`); a response dropped half-read takes its connection with it (HTTP/1 has no
//! other way to abandon a response). Idle connections are kept newest-first, at most
//! [`PoolOptions::max_idle`] of them, each for at most [`PoolOptions::idle_timeout`]; closed
//! or expired ones are dropped when the pool is next used. An idle connection also closes
//! when the upstream closes it, or when the service's `read_timeout` passes with no traffic
//! (see `timed_io`).
//!
//! Like nginx's `keepalive` pools, the idle connections are per worker: a connection's
//! driver task runs on the worker that opened it, so a worker only reuses its own
//! connections and a request never hops threads (see [`set_worker`]).

use std::{
    cell::Cell,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::{body::Incoming, client::conn::http1::SendRequest};

use crate::{Body, BoxError};

/// Pool limits, per target.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Most idle connections kept (Kong's `upstream_keepalive_pool_size`, default 512;
    /// 0 disables keep-alive).
    pub max_idle: usize,
    /// Longest time a connection stays idle (Kong's `upstream_keepalive_idle_timeout`, 60 s).
    pub idle_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_idle: 512,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Workers of this process (`KILN_WORKERS`); pools built afterwards get one shard each.
static WORKERS: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Sets how many workers the process runs; call before the gateway builds its upstreams.
pub fn set_workers(n: usize) {
    WORKERS.store(n.max(1), Ordering::Relaxed);
}

/// Marks the calling thread as worker `i` (0 for threads that were never marked).
pub fn set_worker(i: usize) {
    WORKER.with(|w| w.set(i));
}

struct Idle {
    tx: SendRequest<Body>,
    since: Instant,
}

/// The idle connections of one target, one list per worker.
pub(crate) struct Pool {
    shards: Box<[Mutex<Vec<Idle>>]>,
    opts: PoolOptions,
}

impl Pool {
    pub(crate) fn new(opts: PoolOptions) -> Pool {
        let n = WORKERS.load(Ordering::Relaxed).max(1);
        Pool {
            shards: (0..n).map(|_| Mutex::new(Vec::new())).collect(),
            opts,
        }
    }

    /// The calling worker's list. Only that worker uses it, so the lock is never contended
    /// (threads that are not workers, as in tests, share list 0).
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        let i = WORKER.with(Cell::get) % self.shards.len();
        // A panic while holding this lock cannot leave the Vec inconsistent.
        self.shards[i]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most recently used idle connection that is still open and not expired.
    pub(crate) fn take(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.lock();
        while let Some(conn) = idle.pop() {
            if !conn.tx.is_closed() && conn.since.elapsed() < self.opts.idle_timeout {
                return Some(conn.tx);
            }
        }
        None
    }

    /// Returns a connection whose last response was read to the end.
    pub(crate) fn put(&self, tx: SendRequest<Body>) {
        if tx.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let timeout = self.opts.idle_timeout;
        idle.retain(|c| !c.tx.is_closed() && c.since.elapsed() < timeout);
        if idle.len() < self.opts.max_idle {
            idle.push(Idle {
                tx,
                since: Instant::now(),
            });
        }
    }

    /// Idle connections currently held (tests, metrics).
    #[allow(dead_code)]
    pub(crate) fn idle_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

/// An upstream response body that gives its connection back to the pool once read to the end.
pub(crate) struct PooledBody {
    inner: Incoming,
    release: Option<(SendRequest<Body>, Arc<Pool>)>,
}

impl PooledBody {
    pub(crate) fn new(inner: Incoming, tx: SendRequest<Body>, pool: Arc<Pool>) -> PooledBody {
        PooledBody {
            inner,
            release: Some((tx, pool)),
        }
    }

    fn release(&mut self) {
        if let Some((tx, pool)) = self.release.take() {
            pool.put(tx);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.inner.is_end_stream() {
                    this.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                // A broken connection never goes back.
                this.release = None;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // The server may stop polling once `is_end_stream` is true (e.g. an empty body).
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}
