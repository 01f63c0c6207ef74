//! The plugin phase trait. Generated chains call these methods on concrete types.

use std::{future::Future, ops::ControlFlow};

use crate::{ctx::Ctx, Request, Response};

/// A plugin instance: one concrete type per plugin, built once at start-up from a config
/// literal the compiler wrote. Each method is one of Kong's phases.
pub trait Plugin: Send + Sync + 'static {
    /// Kong's plugin name (`correlation-id`).
    const NAME: &'static str;
    /// Kong's priority; higher runs first. Codegen orders chains by it.
    const PRIORITY: i32;

    /// `access`: runs after routing, before the upstream request. `Continue` passes the
    /// (possibly modified) request on; `Break(resp)` answers now — later access handlers are
    /// skipped, but every plugin of the chain still gets `header_filter` on that response.
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        let _ = (cx, req);
        std::future::ready(ControlFlow::Continue(()))
    }

    /// Whether `header_filter` only inserts response headers (`headers_mut().insert`, or
    /// the same as a line next to the upstream's, as rate-limiting does; see
    /// [`crate::upstream_head`]): it never reads, appends or removes them, nor replaces the
    /// body. The upstream's header lines then stay as they
    /// arrived ([`crate::upstream_head`]); otherwise they are all moved into the response's
    /// map before `header_filter` runs. Every plugin says which.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool;

    /// `header_filter`: runs on every response of the route (proxied or generated), in
    /// chain order, before it is sent downstream. Generated chains call it through
    /// [`crate::upstream_head::header_filter`].
    fn header_filter(&self, cx: &mut Ctx, resp: &mut Response) {
        let _ = (cx, resp);
    }
}
