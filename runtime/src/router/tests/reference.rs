//! The router against a brute-force reference: randomized tables large enough to build the
//! prefix indexes, randomized requests, identical answers required.

use super::*;

/// Scans every sub-route in rank order with a naive matcher written independently of the
/// router (no indexes, no rank lists, regexes compiled per call).
fn reference(tables: &RouterTables, req: &RouteRequest<'_>) -> Option<MatchInfo> {
    tables
        .sub_routes
        .iter()
        .enumerate()
        .find_map(|(rank, sub)| {
            let host_ok = sub.hosts.is_empty()
                || sub.hosts.iter().any(|h| match *h {
                    HostMatch::Exact { host, port } => {
                        req.host == host && port.is_none_or(|p| p == req.port)
                    }
                    HostMatch::Suffix { suffix, port } => {
                        req.host.len() >= suffix.len()
                            && req.host[req.host.len() - suffix.len()..] == *suffix
                            && port.is_none_or(|p| p == req.port)
                    }
                    HostMatch::Prefix { prefix, port } => {
                        req.host.get(..prefix.len()) == Some(prefix)
                            && port.is_none_or(|p| p == req.port)
                    }
                });
            let method_ok = sub.methods.is_empty() || sub.methods.contains(&req.method);
            let headers_ok = sub.headers.iter().all(|h| {
                let name = h.name.replace('_', "-");
                req.headers.get_all(name.as_str()).iter().any(|v| {
                    let v = String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase();
                    h.values.iter().any(|c| match *c {
                        HeaderValueMatch::Exact(lit) => v == lit,
                        HeaderValueMatch::Regex(i) => regex::Regex::new(tables.regexes[i as usize])
                            .expect("valid")
                            .is_match(&v),
                    })
                })
            });
            if !(host_ok && method_ok && headers_ok) {
                return None;
            }
            let (matched_len, captures) = match sub.paths {
                PathMatch::Any => (None, vec![]),
                PathMatch::Prefix(list) => {
                    let p = list.iter().find(|p| req.path.get(..p.len()) == Some(**p))?;
                    (Some(p.len()), vec![])
                }
                PathMatch::Regex(list) => list.iter().find_map(|&i| {
                    let re = regex::Regex::new(&format!("^{}", tables.regexes[i as usize]))
                        .expect("valid");
                    let caps = re.captures(req.path)?;
                    let all: Vec<_> = re
                        .capture_names()
                        .zip(caps.iter())
                        .map(|(n, m)| (n.map(String::from), m.map(|m| m.as_str().to_owned())))
                        .collect();
                    let len = caps.get(0).map(|m| m.len());
                    let group1 = caps.get(1).is_some();
                    Some((len, if group1 { all } else { vec![] }))
                })?,
            };
            Some(MatchInfo {
                route: sub.route,
                sub_route: rank as u32,
                matched_len,
                captures,
            })
        })
}

const HOSTS: [&str; 5] = ["a.com", "b.com", "x.a.com", "api.b.com", "c"];
const SEGMENTS: [&str; 6] = ["/a", "/b", "/ab", "a", "/", "/a/b"];
const REGEXES: [&str; 4] = [r"/a(/\d+)?", r"/(?P<x>b+)", r"/ab", "v[0-9]"];

fn random_path(rng: &mut fastrand::Rng) -> &'static str {
    let n = rng.usize(0..4);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(SEGMENTS[rng.usize(..SEGMENTS.len())]);
        if rng.u8(..4) == 0 {
            s.push_str(&rng.u8(..10).to_string());
        }
    }
    String::leak(s)
}

/// Exact hosts only: one without a port, one with, or one with and one without (maybe the
/// same name).
fn random_exact_hosts(rng: &mut fastrand::Rng) -> &'static [HostMatch] {
    let (a, b) = (
        HOSTS[rng.usize(..HOSTS.len())],
        HOSTS[rng.usize(..HOSTS.len())],
    );
    let with_port = HostMatch::Exact {
        host: a,
        port: Some(if rng.bool() { 80 } else { 8080 }),
    };
    match rng.u8(..4) {
        0 => Vec::leak(vec![exact(a)]),
        1 => Vec::leak(vec![with_port]),
        _ => Vec::leak(vec![with_port, exact(b)]),
    }
}

fn random_sub(rng: &mut fastrand::Rng, route: u32) -> SubRoute {
    let hosts: &'static [HostMatch] = match rng.u8(..8) {
        0 | 1 => &[],
        2 | 3 | 6 | 7 => random_exact_hosts(rng),
        4 => Vec::leak(vec![
            HostMatch::Suffix {
                suffix: ".a.com",
                port: None,
            },
            exact("c"),
        ]),
        _ => Vec::leak(vec![HostMatch::Prefix {
            prefix: "api.",
            port: None,
        }]),
    };
    let methods: &'static [&'static str] = match rng.u8(..4) {
        0 => &["GET"],
        1 => &["POST", "GET"],
        _ => &[],
    };
    static H: [HeaderMatch; 1] = [HeaderMatch {
        name: "x-v",
        values: &[HeaderValueMatch::Exact("1"), HeaderValueMatch::Regex(3)],
    }];
    let headers: &'static [HeaderMatch] = if rng.u8(..5) == 0 { &H } else { &[] };
    let paths = match rng.u8(..10) {
        0 => PathMatch::Any,
        1 | 2 => PathMatch::Regex(Vec::leak(vec![rng.u32(..3), rng.u32(..3)])),
        _ => {
            let p = random_path(rng);
            let p = if p.is_empty() { "/" } else { p };
            PathMatch::Prefix(Vec::leak(vec![p]))
        }
    };
    SubRoute {
        route,
        hosts,
        methods,
        headers,
        paths,
    }
}

#[test]
fn router_equals_reference_on_random_tables() {
    for (seed, n_subs) in [(1u64, 10usize), (2, 200), (3, 2000)] {
        let mut rng = fastrand::Rng::with_seed(seed);
        let subs: Vec<SubRoute> = (0..n_subs)
            .map(|i| random_sub(&mut rng, i as u32))
            .collect();
        let router = check_against_reference(&mut rng, subs);
        if n_subs >= 200 {
            assert!(
                matches!(router.other, RankIndex::Tree { .. }),
                "the tree is exercised"
            );
            assert!(router
                .host_lists
                .iter()
                .any(|l| matches!(l, RankIndex::Tree { .. })));
        }
    }
}

#[test]
fn router_equals_reference_on_mostly_exact_hosts() {
    // Exact hosts and few conditions, host-less sub-routes only at a third and at the end:
    // the exact-host shortcuts (host heads, hosts proven by the hit) carry many answers, and
    // some heads are beaten by a host-less sub-route.
    let mut heads = 0;
    for (seed, n_subs) in [(4u64, 8usize), (5, 8), (6, 8), (7, 12), (8, 300)] {
        let mut rng = fastrand::Rng::with_seed(seed);
        let subs: Vec<SubRoute> = (0..n_subs)
            .map(|i| {
                let sub = random_sub(&mut rng, i as u32);
                if i == n_subs / 3 || i + 2 >= n_subs {
                    return SubRoute { hosts: &[], ..sub };
                }
                SubRoute {
                    hosts: if rng.bool() {
                        Vec::leak(vec![exact(HOSTS[rng.usize(..HOSTS.len())])])
                    } else {
                        random_exact_hosts(&mut rng)
                    },
                    methods: if rng.u8(..3) > 0 { &[] } else { sub.methods },
                    headers: if rng.u8(..3) > 0 { &[] } else { sub.headers },
                    paths: if rng.u8(..3) > 0 {
                        PathMatch::Any
                    } else {
                        sub.paths
                    },
                    ..sub
                }
            })
            .collect();
        let router = check_against_reference(&mut rng, subs);
        heads += router
            .host_heads
            .iter()
            .filter(|h| h.rank != u32::MAX)
            .count();
    }
    assert!(heads >= 5, "host heads are exercised ({heads})");
}

/// Builds the router over `subs` and compares it with [`reference`] on random requests.
fn check_against_reference(rng: &mut fastrand::Rng, subs: Vec<SubRoute>) -> Router {
    let tables = leak_tables(subs, &REGEXES);
    let router = Router::new(tables).expect("router");
    let mut matched = 0;
    for _ in 0..3000 {
        let host = match rng.u8(..4) {
            0 => "other.org",
            _ => HOSTS[rng.usize(..HOSTS.len())],
        };
        let headers = match rng.u8(..4) {
            0 => header_map(&[("x-v", "1")]),
            1 => header_map(&[("x-v", "zz"), ("X-V", "V7")]),
            _ => HeaderMap::new(),
        };
        let req = RouteRequest {
            method: if rng.bool() { "GET" } else { "POST" },
            host,
            port: if rng.bool() { 80 } else { 8080 },
            path: random_path(rng),
            headers: &headers,
        };
        let want = reference(tables, &req);
        let got = router.find(&req);
        matched += usize::from(want.is_some());
        assert_eq!(
            got.as_ref()
                .map(|m| (m.route, m.sub_route, m.matched_len, &m.captures)),
            want.as_ref()
                .map(|m| (m.route, m.sub_route, m.matched_len, &m.captures)),
            "{req:?}"
        );
    }
    assert!(matched > 300, "the requests exercise matches ({matched})");
    router
}
