//! Per-request state shared by the server, the plugins and the proxy.

use std::{net::SocketAddr, time::Instant};

use crate::gateway::RouteSpec;

/// What the router matched, as the proxy and plugins need it.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    /// Index of the matched route in [`crate::Gateway::routes`].
    pub route: u32,
    /// Rank of the matched sub-route in the router tables (its place in the match order).
    pub sub_route: u32,
    /// Length in bytes of the normalized path's matched part when the route matched on a
    /// path (literal prefix, or the regex's whole match); `None` for a route without paths.
    pub matched_len: Option<usize>,
    /// Regex captures: index 0 is the whole match; named groups keep their names.
    pub captures: Vec<(Option<String>, Option<String>)>,
}

/// Per-request context.
#[derive(Debug)]
pub struct Ctx {
    /// 32 lower-case hex chars; sent upstream and downstream as `X-Kong-Request-Id`.
    pub request_id: crate::request_id::RequestId,
    /// Connecting peer.
    pub client_addr: SocketAddr,
    /// Port of the listener that accepted the request (`X-Forwarded-Port`).
    pub listener_port: u16,
    /// `http` or `https` (downstream connection).
    pub scheme: &'static str,
    /// The request path after Kong's normalisation (no query).
    pub normalized_path: String,
    /// The matched route.
    pub route: &'static RouteSpec,
    /// Match details.
    pub matched: MatchInfo,
    /// When the request head was received.
    pub started: Instant,
    /// Set by correlation-id; logged.
    pub correlation_id: Option<String>,
    /// Upstream latency once the upstream answered (ms), for `X-Kong-Upstream-Latency`.
    pub upstream_latency_ms: Option<u64>,
    /// True when the response was produced by the gateway, not the upstream. Starts `true`;
    /// the proxy clears it when an upstream response is passed on.
    pub kong_generated: bool,
    /// What authentication plugins decided so far.
    pub auth: crate::consumer::Authenticated,
    /// Host part of the request's `Host` (HTTP/2: `:authority`), split as Kong does, not
    /// lower-cased (`X-Forwarded-Host` lower-cases it, redirects use it).
    pub host: String,
    /// The request target as received (nginx `$request_uri`): the raw path for
    /// `X-Forwarded-Path` and redirects, whatever plugins later do to the request.
    pub request_uri: http::Uri,
    /// Downstream HTTP version (`Via`).
    pub http_version: http::Version,
    /// Time from receiving the request head to the start of proxying (ms), for
    /// `X-Kong-Proxy-Latency`; set by the proxy.
    pub proxy_latency_ms: Option<u64>,
    /// The request's first `Origin` header as received (cors reads it in `header_filter`,
    /// as Kong's `kong.request.get_header("Origin")` does, whatever ran before).
    pub request_origin: Option<http::HeaderValue>,
    /// Set by cors when the request is a preflight it answered or passed on
    /// (`preflight_continue`): its `header_filter` then adds nothing (Kong's
    /// `skip_response_headers`).
    pub cors_preflight: bool,
    /// Set by request-size-limiting when it streams a body of unknown length through its
    /// counting body: the proxy answers 413/417 instead of 502 when that body overflowed.
    pub request_body_limit:
        Option<std::sync::Arc<crate::plugins::request_size_limiting::BodyLimit>>,
    /// Set by kiln-token-bucket in `access` for its `header_filter`: `RateLimit-Limit`,
    /// `RateLimit-Remaining`, `RateLimit-Reset` (seconds).
    pub token_bucket_headers: Option<(u32, u32, u64)>,
    /// proxy-cache's decision in `access`, read by its `header_filter`.
    #[cfg(feature = "proxy-cache")]
    pub proxy_cache: Option<crate::plugins::proxy_cache::RequestState>,
    /// Headers rate-limiting's access phase computed, added by its `header_filter`.
    pub rate_limiting: Option<crate::plugins::rate_limiting::Shown>,
    /// The upstream's response header lines while they are not in the response's map
    /// ([`crate::upstream_head`]); set by the proxy.
    pub(crate) upstream_head: Option<crate::upstream_head::UpstreamHead>,
    /// Memory of an earlier request's buffers on the same connection, for the proxy's.
    pub(crate) buffers: Buffers,
}

/// The proxy's per-request buffers, handed from one request to the next on a connection so
/// that their memory is reused: the upstream request head, and the upstream response's
/// header lines ([`crate::upstream_head::UpstreamHead`]). Empty for a connection's first
/// request and on HTTP/2.
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    pub(crate) head: Vec<u8>,
    pub(crate) lines: Vec<u8>,
}

impl Ctx {
    /// A context for a request that matched `route`. The server builds one per request;
    /// tests of plugins may build one directly and adjust the public fields.
    pub fn new(route: &'static RouteSpec, matched: MatchInfo, client_addr: SocketAddr) -> Ctx {
        Ctx {
            request_id: crate::request_id::new(),
            client_addr,
            listener_port: 8000,
            scheme: "http",
            normalized_path: String::from("/"),
            route,
            matched,
            started: crate::clock::now(),
            correlation_id: None,
            upstream_latency_ms: None,
            kong_generated: true,
            auth: Default::default(),
            host: String::new(),
            request_uri: http::Uri::from_static("/"),
            http_version: http::Version::HTTP_11,
            proxy_latency_ms: None,
            request_origin: None,
            cors_preflight: false,
            request_body_limit: None,
            token_bucket_headers: None,
            #[cfg(feature = "proxy-cache")]
            proxy_cache: None,
            rate_limiting: None,
            upstream_head: None,
            buffers: Buffers::default(),
        }
    }
}
