//! `kiln-runtime`: everything a Kiln gateway binary does at run time.
//!
//! A gateway binary is a generated crate (`kiln emit`) whose one generated module implements
//! [`Gateway`]; its `main` calls [`serve`]. The server here is generic over that type, so the
//! whole request path is monomorphised: routing reads static tables the compiler wrote, and
//! each route's plugin chain is a generated function that calls concrete plugin types.
//!
//! ```no_run
//! # fn demo<G: kiln_runtime::Gateway>() -> std::process::ExitCode {
//! // what gateway-template/src/main.rs does:
//! kiln_runtime::serve::<G>()
//! # }
//! ```
//!
//! Module map: [`router`] (route tables and matching), [`path`] (Kong's path normalisation and
//! upstream path rules), [`phf`] (the perfect hash used for exact hosts), [`plugin`] (the phase
//! trait) and [`plugins`] (bundled plugins), [`ctx`] (per-request state), [`proxy`] /
//! [`pool`] (upstream side), [`server`] / [`status`] (listeners), [`response`] (Kong's own
//! answers), [`request_id`] (`X-Kong-Request-Id` values).

mod client;
pub mod clock;
pub mod consumer;
pub mod ctx;
pub mod gateway;
pub mod path;
pub mod phf;
pub mod plugin;
pub mod plugins;
pub mod pool;
pub mod proxy;
pub mod request_id;
pub mod resolve;
pub mod response;
pub mod router;
pub mod secret;
pub mod server;
pub mod status;
mod timed_io;
pub mod upstream_head;

pub use ctx::Ctx;
pub use gateway::{BuildInfo, Gateway, RouteSpec, ServiceSpec, StartupError, TargetSpec};
pub use plugin::Plugin;
pub use server::{run, serve, ServerOptions};

/// The gateway binary's global allocator (mimalloc): a request allocates and frees a few
/// dozen small blocks on one thread, which its thread-local free lists serve without locks.
/// The generated `main.rs` installs it: `#[global_allocator] static A: Allocator = ALLOCATOR;`.
pub type Allocator = mimalloc::MiMalloc;

/// The value of [`Allocator`] for the `#[global_allocator]` static.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

/// The body type used on both sides of the proxy.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BoxError>;
/// Errors carried inside bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request as plugins and the proxy see it.
pub type Request = http::Request<Body>;
/// A response as plugins and the server see it.
pub type Response = http::Response<Body>;

/// The version string used in `Server`, `Via` and `/status`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Items only generated code uses. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::consumer::ConsumerSpec;
    pub use crate::ctx::Ctx;
    pub use crate::ctx::MatchInfo;
    pub use crate::gateway::{
        BuildInfo, Gateway, RouteSpec, ServiceSpec, StartupError, TargetSpec,
    };
    pub use crate::phf::PhfMap;
    pub use crate::plugin::Plugin;
    pub use crate::plugins;
    pub use crate::proxy::{no_service, proxy, Upstream};
    pub use crate::router::{
        HeaderMatch, HeaderValueMatch, HostMatch, PathMatch, RouteRequest, Router, RouterTables,
        SubRoute,
    };
    pub use crate::secret::{Credential, Secret};
    pub use crate::upstream_head::header_filter;
    pub use crate::{Request, Response, VERSION};
    pub use core::marker::Send;

    /// `a == b` in a `const` context (generated code checks the runtime version with it).
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The router returned a route number the gateway does not have: a bug, answered 500.
    pub fn unknown_route(cx: &mut Ctx, req_headers: &http::HeaderMap) -> Response {
        cx.kong_generated = true;
        crate::response::error(500, None, &cx.request_id, req_headers)
    }
    pub use core::future::Future;
    pub use core::ops::ControlFlow;
    pub use core::option::Option::{self, None, Some};
    pub use core::result::Result::{self, Err, Ok};
    pub use std::boxed::Box;
}
