use std::ops::ControlFlow;

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready, request};

static CONSUMERS: [ConsumerSpec; 3] = [
    ConsumerSpec {
        id: "11111111-1111-4111-8111-111111111111",
        username: Some("alice"),
        custom_id: None,
        groups: &[],
    },
    ConsumerSpec {
        id: "22222222-2222-4222-8222-222222222222",
        username: Some("bob"),
        custom_id: None,
        groups: &[],
    },
    ConsumerSpec {
        id: "33333333-3333-4333-8333-333333333333",
        username: Some("anon"),
        custom_id: None,
        groups: &[],
    },
];

const SALT: [u8; 32] = [9; 32];

fn plugin(f: impl FnOnce(&mut Config)) -> BasicAuth {
    // bob was imported from Kong with `_transform: false`.
    let bob_hash = kong_sha1(b"builder", CONSUMERS[1].id);
    let creds: &'static [BasicCredential] = Box::leak(Box::new([
        BasicCredential {
            username: "alice",
            password: Password::Plain(Credential::Digest(digest(&SALT, b"wonder:land"))),
            consumer: 0,
        },
        BasicCredential {
            username: "bob",
            password: Password::KongSha1(Credential::Digest(digest(&SALT, bob_hash.as_bytes()))),
            consumer: 1,
        },
    ]));
    let mut c = Config {
        consumers: &CONSUMERS,
        credentials: creds,
        salt: SALT,
        ..Config::DEFAULT
    };
    f(&mut c);
    BasicAuth::new(c).expect("valid")
}

fn basic(user_pass: &str) -> String {
    // Test-only encoder (standard alphabet, padded).
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = user_pass.as_bytes();
    let mut out = String::from("Basic ");
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_like_nginx() {
    assert_eq!(
        decode_base64(b"YWxpY2U6cHc=").as_deref(),
        Some(&b"alice:pw"[..])
    );
    assert_eq!(
        decode_base64(b"YWxpY2U6cHc").as_deref(),
        Some(&b"alice:pw"[..])
    );
    assert_eq!(
        decode_base64(b"YWxpY2U6cHc=junk!").as_deref(),
        Some(&b"alice:pw"[..])
    );
    assert_eq!(decode_base64(b"YWxpY"), None);
    assert_eq!(decode_base64(b"YW*p"), None);
}

#[test]
fn header_parsing_like_kongs_regexes() {
    let p = |s: &str| {
        parse_basic(s.as_bytes()).map(|(u, pw)| {
            (
                String::from_utf8(u).expect("u"),
                String::from_utf8(pw).expect("p"),
            )
        })
    };
    let up = |u: &str, pw: &str| Some((u.to_owned(), pw.to_owned()));
    assert_eq!(p(&basic("alice:pw")), up("alice", "pw"));
    assert_eq!(p(&basic("a:b:c")), up("a", "b:c"));
    assert_eq!(p(&basic("alice:")), up("alice", ""));
    assert_eq!(p(&basic("::x:y")), up("x", "y"));
    assert_eq!(p(&basic(":pw")), None);
    assert_eq!(p(&basic("nocolon")), None);
    assert_eq!(p(&basic("u:pw\nrest")), up("u", "pw"));
    assert_eq!(
        p(&basic("u:pw").replace("Basic ", "basic   ")),
        up("u", "pw")
    );
    assert_eq!(p(&basic("u:pw").replace("Basic ", "xBasic")), up("u", "pw"));
    assert_eq!(p(&basic("u:pw").replace("Basic ", "Bearer ")), None);
    assert_eq!(p("Basic"), None);
    assert_eq!(p("Basic    "), None);
}

fn run(p: &BasicAuth, req: &mut Request) -> (Ctx, ControlFlow<Response>) {
    let mut cx = ctx();
    let flow = ready(p.access(&mut cx, req));
    (cx, flow)
}

fn refused(p: &BasicAuth, headers: &[(&str, &str)], realm: &str) {
    let mut req = request("GET", "/", headers);
    match run(p, &mut req).1 {
        ControlFlow::Break(resp) => {
            assert_eq!(resp.status(), 401, "{headers:?}");
            assert_eq!(
                resp.headers()[header::WWW_AUTHENTICATE],
                format!("Basic realm=\"{realm}\"").as_str()
            );
            let body: serde_json::Value = serde_json::from_str(&body_text(resp)).expect("json");
            assert_eq!(body["message"], "Unauthorized");
        }
        ControlFlow::Continue(()) => panic!("accepted: {headers:?}"),
    }
}

#[test]
fn accepts_and_refuses() {
    let p = plugin(|_| {});
    for (headers, consumer, user) in [
        (
            vec![("authorization", basic("alice:wonder:land"))],
            0,
            "alice",
        ),
        (
            vec![("proxy-authorization", basic("alice:wonder:land"))],
            0,
            "alice",
        ),
        (vec![("authorization", basic("bob:builder"))], 1, "bob"),
        // An unknown proxy user falls through to Authorization.
        (
            vec![
                ("proxy-authorization", basic("nobody:x")),
                ("authorization", basic("bob:builder")),
            ],
            1,
            "bob",
        ),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut req = request("GET", "/", &h);
        let (cx, flow) = run(&p, &mut req);
        assert!(flow.is_continue(), "{h:?}");
        assert_eq!(cx.auth.consumer, Some(consumer));
        assert_eq!(req.headers()["x-credential-identifier"], user);
        assert!(
            req.headers().contains_key("authorization")
                || req.headers().contains_key("proxy-authorization")
        );
    }
    let bad = [
        basic("alice:wrong"),
        basic("bob:wrong"),
        basic("carol:x"),
        "Bearer abc".to_owned(),
        "Basic !!!".to_owned(),
    ];
    refused(&p, &[], "service");
    for b in &bad {
        refused(&p, &[("authorization", b)], "service");
    }
    // A known proxy user with a wrong password does not fall through.
    let ok = basic("bob:builder");
    refused(
        &p,
        &[
            ("proxy-authorization", &basic("alice:no")),
            ("authorization", &ok),
        ],
        "service",
    );
    let p = plugin(|c| c.realm = "kiln");
    refused(&p, &[("authorization", &bad[0])], "kiln");
}

#[test]
fn hide_credentials_and_anonymous() {
    let p = plugin(|c| c.hide_credentials = true);
    let good = basic("alice:wonder:land");
    let mut req = request(
        "GET",
        "/",
        &[("authorization", &good), ("proxy-authorization", "junk")],
    );
    assert!(run(&p, &mut req).1.is_continue());
    assert!(req.headers().get("authorization").is_none());
    assert!(req.headers().get("proxy-authorization").is_none());
    // Found in Proxy-Authorization: Authorization is not looked at, so it stays (Kong).
    let mut req = request(
        "GET",
        "/",
        &[("proxy-authorization", &good), ("authorization", "x")],
    );
    assert!(run(&p, &mut req).1.is_continue());
    assert!(req.headers().get("proxy-authorization").is_none());
    assert_eq!(req.headers()["authorization"], "x");

    let p = plugin(|c| c.anonymous = Some(2));
    let mut req = request("GET", "/", &[("authorization", &basic("alice:bad"))]);
    let (cx, flow) = run(&p, &mut req);
    assert!(flow.is_continue());
    assert_eq!((cx.auth.consumer, cx.auth.anonymous), (Some(2), true));
    assert_eq!(req.headers()["x-anonymous-consumer"], "true");
    assert_eq!(req.headers()["x-consumer-username"], "anon");
}

#[test]
fn kong_sha1_matches_kong() {
    // Kong: crypto.hash("id", "pw") = sha1("pw" .. "id") in lower-case hex.
    assert_eq!(
        kong_sha1(b"", ""),
        "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    );
    assert_eq!(
        kong_sha1(b"a", "bc"),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}
