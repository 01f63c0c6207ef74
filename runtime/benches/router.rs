//! Route lookup at 10, 1,000 and 10,000 routes: exact hosts, prefixes, regexes and a mix,
//! against a start-up-built `foldhash` HashMap and `matchit` on equivalent data.
//!
//! `cargo bench -p kiln-runtime --bench router -- --quick`
//!
//! Equivalence notes: matchit is segment-aware and has no priorities, so its prefix routes
//! are `/svcN/v1/{*rest}` (Kong's `/svcN/v1` also matches `/svcN/v1x`); the hash-map prefix
//! router looks up `path[..len]` for every distinct prefix length, longest first. matchit
//! matches paths only, so exact hosts compare with the hash map alone, and regexes (which a
//! hash map cannot do) with matchit's `{id}` parameters alone. The mixed table's peer is
//! both: the hash map for the hosts, then matchit for the paths, then the method check.

use std::{collections::HashMap, hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use foldhash::fast::RandomState;
use http::HeaderMap;
use kiln_runtime::{
    phf::{self, PhfMap},
    router::{HostMatch, PathMatch, RouteRequest, Router, RouterTables, SubRoute},
};

const SIZES: [usize; 3] = [10, 1_000, 10_000];

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Vec::leak(v)
}

fn any(route: u32) -> SubRoute {
    SubRoute {
        route,
        hosts: &[],
        methods: &[],
        headers: &[],
        paths: PathMatch::Any,
    }
}

/// Tables as the compiler writes them (ranks = order of `subs`, already by priority).
fn tables(subs: Vec<SubRoute>, regexes: Vec<&'static str>) -> &'static RouterTables {
    let mut by_host: std::collections::BTreeMap<&'static str, Vec<u32>> = Default::default();
    let mut other = Vec::new();
    for (rank, sub) in subs.iter().enumerate() {
        let mut wildcard = sub.hosts.is_empty();
        for h in sub.hosts {
            match *h {
                HostMatch::Exact { host, .. } => by_host.entry(host).or_default().push(rank as u32),
                _ => wildcard = true,
            }
        }
        if wildcard {
            other.push(rank as u32);
        }
    }
    let keys: Vec<&'static str> = by_host.keys().copied().collect();
    let layout = phf::build(&keys).expect("distinct");
    let values = layout
        .slots
        .iter()
        .map(|&i| leak(by_host[keys[i]].clone()))
        .collect();
    Box::leak(Box::new(RouterTables {
        sub_routes: leak(subs),
        exact_hosts: PhfMap {
            seed: layout.seed,
            disps: leak(layout.disps),
            keys: leak(layout.slots.iter().map(|&i| keys[i]).collect()),
            values: leak(values),
        },
        other: leak(other),
        regexes: leak(regexes),
    }))
}

fn s(v: String) -> &'static str {
    String::leak(v)
}

fn host(i: usize) -> &'static str {
    s(format!("svc{i}.example.com"))
}

fn find(router: &Router, host: &str, path: &str, headers: &HeaderMap) -> Option<u32> {
    router
        .find(&RouteRequest {
            method: "GET",
            host,
            port: 80,
            path,
            headers,
        })
        .map(|m| m.route)
}

fn exact_hosts(c: &mut Criterion) {
    let mut g = c.benchmark_group("exact_hosts");
    let headers = HeaderMap::new();
    for n in SIZES {
        let hosts: Vec<&'static str> = (0..n).map(host).collect();
        let subs = (0..n)
            .map(|i| SubRoute {
                hosts: leak(vec![HostMatch::Exact {
                    host: hosts[i],
                    port: None,
                }]),
                ..any(i as u32)
            })
            .collect();
        let router = Router::new(tables(subs, vec![])).expect("router");
        // The same values as the router's perfect hash (rank lists): both do the same work.
        let phf_map = &router.tables.exact_hosts;
        let map: HashMap<&str, &[u32], RandomState> = phf_map
            .keys
            .iter()
            .copied()
            .zip(phf_map.values.iter().copied())
            .collect();
        let probe = hosts[n / 2];
        assert_eq!(find(&router, probe, "/", &headers), Some((n / 2) as u32));
        g.bench_with_input(BenchmarkId::new("kiln_router", n), &probe, |b, h| {
            b.iter(|| find(&router, black_box(h), "/", &headers))
        });
        g.bench_with_input(BenchmarkId::new("kiln_phf_get", n), &probe, |b, h| {
            b.iter(|| phf_map.get(black_box(h)).map(|l| l.len()))
        });
        g.bench_with_input(BenchmarkId::new("foldhash_get", n), &probe, |b, h| {
            b.iter(|| map.get(black_box(h)).map(|l| l.len()))
        });
        g.bench_with_input(
            BenchmarkId::new("kiln_phf_miss", n),
            &"nope.example.org",
            |b, h| b.iter(|| phf_map.get(black_box(h)).map(|l| l.len())),
        );
        g.bench_with_input(
            BenchmarkId::new("foldhash_miss", n),
            &"nope.example.org",
            |b, h| b.iter(|| map.get(black_box(h)).map(|l| l.len())),
        );
    }
    g.finish();
}

fn prefixes(c: &mut Criterion) {
    let mut g = c.benchmark_group("prefixes");
    let headers = HeaderMap::new();
    for n in SIZES {
        // Longest prefix first, as Kong's priority orders them; ties in index order.
        let mut prefixes: Vec<(usize, &'static str)> =
            (0..n).map(|i| (i, s(format!("/svc{i}/v1")))).collect();
        prefixes.sort_by_key(|(i, p)| (std::cmp::Reverse(p.len()), *i));
        let subs = prefixes
            .iter()
            .map(|(i, p)| SubRoute {
                paths: PathMatch::Prefix(leak(vec![*p])),
                ..any(*i as u32)
            })
            .collect();
        let router = Router::new(tables(subs, vec![])).expect("router");

        let map: HashMap<&str, u32, RandomState> =
            prefixes.iter().map(|(i, p)| (*p, *i as u32)).collect();
        let mut lens: Vec<usize> = prefixes.iter().map(|(_, p)| p.len()).collect();
        lens.dedup();
        let hash_find = |path: &str| {
            lens.iter()
                .filter_map(|&l| path.get(..l))
                .find_map(|p| map.get(p).copied())
        };
        let mut mit = matchit::Router::new();
        for (i, p) in &prefixes {
            mit.insert(format!("{p}/{{*rest}}"), *i as u32)
                .expect("matchit");
        }

        let mid = n / 2;
        let path = s(format!("/svc{mid}/v1/items/42"));
        assert_eq!(find(&router, "h", path, &headers), Some(mid as u32));
        assert_eq!(hash_find(path), Some(mid as u32));
        assert_eq!(mit.at(path).map(|m| *m.value).ok(), Some(mid as u32));
        g.bench_with_input(BenchmarkId::new("kiln_router", n), &path, |b, p| {
            b.iter(|| find(&router, "h", black_box(p), &headers))
        });
        g.bench_with_input(BenchmarkId::new("foldhash_by_length", n), &path, |b, p| {
            b.iter(|| hash_find(black_box(p)))
        });
        g.bench_with_input(BenchmarkId::new("matchit", n), &path, |b, p| {
            b.iter(|| mit.at(black_box(p)).map(|m| *m.value).ok())
        });
    }
    g.finish();
}

fn regexes(c: &mut Criterion) {
    let mut g = c.benchmark_group("regexes");
    let headers = HeaderMap::new();
    for n in SIZES {
        let sources: Vec<&'static str> =
            (0..n).map(|i| s(format!(r"/r{i}/(?P<id>\d+)$"))).collect();
        let subs = (0..n)
            .map(|i| SubRoute {
                paths: PathMatch::Regex(leak(vec![i as u32])),
                ..any(i as u32)
            })
            .collect();
        let router = Router::new(tables(subs, sources)).expect("router");
        let mut mit = matchit::Router::new();
        for i in 0..n {
            mit.insert(format!("/r{i}/{{id}}"), i as u32)
                .expect("matchit");
        }
        let mid = n / 2;
        let path = s(format!("/r{mid}/42"));
        assert_eq!(find(&router, "h", path, &headers), Some(mid as u32));
        g.bench_with_input(BenchmarkId::new("kiln_router", n), &path, |b, p| {
            b.iter(|| find(&router, "h", black_box(p), &headers))
        });
        g.bench_with_input(BenchmarkId::new("matchit", n), &path, |b, p| {
            b.iter(|| mit.at(black_box(p)).map(|m| *m.value).ok())
        });
    }
    g.finish();
}

fn mixed(c: &mut Criterion) {
    let mut g = c.benchmark_group("mixed");
    let headers = HeaderMap::new();
    for n in SIZES {
        // Thirds: exact hosts with a prefix, plain prefixes, regexes; priority = Kong's
        // (plain host first, then regex, then prefix by length).
        let third = n.div_ceil(3);
        let mut subs = Vec::new();
        let mut regexes = Vec::new();
        for i in 0..third {
            subs.push(SubRoute {
                hosts: leak(vec![HostMatch::Exact {
                    host: host(i),
                    port: None,
                }]),
                paths: PathMatch::Prefix(leak(vec!["/"])),
                ..any(subs.len() as u32)
            });
        }
        for i in 0..third {
            regexes.push(s(format!(r"/items/{i}/(\d+)")));
            subs.push(SubRoute {
                paths: PathMatch::Regex(leak(vec![i as u32])),
                ..any(subs.len() as u32)
            });
        }
        for i in 0..third {
            subs.push(SubRoute {
                methods: &["GET", "POST"],
                paths: PathMatch::Prefix(leak(vec![s(format!("/api/{i:05}"))])),
                ..any(subs.len() as u32)
            });
        }
        let router = Router::new(tables(subs, regexes)).expect("router");

        // The peer: hosts in a hash map, paths in matchit (a regex route is `{id}`-shaped,
        // a prefix route `{*rest}`), methods checked after the path match.
        let by_host: HashMap<&str, u32, RandomState> =
            (0..third).map(|i| (host(i), i as u32)).collect();
        let mut mit = matchit::Router::new();
        for i in 0..third {
            mit.insert(format!("/items/{i}/{{n}}"), (third + i) as u32)
                .expect("matchit");
            mit.insert(format!("/api/{i:05}/{{*rest}}"), (2 * third + i) as u32)
                .expect("matchit");
        }
        let methods = ["GET", "POST"];
        let peer_find = |host: &str, path: &str, method: &str| {
            if let Some(&r) = by_host.get(host) {
                return Some(r);
            }
            let m = mit.at(path).ok()?;
            let r = *m.value;
            (r < 2 * third as u32 || methods.contains(&method)).then_some(r)
        };

        let mid = third / 2;
        let cases = [
            ("host", host(mid), "/x"),
            ("prefix", "other.org", s(format!("/api/{mid:05}/orders"))),
            ("regex", "other.org", s(format!("/items/{mid}/7"))),
            ("miss", "other.org", "/nothing"),
        ];
        for (name, h, p) in cases {
            assert_eq!(
                find(&router, h, p, &headers),
                peer_find(h, p, "GET"),
                "{name}"
            );
            g.bench_with_input(
                BenchmarkId::new(format!("kiln_router_{name}"), n),
                &(h, p),
                |b, (h, p)| b.iter(|| find(&router, black_box(h), black_box(p), &headers)),
            );
            g.bench_with_input(
                BenchmarkId::new(format!("foldhash_matchit_{name}"), n),
                &(h, p),
                |b, (h, p)| b.iter(|| peer_find(black_box(h), black_box(p), "GET")),
            );
        }
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
    targets = exact_hosts, prefixes, regexes, mixed
}
criterion_main!(benches);
