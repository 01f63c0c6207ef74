use http::{HeaderMap, HeaderValue, Uri, Version};

use super::upstream_header_block;
use crate::{client::Framing, plugins::test_support::ctx, Ctx};

/// The upstream head after `Host`, as the proxy writes it.
fn block_of(cx: &mut Ctx, headers: &HeaderMap, framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    upstream_header_block(cx, headers, framing, &mut out);
    out
}

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

/// The block as lines, without the blank line that ends it.
fn lines(block: &[u8]) -> Vec<String> {
    let text = String::from_utf8(block.to_vec()).expect("utf-8");
    let body = text.strip_suffix("\r\n\r\n").expect("ends the head");
    body.split("\r\n").map(str::to_owned).collect()
}

fn values<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn the_gateway_headers_are_added_and_the_clients_replaced() {
    let mut cx = ctx();
    cx.host = "API.Example.com".into();
    cx.request_uri = Uri::from_static("/orders/7?x=1");
    cx.normalized_path = "/orders/7".into();
    cx.matched.matched_len = Some("/orders".len());
    cx.http_version = Version::HTTP_2;
    let h = headers(&[
        ("accept", "*/*"),
        ("x-forwarded-for", "198.51.100.1"),
        ("x-forwarded-for", ""),
        ("x-forwarded-for", "198.51.100.2"),
        ("x-forwarded-host", "spoofed"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-port", "1"),
        ("x-forwarded-path", "/spoofed"),
        ("x-forwarded-prefix", "/spoofed"),
        ("x-real-ip", "203.0.113.9"),
        ("via", "1.1 edge"),
        ("x-kong-request-id", "from-the-client"),
        ("host", "API.Example.com"),
        ("accept", "text/html"),
    ]);
    let block = block_of(&mut cx, &h, Framing::Empty);
    let l = lines(&block);
    assert_eq!(values(&l, "accept"), ["*/*", "text/html"]);
    assert_eq!(
        values(&l, "x-forwarded-for"),
        ["198.51.100.1, 198.51.100.2, 192.0.2.7"]
    );
    assert_eq!(values(&l, "x-real-ip"), ["192.0.2.7"]);
    assert_eq!(values(&l, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&l, "x-forwarded-host"), ["api.example.com"]);
    assert_eq!(values(&l, "x-forwarded-port"), ["8000"]);
    assert_eq!(values(&l, "x-forwarded-path"), ["/orders/7"]);
    assert_eq!(values(&l, "x-forwarded-prefix"), ["/orders"]);
    let via = format!("1.1 edge, 2 kiln/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(values(&l, "via"), [via.as_str()]);
    assert_eq!(
        values(&l, "x-kong-request-id"),
        ["0123456789abcdef0123456789abcdef"]
    );
    assert_eq!(values(&l, "connection"), ["keep-alive"]);
    assert!(values(&l, "host").is_empty(), "Host comes with the target");
    assert!(values(&l, "content-length").is_empty());

    // without a prefix stripped or a host: those are not sent
    let mut cx = ctx();
    let block = block_of(&mut cx, &h, Framing::Empty);
    let l = lines(&block);
    assert!(values(&l, "x-forwarded-prefix").is_empty());
    assert!(values(&l, "x-forwarded-host").is_empty());
    assert_eq!(values(&l, "x-kong-request-id"), [cx.request_id.as_str()]);
}

#[test]
fn hop_by_hop_headers_stay_behind() {
    let mut cx = ctx();
    let h = headers(&[
        ("connection", "close, X-Secret, keep-alive"),
        ("x-secret", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-connection", "keep-alive"),
        ("proxy", "http://evil"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("expect", "100-continue"),
        ("x-kept", "yes"),
    ]);
    let l = lines(&block_of(&mut cx, &h, Framing::Chunked));
    for gone in [
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "proxy",
        "upgrade",
        "expect",
    ] {
        assert!(values(&l, gone).is_empty(), "{gone} was sent");
    }
    assert_eq!(values(&l, "x-kept"), ["yes"]);
    assert_eq!(values(&l, "te"), ["trailers"], "TE: trailers is passed on");
    assert_eq!(values(&l, "connection"), ["keep-alive"]);
    assert_eq!(
        values(&l, "transfer-encoding"),
        ["chunked"],
        "once, as framed"
    );

    // another TE is dropped
    let h = headers(&[("te", "gzip")]);
    let l = lines(&block_of(&mut cx, &h, Framing::Empty));
    assert!(values(&l, "te").is_empty());
}

#[test]
fn the_body_length_is_announced_once() {
    let mut cx = ctx();
    let h = headers(&[("content-length", "003")]);
    let l = lines(&block_of(&mut cx, &h, Framing::Length(3)));
    assert_eq!(
        values(&l, "content-length"),
        ["3"],
        "the parsed number, once"
    );
    let l = lines(&block_of(&mut cx, &HeaderMap::new(), Framing::Length(12)));
    assert_eq!(values(&l, "content-length"), ["12"]);
    let h = headers(&[("content-length", "0")]);
    let l = lines(&block_of(&mut cx, &h, Framing::Empty));
    assert_eq!(values(&l, "content-length"), ["0"]);
}

#[test]
fn targets_are_checked_as_path_and_query_checks_them() {
    use http::uri::PathAndQuery;

    use super::{plain_target, valid_target};
    let expected = |t: &str| {
        PathAndQuery::try_from(t)
            .ok()
            .map(|pq| pq.as_str().to_owned())
    };
    // Every byte, in the path and in the query: the check without a copy never takes what
    // `PathAndQuery` would refuse or change.
    for b in 0u8..=0x7f {
        let c = char::from(b);
        for t in [format!("/a{c}b"), format!("/a?x={c}"), format!("/{c}?{c}")] {
            if plain_target(t.as_bytes()) {
                assert_eq!(expected(&t).as_deref(), Some(t.as_str()), "{t:?}");
            }
            assert_eq!(valid_target(t.clone()), expected(&t), "{t:?}");
        }
    }
    for t in [
        "/srv/anything/b?a=%20",
        "/caf\u{e9}?q=\u{e9}",
        "/a#frag",
        "/a?b#frag",
        "/a b",
        "/a?b c",
        "/a\u{7f}",
        "*",
        "?q",
        "relative",
        "",
        "/\"{}|^[]",
        "/?\"",
    ] {
        assert_eq!(valid_target(t.to_owned()), expected(t), "{t:?}");
    }
    // Plain targets go through untouched; a fragment is dropped as before.
    assert!(plain_target(b"/srv/anything/b?a=%20&b=`"));
    assert!(!plain_target(b"/a`"));
    assert_eq!(valid_target("/a#frag".into()).as_deref(), Some("/a"));
    assert_eq!(valid_target("/a b".into()), None);
    let long = format!("/{}", "a".repeat(usize::from(u16::MAX)));
    assert_eq!(valid_target(long.clone()), expected(&long));
}
