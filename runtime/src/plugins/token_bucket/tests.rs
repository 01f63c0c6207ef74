use std::{net::SocketAddr, ops::ControlFlow, time::Duration};

use governor::clock::FakeRelativeClock;

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready, request};

fn bucket(config: Config) -> (TokenBucket<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    let p = TokenBucket::with_clock(config, clock.clone()).expect("valid config");
    (p, clock)
}

/// Runs one request from `ip` through access and header_filter: (status, headers).
fn run(p: &TokenBucket<FakeRelativeClock>, ip: [u8; 4], headers: &[(&str, &str)]) -> Response {
    let mut cx = ctx();
    cx.client_addr = SocketAddr::from((ip, 40000));
    let mut req = request("GET", "/", headers);
    let mut resp = match ready(p.access(&mut cx, &mut req)) {
        ControlFlow::Continue(()) => response::no_body(200),
        ControlFlow::Break(r) => r,
    };
    p.header_filter(&mut cx, &mut resp);
    resp
}

fn h(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
}

fn triple(resp: &Response) -> (String, String, String) {
    (
        h(resp, "ratelimit-limit").expect("limit"),
        h(resp, "ratelimit-remaining").expect("remaining"),
        h(resp, "ratelimit-reset").expect("reset"),
    )
}

#[test]
fn burst_then_refusal_then_refill() {
    // 2 per 10 s, burst 3: one token every 5 s.
    let (p, clock) = bucket(Config {
        average: 2,
        period_secs: 10,
        burst: 3,
        ..Config::default()
    });
    let ip = [192, 0, 2, 1];
    let r = run(&p, ip, &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(triple(&r), ("3".into(), "2".into(), "5".into()));
    let r = run(&p, ip, &[]);
    assert_eq!(triple(&r), ("3".into(), "1".into(), "10".into()));
    let r = run(&p, ip, &[]);
    assert_eq!(triple(&r), ("3".into(), "0".into(), "15".into()));
    assert!(
        h(&r, "retry-after").is_none(),
        "only refusals carry Retry-After"
    );

    let r = run(&p, ip, &[]);
    assert_eq!(r.status(), 429);
    assert_eq!(triple(&r), ("3".into(), "0".into(), "15".into()));
    assert_eq!(h(&r, "retry-after").as_deref(), Some("5"));
    let body = body_text(r);
    assert!(body.contains("API rate limit exceeded"), "{body}");
    assert!(
        body.contains("0123456789abcdef0123456789abcdef"),
        "request id: {body}"
    );

    // 3.5 s later: still refused, Retry-After rounds 1.5 s up.
    clock.advance(Duration::from_millis(3500));
    let r = run(&p, ip, &[]);
    assert_eq!(r.status(), 429);
    assert_eq!(h(&r, "retry-after").as_deref(), Some("2"));
    assert_eq!(h(&r, "ratelimit-reset").as_deref(), Some("12"));

    // At 5 s one token is back.
    clock.advance(Duration::from_millis(1500));
    let r = run(&p, ip, &[]);
    assert_eq!(r.status(), 200);
    assert_eq!(triple(&r), ("3".into(), "0".into(), "15".into()));
    assert_eq!(run(&p, ip, &[]).status(), 429);

    // After a whole refill the full burst is available again.
    clock.advance(Duration::from_secs(15));
    for remaining in ["2", "1", "0"] {
        let r = run(&p, ip, &[]);
        assert_eq!(r.status(), 200);
        assert_eq!(h(&r, "ratelimit-remaining").as_deref(), Some(remaining));
    }
    assert_eq!(run(&p, ip, &[]).status(), 429);
}

#[test]
fn burst_defaults_to_average_over_period() {
    let (p, clock) = bucket(Config {
        average: 4,
        burst: 4,
        ..Config::default()
    });
    let ip = [192, 0, 2, 2];
    for _ in 0..4 {
        assert_eq!(run(&p, ip, &[]).status(), 200);
    }
    let r = run(&p, ip, &[]);
    assert_eq!(r.status(), 429);
    assert_eq!(h(&r, "retry-after").as_deref(), Some("1"), "at least 1");
    clock.advance(Duration::from_millis(250));
    assert_eq!(run(&p, ip, &[]).status(), 200);
}

#[test]
fn identifiers_have_separate_buckets() {
    let (p, _) = bucket(Config {
        limit_by: LimitBy::Ip,
        ..Config::default()
    });
    assert_eq!(run(&p, [10, 0, 0, 1], &[]).status(), 200);
    assert_eq!(run(&p, [10, 0, 0, 1], &[]).status(), 429);
    assert_eq!(run(&p, [10, 0, 0, 2], &[]).status(), 200);
}

#[test]
fn header_identifier_falls_back_to_the_ip() {
    let (p, _) = bucket(Config {
        limit_by: LimitBy::Header("x-tenant"),
        ..Config::default()
    });
    let ip = [10, 0, 0, 3];
    assert_eq!(run(&p, ip, &[("x-tenant", "a")]).status(), 200);
    assert_eq!(run(&p, ip, &[("x-tenant", "a")]).status(), 429);
    assert_eq!(run(&p, ip, &[("x-tenant", "b")]).status(), 200);
    // No header: the IP's own bucket, then refused.
    assert_eq!(run(&p, ip, &[]).status(), 200);
    assert_eq!(run(&p, ip, &[]).status(), 429);
}

#[test]
fn consumer_credential_service_and_path_identifiers() {
    let (p, _) = bucket(Config {
        limit_by: LimitBy::Consumer,
        ..Config::default()
    });
    let mut cx = ctx();
    cx.auth.consumer = Some(3);
    let mut other = ctx();
    other.client_addr = SocketAddr::from(([10, 9, 9, 9], 1));
    other.auth.consumer = Some(3);
    let req = request("GET", "/", &[]);
    assert_eq!(
        p.key(&cx, &req),
        p.key(&other, &req),
        "same consumer, any IP"
    );
    other.auth.consumer = Some(4);
    assert_ne!(p.key(&cx, &req), p.key(&other, &req));
    // No consumer: the credential, then the IP.
    let mut anon = ctx();
    anon.auth.credential = Some("cred".into());
    let mut ip_only = ctx();
    assert_ne!(p.key(&anon, &req), p.key(&ip_only, &req));
    ip_only.client_addr = anon.client_addr;
    assert_ne!(p.key(&anon, &req), p.key(&ip_only, &req));

    let (p, _) = bucket(Config {
        limit_by: LimitBy::Service,
        ..Config::default()
    });
    let mut a = ctx();
    let mut b = ctx();
    b.client_addr = SocketAddr::from(([10, 1, 1, 1], 1));
    assert_eq!(p.key(&a, &req), p.key(&b, &req), "one bucket per service");
    a.route = &NO_SERVICE;
    assert_ne!(p.key(&a, &req), p.key(&b, &req), "no service: by IP");

    let (p, _) = bucket(Config {
        limit_by: LimitBy::Path("/orders"),
        ..Config::default()
    });
    let mut a = ctx();
    a.normalized_path = "/orders".into();
    let mut b = ctx();
    b.normalized_path = "/orders".into();
    b.client_addr = SocketAddr::from(([10, 1, 1, 2], 1));
    assert_eq!(
        p.key(&a, &req),
        p.key(&b, &req),
        "the configured path is one bucket"
    );
    b.normalized_path = "/orders/1".into();
    assert_ne!(p.key(&a, &req), p.key(&b, &req), "another path: by IP");
}

static NO_SERVICE: crate::gateway::RouteSpec = crate::gateway::RouteSpec {
    service: None,
    ..crate::plugins::test_support::ROUTE
};

#[test]
fn hidden_headers_and_custom_error() {
    let (p, _) = bucket(Config {
        hide_client_headers: true,
        error_code: 503,
        error_message: "slow down",
        limit_by: LimitBy::Ip,
        ..Config::default()
    });
    let ip = [10, 0, 0, 4];
    let r = run(&p, ip, &[]);
    assert_eq!(r.status(), 200);
    assert!(h(&r, "ratelimit-limit").is_none());
    let r = run(&p, ip, &[]);
    assert_eq!(r.status(), 503);
    for name in [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "retry-after",
    ] {
        assert!(h(&r, name).is_none(), "{name} hidden");
    }
    assert!(body_text(r).contains("slow down"));
}

#[test]
fn memory_is_bounded_by_max_keys() {
    let (p, clock) = bucket(Config {
        max_keys: 1000,
        limit_by: LimitBy::Header("x-k"),
        average: 1,
        period_secs: 3600,
        burst: 1,
        ..Config::default()
    });
    // 50,000 distinct identifiers, all with a bucket still in use.
    for i in 0..50_000u32 {
        let v = i.to_string();
        assert_eq!(run(&p, [10, 0, 0, 5], &[("x-k", &v)]).status(), 200);
        assert!(p.keys() <= 1000, "{} keys after {i}", p.keys());
        if i % 5000 == 0 {
            clock.advance(Duration::from_millis(1));
        }
    }
    assert!(
        p.keys() >= 500,
        "eviction drops an eighth, not everything: {}",
        p.keys()
    );
    // A recent identifier is still limited.
    assert_eq!(run(&p, [10, 0, 0, 5], &[("x-k", "49999")]).status(), 429);
}

#[test]
fn full_buckets_go_first() {
    assert_eq!(Store::new(64).shards.len(), 1);
    assert_eq!(Store::new(64).cap, 64);
    assert_eq!(Store::new(100_000).shards.len(), 64);
    assert_eq!(Store::new(100_000).cap, 1562);
    let mut shard = Shard::default();
    for k in 0..16u64 {
        shard.insert(k, 100 + k);
    }
    Store::evict(&mut shard, 16);
    assert_eq!(shard.len(), 14, "two of sixteen");
    assert!(!shard.contains_key(&0) && !shard.contains_key(&1));
}

#[test]
fn invalid_configs_are_start_up_errors() {
    for c in [
        Config {
            average: 0,
            ..Config::default()
        },
        Config {
            burst: 0,
            ..Config::default()
        },
        Config {
            period_secs: 0,
            ..Config::default()
        },
        Config {
            max_keys: 0,
            ..Config::default()
        },
        Config {
            limit_by: LimitBy::Header("bad header"),
            ..Config::default()
        },
    ] {
        assert!(TokenBucket::new(c).is_err(), "{c:?}");
    }
}
