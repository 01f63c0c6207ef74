//! Kong's `request-size-limiting` plugin (kong-compat.md §4.8): refuses request bodies
//! larger than a limit.
//!
//! * `Content-Length` present and numeric: larger than the limit → 413
//!   `Request size limit exceeded` (417 when the request has `Expect: 100-continue`),
//!   decided before any byte of the body is read.
//! * No `Content-Length`, `require_content_length` set and `Transfer-Encoding` is not
//!   `chunked` → 411 `A valid Content-Length header is required`.
//! * Otherwise (chunked, or HTTP/2 without a length) Kong reads the whole body and measures
//!   it. Kiln does not buffer: the body is wrapped in a counting body ([`LimitedBody`]) that
//!   streams to the upstream and fails as soon as more than the limit has passed. The
//!   failure is recorded on the request's [`Ctx`]; the proxy, seeing its upstream request
//!   fail, answers 413 (or 417) `Request size limit exceeded` instead of 502. Memory stays
//!   bounded whatever the body's size. The difference from Kong: the upstream may have
//!   received the first bytes of an oversized body (on a connection that is then aborted,
//!   so it never sees a complete request); and if the upstream answered before the limit
//!   was crossed, its answer is passed on.
//!
//! ```
//! use kiln_runtime::plugins::request_size_limiting::{Config, RequestSizeLimiting, SizeUnit};
//! let plugin = RequestSizeLimiting::new(Config {
//!     allowed_payload_size: 10,
//!     size_unit: SizeUnit::Kilobytes,
//!     require_content_length: false,
//! })
//! .expect("valid config");
//! assert_eq!(plugin.limit_bytes(), 10 * 1024);
//! ```

use std::{
    future::Future,
    ops::ControlFlow,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{header, HeaderMap};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::{
    ctx::Ctx, gateway::StartupError, plugin::Plugin, response, Body, BoxError, Request, Response,
};

/// The message of every refusal for size (413 and 417).
pub const EXCEEDED: &str = "Request size limit exceeded";
/// The message of the 411 answer.
pub const LENGTH_REQUIRED: &str = "A valid Content-Length header is required";

/// Kong's `size_unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    /// ×1048576 (Kong's default).
    Megabytes,
    /// ×1024.
    Kilobytes,
    /// ×1.
    Bytes,
}

impl SizeUnit {
    /// Bytes per unit.
    pub const fn factor(self) -> u64 {
        match self {
            SizeUnit::Megabytes => 1_048_576,
            SizeUnit::Kilobytes => 1024,
            SizeUnit::Bytes => 1,
        }
    }
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// In `size_unit`s (Kong default 128).
    pub allowed_payload_size: u64,
    pub size_unit: SizeUnit,
    /// Refuse requests without `Content-Length` that are not chunked (Kong default false).
    pub require_content_length: bool,
}

impl Default for Config {
    /// Kong's defaults: 128 megabytes, `Content-Length` not required.
    fn default() -> Config {
        Config {
            allowed_payload_size: 128,
            size_unit: SizeUnit::Megabytes,
            require_content_length: false,
        }
    }
}

/// The `request-size-limiting` plugin.
#[derive(Debug)]
pub struct RequestSizeLimiting {
    limit: u64,
    require_content_length: bool,
}

/// What a streamed body's overflow leaves on the request's [`Ctx`]
/// ([`Ctx::request_body_limit`]): whether the limit was crossed, and the status to answer.
#[derive(Debug)]
pub struct BodyLimit {
    exceeded: AtomicBool,
    /// 413, or 417 for `Expect: 100-continue`.
    status: u16,
}

impl BodyLimit {
    /// Whether more than the limit has passed.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Acquire)
    }

    /// The status of the refusal (413 or 417).
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// The proxy's answer when its upstream request failed: 413/417
/// `Request size limit exceeded` if the failure is this plugin's counting body refusing more
/// bytes, else `None` (the proxy's own 502/504). `headers` carries the request's `Accept`
/// (and `Content-Type`) for the error format.
pub fn overflow_response(cx: &Ctx, headers: &HeaderMap) -> Option<Response> {
    let limit = cx.request_body_limit.as_ref()?;
    limit
        .exceeded()
        .then(|| response::error(limit.status, Some(EXCEEDED), &cx.request_id, headers))
}

impl RequestSizeLimiting {
    /// Checks the config as Kong's schema does (the size in bytes must be representable).
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let limit = config
            .allowed_payload_size
            .checked_mul(config.size_unit.factor())
            .ok_or_else(|| {
                StartupError(format!(
                    "request-size-limiting: allowed_payload_size {} {:?} does not fit in 64 bits",
                    config.allowed_payload_size, config.size_unit
                ))
            })?;
        Ok(RequestSizeLimiting {
            limit,
            require_content_length: config.require_content_length,
        })
    }

    /// The limit in bytes.
    pub fn limit_bytes(&self) -> u64 {
        self.limit
    }

    fn decide(&self, cx: &mut Ctx, req: &mut Request) -> ControlFlow<Response> {
        let headers = req.headers();
        // Kong: `strip(headers.expect:lower()) == "100-continue"`.
        let status = if headers.get(header::EXPECT).is_some_and(|v| {
            v.to_str()
                .is_ok_and(|s| s.trim().eq_ignore_ascii_case("100-continue"))
        }) {
            417
        } else {
            413
        };
        let refuse = |cx: &mut Ctx, status: u16, msg: &str, headers: &HeaderMap| {
            cx.kong_generated = true;
            ControlFlow::Break(response::error(status, Some(msg), &cx.request_id, headers))
        };
        // Kong: `tonumber(cl)`; the HTTP layer has already refused a malformed length on
        // HTTP/1, so a value that does not parse is treated as absent.
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        if let Some(length) = length {
            if length > self.limit {
                return refuse(cx, status, EXCEEDED, headers);
            }
            return ControlFlow::Continue(());
        }
        // Kong compares the header to "chunked" exactly.
        let chunked = headers
            .get(header::TRANSFER_ENCODING)
            .is_some_and(|v| v.as_bytes() == b"chunked");
        if self.require_content_length && !chunked {
            return refuse(cx, 411, LENGTH_REQUIRED, headers);
        }
        if req.body().is_end_stream() {
            return ControlFlow::Continue(());
        }
        let state = Arc::new(BodyLimit {
            exceeded: AtomicBool::new(false),
            status,
        });
        let body = std::mem::replace(req.body_mut(), response::empty());
        *req.body_mut() = LimitedBody {
            inner: body,
            remaining: self.limit,
            state: state.clone(),
        }
        .boxed();
        cx.request_body_limit = Some(state);
        ControlFlow::Continue(())
    }
}

impl Plugin for RequestSizeLimiting {
    const NAME: &'static str = "request-size-limiting";
    const PRIORITY: i32 = 951;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        std::future::ready(self.decide(cx, req))
    }
}

/// The error a [`LimitedBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than the request-size-limiting limit")]
pub struct TooLarge;

/// A request body that counts the bytes passing through and fails once more than the
/// limit has passed, recording that in its [`BodyLimit`].
#[derive(Debug)]
pub struct LimitedBody {
    inner: Body,
    remaining: u64,
    state: Arc<BodyLimit>,
}

impl HttpBody for LimitedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.state.exceeded() {
            return Poll::Ready(Some(Err(Box::new(TooLarge))));
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let len = frame.data_ref().map_or(0, |d| d.len() as u64);
        match self.remaining.checked_sub(len) {
            Some(rest) => {
                self.remaining = rest;
                Poll::Ready(Some(Ok(frame)))
            }
            None => {
                self.state.exceeded.store(true, Ordering::Release);
                Poll::Ready(Some(Err(Box::new(TooLarge))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
