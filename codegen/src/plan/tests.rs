use super::{priority::Inputs, *};
use crate::{diag::Span, ir::*};

fn route(name: &str) -> Route {
    Route {
        id: format!(
            "00000000-0000-0000-0000-{:012x}",
            name.len() * 7919 + name.as_bytes()[0] as usize
        ),
        name: Some(name.into()),
        service: None,
        protocols: vec![Protocol::Http, Protocol::Https],
        methods: vec![],
        hosts: None,
        paths: vec![],
        headers: vec![],
        snis: vec![],
        strip_path: true,
        preserve_host: false,
        regex_priority: 0,
        https_redirect_status_code: 426,
        request_buffering: true,
        response_buffering: true,
        origin: Span::default(),
    }
}

fn exact(h: &str) -> HostPattern {
    HostPattern::Exact {
        host: h.into(),
        port: None,
    }
}
fn prefix(p: &str) -> PathPattern {
    PathPattern::Prefix(p.into())
}
fn regex(p: &str) -> PathPattern {
    PathPattern::Regex(p.into())
}
fn header(name: &str, v: &str) -> HeaderCondition {
    HeaderCondition {
        name: name.into(),
        values: vec![HeaderValue::Exact(v.into())],
    }
}

fn config(routes: Vec<Route>) -> Config {
    Config {
        services: vec![],
        routes,
        upstreams: vec![],
        consumers: vec![],
        plugins: vec![],
    }
}

/// Route names in match order.
fn order(routes: Vec<Route>) -> Vec<String> {
    let cfg = config(routes);
    let (p, _) = plan(&cfg);
    p.sub_routes
        .iter()
        .map(|s| {
            let n = cfg.routes[s.route.index()].name.clone().unwrap_or_default();
            match s.group {
                Some(g) => format!("{n}#{g}"),
                None => n,
            }
        })
        .collect()
}

#[test]
fn priority_formula_matches_kong_bits() {
    let base = Inputs {
        weight: 0,
        plain_host_only: false,
        header_count: 0,
        regex: false,
        regex_priority: 0,
        uri_length: 0,
    };
    let cases: &[(Inputs, u64)] = &[
        (
            Inputs {
                weight: 1,
                uri_length: 4,
                ..base
            },
            (1 << 29) | 4,
        ),
        (
            Inputs {
                weight: 2,
                header_count: 1,
                uri_length: 3,
                ..base
            },
            (2 << 29) | (1 << 20) | 3,
        ),
        (
            Inputs {
                weight: 1,
                plain_host_only: true,
                ..base
            },
            (1 << 60) | (1 << 29),
        ),
        (
            Inputs {
                weight: 1,
                regex: true,
                regex_priority: 1,
                ..base
            },
            (1 << 51) | (1 << 29) | (1 << 19),
        ),
        // weight 4 sets the 32-bit sign bit: saturates to 2^63, weight bits lost.
        (
            Inputs {
                weight: 4,
                uri_length: 2,
                ..base
            },
            1 << 63,
        ),
        (
            Inputs {
                weight: 4,
                plain_host_only: true,
                uri_length: 2,
                ..base
            },
            (1 << 63) | (1 << 60) | 2,
        ),
        // negative regex_priority: its operand saturates.
        (
            Inputs {
                weight: 1,
                regex: true,
                regex_priority: -1,
                ..base
            },
            (1 << 63) | (1 << 51) | (1 << 29),
        ),
        // empty hosts `[]` with nothing else.
        (
            Inputs {
                plain_host_only: true,
                ..base
            },
            1 << 60,
        ),
        // prefix length masked to 19 bits.
        (
            Inputs {
                weight: 1,
                uri_length: 0x80001,
                ..base
            },
            (1 << 29) | 1,
        ),
    ];
    for (i, (inp, want)) in cases.iter().enumerate() {
        assert_eq!(Priority::from_inputs(*inp).0, *want, "case {i}: {inp:?}");
    }
}

#[test]
fn route_order_follows_kong() {
    let mut a = route("plain");
    a.hosts = Some(vec![exact("api.x.com")]);
    let mut b = route("wild");
    b.hosts = Some(vec![HostPattern::Suffix {
        suffix: ".x.com".into(),
        port: None,
    }]);
    b.methods = vec!["GET".into()];
    b.paths = vec![prefix("/v1")];
    assert_eq!(order(vec![b.clone(), a.clone()]), ["plain", "wild"]);

    let mut re = route("regex");
    re.paths = vec![regex("/v1")];
    let mut heavy = route("heavy");
    heavy.methods = vec!["GET".into()];
    heavy.headers = vec![header("x-a", "1")];
    heavy.paths = vec![prefix("/v1/items")];
    assert_eq!(order(vec![heavy, re]), ["regex", "heavy"]);

    let mut short = route("short");
    short.paths = vec![prefix("/a")];
    let mut long = route("long");
    long.paths = vec![prefix("/a/b")];
    assert_eq!(order(vec![short.clone(), long.clone()]), ["long", "short"]);

    let mut hdr = route("hdr");
    hdr.paths = vec![prefix("/a")];
    hdr.headers = vec![header("x-v", "1")];
    let mut longer = route("longer");
    longer.paths = vec![prefix("/a/b/c/d")];
    longer.methods = vec!["GET".into()];
    // same weight (2): more headers beat a longer path
    assert_eq!(order(vec![longer, hdr]), ["hdr", "longer"]);

    let mut r1 = route("rp1");
    r1.paths = vec![regex("/x")];
    r1.regex_priority = 1;
    let mut r5 = route("rp5");
    r5.paths = vec![regex("/y")];
    r5.regex_priority = 5;
    assert_eq!(order(vec![r1, r5]), ["rp5", "rp1"]);

    // weight 4 sits above every weight <= 3 route, even a plain-host one.
    let mut four = route("four");
    four.methods = vec!["GET".into()];
    four.hosts = Some(vec![HostPattern::Suffix {
        suffix: ".b".into(),
        port: None,
    }]);
    four.paths = vec![prefix("/")];
    four.headers = vec![header("x", "y")];
    assert_eq!(order(vec![a, four]), ["four", "plain"]);
}

#[test]
fn ties_break_by_larger_id_first() {
    let mut x = route("x");
    x.id = "10000000-0000-0000-0000-000000000000".into();
    x.paths = vec![prefix("/same")];
    let mut y = route("y");
    y.id = "20000000-0000-0000-0000-000000000000".into();
    y.paths = vec![prefix("/same")];
    assert_eq!(order(vec![x, y]), ["y", "x"]);
}

#[test]
fn multi_path_routes_split_like_kong() {
    let mut r = route("multi");
    r.id = "a1b2c3d4-0000-4000-8000-000000000001".into();
    r.paths = vec![prefix("/aa"), regex("/r"), prefix("/bbbb"), prefix("/cc")];
    let cfg = config(vec![r]);
    let (p, _) = plan(&cfg);
    let groups: Vec<(Option<usize>, SubPaths)> = p
        .sub_routes
        .iter()
        .map(|s| (s.group, s.paths.clone()))
        .collect();
    // regex group first (regex flag), then longest prefix.
    assert_eq!(
        groups,
        vec![
            (Some(2), SubPaths::Regex(vec!["/r".into()])),
            (Some(3), SubPaths::Prefix(vec!["/bbbb".into()])),
            (Some(1), SubPaths::Prefix(vec!["/aa".into(), "/cc".into()])),
        ]
    );
    assert_eq!(
        p.sub_routes[0].id,
        split_id("a1b2c3d4-0000-4000-8000-000000000001", 2)
    );
    // a single group is not split
    let mut one = route("one");
    one.paths = vec![prefix("/a"), prefix("/b")];
    let (p, _) = plan(&config(vec![one.clone()]));
    assert_eq!(p.sub_routes.len(), 1);
    assert_eq!(p.sub_routes[0].id, one.id);
}

#[test]
fn split_ids_are_uuid_v5() {
    // python3 -c "import uuid; print(uuid.uuid5(uuid.UUID('7f145bf9-0dce-4f91-98eb-debbce4b9f6b'), 'r#1'))"
    assert_eq!(split_id("r", 1), "d4de645d-d2ec-5443-88fc-1360947837d0");
}

#[test]
fn host_tables_partition_ranks() {
    let mut a = route("a");
    a.hosts = Some(vec![
        exact("a.com"),
        HostPattern::Prefix {
            prefix: "a.".into(),
            port: None,
        },
    ]);
    let mut b = route("b");
    b.hosts = Some(vec![exact("a.com")]);
    b.paths = vec![prefix("/x")];
    let c = {
        let mut c = route("c");
        c.paths = vec![prefix("/")];
        c
    };
    let (p, _) = plan(&config(vec![a, b, c]));
    let names: Vec<u32> = p.sub_routes.iter().map(|s| s.route.0).collect();
    // b (plain host), then c (weight 1, prefix length 1), then a (weight 1, no path)
    assert_eq!(names, [1, 2, 0]);
    assert_eq!(p.exact_hosts.get("a.com"), Some(&vec![0, 2]));
    assert_eq!(p.other, vec![1, 2]);
}

#[test]
fn shadowed_routes_are_reported() {
    let mut wide = route("wide");
    wide.paths = vec![prefix("/api")];
    wide.methods = vec!["GET".into(), "POST".into()];
    let mut narrow = route("narrow");
    narrow.paths = vec![prefix("/api/v1")];
    narrow.methods = vec!["GET".into()];
    // narrow has the longer prefix, so it is tried first: no warning.
    let (_, d) = plan(&config(vec![wide.clone(), narrow.clone()]));
    assert!(d.is_empty(), "{d:?}");

    let mut dup = route("dup");
    dup.id = "00000000-0000-0000-0000-000000000001".into();
    dup.paths = vec![prefix("/api")];
    let mut first = route("first");
    first.id = "ffffffff-0000-0000-0000-000000000001".into();
    first.paths = vec![prefix("/api")];
    let (_, d) = plan(&config(vec![dup, first]));
    let msgs: Vec<String> = d
        .iter()
        .map(|x| format!("{} {}", x.code, x.message))
        .collect();
    assert_eq!(
        msgs,
        ["K1001 route 'dup' can never match: route 'first' always matches first"]
    );
}

#[test]
fn a_literal_regex_shadows_longer_prefixes() {
    let mut legacy = route("legacy");
    legacy.paths = vec![regex("/api")];
    let mut v1 = route("v1");
    v1.paths = vec![prefix("/api/v1")];
    v1.methods = vec!["GET".into()];
    let (_, d) = plan(&config(vec![v1.clone(), legacy]));
    assert_eq!(d.iter().map(|x| x.code).collect::<Vec<_>>(), ["K1001"]);
    // a real regex is not claimed to cover anything
    let mut re = route("re");
    re.paths = vec![regex("/a.i")];
    let (_, d) = plan(&config(vec![v1, re]));
    assert!(d.is_empty());
}

fn termination(scope: Scope, msg: &str) -> PluginInstance {
    PluginInstance {
        id: format!("id-{msg}"),
        instance_name: None,
        scope,
        config: PluginConfig::RequestTermination(RequestTermination {
            status_code: 503,
            message: Some(msg.into()),
            body: None,
            content_type: None,
            echo: false,
            trigger: None,
        }),
        protocols: vec![Protocol::Http, Protocol::Https],
        origin: Span::default(),
    }
}

fn consumer(name: &str) -> Consumer {
    Consumer {
        id: format!("c-{name}"),
        username: Some(name.into()),
        custom_id: None,
        keyauth_credentials: vec![],
        basicauth_credentials: vec![],
        jwt_secrets: vec![],
        acls: vec![],
        origin: Span::default(),
    }
}

#[test]
fn consumer_scoped_instances_follow_kong_precedence() {
    let mut r = route("r");
    r.service = Some(ServiceId(0));
    r.paths = vec![prefix("/")];
    let mut cfg = config(vec![r]);
    cfg.consumers = vec![consumer("a"), consumer("b"), consumer("c")];
    let (route0, svc0) = (Some(RouteId(0)), Some(ServiceId(0)));
    cfg.plugins = vec![
        termination(
            Scope {
                service: svc0,
                ..Scope::default()
            },
            "service",
        ),
        termination(
            Scope {
                route: route0,
                service: svc0,
                consumer: None,
            },
            "route+service",
        ),
        // consumer-only (level 5) loses to route+service (level 4)
        termination(
            Scope {
                consumer: Some(ConsumerId(0)),
                ..Scope::default()
            },
            "a",
        ),
        // route+consumer (level 2) wins
        termination(
            Scope {
                route: route0,
                consumer: Some(ConsumerId(1)),
                ..Scope::default()
            },
            "b",
        ),
        // another route's consumer instance never applies here
        termination(
            Scope {
                route: Some(RouteId(9)),
                consumer: Some(ConsumerId(2)),
                ..Scope::default()
            },
            "c",
        ),
    ];
    let chains = chains::plan_chains(&cfg, &mut Diagnostics::default());
    let steps = &chains[0].steps;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].default, Some(PluginId(1)));
    assert_eq!(steps[0].by_consumer, vec![(ConsumerId(1), PluginId(3))]);
}
