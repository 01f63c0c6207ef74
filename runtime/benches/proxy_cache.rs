//! CPU of a proxy-cache hit in `access`: the cache key (request line, sorted query, sha256),
//! the `quick_cache` lookup, the freshness check and building the cached response
//! (headers copied, body shared). Setup (request and context) is excluded with
//! `iter_batched`.
//!
//! `cargo bench -p kiln-runtime --features proxy-cache --bench proxy_cache`
//!
//! 2026-11, the 2-core dev machine shared with three other builds (load average ~8): a hit
//! ~3.2 µs (criterion's median; 3.0–3.5 µs), key (sha256 of Kong's string) and response
//! included.

use std::{
    future::Future,
    hint::black_box,
    net::SocketAddr,
    ops::ControlFlow,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderValue, Response as HttpResponse};
use kiln_runtime::{
    ctx::{Ctx, MatchInfo},
    gateway::RouteSpec,
    plugins::proxy_cache::{Config, ProxyCache},
    response, Plugin, Request,
};

static ROUTE: RouteSpec = RouteSpec {
    id: "8f0a9e1c-6a1f-4c5e-9a57-5d8e0b2c1a01",
    name: None,
    service: None,
    strip_path: true,
    preserve_host: false,
    https_only: false,
    https_redirect_status_code: 426,
    request_buffering: true,
    response_buffering: true,
};

fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("pending"),
    }
}

fn setup() -> (Ctx, Request) {
    let mut cx = Ctx::new(
        &ROUTE,
        MatchInfo::default(),
        SocketAddr::from(([127, 0, 0, 1], 1)),
    );
    cx.request_uri = "/orders/42?page=2&sort=asc".parse().expect("uri");
    let req = http::Request::builder()
        .uri("/orders/42?page=2&sort=asc")
        .header("host", "api.test")
        .header("user-agent", "bench")
        .header("accept", "application/json")
        .body(response::empty())
        .expect("request");
    (cx, req)
}

fn bench(c: &mut Criterion) {
    let plugin = ProxyCache::new(Config {
        dictionary_name: "bench",
        ..Config::DEFAULT
    })
    .expect("proxy-cache");
    // Fill the entry: one miss through header_filter, body read to its end.
    let (mut cx, mut req) = setup();
    assert!(matches!(
        ready(plugin.access(&mut cx, &mut req)),
        ControlFlow::Continue(())
    ));
    let body = "{\"id\":42,\"items\":[1,2,3],\"note\":\"a small JSON document\"}".repeat(8);
    let mut resp = HttpResponse::new(response::full(body));
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert("x-upstream", HeaderValue::from_static("1"));
    plugin.header_filter(&mut cx, &mut resp);
    let _ = ready(http_body_util::BodyExt::collect(resp.into_body()));

    let mut g = c.benchmark_group("proxy-cache");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("hit", |b| {
        b.iter_batched(
            setup,
            |(mut cx, mut req)| match ready(plugin.access(&mut cx, &mut req)) {
                ControlFlow::Break(resp) => black_box(resp),
                ControlFlow::Continue(()) => panic!("expected a hit"),
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
