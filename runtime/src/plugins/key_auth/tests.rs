use std::ops::ControlFlow;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::*;
use crate::plugins::test_support::{body_text, ctx, request};

static CONSUMERS: [ConsumerSpec; 2] = [
    ConsumerSpec {
        id: "11111111-1111-4111-8111-111111111111",
        username: Some("alice"),
        custom_id: Some("a-1"),
        groups: &[],
    },
    ConsumerSpec {
        id: "22222222-2222-4222-8222-222222222222",
        username: Some("anon"),
        custom_id: None,
        groups: &[],
    },
];

const SALT: [u8; 32] = [42; 32];

/// Request headers of a table-driven case.
type Headers<'a> = &'a [(&'a str, &'a str)];
/// Path, headers and the expected message.
type Case<'a> = (&'a str, Headers<'a>, &'a str);

fn creds() -> &'static [KeyCredential] {
    Box::leak(Box::new([KeyCredential {
        key: Credential::Digest(digest(&SALT, b"k1")),
        consumer: 0,
        id: "cred-1",
    }]))
}

fn plugin(f: impl FnOnce(&mut Config)) -> KeyAuth {
    let mut c = Config {
        consumers: &CONSUMERS,
        credentials: creds(),
        salt: SALT,
        ..Config::DEFAULT
    };
    f(&mut c);
    KeyAuth::new(c).expect("valid")
}

async fn run(p: &KeyAuth, req: &mut Request) -> (Ctx, ControlFlow<Response>) {
    let mut cx = ctx();
    let flow = p.access(&mut cx, req).await;
    (cx, flow)
}

async fn refused(p: &KeyAuth, mut req: Request) -> (String, String) {
    match run(p, &mut req).await.1 {
        ControlFlow::Break(resp) => {
            assert_eq!(resp.status(), 401);
            let www = resp.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .expect("ascii")
                .to_owned();
            let body: serde_json::Value =
                serde_json::from_str(&body_text(resp)).expect("json body");
            (body["message"].as_str().unwrap_or_default().to_owned(), www)
        }
        ControlFlow::Continue(()) => panic!("request was accepted"),
    }
}

#[tokio::test]
async fn key_sources_and_refusals() {
    let p = plugin(|_| {});
    for (uri, headers) in [
        ("/?apikey=k1", vec![]),
        ("/", vec![("apikey", "k1")]),
        ("/", vec![("ApiKey", "k1")]),
        ("/?apikey&x=1", vec![("apikey", "k1")]),
    ] {
        let mut req = request("GET", uri, &headers);
        let (cx, flow) = run(&p, &mut req).await;
        assert!(flow.is_continue(), "{uri} {headers:?}");
        assert_eq!(cx.auth.consumer, Some(0));
        assert_eq!(req.headers()["x-credential-identifier"], "cred-1");
        assert_eq!(req.headers()["x-consumer-username"], "alice");
    }
    let cases: &[Case] = &[
        ("/", &[], NO_KEY),
        ("/?apikey", &[], NO_KEY),
        ("/?apikey=", &[], NO_KEY),
        ("/", &[("apikey", "")], NO_KEY),
        ("/?apikey=k1&apikey=k1", &[], DUPLICATE),
        ("/", &[("apikey", "k1"), ("apikey", "k1")], DUPLICATE),
        ("/?apikey=nope", &[], UNAUTHORIZED),
        // The header wins over the query.
        ("/?apikey=k1", &[("apikey", "nope")], UNAUTHORIZED),
    ];
    for (uri, headers, want) in cases {
        let (msg, www) = refused(&p, request("GET", uri, headers)).await;
        assert_eq!(
            (msg.as_str(), www.as_str()),
            (*want, "Key"),
            "{uri} {headers:?}"
        );
    }
}

#[tokio::test]
async fn names_sources_realm_and_preflight() {
    let p = plugin(|c| {
        c.key_names = &["x_api_key", "apikey"];
        c.key_in_query = false;
        c.realm = Some("kong");
        c.run_on_preflight = false;
    });
    // `_` in the configured name matches `-` in the request.
    let mut req = request("GET", "/", &[("x-api-key", "k1")]);
    assert!(run(&p, &mut req).await.1.is_continue());
    // The query is not searched.
    let (msg, www) = refused(&p, request("GET", "/?apikey=k1", &[])).await;
    assert_eq!((msg.as_str(), www.as_str()), (NO_KEY, "Key realm=\"kong\""));
    // OPTIONS passes without a key, and no consumer.
    let mut req = request("OPTIONS", "/", &[]);
    let (cx, flow) = run(&p, &mut req).await;
    assert!(flow.is_continue());
    assert_eq!(cx.auth.consumer, None);
}

#[tokio::test]
async fn hide_credentials_everywhere() {
    let p = plugin(|c| c.hide_credentials = true);
    let mut req = request("GET", "/p?b=x+y&apikey=k1&a=%7e", &[]);
    assert!(run(&p, &mut req).await.1.is_continue());
    assert_eq!(req.uri().to_string(), "/p?b=x%20y&a=%7E");
    let mut req = request("GET", "/p?apikey=k1", &[]);
    assert!(run(&p, &mut req).await.1.is_continue());
    assert_eq!(req.uri().to_string(), "/p");
    let mut req = request("GET", "/p", &[("apikey", "k1")]);
    assert!(run(&p, &mut req).await.1.is_continue());
    assert!(req.headers().get("apikey").is_none());
    assert_eq!(req.uri().to_string(), "/p");
}

fn with_body(uri: &str, ct: &str, body: &'static str) -> Request {
    let mut req = request("POST", uri, &[("content-type", ct)]);
    *req.body_mut() = response::full(Bytes::from_static(body.as_bytes()));
    req
}

async fn body_of(req: Request) -> String {
    let b = req.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(b.to_vec()).expect("utf-8")
}

#[tokio::test]
async fn keys_in_bodies() {
    let off = plugin(|_| {});
    let (msg, _) = refused(
        &off,
        with_body("/", "application/x-www-form-urlencoded", "apikey=k1"),
    )
    .await;
    assert_eq!(msg, NO_KEY);

    let p = plugin(|c| {
        c.key_in_body = true;
        c.hide_credentials = true;
    });
    let mut req = with_body(
        "/",
        "application/x-www-form-urlencoded",
        "z=1&apikey=k1&a=2",
    );
    assert!(run(&p, &mut req).await.1.is_continue());
    assert_eq!(req.headers()["content-length"], "7");
    assert_eq!(body_of(req).await, "a=2&z=1");

    let mut req = with_body("/", "application/json", r#"{"apikey":"k1","n":1}"#);
    assert!(run(&p, &mut req).await.1.is_continue());
    assert_eq!(body_of(req).await, r#"{"n":1}"#);

    let mut req = with_body(
        "/",
        "multipart/form-data; boundary=b",
        "--b\r\nContent-Disposition: form-data; name=\"apikey\"\r\n\r\nk1\r\n--b--\r\n",
    );
    assert!(run(&p, &mut req).await.1.is_continue());
    assert_eq!(body_of(req).await, "--b--\r\n");

    let (msg, _) = refused(
        &p,
        with_body("/", "application/json", r#"{"apikey":["k1"]}"#),
    )
    .await;
    assert_eq!(msg, DUPLICATE);

    // A body that is not examined goes upstream as it came.
    let p = plugin(|c| c.key_in_body = true);
    let mut req = with_body("/?apikey=k1", "application/json", "{not json");
    assert!(run(&p, &mut req).await.1.is_continue());
    assert_eq!(body_of(req).await, "{not json");
}

#[tokio::test]
async fn anonymous_is_logical_or() {
    let p = plugin(|c| c.anonymous = Some(1));
    let mut req = request("GET", "/", &[("x-credential-identifier", "forged")]);
    let (cx, flow) = run(&p, &mut req).await;
    assert!(flow.is_continue());
    assert_eq!(cx.auth.consumer, Some(1));
    assert!(cx.auth.anonymous);
    assert_eq!(req.headers()["x-anonymous-consumer"], "true");
    assert!(req.headers().get("x-credential-identifier").is_none());

    // Already authenticated by an earlier plugin: nothing happens.
    let mut cx = ctx();
    cx.auth.consumer = Some(0);
    cx.auth.credential = Some("earlier".into());
    let mut req = request("GET", "/?apikey=nope", &[]);
    assert!(p.access(&mut cx, &mut req).await.is_continue());
    assert_eq!(cx.auth.credential.as_deref(), Some("earlier"));
}

#[test]
fn startup_checks() {
    let dup: &'static [KeyCredential] = Box::leak(Box::new([
        KeyCredential {
            key: Credential::Digest(digest(&SALT, b"same")),
            consumer: 0,
            id: "a",
        },
        KeyCredential {
            key: Credential::Digest(digest(&SALT, b"same")),
            consumer: 1,
            id: "b",
        },
    ]));
    let e = KeyAuth::new(Config {
        consumers: &CONSUMERS,
        credentials: dup,
        salt: SALT,
        ..Config::DEFAULT
    })
    .expect_err("duplicate keys");
    assert!(e.0.contains("same key"), "{e}");
    let env: &'static [KeyCredential] = Box::leak(Box::new([KeyCredential {
        key: Credential::Env(crate::secret::Secret::Env {
            var: "KILN_TEST_KEY_AUTH_SURELY_UNSET",
            json_key: None,
            reference: "{vault://env/kiln-test-key-auth-surely-unset}",
            origin: "kong.yml:9:14",
        }),
        consumer: 0,
        id: "c",
    }]));
    let e = KeyAuth::new(Config {
        consumers: &CONSUMERS,
        credentials: env,
        salt: SALT,
        ..Config::DEFAULT
    })
    .expect_err("unset variable");
    assert!(
        e.0.contains("KILN_TEST_KEY_AUTH_SURELY_UNSET") && e.0.contains("kong.yml:9:14"),
        "{e}"
    );
    let e = KeyAuth::new(Config {
        realm: Some("a\nb"),
        ..Config::DEFAULT
    })
    .expect_err("bad realm");
    assert!(e.0.contains("realm"), "{e}");
}
