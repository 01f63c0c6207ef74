//! The memory strategy: one bounded `quick_cache` per `memory.dictionary_name` (Kong's
//! shared dict), the clock its expiry reads, and the in-flight table that coalesces
//! concurrent misses for one key into one upstream request.

use std::{
    collections::HashMap,
    hash::{Hash, Hasher},
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use quick_cache::{sync::Cache, Weighter};
use tokio::sync::watch;

use crate::{Body, BoxError};

/// A stored response (Kong's `res` table).
#[derive(Debug, Clone)]
pub struct Entry {
    pub status: StatusCode,
    /// Response headers as stored: hop-by-hop, `Content-Length`, `*ratelimit-remaining*`
    /// and the cache's own headers removed.
    pub headers: Arc<HeaderMap>,
    pub body: Bytes,
    /// Clock time of storing, ms.
    pub stored_ms: u64,
    /// The resource TTL (s): `cache_ttl`, or with `cache_control` the response's.
    pub ttl: u64,
    /// Clock time after which the entry is gone (storage TTL), ms.
    pub expires_ms: u64,
}

impl Entry {
    /// Bytes this entry holds, for the memory budget.
    pub fn weight(&self, key_len: usize) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 32)
            .sum();
        (key_len + self.body.len() + headers + 128) as u64
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct EntryWeighter;

impl Weighter<String, Entry> for EntryWeighter {
    fn weight(&self, key: &String, val: &Entry) -> u64 {
        val.weight(key.len())
    }
}

const FLIGHT_SHARDS: usize = 16;

/// One dictionary: entries, clock and in-flight fetches.
pub struct Store {
    cache: Cache<String, Entry, EntryWeighter>,
    capacity: AtomicU64,
    /// Monotonic base of the clock.
    base: Instant,
    /// Wall-clock ms at `base` (for `Expires`).
    base_wall_ms: u64,
    /// Added to the clock; moved only by tests ([`advance_clock`]).
    offset_ms: AtomicU64,
    flights: [Mutex<HashMap<String, watch::Receiver<()>>>; FLIGHT_SHARDS],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("entries", &self.cache.len())
            .field("weight", &self.cache.weight())
            .field("capacity", &self.capacity.load(Ordering::Relaxed))
            .finish()
    }
}

/// What a lookup for a key that is not stored decided.
pub enum Flight {
    /// This request fetches; the guard wakes the waiters when dropped.
    Leader(FlightGuard),
    /// Another request is fetching: wait on this.
    Follower(watch::Receiver<()>),
}

/// Held by the request that fetches a key; dropping it (response stored, found
/// uncacheable, body failed, client gone) wakes every request waiting for that key.
pub struct FlightGuard {
    store: Arc<Store>,
    key: String,
    _done: watch::Sender<()>,
}

impl std::fmt::Debug for FlightGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightGuard")
            .field("key", &self.key)
            .finish()
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let shard = self.store.flight_shard(&self.key);
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&self.key);
        // `_done` drops after the entry is gone: waiters see the channel closed.
    }
}

impl Store {
    /// A store holding at most `capacity` bytes (as weighed by [`Entry::weight`]).
    pub fn new(capacity: u64) -> Store {
        let capacity = capacity.max(1);
        let estimated_items = usize::try_from(capacity / 4096)
            .unwrap_or(usize::MAX)
            .clamp(64, 1 << 20);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Store {
            cache: Cache::with_weighter(estimated_items, capacity, EntryWeighter),
            capacity: AtomicU64::new(capacity),
            base: Instant::now(),
            base_wall_ms: wall,
            offset_ms: AtomicU64::new(0),
            flights: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }

    /// Clock time, ms (monotonic since the store was made, plus any test offset).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Wall-clock seconds since the epoch, on the same clock (`ngx.time()` for `Expires`).
    pub fn wall_secs(&self) -> u64 {
        self.base_wall_ms.saturating_add(self.now_ms()) / 1000
    }

    /// Moves the clock forward (tests).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// The fresh entry for `key`; an entry past its storage TTL is removed and not returned.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let e = self.cache.get(key)?;
        let now = self.now_ms();
        if now >= e.expires_ms {
            // Only if still expired: a fresh entry stored meanwhile stays.
            self.cache.remove_if(key, |e| now >= e.expires_ms);
            return None;
        }
        Some(e)
    }

    /// Stores `entry` (dropped by the cache when heavier than its share of the budget).
    pub fn insert(&self, key: String, entry: Entry) {
        self.cache.insert(key, entry);
    }

    /// Bytes held now, and the budget.
    pub fn usage(&self) -> (u64, u64) {
        (self.cache.weight(), self.capacity.load(Ordering::Relaxed))
    }

    /// Raises the budget to at least `capacity`.
    fn grow(&self, capacity: u64) {
        if capacity > self.capacity.fetch_max(capacity, Ordering::Relaxed) {
            self.cache.set_capacity(capacity);
        }
    }

    fn flight_shard(&self, key: &str) -> &Mutex<HashMap<String, watch::Receiver<()>>> {
        // Fixed keys: the shard of a key must be the same on every call.
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        &self.flights[(h.finish() as usize) % FLIGHT_SHARDS]
    }

    /// Joins the fetch in progress for `key`, or becomes its fetcher.
    pub fn join(self: &Arc<Self>, key: &str) -> Flight {
        let shard = self.flight_shard(key);
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(key) {
            return Flight::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(());
        map.insert(key.to_owned(), rx);
        Flight::Leader(FlightGuard {
            store: self.clone(),
            key: key.to_owned(),
            _done: tx,
        })
    }
}

/// Waits until the fetch `rx` belongs to ends, at most `limit`.
pub async fn wait(mut rx: watch::Receiver<()>, limit: Duration) {
    // The sender never sends: `changed` returns once it is dropped.
    let _ = tokio::time::timeout(limit, async { while rx.changed().await.is_ok() {} }).await;
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Store>>> {
    static R: OnceLock<Mutex<HashMap<String, Arc<Store>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// The store of dictionary `name`, made on first use with `capacity` bytes; instances
/// naming the same dictionary share it (its budget is the largest any of them asks for).
pub fn dictionary(name: &str, capacity: u64) -> Arc<Store> {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    let store = r
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Store::new(capacity)))
        .clone();
    store.grow(capacity);
    store
}

/// Bytes held and budget of dictionary `name`, if a plugin instance made it.
pub fn dictionary_usage(name: &str) -> Option<(u64, u64)> {
    let r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.get(name).map(|s| s.usage())
}

/// Moves the clock of dictionary `name` forward: how tests reach expiry without
/// sleeping. Production code never calls it.
#[doc(hidden)]
pub fn advance_clock(name: &str, by: Duration) -> bool {
    let r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.get(name).map(|s| s.advance(by)).is_some()
}

/// What to store once the body has been read to its end.
pub struct Pending {
    pub store: Arc<Store>,
    pub key: String,
    pub status: StatusCode,
    pub headers: Arc<HeaderMap>,
    pub ttl: u64,
    pub storage_ttl: u64,
    pub max_bytes: usize,
    pub flight: Option<FlightGuard>,
}

/// The response body as streamed to the client, copied into a buffer on the way; at the
/// end of a complete body within `max_bytes` the copy is stored. Never holds a chunk back.
pub struct Tee {
    inner: Body,
    buf: BytesMut,
    pending: Option<Pending>,
}

impl Tee {
    pub fn new(inner: Body, pending: Pending) -> Tee {
        Tee {
            inner,
            buf: BytesMut::new(),
            pending: Some(pending),
        }
    }

    /// Stores what was read so far (nothing, for a body that will not be read).
    pub fn store_now(&mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            let now = p.store.now_ms();
            let entry = Entry {
                status: p.status,
                headers: p.headers,
                body: std::mem::take(&mut self.buf).freeze(),
                stored_ms: now,
                ttl: p.ttl,
                expires_ms: now.saturating_add(p.storage_ttl.saturating_mul(1000)),
            };
            p.store.insert(p.key, entry);
            // `p.flight` drops here, after the insert: waiters find the entry.
        }
    }
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(p)) = (frame.data_ref(), &this.pending) {
                    if this.buf.len() + data.len() > p.max_bytes {
                        // Too large to keep: stop copying, let waiters go upstream now.
                        this.pending = None;
                        this.buf = BytesMut::new();
                    } else {
                        this.buf.extend_from_slice(data);
                    }
                }
                if this.pending.is_some() && this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.pending = None;
                this.buf = BytesMut::new();
            }
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
