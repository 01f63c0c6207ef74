//! Kong's `proxy-cache` plugin (kong-compat.md §4.13) with the `memory` strategy: responses
//! kept in a bounded in-process cache (`quick_cache`, one per `memory.dictionary_name`),
//! served from memory on a hit, and concurrent misses for one key coalesced into one
//! upstream request.
//!
//! * `access` decides: a request Kong would not cache is marked `Bypass`; otherwise the
//!   cache key is computed ([`key`]) and a fresh entry is answered at once (`Hit`, `Age`);
//!   an entry the client's `Cache-Control` or `cache_ttl` finds too old is refetched
//!   (`Refresh`); a missing one is fetched (`Miss`) — by one request, while the others for
//!   the same key wait (at most the service's connect + write + read timeout) and are then
//!   served from the entry, or go upstream themselves if it was not cacheable.
//! * `header_filter` checks the response (status, `Content-Type`, `Cache-Control`) and
//!   wraps a cacheable body so that it is copied while it streams to the client and stored
//!   when complete (up to `memory.max_entry_bytes`).
//!
//! ```
//! use kiln_runtime::plugins::proxy_cache::{Config, ProxyCache};
//!
//! let plugin = ProxyCache::new(Config {
//!     dictionary_name: "doc-example",
//!     cache_ttl: 60,
//!     ..Config::DEFAULT
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

pub mod key;
pub mod store;

use std::{future::Future, ops::ControlFlow, sync::Arc, time::Duration};

use http::{header, HeaderMap, HeaderName, HeaderValue, Request as HttpRequest};
use http_body::Body as _;
use http_body_util::BodyExt;

use crate::{
    consumer::ConsumerSpec,
    ctx::Ctx,
    gateway::{ServiceSpec, StartupError},
    plugin::Plugin,
    response, Request, Response,
};

pub use store::{advance_clock, dictionary_usage};
use store::{Entry, Flight, FlightGuard, Pending, Store, Tee};

/// Which diagnostic headers are shown (`response_headers`); all are shown when the request
/// has a `Kong-Debug` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeaders {
    pub age: bool,
    pub x_cache_status: bool,
    pub x_cache_key: bool,
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Cacheable upstream statuses (default 200, 301, 404).
    pub response_code: &'static [u16],
    /// Cacheable request methods (default GET, HEAD).
    pub request_method: &'static [&'static str],
    /// Cacheable response content types: type/subtype (`*` wildcards) and exactly these
    /// parameters (default `text/plain`, `application/json`).
    pub content_type: &'static [&'static str],
    /// Seconds an entry is served (default 300).
    pub cache_ttl: u64,
    /// Seconds an entry is kept, if not `cache_ttl` (or the response's TTL).
    pub storage_ttl: Option<u64>,
    /// Honour RFC 7234 `Cache-Control` (the subset Kong implements).
    pub cache_control: bool,
    pub ignore_uri_case: bool,
    /// Query arguments in the key; empty = all of them.
    pub vary_query_params: &'static [&'static str],
    /// Request headers in the key; empty = none.
    pub vary_headers: &'static [&'static str],
    pub response_headers: ResponseHeaders,
    /// The cache: instances naming the same dictionary share it.
    pub dictionary_name: &'static str,
    /// Memory budget of the dictionary in bytes (Kiln's `memory.max_bytes`).
    pub max_bytes: u64,
    /// Largest response body stored (Kiln's `memory.max_entry_bytes`).
    pub max_entry_bytes: u64,
    /// The gateway's consumers (their ids prefix the key).
    pub consumers: &'static [ConsumerSpec],
    /// The gateway's services (their timeouts bound how long a request waits for another
    /// request's fetch).
    pub services: &'static [ServiceSpec],
}

impl Config {
    /// Kong's defaults, Kiln's memory limits (128 MiB, 1 MiB entries).
    pub const DEFAULT: Config = Config {
        response_code: &[200, 301, 404],
        request_method: &["GET", "HEAD"],
        content_type: &["text/plain", "application/json"],
        cache_ttl: 300,
        storage_ttl: None,
        cache_control: false,
        ignore_uri_case: false,
        vary_query_params: &[],
        vary_headers: &[],
        response_headers: ResponseHeaders {
            age: true,
            x_cache_status: true,
            x_cache_key: true,
        },
        dictionary_name: "kong_db_cache",
        max_bytes: 128 * 1024 * 1024,
        max_entry_bytes: 1024 * 1024,
        consumers: &[],
        services: &[],
    };
}

/// `X-Cache-Status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Miss,
    Hit,
    Refresh,
    Bypass,
}

impl CacheStatus {
    fn value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            CacheStatus::Miss => "Miss",
            CacheStatus::Hit => "Hit",
            CacheStatus::Refresh => "Refresh",
            CacheStatus::Bypass => "Bypass",
        })
    }
}

/// What `access` decided, for `header_filter` (kept in [`Ctx`]).
#[derive(Debug)]
pub struct RequestState {
    status: CacheStatus,
    key: Option<String>,
    debug: bool,
    /// A HEAD request: its response has no body to wait for (and hyper never reads one).
    head: bool,
    /// The fetch this request leads (waiters are woken when it is dropped).
    flight: Option<FlightGuard>,
}

/// A parsed `type/subtype; k=v` (Kong's `kong.tools.mime_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MimeType {
    pub kind: String,
    pub subtype: String,
    /// Sorted by name.
    pub params: Vec<(String, String)>,
}

impl MimeType {
    /// `None` when `s` is not `type/subtype[; name=value]*`.
    pub fn parse(s: &str) -> Option<MimeType> {
        let mut parts = s.split(';');
        let (kind, subtype) = parts.next()?.trim().split_once('/')?;
        let token = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        if !token(kind) || !token(subtype) {
            return None;
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let (k, v) = p.split_once('=')?;
            let (k, v) = (k.trim(), v.trim());
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            if !token(k) {
                return None;
            }
            params.push((k.to_ascii_lowercase(), v.to_owned()));
        }
        params.sort();
        Some(MimeType {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            params,
        })
    }

    /// Kong's match: `*` wildcards in the configured type, parameters exactly equal.
    pub fn accepts(&self, actual: &MimeType) -> bool {
        (self.kind == "*" || self.kind == actual.kind)
            && (self.subtype == "*" || self.subtype == actual.subtype)
            && self.params == actual.params
    }
}

/// `Cache-Control` directives as Kong's `parse_directive_header` reads them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Directives(Vec<(String, Option<String>)>);

impl Directives {
    /// Every `Cache-Control` value of `headers`, joined with `, `.
    pub fn parse(headers: &HeaderMap) -> Directives {
        let mut out = Vec::new();
        for v in headers.get_all(header::CACHE_CONTROL) {
            let Ok(v) = v.to_str() else { continue };
            for piece in v.split(',') {
                let piece = piece.trim_start();
                if piece.is_empty() || piece.starts_with('=') {
                    continue;
                }
                let (name, value) = match piece.split_once('=') {
                    Some((n, v)) if !v.is_empty() => (n, Some(v.to_owned())),
                    Some((n, _)) => (n, None),
                    None => (piece, None),
                };
                out.push((name.to_ascii_lowercase(), value));
            }
        }
        Directives(out)
    }

    /// The directive is present (last one wins, as in Kong's table).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }

    /// The directive's value as a number (Lua `tonumber`), when it is one.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| v.trim().parse::<f64>().ok())
    }
}

/// Kong's `calculate_resource_ttl`: `s-maxage`, else `max-age`, else `Expires` − now;
/// never below 0.
pub fn resource_ttl(cc: &Directives, headers: &HeaderMap, now_secs: u64) -> u64 {
    let max_age = cc
        .number("s-maxage")
        .or_else(|| cc.number("max-age"))
        .or_else(|| {
            let expires = headers.get_all(header::EXPIRES).iter().next_back()?;
            let t = httpdate::parse_http_date(expires.to_str().ok()?).ok()?;
            let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
            Some(secs as f64 - now_secs as f64)
        });
    match max_age {
        Some(s) if s > 0.0 => s as u64,
        _ => 0,
    }
}

static X_CACHE_STATUS: HeaderName = HeaderName::from_static("x-cache-status");
static X_CACHE_KEY: HeaderName = HeaderName::from_static("x-cache-key");
static KONG_DEBUG: HeaderName = HeaderName::from_static("kong-debug");

/// Response headers never stored (Kong's `overwritable_header`) or replaced on a hit.
fn storable(name: &HeaderName) -> bool {
    let n = name.as_str();
    !matches!(
        n,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailers"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "age"
            | "x-cache-status"
            | "x-cache-key"
    ) && !n.contains("ratelimit-remaining")
}

/// The `proxy-cache` plugin.
#[derive(Debug)]
pub struct ProxyCache {
    config: Config,
    store: Arc<Store>,
    content_types: Vec<MimeType>,
}

impl ProxyCache {
    /// Parses the content types and joins (or makes) the dictionary's store.
    pub fn new(config: Config) -> Result<ProxyCache, StartupError> {
        let content_types = config
            .content_type
            .iter()
            .map(|c| {
                MimeType::parse(c).ok_or_else(|| {
                    StartupError(format!(
                        "proxy-cache: content_type {c:?} is not type/subtype"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if config.cache_ttl == 0 {
            return Err(StartupError(
                "proxy-cache: cache_ttl must be greater than 0".into(),
            ));
        }
        let store = store::dictionary(config.dictionary_name, config.max_bytes);
        Ok(ProxyCache {
            config,
            store,
            content_types,
        })
    }

    /// The store this instance uses.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Kong's key string for this request (before hashing).
    pub fn key_string(&self, cx: &Ctx, req: &Request) -> Vec<u8> {
        let consumer = cx
            .auth
            .consumer
            .and_then(|i| self.config.consumers.get(i as usize))
            .map(|c| c.id);
        let prefix = key::prefix(consumer, Some(cx.route.id));
        // nginx's `$request`: the target as sent; HTTP/2 has no request line, nginx writes
        // the `:path` there (hyper's URI of an HTTP/2 request also has scheme and authority).
        let target = match cx.http_version {
            http::Version::HTTP_2 | http::Version::HTTP_3 => cx
                .request_uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
            _ => cx.request_uri.to_string(),
        };
        let uri = key::request_line(
            req.method(),
            &target,
            cx.http_version,
            self.config.ignore_uri_case,
        );
        let params = key::params_key(req.uri().query(), self.config.vary_query_params);
        let headers = key::headers_key(req.headers(), self.config.vary_headers);
        key::key_string(&prefix, req.method().as_str(), &uri, &params, &headers)
    }

    fn cacheable_request<B>(&self, req: &HttpRequest<B>, cc: &Directives) -> bool {
        let method = req.method().as_str();
        if !self.config.request_method.contains(&method) {
            return false;
        }
        !(self.config.cache_control
            && (cc.has("no-store")
                || cc.has("no-cache")
                || req.headers().contains_key(header::AUTHORIZATION)))
    }

    /// Whether `resp` may be stored, and its resource TTL.
    fn cacheable_response(&self, resp: &Response) -> Option<u64> {
        if !self.config.response_code.contains(&resp.status().as_u16()) {
            return None;
        }
        let mut ct = resp.headers().get_all(header::CONTENT_TYPE).iter();
        let (Some(ct), None) = (ct.next(), ct.next()) else {
            return None;
        };
        let actual = MimeType::parse(ct.to_str().ok()?)?;
        if !self.content_types.iter().any(|m| m.accepts(&actual)) {
            return None;
        }
        if !self.config.cache_control {
            return Some(self.config.cache_ttl);
        }
        let cc = Directives::parse(resp.headers());
        if cc.has("private") || cc.has("no-store") || cc.has("no-cache") {
            return None;
        }
        let ttl = resource_ttl(&cc, resp.headers(), self.store.wall_secs());
        (ttl > 0).then_some(ttl)
    }

    fn show(&self, debug: bool, which: fn(&ResponseHeaders) -> bool) -> bool {
        debug || which(&self.config.response_headers)
    }

    /// Whether the entry must be refetched for this request (Kong's freshness rules).
    fn stale(&self, entry: &Entry, cc: &Directives) -> bool {
        let now = (self.store.now_ms() / 1000) as f64;
        let age = now - (entry.stored_ms / 1000) as f64;
        let ttl = entry.ttl as f64;
        if self.config.cache_control {
            cc.number("max-age").is_some_and(|m| age > m)
                || cc.number("max-stale").is_some_and(|m| age - ttl > m)
                || cc.number("min-fresh").is_some_and(|m| ttl - age < m)
        } else {
            age > self.config.cache_ttl as f64
        }
    }

    /// The cached response, as Kong's `kong.response.exit(res.status, res.body, res.headers)`.
    pub fn hit_response(&self, entry: &Entry, key: &str, debug: bool) -> Response {
        let mut resp = Response::new(response::full(entry.body.clone()));
        *resp.status_mut() = entry.status;
        let h = resp.headers_mut();
        h.reserve(entry.headers.len() + 4);
        for (k, v) in entry.headers.iter() {
            h.append(k, v.clone());
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
        if self.show(debug, |r| r.age) {
            let age = (self.store.now_ms() / 1000).saturating_sub(entry.stored_ms / 1000);
            h.insert(header::AGE, HeaderValue::from(age));
        }
        if self.show(debug, |r| r.x_cache_status) {
            h.insert(X_CACHE_STATUS.clone(), CacheStatus::Hit.value());
        }
        if self.show(debug, |r| r.x_cache_key) {
            if let Ok(v) = HeaderValue::from_str(key) {
                h.insert(X_CACHE_KEY.clone(), v);
            }
        }
        resp
    }

    /// How long a request waits for another request's fetch of its key.
    fn wait_limit(&self, cx: &Ctx) -> Duration {
        let ms = cx
            .route
            .service
            .and_then(|s| self.config.services.get(s as usize))
            .map_or(60_000 * 3, |s| {
                s.connect_timeout_ms
                    .saturating_add(s.write_timeout_ms)
                    .saturating_add(s.read_timeout_ms)
            });
        Duration::from_millis(ms)
    }

    async fn run_access(&self, cx: &mut Ctx, req: &mut Request) -> ControlFlow<Response> {
        let debug = req.headers().contains_key(&KONG_DEBUG);
        let cc = if self.config.cache_control {
            Directives::parse(req.headers())
        } else {
            Directives::default()
        };
        let mut state = RequestState {
            status: CacheStatus::Bypass,
            key: None,
            debug,
            head: req.method() == http::Method::HEAD,
            flight: None,
        };
        if !self.cacheable_request(req, &cc) {
            cx.proxy_cache = Some(state);
            return ControlFlow::Continue(());
        }
        let key = key::hex_sha256(&self.key_string(cx, req));
        let hit = |this: &Self, cx: &mut Ctx, entry: &Entry| {
            cx.kong_generated = false;
            cx.proxy_cache = Some(RequestState {
                status: CacheStatus::Hit,
                key: None,
                debug,
                head: false,
                flight: None,
            });
            ControlFlow::Break(this.hit_response(entry, &key, debug))
        };
        if let Some(entry) = self.store.get(&key) {
            if !self.stale(&entry, &cc) {
                return hit(self, cx, &entry);
            }
            state.status = CacheStatus::Refresh;
        } else if self.config.cache_control && cc.has("only-if-cached") {
            // RFC 7234 §5.2.1.7: nothing stored, and the client wants nothing else.
            return ControlFlow::Break(response::upstream_error(
                504,
                &cx.request_id,
                req.headers(),
            ));
        } else {
            state.status = CacheStatus::Miss;
            match self.store.join(&key) {
                Flight::Leader(guard) => {
                    // The previous fetch may have stored it since our lookup.
                    if let Some(entry) = self.store.get(&key) {
                        drop(guard);
                        return hit(self, cx, &entry);
                    }
                    state.flight = Some(guard);
                }
                Flight::Follower(rx) => {
                    store::wait(rx, self.wait_limit(cx)).await;
                    if let Some(entry) = self.store.get(&key) {
                        return hit(self, cx, &entry);
                    }
                    // Not stored (uncacheable, too large, failed): fetch it ourselves.
                }
            }
        }
        state.key = Some(key);
        cx.proxy_cache = Some(state);
        ControlFlow::Continue(())
    }
}

impl Plugin for ProxyCache {
    const NAME: &'static str = "proxy-cache";
    const PRIORITY: i32 = 100;
    // Reads the upstream's caching headers and stores them.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = false;

    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        self.run_access(cx, req)
    }

    fn header_filter(&self, cx: &mut Ctx, resp: &mut Response) {
        let Some(state) = cx.proxy_cache.take() else {
            return;
        };
        let debug = state.debug;
        let set_status = |resp: &mut Response, s: CacheStatus| {
            if self.show(debug, |r| r.x_cache_status) {
                resp.headers_mut().insert(X_CACHE_STATUS.clone(), s.value());
            }
        };
        let (status, Some(key)) = (state.status, state.key) else {
            // Bypassed request (or a hit, whose headers are already set).
            if state.status == CacheStatus::Bypass {
                set_status(resp, CacheStatus::Bypass);
            }
            return;
        };
        let Some(ttl) = self.cacheable_response(resp) else {
            if self.show(debug, |r| r.x_cache_key) {
                if let Ok(v) = HeaderValue::from_str(&key) {
                    resp.headers_mut().insert(X_CACHE_KEY.clone(), v);
                }
            }
            set_status(resp, CacheStatus::Bypass);
            return;
        };
        let max_bytes = usize::try_from(self.config.max_entry_bytes).unwrap_or(usize::MAX);
        let fits = resp
            .body()
            .size_hint()
            .exact()
            .is_none_or(|n| n <= self.config.max_entry_bytes);
        if fits {
            let mut headers = HeaderMap::with_capacity(resp.headers().len());
            for (k, v) in resp.headers() {
                if storable(k) {
                    headers.append(k, v.clone());
                }
            }
            let storage_ttl = self
                .config
                .storage_ttl
                .unwrap_or(if self.config.cache_control {
                    ttl
                } else {
                    self.config.cache_ttl
                });
            let pending = Pending {
                store: self.store.clone(),
                key: key.clone(),
                status: resp.status(),
                headers: Arc::new(headers),
                ttl,
                storage_ttl,
                max_bytes,
                flight: state.flight,
            };
            let body = std::mem::replace(resp.body_mut(), response::empty());
            let mut tee = Tee::new(body, pending);
            if state.head || tee.is_end_stream() {
                // Nothing will be read: store the (empty) body now.
                tee.store_now();
            }
            *resp.body_mut() = tee.boxed();
        }
        if self.show(debug, |r| r.x_cache_key) {
            if let Ok(v) = HeaderValue::from_str(&key) {
                resp.headers_mut().insert(X_CACHE_KEY.clone(), v);
            }
        }
        set_status(resp, status);
    }
}

#[cfg(test)]
mod tests;
