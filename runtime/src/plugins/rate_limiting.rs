//! Kong's `rate-limiting` plugin (kong-compat.md §4.7): fixed, calendar-aligned UTC windows
//! per second, minute, hour, day, month and year; counters kept locally (`policy: local`,
//! [`store`]) or in Redis (`policy: redis`, the `redis` cargo feature) and keyed as Kong
//! keys them: `ratelimit:<route_id>:<service_id>:<identifier>:<window start ms>:<period>`,
//! the ids being those of where the instance is attached.
//!
//! ```
//! use kiln_runtime::plugins::rate_limiting::{Config, Period, RateLimiting};
//!
//! let plugin = RateLimiting::new(Config {
//!     limits: &[(Period::Minute, 6)],
//!     ..Config::new(&[], &[])
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

pub mod clock;
#[cfg(feature = "redis")]
pub mod redis;
pub mod store;
pub mod window;

use std::{
    borrow::Cow, future::Future, hash::Hasher, net::IpAddr, ops::ControlFlow, sync::OnceLock,
};

use http::{HeaderMap, HeaderName, HeaderValue};

pub use clock::{Clock, ManualClock};
pub use window::Period;

use crate::{
    consumer::ConsumerSpec,
    ctx::Ctx,
    gateway::ServiceSpec,
    plugin::Plugin,
    plugins::ip_restriction::IpRestriction,
    response,
    upstream_head::{self, LineName, UpstreamHead},
    Request, Response, StartupError,
};
use store::{Acquire, Counters};

/// What requests are counted by (Kong's `limit_by`); every variant falls back to the
/// client IP when its value is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitBy {
    /// Consumer id, else credential id, else client IP.
    Consumer,
    /// Credential id, else client IP.
    Credential,
    /// Client IP.
    Ip,
    /// The matched service's id.
    Service,
    /// The value of this request header.
    Header(&'static str),
    /// The normalized request path when it equals this path.
    Path(&'static str),
}

/// Redis connection settings (`policy: redis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisConfig {
    pub host: &'static str,
    pub port: u16,
    pub username: Option<crate::secret::Secret>,
    pub password: Option<crate::secret::Secret>,
    pub database: i64,
    /// Bound of every Redis call (connect included), milliseconds.
    pub timeout_ms: u64,
}

/// Where counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Local,
    Redis(RedisConfig),
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Limits by period, shortest period first (at least one; a longer period's limit is
    /// not lower than a shorter one's).
    pub limits: &'static [(Period, u64)],
    pub limit_by: LimitBy,
    pub policy: Policy,
    /// On a Redis failure: let the request through (true) or answer 500 (false).
    pub fault_tolerant: bool,
    pub hide_client_headers: bool,
    pub error_code: u16,
    pub error_message: &'static str,
    /// Id of the route the instance is attached to (zeros when none).
    pub route_id: &'static str,
    /// Id of the service the instance is attached to (zeros when none).
    pub service_id: &'static str,
    /// The gateway's services (`limit_by: service`).
    pub services: &'static [ServiceSpec],
    /// The gateway's consumers (`limit_by: consumer`).
    pub consumers: &'static [ConsumerSpec],
}

/// Kong's id for "not attached to a route/service".
pub const NO_ID: &str = "00000000-0000-0000-0000-000000000000";

impl Config {
    /// Kong's defaults (no limits: set `limits`).
    pub const fn new(
        services: &'static [ServiceSpec],
        consumers: &'static [ConsumerSpec],
    ) -> Config {
        Config {
            limits: &[],
            limit_by: LimitBy::Consumer,
            policy: Policy::Local,
            fault_tolerant: true,
            hide_client_headers: false,
            error_code: 429,
            error_message: "API rate limit exceeded",
            route_id: NO_ID,
            service_id: NO_ID,
            services,
            consumers,
        }
    }
}

/// One period's usage as the decision saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub period: Period,
    pub limit: u64,
    /// Requests counted in the window before this one.
    pub used: u64,
}

/// The headers a decision shows (kept on the [`Ctx`] for `header_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shown {
    /// `(period, limit, shown remaining)`, shortest period first.
    pub periods: [Option<(Period, u64, u64)>; 6],
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
    pub limit: u64,
    pub remaining: u64,
    pub reset: i64,
}

/// Kong's header computation: remaining shown as `max(0, limit - used - 1)` for every
/// period when the request passes, and for the blocking period (`stop`) only when it does
/// not; `RateLimit-*` describe the period with the smallest shown remaining (ties: the
/// longer window); reset = `max(1, window seconds - seconds since the window started)`.
pub fn shown(usages: &[Usage], stop: Option<Period>, now_s: i64) -> Shown {
    let mut out = Shown::default();
    let mut best: Option<(u64, i64)> = None;
    for (i, u) in usages.iter().enumerate().take(6) {
        let mut remaining = u.limit as i128 - u.used as i128;
        if stop.is_none() || stop == Some(u.period) {
            remaining -= 1;
        }
        let remaining = remaining.max(0) as u64;
        let window = u.period.seconds();
        if best.is_none_or(|(r, w)| remaining < r || (remaining == r && window > w)) {
            best = Some((remaining, window));
            out.limit = u.limit;
            out.remaining = remaining;
            out.reset = (window - (now_s - u.period.window_start(now_s))).max(1);
        }
        out.periods[i] = Some((u.period, u.limit, remaining));
    }
    out
}

/// `(X-RateLimit-Limit-<Period>, X-RateLimit-Remaining-<Period>)`, indexed by period (a
/// `static`: indexing a `const` array builds and drops all twelve names each time).
static PERIOD_HEADERS: [(HeaderName, HeaderName); 6] = [
    (
        HeaderName::from_static("x-ratelimit-limit-second"),
        HeaderName::from_static("x-ratelimit-remaining-second"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-minute"),
        HeaderName::from_static("x-ratelimit-remaining-minute"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-hour"),
        HeaderName::from_static("x-ratelimit-remaining-hour"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-day"),
        HeaderName::from_static("x-ratelimit-remaining-day"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-month"),
        HeaderName::from_static("x-ratelimit-remaining-month"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-year"),
        HeaderName::from_static("x-ratelimit-remaining-year"),
    ),
];

/// [`PERIOD_HEADERS`] in Kong's spelling, for headers written as lines.
const PERIOD_SPELLED: [(&str, &str); 6] = [
    ("X-RateLimit-Limit-Second", "X-RateLimit-Remaining-Second"),
    ("X-RateLimit-Limit-Minute", "X-RateLimit-Remaining-Minute"),
    ("X-RateLimit-Limit-Hour", "X-RateLimit-Remaining-Hour"),
    ("X-RateLimit-Limit-Day", "X-RateLimit-Remaining-Day"),
    ("X-RateLimit-Limit-Month", "X-RateLimit-Remaining-Month"),
    ("X-RateLimit-Limit-Year", "X-RateLimit-Remaining-Year"),
];

/// The headers' names as lines ([`UpstreamHead::insert_field`]).
#[derive(Debug)]
struct LineNames {
    /// Indexed by period, like [`PERIOD_HEADERS`].
    periods: Vec<(LineName, LineName)>,
    limit: LineName,
    remaining: LineName,
    reset: LineName,
}

impl LineNames {
    fn new() -> Option<LineNames> {
        let mut periods = Vec::with_capacity(PERIOD_SPELLED.len());
        for (l, r) in PERIOD_SPELLED {
            periods.push((LineName::new(l)?, LineName::new(r)?));
        }
        Some(LineNames {
            periods,
            limit: LineName::new("RateLimit-Limit")?,
            remaining: LineName::new("RateLimit-Remaining")?,
            reset: LineName::new("RateLimit-Reset")?,
        })
    }

    /// Made on first use, shared by every instance.
    fn shared() -> Option<&'static LineNames> {
        static NAMES: OnceLock<Option<LineNames>> = OnceLock::new();
        NAMES.get_or_init(LineNames::new).as_ref()
    }
}

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

use crate::response::number_value;

impl Shown {
    /// Writes the headers (with `Retry-After` when `retry_after`).
    pub fn apply(&self, h: &mut HeaderMap, retry_after: bool) {
        h.reserve(2 * self.periods.iter().flatten().count() + 4);
        for (p, limit, remaining) in self.periods.iter().flatten() {
            let (l, r) = PERIOD_HEADERS[*p as usize].clone();
            h.insert(l, number_value(*limit));
            h.insert(r, number_value(*remaining));
        }
        h.insert(RATELIMIT_LIMIT, number_value(self.limit));
        h.insert(RATELIMIT_REMAINING, number_value(self.remaining));
        let reset = number_value(self.reset.max(1) as u64);
        if retry_after {
            h.insert(http::header::RETRY_AFTER, reset.clone());
        }
        h.insert(RATELIMIT_RESET, reset);
    }
}

/// The counter key Kong uses (local shm and Redis).
pub fn counter_key(
    route_id: &str,
    service_id: &str,
    identifier: &str,
    window_start_ms: i64,
    period: Period,
) -> String {
    format!(
        "ratelimit:{route_id}:{service_id}:{identifier}:{window_start_ms}:{}",
        period.name()
    )
}

/// A decision: usage per configured period and the blocking period, if any.
struct Decision {
    usage: [Usage; 6],
    len: usize,
    stop: Option<Period>,
}

enum Store {
    Local(&'static Counters),
    #[cfg(feature = "redis")]
    Redis(Box<redis::RedisStore>),
}

/// The `rate-limiting` plugin.
pub struct RateLimiting {
    limits: Vec<(Period, u32)>,
    /// Each limit and its header value, made once (indexed like `limits`).
    limit_values: Vec<(u64, HeaderValue)>,
    /// The headers' names for lines.
    line_names: &'static LineNames,
    /// The route and service ids hashed once with the local table's keys: what every
    /// counter key of this instance starts with.
    scope: u64,
    limit_by: LimitBy,
    header: Option<HeaderName>,
    fault_tolerant: bool,
    hide_client_headers: bool,
    error_code: u16,
    error_message: &'static str,
    /// Where the instance is attached, for Redis keys (local keys use `scope`).
    #[cfg(feature = "redis")]
    route_id: &'static str,
    #[cfg(feature = "redis")]
    service_id: &'static str,
    services: &'static [ServiceSpec],
    consumers: &'static [ConsumerSpec],
    store: Store,
    clock: Clock,
}

impl std::fmt::Debug for RateLimiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiting")
            .field("limits", &self.limits)
            .field("limit_by", &self.limit_by)
            .finish_non_exhaustive()
    }
}

/// Kong's 500 body when the store fails and `fault_tolerant` is false.
pub const UNEXPECTED: &str = "An unexpected error occurred";

impl RateLimiting {
    /// Checks the config as Kong's schema does; with `policy: redis`, prepares the client
    /// (the connection is opened on first use) and resolves the credentials.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let err = |m: String| Err(StartupError(format!("rate-limiting: {m}")));
        if config.limits.is_empty() {
            return err("at least one of second, minute, hour, day, month, year is needed".into());
        }
        let mut limits: Vec<(Period, u32)> = Vec::with_capacity(config.limits.len());
        for &(p, l) in config.limits {
            let Ok(l32) = u32::try_from(l) else {
                return err(format!("the {} limit {l} is above {}", p.name(), u32::MAX));
            };
            if l == 0 {
                return err(format!("the {} limit must be greater than 0", p.name()));
            }
            if let Some(&(q, m)) = limits.last() {
                if q >= p {
                    return err("limits must be given shortest period first, once each".into());
                }
                if l32 < m {
                    return err(format!(
                        "the {} limit ({l}) is lower than the {} limit ({m})",
                        p.name(),
                        q.name()
                    ));
                }
            }
            limits.push((p, l32));
        }
        let header =
            match config.limit_by {
                LimitBy::Header(h) => Some(HeaderName::from_bytes(h.as_bytes()).map_err(|_| {
                    StartupError(format!("rate-limiting: `{h}` is not a header name"))
                })?),
                _ => None,
            };
        if !(100..=599).contains(&config.error_code) {
            return err(format!(
                "error_code {} is not an HTTP status",
                config.error_code
            ));
        }
        let store = match config.policy {
            Policy::Local => Store::Local(Counters::global()),
            #[cfg(feature = "redis")]
            Policy::Redis(r) => Store::Redis(Box::new(redis::RedisStore::new(&r)?)),
            #[cfg(not(feature = "redis"))]
            Policy::Redis(_) => {
                return err("`policy: redis` needs kiln-runtime's `redis` feature".into())
            }
        };
        let limit_values = limits
            .iter()
            .map(|&(_, l)| (u64::from(l), HeaderValue::from(l)))
            .collect();
        let scope = match &store {
            Store::Local(c) => {
                let mut h = c.hasher();
                h.write(config.route_id.as_bytes());
                h.write_u8(0xff);
                h.write(config.service_id.as_bytes());
                h.finish()
            }
            #[cfg(feature = "redis")]
            Store::Redis(_) => 0,
        };
        let line_names = LineNames::shared()
            .ok_or_else(|| StartupError("rate-limiting: header names for lines".into()))?;
        Ok(RateLimiting {
            limits,
            limit_values,
            line_names,
            scope,
            limit_by: config.limit_by,
            header,
            fault_tolerant: config.fault_tolerant,
            hide_client_headers: config.hide_client_headers,
            error_code: config.error_code,
            error_message: config.error_message,
            #[cfg(feature = "redis")]
            route_id: config.route_id,
            #[cfg(feature = "redis")]
            service_id: config.service_id,
            services: config.services,
            consumers: config.consumers,
            store,
            clock: clock::for_new_instance(),
        })
    }

    /// Uses `clock` for windows (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, in milliseconds since the epoch.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Kong's `get_identifier`.
    pub fn identifier<'a>(&self, cx: &'a Ctx, req: &'a Request) -> Cow<'a, str> {
        let found: Option<Cow<'a, str>> = match self.limit_by {
            LimitBy::Ip => None,
            LimitBy::Consumer => cx
                .auth
                .consumer
                .and_then(|c| self.consumers.get(c as usize))
                .map(|c| Cow::Borrowed(c.id))
                .or_else(|| cx.auth.credential.as_deref().map(Cow::Borrowed)),
            LimitBy::Credential => cx.auth.credential.as_deref().map(Cow::Borrowed),
            LimitBy::Service => cx
                .route
                .service
                .and_then(|s| self.services.get(s as usize))
                .map(|s| Cow::Borrowed(s.id)),
            LimitBy::Header(_) => self
                .header
                .as_ref()
                .and_then(|h| req.headers().get(h))
                .map(|v| String::from_utf8_lossy(v.as_bytes())),
            LimitBy::Path(p) => (cx.normalized_path == p).then_some(Cow::Borrowed(p)),
        };
        found.unwrap_or_else(|| {
            let ip: IpAddr = IpRestriction::client_ip(cx);
            Cow::Owned(ip.to_string())
        })
    }

    fn local(&self, counters: &Counters, identifier: &str, now_s: i64) -> Decision {
        let mut d = Decision {
            usage: [Usage {
                period: Period::Second,
                limit: 0,
                used: 0,
            }; 6],
            len: self.limits.len().min(6),
            stop: None,
        };
        let mut prefix = counters.hasher();
        prefix.write_u64(self.scope);
        prefix.write(identifier.as_bytes());
        prefix.write_u8(0xff);
        let now32 = now_s.clamp(0, i64::from(u32::MAX)) as u32;
        let mut keys = [(0u64, 0u32); 6];
        for (i, &(p, limit)) in self.limits.iter().enumerate().take(6) {
            let mut h = prefix.clone();
            h.write_i64(p.window_start(now_s) * 1000);
            h.write_u8(p as u8);
            let key = h.finish().max(1);
            let end = p.window_end(now_s).clamp(0, i64::from(u32::MAX)) as u32;
            keys[i] = (key, end);
            let used = if d.stop.is_some() {
                counters.peek(key, end)
            } else {
                match counters.try_acquire(key, end, now32, limit) {
                    Acquire::Counted(c) => c,
                    Acquire::Limited(c) => {
                        d.stop = Some(p);
                        for &(k, e) in &keys[..i] {
                            counters.release(k, e);
                        }
                        c
                    }
                    Acquire::Full => {
                        table_full();
                        0
                    }
                }
            };
            d.usage[i] = Usage {
                period: p,
                limit: u64::from(limit),
                used: u64::from(used),
            };
        }
        // Periods counted before the blocking one were given back: they show their count
        // without this request, as Kong's (read, then increment if allowed) does.
        d
    }

    async fn decide(&self, identifier: &str, now_s: i64) -> Result<Decision, String> {
        match &self.store {
            Store::Local(c) => Ok(self.local(c, identifier, now_s)),
            #[cfg(feature = "redis")]
            Store::Redis(r) => {
                let mut keys: Vec<(String, i64)> = Vec::with_capacity(self.limits.len());
                for &(p, _) in &self.limits {
                    keys.push((
                        counter_key(
                            self.route_id,
                            self.service_id,
                            identifier,
                            p.window_start(now_s) * 1000,
                            p,
                        ),
                        p.seconds(),
                    ));
                }
                let used = r.incr(&keys).await?;
                let mut d = Decision {
                    usage: [Usage {
                        period: Period::Second,
                        limit: 0,
                        used: 0,
                    }; 6],
                    len: self.limits.len().min(6),
                    stop: None,
                };
                for (i, (&(p, limit), used)) in self.limits.iter().zip(used).enumerate().take(6) {
                    let used = used.max(0) as u64;
                    if used >= u64::from(limit) {
                        d.stop = Some(p);
                    }
                    d.usage[i] = Usage {
                        period: p,
                        limit: u64::from(limit),
                        used,
                    };
                }
                Ok(d)
            }
        }
    }

    async fn run(&self, cx: &mut Ctx, req: &mut Request) -> ControlFlow<Response> {
        // Kong works in whole seconds (`ngx.time() * 1000`).
        let now_s = self.now().div_euclid(1000);
        let identifier = self.identifier(cx, req);
        let decision = match self.decide(&identifier, now_s).await {
            Ok(d) => d,
            Err(e) => {
                if self.fault_tolerant {
                    if !is_breaker_open(&e) {
                        eprintln!("kiln: rate-limiting: failed to get usage: {e}");
                    }
                    return ControlFlow::Continue(());
                }
                eprintln!("kiln: rate-limiting: {e}");
                cx.kong_generated = true;
                return ControlFlow::Break(response::error(
                    500,
                    Some(UNEXPECTED),
                    &cx.request_id,
                    req.headers(),
                ));
            }
        };
        let shown = (!self.hide_client_headers)
            .then(|| shown(&decision.usage[..decision.len], decision.stop, now_s));
        if decision.stop.is_some() {
            cx.kong_generated = true;
            let mut resp = response::error(
                self.error_code,
                Some(self.error_message),
                &cx.request_id,
                req.headers(),
            );
            if let Some(s) = &shown {
                s.apply(resp.headers_mut(), true);
            }
            return ControlFlow::Break(resp);
        }
        cx.rate_limiting = shown;
        ControlFlow::Continue(())
    }
}

impl RateLimiting {
    /// [`Shown::apply`] without `Retry-After`, with the limits' values made at start-up and
    /// each remaining count turned into a header value once.
    fn apply(&self, s: &Shown, h: &mut HeaderMap) {
        h.reserve(2 * self.limits.len().min(6) + 3);
        let mut rate_limit = None;
        let mut rate_remaining = None;
        for (i, (p, limit, remaining)) in s.periods.iter().flatten().enumerate() {
            let (l, r) = PERIOD_HEADERS[*p as usize].clone();
            // The access phase of this instance made `s`: its limits are ours, in order.
            let value = match self.limit_values.get(i) {
                Some((n, v)) if n == limit => v.clone(),
                _ => number_value(*limit),
            };
            let remaining_value = number_value(*remaining);
            if *limit == s.limit && *remaining == s.remaining {
                rate_limit = Some(value.clone());
                rate_remaining = Some(remaining_value.clone());
            }
            h.insert(l, value);
            h.insert(r, remaining_value);
        }
        h.insert(
            RATELIMIT_LIMIT,
            rate_limit.unwrap_or_else(|| number_value(s.limit)),
        );
        h.insert(
            RATELIMIT_REMAINING,
            rate_remaining.unwrap_or_else(|| number_value(s.remaining)),
        );
        h.insert(RATELIMIT_RESET, number_value(s.reset.max(1) as u64));
    }

    /// [`Self::apply`] as lines after the upstream's (see [`crate::upstream_head`]): no
    /// header values are made. `false` when they cannot go as lines; those written are then
    /// replaced by what [`Self::apply`] inserts.
    fn apply_lines(&self, s: &Shown, head: &mut UpstreamHead, set: &mut HeaderMap) -> bool {
        let names = self.line_names;
        let mut digits = [0; 20];
        // `RateLimit-Limit` when it is one of the limits made at start-up.
        let mut rate_limit: Option<&[u8]> = None;
        for (i, (p, limit, remaining)) in s.periods.iter().flatten().enumerate() {
            let Some((l, r)) = names.periods.get(*p as usize) else {
                return false;
            };
            // The access phase of this instance made `s`: its limits are ours, in order.
            let limit_text = match self.limit_values.get(i) {
                Some((n, v)) if n == limit => {
                    if *limit == s.limit {
                        rate_limit = Some(v.as_bytes());
                    }
                    v.as_bytes()
                }
                _ => response::decimal(*limit, &mut digits),
            };
            if !head.insert_field(set, l, limit_text)
                || !head.insert_field(set, r, response::decimal(*remaining, &mut digits))
            {
                return false;
            }
        }
        let done = match rate_limit {
            Some(v) => head.insert_field(set, &names.limit, v),
            None => head.insert_field(set, &names.limit, response::decimal(s.limit, &mut digits)),
        };
        done && head.insert_field(
            set,
            &names.remaining,
            response::decimal(s.remaining, &mut digits),
        ) && head.insert_field(
            set,
            &names.reset,
            response::decimal(s.reset.max(1) as u64, &mut digits),
        )
    }
}

#[cfg(feature = "redis")]
fn is_breaker_open(e: &str) -> bool {
    e == redis::BREAKER_OPEN
}

#[cfg(not(feature = "redis"))]
fn is_breaker_open(_: &str) -> bool {
    false
}

/// Logs, at most once a minute per process, that the local table had no room.
fn table_full() {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = Clock::System.now_ms() / 60_000;
    if LAST.swap(now, Ordering::Relaxed) != now {
        eprintln!("kiln: rate-limiting: local counter table full; new counters are not kept");
    }
}

impl Plugin for RateLimiting {
    const NAME: &'static str = "rate-limiting";
    const PRIORITY: i32 = 910;
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    /// Counts the request and passes it, or answers `error_code` with `Retry-After`.
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        self.run(cx, req)
    }

    /// Adds the headers the access phase computed: as lines next to the upstream's when
    /// they are still lines, else into the response's map.
    fn header_filter(&self, cx: &mut Ctx, resp: &mut Response) {
        if let Some(s) = cx.rate_limiting.take() {
            let set = resp.headers_mut();
            let as_lines = upstream_head::insert_target(cx)
                .is_some_and(|head| self.apply_lines(&s, head, set));
            if !as_lines {
                self.apply(&s, set);
            }
        }
    }
}

#[cfg(test)]
mod tests;
