use http::{header, HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::plugins::test_support::ctx;

/// A head as the client builds it from `fields` (name, value), framing already taken out.
fn head(fields: &[(&str, &str)]) -> UpstreamHead {
    let mut head = UpstreamHead::in_buffer(Vec::new(), 64);
    for (name, value) in fields {
        let kind = Field::of(name.as_bytes());
        head.push(kind, name.as_bytes(), value.as_bytes())
            .expect("valid field");
    }
    head
}

fn written(head: &UpstreamHead, set: &HeaderMap) -> String {
    let mut out = Vec::new();
    head.write(&mut out, set);
    String::from_utf8(out).expect("text")
}

fn pairs(map: &HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| (k.to_string(), v.to_str().expect("text").to_string()))
        .collect()
}

#[test]
fn field_names_are_classified_ignoring_case() {
    for (name, kind) in [
        ("Connection", Field::Connection),
        ("TRANSFER-ENCODING", Field::TransferEncoding),
        ("content-length", Field::ContentLength),
        ("TE", Field::HopByHop),
        ("Upgrade", Field::HopByHop),
        ("Keep-Alive", Field::HopByHop),
        ("Proxy-Connection", Field::HopByHop),
        ("Date", Field::Date),
        ("server", Field::Server),
        ("VIA", Field::Gateway),
        ("X-Kong-Request-Id", Field::Gateway),
        ("x-kong-proxy-latency", Field::Gateway),
        ("X-Kong-Upstream-Latency", Field::Gateway),
        ("X-Kong-Response-Latency", Field::Other),
        ("Content-Type", Field::Other),
        ("Servers", Field::Other),
        ("t", Field::Other),
    ] {
        assert_eq!(Field::of(name.as_bytes()), kind, "{name}");
    }
}

#[test]
fn token_comparison_ignores_case_only() {
    assert!(token_is(b"Content-Length", "content-length"));
    assert!(token_is(b"CONTENT-LENGTH", "content-length"));
    assert!(!token_is(b"content-lengtH2", "content-length"));
    assert!(!token_is(b"content_length", "content-length"));
    assert!(!token_is(b"content-lengt", "content-length"));
    assert!(!token_is(b"Via", "vie"));
}

#[test]
fn lines_are_written_as_received_unless_a_plugin_set_the_name() {
    let h = head(&[
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("X-Empty", ""),
    ]);
    assert_eq!(
        written(&h, &HeaderMap::new()),
        "Content-Type: text/plain\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty: \r\n"
    );
    let mut set = HeaderMap::new();
    set.insert("set-cookie", HeaderValue::from_static("c=3"));
    assert_eq!(
        written(&h, &set),
        "Content-Type: text/plain\r\nX-Empty: \r\n",
        "the set value replaces every upstream line of that name, whatever its case"
    );

    // names with `_`, `^`, `~` and digits compare exactly, ignoring only letter case
    let h = head(&[("X_Corr", "up"), ("A^B", "1"), ("Y2", "2")]);
    let mut set = HeaderMap::new();
    set.insert("x_corr", HeaderValue::from_static("mine"));
    set.insert("a~b", HeaderValue::from_static("other"));
    assert_eq!(written(&h, &set), "A^B: 1\r\nY2: 2\r\n");
}

#[test]
fn into_map_is_the_upstream_map_with_the_set_entries_inserted() {
    let mut h = head(&[
        ("Content-Type", "text/plain"),
        ("Via", "1.1 up"),
        ("X-A", "1"),
        ("x-a", "2"),
        ("Date", "Tue, 01 Dec 2026 00:00:00 GMT"),
    ]);
    h.set_content_length(Some(5));
    assert_eq!(h.content_length(), Some(5));
    assert!(h.has_date());
    let mut set = HeaderMap::new();
    set.insert("x-a", HeaderValue::from_static("set"));
    set.insert("x-new", HeaderValue::from_static("n"));
    h.into_map(&mut set);
    let mut got = pairs(&set);
    got.sort();
    assert_eq!(
        got,
        [
            ("content-length", "5"),
            ("content-type", "text/plain"),
            ("date", "Tue, 01 Dec 2026 00:00:00 GMT"),
            ("via", "1.1 up"),
            ("x-a", "set"),
            ("x-new", "n"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
}

#[test]
fn gateway_fields_are_added_as_lines() {
    let mut cx = ctx();
    cx.upstream_latency_ms = Some(3);
    cx.proxy_latency_ms = Some(0);
    let server = HeaderValue::from_static("kiln/1");
    let mut h = head(&[("Content-Type", "text/plain")]);
    let mut set = HeaderMap::new();
    assert!(h
        .add_gateway_fields(&mut set, &mut cx, &server, "1.1 kiln/1")
        .is_some());
    assert_eq!(
        written(&h, &set),
        "Content-Type: text/plain\r\nServer: kiln/1\r\nVia: 1.1 kiln/1\r\n\
         X-Kong-Upstream-Latency: 3\r\nX-Kong-Proxy-Latency: 0\r\n\
         X-Kong-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
    );

    // the upstream's Server stays; the gateway's values replace what a plugin set
    let mut h = head(&[("Server", "origin")]);
    let mut set = HeaderMap::new();
    set.insert("x-kong-proxy-latency", HeaderValue::from_static("99"));
    set.insert("x-other", HeaderValue::from_static("o"));
    assert!(h
        .add_gateway_fields(&mut set, &mut cx, &server, "1.1 kiln/1")
        .is_some());
    assert_eq!(pairs(&set), [("x-other".to_string(), "o".to_string())]);
    let text = written(&h, &set);
    assert!(text.starts_with("Server: origin\r\nVia: "), "{text}");
    assert!(text.contains("X-Kong-Proxy-Latency: 0\r\n"), "{text}");
    assert!(!text.contains("Server: kiln"), "{text}");

    // a plugin's Server is kept as well
    let mut h = head(&[]);
    let mut set = HeaderMap::new();
    set.insert(header::SERVER, HeaderValue::from_static("plugin"));
    assert!(h
        .add_gateway_fields(&mut set, &mut cx, &server, "1.1 kiln/1")
        .is_some());
    assert!(!written(&h, &set).contains("Server"));
}

#[test]
fn fields_the_gateway_extends_need_the_map() {
    let mut cx = ctx();
    let server = HeaderValue::from_static("kiln/1");
    // the upstream's Via or X-Kong-* fields
    for name in ["Via", "X-Kong-Request-Id"] {
        let mut h = head(&[(name, "x")]);
        assert!(h
            .add_gateway_fields(&mut HeaderMap::new(), &mut cx, &server, "v")
            .is_none());
        assert_eq!(h.len(), 0, "kept apart, not as a line");
    }
    // a plugin's Via
    let mut set = HeaderMap::new();
    set.insert(header::VIA, HeaderValue::from_static("p"));
    assert!(head(&[])
        .add_gateway_fields(&mut set, &mut cx, &server, "v")
        .is_none());
}

struct Probe<const INSERTS_ONLY: bool>;

impl<const INSERTS_ONLY: bool> Plugin for Probe<INSERTS_ONLY> {
    const NAME: &'static str = "probe";
    const PRIORITY: i32 = 0;
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = INSERTS_ONLY;

    fn header_filter(&self, _: &mut Ctx, resp: &mut Response) {
        let seen = resp.headers().contains_key("x-up");
        resp.headers_mut().insert(
            "x-probe",
            HeaderValue::from_static(if seen { "saw x-up" } else { "no x-up" }),
        );
    }
}

#[test]
fn header_filter_gives_plugins_that_read_the_whole_map() {
    let mut cx = ctx();
    let mut resp = Response::new(crate::response::empty());
    cx.upstream_head = Some(head(&[("X-Up", "1")]));
    header_filter(&Probe::<true>, &mut cx, &mut resp);
    assert_eq!(resp.headers()["x-probe"], "no x-up");
    assert!(cx.upstream_head.is_some(), "still lines");

    header_filter(&Probe::<false>, &mut cx, &mut resp);
    assert_eq!(resp.headers()["x-probe"], "saw x-up");
    assert_eq!(resp.headers()["x-up"], "1");
    assert!(cx.upstream_head.is_none());
}

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit-minute");

fn line_name(spelled: &'static str) -> LineName {
    LineName::new(spelled).expect("a name for lines")
}

#[test]
fn inserted_lines_replace_upstream_lines_and_map_entries_of_their_name() {
    let limit = line_name("X-RateLimit-Limit-Minute");
    assert_eq!(limit.name, LIMIT);
    let mut h = head(&[
        ("Content-Type", "text/plain"),
        ("x-ratelimit-limit-MINUTE", "up-1"),
        ("X-RateLimit-Limit-Minute", "up-2"),
        ("X-Other", "o"),
    ]);
    let mut set = HeaderMap::new();
    set.insert(LIMIT, HeaderValue::from_static("set-before"));
    set.insert("x-kept", HeaderValue::from_static("k"));
    assert!(h.insert_field(&mut set, &limit, b"100"));
    assert_eq!(pairs(&set), [("x-kept".to_string(), "k".to_string())]);
    assert_eq!(
        written(&h, &set),
        "Content-Type: text/plain\r\nX-Other: o\r\nX-RateLimit-Limit-Minute: 100\r\n"
    );
    assert_eq!(
        written(&h, &HeaderMap::new()),
        "Content-Type: text/plain\r\nX-Other: o\r\nX-RateLimit-Limit-Minute: 100\r\n",
        "without map entries too"
    );

    // a later insert of the name replaces the line; other names stay
    assert!(h.insert_field(&mut set, &line_name("X-Two"), b"2"));
    assert!(h.insert_field(&mut set, &line_name("x-ratelimit-limit-minute"), b"7"));
    assert!(h.insert_field(&mut set, &line_name("X-Owo"), b"0"));
    assert_eq!(
        written(&h, &set),
        "Content-Type: text/plain\r\nX-Other: o\r\nX-Two: 2\r\n\
         x-ratelimit-limit-minute: 7\r\nX-Owo: 0\r\n"
    );
    // and a later map entry replaces the line
    set.insert(LIMIT, HeaderValue::from_static("set-after"));
    assert_eq!(
        written(&h, &set),
        "Content-Type: text/plain\r\nX-Other: o\r\nX-Two: 2\r\nX-Owo: 0\r\n",
        "the map's entry is written before the lines by the server"
    );
}

#[test]
fn name_bits_tell_names_apart_ignoring_case() {
    let names = [
        "X-RateLimit-Limit-Minute",
        "RateLimit-Limit",
        "RateLimit-Reset",
        "Via",
    ];
    for a in names {
        assert_eq!(
            name_bits(a.as_bytes()),
            name_bits(a.to_ascii_uppercase().as_bytes())
        );
        assert_eq!(name_bits(a.as_bytes()).count_ones(), 2, "{a}");
    }
    // the names rate-limiting inserts for one period do not make each other look inserted
    let all = names[..3]
        .iter()
        .fold(0, |acc, n| acc | name_bits(n.as_bytes()));
    for n in [
        "X-RateLimit-Remaining-Minute",
        "RateLimit-Remaining",
        "Content-Type",
    ] {
        assert_ne!(
            all & name_bits(n.as_bytes()),
            name_bits(n.as_bytes()),
            "{n}"
        );
    }
    assert_ne!(name_bits(b""), 0);
    assert_ne!(name_bits(b"a"), 0);
}

#[test]
fn names_the_gateway_handles_are_not_inserted_as_lines() {
    for spelled in [
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Date",
        "Server",
        "Via",
        "X-Kong-Request-Id",
        "X-Kong-Upstream-Latency",
        "not a name",
        "",
    ] {
        assert!(LineName::new(spelled).is_none(), "{spelled:?}");
    }
    assert!(LineName::new("Retry-After").is_some());

    // once the gateway's lines are there, everything goes to the map
    let mut cx = ctx();
    let mut set = HeaderMap::new();
    let mut h = head(&[("X-Up", "1")]);
    let server = HeaderValue::from_static("kiln/1");
    assert!(h
        .add_gateway_fields(&mut set, &mut cx, &server, "v")
        .is_some());
    let before = written(&h, &set);
    assert!(!h.insert_field(&mut set, &line_name("X-RateLimit-Limit-Minute"), b"1"));
    assert_eq!(written(&h, &set), before);
}

#[test]
fn into_map_has_the_inserted_lines_as_inserts() {
    let mut h = head(&[
        ("X-RateLimit-Limit-Minute", "up"),
        ("X-A", "1"),
        ("Via", "1.1 up"),
    ]);
    h.set_content_length(Some(2));
    let mut set = HeaderMap::new();
    assert!(h.insert_field(&mut set, &line_name("X-RateLimit-Limit-Minute"), b"100"));
    assert!(h.insert_field(&mut set, &line_name("X-A"), b"12345"));
    set.insert("x-later", HeaderValue::from_static("l"));
    h.into_map(&mut set);
    let mut got = pairs(&set);
    got.sort();
    assert_eq!(
        got,
        [
            ("content-length", "2"),
            ("via", "1.1 up"),
            ("x-a", "12345"),
            ("x-later", "l"),
            ("x-ratelimit-limit-minute", "100"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );

    // a map entry set after the line wins
    let mut h = head(&[]);
    let mut set = HeaderMap::new();
    assert!(h.insert_field(&mut set, &line_name("X-RateLimit-Limit-Minute"), b"100"));
    set.insert(LIMIT, HeaderValue::from_static("map"));
    h.into_map(&mut set);
    assert_eq!(pairs(&set), [(LIMIT.to_string(), "map".to_string())]);
}

#[test]
fn inserts_go_to_the_lines_only_while_they_are_lines() {
    let mut cx = ctx();
    assert!(insert_target(&mut cx).is_none(), "no upstream head");
    cx.upstream_head = Some(head(&[]));
    assert!(insert_target(&mut cx).is_some());
    cx.kong_generated = true;
    assert!(insert_target(&mut cx).is_none(), "a generated response");
    cx.kong_generated = false;
    let mut resp = Response::new(crate::response::empty());
    materialize(&mut cx, &mut resp);
    assert!(insert_target(&mut cx).is_none(), "moved into the map");
}

#[test]
fn inserted_lines_that_shadow_nothing_are_written_with_the_rest_in_one_go() {
    let mut h = head(&[
        ("Content-Type", "text/plain"),
        ("X-RateLimit-Limit-Hour", "up"),
    ]);
    let mut set = HeaderMap::new();
    assert!(h.insert_field(&mut set, &line_name("X-RateLimit-Limit-Minute"), b"100"));
    assert!(!h.may_shadow);
    let mut cx = ctx();
    let server = HeaderValue::from_static("kiln/1");
    assert!(h
        .add_gateway_fields(&mut set, &mut cx, &server, "v")
        .is_some());
    assert_eq!(
        written(&h, &set),
        "Content-Type: text/plain\r\nX-RateLimit-Limit-Hour: up\r\n\
         X-RateLimit-Limit-Minute: 100\r\nServer: kiln/1\r\nVia: v\r\n\
         X-Kong-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
    );
    // an upstream line of the name turns the line-by-line path on
    let mut h = head(&[("content-type", "text/plain")]);
    assert!(h.insert_field(&mut set, &line_name("Content-Type"), b"x"));
    assert!(h.may_shadow);
    assert_eq!(written(&h, &set), "Content-Type: x\r\n");
}

#[test]
fn known_names_are_what_parsing_gives() {
    for name in [
        "Server",
        "server",
        "Date",
        "date",
        "Content-Type",
        "content-type",
        "Via",
        "X-Kong-Upstream-Latency",
        "X-Kong-Proxy-Latency",
        "X-Kong-Request-Id",
    ] {
        let known = known_name(name.as_bytes()).expect(name);
        assert_eq!(known, HeaderName::from_bytes(name.as_bytes()).expect(name));
        assert_eq!(known.as_str(), name.to_ascii_lowercase());
    }
    for other in [
        "SERVER",
        "via",
        "x-kong-request-id",
        "Content-Length",
        "X-Kong",
    ] {
        assert_eq!(known_name(other.as_bytes()), None, "{other}");
    }
}
