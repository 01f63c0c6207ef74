use std::ops::ControlFlow;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready, request};

fn plugin(size: u64, unit: SizeUnit, require: bool) -> RequestSizeLimiting {
    RequestSizeLimiting::new(Config {
        allowed_payload_size: size,
        size_unit: unit,
        require_content_length: require,
    })
    .expect("valid config")
}

fn refused(flow: ControlFlow<Response>) -> (u16, String) {
    match flow {
        ControlFlow::Break(r) => (r.status().as_u16(), body_text(r)),
        ControlFlow::Continue(()) => panic!("request passed"),
    }
}

/// A body of `chunks` with no known length (what a chunked request looks like).
fn chunked_body(chunks: Vec<&'static [u8]>) -> Body {
    Chunks(chunks.into_iter()).boxed()
}

struct Chunks(std::vec::IntoIter<&'static [u8]>);

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(
            self.0
                .next()
                .map(|c| Ok(Frame::data(Bytes::from_static(c)))),
        )
    }
}

#[test]
fn units_multiply_as_kong() {
    assert_eq!(
        plugin(128, SizeUnit::Megabytes, false).limit_bytes(),
        128 * 1_048_576
    );
    assert_eq!(plugin(3, SizeUnit::Kilobytes, false).limit_bytes(), 3072);
    assert_eq!(plugin(7, SizeUnit::Bytes, false).limit_bytes(), 7);
    assert_eq!(Config::default().allowed_payload_size, 128);
    assert_eq!(Config::default().size_unit, SizeUnit::Megabytes);
    assert!(RequestSizeLimiting::new(Config {
        allowed_payload_size: u64::MAX,
        size_unit: SizeUnit::Kilobytes,
        require_content_length: false,
    })
    .is_err());
}

#[test]
fn content_length_over_the_limit_is_413_at_the_limit_passes() {
    let p = plugin(10, SizeUnit::Bytes, false);
    let mut cx = ctx();
    let mut req = request("POST", "/", &[("content-length", "11")]);
    let (status, body) = refused(ready(p.access(&mut cx, &mut req)));
    assert_eq!(status, 413);
    assert!(body.contains(EXCEEDED), "{body}");
    assert!(
        body.contains(cx.request_id.as_str()),
        "kong.response.error carries the request id"
    );
    assert!(cx.kong_generated);

    let mut cx = ctx();
    let mut req = request("POST", "/", &[("content-length", "10")]);
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());
    assert!(
        cx.request_body_limit.is_none(),
        "a known length needs no counting"
    );
}

#[test]
fn expect_100_continue_turns_413_into_417() {
    let p = plugin(1, SizeUnit::Kilobytes, false);
    for expect in ["100-continue", " 100-Continue "] {
        let mut cx = ctx();
        let mut req = request(
            "POST",
            "/",
            &[("content-length", "1025"), ("expect", expect)],
        );
        let (status, body) = refused(ready(p.access(&mut cx, &mut req)));
        assert_eq!(status, 417, "{expect:?}");
        assert!(body.contains(EXCEEDED));
    }
}

#[test]
fn require_content_length_is_411_unless_chunked() {
    let p = plugin(1, SizeUnit::Kilobytes, true);
    let mut cx = ctx();
    let mut req = request("POST", "/", &[]);
    let (status, body) = refused(ready(p.access(&mut cx, &mut req)));
    assert_eq!(status, 411);
    assert!(body.contains(LENGTH_REQUIRED), "{body}");

    // Kong compares the header to "chunked" exactly.
    let mut cx = ctx();
    let mut req = request("POST", "/", &[("transfer-encoding", "gzip, chunked")]);
    assert_eq!(refused(ready(p.access(&mut cx, &mut req))).0, 411);

    let mut cx = ctx();
    let mut req = request("POST", "/", &[("transfer-encoding", "chunked")]);
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());

    // Not required: a request without a length passes.
    let p = plugin(1, SizeUnit::Kilobytes, false);
    let mut cx = ctx();
    let mut req = request("GET", "/", &[]);
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());
    assert!(
        cx.request_body_limit.is_none(),
        "an empty body needs no counting"
    );
}

fn chunked_request(chunks: Vec<&'static [u8]>, headers: &[(&str, &str)]) -> Request {
    let mut req = request("POST", "/", headers);
    *req.body_mut() = chunked_body(chunks);
    req
}

#[test]
fn a_chunked_body_within_the_limit_streams_through_unchanged() {
    let p = plugin(10, SizeUnit::Bytes, false);
    let mut cx = ctx();
    let mut req = chunked_request(
        vec![b"abcd", b"efgh", b"ij"],
        &[("transfer-encoding", "chunked")],
    );
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());
    let state = cx
        .request_body_limit
        .clone()
        .expect("counting body installed");
    let body = ready(req.into_body().collect()).expect("within the limit");
    assert_eq!(body.to_bytes(), Bytes::from_static(b"abcdefghij"));
    assert!(!state.exceeded());
    assert!(overflow_response(&cx, &HeaderMap::new()).is_none());
}

#[test]
fn a_chunked_body_over_the_limit_fails_and_the_proxy_answers_413() {
    let p = plugin(10, SizeUnit::Bytes, false);
    let mut cx = ctx();
    let mut req = chunked_request(vec![b"abcd", b"efgh", b"ijk", b"never read"], &[]);
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());
    let mut body = req.into_body();
    let mut passed = 0;
    let err = loop {
        match ready(body.frame()) {
            Some(Ok(f)) => passed += f.data_ref().map_or(0, Bytes::len),
            Some(Err(e)) => break e,
            None => panic!("the body ended without failing"),
        }
    };
    assert_eq!(
        passed, 8,
        "bytes up to the limit pass, the crossing chunk does not"
    );
    assert!(err.is::<TooLarge>());
    let resp = overflow_response(&cx, &HeaderMap::new()).expect("overflow recorded");
    assert_eq!(resp.status(), 413);
    assert!(body_text(resp).contains(EXCEEDED));
    // Polled again, it keeps failing.
    assert!(matches!(ready(body.frame()), Some(Err(_))));
}

#[test]
fn a_chunked_overflow_with_expect_is_417() {
    let p = plugin(2, SizeUnit::Bytes, false);
    let mut cx = ctx();
    let mut req = chunked_request(vec![b"abc"], &[("expect", "100-continue")]);
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());
    assert!(matches!(ready(req.into_body().frame()), Some(Err(_))));
    let resp = overflow_response(&cx, &HeaderMap::new()).expect("overflow recorded");
    assert_eq!(resp.status(), 417);
}
