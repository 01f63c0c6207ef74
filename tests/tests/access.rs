//! Access control end to end (kong-compat.md §4.4 acl, §4.5 ip-restriction, §4.6 cors): the
//! `access` fixture compiled by build.rs, served in-process in front of the echo upstream.
//! The client connects from 127.0.0.1.
//!
//! acl with an authenticated consumer (200 + `X-Consumer-Groups`, 403) needs an
//! authentication plugin; those paths are unit-tested in runtime/src/plugins/acl/tests.rs
//! until key-auth lands, when they get end-to-end cases here.

use kiln_tests::harness::{get, request, start, Reply};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

const ORIGIN: &str = "origin";

/// Kong's error format: the message, and a request id equal to `X-Kong-Request-Id`.
fn assert_error(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = r.json();
    assert_eq!(body["message"], message);
    assert_eq!(
        body["request_id"].as_str(),
        r.header("x-kong-request-id"),
        "request_id of the body"
    );
    assert!(r.header("x-kong-response-latency").is_some());
}

fn vary(r: &Reply) -> Vec<&str> {
    r.headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

#[tokio::test]
async fn acl_without_a_consumer_is_401() {
    let gw = start::<access::Gateway>().await;
    for host in ["acl-allow.test", "acl-deny.test"] {
        let r = get(gw.addr, host, "/", &[]).await;
        assert_error(&r, 401, "Unauthorized");
        assert!(r.header("www-authenticate").is_none(), "{host}");
    }
    // the text format follows Accept
    let r = get(gw.addr, "acl-allow.test", "/", &[("accept", "text/plain")]).await;
    assert_eq!(r.status, 401);
    let id = r.header("x-kong-request-id").unwrap_or_default();
    assert_eq!(r.body, format!("Unauthorized\nrequest_id: {id}\n"));
    gw.stop().await;
}

#[tokio::test]
async fn ip_restriction() {
    let gw = start::<access::Gateway>().await;
    // allowed: reaches the upstream
    let r = get(gw.addr, "ip-allow.test", "/x", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uri"], "/x");
    // not in the allow-list
    let r = get(gw.addr, "ip-allow-other.test", "/", &[]).await;
    assert_error(&r, 403, "IP address not allowed: 127.0.0.1");
    // deny is checked before allow
    let r = get(gw.addr, "ip-deny.test", "/", &[]).await;
    assert_error(&r, 403, "IP address not allowed: 127.0.0.1");
    // X-Forwarded-For / X-Real-IP from the client do not count (no trusted_ips)
    let r = get(
        gw.addr,
        "ip-allow-other.test",
        "/",
        &[("x-forwarded-for", "10.0.0.1"), ("x-real-ip", "10.0.0.1")],
    )
    .await;
    assert_eq!(r.status, 403);
    // status and message
    let r = get(gw.addr, "ip-custom.test", "/", &[]).await;
    assert_error(&r, 451, "Unavailable here");
    gw.stop().await;
}

#[tokio::test]
async fn cors_default_config() {
    let gw = start::<access::Gateway>().await;
    let r = get(
        gw.addr,
        "cors-default.test",
        "/",
        &[(ORIGIN, "https://x.test")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(vary(&r).is_empty());
    assert!(r.header("access-control-allow-credentials").is_none());
    assert!(r.header("access-control-expose-headers").is_none());
    // no Origin: still `*` (allow_origin_absent)
    let r = get(gw.addr, "cors-default.test", "/", &[]).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    let r = request(
        gw.addr,
        "OPTIONS",
        "cors-default.test",
        "/",
        &[
            (ORIGIN, "https://x.test"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "X-A, X-B"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some("0"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-headers"), Some("X-A, X-B"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")
    );
    assert!(r.header("access-control-max-age").is_none());
    assert!(
        r.header("x-kong-response-latency").is_some(),
        "answered by the gateway"
    );

    // OPTIONS without Access-Control-Request-Method is not a preflight: proxied
    let r = request(
        gw.addr,
        "OPTIONS",
        "cors-default.test",
        "/",
        &[(ORIGIN, "https://x.test")],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "OPTIONS");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    gw.stop().await;
}

#[tokio::test]
async fn cors_origin_list() {
    let gw = start::<access::Gateway>().await;
    // (Origin, ACAO)
    let cases = [
        ("https://app.test", Some("https://app.test")),
        ("https://app.test:443", Some("https://app.test")),
        ("http://app.test", None),
        (
            "https://a.example.com:8443",
            Some("https://a.example.com:8443"),
        ),
        ("https://a.example.com", None),
        ("https://c.example.com:8443", None),
        (
            "http://www.example.org:8080",
            Some("http://www.example.org:8080"),
        ),
        ("https://www.example.org.evil.test", None),
    ];
    for (origin, want) in cases {
        let r = get(gw.addr, "cors-list.test", "/", &[(ORIGIN, origin)]).await;
        assert_eq!(r.status, 200, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), want, "{origin}");
        assert_eq!(vary(&r), ["Origin"], "{origin}");
        assert_eq!(
            r.header("access-control-allow-credentials"),
            Some("true"),
            "{origin}"
        );
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some("X-Total,X-Page")
        );
    }

    let r = request(
        gw.addr,
        "OPTIONS",
        "cors-list.test",
        "/",
        &[
            (ORIGIN, "https://b.example.com:9000"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "X-Other"),
            ("access-control-request-private-network", "true"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://b.example.com:9000")
    );
    assert_eq!(vary(&r), ["Origin"]);
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("X-Token,Content-Type")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(r.header("access-control-max-age"), Some("3600"));
    assert_eq!(
        r.header("access-control-allow-private-network"),
        Some("true")
    );
    assert!(
        r.header("access-control-expose-headers").is_none(),
        "not on a preflight"
    );
    gw.stop().await;
}

#[tokio::test]
async fn cors_single_origin_and_preflight_continue() {
    let gw = start::<access::Gateway>().await;
    let r = get(
        gw.addr,
        "cors-single.test",
        "/",
        &[(ORIGIN, "https://other.test")],
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://only.test")
    );
    assert_eq!(vary(&r), ["Origin"]);

    let r = request(
        gw.addr,
        "OPTIONS",
        "cors-continue.test",
        "/pre",
        &[
            (ORIGIN, "https://x.test"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "OPTIONS", "proxied to the upstream");
    assert!(r.header("access-control-allow-origin").is_none());
    assert!(r.header("access-control-allow-methods").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn cors_headers_on_gateway_errors() {
    let gw = start::<access::Gateway>().await;
    // acl's 401 (cors runs first, its header_filter on the error)
    let r = get(
        gw.addr,
        "cors-acl.test",
        "/",
        &[(ORIGIN, "https://other.test")],
    )
    .await;
    assert_error(&r, 401, "Unauthorized");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://other.test")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-expose-headers"), Some("X-Total"));
    assert_eq!(vary(&r), ["Origin"]);
    // a preflight is answered before authentication
    let r = request(
        gw.addr,
        "OPTIONS",
        "cors-acl.test",
        "/",
        &[
            (ORIGIN, "https://app.test"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    // ip-restriction's 403
    let r = get(gw.addr, "cors-ip.test", "/", &[(ORIGIN, "https://x.test")]).await;
    assert_error(&r, 403, "IP address not allowed: 127.0.0.1");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    gw.stop().await;
}

/// cors reads and extends the upstream's headers (`Vary`), so it sees every one of them.
#[tokio::test]
async fn cors_extends_the_upstream_vary() {
    let gw = start::<access::Gateway>().await;
    let r = get(
        gw.addr,
        "cors-list.test",
        "/",
        &[
            (ORIGIN, "https://app.test"),
            ("x-echo-response-header", "Vary: Accept-Encoding"),
            ("x-echo-response-header", "X-Up: 1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.test")
    );
    assert_eq!(vary(&r), ["Accept-Encoding", "Origin"]);
    assert_eq!(r.header("x-up"), Some("1"));
    gw.stop().await;
}
