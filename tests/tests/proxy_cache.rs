//! proxy-cache end to end (kong-compat.md §4.13): the `proxy-cache` fixture served in-process
//! in front of the echo upstream (and, for coalescing, a counting upstream of this file).
//! Every test uses its own paths, so tests running in parallel never share an entry.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kiln_runtime::plugins::proxy_cache as pc;
use kiln_tests::harness::{get, request, within, Reply, Running};
use tokio::{net::TcpListener, sync::watch};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

async fn gateway() -> Running {
    kiln_tests::harness::start::<proxy_cache::Gateway>().await
}

fn cache_status(r: &Reply) -> Option<&str> {
    r.header("x-cache-status")
}

#[tokio::test]
async fn miss_then_hit_served_from_memory() {
    let gw = gateway().await;
    let h = "pc-default.test";
    let first = get(gw.addr, h, "/mh?b=2&a=1", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(cache_status(&first), Some("Miss"));
    let key = first.header("x-cache-key").expect("key").to_owned();
    assert_eq!(key.len(), 64);
    assert!(first.header("age").is_none());
    // The gateway's own headers on a proxied miss.
    assert!(first.header("via").is_some());
    assert!(first.header("x-kong-upstream-latency").is_some());

    let hit = get(gw.addr, h, "/mh?a=1&b=2", &[]).await;
    assert_eq!(hit.status, 200);
    assert_eq!(
        cache_status(&hit),
        Some("Hit"),
        "argument order does not matter"
    );
    assert_eq!(hit.header("x-cache-key"), Some(key.as_str()));
    assert_eq!(hit.header("age"), Some("0"));
    assert_eq!(hit.body, first.body, "the stored body, not a new echo");
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(
        hit.header("content-length"),
        Some(first.body.len().to_string().as_str())
    );
    // header_filter of the chain ran on the hit (correlation-id echoes its id), and the
    // gateway added its headers for a proxied-like answer.
    assert!(hit.header("kong-request-id").is_some());
    assert!(hit.header("x-kong-request-id").is_some());
    assert_ne!(
        hit.header("x-kong-request-id"),
        first.header("x-kong-request-id")
    );
    assert!(hit.header("via").is_some());
    assert!(hit.header("server").is_some());
    assert!(hit.header("x-kong-upstream-latency").is_none());
    assert!(hit.header("x-kong-response-latency").is_none());

    // The key is Kong's: sha256 of `<route id>|GET|GET /mh|a=1:b=2|`.
    let route_id = kiln_codegen::lower::check(&kiln_codegen::diag::SourceFile {
        name: "proxy-cache.yml".into(),
        text: include_str!("../fixtures/proxy-cache.yml").into(),
    })
    .0
    .expect("fixture lowers")
    .routes
    .iter()
    .find(|r| r.name.as_deref() == Some("pc-default"))
    .expect("route")
    .id
    .clone();
    let want = pc::key::hex_sha256(format!("{route_id}|GET|GET /mh|a=1:b=2|").as_bytes());
    assert_eq!(key, want);
    gw.stop().await;
}

#[tokio::test]
async fn bypass_by_method_status_and_content_type() {
    let gw = gateway().await;
    let h = "pc-default.test";
    let post = request(gw.addr, "POST", h, "/bp", &[]).await;
    assert_eq!(post.status, 200);
    assert_eq!(cache_status(&post), Some("Bypass"));
    assert!(post.header("x-cache-key").is_none());

    // 500 is not a cacheable status: Bypass, with the key; nothing stored.
    let err = get(gw.addr, h, "/bp-status", &[("x-echo-status", "500")]).await;
    assert_eq!(err.status, 500);
    assert_eq!(cache_status(&err), Some("Bypass"));
    assert!(err.header("x-cache-key").is_some());
    let again = get(gw.addr, h, "/bp-status", &[("x-echo-status", "500")]).await;
    assert_eq!(cache_status(&again), Some("Bypass"));

    // No Content-Type (the echo's streamed body): Bypass.
    let raw = get(gw.addr, h, "/bp-bytes", &[("x-echo-bytes", "10")]).await;
    assert_eq!(cache_status(&raw), Some("Bypass"));

    // HEAD is cacheable by default and keyed apart from GET.
    let head = request(gw.addr, "HEAD", h, "/bp-head", &[]).await;
    assert_eq!(cache_status(&head), Some("Miss"));
    let get1 = get(gw.addr, h, "/bp-head", &[]).await;
    assert_eq!(cache_status(&get1), Some("Miss"));
    let head2 = request(gw.addr, "HEAD", h, "/bp-head", &[]).await;
    assert_eq!(cache_status(&head2), Some("Hit"));
    assert!(head2.body.is_empty());
    gw.stop().await;
}

#[tokio::test]
async fn configured_methods_codes_and_wildcard_types() {
    let gw = gateway().await;
    let h = "pc-methods.test";
    let p1 = request(gw.addr, "POST", h, "/m", &[]).await;
    assert_eq!(cache_status(&p1), Some("Miss"));
    let p2 = request(gw.addr, "POST", h, "/m", &[]).await;
    assert_eq!(cache_status(&p2), Some("Hit"));
    let head = request(gw.addr, "HEAD", h, "/m", &[]).await;
    assert_eq!(
        cache_status(&head),
        Some("Bypass"),
        "HEAD not in request_method"
    );
    let t1 = get(gw.addr, h, "/teapot", &[("x-echo-status", "418")]).await;
    assert_eq!((t1.status.as_u16(), cache_status(&t1)), (418, Some("Miss")));
    let t2 = get(gw.addr, h, "/teapot", &[("x-echo-status", "418")]).await;
    assert_eq!((t2.status.as_u16(), cache_status(&t2)), (418, Some("Hit")));
    let nf = get(gw.addr, h, "/nf", &[("x-echo-status", "404")]).await;
    assert_eq!(
        cache_status(&nf),
        Some("Bypass"),
        "404 not in response_code here"
    );
    gw.stop().await;
}

#[tokio::test]
async fn expiry_follows_the_injected_clock() {
    let gw = gateway().await;
    let h = "pc-expiry.test";
    assert_eq!(
        cache_status(&get(gw.addr, h, "/exp", &[]).await),
        Some("Miss")
    );
    assert!(pc::advance_clock("pc-expiry", Duration::from_secs(9)));
    let hit = get(gw.addr, h, "/exp", &[]).await;
    assert_eq!(cache_status(&hit), Some("Hit"));
    assert_eq!(hit.header("age"), Some("9"));
    // Past cache_ttl (10 s): the entry is gone, fetched again.
    pc::advance_clock("pc-expiry", Duration::from_secs(2));
    assert_eq!(
        cache_status(&get(gw.addr, h, "/exp", &[]).await),
        Some("Miss")
    );
    let hit = get(gw.addr, h, "/exp", &[]).await;
    assert_eq!(
        (cache_status(&hit), hit.header("age")),
        (Some("Hit"), Some("0"))
    );
    gw.stop().await;
}

#[tokio::test]
async fn cache_control_subset() {
    let gw = gateway().await;
    let h = "pc-cc.test";
    // The echo sends no Cache-Control: TTL 0, never stored.
    let r = get(gw.addr, h, "/cc-none", &[]).await;
    assert_eq!(cache_status(&r), Some("Bypass"));
    // Request directives bypass the cache.
    for (k, v) in [
        ("cache-control", "no-store"),
        ("cache-control", "no-cache"),
        ("authorization", "Bearer x"),
    ] {
        let r = get(gw.addr, h, "/cc-req", &[(k, v)]).await;
        assert_eq!(cache_status(&r), Some("Bypass"), "{k}: {v}");
        assert!(r.header("x-cache-key").is_none());
    }
    // only-if-cached with nothing stored: 504 from the gateway.
    let r = get(
        gw.addr,
        h,
        "/cc-only",
        &[
            ("cache-control", "only-if-cached"),
            ("accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["message"], "The upstream server is timing out");
    gw.stop().await;
}

#[tokio::test]
async fn vary_query_params_and_headers() {
    let gw = gateway().await;
    let h = "pc-vary.test";
    assert_eq!(
        cache_status(&get(gw.addr, h, "/v?a=1&b=1", &[("x-tenant", "t1")]).await),
        Some("Miss")
    );
    // `b` is not in vary_query_params: same key.
    assert_eq!(
        cache_status(&get(gw.addr, h, "/v?a=1&b=2", &[("x-tenant", "t1")]).await),
        Some("Hit")
    );
    assert_eq!(
        cache_status(&get(gw.addr, h, "/v?a=2", &[("x-tenant", "t1")]).await),
        Some("Miss")
    );
    assert_eq!(
        cache_status(&get(gw.addr, h, "/v?a=1", &[("x-tenant", "t2")]).await),
        Some("Miss")
    );
    assert_eq!(
        cache_status(&get(gw.addr, h, "/v?a=1", &[("X-Tenant", "t2")]).await),
        Some("Hit")
    );
    assert_eq!(
        cache_status(&get(gw.addr, h, "/v?a=1", &[]).await),
        Some("Miss")
    );
    gw.stop().await;
}

#[tokio::test]
async fn ignore_uri_case() {
    let gw = gateway().await;
    assert_eq!(
        cache_status(&get(gw.addr, "pc-case.test", "/Case/X", &[]).await),
        Some("Miss")
    );
    assert_eq!(
        cache_status(&get(gw.addr, "pc-case.test", "/cASE/x", &[]).await),
        Some("Hit")
    );
    // Without it the path's case is part of the key.
    assert_eq!(
        cache_status(&get(gw.addr, "pc-default.test", "/Case/X", &[]).await),
        Some("Miss")
    );
    assert_eq!(
        cache_status(&get(gw.addr, "pc-default.test", "/case/x", &[]).await),
        Some("Miss")
    );
    gw.stop().await;
}

#[tokio::test]
async fn headers_hidden_unless_kong_debug() {
    let gw = gateway().await;
    let h = "pc-hidden.test";
    let miss = get(gw.addr, h, "/hid", &[]).await;
    let hit = get(gw.addr, h, "/hid", &[]).await;
    for r in [&miss, &hit] {
        assert!(r.header("x-cache-status").is_none());
        assert!(r.header("x-cache-key").is_none());
        assert!(r.header("age").is_none());
    }
    assert_eq!(hit.body, miss.body, "still served from the cache");
    let dbg = get(gw.addr, h, "/hid", &[("kong-debug", "1")]).await;
    assert_eq!(cache_status(&dbg), Some("Hit"));
    assert!(dbg.header("x-cache-key").is_some() && dbg.header("age").is_some());
    let bypass = request(gw.addr, "POST", h, "/hid", &[("kong-debug", "1")]).await;
    assert_eq!(cache_status(&bypass), Some("Bypass"));
    gw.stop().await;
}

#[tokio::test]
async fn memory_stays_within_the_budget() {
    let gw = gateway().await;
    let pad = "p".repeat(4000);
    let mut stored = 0;
    for i in 0..60 {
        let path = format!("/mem/{i}");
        let r = get(gw.addr, "pc-small.test", &path, &[("x-pad", &pad)]).await;
        assert_eq!(cache_status(&r), Some("Miss"));
        let (used, cap) = pc::dictionary_usage("pc-small").expect("dictionary");
        assert!(used <= cap, "{used} > {cap} after {i}");
        assert_eq!(cap, 65536);
        stored = stored.max(used);
    }
    assert!(stored > 16_000, "entries were stored ({stored} bytes)");
    // A body over max_entry_bytes is served whole and not stored.
    let big = "b".repeat(13_000);
    let r1 = get(gw.addr, "pc-small.test", "/mem-big", &[("x-pad", &big)]).await;
    assert!(r1.body.len() > 13_000);
    assert_eq!(cache_status(&r1), Some("Miss"));
    let r2 = get(gw.addr, "pc-small.test", "/mem-big", &[("x-pad", &big)]).await;
    assert_eq!(cache_status(&r2), Some("Miss"));
    gw.stop().await;
}

/// An upstream that counts requests and holds every answer until `gate` opens. Paths
/// containing `fail` answer 500.
async fn counting_upstream() -> (SocketAddr, Arc<AtomicU64>, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicU64::new(0));
    let (gate, gate_rx) = watch::channel(false);
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (c, gate_rx) = (c.clone(), gate_rx.clone());
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (c, mut gate_rx) = (c.clone(), gate_rx.clone());
                        async move {
                            c.fetch_add(1, Ordering::SeqCst);
                            let _ = gate_rx.wait_for(|open| *open).await;
                            let status = if req.uri().path().contains("fail") {
                                500
                            } else {
                                200
                            };
                            let resp = http::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(b"{\"counted\":true}")))
                                .expect("response");
                            Ok::<_, Infallible>(resp)
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, count, gate)
}

async fn in_flight(status: SocketAddr) -> u64 {
    let r = get(status, "status", "/status", &[]).await;
    r.json()["requests_in_flight"].as_u64().unwrap_or(0)
}

/// Sends `n` concurrent GETs for `path` while the upstream holds its answers; opens the
/// gate once all `n` are inside the gateway and the first reached the upstream.
async fn concurrent(
    gw: &Running,
    n: u64,
    path: &str,
    count: &AtomicU64,
    gate: &watch::Sender<bool>,
) -> Vec<Reply> {
    let addr = gw.addr;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let path = path.to_owned();
            tokio::spawn(async move { get(addr, "pc-coalesce.test", &path, &[]).await })
        })
        .collect();
    within("all requests in flight", async {
        while in_flight(gw.status).await < n || count.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let _ = gate.send(true);
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(within("reply", t).await.expect("task"));
    }
    replies
}

#[tokio::test]
async fn concurrent_misses_make_one_upstream_request() {
    let gw = gateway().await;
    let (addr, count, gate) = counting_upstream().await;
    kiln_runtime::resolve::set_override("pc-count.test", 80, addr);
    let replies = concurrent(&gw, 20, "/coalesce/ok", &count, &gate).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        1,
        "one upstream request for 20 misses"
    );
    let statuses: Vec<_> = replies
        .iter()
        .map(|r| (r.status.as_u16(), cache_status(r).map(str::to_owned)))
        .collect();
    let misses = statuses
        .iter()
        .filter(|s| s.1.as_deref() == Some("Miss"))
        .count();
    let hits = statuses
        .iter()
        .filter(|s| s.1.as_deref() == Some("Hit"))
        .count();
    assert_eq!((misses, hits), (1, 19), "{statuses:?}");
    assert!(replies
        .iter()
        .all(|r| r.status == 200 && &r.body[..] == b"{\"counted\":true}"));

    // An uncacheable answer: the waiting requests then go upstream themselves.
    let _ = gate.send(false);
    count.store(0, Ordering::SeqCst);
    let replies = concurrent(&gw, 5, "/coalesce/fail", &count, &gate).await;
    assert_eq!(count.load(Ordering::SeqCst), 5);
    assert!(replies
        .iter()
        .all(|r| r.status == 500 && cache_status(r) == Some("Bypass")));
    gw.stop().await;
}
