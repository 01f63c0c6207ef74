//! Route selection end to end: the `routing` fixture compiled by build.rs, served
//! in-process; every route answers with its own name (request-termination).

use kiln_tests::harness::{request, start};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

/// (method, Host, path, extra headers) → the route that must answer (`None`: 404).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<&'static str>,
);

const CASES: &[Case] = &[
    // hosts: plain beats a wildcard route with more fields
    ("GET", "api.example.test", "/v1", &[], Some("plain-host")),
    ("GET", "x.example.test", "/v1", &[], Some("wildcard-suffix")),
    (
        "GET",
        "a.b.example.test",
        "/v1/z",
        &[],
        Some("wildcard-suffix"),
    ),
    ("POST", "x.example.test", "/v1", &[], None),
    (
        "GET",
        "shop.anything.test",
        "/",
        &[],
        Some("wildcard-prefix"),
    ),
    // hosts are case-sensitive, as in Kong
    ("GET", "API.example.test", "/", &[], None),
    // host:port
    ("GET", "ported.test:8080", "/", &[], Some("host-port")),
    ("GET", "ported.test:9090", "/", &[], None),
    // methods: more fields win
    ("POST", "any.test", "/things", &[], Some("methods")),
    ("GET", "any.test", "/things", &[], Some("things")),
    // prefixes are not segment aware
    ("GET", "any.test", "/thingsandmore", &[], Some("things")),
    // headers
    (
        "GET",
        "any.test",
        "/h",
        &[("x-version", "V2")],
        Some("header-exact"),
    ),
    (
        "GET",
        "any.test",
        "/h",
        &[("x-version", "v3")],
        Some("header-exact"),
    ),
    (
        "GET",
        "any.test",
        "/h",
        &[("x-version", "v4")],
        Some("header-none"),
    ),
    (
        "GET",
        "any.test",
        "/h",
        &[("x-tenant", "ACME-42")],
        Some("header-regex"),
    ),
    (
        "GET",
        "any.test",
        "/h",
        &[("x-tenant", "acme-x")],
        Some("header-none"),
    ),
    // longest prefix
    (
        "GET",
        "any.test",
        "/p/deeper/still",
        &[],
        Some("prefix-long"),
    ),
    ("GET", "any.test", "/p/other", &[], Some("prefix-short")),
    // regex_priority among regex routes
    ("GET", "any.test", "/items/7", &[], Some("regex-high")),
    ("GET", "any.test", "/items/8", &[], Some("regex-low")),
    ("GET", "any.test", "/items/8/x", &[], None),
    // split route: each group matches
    ("GET", "any.test", "/aa", &[], Some("split")),
    ("GET", "any.test", "/bbbbcc", &[], Some("split")),
    ("GET", "any.test", "/rx", &[], Some("split")),
    // normalization before matching
    ("GET", "any.test", "/x/../thi%6egs", &[], Some("things")),
    ("GET", "any.test", "//p//deeper", &[], Some("prefix-long")),
    ("GET", "any.test", "/nothing-here", &[], None),
];

#[tokio::test]
async fn routes_like_kong() {
    let gw = start::<routing::Gateway>().await;
    let mut failures = Vec::new();
    for (method, host, path, headers, want) in CASES {
        let r = request(gw.addr, method, host, path, headers).await;
        let got = if r.status == 404 {
            assert_eq!(
                r.json()["message"],
                "no Route matched with those values",
                "404 body for {method} {host}{path}"
            );
            None
        } else {
            r.json()["message"].as_str().map(str::to_owned)
        };
        if got.as_deref() != *want {
            failures.push(format!(
                "{method} {host}{path} {headers:?}: want {want:?}, got {got:?}"
            ));
        }
    }
    gw.stop().await;
    assert!(
        failures.is_empty(),
        "routing mismatches:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_thousand_routes_route_correctly() {
    let gw = start::<big::Gateway>().await;
    for i in [0usize, 1, 9, 10, 11, 500, 990, 999] {
        let host = if i % 10 == 0 {
            format!("h{i}.big.test")
        } else {
            "any.test".to_string()
        };
        let r = request(gw.addr, "GET", &host, &format!("/r{i}/x/tail"), &[]).await;
        assert_eq!(r.status, 200, "route r{i}: {:?}", r.body);
        assert_eq!(r.json()["path"], "/base/tail", "route r{i}");
    }
    // a host-restricted route does not answer for other hosts
    let r = request(gw.addr, "GET", "other.test", "/r10/x", &[]).await;
    assert_eq!(r.status, 404);
    gw.stop().await;
}
