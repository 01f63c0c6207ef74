use std::{net::SocketAddr, ops::ControlFlow};

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready, request};

fn plugin(allow: &'static [&'static str], deny: &'static [&'static str]) -> IpRestriction {
    IpRestriction::new(Config {
        allow,
        deny,
        ..Config::DEFAULT
    })
    .expect("valid config")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

#[test]
fn parse_entries() {
    let ok: &[(&str, Range, bool)] = &[
        ("10.1.2.3", Range::V4(0x0a01_0203, 0x0a01_0203), false),
        ("10.0.0.0/8", Range::V4(0x0a00_0000, 0x0aff_ffff), false),
        ("10.0.0.1/8", Range::V4(0x0a00_0000, 0x0aff_ffff), true),
        ("0.0.0.0/0", Range::V4(0, u32::MAX), false),
        ("1.2.3.4/32", Range::V4(0x0102_0304, 0x0102_0304), false),
        ("::1", Range::V6(1, 1), false),
        ("::/0", Range::V6(0, u128::MAX), false),
        (
            "2001:db8::/32",
            Range::V6(0x2001_0db8 << 96, (0x2001_0db8 << 96) | (u128::MAX >> 32)),
            false,
        ),
        (
            "2001:db8::1/32",
            Range::V6(0x2001_0db8 << 96, (0x2001_0db8 << 96) | (u128::MAX >> 32)),
            true,
        ),
        (
            "::ffff:10.0.0.0/104",
            Range::V4(0x0a00_0000, 0x0aff_ffff),
            false,
        ),
        (
            "::ffff:192.0.2.7",
            Range::V4(0xc000_0207, 0xc000_0207),
            false,
        ),
    ];
    for (s, range, host) in ok {
        assert_eq!(
            parse_entry(s),
            Ok(Entry {
                range: *range,
                host_bits_set: *host
            }),
            "{s}"
        );
    }
    for bad in [
        "10.0.0.256",
        "10.0.0",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0.0/-1",
        "::1/129",
        "example.com",
        "",
        "010.0.0.1",
        " 10.0.0.1",
    ] {
        assert!(parse_entry(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn deny_then_allow() {
    let p = plugin(
        &["10.0.0.0/8", "2001:db8::/32"],
        &["10.1.0.0/16", "2001:db8:1::/48"],
    );
    let cases = [
        ("10.0.0.1", true),
        ("10.1.0.1", false),
        ("10.255.255.255", true),
        ("11.0.0.0", false),
        ("9.255.255.255", false),
        ("2001:db8::1", true),
        ("2001:db8:1::1", false),
        ("2001:db9::", false),
        ("::ffff:10.0.0.1", true), // IPv4-mapped: as IPv4
        ("::ffff:10.1.0.1", false),
    ];
    for (addr, allowed) in cases {
        let a = match ip(addr) {
            IpAddr::V6(v6) => canonical(v6),
            v4 => v4,
        };
        assert_eq!(p.allows(a), allowed, "{addr}");
    }
    // deny only: everything else passes
    let d = plugin(&[], &["192.0.2.7"]);
    assert!(!d.allows(ip("192.0.2.7")));
    assert!(d.allows(ip("192.0.2.8")));
    assert!(d.allows(ip("::1")));
    // allow only, one family: the other family is refused
    let a = plugin(&["127.0.0.1"], &[]);
    assert!(a.allows(ip("127.0.0.1")));
    assert!(!a.allows(ip("::1")));
}

#[test]
fn ranges_merge_and_search() {
    let r = Ranges::build(vec![
        (5u32, 9),
        (1, 2),
        (3, 4),
        (20, 30),
        (25, 26),
        (u32::MAX, u32::MAX),
    ]);
    assert_eq!(r.0, vec![(1, 9), (20, 30), (u32::MAX, u32::MAX)]);
    for (x, want) in [
        (0, false),
        (1, true),
        (9, true),
        (10, false),
        (19, false),
        (20, true),
        (30, true),
        (31, false),
        (u32::MAX, true),
    ] {
        assert_eq!(r.contains(x), want, "{x}");
    }
    assert!(!Ranges::<u32>::build(Vec::new()).contains(0));
}

fn access(p: &IpRestriction, client: &str, accept: &str) -> ControlFlow<crate::Response> {
    let mut cx = ctx();
    cx.client_addr = SocketAddr::new(ip(client), 4000);
    let mut req = request("GET", "/", &[("accept", accept)]);
    ready(p.access(&mut cx, &mut req))
}

#[test]
fn refusal_uses_kong_error_format() {
    let p = plugin(&[], &["192.0.2.0/24", "2001:db8::/32"]);
    let ControlFlow::Break(resp) = access(&p, "192.0.2.7", "application/json") else {
        panic!("denied address passed");
    };
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = serde_json::from_str(&body_text(resp)).expect("json");
    assert_eq!(body["message"], "IP address not allowed: 192.0.2.7");
    assert_eq!(body["request_id"], "0123456789abcdef0123456789abcdef");

    let ControlFlow::Break(resp) = access(&p, "::ffff:192.0.2.9", "text/plain") else {
        panic!("denied mapped address passed");
    };
    assert_eq!(
        body_text(resp),
        "IP address not allowed: 192.0.2.9\nrequest_id: 0123456789abcdef0123456789abcdef\n"
    );
    let ControlFlow::Break(resp) = access(&p, "2001:db8::5", "application/json") else {
        panic!("denied v6 address passed");
    };
    assert!(body_text(resp).contains("IP address not allowed: 2001:db8::5"));
    assert!(access(&p, "192.0.3.1", "*/*").is_continue());

    let custom = IpRestriction::new(Config {
        deny: &["0.0.0.0/0"],
        status: Some(451),
        message: Some("go away"),
        ..Config::DEFAULT
    })
    .expect("valid");
    let ControlFlow::Break(resp) = access(&custom, "1.2.3.4", "application/json") else {
        panic!("denied address passed");
    };
    assert_eq!(resp.status(), 451);
    let body: serde_json::Value = serde_json::from_str(&body_text(resp)).expect("json");
    assert_eq!(body["message"], "go away");
}

#[test]
fn start_up_refuses_bad_configs() {
    assert!(IpRestriction::new(Config::DEFAULT).is_err());
    let e = IpRestriction::new(Config {
        allow: &["10.0.0.0/40"],
        ..Config::DEFAULT
    })
    .expect_err("bad prefix");
    assert!(e.0.contains("`allow` entry \"10.0.0.0/40\""), "{}", e.0);
    assert!(IpRestriction::new(Config {
        deny: &["1.1.1.1"],
        status: Some(700),
        ..Config::DEFAULT
    })
    .is_err());
}
