//! Keep-alive connections to one upstream target (host:port).
//!
//! A connection goes back to the pool only once its response body has been read to the end
//! and the request body was all sent (`client::UpBody`); a response dropped half-read takes
//! its connection with it (HTTP/1 has no other way to abandon a response). Idle connections
//! are kept newest-first, at most [`PoolOptions::max_idle`] of them, each for at most
//! [`PoolOptions::idle_timeout`]. No task watches an idle connection: one the upstream has
//! closed (or sent anything on) shows as readable, which costs no system call to see, and
//! `take` drops it instead of using it; expired ones are dropped when a connection is put
//! back.
//!
//! Like nginx's `keepalive` pools, the idle connections are per worker: a worker only
//! reuses the connections it opened, and a request never hops threads (see [`set_worker`]).

use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use crate::client::Conn;

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
    conn: Box<Conn>,
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
    pub(crate) fn take(&self) -> Option<Box<Conn>> {
        let mut idle = self.lock();
        let now = crate::clock::now();
        while let Some(c) = idle.pop() {
            if now.saturating_duration_since(c.since) < self.opts.idle_timeout
                && c.conn.idle_usable()
            {
                return Some(c.conn);
            }
        }
        None
    }

    /// Keeps a connection whose last exchange is complete.
    pub(crate) fn put(&self, conn: Box<Conn>) {
        if self.opts.max_idle == 0 {
            return;
        }
        let mut idle = self.lock();
        let now = crate::clock::now();
        // Oldest first: the expired ones are a prefix. (Closed ones are found by `take`.)
        let expired = idle
            .iter()
            .position(|c| now.duration_since(c.since) < self.opts.idle_timeout)
            .unwrap_or(idle.len());
        idle.drain(..expired);
        if idle.len() < self.opts.max_idle {
            idle.push(Idle { conn, since: now });
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
