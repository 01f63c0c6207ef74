use super::*;

#[test]
fn normalize_table() {
    let ok: &[(&str, &str)] = &[
        // kong-compat.md §2.1 examples
        ("/h%65llo/anything/a/../b", "/hello/anything/b"),
        ("/foo//bar", "/foo/bar"),
        // reserved bytes stay encoded, hex upper-cased
        ("/a%2fb", "/a%2Fb"),
        ("/a%2Fb", "/a%2Fb"),
        ("/%3f%23%25%5b%5D", "/%3F%23%25%5B%5D"),
        (
            "/%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C",
            "/%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C",
        ),
        // unreserved and "other" bytes are decoded
        ("/%41%7e%2D%5f", "/A~-_"),
        ("/a%20b", "/a b"),
        ("/caf%C3%A9", "/café"),
        // invalid UTF-8 after decoding stays encoded
        ("/x%ff", "/x%FF"),
        ("/x%C3", "/x%C3"),
        // dot segments, with %2E counting as a dot
        ("/a/./b", "/a/b"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/b/../c", "/a/c"),
        ("/a/%2E%2e/c", "/c"),
        ("/a/%2E/c", "/a/c"),
        ("/route%2E/req", "/route./req"),
        ("/route%2e%2E/req", "/route../req"),
        ("/a/..b/c", "/a/..b/c"),
        ("/a/.b", "/a/.b"),
        ("/..a", "/..a"),
        // slashes
        ("//", "/"),
        ("///a///b//", "/a/b/"),
        ("/a/.//b", "/a/b"),
        // %2F is not a segment separator
        ("/a/%2F../b", "/a/%2F../b"),
        ("/", "/"),
        ("/plain/path", "/plain/path"),
        ("/plain/path/", "/plain/path/"),
        ("/a-b_c~d", "/a-b_c~d"),
        ("/caf\u{e9}", "/caf\u{e9}"),
        ("/a/b//", "/a/b/"),
        ("/a.", "/a."),
        ("/.", "/"),
    ];
    // `normalize_into` gives the same into a string that held the previous path.
    let mut reused = String::from("/left/over/from/before");
    for (raw, want) in ok {
        assert_eq!(normalize(raw).as_deref(), Ok(*want), "normalize({raw:?})");
        assert_eq!(normalize_into(raw, &mut reused), Ok(()));
        assert_eq!(reused, *want, "normalize_into({raw:?})");
    }
}

#[test]
fn normalize_rejects() {
    let bad: &[&str] = &[
        "",
        "*",
        "a/b",
        "http://x/y",
        "/a%",
        "/a%2",
        "/a%zz",
        "/a%2g/b",
        "/a%00b",
        "/..",
        "/../a",
        "/a/../..",
        "/%2e%2e/a",
    ];
    let mut reused = String::from("/left/over");
    for raw in bad {
        assert!(normalize(raw).is_err(), "normalize({raw:?}) should fail");
        assert!(normalize_into(raw, &mut reused).is_err());
        assert!(reused.is_empty(), "nothing of {raw:?} or before is left");
    }
}

/// The whole v0 table of kong-compat.md §2.4 (`spec/fixtures/router_path_handling_tests.lua`).
#[test]
fn upstream_path_kong_table() {
    // (service.path, route path (None: host-only route), strip, request, upstream)
    type Row = (
        &'static str,
        Option<&'static str>,
        &'static [bool],
        &'static str,
        &'static str,
    );
    let rows: &[Row] = &[
        ("/", Some("/"), &[true, false], "/route/req", "/route/req"),
        ("/", Some("/route"), &[true], "/routereq", "/req"),
        ("/", Some("/route/"), &[true], "/route/", "/"),
        ("/srv", Some("/rou"), &[false], "/roureq", "/srv/roureq"),
        ("/srv", Some("/rou"), &[true], "/roureq", "/srv/req"),
        ("/srv/", Some("/rou"), &[true], "/rou", "/srv"),
        (
            "/service",
            Some("/"),
            &[true, false],
            "/route",
            "/service/route",
        ),
        ("/service", Some("/route"), &[true], "/route/", "/service/"),
        ("/service", Some("/route/"), &[true], "/route/", "/service/"),
        ("/service/", Some("/route"), &[true], "/route", "/service"),
        ("/service/", Some("/route"), &[true], "/route/", "/service/"),
        ("/service", None, &[true, false], "/", "/service"),
        (
            "/service",
            Some("/route"),
            &[true],
            "/route%2E/req",
            "/service/req",
        ),
        (
            "/service",
            Some("/route"),
            &[false],
            "/route%2e%2E/req",
            "/service/route../req",
        ),
    ];
    for &(base, route, strips, request, want) in rows {
        let req = normalize(request).expect("normalizes");
        for &strip in strips {
            let stripped = match (strip, route) {
                (true, Some(prefix)) => {
                    assert!(req.starts_with(prefix), "{request} matches {prefix}");
                    Some(prefix.len())
                }
                _ => None,
            };
            let got = upstream_path(Some(base), &req, stripped, None);
            assert_eq!(
                got, want,
                "service {base} route {route:?} strip {strip} req {request}"
            );
        }
    }
}

#[test]
fn upstream_path_more() {
    // (service path, normalized request, stripped len, query, upstream)
    type Row = (
        Option<&'static str>,
        &'static str,
        Option<usize>,
        Option<&'static str>,
        &'static str,
    );
    let rows: &[Row] = &[
        (None, "/a/b", None, None, "/a/b"),
        (None, "/a/b", Some(2), None, "/b"),
        (None, "/a", Some(2), None, "/"),
        (None, "/a/", Some(2), None, "/"),
        (Some("/s"), "/a", Some(2), None, "/s"),
        (Some("/s"), "/a/", Some(2), None, "/s/"),
        (Some("/s/"), "/a", Some(2), None, "/s"),
        (Some("/s/"), "/a/x", Some(2), None, "/s/x"),
        (Some("/s/"), "/ax", Some(2), None, "/s/x"),
        (Some("/s"), "/ax", None, None, "/s/ax"),
        (Some("/s/"), "/ax", None, None, "/s/ax"),
        (Some("/s/"), "/", None, None, "/s/"),
        // post sanitising: ".." / "." / leading "../"
        (Some("/s"), "/a..", Some(2), None, "/s"),
        (Some("/s"), "/a.", Some(2), None, "/s"),
        (Some("/s"), "/a../x", Some(2), None, "/s/x"),
        // raw query appended verbatim, bare `?` kept
        (None, "/a", None, Some("x=1&y=%20"), "/a?x=1&y=%20"),
        (None, "/a", None, Some(""), "/a?"),
        (Some("/s"), "/a", Some(2), Some("q"), "/s?q"),
        // encoding step
        (None, "/a b", None, None, "/a%20b"),
        (None, "/café", None, None, "/caf%C3%A9"),
        (None, "/a%2Fb\"<>", None, None, "/a%2Fb%22%3C%3E"),
        (Some("/s p"), "/x", None, None, "/s%20p/x"),
        (
            None,
            "/A-z_0.9~!$&'()*+,;=:@[]",
            None,
            None,
            "/A-z_0.9~!$&'()*+,;=:@[]",
        ),
        // a length past the end (caller bug) is treated as "nothing left"
        (Some("/s"), "/a", Some(9), None, "/s"),
    ];
    for &(base, req, len, q, want) in rows {
        assert_eq!(
            upstream_path(base, req, len, q),
            want,
            "{base:?} {req} {len:?} {q:?}"
        );
    }
}

#[test]
fn split_host_table() {
    let rows: &[(&str, (&str, Option<u16>))] = &[
        ("example.com", ("example.com", None)),
        ("example.com:8080", ("example.com", Some(8080))),
        ("Example.COM:80", ("Example.COM", Some(80))),
        ("example.com.", ("example.com.", None)),
        ("example.com:", ("example.com:", None)),
        ("example.com:abc", ("example.com:abc", None)),
        ("example.com:80:90", ("example.com:80:90", None)),
        ("example.com:99999", ("example.com:99999", None)),
        ("[::1]:8080", ("[::1]:8080", None)),
        ("[::1]", ("[::1]", None)),
        ("127.0.0.1:1", ("127.0.0.1", Some(1))),
        ("h:0", ("h", Some(0))),
        ("h:65535", ("h", Some(65535))),
        ("h:65536", ("h:65536", None)),
        ("h:0000000000080", ("h", Some(80))),
        ("h:+80", ("h:+80", None)),
        ("h:8 0", ("h:8 0", None)),
        (":80", ("", Some(80))),
        ("h\u{e9}:80", ("h\u{e9}", Some(80))),
        ("", ("", None)),
    ];
    for &(raw, want) in rows {
        assert_eq!(split_host(raw), want, "split_host({raw:?})");
    }
}

#[test]
fn upstream_host_header_table() {
    let rows: &[(&str, u16, &str, &str)] = &[
        ("api.internal", 80, "http", "api.internal"),
        ("api.internal", 443, "http", "api.internal:443"),
        ("api.internal", 443, "https", "api.internal"),
        ("api.internal", 80, "https", "api.internal:80"),
        ("api.internal", 8080, "http", "api.internal:8080"),
        ("api.internal", 80, "grpc", "api.internal"),
        ("api.internal", 443, "grpcs", "api.internal"),
        ("10.0.0.1", 3000, "http", "10.0.0.1:3000"),
        ("::1", 8080, "http", "[::1]:8080"),
        ("[::1]", 80, "http", "[::1]"),
    ];
    for &(host, port, scheme, want) in rows {
        assert_eq!(upstream_host_header(host, port, scheme), want);
    }
}

#[test]
fn escape_every_byte() {
    // Kong's ESCAPE_PATTERN: these go as they are, every other byte as `%XX`.
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"!#$&'()*+,/:;=?@[]-_.~%".contains(&b);
    for b in 0u8..0x80 {
        let c = char::from(b);
        let want = if safe(b) {
            format!("/a{c}b")
        } else {
            format!("/a%{b:02X}b")
        };
        assert_eq!(escape(&format!("/a{c}b")), want, "{b:#x}");
    }
    assert_eq!(escape("é"), "%C3%A9");
    assert_eq!(escape("/é/€x 😀"), "/%C3%A9/%E2%82%ACx%20%F0%9F%98%80");
    assert_eq!(escape("plain/path"), "plain/path");
    assert_eq!(escape(""), "");
    assert_eq!(
        upstream_path(Some("/é"), "/a€", Some(2), Some("q=é")),
        "/%C3%A9/%E2%82%AC?q=é"
    );
}
