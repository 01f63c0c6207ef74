use std::ops::ControlFlow;

use super::*;
use crate::plugins::test_support::{ctx, ready, request};

fn cors(config: Config) -> Cors {
    Cors::new(config).expect("valid config")
}

/// The response headers `header_filter` leaves on an empty 200 for a request with `origin`.
fn filtered(p: &Cors, origin: Option<&'static str>) -> http::HeaderMap {
    let mut cx = ctx();
    cx.request_origin = origin.map(HeaderValue::from_static);
    let mut resp = response::no_body(200);
    p.header_filter(&mut cx, &mut resp);
    resp.headers().clone()
}

fn acao(h: &http::HeaderMap) -> Option<&str> {
    h.get(ACAO).and_then(|v| v.to_str().ok())
}

fn vary(h: &http::HeaderMap) -> Vec<&str> {
    h.get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

#[test]
fn normalize_like_kong() {
    let cases = [
        ("http://example.com", "http://example.com", "example.com"),
        ("http://example.com:80", "http://example.com", "example.com"),
        (
            "https://example.com:443",
            "https://example.com",
            "example.com",
        ),
        (
            "http://example.com:443",
            "http://example.com:443",
            "example.com",
        ),
        (
            "https://Example.com:8443/x",
            "https://Example.com:8443",
            "Example.com",
        ),
        (
            "https://user@example.com",
            "https://example.com",
            "example.com",
        ),
        ("http://[::1]:8080", "http://::1:8080", "::1"),
        ("example.com", "example.com", "example.com"),
        ("null", "null", "null"),
        ("http://", "http://", "http://"),
    ];
    for (input, domain, host) in cases {
        assert_eq!(
            normalize_origin(input),
            Normalized {
                domain: domain.into(),
                host: host.into()
            },
            "{input}"
        );
    }
}

#[test]
fn regex_entries_and_patterns() {
    assert!(!is_regex_origin("https://a.example.com:8443"));
    assert!(is_regex_origin(r"https://.*\.example\.com"));
    assert!(is_regex_origin("*"));
    assert_eq!(origin_pattern("a.com"), "^(?:a.com$)");
    assert_eq!(origin_pattern("^a.com$"), "^(?:a.com$)");
}

#[test]
fn all_origins() {
    for origins in [&[][..], &["*"][..]] {
        let p = cors(Config {
            origins,
            ..Config::DEFAULT
        });
        let h = filtered(&p, Some("https://x.test"));
        assert_eq!(acao(&h), Some("*"));
        assert!(vary(&h).is_empty());
        assert!(h.get(ACAC).is_none());
        // no Origin: still `*` (allow_origin_absent defaults to true)
        assert_eq!(acao(&filtered(&p, None)), Some("*"));
    }
    let strict = cors(Config {
        allow_origin_absent: false,
        ..Config::DEFAULT
    });
    assert!(filtered(&strict, None).is_empty());
}

#[test]
fn credentials_echo_the_origin() {
    let p = cors(Config {
        credentials: true,
        exposed_headers: &["X-A", "X-B"],
        ..Config::DEFAULT
    });
    let h = filtered(&p, Some("https://x.test"));
    assert_eq!(acao(&h), Some("https://x.test"));
    assert_eq!(vary(&h), ["Origin"]);
    assert_eq!(h[ACAC], "true");
    assert_eq!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS], "X-A,X-B");
    // without an Origin: `*`, no credentials
    let h = filtered(&p, None);
    assert_eq!(acao(&h), Some("*"));
    assert!(h.get(ACAC).is_none());
}

#[test]
fn single_plain_origin_is_sent_as_is() {
    let p = cors(Config {
        origins: &["https://app.test"],
        credentials: true,
        ..Config::DEFAULT
    });
    for origin in [Some("https://other.test"), None] {
        let h = filtered(&p, origin);
        assert_eq!(acao(&h), Some("https://app.test"));
        assert_eq!(vary(&h), ["Origin"]);
        assert_eq!(h[ACAC], "true");
    }
}

#[test]
fn origin_lists() {
    let p = cors(Config {
        origins: &[
            "https://app.test",
            "http://local.test:8080",
            r".*\.example\.com",
            r"https://(a|b)\.test:\d+",
        ],
        ..Config::DEFAULT
    });
    let cases = [
        ("https://app.test", Some("https://app.test")),
        ("https://app.test:443", Some("https://app.test")),
        ("http://app.test", None),
        ("https://app.test.evil", None),
        ("http://local.test:8080", Some("http://local.test:8080")),
        ("http://local.test", None),
        // regex without `:` is matched against the host only
        ("https://api.example.com", Some("https://api.example.com")),
        (
            "http://api.example.com:9000",
            Some("http://api.example.com:9000"),
        ),
        ("https://api.example.com.evil", None),
        ("https://example.com", None),
        // regex with `:` against scheme://host[:port]
        ("https://a.test:8443", Some("https://a.test:8443")),
        ("https://a.test", None),
        ("https://c.test:8443", None),
    ];
    for (origin, want) in cases {
        let h = filtered(&p, Some(origin));
        assert_eq!(acao(&h), want, "{origin}");
        assert_eq!(vary(&h), ["Origin"], "{origin}");
    }
    assert_eq!(acao(&filtered(&p, None)), None);
}

#[test]
fn star_in_a_list() {
    let p = cors(Config {
        origins: &["https://app.test", "*"],
        credentials: true,
        ..Config::DEFAULT
    });
    let h = filtered(&p, Some("https://x.test"));
    // `*`, then replaced by the origin because of credentials; Vary added twice as Kong does
    assert_eq!(acao(&h), Some("https://x.test"));
    assert_eq!(vary(&h), ["Origin", "Origin"]);
    assert_eq!(acao(&filtered(&p, None)), None);
}

#[test]
fn header_filter_overrides_upstream_acao() {
    let p = cors(Config {
        origins: &["https://app.test", "https://b.test"],
        ..Config::DEFAULT
    });
    let mut cx = ctx();
    cx.request_origin = Some(HeaderValue::from_static("https://nope.test"));
    let mut resp = response::no_body(200);
    resp.headers_mut().insert(ACAO, STAR);
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    p.header_filter(&mut cx, &mut resp);
    assert!(resp.headers().get(ACAO).is_none());
    assert_eq!(vary(resp.headers()), ["Accept", "Origin"]);
}

fn preflight(p: &Cors, headers: &[(&str, &str)]) -> (ControlFlow<Response>, Ctx) {
    let mut cx = ctx();
    let mut req = request("OPTIONS", "/", headers);
    cx.request_origin = req.headers().get(header::ORIGIN).cloned();
    let flow = ready(p.access(&mut cx, &mut req));
    (flow, cx)
}

#[test]
fn preflight_answer() {
    let p = cors(Config {
        origins: &["https://app.test", r"https://.*\.app\.test"],
        methods: &["GET", "POST"],
        max_age: Some(600),
        credentials: true,
        private_network: true,
        ..Config::DEFAULT
    });
    let (flow, mut cx) = preflight(
        &p,
        &[
            ("origin", "https://x.app.test"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "X-Token, Content-Type"),
            ("access-control-request-private-network", "true"),
        ],
    );
    let ControlFlow::Break(mut resp) = flow else {
        panic!("preflight passed on");
    };
    assert!(cx.kong_generated && cx.cors_preflight);
    let h = resp.headers();
    assert_eq!(resp.status(), 200);
    assert_eq!(acao(h), Some("https://x.app.test"));
    assert_eq!(vary(h), ["Origin"]);
    assert_eq!(h[ACAC], "true");
    assert_eq!(
        h[header::ACCESS_CONTROL_ALLOW_HEADERS],
        "X-Token, Content-Type"
    );
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "GET,POST");
    assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
    assert_eq!(h[ACAPN], "true");
    assert_eq!(h[header::CONTENT_LENGTH], "0");
    // header_filter adds nothing more to the preflight answer
    let before = resp.headers().clone();
    p.header_filter(&mut cx, &mut resp);
    assert_eq!(*resp.headers(), before);
}

#[test]
fn preflight_defaults_and_configured_headers() {
    let p = cors(Config {
        headers: &["X-A", "X-B"],
        ..Config::DEFAULT
    });
    let (flow, _) = preflight(
        &p,
        &[
            ("origin", "https://x.test"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "X-Other"),
            ("access-control-request-private-network", "true"),
        ],
    );
    let ControlFlow::Break(resp) = flow else {
        panic!("preflight passed on");
    };
    let h = resp.headers();
    assert_eq!(acao(h), Some("*"));
    assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "X-A,X-B");
    assert_eq!(
        h[header::ACCESS_CONTROL_ALLOW_METHODS],
        "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT"
    );
    assert!(h.get(header::ACCESS_CONTROL_MAX_AGE).is_none());
    assert!(h.get(ACAPN).is_none());
    assert!(h.get(ACAC).is_none());
    assert!(h.get(header::VARY).is_none());
}

#[test]
fn not_a_preflight() {
    let p = cors(Config::DEFAULT);
    for headers in [
        &[("origin", "https://x.test")][..],
        &[("access-control-request-method", "GET")][..],
    ] {
        let (flow, cx) = preflight(&p, headers);
        assert!(flow.is_continue());
        assert!(!cx.cors_preflight);
    }
    let mut cx = ctx();
    let mut req = request(
        "GET",
        "/",
        &[
            ("origin", "https://x.test"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert!(ready(p.access(&mut cx, &mut req)).is_continue());
    assert!(!cx.cors_preflight);
}

#[test]
fn preflight_continue_passes_on_and_adds_nothing() {
    let p = cors(Config {
        preflight_continue: true,
        ..Config::DEFAULT
    });
    let (flow, mut cx) = preflight(
        &p,
        &[
            ("origin", "https://x.test"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert!(flow.is_continue());
    let mut resp = response::no_body(204);
    p.header_filter(&mut cx, &mut resp);
    assert!(resp.headers().is_empty());
}

#[test]
fn invalid_regex_is_a_start_up_error() {
    let e = Cors::new(Config {
        origins: &["https://a.test", "(unclosed"],
        ..Config::DEFAULT
    })
    .expect_err("invalid regex");
    assert!(e.0.contains("(unclosed"), "{}", e.0);
}
