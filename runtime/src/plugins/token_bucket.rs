//! `kiln-token-bucket`: a Kiln plugin (not one of Kong's) for burst-tolerant rate limits:
//! an average rate plus a burst, the model of Envoy's `local_ratelimit` and Traefik's
//! `rateLimit` middleware, on `governor`'s GCRA (a token bucket without a refill timer).
//!
//! Each identifier (chosen by `limit_by` with Kong rate-limiting's rules and fallbacks) has a
//! bucket of `burst` tokens refilled at `average` per `period`; a request takes one token or
//! is refused with `error_code` (429) `error_message`, `Retry-After` and the
//! `RateLimit-Limit` / `RateLimit-Remaining` / `RateLimit-Reset` headers (IETF draft style)
//! unless `hide_client_headers`. Counters are local to the gateway process.
//!
//! Memory is bounded: identifiers are hashed to 64 bits with a per-process random key, and
//! the store holds at most `max_keys` of them in shards; a full shard first drops the
//! eighth of its entries whose buckets are the fullest (closest to a fresh bucket, so least
//! is lost), which includes every bucket already full again.
//!
//! The plugin is generic over `governor`'s clock so tests drive time with
//! [`governor::clock::FakeRelativeClock`]:
//!
//! ```
//! use governor::clock::FakeRelativeClock;
//! use kiln_runtime::plugins::token_bucket::{Config, TokenBucket};
//! let clock = FakeRelativeClock::default();
//! let plugin = TokenBucket::with_clock(Config { average: 5, ..Config::default() }, clock.clone())
//!     .expect("valid config");
//! # let _ = plugin;
//! clock.advance(std::time::Duration::from_secs(1));
//! ```

use std::{
    cell::Cell,
    collections::HashMap,
    future::Future,
    hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState},
    net::IpAddr,
    num::NonZeroU32,
    ops::ControlFlow,
    sync::Mutex,
    time::Duration,
};

use governor::{
    clock::{Clock, MonotonicClock, Reference},
    middleware::StateInformationMiddleware,
    nanos::Nanos,
    state::StateStore,
    Quota, RateLimiter,
};
use http::{header, HeaderName, HeaderValue};

use crate::{ctx::Ctx, gateway::StartupError, plugin::Plugin, response, Request, Response};

/// Which identifier a bucket belongs to: Kong rate-limiting's `limit_by`, with the same
/// fallbacks to the client IP.
pub use crate::plugins::rate_limiting::LimitBy;

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Tokens added per `period_secs` (required; ≥ 1).
    pub average: u32,
    /// Seconds (default 1).
    pub period_secs: u64,
    /// Bucket size (default `average`).
    pub burst: u32,
    pub limit_by: LimitBy,
    /// Most identifiers held at once (default 100000).
    pub max_keys: u32,
    /// Status of a refusal (default 429).
    pub error_code: u16,
    /// Message of a refusal (default `API rate limit exceeded`).
    pub error_message: &'static str,
    /// Send none of the rate-limit headers (default false).
    pub hide_client_headers: bool,
}

impl Default for Config {
    /// The defaults with `average: 1` (set `average`, and `burst` with it).
    fn default() -> Config {
        Config {
            average: 1,
            period_secs: 1,
            burst: 1,
            limit_by: LimitBy::Consumer,
            max_keys: DEFAULT_MAX_KEYS,
            error_code: 429,
            error_message: "API rate limit exceeded",
            hide_client_headers: false,
        }
    }
}

/// Default of `max_keys`.
pub const DEFAULT_MAX_KEYS: u32 = 100_000;
const SHARDS: usize = 64;

pub static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The `kiln-token-bucket` plugin, over clock `C` (the monotonic clock in gateways).
pub struct TokenBucket<C: Clock = MonotonicClock> {
    limiter: RateLimiter<u64, Store, C, StateInformationMiddleware>,
    clock: C,
    start: C::Instant,
    /// Nanoseconds per token.
    t: u64,
    burst: u32,
    limit_by: LimitBy,
    header: Option<HeaderName>,
    hasher: RandomState,
    error_code: u16,
    error_message: &'static str,
    hide_client_headers: bool,
}

impl<C: Clock> std::fmt::Debug for TokenBucket<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBucket")
            .field("t_nanos", &self.t)
            .field("burst", &self.burst)
            .field("limit_by", &self.limit_by)
            .finish_non_exhaustive()
    }
}

impl TokenBucket {
    /// Builds the plugin on the monotonic clock.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        TokenBucket::with_clock(config, MonotonicClock)
    }
}

fn err(msg: impl std::fmt::Display) -> StartupError {
    StartupError(format!("kiln-token-bucket: {msg}"))
}

impl<C: Clock + Clone> TokenBucket<C> {
    /// Builds the plugin on `clock` (tests pass a `FakeRelativeClock`).
    pub fn with_clock(config: Config, clock: C) -> Result<Self, StartupError> {
        let average =
            NonZeroU32::new(config.average).ok_or_else(|| err("average must be at least 1"))?;
        let burst = NonZeroU32::new(config.burst).ok_or_else(|| err("burst must be at least 1"))?;
        if config.period_secs == 0 {
            return Err(err("period must be at least 1 second"));
        }
        if config.max_keys == 0 {
            return Err(err("max_keys must be at least 1"));
        }
        let period = Duration::from_secs(config.period_secs);
        let per_token = period / average.get();
        let quota = Quota::with_period(per_token)
            .ok_or_else(|| err("average per period is more than one per nanosecond"))?
            .allow_burst(burst);
        let header = match config.limit_by {
            LimitBy::Header(h) => Some(
                HeaderName::from_bytes(h.as_bytes())
                    .map_err(|_| err(format!("{h:?} is not a header name")))?,
            ),
            _ => None,
        };
        let start = clock.now();
        let limiter: RateLimiter<u64, Store, C, StateInformationMiddleware> =
            RateLimiter::new(quota, Store::new(config.max_keys as usize), clock.clone());
        Ok(TokenBucket {
            limiter,
            clock,
            start,
            t: u64::try_from(per_token.as_nanos())
                .unwrap_or(u64::MAX)
                .max(1),
            burst: burst.get(),
            limit_by: config.limit_by,
            header,
            hasher: RandomState::new(),
            error_code: config.error_code,
            error_message: config.error_message,
            hide_client_headers: config.hide_client_headers,
        })
    }

    /// How many identifiers the store holds now.
    pub fn keys(&self) -> usize {
        self.limiter.len()
    }

    /// The identifier of this request, hashed (Kong rate-limiting's `get_identifier`).
    fn key(&self, cx: &Ctx, req: &Request) -> u64 {
        #[derive(Hash)]
        enum Id<'a> {
            Ip(IpAddr),
            Consumer(u32),
            Credential(&'a str),
            Service(u32),
            Header(&'a [u8]),
            Path,
        }
        let id = match self.limit_by {
            LimitBy::Consumer => cx
                .auth
                .consumer
                .map(Id::Consumer)
                .or_else(|| cx.auth.credential.as_deref().map(Id::Credential)),
            LimitBy::Credential => cx.auth.credential.as_deref().map(Id::Credential),
            LimitBy::Ip => None,
            LimitBy::Service => cx.route.service.map(Id::Service),
            LimitBy::Header(_) => self
                .header
                .as_ref()
                .and_then(|h| req.headers().get(h))
                .map(|v| Id::Header(v.as_bytes())),
            LimitBy::Path(p) => (cx.normalized_path == p).then_some(Id::Path),
        };
        let id = id.unwrap_or(Id::Ip(
            crate::plugins::ip_restriction::IpRestriction::client_ip(cx),
        ));
        self.hasher.hash_one(id)
    }

    fn now(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_u64()
    }

    /// One request of identifier `key`: `Ok` with (remaining, reset seconds) or `Err` with
    /// (retry-after seconds, reset seconds).
    fn take(&self, key: u64) -> Result<(u32, u64), (u64, u64)> {
        let outcome = self.limiter.check_key(&key);
        let tat = LAST_TAT.get();
        let now = self.now();
        // The bucket is full again at the theoretical arrival time.
        let reset = ceil_secs(tat.saturating_sub(now)).max(1);
        match outcome {
            Ok(snapshot) => Ok((snapshot.remaining_burst_capacity(), reset)),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let retry = ceil_secs(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
                Err((retry.max(1), reset))
            }
        }
    }
}

fn ceil_secs(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

fn set_headers(headers: &mut http::HeaderMap, (limit, remaining, reset): (u32, u32, u64)) {
    headers.insert(&RATELIMIT_LIMIT, HeaderValue::from(limit));
    headers.insert(&RATELIMIT_REMAINING, HeaderValue::from(remaining));
    headers.insert(&RATELIMIT_RESET, HeaderValue::from(reset));
}

impl<C> Plugin for TokenBucket<C>
where
    C: Clock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    const NAME: &'static str = "kiln-token-bucket";
    /// Right after Kong's rate-limiting (910), before response-ratelimiting (900).
    const PRIORITY: i32 = 909;
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        let key = self.key(cx, req);
        let flow = match self.take(key) {
            Ok((remaining, reset)) => {
                if !self.hide_client_headers {
                    cx.token_bucket_headers = Some((self.burst, remaining, reset));
                }
                ControlFlow::Continue(())
            }
            Err((retry, reset)) => {
                cx.kong_generated = true;
                let mut resp = response::error(
                    self.error_code,
                    Some(self.error_message),
                    &cx.request_id,
                    req.headers(),
                );
                if !self.hide_client_headers {
                    let values = (self.burst, 0, reset);
                    cx.token_bucket_headers = Some(values);
                    set_headers(resp.headers_mut(), values);
                    resp.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(retry));
                }
                ControlFlow::Break(resp)
            }
        };
        std::future::ready(flow)
    }

    fn header_filter(&self, cx: &mut Ctx, resp: &mut Response) {
        if let Some(values) = cx.token_bucket_headers {
            set_headers(resp.headers_mut(), values);
        }
    }
}

thread_local! {
    /// The theoretical arrival time the last `measure_and_replace` on this thread stored (or
    /// found, on a refusal): `check_key` runs the store synchronously on the caller's thread,
    /// so the plugin reads it right after to compute `RateLimit-Reset`.
    static LAST_TAT: Cell<u64> = const { Cell::new(0) };
}

/// Keys are already random 64-bit hashes: the maps use them as they are.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, u64, BuildHasherDefault<KeyHasher>>;

/// A bounded keyed state store for `governor`: identifier hash → theoretical arrival time,
/// in mutex-guarded shards of at most `cap` entries each.
struct Store {
    shards: Box<[Mutex<Shard>]>,
    cap: usize,
}

impl Store {
    fn new(max_keys: usize) -> Store {
        // Shards of at least 256 keys, so eviction picks among enough buckets.
        let n = (max_keys / 256).clamp(1, SHARDS);
        Store {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            cap: (max_keys / n).max(1),
        }
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Shard> {
        // High bits pick the shard; the map uses the whole hash.
        let i = ((key >> 32) as usize) % self.shards.len();
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room in a full shard: drops the eighth (at least one) of its entries with the
    /// earliest arrival times, i.e. the fullest buckets, whose state is closest to a fresh one.
    fn evict(shard: &mut Shard, cap: usize) {
        let k = (cap / 8).max(1).min(shard.len());
        if k == 0 {
            return;
        }
        // Exactly k entries, even when many share one arrival time (a burst in one tick).
        let mut entries: Vec<(u64, u64)> = shard.iter().map(|(key, tat)| (*tat, *key)).collect();
        entries.select_nth_unstable(k - 1);
        for (_, key) in &entries[..k] {
            shard.remove(key);
        }
    }
}

impl StateStore for Store {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut shard = self.shard(*key);
        let old = shard.get(key).copied();
        match f(old.map(Nanos::new)) {
            Ok((out, tat)) => {
                if old.is_none() && shard.len() >= self.cap {
                    Store::evict(&mut shard, self.cap);
                }
                shard.insert(*key, tat.as_u64());
                LAST_TAT.set(tat.as_u64());
                Ok(out)
            }
            Err(e) => {
                LAST_TAT.set(old.unwrap_or(0));
                Err(e)
            }
        }
    }
}

impl governor::state::keyed::ShrinkableKeyedStateStore<u64> for Store {
    fn retain_recent(&self, drop_below: Nanos) {
        for s in self.shards.iter() {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            s.retain(|_, tat| *tat >= drop_below.as_u64());
        }
    }

    fn shrink_to_fit(&self) {
        for s in self.shards.iter() {
            s.lock().unwrap_or_else(|p| p.into_inner()).shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
