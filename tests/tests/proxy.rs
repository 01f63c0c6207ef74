//! Proxy behaviour end to end (kong-compat.md §2.4–2.7): the `proxy` fixture compiled by
//! build.rs, served in-process, in front of the echo upstream.

use kiln_tests::harness::{get, start};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

/// (Host, request path) → path (with query) the upstream receives.
const PATHS: &[(&str, &str, &str)] = &[
    ("root.test", "/route/req", "/req"),
    ("root.test", "/routereq", "/req"),
    ("root.test", "/route", "/"),
    ("root-nostrip.test", "/route/req", "/route/req"),
    ("root-hostonly.test", "/x/y", "/x/y"),
    ("svc.test", "/route", "/service"),
    ("svc.test", "/route/", "/service/"),
    ("svc.test", "/route/req", "/service/req"),
    ("svc.test", "/routereq", "/service/req"),
    ("svc.test", "/route/a?b=1&c", "/service/a?b=1&c"),
    ("svc.test", "/route%2E/req", "/service/req"),
    ("svc-nostrip.test", "/route/req", "/service/route/req"),
    ("svc-slash.test", "/route/", "/service/"),
    ("svc-hostonly.test", "/", "/service"),
    ("svc-hostonly.test", "/x", "/service/x"),
    ("svc-regex.test", "/users/42/profile", "/service/profile"),
    ("trailing.test", "/route", "/service"),
    ("trailing.test", "/route/", "/service/"),
];

#[tokio::test]
async fn upstream_paths_follow_kong_v0() {
    let gw = start::<proxy::Gateway>().await;
    let mut failures = Vec::new();
    for (host, path, want) in PATHS {
        let r = get(gw.addr, host, path, &[]).await;
        let got = r.json()["uri"].as_str().unwrap_or_default().to_owned();
        if r.status != 200 || got != *want {
            failures.push(format!("{host}{path}: want {want}, got {} {got}", r.status));
        }
    }
    gw.stop().await;
    assert!(
        failures.is_empty(),
        "path mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn forwarded_headers_and_via() {
    let gw = start::<proxy::Gateway>().await;
    let r = get(
        gw.addr,
        "root.test",
        "/route/req?q=1",
        &[("x-forwarded-for", "10.0.0.1")],
    )
    .await;
    assert_eq!(r.status, 200);
    let up = |n: &str| r.upstream_header(n);
    assert_eq!(up("host").as_deref(), Some("echo.test"));
    assert_eq!(up("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        up("x-forwarded-for").as_deref(),
        Some("10.0.0.1, 127.0.0.1")
    );
    assert_eq!(up("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(up("x-forwarded-host").as_deref(), Some("root.test"));
    assert_eq!(up("x-forwarded-port"), Some(gw.addr.port().to_string()));
    assert_eq!(up("x-forwarded-path").as_deref(), Some("/route/req"));
    assert_eq!(up("x-forwarded-prefix").as_deref(), Some("/route"));
    let via = format!("1.1 kiln/{}", kiln_runtime::VERSION);
    assert_eq!(up("via").as_deref(), Some(via.as_str()));
    let id = up("x-kong-request-id").expect("request id upstream");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(r.header("x-kong-request-id"), Some(id.as_str()));
    assert_eq!(
        r.header("server"),
        Some(format!("kiln/{}", kiln_runtime::VERSION).as_str())
    );
    assert!(r.header("via").is_some_and(|v| v.contains("kiln/")));
    assert!(r.header("x-kong-upstream-latency").is_some());
    assert!(r.header("x-kong-proxy-latency").is_some());
    // no prefix header when nothing was stripped
    let r = get(gw.addr, "root-nostrip.test", "/route/req", &[]).await;
    assert_eq!(r.upstream_header("x-forwarded-prefix"), None);
    gw.stop().await;
}

/// The latency headers come from the gateway's per-poll clock (runtime/src/clock.rs): the
/// upstream's wait is measured across the polls it spans, and a later request does not see
/// an earlier reading.
#[tokio::test]
async fn latency_headers_measure_the_upstream_wait() {
    let gw = start::<proxy::Gateway>().await;
    let ms = |r: &kiln_tests::harness::Reply, name: &str| -> u64 {
        r.header(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {:?}", r.header(name)))
    };
    let slow = get(
        gw.addr,
        "root.test",
        "/route/a",
        &[("x-echo-delay-ms", "150")],
    )
    .await;
    assert_eq!(slow.status, 200, "{:?}", slow.body);
    let upstream = ms(&slow, "x-kong-upstream-latency");
    assert!(
        (150..5_000).contains(&upstream),
        "upstream latency {upstream}"
    );
    assert!(ms(&slow, "x-kong-proxy-latency") < 150);
    let fast = get(gw.addr, "root.test", "/route/b", &[]).await;
    assert_eq!(fast.status, 200, "{:?}", fast.body);
    assert!(ms(&fast, "x-kong-upstream-latency") < 150);
    gw.stop().await;
}

#[tokio::test]
async fn preserve_host_and_hop_by_hop() {
    let gw = start::<proxy::Gateway>().await;
    let r = get(gw.addr, "preserve.test:1234", "/", &[]).await;
    assert_eq!(
        r.upstream_header("host").as_deref(),
        Some("preserve.test:1234")
    );
    let r = get(
        gw.addr,
        "root.test",
        "/route",
        &[
            ("connection", "x-private"),
            ("x-private", "1"),
            ("keep-alive", "300"),
            ("x-public", "2"),
        ],
    )
    .await;
    assert_eq!(r.upstream_header("x-private"), None);
    assert_eq!(r.upstream_header("keep-alive"), None);
    assert_eq!(r.upstream_header("x-public").as_deref(), Some("2"));
    gw.stop().await;
}

#[tokio::test]
async fn gateway_generated_answers() {
    let gw = start::<proxy::Gateway>().await;
    let r = get(gw.addr, "nowhere.test", "/", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "no Route matched with those values");
    assert!(r.json()["request_id"].is_string());
    assert!(r.header("x-kong-response-latency").is_some());

    let r = get(gw.addr, "none.test", "/", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "no Service found with those values");

    let r = get(gw.addr, "secure.test", "/x", &[]).await;
    assert_eq!(r.status, 426);
    assert_eq!(r.json()["message"], "Please use HTTPS protocol");
    assert_eq!(r.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));

    let r = get(gw.addr, "redirect.test", "/x?y=1", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://redirect.test/x?y=1"));

    let r = get(gw.addr, "dead.test", "/", &[]).await;
    assert_eq!(r.status, 502, "{:?}", r.body);

    let r = get(gw.addr, "drained.test", "/", &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json()["message"],
        "failure to get a peer from the ring-balancer"
    );

    let r = get(gw.addr, "slow.test", "/", &[("x-echo-delay-ms", "2000")]).await;
    assert_eq!(r.status, 504, "{:?}", r.body);
    gw.stop().await;
}

#[tokio::test]
async fn retries_move_to_the_next_target() {
    let gw = start::<proxy::Gateway>().await;
    for i in 0..6 {
        let r = get(gw.addr, "balanced.test", "/", &[]).await;
        assert_eq!(r.status, 200, "request {i}: {:?}", r.body);
        // also after a failed connect to dead.test:9: the Host of the target that answered
        assert_eq!(r.upstream_header("host").as_deref(), Some("echo.test"));
    }
    gw.stop().await;
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let gw = start::<proxy::Gateway>().await;
    let a = get(gw.addr, "root.test", "/route", &[]).await.json()["connection"].clone();
    let b = get(gw.addr, "root.test", "/route", &[]).await.json()["connection"].clone();
    assert!(a.is_u64());
    assert_eq!(
        a, b,
        "second request should reuse the pooled upstream connection"
    );
    gw.stop().await;
}

/// The upstream's response headers reach the client as sent, except hop-by-hop ones and
/// those the gateway sets (`Via` extended, `X-Kong-*` replaced) or a plugin sets.
#[tokio::test]
async fn upstream_response_headers() {
    let gw = start::<proxy::Gateway>().await;
    let r = get(
        gw.addr,
        "root.test",
        "/route",
        &[
            ("x-echo-response-header", "Via: 1.1 origin"),
            ("x-echo-response-header", "X-Up: a"),
            ("x-echo-response-header", "X-Up: b"),
            ("x-echo-response-header", "X-Kong-Proxy-Latency: 999"),
            ("x-echo-response-header", "X-Kong-Request-Id: upstream"),
            ("x-echo-response-header", "Keep-Alive: timeout=5"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let all = |n: &str| -> Vec<&str> {
        r.headers
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    let via = format!("1.1 origin, 1.1 kiln/{}", kiln_runtime::VERSION);
    assert_eq!(all("via"), [via.as_str()]);
    assert_eq!(all("x-up"), ["a", "b"]);
    assert_eq!(all("x-kong-proxy-latency").len(), 1);
    assert_ne!(r.header("x-kong-proxy-latency"), Some("999"));
    let id = r.upstream_header("x-kong-request-id").expect("request id");
    assert_eq!(all("x-kong-request-id"), [id.as_str()]);
    assert_eq!(r.header("keep-alive"), None);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("server"),
        Some(format!("kiln/{}", kiln_runtime::VERSION).as_str())
    );

    // the upstream's Server stays; a plain answer carries the gateway's lines
    let r = get(
        gw.addr,
        "root.test",
        "/route",
        &[("x-echo-response-header", "Server: origin/1")],
    )
    .await;
    assert_eq!(r.header("server"), Some("origin/1"));
    assert!(r.header("x-kong-upstream-latency").is_some());

    // correlation-id's echo replaces the upstream's header of the same name
    let r = get(
        gw.addr,
        "correlated.test",
        "/",
        &[
            ("x-request-id", "mine"),
            ("x-echo-response-header", "X-Request-ID: from-upstream"),
        ],
    )
    .await;
    let ids: Vec<_> = r.headers.get_all("x-request-id").iter().collect();
    assert_eq!(ids, ["mine"]);
    gw.stop().await;
}

/// HTTP/2 with prior knowledge: the same answer, headers in the HTTP/2 response's map.
#[tokio::test]
async fn h2c_requests_are_proxied() {
    let gw = start::<proxy::Gateway>().await;
    let req = http::Request::builder()
        .uri("http://root.test/route/req")
        .header("x-echo-response-header", "Via: 1.1 origin")
        .header("x-echo-response-header", "X-Up: a")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let parts = kiln_tests::harness::send_h2c(gw.addr, req).await;
    assert_eq!(parts.status, 200);
    assert_eq!(parts.version, http::Version::HTTP_2);
    let echoed = parts.json();
    assert_eq!(echoed["path"], "/req");
    assert_eq!(echoed["version"], "HTTP/1.1");
    let via = format!("2 kiln/{}", kiln_runtime::VERSION);
    assert_eq!(echoed["headers"]["via"].as_str(), Some(via.as_str()));
    let via_resp = format!("1.1 origin, 1.1 kiln/{}", kiln_runtime::VERSION);
    assert_eq!(parts.headers["via"], via_resp.as_str());
    assert_eq!(parts.headers["x-up"], "a");
    assert_eq!(parts.headers["content-type"], "application/json");
    assert!(parts.headers.contains_key("x-kong-upstream-latency"));
    assert_eq!(
        parts.headers["x-kong-request-id"],
        echoed["headers"]["x-kong-request-id"].as_str().expect("id")
    );
    gw.stop().await;
}

#[tokio::test]
async fn plugins_on_the_proxy_path() {
    let gw = start::<proxy::Gateway>().await;
    let r = get(gw.addr, "correlated.test", "/", &[]).await;
    let id = r
        .upstream_header("x-request-id")
        .expect("generated correlation id");
    assert_eq!(r.header("x-request-id"), Some(id.as_str()));
    assert_eq!(id.len(), 36, "uuid text: {id}");
    let r = get(gw.addr, "correlated.test", "/", &[("x-request-id", "mine")]).await;
    assert_eq!(r.upstream_header("x-request-id").as_deref(), Some("mine"));
    assert_eq!(r.header("x-request-id"), Some("mine"));

    // request-termination with a trigger: only when the trigger is present
    let r = get(gw.addr, "terminated.test", "/", &[("x-stop", "1")]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body, r#"{"message":"go away"}"#);
    let r = get(gw.addr, "terminated.test", "/", &[]).await;
    assert_eq!(r.status, 503, "no trigger: on to the (missing) service");
    gw.stop().await;
}
