//! CPU per request added by key-auth and basic-auth `access` (10,000 credentials each):
//! the digest, the map lookup, the constant-time compare and the consumer headers.
//! Setup (building the request and context) is excluded with `iter_batched`.
//!
//! `cargo bench -p kiln-runtime --bench auth`
//!
//! 2026-11, the 2-core dev machine under load (median of criterion's range): key-auth
//! ~0.7 µs, basic-auth ~0.75 µs, basic-auth with a Kong-hashed password ~1.7 µs (one SHA-1
//! more). Most of it is the salted SHA-256 of the presented secret and the §5 headers.

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
    consumer::ConsumerSpec,
    ctx::{Ctx, MatchInfo},
    gateway::RouteSpec,
    plugins::{
        basic_auth::{self, BasicAuth, BasicCredential, Password},
        key_auth::{self, KeyAuth, KeyCredential},
    },
    response,
    secret::{digest, Credential},
    Plugin, Request,
};

const N: usize = 10_000;
const SALT: [u8; 32] = [3; 32];

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

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Vec::leak(v)
}

fn consumers() -> &'static [ConsumerSpec] {
    leak(
        (0..N)
            .map(|i| ConsumerSpec {
                id: Box::leak(format!("00000000-0000-4000-8000-{i:012}").into_boxed_str()),
                username: Some(Box::leak(format!("user{i}").into_boxed_str())),
                custom_id: None,
                groups: &[],
            })
            .collect(),
    )
}

/// Polls a future that does not wait (header-only authentication) to completion.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("pending"),
    }
}

fn setup(header: (&'static str, &'static str)) -> (Ctx, Request) {
    let cx = Ctx::new(
        &ROUTE,
        MatchInfo::default(),
        SocketAddr::from(([127, 0, 0, 1], 1)),
    );
    let req = http::Request::builder()
        .uri("/orders?x=1")
        .header("host", "api.test")
        .header("user-agent", "bench")
        .header(header.0, header.1)
        .body(response::empty())
        .expect("request");
    (cx, req)
}

fn bench(c: &mut Criterion) {
    let consumers = consumers();
    let keys = leak(
        (0..N)
            .map(|i| KeyCredential {
                key: Credential::Digest(digest(&SALT, format!("key-{i}").as_bytes())),
                consumer: i as u32,
                id: Box::leak(format!("cred-{i}").into_boxed_str()),
            })
            .collect(),
    );
    let key_auth = KeyAuth::new(key_auth::Config {
        consumers,
        credentials: keys,
        salt: SALT,
        ..key_auth::Config::DEFAULT
    })
    .expect("key-auth");
    let plain = leak(
        (0..N)
            .map(|i| BasicCredential {
                username: Box::leak(format!("user{i}").into_boxed_str()),
                password: Password::Plain(Credential::Digest(digest(
                    &SALT,
                    format!("pw-{i}").as_bytes(),
                ))),
                consumer: i as u32,
            })
            .collect(),
    );
    let basic = BasicAuth::new(basic_auth::Config {
        consumers,
        credentials: plain,
        salt: SALT,
        ..basic_auth::Config::DEFAULT
    })
    .expect("basic-auth");
    let hashed = leak(
        (0..N)
            .map(|i| BasicCredential {
                username: Box::leak(format!("user{i}").into_boxed_str()),
                password: Password::KongSha1(Credential::Digest(digest(
                    &SALT,
                    basic_auth::kong_sha1(format!("pw-{i}").as_bytes(), consumers[i].id).as_bytes(),
                ))),
                consumer: i as u32,
            })
            .collect(),
    );
    let basic_sha1 = BasicAuth::new(basic_auth::Config {
        consumers,
        credentials: hashed,
        salt: SALT,
        ..basic_auth::Config::DEFAULT
    })
    .expect("basic-auth");

    // user4242:pw-4242
    let auth = ("authorization", "Basic dXNlcjQyNDI6cHctNDI0Mg==");
    let mut g = c.benchmark_group("auth_access");
    g.bench_function("baseline (setup only)", |b| {
        b.iter_batched(
            || setup(("apikey", "key-4242")),
            black_box,
            BatchSize::SmallInput,
        )
    });
    g.bench_function("key-auth header key, 10k credentials", |b| {
        b.iter_batched(
            || setup(("apikey", "key-4242")),
            |(mut cx, mut req)| {
                let flow = ready(key_auth.access(&mut cx, &mut req));
                assert!(flow.is_continue());
                (cx, req)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("basic-auth, 10k credentials", |b| {
        b.iter_batched(
            || setup(auth),
            |(mut cx, mut req)| {
                let flow = ready(basic.access(&mut cx, &mut req));
                assert!(flow.is_continue());
                (cx, req)
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("basic-auth Kong sha1, 10k credentials", |b| {
        b.iter_batched(
            || setup(auth),
            |(mut cx, mut req)| {
                let flow = ready(basic_sha1.access(&mut cx, &mut req));
                assert!(flow.is_continue());
                (cx, req)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_millis(800))
        .sample_size(30);
    targets = bench
}
criterion_main!(benches);
