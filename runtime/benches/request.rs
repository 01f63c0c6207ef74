//! CPU per request outside routing and plugins.
//!
//! * `empty_chain`: what runs for a route without plugins between the route match and the
//!   first upstream write. The generated chain function of such a route is only
//!   `rt::proxy(&self.upstreams[s], cx, req).await`, so the cost is the server's (request
//!   id, `Host` split, path normalisation, building the [`Ctx`]) plus the proxy's
//!   preparation (upstream path, `PathAndQuery`, header rewrite, `Host`). `total` runs all of
//!   it in sequence; the other entries are its parts (the header rewrite alone is
//!   `rewrite/headers/5`).
//! * `rewrite`: the upstream path (strip_path, service paths, query, escaping; Kong's
//!   `path_handling` v0, which v1 equals under `traditional_compatible`), the upstream
//!   `Host`, and the header rewrite on a small and a large header set.
//!
//! The header rewrite is the proxy's own (`proxy::upstream_head_block`, exposed for this
//! benchmark only): the client's headers rewritten into the upstream request head.
//!
//! `cargo bench -p kiln-runtime --bench request -- --quick`

use std::{hint::black_box, net::SocketAddr, time::Duration};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{uri::PathAndQuery, HeaderMap, HeaderValue, Uri, Version};
use kiln_runtime::{
    ctx::{Ctx, MatchInfo},
    gateway::RouteSpec,
    path, request_id,
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

const RAW_HOST: &str = "api.example.com:8000";
const RAW_PATH: &str = "/svc42/v1/items/42";
const QUERY: &str = "page=2&sort=desc";
const SERVICE_PATH: Option<&str> = Some("/backend");
const PEER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)),
    51_234,
);

/// A browser-like request head: what a typical client sends.
fn small_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in [
        ("host", RAW_HOST),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br"),
        ("connection", "keep-alive"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

/// A request that already went through a proxy or two, with cookies and tracing headers.
fn large_headers() -> HeaderMap {
    let mut h = small_headers();
    for (k, v) in [
        ("accept-language", "en-GB,en;q=0.9"),
        (
            "authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo",
        ),
        (
            "cookie",
            "session=3f1c9a7e5b2d4c6a8e0f; theme=dark; consent=yes",
        ),
        ("x-forwarded-for", "198.51.100.23, 192.0.2.44"),
        ("x-forwarded-proto", "https"),
        ("via", "1.1 edge-proxy"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x-request-start", "t=1732660000000"),
        ("keep-alive", "timeout=5"),
        ("te", "trailers"),
        ("content-type", "application/json"),
        ("content-length", "512"),
        ("origin", "https://app.example.com"),
        ("referer", "https://app.example.com/orders"),
        ("cache-control", "no-cache"),
    ] {
        h.append(k, HeaderValue::from_static(v));
    }
    h
}

fn matched(normalized: &str) -> MatchInfo {
    MatchInfo {
        route: 0,
        sub_route: 0,
        // The route's path is `/svc42/v1`.
        matched_len: Some("/svc42/v1".len()).filter(|&l| normalized.len() >= l),
        captures: Vec::new(),
    }
}

/// The server's part: request id, `Host` split, normalisation and the [`Ctx`] (the route
/// match itself is `router.rs`'s business).
fn server_part(uri: &Uri, raw_host: &str) -> Option<Ctx> {
    let (host, _port) = path::split_host(raw_host);
    let normalized = path::normalize(uri.path()).ok()?;
    let m = matched(&normalized);
    let mut cx = Ctx::new(&ROUTE, m, PEER);
    cx.normalized_path = normalized;
    cx.host = host.to_owned();
    cx.request_uri = uri.clone();
    cx.http_version = Version::HTTP_11;
    Some(cx)
}

/// The proxy's part before the first upstream write: the target and the head after `Host`.
fn proxy_part(cx: &mut Ctx, uri: &Uri, headers: &HeaderMap) -> Option<(Uri, Vec<u8>)> {
    let target = path::upstream_path(
        SERVICE_PATH,
        &cx.normalized_path,
        cx.matched.matched_len,
        uri.query(),
    );
    let pq = PathAndQuery::try_from(target).ok()?;
    let block = kiln_runtime::proxy::upstream_head_block(cx, headers);
    Some((Uri::from(pq), block))
}

fn empty_chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("empty_chain");
    let uri: Uri = format!("{RAW_PATH}?{QUERY}").parse().expect("uri");
    g.bench_function("request_id", |b| b.iter(request_id::new));
    g.bench_function("split_host", |b| {
        b.iter(|| path::split_host(black_box(RAW_HOST)))
    });
    g.bench_function("normalize", |b| {
        b.iter(|| path::normalize(black_box(RAW_PATH)))
    });
    g.bench_function("ctx", |b| {
        b.iter(|| server_part(black_box(&uri), black_box(RAW_HOST)))
    });
    let cx = server_part(&uri, RAW_HOST).expect("ctx");
    g.bench_function("upstream_path", |b| {
        b.iter(|| {
            path::upstream_path(
                SERVICE_PATH,
                black_box(&cx.normalized_path),
                cx.matched.matched_len,
                uri.query(),
            )
        })
    });
    g.bench_function("total", |b| {
        b.iter_batched_ref(
            small_headers,
            |h| {
                let mut cx = server_part(black_box(&uri), black_box(RAW_HOST))?;
                proxy_part(&mut cx, &uri, h).map(|u| (u, cx))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// One call of [`path::upstream_path`].
struct PathCase {
    name: &'static str,
    service: Option<&'static str>,
    normalized: &'static str,
    stripped: Option<usize>,
    query: Option<&'static str>,
}

impl PathCase {
    fn new(
        name: &'static str,
        service: Option<&'static str>,
        normalized: &'static str,
        stripped: Option<usize>,
    ) -> PathCase {
        PathCase {
            name,
            service,
            normalized,
            stripped,
            query: None,
        }
    }
}

fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewrite");
    let cases = [
        PathCase::new("keep_path", None, "/svc42/v1/items/42", None),
        PathCase::new("strip", Some("/backend"), "/svc42/v1/items/42", Some(9)),
        PathCase::new(
            "strip_service_slash",
            Some("/backend/"),
            "/svc42/v1",
            Some(9),
        ),
        PathCase::new("strip_regex", Some("/b"), "/users/42/orders", Some(9)),
        PathCase {
            query: Some(QUERY),
            ..PathCase::new("query", Some("/backend"), "/svc42/v1/items/42", Some(9))
        },
        PathCase::new(
            "escape",
            Some("/backend"),
            "/svc42/v1/caf\u{e9} au lait",
            Some(9),
        ),
    ];
    for case in cases {
        g.bench_function(format!("upstream_path/{}", case.name), |b| {
            b.iter(|| {
                path::upstream_path(
                    case.service,
                    black_box(case.normalized),
                    case.stripped,
                    case.query,
                )
            })
        });
    }
    g.bench_function("normalize/dots_and_escapes", |b| {
        b.iter(|| path::normalize(black_box("/svc42/./v1//it%65ms/x/../42%2Fa")))
    });
    g.bench_function("upstream_host", |b| {
        b.iter(|| path::upstream_host_header(black_box("backend.internal"), 8080, "http"))
    });
    let uri: Uri = format!("{RAW_PATH}?{QUERY}").parse().expect("uri");
    let mut cx = server_part(&uri, RAW_HOST).expect("ctx");
    for (name, headers) in [
        ("headers/5", small_headers as fn() -> HeaderMap),
        ("headers/20", large_headers),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                headers,
                |h| kiln_runtime::proxy::upstream_head_block(&mut cx, h),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = empty_chain, rewrite
}
criterion_main!(benches);
