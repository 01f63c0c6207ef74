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
