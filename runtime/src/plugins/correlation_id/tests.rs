use std::time::Duration;

use super::*;
use crate::{
    plugins::test_support::{ctx, ready, request},
    response,
};

fn plugin(generator: Generator, echo_downstream: bool) -> CorrelationId {
    CorrelationId::new(Config {
        header_name: "Kong-Request-ID",
        generator,
        echo_downstream,
    })
    .expect("valid config")
}

fn is_uuid_v4(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Runs access; returns the id stored in the context and the request header afterwards.
fn run_access(p: &CorrelationId, headers: &[(&str, &str)]) -> (Option<String>, Vec<String>) {
    let mut cx = ctx();
    let mut req = request("GET", "/", headers);
    let flow = ready(p.access(&mut cx, &mut req));
    assert!(flow.is_continue(), "correlation-id never answers");
    let sent = req
        .headers()
        .get_all("kong-request-id")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    (cx.correlation_id, sent)
}

#[test]
fn access_keeps_a_non_empty_request_id() {
    let p = plugin(Generator::Uuid, false);
    // Header names match case-insensitively; the first value is the id.
    let (id, sent) = run_access(
        &p,
        &[("kong-request-id", "abc"), ("Kong-Request-Id", "def")],
    );
    assert_eq!(id.as_deref(), Some("abc"));
    assert_eq!(sent, ["abc", "def"], "request left untouched");
}

#[test]
fn access_generates_when_missing_or_empty() {
    let p = plugin(Generator::Uuid, false);
    for headers in [
        &[][..],
        &[("Kong-Request-ID", "")][..],
        &[("Kong-Request-ID", ""), ("kong-request-id", "later")][..],
    ] {
        let (id, sent) = run_access(&p, headers);
        let id = id.expect("generated");
        assert!(is_uuid_v4(&id), "{id}");
        assert_eq!(sent, [id], "set on the request, replacing every value");
    }
}

#[test]
fn uuid_generator_is_random() {
    let p = plugin(Generator::Uuid, false);
    let cx = ctx();
    let (a, b) = (p.generate(&cx), p.generate(&cx));
    assert!(is_uuid_v4(&a) && is_uuid_v4(&b));
    assert_ne!(a, b);
}

#[test]
fn uuid_counter_generator() {
    let p = plugin(Generator::UuidCounter, false);
    let cx = ctx();
    let parse = |s: &str| {
        let (uuid, n) = s.split_once('#').expect("uuid#counter");
        assert!(is_uuid_v4(uuid), "{s}");
        (uuid.to_owned(), n.parse::<u64>().expect("counter"))
    };
    let (u1, n1) = parse(&p.generate(&cx));
    let (u2, n2) = parse(&p.generate(&cx));
    assert_eq!(u1, u2, "one uuid per process");
    assert!(n1 >= 1 && n2 > n1, "counter counts up: {n1} then {n2}");
}

#[test]
fn tracker_generator_format() {
    let cx = ctx();
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_005);
    let id = tracker_id(&cx, at);
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(parts.len(), 6, "{id}");
    assert_eq!(parts[0], "0.0.0.0");
    assert_eq!(parts[1], "8000");
    assert_eq!(parts[2], std::process::id().to_string());
    assert!(parts[3].parse::<u64>().is_ok_and(|n| n >= 1));
    assert_eq!(parts[4], "1");
    assert_eq!(parts[5], "1700000000.005");
    assert_ne!(
        tracker_id(&cx, at),
        id,
        "unique even within one millisecond"
    );
    let p = plugin(Generator::Tracker, false);
    assert!(p.generate(&cx).starts_with("0.0.0.0-8000-"));
}

#[test]
fn header_filter_echoes_only_when_configured() {
    for echo in [false, true] {
        let p = plugin(Generator::Uuid, echo);
        let mut cx = ctx();
        let mut req = request("GET", "/", &[("Kong-Request-ID", "from-client")]);
        let _ = ready(p.access(&mut cx, &mut req));
        let mut resp = response::exit_json(200, "ok");
        p.header_filter(&mut cx, &mut resp);
        let got = resp
            .headers()
            .get("kong-request-id")
            .map(|v| v.to_str().expect("ascii"));
        assert_eq!(
            got,
            echo.then_some("from-client"),
            "echo_downstream = {echo}"
        );
    }
}

#[test]
fn header_filter_without_access_generates() {
    let p = plugin(Generator::Uuid, true);
    let mut cx = ctx();
    let mut resp = response::exit_json(503, "x");
    p.header_filter(&mut cx, &mut resp);
    let got = resp.headers().get("kong-request-id").expect("echoed");
    assert!(is_uuid_v4(got.to_str().expect("ascii")));
}

#[test]
fn invalid_header_name_fails_at_startup() {
    let err = CorrelationId::new(Config {
        header_name: "bad header",
        generator: Generator::Uuid,
        echo_downstream: false,
    })
    .expect_err("space in a header name");
    assert!(err.0.contains("header_name"), "{err}");
}
