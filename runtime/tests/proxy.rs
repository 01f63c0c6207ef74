//! The runtime end to end: a hand-written gateway, the real server and proxy, an echo upstream.

mod support;

use kiln_runtime::{ServerOptions, VERSION};
use support::*;

fn rule(host: Option<&'static str>, prefix: Option<&'static str>, service: Option<u32>) -> Rule {
    Rule {
        host,
        prefix,
        route: route_spec(service),
    }
}

#[tokio::test]
async fn upstream_paths_end_to_end() {
    within(async {
        let up = echo().await;
        let port = up.addr.port();
        let mut no_strip = rule(Some("c"), Some("/rou"), Some(0));
        no_strip.route.strip_path = false;
        let gw = TestGateway::new(
            vec![
                rule(Some("a"), Some("/rou"), Some(0)),
                rule(Some("b"), Some("/route"), Some(1)),
                no_strip,
                rule(Some("d"), None, Some(2)),
            ],
            vec![
                service_spec(Some("/srv"), vec![(port, 100)]),
                service_spec(Some("/service/"), vec![(port, 100)]),
                service_spec(Some("/service"), vec![(port, 100)]),
            ],
        );
        let gw = start(gw, ServerOptions::default()).await;
        // (host, request target, upstream target)
        let rows = [
            ("a", "/roureq", "/srv/req"),
            ("a", "/rou", "/srv"),
            ("a", "/rou/x?y=1&z", "/srv/x?y=1&z"),
            ("a", "/rou/a%20b/%2f?", "/srv/a%20b/%2F?"),
            ("b", "/route", "/service"),
            ("b", "/route/", "/service/"),
            ("b", "/route%2E/req", "/service/req"),
            ("c", "/roureq", "/srv/roureq"),
            ("c", "/rou/h%65llo/../x", "/srv/rou/x"),
            ("d", "/", "/service"),
            ("d", "/anything", "/service/anything"),
        ];
        for (host, target, want) in rows {
            let got = get(gw.addr, host, target, &[]).await;
            assert_eq!(got.status, 200, "{host} {target}: {}", got.text());
            assert_eq!(got.json()["uri"], want, "{host} {target}");
        }
    })
    .await
}

#[tokio::test]
async fn forwarded_headers_via_and_request_id() {
    within(async {
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, Some("/api"), Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let got = get(
            gw.addr,
            "Example.COM:9999",
            "/api//x/../y?q=1",
            &[
                ("x-forwarded-for", "10.0.0.1"),
                ("via", "1.0 corp"),
                ("x-forwarded-prefix", "/evil"),
            ],
        )
        .await;
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(got.json()["uri"], "/y?q=1");
        assert_eq!(
            got.upstream_one("host").as_deref(),
            Some(&*format!("127.0.0.1:{}", up.addr.port()))
        );
        assert_eq!(got.upstream_one("x-real-ip").as_deref(), Some("127.0.0.1"));
        assert_eq!(
            got.upstream_one("x-forwarded-for").as_deref(),
            Some("10.0.0.1, 127.0.0.1")
        );
        assert_eq!(
            got.upstream_one("x-forwarded-proto").as_deref(),
            Some("http")
        );
        assert_eq!(
            got.upstream_one("x-forwarded-host").as_deref(),
            Some("example.com")
        );
        let port = gw.addr.port().to_string();
        assert_eq!(
            got.upstream_one("x-forwarded-port").as_deref(),
            Some(port.as_str())
        );
        assert_eq!(
            got.upstream_one("x-forwarded-path").as_deref(),
            Some("/api//x/../y")
        );
        assert_eq!(
            got.upstream_one("x-forwarded-prefix").as_deref(),
            Some("/api")
        );
        let via = format!("1.0 corp, 1.1 kiln/{VERSION}");
        assert_eq!(got.upstream_one("via").as_deref(), Some(via.as_str()));
        let id = got
            .upstream_one("x-kong-request-id")
            .expect("request id upstream");
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{id}"
        );
        assert_eq!(got.header("x-kong-request-id"), Some(id.as_str()));
        // downstream: proxied response headers
        let server = format!("kiln/{VERSION}");
        assert_eq!(got.header("server"), Some(server.as_str()));
        let via = format!("1.1 kiln/{VERSION}");
        assert_eq!(got.header("via"), Some(via.as_str()));
        assert!(got.header("x-kong-upstream-latency").is_some());
        assert!(got.header("x-kong-proxy-latency").is_some());
        assert!(got.header("x-kong-response-latency").is_none());

        // no X-Forwarded-Prefix when nothing but "/" was stripped; upstream Server and Via kept
        let gw2 = TestGateway::new(
            vec![rule(None, Some("/"), Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw2 = start(gw2, ServerOptions::default()).await;
        let got = get(gw2.addr, "h", "/z", &[("x-echo-header", "server=echo/1")]).await;
        assert_eq!(got.upstream_one("x-forwarded-prefix"), None);
        assert_eq!(got.header("server"), Some("echo/1"));
        let got = get(gw2.addr, "h", "/z", &[("x-echo-header", "via=1.1 inner")]).await;
        let via = format!("1.1 inner, 1.1 kiln/{VERSION}");
        assert_eq!(got.header("via"), Some(via.as_str()));
    })
    .await
}

#[tokio::test]
async fn preserve_host() {
    within(async {
        let up = echo().await;
        let mut keep = rule(Some("preserved.com"), None, Some(0));
        keep.route.preserve_host = true;
        let gw = TestGateway::new(
            vec![keep, rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let got = get(gw.addr, "preserved.com:123", "/", &[]).await;
        assert_eq!(
            got.upstream_one("host").as_deref(),
            Some("preserved.com:123")
        );
        let got = get(gw.addr, "other.com", "/", &[]).await;
        let want = format!("127.0.0.1:{}", up.addr.port());
        assert_eq!(got.upstream_one("host").as_deref(), Some(want.as_str()));
    })
    .await
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed() {
    within(async {
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let got = get(
            gw.addr,
            "h",
            "/",
            &[
                ("connection", "x-secret"),
                ("x-secret", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("proxy", "http://evil"),
                ("te", "trailers"),
                ("x-kept", "yes"),
            ],
        )
        .await;
        assert_eq!(got.status, 200);
        for gone in ["x-secret", "keep-alive", "proxy-connection", "proxy"] {
            assert!(
                got.upstream_header(gone).is_empty(),
                "{gone} reached the upstream"
            );
        }
        assert_eq!(got.upstream_one("te").as_deref(), Some("trailers"));
        assert_eq!(
            got.upstream_one("connection").as_deref(),
            Some("keep-alive")
        );
        assert_eq!(got.upstream_one("x-kept").as_deref(), Some("yes"));
        let got = get(gw.addr, "h", "/", &[("te", "gzip")]).await;
        assert!(got.upstream_header("te").is_empty());
        // response side
        let got = get(
            gw.addr,
            "h",
            "/",
            &[("x-echo-header", "keep-alive=timeout=9")],
        )
        .await;
        assert!(got.header("keep-alive").is_none());
        let got = get(
            gw.addr,
            "h",
            "/",
            &[("x-echo-header", "proxy-connection=close")],
        )
        .await;
        assert!(got.header("proxy-connection").is_none());
    })
    .await
}

fn assert_generated(got: &Got) {
    let server = format!("kiln/{VERSION}");
    assert_eq!(got.header("server"), Some(server.as_str()));
    assert!(got.header("x-kong-response-latency").is_some());
    assert!(got.header("x-kong-upstream-latency").is_none());
    assert_eq!(got.header("x-kong-request-id").map(str::len), Some(32));
}

#[tokio::test]
async fn gateway_generated_errors() {
    within(async {
        let dead = dead_port().await;
        let mut https = rule(Some("secure"), None, Some(0));
        https.route.https_only = true;
        let mut redirect = rule(Some("redir"), None, Some(0));
        redirect.route.https_only = true;
        redirect.route.https_redirect_status_code = 308;
        let gw = TestGateway::new(
            vec![rule(Some("nosvc"), None, None), rule(Some("dead"), None, Some(0)), https, redirect],
            vec![service_spec(None, vec![(dead, 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;

        let got = get(gw.addr, "nowhere", "/x", &[]).await;
        assert_eq!(got.status, 404);
        assert_generated(&got);
        assert_eq!(got.header("content-type"), Some("application/json; charset=utf-8"));
        let id = got.header("x-kong-request-id").unwrap_or_default().to_owned();
        assert_eq!(
            got.text(),
            format!("{{\n  \"message\":\"no Route matched with those values\",\n  \"request_id\":\"{id}\"\n}}")
        );

        let got = get(gw.addr, "nosvc", "/", &[("accept", "text/plain")]).await;
        assert_eq!(got.status, 503);
        assert_generated(&got);
        let id = got.header("x-kong-request-id").unwrap_or_default().to_owned();
        assert_eq!(got.text(), format!("no Service found with those values\nrequest_id: {id}\n"));

        // connect refused: 502 in the error_page format (text/plain without Accept)
        let got = get(gw.addr, "dead", "/", &[]).await;
        assert_eq!(got.status, 502);
        assert_generated(&got);
        let id = got.header("x-kong-request-id").unwrap_or_default().to_owned();
        assert_eq!(
            got.text(),
            format!("An invalid response was received from the upstream server\nrequest_id: {id}\n")
        );
        let got = get(gw.addr, "dead", "/", &[("accept", "application/json")]).await;
        assert_eq!(got.json()["message"], "An invalid response was received from the upstream server");

        let got = get(gw.addr, "secure", "/a?b=1", &[]).await;
        assert_eq!(got.status, 426);
        assert_generated(&got);
        assert_eq!(got.text(), r#"{"message":"Please use HTTPS protocol"}"#);
        assert_eq!(got.header("connection"), Some("Upgrade"));
        assert_eq!(got.header("upgrade"), Some("TLS/1.2, HTTP/1.1"));

        let got = get(gw.addr, "redir:8000", "/a/../b?c=%20", &[]).await;
        assert_eq!(got.status, 308);
        assert_generated(&got);
        assert_eq!(got.header("location"), Some("https://redir/a/../b?c=%20"));
        assert!(got.body.is_empty());

        // HTTP/1.1 without Host
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(gw.addr).await.expect("connect");
            s.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await.expect("write");
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            let text = String::from_utf8_lossy(&buf);
            assert!(text.starts_with("HTTP/1.1 400"), "{text}");
            assert!(text.contains("Bad request\nrequest_id: "), "{text}");
        }

        for bad in ["/%zz", "/../etc", "/a%00"] {
            let got = get(gw.addr, "nowhere", bad, &[]).await;
            assert_eq!(got.status, 400, "{bad}");
            assert_generated(&got);
            // formatted by the error_page handler: text/plain without Accept/Content-Type
            let id = got.header("x-kong-request-id").unwrap_or_default().to_owned();
            assert_eq!(got.text(), format!("Bad request\nrequest_id: {id}\n"));
        }
    })
    .await
}

#[tokio::test]
async fn read_timeout_is_504() {
    within(async {
        let up = echo().await;
        let mut spec = service_spec(None, vec![(up.addr.port(), 100)]);
        spec.read_timeout_ms = 200;
        let gw = TestGateway::new(vec![rule(None, None, Some(0))], vec![spec]);
        let gw = start(gw, ServerOptions::default()).await;
        let got = get(gw.addr, "h", "/", &[("x-echo-hang", "1")]).await;
        assert_eq!(got.status, 504);
        assert_generated(&got);
        assert!(
            got.text()
                .starts_with("The upstream server is timing out\n"),
            "{}",
            got.text()
        );

        // stalled mid-body: the downstream response is cut, not completed
        let mut tx = h1(gw.addr).await;
        let req = http::Request::builder()
            .uri("/")
            .header("host", "h")
            .header("x-echo-partial", "1")
            .body(empty())
            .expect("request");
        let resp = tx.send_request(req).await.expect("head arrives");
        assert_eq!(resp.status(), 200);
        use http_body_util::BodyExt;
        assert!(
            resp.into_body().collect().await.is_err(),
            "a cut body must not look complete"
        );
    })
    .await
}

#[tokio::test]
async fn retries_move_to_the_next_target() {
    within(async {
        let up = echo().await;
        let dead = dead_port().await;
        let mut with_retry = service_spec(None, vec![(dead, 100), (up.addr.port(), 100)]);
        with_retry.retries = 1;
        let without = service_spec(None, vec![(dead, 100), (up.addr.port(), 100)]);
        let gw = TestGateway::new(
            vec![
                rule(Some("retry"), None, Some(0)),
                rule(Some("once"), None, Some(1)),
            ],
            vec![with_retry, without],
        );
        let gw = start(gw, ServerOptions::default()).await;
        for _ in 0..6 {
            let got = get(gw.addr, "retry", "/", &[("via", "1.0 c")]).await;
            assert_eq!(got.status, 200, "{}", got.text());
            // a retried request is rewritten once, not once per attempt
            assert_eq!(
                got.upstream_one("x-forwarded-for").as_deref(),
                Some("127.0.0.1")
            );
            let via = format!("1.0 c, 1.1 kiln/{VERSION}");
            assert_eq!(got.upstream_one("via").as_deref(), Some(via.as_str()));
        }
        // without retries, round-robin sends every other request to the dead target
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(get(gw.addr, "once", "/", &[]).await.status.as_u16());
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 200, 502, 502]);
    })
    .await
}

#[tokio::test]
async fn keep_alive_reuses_one_upstream_connection() {
    within(async {
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let mut tx = h1(gw.addr).await;
        for i in 0..5 {
            let got = send(&mut tx, "h", "/", &[]).await;
            assert_eq!(got.status, 200);
            assert_eq!(got.json()["connection"], 0, "request {i}");
        }
        // a streamed body read to the end also returns its connection
        let got = send(&mut tx, "h", "/", &[("x-echo-bytes", "300000")]).await;
        assert_eq!(got.body.len(), 300_000);
        let got = get(gw.addr, "h", "/", &[]).await;
        assert_eq!(got.json()["connection"], 0);
        assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    })
    .await
}

#[tokio::test]
async fn nothing_of_a_request_reaches_the_next_on_its_connection() {
    within(async {
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(Some("h"), None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let mut tx = h1(gw.addr).await;
        // proxied, with a client header and an upstream header
        let first = send(
            &mut tx,
            "h",
            "/first?a=1",
            &[("x-client", "1"), ("x-echo-header", "x-up=first")],
        )
        .await;
        assert_eq!(first.status, 200);
        assert_eq!(first.header("x-up"), Some("first"));
        assert_eq!(first.upstream_one("x-client").as_deref(), Some("1"));
        // answered by the gateway itself
        let missed = send(&mut tx, "elsewhere", "/", &[]).await;
        assert_eq!(missed.status, 404);
        assert_eq!(missed.header("x-up"), None);
        // proxied again, with fewer fields and another path
        let last = send(&mut tx, "h", "/last", &[]).await;
        assert_eq!(last.status, 200);
        assert_eq!(last.json()["uri"], "/last");
        assert_eq!(last.header("x-up"), None);
        assert_eq!(last.upstream_one("x-client"), None);
        assert_eq!(last.upstream_one("x-echo-header"), None);
        let ids: Vec<_> = [&first, &missed, &last]
            .iter()
            .map(|r| r.header("x-kong-request-id").map(str::to_owned))
            .collect();
        assert!(ids.iter().all(Option::is_some), "{ids:?}");
        assert!(
            ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
            "{ids:?}"
        );
        assert_eq!(
            last.upstream_one("x-kong-request-id").as_deref(),
            ids[2].as_deref()
        );
    })
    .await
}

#[tokio::test]
async fn http2_prior_knowledge() {
    within(async {
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(Some("h2.example"), Some("/v"), Some(0))],
            vec![service_spec(Some("/up"), vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let mut tx = h2(gw.addr).await;
        // Streams reuse the memory of earlier ones on the worker: longer, then shorter
        // paths, and a 404 between them, leave nothing behind.
        let cases = [
            ("/v/x?k=v", "/up/x?k=v"),
            (
                "/v/a-much-longer-path/with/segments?and=a&longer=query",
                "/up/a-much-longer-path/with/segments?and=a&longer=query",
            ),
            ("/v/x?k=v", "/up/x?k=v"),
            ("/v", "/up"),
        ];
        for (i, (path, upstream)) in cases.into_iter().enumerate() {
            if i == 2 {
                let got = send_h2(&mut tx, "http://nope/some/other/path").await;
                assert_eq!(got.status, 404);
            }
            let got = send_h2(&mut tx, &format!("http://h2.example{path}")).await;
            assert_eq!(got.status, 200, "{}", got.text());
            assert_eq!(got.json()["uri"], upstream);
            assert_eq!(got.json()["version"], "HTTP/1.1");
            let via = format!("2 kiln/{VERSION}");
            assert_eq!(got.upstream_one("via").as_deref(), Some(via.as_str()));
            assert_eq!(
                got.upstream_one("x-forwarded-host").as_deref(),
                Some("h2.example")
            );
            assert!(got.header("x-kong-request-id").is_some());
        }
        let got = send_h2(&mut tx, "http://nope/").await;
        assert_eq!(got.status, 404);
    })
    .await
}

#[tokio::test]
async fn status_listener() {
    within(async {
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let got = get(gw.status, "s", "/health", &[]).await;
        assert_eq!(
            (got.status.as_u16(), got.text().as_str()),
            (200, r#"{"status":"ok"}"#)
        );
        get(gw.addr, "h", "/", &[]).await;
        get(gw.addr, "h", "/", &[]).await;
        let got = get(gw.status, "s", "/status", &[]).await;
        let json = got.json();
        assert_eq!(json["version"], VERSION);
        assert_eq!(json["source"], "tests/kong.yml");
        assert_eq!(json["config_sha256"], "0123456789abcdef");
        assert_eq!(json["requests_served"], 2);
        assert!(json["uptime_seconds"].is_u64());
        assert_eq!(get(gw.status, "s", "/other", &[]).await.status, 404);
    })
    .await
}

#[tokio::test]
async fn drain_finishes_in_flight_requests_and_refuses_new_connections() {
    within(async {
        let mut up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let mut gw = start(gw, ServerOptions::default()).await;
        let addr = gw.addr;
        let mut in_flight = Vec::new();
        for _ in 0..3 {
            in_flight.push(tokio::spawn(async move {
                get(addr, "h", "/", &[("x-echo-hold", "1")]).await
            }));
        }
        for _ in 0..3 {
            up.arrived
                .recv()
                .await
                .expect("request reached the upstream");
        }
        gw.stop();
        // /health turns 503 only after the proxy listener was closed
        loop {
            if get(gw.status, "s", "/health", &[]).await.status == 503 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "new connections must be refused"
        );
        assert!(
            !gw.task.is_finished(),
            "the server waits for in-flight requests"
        );
        up.release.add_permits(3);
        for h in in_flight {
            let got = h.await.expect("client task");
            assert_eq!(got.status, 200);
        }
        (&mut gw.task)
            .await
            .expect("server task")
            .expect("server result");
    })
    .await
}

#[tokio::test]
async fn drain_timeout_cuts_what_is_left() {
    within(async {
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let opts = ServerOptions {
            drain_timeout: std::time::Duration::from_millis(200),
            ..ServerOptions::default()
        };
        let mut gw = start(gw, opts).await;
        let addr = gw.addr;
        let client = tokio::spawn(async move {
            let mut tx = h1(addr).await;
            let req = http::Request::builder()
                .uri("/")
                .header("host", "h")
                .header("x-echo-hang", "1")
                .body(empty())
                .expect("request");
            tx.send_request(req).await.is_err()
        });
        // x-echo-hang does not report arrival; wait until the upstream saw a connection
        while up.connections.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        gw.stop();
        (&mut gw.task)
            .await
            .expect("server task")
            .expect("server result");
        assert!(client.await.expect("client"), "the hung request is cut");
    })
    .await
}

#[tokio::test]
async fn streams_64_mib_both_ways() {
    within(async {
        const N: u64 = 64 * 1024 * 1024;
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let mut tx = h1(gw.addr).await;

        use http_body_util::BodyExt;
        let req = http::Request::builder()
            .method("POST")
            .uri("/upload")
            .header("host", "h")
            .header("x-echo-sink", "1")
            .body(Repeat::new(N).boxed())
            .expect("request");
        let got = read(tx.send_request(req).await.expect("response")).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.json()["received"], N);

        let n = N.to_string();
        let req = http::Request::builder()
            .uri("/download")
            .header("host", "h")
            .header("x-echo-bytes", n.as_str())
            .body(empty())
            .expect("request");
        let resp = tx.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            total += frame
                .expect("frame")
                .data_ref()
                .map_or(0, |d| d.len() as u64);
        }
        assert_eq!(total, N);
    })
    .await
}

#[tokio::test]
async fn write_timeout_is_504() {
    within(async {
        // an upstream that accepts connections and never reads from them
        let sink = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = sink.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = sink.accept().await {
                held.push(s);
            }
        });
        let mut spec = service_spec(None, vec![(port, 100)]);
        spec.write_timeout_ms = 300;
        // long enough that only the write timer can explain a quick 504
        spec.read_timeout_ms = 30_000;
        let gw = TestGateway::new(vec![rule(None, None, Some(0))], vec![spec]);
        let gw = start(gw, ServerOptions::default()).await;
        // HTTP/2 downstream: the early 504 arrives while the upload is still being sent
        let mut tx = h2(gw.addr).await;
        use http_body_util::BodyExt;
        let req = http::Request::builder()
            .method("POST")
            .uri("http://h/upload")
            .body(Repeat::new(256 * 1024 * 1024).boxed())
            .expect("request");
        let resp = tokio::time::timeout(std::time::Duration::from_secs(10), tx.send_request(req))
            .await
            .expect("504 well before read_timeout")
            .expect("response");
        let got = read(resp).await;
        assert_eq!(got.status, 504, "{}", got.text());
        assert!(
            got.text()
                .starts_with("The upstream server is timing out\n"),
            "{}",
            got.text()
        );
    })
    .await
}

#[tokio::test]
async fn idle_connections_are_closed() {
    within(async {
        let gw = TestGateway::new(vec![], vec![]);
        let opts = ServerOptions {
            idle_timeout: std::time::Duration::from_millis(200),
            ..ServerOptions::default()
        };
        let gw = start(gw, opts).await;

        // HTTP/2: closed by the idle timer after its one request
        let stream = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        let (mut tx, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("handshake");
        let conn = tokio::spawn(conn);
        assert_eq!(send_h2(&mut tx, "http://h/").await.status, 404);
        tokio::time::timeout(std::time::Duration::from_secs(5), conn)
            .await
            .expect("HTTP/2 connection closed by the server")
            .expect("conn task")
            .expect("clean close");

        // HTTP/1.1 likewise
        let stream = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        let (mut tx, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        let conn = tokio::spawn(conn);
        assert_eq!(send(&mut tx, "h", "/", &[]).await.status, 404);
        tokio::time::timeout(std::time::Duration::from_secs(5), conn)
            .await
            .expect("HTTP/1 connection closed by the server")
            .expect("conn task")
            .expect("clean close");
    })
    .await
}

#[tokio::test]
async fn slow_and_oversized_request_heads() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    within(async {
        let gw = TestGateway::new(vec![], vec![]);
        let opts = ServerOptions {
            header_read_timeout: std::time::Duration::from_millis(200),
            ..ServerOptions::default()
        };
        let gw = start(gw, opts).await;

        // slowloris: an unfinished head is dropped after header_read_timeout
        let mut s = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: 1\r\n")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let closed =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "the server must close a connection that never finishes its head"
        );
        assert!(!buf.starts_with(b"HTTP/1.1 404"), "no request was routed");

        // a head over max_header_bytes (64 KiB) is refused with 431
        let mut s = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        let big = "a".repeat(100 * 1024);
        let head = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {big}\r\n\r\n");
        let _ = s.write_all(head.as_bytes()).await;
        let mut buf = vec![0u8; 64];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");
    })
    .await
}

#[tokio::test]
async fn connect_timeout_is_504() {
    within(async {
        // A listener whose accept queue is full: the kernel drops further SYNs, so a connect
        // neither succeeds nor fails until the SYN retransmits (≥ 1 s).
        let sock = tokio::net::TcpSocket::new_v4().expect("socket");
        sock.bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let full = sock.listen(0).expect("listen");
        let addr = full.local_addr().expect("addr");
        let mut fillers = Vec::new();
        for _ in 0..3 {
            let short = std::time::Duration::from_millis(300);
            if let Ok(Ok(s)) =
                tokio::time::timeout(short, tokio::net::TcpStream::connect(addr)).await
            {
                fillers.push(s);
            }
        }
        assert!(
            !fillers.is_empty(),
            "the queue holds at least one connection"
        );
        let mut spec = service_spec(None, vec![(addr.port(), 100)]);
        spec.connect_timeout_ms = 200;
        spec.read_timeout_ms = 30_000;
        let gw = TestGateway::new(vec![rule(None, None, Some(0))], vec![spec]);
        let gw = start(gw, ServerOptions::default()).await;
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            get(gw.addr, "h", "/", &[]),
        )
        .await
        .expect("504 from the connect timeout, not a later one");
        assert_eq!(got.status, 504, "{}", got.text());
        drop(full);
    })
    .await
}

/// An upstream that answers the first request of each connection and drops the connection,
/// unanswered, on the second: a keep-alive connection closed just as it is reused.
async fn one_shot_upstream() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let conns = std::sync::Arc::new(AtomicUsize::new(0));
    let count = conns.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let served = std::sync::Arc::new(AtomicUsize::new(0));
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |_req: http::Request<hyper::body::Incoming>| {
                        let first = served.fetch_add(1, Ordering::SeqCst) == 0;
                        async move {
                            if first {
                                Ok(http::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::from_static(b"ok"),
                                )))
                            } else {
                                Err("drop the connection")
                            }
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, conns)
}

#[tokio::test]
async fn reused_connection_closed_by_upstream() {
    within(async {
        let (addr, conns) = one_shot_upstream().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        let mut tx = h1(gw.addr).await;
        assert_eq!(send(&mut tx, "h", "/", &[]).await.status, 200);
        // pooled connection dropped by the upstream: the GET is replayed on a new connection
        let got = send(&mut tx, "h", "/", &[]).await;
        assert_eq!((got.status.as_u16(), got.text().as_str()), (200, "ok"));
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 2);
        // a POST with a body is never replayed
        use http_body_util::BodyExt;
        let req = http::Request::builder()
            .method("POST")
            .uri("/")
            .header("host", "h")
            .body(
                http_body_util::Full::new(bytes::Bytes::from_static(b"data"))
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .expect("request");
        let got = read(tx.send_request(req).await.expect("response")).await;
        assert_eq!(got.status, 502);
        assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 2);
    })
    .await
}

#[tokio::test]
async fn a_panicking_chain_answers_500_and_the_connection_lives_on() {
    within(async {
        let up = echo().await;
        let mut boom = rule(Some("boom"), None, Some(0));
        boom.route.name = Some("panic");
        let gw = TestGateway::new(
            vec![boom, rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let gw = start(gw, ServerOptions::default()).await;
        for mut tx in [None, Some(h2(gw.addr).await)] {
            let mut h1tx = h1(gw.addr).await;
            for host in ["boom", "fine", "boom", "fine"] {
                let got = match tx.as_mut() {
                    Some(tx) => {
                        let req = http::Request::builder()
                            .uri(format!("http://{host}/"))
                            .body(empty())
                            .expect("request");
                        read(tx.send_request(req).await.expect("response")).await
                    }
                    None => send(&mut h1tx, host, "/", &[]).await,
                };
                if host == "boom" {
                    assert_eq!(got.status, 500);
                    assert_eq!(got.text(), r#"{"message":"An unexpected error occurred"}"#);
                    assert_generated(&got);
                } else {
                    assert_eq!(got.status, 200);
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_after_the_send_timeout() {
    within(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        const N: u64 = 512 * 1024 * 1024;
        let up = echo().await;
        let gw = TestGateway::new(
            vec![rule(None, None, Some(0))],
            vec![service_spec(None, vec![(up.addr.port(), 100)])],
        );
        let opts = ServerOptions {
            send_timeout: std::time::Duration::from_millis(300),
            ..ServerOptions::default()
        };
        let gw = start(gw, opts).await;
        let mut s = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        let req = format!("GET /download HTTP/1.1\r\nhost: h\r\nx-echo-bytes: {N}\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("send");
        // Read nothing until the gateway's writes have been blocked for longer than the
        // send timeout (the socket buffers fill within milliseconds).
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let mut total = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        assert!(
            total < N,
            "the connection was closed early ({total} bytes read)"
        );
    })
    .await
}
