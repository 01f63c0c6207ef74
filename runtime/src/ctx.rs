//! Per-request state shared by the server, the plugins and the proxy.

use std::{net::SocketAddr, time::Instant};

use crate::gateway::RouteSpec;

/// What the router matched, as the proxy and plugins need it.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    /// Index of the matched route in [`crate::Gateway::routes`].
    pub route: u32,
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
    pub request_id: String,
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
    /// True when the response was produced by the gateway, not the upstream.
    pub kong_generated: bool,
}
