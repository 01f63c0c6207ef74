use http::{HeaderMap, HeaderValue};

use super::*;
use crate::phf;

/// Builds tables as the compiler would: `exact_hosts[h]` lists the sub-routes naming exact
/// host `h`; `other` lists those with no hosts or any wildcard host. Ranks = input order.
fn leak_tables(subs: Vec<SubRoute>, regexes: &[&'static str]) -> &'static RouterTables {
    let mut by_host: std::collections::BTreeMap<&'static str, Vec<u32>> = Default::default();
    let mut other = Vec::new();
    for (rank, sub) in subs.iter().enumerate() {
        let rank = rank as u32;
        let mut in_other = sub.hosts.is_empty();
        for h in sub.hosts {
            match *h {
                HostMatch::Exact { host, .. } => {
                    let list = by_host.entry(host).or_default();
                    if list.last() != Some(&rank) {
                        list.push(rank);
                    }
                }
                _ => in_other = true,
            }
        }
        if in_other {
            other.push(rank);
        }
    }
    let keys: Vec<&'static str> = by_host.keys().copied().collect();
    let layout = phf::build(&keys).expect("distinct hosts");
    let values: Vec<&'static [u32]> = layout
        .slots
        .iter()
        .map(|&i| &*Vec::leak(by_host[keys[i]].clone()))
        .collect();
    Box::leak(Box::new(RouterTables {
        sub_routes: Vec::leak(subs),
        exact_hosts: PhfMap {
            seed: layout.seed,
            disps: Vec::leak(layout.disps),
            keys: Vec::leak(layout.slots.iter().map(|&i| keys[i]).collect()),
            values: Vec::leak(values),
        },
        other: Vec::leak(other),
        regexes: Vec::leak(regexes.to_vec()),
    }))
}

/// A sub-route for route `route` with no conditions.
fn any(route: u32) -> SubRoute {
    SubRoute {
        route,
        hosts: &[],
        methods: &[],
        headers: &[],
        paths: PathMatch::Any,
    }
}

const fn exact(host: &'static str) -> HostMatch {
    HostMatch::Exact { host, port: None }
}

/// A request; `headers` as (name, value) pairs, repeated names give multi-valued headers.
struct Req {
    method: &'static str,
    host: &'static str,
    port: u16,
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

const GET: Req = Req {
    method: "GET",
    host: "example.com",
    port: 80,
    path: "/",
    headers: &[],
};

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).expect("test header name"),
            HeaderValue::from_str(v).expect("test header value"),
        );
    }
    map
}

fn find(router: &Router, r: &Req) -> Option<MatchInfo> {
    let headers = header_map(r.headers);
    router.find(&RouteRequest {
        method: r.method,
        host: r.host,
        port: r.port,
        path: r.path,
        headers: &headers,
    })
}

/// Runs `(name, request, expected route)` cases against one table.
fn check_routes(router: &Router, cases: &[(&str, Req, Option<u32>)]) {
    for (name, req, want) in cases {
        let got = find(router, req).map(|m| m.route);
        assert_eq!(got, *want, "case {name:?}");
    }
}

#[test]
fn hosts() {
    let subs = vec![
        SubRoute {
            hosts: &[HostMatch::Exact {
                host: "a.com",
                port: Some(8080),
            }],
            ..any(0)
        },
        SubRoute {
            hosts: &[HostMatch::Exact {
                host: "a.com",
                port: None,
            }],
            ..any(1)
        },
        SubRoute {
            hosts: &[HostMatch::Suffix {
                suffix: ".b.com",
                port: None,
            }],
            ..any(2)
        },
        SubRoute {
            hosts: &[HostMatch::Prefix {
                prefix: "c.",
                port: None,
            }],
            ..any(3)
        },
        SubRoute {
            hosts: &[HostMatch::Suffix {
                suffix: ".p.com",
                port: Some(81),
            }],
            ..any(4)
        },
        SubRoute {
            hosts: &[
                HostMatch::Exact {
                    host: "m1.com",
                    port: None,
                },
                HostMatch::Exact {
                    host: "m2.com",
                    port: None,
                },
            ],
            ..any(5)
        },
    ];
    let router = Router::new(leak_tables(subs, &[])).expect("router");
    check_routes(
        &router,
        &[
            (
                "exact with port",
                Req {
                    host: "a.com",
                    port: 8080,
                    ..GET
                },
                Some(0),
            ),
            (
                "exact, other port",
                Req {
                    host: "a.com",
                    port: 80,
                    ..GET
                },
                Some(1),
            ),
            (
                "exact is case-sensitive",
                Req {
                    host: "A.com",
                    ..GET
                },
                None,
            ),
            (
                "exact is not a suffix",
                Req {
                    host: "xa.com",
                    ..GET
                },
                None,
            ),
            (
                "suffix one level",
                Req {
                    host: "x.b.com",
                    ..GET
                },
                Some(2),
            ),
            (
                "suffix any depth",
                Req {
                    host: "x.y.b.com",
                    ..GET
                },
                Some(2),
            ),
            (
                "suffix needs the dot",
                Req {
                    host: "xb.com",
                    ..GET
                },
                None,
            ),
            (
                "suffix bare domain",
                Req {
                    host: "b.com",
                    ..GET
                },
                None,
            ),
            (
                "prefix",
                Req {
                    host: "c.example.org",
                    ..GET
                },
                Some(3),
            ),
            (
                "prefix needs the dot",
                Req {
                    host: "cx.org",
                    ..GET
                },
                None,
            ),
            (
                "wildcard with port",
                Req {
                    host: "x.p.com",
                    port: 81,
                    ..GET
                },
                Some(4),
            ),
            (
                "wildcard, other port",
                Req {
                    host: "x.p.com",
                    port: 80,
                    ..GET
                },
                None,
            ),
            (
                "second of several hosts",
                Req {
                    host: "m2.com",
                    ..GET
                },
                Some(5),
            ),
            ("unknown host", Req { host: "zzz", ..GET }, None),
        ],
    );
}

#[test]
fn methods() {
    let subs = vec![
        SubRoute {
            methods: &["POST", "PUT"],
            ..any(0)
        },
        SubRoute {
            methods: &["GET"],
            ..any(1)
        },
    ];
    let router = Router::new(leak_tables(subs, &[])).expect("router");
    check_routes(
        &router,
        &[
            (
                "first method",
                Req {
                    method: "POST",
                    ..GET
                },
                Some(0),
            ),
            (
                "second method",
                Req {
                    method: "PUT",
                    ..GET
                },
                Some(0),
            ),
            (
                "other route",
                Req {
                    method: "GET",
                    ..GET
                },
                Some(1),
            ),
            (
                "methods are exact",
                Req {
                    method: "get",
                    ..GET
                },
                None,
            ),
            (
                "not listed",
                Req {
                    method: "DELETE",
                    ..GET
                },
                None,
            ),
        ],
    );
}

#[test]
fn headers() {
    static VERSION: [HeaderMatch; 1] = [HeaderMatch {
        name: "x-version",
        values: &[HeaderValueMatch::Exact("v1"), HeaderValueMatch::Exact("v2")],
    }];
    static AGENT: [HeaderMatch; 1] = [HeaderMatch {
        name: "user_agent", // `_` reads as `-`, as in Kong
        values: &[HeaderValueMatch::Regex(0)],
    }];
    static BOTH: [HeaderMatch; 2] = [
        HeaderMatch {
            name: "x-a",
            values: &[HeaderValueMatch::Exact("1")],
        },
        HeaderMatch {
            name: "x-b",
            values: &[HeaderValueMatch::Exact("2")],
        },
    ];
    let subs = vec![
        SubRoute {
            headers: &BOTH,
            ..any(0)
        },
        SubRoute {
            headers: &VERSION,
            ..any(1)
        },
        SubRoute {
            headers: &AGENT,
            ..any(2)
        },
    ];
    let router = Router::new(leak_tables(subs, &["curl/[0-9]+"])).expect("router");
    check_routes(
        &router,
        &[
            (
                "exact value",
                Req {
                    headers: &[("x-version", "v2")],
                    ..GET
                },
                Some(1),
            ),
            (
                "value case-insensitive",
                Req {
                    headers: &[("x-version", "V1")],
                    ..GET
                },
                Some(1),
            ),
            (
                "name case-insensitive",
                Req {
                    headers: &[("X-Version", "v1")],
                    ..GET
                },
                Some(1),
            ),
            (
                "value must be equal",
                Req {
                    headers: &[("x-version", "v10")],
                    ..GET
                },
                None,
            ),
            (
                "multi-valued: any value",
                Req {
                    headers: &[("x-version", "v9"), ("x-version", "v1")],
                    ..GET
                },
                Some(1),
            ),
            (
                "regex on lower-cased value",
                Req {
                    headers: &[("user-agent", "CURL/8")],
                    ..GET
                },
                Some(2),
            ),
            (
                "regex is not anchored",
                Req {
                    headers: &[("user-agent", "my curl/8.1")],
                    ..GET
                },
                Some(2),
            ),
            (
                "regex no match",
                Req {
                    headers: &[("user-agent", "wget/1")],
                    ..GET
                },
                None,
            ),
            (
                "all headers required",
                Req {
                    headers: &[("x-a", "1")],
                    ..GET
                },
                None,
            ),
            (
                "all headers present",
                Req {
                    headers: &[("x-b", "2"), ("x-a", "1")],
                    ..GET
                },
                Some(0),
            ),
            ("missing header", GET, None),
        ],
    );
}

#[test]
fn prefix_paths_are_not_segment_aware() {
    let subs = vec![
        SubRoute {
            paths: PathMatch::Prefix(&["/foo/bar"]),
            ..any(0)
        },
        SubRoute {
            paths: PathMatch::Prefix(&["/foo", "/baz"]),
            ..any(1)
        },
        SubRoute {
            paths: PathMatch::Prefix(&["/"]),
            ..any(2)
        },
    ];
    let router = Router::new(leak_tables(subs, &[])).expect("router");
    type Want = Option<(u32, Option<usize>)>;
    let cases: &[(&str, &str, Want)] = &[
        (
            "longer prefix ranked first",
            "/foo/bar/x",
            Some((0, Some(8))),
        ),
        ("not segment aware", "/foobar", Some((1, Some(4)))),
        ("equal", "/foo", Some((1, Some(4)))),
        ("second prefix of a group", "/bazooka", Some((1, Some(4)))),
        ("paths are case-sensitive", "/FOO", Some((2, Some(1)))),
        ("root prefix", "/", Some((2, Some(1)))),
        ("empty path", "", None),
    ];
    for (name, path, want) in cases {
        let got = find(&router, &Req { path, ..GET }).map(|m| (m.route, m.matched_len));
        assert_eq!(got, *want, "case {name:?}");
    }
}

#[test]
fn regex_paths_and_captures() {
    let subs = vec![
        SubRoute {
            paths: PathMatch::Regex(&[0]),
            ..any(0)
        },
        SubRoute {
            paths: PathMatch::Regex(&[1, 2]),
            ..any(1)
        },
    ];
    let regexes = [r"/users/(?P<id>\d+)(/(\w+))?", r"/plain/\d+", r"/(a)|/(b)"];
    let router = Router::new(leak_tables(subs, &regexes)).expect("router");
    let s = |v: &str| Some(v.to_owned());
    type Caps = Vec<(Option<String>, Option<String>)>;
    type Want = Option<(u32, Option<usize>, Caps)>;
    let cases: Vec<(&str, &str, Want)> = vec![
        (
            "named and numbered groups, unanchored end",
            "/users/42/posts?",
            Some((
                0,
                Some(15),
                vec![
                    (None, s("/users/42/posts")),
                    (s("id"), s("42")),
                    (None, s("/posts")),
                    (None, s("posts")),
                ],
            )),
        ),
        (
            "group that did not participate",
            "/users/7",
            Some((
                0,
                Some(8),
                vec![
                    (None, s("/users/7")),
                    (s("id"), s("7")),
                    (None, None),
                    (None, None),
                ],
            )),
        ),
        ("anchored at the start", "/x/users/7", None),
        (
            "no groups: no captures",
            "/plain/123/x",
            Some((1, Some(10), vec![])),
        ),
        (
            "second regex of the list; group 1 unmatched: no captures, as Kong",
            "/b",
            Some((1, Some(2), vec![])),
        ),
        (
            "group 1 matched, group 2 not",
            "/a",
            Some((
                1,
                Some(2),
                vec![(None, s("/a")), (None, s("a")), (None, None)],
            )),
        ),
        ("no match", "/plain/x", None),
    ];
    for (name, path, want) in cases {
        let got = find(&router, &Req { path, ..GET }).map(|m| (m.route, m.matched_len, m.captures));
        assert_eq!(got, want, "case {name:?}");
    }
}

#[test]
fn first_by_rank_wins() {
    let subs = vec![
        SubRoute {
            methods: &["GET"],
            paths: PathMatch::Prefix(&["/a"]),
            ..any(7)
        },
        SubRoute {
            paths: PathMatch::Prefix(&["/a/b"]),
            ..any(3)
        },
        any(9),
    ];
    let router = Router::new(leak_tables(subs, &[])).expect("router");
    check_routes(
        &router,
        &[
            (
                "rank 0 even though rank 1 is longer",
                Req {
                    path: "/a/b",
                    ..GET
                },
                Some(7),
            ),
            (
                "rank 1 when rank 0 fails",
                Req {
                    method: "POST",
                    path: "/a/b",
                    ..GET
                },
                Some(3),
            ),
            (
                "catch-all last",
                Req {
                    method: "POST",
                    path: "/a",
                    ..GET
                },
                Some(9),
            ),
        ],
    );
}

#[test]
fn host_table_and_other_merge_in_rank_order() {
    // Ranks interleave between the exact-host list {1, 3} and `other` {0, 2, 4}.
    let subs = vec![
        SubRoute {
            hosts: &[HostMatch::Suffix {
                suffix: ".x.com",
                port: None,
            }],
            methods: &["PUT"],
            ..any(0)
        },
        SubRoute {
            hosts: &[HostMatch::Exact {
                host: "api.x.com",
                port: None,
            }],
            methods: &["POST"],
            ..any(1)
        },
        SubRoute {
            methods: &["POST", "DELETE"],
            ..any(2)
        },
        SubRoute {
            hosts: &[
                HostMatch::Exact {
                    host: "api.x.com",
                    port: None,
                },
                HostMatch::Prefix {
                    prefix: "api.",
                    port: None,
                },
            ],
            ..any(3)
        },
        any(4),
    ];
    let tables = leak_tables(subs, &[]);
    assert_eq!(
        tables.other,
        &[0, 2, 3, 4],
        "rank 3 has a wildcard host too"
    );
    let router = Router::new(tables).expect("router");
    check_routes(
        &router,
        &[
            (
                "other before host table",
                Req {
                    method: "PUT",
                    host: "api.x.com",
                    ..GET
                },
                Some(0),
            ),
            (
                "host table before other",
                Req {
                    method: "POST",
                    host: "api.x.com",
                    ..GET
                },
                Some(1),
            ),
            (
                "other between",
                Req {
                    method: "DELETE",
                    host: "api.x.com",
                    ..GET
                },
                Some(2),
            ),
            (
                "host table after other",
                Req {
                    method: "GET",
                    host: "api.x.com",
                    ..GET
                },
                Some(3),
            ),
            (
                "wildcard of a mixed route",
                Req {
                    method: "GET",
                    host: "api.y",
                    ..GET
                },
                Some(3),
            ),
            (
                "fallback",
                Req {
                    method: "GET",
                    host: "x",
                    ..GET
                },
                Some(4),
            ),
        ],
    );
}

#[test]
fn exact_host_hit_with_ported_and_portless_hosts() {
    // An exact-host hit proves the host only for a host listed without a port.
    let subs = vec![
        SubRoute {
            hosts: &[
                HostMatch::Exact {
                    host: "a.com",
                    port: Some(8080),
                },
                HostMatch::Exact {
                    host: "b.com",
                    port: None,
                },
            ],
            ..any(0)
        },
        SubRoute {
            hosts: &[
                HostMatch::Exact {
                    host: "c.com",
                    port: Some(8080),
                },
                HostMatch::Exact {
                    host: "c.com",
                    port: None,
                },
            ],
            ..any(1)
        },
        SubRoute {
            hosts: &[
                HostMatch::Exact {
                    host: "d.com",
                    port: Some(8080),
                },
                HostMatch::Suffix {
                    suffix: ".com",
                    port: Some(81),
                },
            ],
            ..any(2)
        },
        SubRoute {
            hosts: &[
                HostMatch::Exact {
                    host: "a.com",
                    port: None,
                },
                HostMatch::Exact {
                    host: "d.com",
                    port: None,
                },
            ],
            methods: &["POST"],
            ..any(3)
        },
    ];
    let router = Router::new(leak_tables(subs, &[])).expect("router");
    let (rank0, rank1, rank2) = (
        &router.rank_info[0],
        &router.rank_info[1],
        &router.rank_info[2],
    );
    assert!(!rank0.host_proven, "a.com is listed with a port only");
    assert!(rank1.host_proven && rank1.unconditional_via_exact);
    assert!(!rank2.host_proven && !rank2.unconditional_via_exact);
    check_routes(
        &router,
        &[
            (
                "ported host, other port",
                Req {
                    host: "a.com",
                    port: 80,
                    ..GET
                },
                None,
            ),
            (
                "ported host, its port",
                Req {
                    host: "a.com",
                    port: 8080,
                    ..GET
                },
                Some(0),
            ),
            (
                "ported host, other port, a later route",
                Req {
                    method: "POST",
                    host: "a.com",
                    port: 80,
                    ..GET
                },
                Some(3),
            ),
            (
                "portless host, port 80",
                Req {
                    host: "b.com",
                    port: 80,
                    ..GET
                },
                Some(0),
            ),
            (
                "portless host, port 8080",
                Req {
                    host: "b.com",
                    port: 8080,
                    ..GET
                },
                Some(0),
            ),
            (
                "host with and without a port",
                Req {
                    host: "c.com",
                    port: 9,
                    ..GET
                },
                Some(1),
            ),
            (
                "ported exact host, other port, wildcard's port",
                Req {
                    host: "d.com",
                    port: 81,
                    ..GET
                },
                Some(2),
            ),
            (
                "ported exact host, other port, no wildcard port",
                Req {
                    host: "d.com",
                    port: 80,
                    ..GET
                },
                None,
            ),
        ],
    );
}

#[test]
fn host_head_and_other() {
    // Host x.com's first sub-route (rank 1) matches any request to it; `other` holds rank 0
    // (conditional) and rank 2.
    let subs = vec![
        SubRoute {
            methods: &["DELETE"],
            ..any(10)
        },
        SubRoute {
            hosts: &[HostMatch::Exact {
                host: "x.com",
                port: None,
            }],
            ..any(11)
        },
        any(12),
    ];
    let router = Router::new(leak_tables(subs, &[])).expect("router");
    check_routes(
        &router,
        &[
            ("host head", GET_X, Some(11)),
            (
                "lower rank in other wins",
                Req {
                    method: "DELETE",
                    ..GET_X
                },
                Some(10),
            ),
            ("other host", GET, Some(12)),
        ],
    );
    let m = find(&router, &GET_X).expect("match");
    assert_eq!((m.sub_route, m.matched_len), (1, None));
}

#[test]
fn host_head_with_prefixes() {
    // x.com's first sub-route has path prefixes: on a prefix miss the later ones still match.
    const X_COM: &[HostMatch] = &[HostMatch::Exact {
        host: "x.com",
        port: None,
    }];
    let subs = vec![
        SubRoute {
            hosts: X_COM,
            paths: PathMatch::Prefix(&["/ab", "/cd"]),
            ..any(20)
        },
        SubRoute {
            hosts: X_COM,
            ..any(21)
        },
    ];
    let router = Router::new(leak_tables(subs, &[])).expect("router");
    assert_eq!(router.host_heads[0].rank, 0);
    for (path, want) in [
        ("/ab", Some((20, Some(3)))),
        ("/cd/e", Some((20, Some(3)))),
        ("/a", Some((21, None))),
        ("/", Some((21, None))),
    ] {
        let got = find(&router, &Req { path, ..GET_X }).map(|m| (m.route, m.matched_len));
        assert_eq!(got, want, "path {path:?}");
    }
}

const GET_X: Req = Req {
    host: "x.com",
    ..GET
};

#[test]
fn captures_of_a_replaced_match_are_dropped() {
    // The host list matches rank 1 (a regex with captures) first; rank 0 in `other` wins.
    let subs = vec![
        SubRoute {
            paths: PathMatch::Prefix(&["/u"]),
            ..any(0)
        },
        SubRoute {
            hosts: &[HostMatch::Exact {
                host: "x.com",
                port: None,
            }],
            paths: PathMatch::Regex(&[0]),
            ..any(1)
        },
    ];
    let router = Router::new(leak_tables(subs, &[r"/u/(\d+)"])).expect("router");
    let m = find(
        &router,
        &Req {
            path: "/u/7",
            ..GET_X
        },
    )
    .expect("match");
    assert_eq!((m.route, m.matched_len), (0, Some(2)));
    assert_eq!(m.captures.capacity(), 0);
}

#[test]
fn empty_tables_match_nothing() {
    static EMPTY: RouterTables = RouterTables {
        sub_routes: &[],
        exact_hosts: PhfMap::EMPTY,
        other: &[],
        regexes: &[],
    };
    let router = Router::new(&EMPTY).expect("router");
    assert!(find(&router, &GET).is_none());
}

#[test]
fn bad_tables_fail_at_startup() {
    let bad_regex = leak_tables(
        vec![SubRoute {
            paths: PathMatch::Regex(&[0]),
            ..any(0)
        }],
        &["("],
    );
    assert!(Router::new(bad_regex).is_err());
    let bad_index = leak_tables(
        vec![SubRoute {
            paths: PathMatch::Regex(&[5]),
            ..any(0)
        }],
        &[],
    );
    assert!(Router::new(bad_index).is_err());
    static BAD_RANK: RouterTables = RouterTables {
        sub_routes: &[],
        exact_hosts: PhfMap::EMPTY,
        other: &[0],
        regexes: &[],
    };
    assert!(Router::new(&BAD_RANK).is_err());
    static UNSORTED: [SubRoute; 2] = [
        SubRoute {
            route: 0,
            hosts: &[],
            methods: &[],
            headers: &[],
            paths: PathMatch::Any,
        },
        SubRoute {
            route: 1,
            hosts: &[],
            methods: &[],
            headers: &[],
            paths: PathMatch::Any,
        },
    ];
    static UNSORTED_TABLES: RouterTables = RouterTables {
        sub_routes: &UNSORTED,
        exact_hosts: PhfMap::EMPTY,
        other: &[1, 0],
        regexes: &[],
    };
    assert!(Router::new(&UNSORTED_TABLES).is_err());
}

#[test]
fn no_allocation_without_captures() {
    // A match without regex captures carries an empty, unallocated capture list.
    let subs = vec![SubRoute {
        paths: PathMatch::Regex(&[0]),
        ..any(0)
    }];
    let router = Router::new(leak_tables(subs, &["/v[0-9]"])).expect("router");
    let m = find(
        &router,
        &Req {
            path: "/v1/x",
            ..GET
        },
    )
    .expect("match");
    assert_eq!((m.matched_len, m.captures.capacity()), (Some(3), 0));
}

mod reference;

#[test]
fn regex_literal_prefixes() {
    let cases: &[(&str, Option<&str>)] = &[
        (r"/users/(?P<id>\d+)", Some("/users/")),
        // Kong prepends a bare `^`: only the first branch is anchored, so no index.
        (r"/v1|/v2", None),
        (r"(?:/v1|/v2)", Some("/v")),
        (r"(?i)/ab", Some("/")),
        (r"/a?b", Some("/")),
        (r"/x\d", Some("/x")),
        (r"[a-z]+/x", None), // class too large: no finite prefix set
        (r".*", None),
        (r"(", None),
    ];
    for (src, want) in cases {
        let got = literal_prefix(src);
        assert_eq!(got.as_deref(), want.map(str::as_bytes), "regex {src:?}");
    }
}
