//! The contract between generated code and the runtime.
//!
//! `kiln emit` writes one module that defines a type implementing [`Gateway`], plus
//! `static` tables of [`RouteSpec`], [`ServiceSpec`] and [`crate::router::RouterTables`].
//! Everything the generated code needs is reached through `::kiln_runtime::__private`.

use std::future::Future;

use crate::{
    ctx::{Ctx, MatchInfo},
    router::RouteRequest,
    Request, Response,
};

/// Facts about the build, shown by `/status` and the `@generated` header.
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo {
    /// The config file name as given to `kiln` (relative, never absolute).
    pub source: &'static str,
    /// Hex sha256 of the config file's bytes.
    pub config_sha256: &'static str,
    /// Version of `kiln` that generated the code.
    pub kiln_version: &'static str,
}

/// A route as the proxy needs it at run time (match conditions live in the router tables).
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// Kong id (UUID text): explicit, or UUIDv5 from the name, as Kong derives it.
    pub id: &'static str,
    /// Route name, if any.
    pub name: Option<&'static str>,
    /// Index into the gateway's services, `None` for a route without a service (503).
    pub service: Option<u32>,
    pub strip_path: bool,
    pub preserve_host: bool,
    /// True when `protocols` has `https` but not `http`: plain-http requests are refused.
    pub https_only: bool,
    /// 426, 301, 302, 307 or 308.
    pub https_redirect_status_code: u16,
    pub request_buffering: bool,
    pub response_buffering: bool,
}

/// One upstream target (a service's host:port, or one of its upstream's targets).
#[derive(Debug, Clone, Copy)]
pub struct TargetSpec {
    pub host: &'static str,
    pub port: u16,
    pub weight: u32,
}

/// A service as the proxy needs it.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    pub id: &'static str,
    pub name: Option<&'static str>,
    /// `http` or `https` (others are rejected by `kiln check` for now).
    pub protocol: &'static str,
    /// The service's `host` (an upstream name when `targets` came from an upstream).
    pub host: &'static str,
    pub port: u16,
    /// Service path; `None` means `/`.
    pub path: Option<&'static str>,
    pub retries: u32,
    pub connect_timeout_ms: u64,
    pub write_timeout_ms: u64,
    pub read_timeout_ms: u64,
    /// Weighted round-robin targets; a plain service has one target (its host:port).
    pub targets: &'static [TargetSpec],
    /// Upstream `host_header`, if set.
    pub host_header: Option<&'static str>,
}

/// Start-up failure (missing secret, bad PEM, unusable regex…): printed, then exit 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// Implemented by generated code, once per gateway.
pub trait Gateway: Sized + Send + Sync + 'static {
    /// Build facts.
    const INFO: BuildInfo;

    /// Builds plugin instances and upstream pools from the generated literals, resolves
    /// secrets, compiles regexes. Runs once, before any listener opens.
    fn init() -> Result<Self, StartupError>;

    /// The highest-priority route matching the request head (generated code calls
    /// [`crate::router::Router::find`] on its tables).
    fn route(&self, req: &RouteRequest<'_>) -> Option<MatchInfo>;

    /// All routes, indexed by the route index the router returns.
    fn routes(&self) -> &'static [RouteSpec];

    /// All services, indexed by [`RouteSpec::service`].
    fn services(&self) -> &'static [ServiceSpec];

    /// All consumers, indexed by [`crate::consumer::Authenticated::consumer`].
    fn consumers(&self) -> &'static [crate::consumer::ConsumerSpec] {
        &[]
    }

    /// Runs route `route`'s chain: access phase in Kong's priority order, then the proxy (or
    /// 503 when the route has no service), then header_filter on the response. `cx` already
    /// carries the match. Never fails: errors become Kong-style responses. The request is
    /// lent, not moved: the chain and the proxy work on it where it is.
    fn handle(
        &self,
        route: u32,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = Response> + Send;
}
