//! Table-driven tests of Kong's value rules and of lowering decisions.

use super::rules::*;
use super::{check, ids};
use crate::diag::SourceFile;
use crate::ir::{HostPattern, PathPattern, PluginConfig};

fn lower(text: &str) -> (Option<crate::ir::Config>, Vec<&'static str>) {
    let file = SourceFile {
        name: "t.yml".into(),
        text: text.into(),
    };
    let (config, diags) = check(&file);
    (config, diags.into_sorted().iter().map(|d| d.code).collect())
}

#[test]
fn url_shorthand() {
    let ok = |scheme: &str, host: &str, port: u16, path: Option<&str>| {
        Ok(ServiceUrl {
            scheme: scheme.into(),
            host: host.into(),
            port,
            path: path.map(Into::into),
        })
    };
    let cases: &[(&str, Result<ServiceUrl, ()>)] = &[
        ("http://h", ok("http", "h", 80, None)),
        ("https://h", ok("https", "h", 443, None)),
        // Kong: every scheme other than https defaults to port 80.
        ("grpcs://h", ok("grpcs", "h", 80, None)),
        (
            "http://h:8080/a/b?q=1#f",
            ok("http", "h", 8080, Some("/a/b")),
        ),
        ("http://h/", ok("http", "h", 80, Some("/"))),
        // The path is kept as written (no normalization).
        ("http://h/a/../b", ok("http", "h", 80, Some("/a/../b"))),
        ("http://[::1]:9000/x", ok("http", "[::1]", 9000, Some("/x"))),
        ("HTTP://h", ok("http", "h", 80, None)),
        ("h:80", Err(())),
        ("http://h:99999", Err(())),
        ("http://u@h", Err(())),
        ("http://", Err(())),
    ];
    for (input, want) in cases {
        assert_eq!(&parse_service_url(input).map_err(|_| ()), want, "{input}");
    }
}

#[test]
fn path_normalization() {
    let cases = [
        ("/h%65llo/anything/a/../b", "/hello/anything/b"),
        ("/foo//bar", "/foo/bar"),
        ("/a%2fb", "/a%2Fb"),
        ("/a/./b/.", "/a/b/"),
        ("/..", "/"),
        ("/a/b/..", "/a/"),
        ("/%2E%2E/x", "/x"),
        ("/plain", "/plain"),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_path(input), want, "{input}");
    }
}

#[test]
fn prefix_paths() {
    assert_eq!(check_prefix_path("/a/b").ok(), Some("/a/b".to_owned()));
    // Written escaped, matched decoded (requests are normalized before matching).
    assert_eq!(check_prefix_path("/a%20b").ok(), Some("/a b".to_owned()));
    assert_eq!(check_prefix_path("/a%2Fb").ok(), Some("/a%2Fb".to_owned()));
    match check_prefix_path("/a%2fb") {
        Err(PrefixError::NotNormalized(n)) => assert_eq!(n, "/a%2Fb"),
        _ => panic!("expected not normalized"),
    }
    match check_prefix_path("/h%65llo") {
        Err(PrefixError::NotNormalized(n)) => assert_eq!(n, "/hello"),
        _ => panic!("expected not normalized"),
    }
    assert!(matches!(
        check_prefix_path("a"),
        Err(PrefixError::Invalid(_))
    ));
    assert!(matches!(
        check_prefix_path("/a b"),
        Err(PrefixError::Invalid(_))
    ));
    assert!(matches!(
        check_prefix_path("/a%zz"),
        Err(PrefixError::Invalid(_))
    ));
    assert!(matches!(
        check_prefix_path("/a%2"),
        Err(PrefixError::Invalid(_))
    ));
    match check_prefix_path("/a//b/./c") {
        Err(PrefixError::NotNormalized(n)) => assert_eq!(n, "/a/b/c"),
        _ => panic!("expected not normalized"),
    }
}

#[test]
fn legacy_path_migration() {
    let cases = [
        ("/a/./b", "/a/b"),
        ("/h%65llo", "/hello"),
        ("/users/\\d+", "~/users/\\d+"),
        ("/a%20b(c)", "~/a b(c)"),
        ("/v1/~user", "/v1/~user"),
    ];
    for (input, want) in cases {
        assert_eq!(migrate_legacy_path(input), want, "{input}");
    }
}

#[test]
fn host_patterns() {
    let exact = |h: &str, port| {
        Ok(HostPattern::Exact {
            host: h.into(),
            port,
        })
    };
    let cases: Vec<(&str, Result<HostPattern, ()>)> = vec![
        ("a.b", exact("a.b", None)),
        ("a.b:8080", exact("a.b", Some(8080))),
        (
            "*.b.c",
            Ok(HostPattern::Suffix {
                suffix: ".b.c".into(),
                port: None,
            }),
        ),
        (
            "a.*",
            Ok(HostPattern::Prefix {
                prefix: "a.".into(),
                port: None,
            }),
        ),
        (
            "a.*:81",
            Ok(HostPattern::Prefix {
                prefix: "a.".into(),
                port: Some(81),
            }),
        ),
        ("10.0.0.1", exact("10.0.0.1", None)),
        // a bracketed IPv6 host never carries a port in Kong's Host split
        ("[::1]:80", Err(())),
        ("[::1]", exact("[::1]", None)),
        ("*", Err(())),
        ("a.*.c", Err(())),
        ("*.a.*", Err(())),
        ("a..b", Err(())),
        ("a b", Err(())),
        ("a:port", Err(())),
    ];
    for (input, want) in cases {
        assert_eq!(parse_host_pattern(input).map_err(|_| ()), want, "{input}");
    }
}

#[test]
fn methods() {
    assert_eq!(check_method("GET"), Ok(()));
    assert_eq!(check_method("PURGE"), Ok(()));
    assert_eq!(check_method("get"), Err("GET".into()));
    assert_eq!(check_method("GET1"), Err(String::new()));
    assert_eq!(check_method(""), Err(String::new()));
}

#[test]
fn names_and_tags() {
    assert!(check_name("orders-v1.2_x~").is_ok());
    assert!(check_name("café").is_ok());
    assert_eq!(check_name("a b"), Err(' '));
    assert_eq!(check_name("a/b"), Err('/'));
    assert!(check_tag("team payments").is_ok());
    assert_eq!(check_tag("a,b"), Err(','));
}

#[test]
fn regex_rewrite_and_checks() {
    assert_eq!(rewrite_named_groups("/(?<id>\\d+)"), "/(?P<id>\\d+)");
    assert_eq!(rewrite_named_groups("(?<=a)b(?<!c)"), "(?<=a)b(?<!c)");
    assert_eq!(rewrite_named_groups("\\(?<x>"), "\\(?<x>");
    assert_eq!(
        check_regex("/users/(?<id>\\d+)$"),
        Ok("/users/(?P<id>\\d+)$".into())
    );
    assert!(matches!(
        check_regex("/(?=a)"),
        Err(RegexError::Unsupported(_, Some(1)))
    ));
    assert!(matches!(
        check_regex("(a)\\1"),
        Err(RegexError::Unsupported(..))
    ));
    assert!(matches!(check_regex("(a"), Err(RegexError::Invalid(..))));
}

/// Values computed independently with Python:
/// `uuid.uuid5(uuid.uuid5(uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5"), "services"), "orders")`.
#[test]
fn kong_uuid_v5() {
    assert_eq!(
        ids::entity_id("services", "orders"),
        "580c8aca-d632-5804-b307-a24326e1e2d5"
    );
    assert_eq!(
        ids::cache_key_id("plugins", &["correlation-id", "", "", ""]),
        "bc9b9ec8-e779-5314-8006-15d16c0092d5"
    );
    assert_eq!(
        ids::positional_id("routes", "route", 1),
        "24d19a0c-5b60-5f67-b10f-35ea68c4b249"
    );
    assert!(ids::is_uuid("9748f662-7711-4a90-8186-dc02f10eb0f5"));
    assert!(!ids::is_uuid("9748f6627711"));
}

#[test]
fn top_level_route_references_service_by_name_or_id() {
    let (config, codes) = lower(
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: a.internal\n- id: 9748f662-7711-4a90-8186-dc02f10eb0f5\n  host: b.internal\nroutes:\n- service: a\n  paths: [/a]\n- service: 9748f662-7711-4a90-8186-dc02f10eb0f5\n  paths: [/b]\n",
    );
    assert!(codes.is_empty(), "{codes:?}");
    let config = config.expect("valid");
    assert_eq!(config.routes[0].service.map(|s| s.index()), Some(0));
    assert_eq!(config.routes[1].service.map(|s| s.index()), Some(1));
    assert_eq!(
        config.services[1].id,
        "9748f662-7711-4a90-8186-dc02f10eb0f5"
    );
}

#[test]
fn service_host_naming_an_upstream_links_it() {
    let (config, _) = lower(
        "_format_version: \"3.0\"\nupstreams:\n- name: up\n  targets: [{target: \"10.0.0.1:80\"}]\nservices:\n- name: a\n  host: up\n- name: b\n  host: other\n",
    );
    let config = config.expect("valid");
    assert_eq!(config.services[0].upstream.map(|u| u.index()), Some(0));
    assert_eq!(config.services[1].upstream, None);
}

#[test]
fn plugin_in_route_in_service_is_scoped_to_the_route_only() {
    let (config, _) = lower(
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: a.internal\n  routes:\n  - paths: [/]\n    plugins:\n    - name: correlation-id\n",
    );
    let p = &config.expect("valid").plugins[0];
    assert_eq!(p.scope.route.map(|r| r.index()), Some(0));
    assert_eq!(p.scope.service, None);
}

#[test]
fn disabled_plugins_are_dropped_and_defaults_applied() {
    let (config, _) = lower(
        "_format_version: \"3.0\"\nplugins:\n- name: correlation-id\n  enabled: false\n- name: request-termination\n",
    );
    let config = config.expect("valid");
    assert_eq!(config.plugins.len(), 1);
    match &config.plugins[0].config {
        PluginConfig::RequestTermination(rt) => {
            assert_eq!(rt.status_code, 503);
            assert!(!rt.echo);
            assert_eq!(rt.message, None);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn all_errors_of_the_stage_are_reported() {
    let (config, codes) = lower(
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: a.internal\n  port: 99999\n  routes:\n  - methods: [get]\n    paths: [/a//b]\n  - service: a\nplugins:\n- name: nope\n",
    );
    assert!(config.is_none());
    // K0310 and K0703 share a span (the route's first key) and sort by code.
    assert_eq!(
        codes,
        ["K0103", "K0301", "K0303", "K0310", "K0703", "K0600"]
    );
}

#[test]
fn json_input() {
    let (config, codes) = lower(
        r#"{"_format_version": "3.0", "services": [{"name": "a", "url": "http://a:81", "routes": [{"paths": ["/"]}]}]}"#,
    );
    assert!(codes.is_empty(), "{codes:?}");
    assert_eq!(config.expect("valid").services[0].port, 81);
}

#[test]
fn hosts_empty_array_is_kept_distinct_from_absent() {
    let (config, _) = lower(
        "_format_version: \"3.0\"\nservices:\n- name: a\n  host: a.internal\n  routes:\n  - hosts: []\n    paths: [/a]\n  - paths: [/b]\n",
    );
    let config = config.expect("valid");
    assert_eq!(config.routes[0].hosts, Some(vec![]));
    assert_eq!(config.routes[1].hosts, None);
    assert_eq!(
        config.routes[1].paths,
        vec![PathPattern::Prefix("/b".into())]
    );
}

#[test]
fn transform_false_marks_basic_auth_passwords_as_hashed() {
    let text = |t: &str| {
        format!("_format_version: \"3.0\"\n{t}consumers:\n- username: a\n  basicauth_credentials:\n  - username: a\n    password: p\n")
    };
    for (prefix, hashed) in [
        ("", false),
        ("_transform: true\n", false),
        ("_transform: false\n", true),
    ] {
        let (config, codes) = lower(&text(prefix));
        assert!(codes.is_empty(), "{codes:?}");
        let c = &config.expect("valid").consumers[0];
        assert_eq!(
            c.basicauth_credentials[0].password_is_hashed, hashed,
            "{prefix}"
        );
    }
}

#[test]
fn documents_that_are_not_a_mapping() {
    for (text, code) in [
        ("", "K0100"),
        ("- a\n- b\n", "K0100"),
        ("a: 1\n---\nb: 2\n", "K0001"),
    ] {
        let (config, codes) = lower(text);
        assert!(config.is_none());
        assert_eq!(codes, [code], "{text:?}");
    }
}

#[test]
fn misspelled_matcher_gives_one_error() {
    let (_, codes) = lower("_format_version: \"3.0\"\nroutes:\n- name: r\n  pathz: [/a]\n");
    assert_eq!(codes, ["K0101"]);
}

#[test]
fn output_is_deterministic() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ok/basic.yml"
    ))
    .expect("fixture");
    let file = SourceFile {
        name: "basic.yml".into(),
        text,
    };
    let a = format!("{:?}", check(&file).0);
    let b = format!("{:?}", check(&file).0);
    assert_eq!(a, b);
}

#[test]
fn key_auth_and_basic_auth_configs() {
    let (config, codes) = lower(
        "_format_version: \"3.0\"\n\
plugins:\n- name: key-auth\n  config: {anonymous: guest, key_in_body: true}\n- name: basic-auth\n  service: s\n  config: {anonymous: 9748f662-7711-4a90-8186-dc02f10eb0f5, hide_credentials: true}\n\
services:\n- name: s\n  host: s.internal\n\
consumers:\n- username: alice\n  keyauth_credentials:\n  - key: a1\n  - key: \"{vault://env/a2}\"\n- username: guest\n  id: 9748f662-7711-4a90-8186-dc02f10eb0f5\n",
    );
    assert!(codes.is_empty(), "{codes:?}");
    let config = config.expect("valid");
    let crate::ir::PluginConfig::KeyAuth(k) = &config.plugins[0].config else {
        panic!("key-auth first")
    };
    assert_eq!(k.key_names, vec!["apikey".to_owned()]);
    assert!(k.key_in_header && k.key_in_query && k.key_in_body && k.run_on_preflight);
    assert!(!k.hide_credentials && k.realm.is_none());
    assert_eq!(
        k.anonymous.as_ref().and_then(|a| a.resolved),
        Some(crate::ir::ConsumerId(1))
    );
    let crate::ir::PluginConfig::BasicAuth(b) = &config.plugins[1].config else {
        panic!("basic-auth second")
    };
    assert_eq!(b.realm, "service");
    assert!(b.hide_credentials);
    assert_eq!(
        b.anonymous.as_ref().and_then(|a| a.resolved),
        Some(crate::ir::ConsumerId(1))
    );
    // Key-auth credentials without `id` get distinct deterministic ids; references stay
    // references.
    let keys = &config.consumers[0].keyauth_credentials;
    let ids: Vec<&str> = keys.iter().filter_map(|k| k.id.as_deref()).collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert!(matches!(&keys[1].key, crate::ir::SecretValue::Vault(v) if v.env_var == "A2"));
    let (again, _) = lower(
        "_format_version: \"3.0\"\nconsumers:\n- username: alice\n  keyauth_credentials:\n  - key: other\n",
    );
    let again = again.expect("valid");
    assert_eq!(
        again.consumers[0].keyauth_credentials[0].id.as_deref(),
        Some(ids[0])
    );
}

#[test]
fn proxy_cache_defaults_fields_and_errors() {
    let yml = |config: &str| {
        format!("_format_version: \"3.0\"\nplugins:\n- name: proxy-cache\n  config:\n{config}")
    };
    let (config, codes) = lower(&yml("    strategy: memory\n"));
    assert!(codes.is_empty(), "{codes:?}");
    let config = config.expect("lowers");
    let p = &config.plugins[0].config;
    assert_eq!(p.runtime_features(), &["proxy-cache"]);
    assert_eq!(p.priority(), 100);
    let PluginConfig::ProxyCache(c) = p else {
        panic!("not proxy-cache: {p:?}");
    };
    assert_eq!(c.response_code, [200, 301, 404]);
    assert_eq!(c.request_method, ["GET", "HEAD"]);
    assert_eq!(c.content_type, ["text/plain", "application/json"]);
    assert_eq!((c.cache_ttl, c.storage_ttl), (300, None));
    assert!(!c.cache_control && !c.ignore_uri_case);
    assert!(c.vary_query_params.is_empty() && c.vary_headers.is_empty());
    assert_eq!(c.response_headers, (true, true, true));
    assert_eq!(c.dictionary_name, "kong_db_cache");
    assert_eq!((c.max_bytes, c.max_entry_bytes), (128 << 20, 1 << 20));

    let (config, codes) = lower(&yml(
        "    strategy: memory\n    cache_ttl: 5\n    storage_ttl: 50\n    request_method: [POST]\n    response_headers: {age: false, X-Cache-Key: false}\n    memory: {dictionary_name: d, max_bytes: 10000, max_entry_bytes: 100}\n",
    ));
    assert!(codes.is_empty(), "{codes:?}");
    let config = config.expect("lowers");
    let PluginConfig::ProxyCache(c) = &config.plugins[0].config else {
        panic!("not proxy-cache");
    };
    assert_eq!((c.cache_ttl, c.storage_ttl), (5, Some(50)));
    assert_eq!(c.request_method, ["POST"]);
    assert_eq!(c.response_headers, (false, true, false));
    assert_eq!(
        (c.dictionary_name.as_str(), c.max_bytes, c.max_entry_bytes),
        ("d", 10000, 100)
    );

    for (config, code) in [
        ("    cache_ttl: 5\n", "K0102"),
        ("    strategy: redis\n", "K0670"),
        (
            "    strategy: memory\n    request_method: [DELETE]\n",
            "K0104",
        ),
        ("    strategy: memory\n    cache_ttl: 0\n", "K0103"),
        ("    strategy: memory\n    response_code: [99]\n", "K0103"),
        ("    strategy: memory\n    memory: {shm: x}\n", "K0101"),
        (
            "    strategy: memory\n    response_headers: {Age: true}\n",
            "K0101",
        ),
    ] {
        let (_, codes) = lower(&yml(config));
        assert!(codes.contains(&code), "{config}: {codes:?}");
    }
}
