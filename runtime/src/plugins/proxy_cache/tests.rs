use std::{ops::ControlFlow, time::Duration};

use http::{HeaderMap, StatusCode};

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready, request, ROUTE};

fn plugin(dict: &'static str, f: impl FnOnce(&mut Config)) -> ProxyCache {
    let mut c = Config {
        dictionary_name: dict,
        ..Config::DEFAULT
    };
    f(&mut c);
    ProxyCache::new(c).expect("valid config")
}

/// A response as an upstream would send it.
fn upstream(status: u16, ct: Option<&str>, extra: &[(&str, &str)], body: &str) -> Response {
    let mut r = Response::new(response::full(body.to_owned()));
    *r.status_mut() = StatusCode::from_u16(status).expect("status");
    if let Some(ct) = ct {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).expect("ct"));
    }
    for (k, v) in extra {
        r.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    r
}

/// One request through access, the "upstream" and header_filter; the body is read fully.
fn exchange(
    p: &ProxyCache,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    up: impl FnOnce() -> Response,
) -> (Response, String) {
    let mut cx = ctx();
    cx.request_uri = uri.parse().expect("uri");
    let mut req = request(method, uri, headers);
    let mut resp = match ready(p.access(&mut cx, &mut req)) {
        ControlFlow::Break(r) => r,
        ControlFlow::Continue(()) => up(),
    };
    p.header_filter(&mut cx, &mut resp);
    let (parts, body) = resp.into_parts();
    let text = body_text(Response::new(body));
    (Response::from_parts(parts, response::empty()), text)
}

fn status_of(r: &Response) -> Option<&str> {
    r.headers()
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
}

#[test]
fn key_string_is_kongs() {
    let mut cx = ctx();
    cx.request_uri = "/Orders/1?b=2&a=1&a=0&flag".parse().expect("uri");
    let req = request("GET", "/Orders/1?b=2&a=1&a=0&flag", &[("x-tenant", "t1")]);
    let p = plugin("key-test", |c| c.vary_headers = &["X-Tenant", "Accept"]);
    let s = p.key_string(&cx, &req);
    assert_eq!(
        String::from_utf8(s).expect("utf-8"),
        format!("{}|GET|GET /Orders/1|a=0,1:b=2:flag|X-Tenant=t1", ROUTE.id)
    );
    // No query: the request line keeps its version; ignore_uri_case lowers all of it.
    cx.request_uri = "/Orders/1".parse().expect("uri");
    let p = plugin("key-test", |c| c.ignore_uri_case = true);
    let s = p.key_string(&cx, &request("GET", "/Orders/1", &[]));
    assert_eq!(
        String::from_utf8(s).expect("utf-8"),
        format!("{}|GET|get /orders/1 http/1.1||", ROUTE.id)
    );
    // vary_query_params: only those, in configured order.
    cx.request_uri = "/x?z=1&y=2&q=3".parse().expect("uri");
    let p = plugin("key-test", |c| c.vary_query_params = &["z", "y", "absent"]);
    let s = p.key_string(&cx, &request("GET", "/x?z=1&y=2&q=3", &[]));
    assert_eq!(
        String::from_utf8(s).expect("utf-8"),
        format!("{}|GET|GET /x|z=1:y=2|", ROUTE.id)
    );
}

#[test]
fn key_prefix_and_hash() {
    assert_eq!(key::prefix(Some("c"), Some("r")), "c:r");
    assert_eq!(key::prefix(None, Some("r")), "r");
    assert_eq!(key::prefix(None, None), "default");
    // sha256("abc")
    assert_eq!(
        key::hex_sha256(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Percent-decoded, `+` as space, as ngx.req.get_uri_args.
    assert_eq!(
        key::params_key(Some("q=a+b%21&e="), &[]),
        b"e=:q=a b!".to_vec()
    );
}

#[test]
fn miss_then_hit_with_age() {
    let p = plugin("unit-miss-hit", |_| {});
    let (r, body) = exchange(&p, "GET", "/mh", &[], || {
        upstream(
            200,
            Some("application/json"),
            &[("x-up", "1"), ("content-length", "7")],
            "{\"a\":1}",
        )
    });
    assert_eq!(status_of(&r), Some("Miss"));
    assert_eq!(body, "{\"a\":1}");
    let key = r.headers()["x-cache-key"].to_str().expect("key").to_owned();
    assert_eq!(key.len(), 64);
    p.store().advance(Duration::from_secs(7));
    let (r, body) = exchange(&p, "GET", "/mh", &[], || panic!("must be a hit"));
    assert_eq!(status_of(&r), Some("Hit"));
    assert_eq!(body, "{\"a\":1}");
    assert_eq!(r.headers()["age"], "7");
    assert_eq!(r.headers()["x-up"], "1");
    assert_eq!(r.headers()["content-length"], "7");
    assert_eq!(r.headers()["x-cache-key"], key.as_str());
}

#[test]
fn bypass_cases() {
    let p = plugin("unit-bypass", |_| {});
    let json = || upstream(200, Some("application/json"), &[], "{}");
    let (r, _) = exchange(&p, "POST", "/b", &[], json);
    assert_eq!(status_of(&r), Some("Bypass"));
    assert!(r.headers().get("x-cache-key").is_none());
    for (i, resp) in [
        upstream(500, Some("application/json"), &[], "{}"),
        upstream(200, Some("application/json; charset=utf-8"), &[], "{}"),
        upstream(200, Some("text/html"), &[], "x"),
        upstream(200, None, &[], "x"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/b{i}");
        let mut resp = Some(resp);
        let (r, _) = exchange(&p, "GET", &path, &[], || resp.take().expect("once"));
        assert_eq!(status_of(&r), Some("Bypass"), "case {i}");
        assert!(r.headers().get("x-cache-key").is_some());
        let (r, _) = exchange(&p, "GET", &path, &[], json);
        assert_eq!(status_of(&r), Some("Miss"), "case {i}: nothing was stored");
    }
}

#[test]
fn content_type_rules() {
    let m = |s: &str| MimeType::parse(s).expect("mime");
    assert!(m("application/json").accepts(&m("Application/JSON")));
    assert!(!m("application/json").accepts(&m("application/json; charset=utf-8")));
    assert!(m("application/json; charset=utf-8").accepts(&m("application/json;charset=utf-8")));
    assert!(m("text/*").accepts(&m("text/html")));
    assert!(m("*/*").accepts(&m("image/png")));
    assert!(MimeType::parse("nonsense").is_none());
}

#[test]
fn expiry_and_refresh() {
    let p = plugin("unit-expiry", |c| c.cache_ttl = 10);
    let json = || upstream(200, Some("application/json"), &[], "{}");
    let (r, _) = exchange(&p, "GET", "/e", &[], json);
    assert_eq!(status_of(&r), Some("Miss"));
    p.store().advance(Duration::from_secs(9));
    assert_eq!(
        status_of(&exchange(&p, "GET", "/e", &[], json).0),
        Some("Hit")
    );
    p.store().advance(Duration::from_secs(2));
    assert_eq!(
        status_of(&exchange(&p, "GET", "/e", &[], json).0),
        Some("Miss")
    );
    // storage_ttl keeps it longer than cache_ttl: then it is refreshed.
    let p = plugin("unit-storage", |c| {
        c.cache_ttl = 10;
        c.storage_ttl = Some(100);
    });
    exchange(&p, "GET", "/s", &[], json);
    p.store().advance(Duration::from_secs(12));
    assert_eq!(
        status_of(&exchange(&p, "GET", "/s", &[], json).0),
        Some("Refresh")
    );
    assert_eq!(
        status_of(&exchange(&p, "GET", "/s", &[], json).0),
        Some("Hit")
    );
}

#[test]
fn cache_control() {
    let p = plugin("unit-cc", |c| c.cache_control = true);
    let cc = |v: &'static str| {
        move || upstream(200, Some("application/json"), &[("cache-control", v)], "{}")
    };
    for (i, v) in [
        "private, max-age=60",
        "no-store",
        "no-cache",
        "public",
        "max-age=0",
    ]
    .into_iter()
    .enumerate()
    {
        let (r, _) = exchange(&p, "GET", &format!("/cc{i}"), &[], cc(v));
        assert_eq!(status_of(&r), Some("Bypass"), "{v}");
    }
    let (r, _) = exchange(&p, "GET", "/cc", &[], cc("public, max-age=30"));
    assert_eq!(status_of(&r), Some("Miss"));
    assert_eq!(
        status_of(&exchange(&p, "GET", "/cc", &[], cc("max-age=30")).0),
        Some("Hit")
    );
    for h in ["no-cache", "no-store"] {
        let (r, _) = exchange(&p, "GET", "/cc", &[("cache-control", h)], cc("max-age=30"));
        assert_eq!(status_of(&r), Some("Bypass"), "{h}");
    }
    let (r, _) = exchange(
        &p,
        "GET",
        "/cc",
        &[("authorization", "x")],
        cc("max-age=30"),
    );
    assert_eq!(status_of(&r), Some("Bypass"));
    p.store().advance(Duration::from_secs(5));
    let (r, _) = exchange(
        &p,
        "GET",
        "/cc",
        &[("cache-control", "max-age=2")],
        cc("max-age=30"),
    );
    assert_eq!(status_of(&r), Some("Refresh"));
    let (r, _) = exchange(
        &p,
        "GET",
        "/cc",
        &[("cache-control", "min-fresh=40")],
        cc("max-age=30"),
    );
    assert_eq!(status_of(&r), Some("Refresh"));
    // s-maxage wins; the entry goes at its TTL.
    exchange(&p, "GET", "/sm", &[], cc("max-age=100, s-maxage=3"));
    p.store().advance(Duration::from_secs(4));
    assert_eq!(
        status_of(&exchange(&p, "GET", "/sm", &[], cc("max-age=1")).0),
        Some("Miss")
    );
    // only-if-cached and nothing stored: 504.
    let (r, _) = exchange(
        &p,
        "GET",
        "/none",
        &[("cache-control", "only-if-cached")],
        || panic!("no upstream"),
    );
    assert_eq!(r.status(), 504);
}

#[test]
fn expires_header_ttl() {
    let mut h = HeaderMap::new();
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:01:40 GMT"),
    );
    assert_eq!(resource_ttl(&Directives::default(), &h, 40), 60);
    assert_eq!(resource_ttl(&Directives::default(), &h, 400), 0);
    assert_eq!(
        resource_ttl(&Directives::default(), &HeaderMap::new(), 0),
        0
    );
}

#[test]
fn headers_hidden_unless_kong_debug() {
    let p = plugin("unit-hidden", |c| {
        c.response_headers = ResponseHeaders {
            age: false,
            x_cache_status: false,
            x_cache_key: false,
        }
    });
    let json = || upstream(200, Some("application/json"), &[], "{}");
    let (r, _) = exchange(&p, "GET", "/h", &[], json);
    assert!(r.headers().get("x-cache-status").is_none());
    assert!(r.headers().get("x-cache-key").is_none());
    let (r, _) = exchange(&p, "GET", "/h", &[], json);
    assert!(r.headers().get("age").is_none() && r.headers().get("x-cache-status").is_none());
    let (r, _) = exchange(&p, "GET", "/h", &[("kong-debug", "0")], json);
    assert_eq!(status_of(&r), Some("Hit"));
    assert!(r.headers().get("age").is_some() && r.headers().get("x-cache-key").is_some());
}

#[test]
fn upstream_cache_headers_are_not_replayed() {
    let p = plugin("unit-strip", |_| {});
    let up = || {
        upstream(
            200,
            Some("text/plain"),
            &[
                ("age", "99"),
                ("x-ratelimit-remaining-minute", "4"),
                ("ratelimit-remaining", "4"),
                ("x-keep", "y"),
            ],
            "t",
        )
    };
    exchange(&p, "GET", "/st", &[], up);
    let (r, _) = exchange(&p, "GET", "/st", &[], up);
    assert_eq!(r.headers()["age"], "0");
    assert!(r.headers().get("x-ratelimit-remaining-minute").is_none());
    assert!(r.headers().get("ratelimit-remaining").is_none());
    assert_eq!(r.headers()["x-keep"], "y");
}

#[test]
fn large_bodies_are_not_stored_and_memory_stays_bounded() {
    let p = plugin("unit-bound", |c| {
        c.max_bytes = 256 * 1024;
        c.max_entry_bytes = 16 * 1024;
    });
    let big = "x".repeat(20 * 1024);
    let (r, body) = exchange(&p, "GET", "/big", &[], || {
        upstream(200, Some("text/plain"), &[], &big)
    });
    assert_eq!(body.len(), big.len());
    assert_eq!(status_of(&r), Some("Miss"));
    assert_eq!(
        status_of(
            &exchange(&p, "GET", "/big", &[], || upstream(
                200,
                Some("text/plain"),
                &[],
                "s"
            ))
            .0
        ),
        Some("Miss")
    );
    let chunk = "y".repeat(15 * 1024);
    for i in 0..200 {
        exchange(&p, "GET", &format!("/many/{i}"), &[], || {
            upstream(200, Some("text/plain"), &[], &chunk)
        });
        let (used, cap) = p.store().usage();
        assert!(used <= cap, "{used} > {cap}");
    }
    assert!(p.store().usage().0 > 0);
}

#[test]
fn dictionaries_are_shared_by_name() {
    let a = plugin("unit-shared", |_| {});
    let b = plugin("unit-shared", |_| {});
    let c = plugin("unit-other", |_| {});
    assert!(Arc::ptr_eq(a.store(), b.store()));
    assert!(!Arc::ptr_eq(a.store(), c.store()));
}

#[test]
fn consumer_prefixes_the_key_and_separates_entries() {
    static CONSUMERS: [crate::consumer::ConsumerSpec; 1] = [crate::consumer::ConsumerSpec {
        id: "5b1c3f0e-0000-4000-8000-000000000001",
        username: Some("alice"),
        custom_id: None,
        groups: &[],
    }];
    let p = plugin("unit-consumer", |c| c.consumers = &CONSUMERS);
    let mut cx = ctx();
    cx.request_uri = "/c".parse().expect("uri");
    cx.auth.consumer = Some(0);
    let s = p.key_string(&cx, &request("GET", "/c", &[]));
    assert_eq!(
        String::from_utf8(s).expect("utf-8"),
        format!("{}:{}|GET|GET /c HTTP/1.1||", CONSUMERS[0].id, ROUTE.id)
    );
    // HTTP/2 request lines say HTTP/2.0, as nginx's $request does.
    cx.http_version = http::Version::HTTP_2;
    cx.request_uri = "http://api.test/c".parse().expect("uri");
    let s = p.key_string(&cx, &request("GET", "/c", &[]));
    assert!(
        s.ends_with(b"|GET /c HTTP/2.0||"),
        "{}",
        String::from_utf8_lossy(&s)
    );
}
