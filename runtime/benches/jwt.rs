//! CPU per jwt verification: the whole `access` phase of the jwt plugin (token from
//! `Authorization`, decode, key lookup, signature, `exp`, consumer headers) for HS256 and
//! RS256 (2048-bit key), both for a token the worker has verified before (the cache hit every
//! later request of a client is) and for tokens seen for the first time (1,024 distinct
//! tokens in turn, more than the cache holds); and the signature check alone, with the key
//! parsed once (what the plugin does) and, for comparison, re-parsed on every call
//! (jsonwebtoken's verify path).
//!
//! `cargo bench -p kiln-runtime --bench jwt -- --quick`

use std::{
    future::Future,
    hint::black_box,
    net::SocketAddr,
    ops::ControlFlow,
    pin::pin,
    task::{Context, Poll, Waker},
};

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm as A, DecodingKey, EncodingKey, Header};
use kiln_runtime::{
    consumer::ConsumerSpec,
    ctx::{Ctx, MatchInfo},
    plugins::jwt::{
        public_key, Algorithm, Claim, Config, HmacHash, HmacKey, Jwt, JwtSecret, Material,
    },
    response, Plugin, RouteSpec,
};

const RSA_PRIVATE: &str = include_str!("../../tests/keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/keys/rsa-public.pem");
const SECRET: &str = "bench-hs256-secret-of-some-length";

static ROUTE: RouteSpec = RouteSpec {
    id: "8f0a9e1c-6a1f-4c5e-9a57-5d8e0b2c1a01",
    name: Some("bench"),
    service: Some(0),
    strip_path: true,
    preserve_host: false,
    https_only: false,
    https_redirect_status_code: 426,
    request_buffering: true,
    response_buffering: true,
};

static CONSUMERS: [ConsumerSpec; 1] = [ConsumerSpec {
    id: "8b6b4fa4-5b0e-5c4e-9c43-2a6a5a1c1f10",
    username: Some("alice"),
    custom_id: None,
    groups: &[],
}];

fn plugin() -> Jwt {
    let secrets: &'static [JwtSecret] = Box::leak(Box::new([
        JwtSecret {
            key: "hs",
            consumer: 0,
            algorithm: Algorithm::HS256,
            material: Material::Hmac {
                key: HmacKey::new(HmacHash::Sha256, SECRET.as_bytes()),
                base64url: None,
            },
        },
        JwtSecret {
            key: "rs",
            consumer: 0,
            algorithm: Algorithm::RS256,
            material: Material::PublicKey(RSA_PUBLIC),
        },
    ]));
    Jwt::new(Config {
        claims_to_verify: &[Claim::Exp],
        consumers: &CONSUMERS,
        secrets,
        ..Config::DEFAULT
    })
    .expect("bench config")
}

fn token(alg: A, key: &EncodingKey, iss: &str) -> String {
    token_of(alg, key, iss, 42)
}

fn token_of(alg: A, key: &EncodingKey, iss: &str, user: u32) -> String {
    let claims =
        serde_json::json!({"iss": iss, "exp": 4_000_000_000u64, "sub": format!("user-{user}")});
    encode(&Header::new(alg), &claims, key).expect("token")
}

/// Distinct tokens taken in turn: each is gone from the cache when its turn comes again.
const FIRST_SIGHT: u32 = 1024;

fn run(p: &Jwt, auth: &http::HeaderValue) -> bool {
    let mut req = http::Request::builder()
        .uri("/api/v1/users")
        .body(response::empty())
        .expect("request");
    req.headers_mut()
        .insert(http::header::AUTHORIZATION, auth.clone());
    let mut cx = Ctx::new(
        &ROUTE,
        MatchInfo::default(),
        SocketAddr::from(([127, 0, 0, 1], 1)),
    );
    let mut fut = pin!(p.access(&mut cx, &mut req));
    matches!(
        fut.as_mut().poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(ControlFlow::Continue(()))
    )
}

fn bench(c: &mut Criterion) {
    let p = plugin();
    let hs = token(A::HS256, &EncodingKey::from_secret(SECRET.as_bytes()), "hs");
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("rsa");
    let rs = token(A::RS256, &rsa_key, "rs");
    let auth = |t: &str| http::HeaderValue::from_str(&format!("Bearer {t}")).expect("header");
    let (hs_auth, rs_auth) = (auth(&hs), auth(&rs));
    assert!(run(&p, &hs_auth) && run(&p, &rs_auth), "tokens accepted");

    let hs_key = EncodingKey::from_secret(SECRET.as_bytes());
    let many = |alg: A, key: &EncodingKey, iss: &str| -> Vec<http::HeaderValue> {
        (0..FIRST_SIGHT)
            .map(|u| auth(&token_of(alg, key, iss, u)))
            .collect()
    };
    let (hs_many, rs_many) = (
        many(A::HS256, &hs_key, "hs"),
        many(A::RS256, &rsa_key, "rs"),
    );

    let mut g = c.benchmark_group("jwt access");
    g.bench_function("HS256 cached", |b| b.iter(|| run(&p, black_box(&hs_auth))));
    g.bench_function("HS256 first sight", |b| {
        let mut turn = hs_many.iter().cycle();
        b.iter(|| run(&p, black_box(turn.next().expect("cycle"))))
    });
    g.bench_function("RS256 cached", |b| b.iter(|| run(&p, black_box(&rs_auth))));
    g.bench_function("RS256 first sight", |b| {
        let mut turn = rs_many.iter().cycle();
        b.iter(|| run(&p, black_box(turn.next().expect("cycle"))))
    });
    g.finish();

    let mut g = c.benchmark_group("signature only");
    let (hs_signed, hs_sig) = hs.rsplit_once('.').expect("parts");
    let hs_sig = kiln_runtime::plugins::jwt::base64url_decode(hs_sig.as_bytes()).expect("b64");
    let midstates = HmacKey::new(HmacHash::Sha256, SECRET.as_bytes());
    g.bench_function("HS256 midstates", |b| {
        b.iter(|| midstates.verify(black_box(hs_signed.as_bytes()), black_box(&hs_sig)))
    });
    let (rs_signed, rs_sig_b64) = rs.rsplit_once('.').expect("parts");
    let rs_sig = kiln_runtime::plugins::jwt::base64url_decode(rs_sig_b64.as_bytes()).expect("b64");
    let parsed = public_key(Algorithm::RS256, RSA_PUBLIC).expect("key");
    g.bench_function("RS256 key parsed once", |b| {
        b.iter(|| {
            parsed
                .verify_sig(black_box(rs_signed.as_bytes()), black_box(&rs_sig))
                .is_ok()
        })
    });
    let decoding = DecodingKey::from_rsa_pem(RSA_PUBLIC.as_bytes()).expect("key");
    g.bench_function("RS256 jsonwebtoken::crypto::verify", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                black_box(rs_sig_b64),
                black_box(rs_signed.as_bytes()),
                &decoding,
                A::RS256,
            )
            .unwrap_or(false)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
