//! CPU per request added by rate-limiting with `policy: local`: the identifier, the keyed
//! hash per period, the lock-free table probe and compare-and-swap, and the headers written
//! in `header_filter`. Setup (building the request and context) is excluded with
//! `iter_batched`. Limits are high enough never to refuse.
//!
//! `cargo bench -p kiln-runtime --bench rate_limiting`
//!
//! 2026-11, the 2-core dev machine shared with other builds (criterion's median): one
//! period (`minute`) ~0.79 µs per request, all six periods ~2.2 µs, one counter
//! `try_acquire` alone ~15 ns. Most of a request's cost is per period: the keyed SipHash of
//! the counter key, the calendar arithmetic, and two header values formatted and inserted.

use std::{
    future::Future,
    hint::black_box,
    net::SocketAddr,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kiln_runtime::{
    ctx::{Ctx, MatchInfo},
    gateway::RouteSpec,
    plugins::rate_limiting::{store::Counters, Config, LimitBy, Period, RateLimiting},
    response, Plugin, Request, Response,
};

static ROUTE: RouteSpec = RouteSpec {
    id: "8f0a9e1c-6a1f-4c5e-9a57-5d8e0b2c1a01",
    name: None,
    service: Some(0),
    strip_path: true,
    preserve_host: false,
    https_only: false,
    https_redirect_status_code: 426,
    request_buffering: true,
    response_buffering: true,
};

fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("local policy never waits"),
    }
}

const MAX: u64 = u32::MAX as u64;

fn plugin(limits: &'static [(Period, u64)]) -> RateLimiting {
    RateLimiting::new(Config {
        limits,
        limit_by: LimitBy::Header("x-user"),
        ..Config::new(&[], &[])
    })
    .expect("valid")
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limiting");
    g.measurement_time(Duration::from_secs(3));
    let setup = |i: &mut u64| {
        *i += 1;
        let user = format!("user{}", *i % 1000);
        let req: Request = http::Request::builder()
            .uri("/orders")
            .header("x-user", user)
            .body(response::empty())
            .expect("request");
        let cx = Ctx::new(
            &ROUTE,
            MatchInfo::default(),
            SocketAddr::from(([192, 0, 2, 7], 50123)),
        );
        let resp: Response = Response::new(response::empty());
        (cx, req, resp)
    };
    for (name, limits) in [
        ("minute", &[(Period::Minute, MAX)][..]),
        (
            "six_periods",
            &[
                (Period::Second, MAX),
                (Period::Minute, MAX),
                (Period::Hour, MAX),
                (Period::Day, MAX),
                (Period::Month, MAX),
                (Period::Year, MAX),
            ][..],
        ),
    ] {
        let p = plugin(limits);
        let mut i = 0u64;
        g.bench_function(format!("access+header_filter/{name}"), |b| {
            b.iter_batched(
                || setup(&mut i),
                |(mut cx, mut req, mut resp)| {
                    let flow = ready(p.access(&mut cx, &mut req));
                    p.header_filter(&mut cx, &mut resp);
                    // Returned, so that dropping them is not timed.
                    black_box((flow, resp, cx, req))
                },
                BatchSize::SmallInput,
            )
        });
    }
    let t = Counters::new(1 << 17);
    let mut k = 0u64;
    g.bench_function("counter_try_acquire", |b| {
        b.iter(|| {
            k = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
            black_box(t.try_acquire((k % 4096) | 1, 2_000_000_000, 1, u32::MAX))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
