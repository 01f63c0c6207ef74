//! Hand-built requests and contexts for plugin unit tests.

use std::{
    future::Future,
    net::SocketAddr,
    pin::pin,
    task::{Context, Poll, Waker},
};

use crate::{
    ctx::{Ctx, MatchInfo},
    gateway::RouteSpec,
    response, Request,
};

pub(crate) static ROUTE: RouteSpec = RouteSpec {
    id: "8f0a9e1c-6a1f-4c5e-9a57-5d8e0b2c1a01",
    name: Some("orders"),
    service: Some(0),
    strip_path: true,
    preserve_host: false,
    https_only: false,
    https_redirect_status_code: 426,
    request_buffering: true,
    response_buffering: true,
};

pub(crate) fn ctx() -> Ctx {
    let mut cx = Ctx::new(
        &ROUTE,
        MatchInfo::default(),
        SocketAddr::from(([192, 0, 2, 7], 50123)),
    );
    cx.request_id = crate::request_id::RequestId::parse("0123456789abcdef0123456789abcdef")
        .expect("an id's shape");
    cx.kong_generated = false;
    cx
}

/// A request for `uri` with `headers` (repeated names append).
pub(crate) fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.body(response::empty()).expect("test request")
}

/// Polls a future that never waits (plugin phases that do no I/O) to completion.
pub(crate) fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("phase unexpectedly pending"),
    }
}

/// The whole body of a response, as text.
pub(crate) fn body_text(resp: crate::Response) -> String {
    use http_body_util::BodyExt;
    let collected = ready(resp.into_body().collect()).expect("in-memory body");
    String::from_utf8(collected.to_bytes().to_vec()).expect("utf-8 body")
}
