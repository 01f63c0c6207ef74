//! Authentication end to end (kong-compat.md §4.1 key-auth, §4.3 basic-auth, §4 logical
//! AND/OR, §5 consumer headers, §3.3 consumer-scoped plugins): the `auth` and
//! `auth-kong-hashed` fixtures served in-process in front of the echo upstream.

use bytes::Bytes;
use http_body_util::Full;
use kiln_tests::harness::{get, request, send, start, Reply, Running};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

/// The env var behind bob's second key (`{vault://env/kiln-test-auth-key}`).
const VAULT_KEY: &str = "bob-vault-key";

async fn gateway() -> Running {
    // Every test sets the same value; the gateway reads it at start-up.
    std::env::set_var("KILN_TEST_AUTH_KEY", VAULT_KEY);
    start::<auth::Gateway>().await
}

/// Ids as the compiler derived them (consumer ids, key-auth credential ids).
fn ir() -> kiln_codegen::ir::Config {
    let file = kiln_codegen::diag::SourceFile {
        name: "auth.yml".into(),
        text: include_str!("../fixtures/auth.yml").into(),
    };
    kiln_codegen::lower::check(&file).0.expect("fixture lowers")
}

fn basic(user_pass: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("Basic ");
    for c in user_pass.as_bytes().chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// A refusal in Kong's error format: status, `message`, `WWW-Authenticate`.
fn assert_refused(r: &Reply, status: u16, message: &str, challenge: Option<&str>, what: &str) {
    assert_eq!(r.status, status, "{what}: {:?}", r.body);
    assert_eq!(r.json()["message"], message, "{what}");
    assert_eq!(r.header("www-authenticate"), challenge, "{what}");
}

/// The request reached the upstream as `username` (with credential `cred`).
fn assert_consumer(r: &Reply, username: &str, cred: Option<&str>, what: &str) {
    assert_eq!(r.status, 200, "{what}: {:?}", r.body);
    assert_eq!(
        r.upstream_header("x-consumer-username").as_deref(),
        Some(username),
        "{what}"
    );
    assert_eq!(
        r.upstream_header("x-credential-identifier").as_deref(),
        cred,
        "{what}"
    );
}

async fn post(
    gw: &Running,
    host: &str,
    path: &str,
    ct: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", host)
        .header("content-type", ct);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(
        gw.addr,
        b.body(Full::new(Bytes::from(body))).expect("request"),
    )
    .await
}

/// Request headers of a table-driven case.
type Headers<'a> = &'a [(&'a str, &'a str)];
/// Path, headers and the expected message.
type Case<'a> = (&'a str, Headers<'a>, &'a str);

#[tokio::test]
async fn key_auth_accepts_keys_and_sets_consumer_headers() {
    let ir = ir();
    let alice = &ir.consumers[0];
    let bob = &ir.consumers[1];
    let bob_ids: Vec<&str> = bob
        .keyauth_credentials
        .iter()
        .map(|k| k.id.as_deref().expect("derived id"))
        .collect();
    let gw = gateway().await;
    let cases: &[(&str, Headers, &str, &str)] = &[
        (
            "/",
            &[("apikey", "alice-key")],
            "alice",
            "0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10",
        ),
        (
            "/",
            &[("APIKEY", "alice-key")],
            "alice",
            "0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10",
        ),
        (
            "/?apikey=alice-key",
            &[],
            "alice",
            "0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10",
        ),
        ("/?apikey&x=1", &[("apikey", "bob-key")], "bob", bob_ids[0]),
        ("/?apikey=bob-vault-key", &[], "bob", bob_ids[1]),
    ];
    for (path, headers, user, cred) in cases {
        let r = get(gw.addr, "key.test", path, headers).await;
        assert_consumer(&r, user, Some(cred), &format!("{path} {headers:?}"));
    }
    // §5: client copies are replaced or cleared; the key itself is not hidden by default.
    let r = get(
        gw.addr,
        "key.test",
        "/",
        &[
            ("apikey", "alice-key"),
            ("x-consumer-username", "mallory"),
            ("x-consumer-id", "forged"),
            ("x-anonymous-consumer", "true"),
        ],
    )
    .await;
    assert_consumer(
        &r,
        "alice",
        Some("0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10"),
        "forged",
    );
    assert_eq!(
        r.upstream_header("x-consumer-id").as_deref(),
        Some(alice.id.as_str())
    );
    assert_eq!(
        r.upstream_header("x-consumer-custom-id").as_deref(),
        Some("a-1")
    );
    assert_eq!(r.upstream_header("x-anonymous-consumer"), None);
    assert_eq!(r.upstream_header("apikey").as_deref(), Some("alice-key"));
    let r = get(
        gw.addr,
        "key.test",
        "/",
        &[("apikey", "bob-key"), ("x-consumer-custom-id", "x")],
    )
    .await;
    assert_eq!(
        r.upstream_header("x-consumer-custom-id"),
        None,
        "bob has no custom_id"
    );
    gw.stop().await;
}

#[tokio::test]
async fn key_auth_refusals() {
    let gw = gateway().await;
    let no_key = "No API key found in request";
    let dup = "Duplicate API key found";
    let cases: &[Case] = &[
        ("/", &[], no_key),
        ("/?apikey", &[], no_key),
        ("/?apikey=", &[], no_key),
        ("/", &[("apikey", "")], no_key),
        ("/?apikey=alice-key&apikey=alice-key", &[], dup),
        ("/", &[("apikey", "alice-key"), ("apikey", "bob-key")], dup),
        ("/?apikey=nope", &[], "Unauthorized"),
        // The header is searched before the query.
        ("/?apikey=alice-key", &[("apikey", "nope")], "Unauthorized"),
    ];
    for (path, headers, msg) in cases {
        let r = get(gw.addr, "key.test", path, headers).await;
        assert_refused(&r, 401, msg, Some("Key"), &format!("{path} {headers:?}"));
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        let id = r.json()["request_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(r.header("x-kong-request-id"), Some(id.as_str()));
    }
    // Kong's error format follows Accept.
    let r = get(gw.addr, "key.test", "/", &[("accept", "text/plain")]).await;
    assert_eq!(r.status, 401);
    assert!(
        r.body
            .starts_with(b"No API key found in request\nrequest_id: "),
        "{:?}",
        r.body
    );
    gw.stop().await;
}

#[tokio::test]
async fn key_auth_realm_preflight_and_sources() {
    let gw = gateway().await;
    // key_in_header: false, so a header key is not seen.
    let r = get(gw.addr, "key-realm.test", "/", &[("apikey", "alice-key")]).await;
    assert_refused(
        &r,
        401,
        "No API key found in request",
        Some("Key realm=\"kiln\""),
        "header",
    );
    let r = get(gw.addr, "key-realm.test", "/?apikey=bad", &[]).await;
    assert_refused(&r, 401, "Unauthorized", Some("Key realm=\"kiln\""), "bad");
    let r = get(gw.addr, "key-realm.test", "/?apikey=alice-key", &[]).await;
    assert_consumer(
        &r,
        "alice",
        Some("0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10"),
        "query",
    );
    // run_on_preflight: false — OPTIONS passes unauthenticated.
    let r = request(gw.addr, "OPTIONS", "key-realm.test", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("x-consumer-username"), None);
    // The default (run_on_preflight: true) authenticates OPTIONS too.
    let r = request(gw.addr, "OPTIONS", "key.test", "/", &[]).await;
    assert_refused(
        &r,
        401,
        "No API key found in request",
        Some("Key"),
        "preflight",
    );
    gw.stop().await;
}

#[tokio::test]
async fn key_auth_hides_credentials_everywhere() {
    let gw = gateway().await;
    let alice = Some("0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10");
    // `x_api_key` matches the `x-api-key` header; the header is removed and the query is
    // re-serialised as Kong's clear_query_arg does.
    let r = get(
        gw.addr,
        "key-hide.test",
        "/p?b=x+y&c=~&flag",
        &[("x-api-key", "alice-key")],
    )
    .await;
    assert_consumer(&r, "alice", alice, "header");
    assert_eq!(r.upstream_header("x-api-key"), None);
    assert_eq!(r.json()["uri"], "/p?b=x%20y&c=%7E&flag=");
    let r = get(gw.addr, "key-hide.test", "/p?apikey=alice-key&z=1", &[]).await;
    assert_consumer(&r, "alice", alice, "query");
    assert_eq!(r.json()["uri"], "/p?z=1");
    let r = get(gw.addr, "key-hide.test", "/p?apikey=alice-key", &[]).await;
    assert_eq!(r.json()["uri"], "/p");

    // Bodies: form, JSON, multipart.
    let r = post(
        &gw,
        "key-hide.test",
        "/",
        "application/x-www-form-urlencoded",
        b"z=1&apikey=alice-key&a=x%20y".to_vec(),
        &[],
    )
    .await;
    assert_consumer(&r, "alice", alice, "form");
    assert_eq!(r.json()["body"], "a=x%20y&z=1");
    assert_eq!(r.upstream_header("content-length").as_deref(), Some("11"));
    let r = post(
        &gw,
        "key-hide.test",
        "/",
        "application/json",
        br#"{"apikey":"alice-key","n":1}"#.to_vec(),
        &[],
    )
    .await;
    assert_consumer(&r, "alice", alice, "json");
    assert_eq!(r.json()["body"], r#"{"n":1}"#);
    let multipart = "--XB\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XB\r\nContent-Disposition: form-data; name=\"apikey\"\r\n\r\nalice-key\r\n--XB--\r\n";
    let r = post(
        &gw,
        "key-hide.test",
        "/",
        "multipart/form-data; boundary=XB",
        multipart.into(),
        &[],
    )
    .await;
    assert_consumer(&r, "alice", alice, "multipart");
    assert_eq!(
        r.json()["body"],
        "--XB\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XB--\r\n"
    );
    let r = post(
        &gw,
        "key-hide.test",
        "/",
        "application/json",
        br#"{"apikey":["alice-key"]}"#.to_vec(),
        &[],
    )
    .await;
    assert_refused(
        &r,
        401,
        "Duplicate API key found",
        Some("Key"),
        "json array",
    );

    // A body over the 8 KiB limit is not examined, and reaches the upstream intact.
    let mut big = b"apikey=alice-key&pad=".to_vec();
    big.resize(10_000, b'x');
    let r = post(
        &gw,
        "key-hide.test",
        "/",
        "application/x-www-form-urlencoded",
        big.clone(),
        &[],
    )
    .await;
    assert_refused(
        &r,
        401,
        "No API key found in request",
        Some("Key"),
        "big body",
    );
    let r = post(
        &gw,
        "key-hide.test",
        "/",
        "application/x-www-form-urlencoded",
        big,
        &[("apikey", "alice-key")],
    )
    .await;
    assert_consumer(&r, "alice", alice, "big body, key in header");
    assert_eq!(r.json()["body_bytes"], 10_000);
    assert_eq!(r.upstream_header("apikey"), None);
    gw.stop().await;
}

#[tokio::test]
async fn key_auth_anonymous() {
    let gw = gateway().await;
    for (what, headers) in [("no key", vec![]), ("bad key", vec![("apikey", "nope")])] {
        let r = get(gw.addr, "key-anon.test", "/", &headers).await;
        assert_consumer(&r, "guest", None, what);
        assert_eq!(
            r.upstream_header("x-anonymous-consumer").as_deref(),
            Some("true")
        );
        assert_eq!(
            r.upstream_header("x-consumer-id").as_deref(),
            Some("3c9a1d2e-5f60-4a7b-8c9d-0e1f2a3b4c5d")
        );
    }
    let r = get(
        gw.addr,
        "key-anon.test",
        "/",
        &[("apikey", "alice-key"), ("x-anonymous-consumer", "true")],
    )
    .await;
    assert_consumer(
        &r,
        "alice",
        Some("0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10"),
        "good key",
    );
    assert_eq!(r.upstream_header("x-anonymous-consumer"), None);
    gw.stop().await;
}

#[tokio::test]
async fn basic_auth() {
    let gw = gateway().await;
    let alice = basic("alice:alice:pw");
    let r = get(gw.addr, "basic.test", "/", &[("authorization", &alice)]).await;
    assert_consumer(&r, "alice", Some("alice"), "authorization");
    assert_eq!(
        r.upstream_header("authorization").as_deref(),
        Some(alice.as_str())
    );
    let r = get(
        gw.addr,
        "basic.test",
        "/",
        &[("proxy-authorization", &basic("bob:bob-pw"))],
    )
    .await;
    assert_consumer(&r, "bob", Some("bob"), "proxy-authorization");
    let lower = basic("bob:bob-pw").replace("Basic ", "basic  ");
    let r = get(gw.addr, "basic.test", "/", &[("authorization", &lower)]).await;
    assert_consumer(&r, "bob", Some("bob"), "lower-case scheme");
    let challenge = Some("Basic realm=\"service\"");
    for (what, headers) in [
        ("none", vec![]),
        (
            "wrong password",
            vec![("authorization", basic("alice:alice"))],
        ),
        ("unknown user", vec![("authorization", basic("carol:x"))]),
        ("no colon", vec![("authorization", basic("alice"))]),
        (
            "bearer",
            vec![("authorization", "Bearer alice-key".to_owned())],
        ),
        (
            "bad base64",
            vec![("authorization", "Basic ***".to_owned())],
        ),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(gw.addr, "basic.test", "/", &h).await;
        assert_refused(&r, 401, "Unauthorized", challenge, what);
    }
    // hide_credentials and a configured realm.
    let r = get(
        gw.addr,
        "basic-hide.test",
        "/",
        &[("authorization", &alice), ("proxy-authorization", "junk")],
    )
    .await;
    assert_consumer(&r, "alice", Some("alice"), "hidden");
    assert_eq!(r.upstream_header("authorization"), None);
    assert_eq!(r.upstream_header("proxy-authorization"), None);
    let r = get(gw.addr, "basic-hide.test", "/", &[]).await;
    assert_refused(
        &r,
        401,
        "Unauthorized",
        Some("Basic realm=\"internal\""),
        "realm",
    );
    gw.stop().await;
}

#[tokio::test]
async fn basic_auth_with_kong_hashed_passwords() {
    let gw = start::<auth_kong_hashed::Gateway>().await;
    let r = get(
        gw.addr,
        "hashed.test",
        "/",
        &[("authorization", &basic("dave:old-password"))],
    )
    .await;
    assert_consumer(&r, "dave", Some("dave"), "hashed");
    let r = get(
        gw.addr,
        "hashed.test",
        "/",
        &[(
            "authorization",
            &basic("dave:beb9daed0c7590fd86ad8c7f5b8e24a87b6c40a3"),
        )],
    )
    .await;
    assert_refused(
        &r,
        401,
        "Unauthorized",
        Some("Basic realm=\"service\""),
        "the hash is not the password",
    );
    gw.stop().await;
}

#[tokio::test]
async fn logical_and_or_of_key_and_basic_auth() {
    let gw = gateway().await;
    let (alice_key, bob_basic) = (("apikey", "alice-key"), basic("bob:bob-pw"));
    let bob = ("authorization", bob_basic.as_str());
    let alice_cred = Some("0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10");

    // AND (no anonymous): both needed; the later plugin (basic-auth) names the consumer.
    let r = get(gw.addr, "and.test", "/", &[alice_key, bob]).await;
    assert_consumer(&r, "bob", Some("bob"), "and: both");
    let r = get(gw.addr, "and.test", "/", &[alice_key]).await;
    assert_refused(
        &r,
        401,
        "Unauthorized",
        Some("Basic realm=\"service\""),
        "and: key only",
    );
    let r = get(gw.addr, "and.test", "/", &[bob]).await;
    assert_refused(
        &r,
        401,
        "No API key found in request",
        Some("Key"),
        "and: basic only",
    );

    // OR (both anonymous): the first accepted credential wins, later plugins step aside.
    let r = get(gw.addr, "or.test", "/", &[alice_key, bob]).await;
    assert_consumer(&r, "alice", alice_cred, "or: both");
    let r = get(gw.addr, "or.test", "/", &[alice_key]).await;
    assert_consumer(&r, "alice", alice_cred, "or: key");
    let r = get(gw.addr, "or.test", "/", &[bob]).await;
    assert_consumer(
        &r,
        "bob",
        Some("bob"),
        "or: basic after key's anonymous fallback",
    );
    assert_eq!(r.upstream_header("x-anonymous-consumer"), None);
    // Neither: the anonymous consumer, refused by its consumer-scoped request-termination.
    for (what, headers) in [
        ("or: none", vec![]),
        (
            "or: both bad",
            vec![
                ("apikey", "nope".to_owned()),
                ("authorization", basic("bob:nope")),
            ],
        ),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(gw.addr, "or.test", "/", &h).await;
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(r.body, r#"{"message":"credentials required"}"#, "{what}");
        assert_eq!(r.header("www-authenticate"), None, "{what}");
    }

    // Mixed: key-auth falls back to anonymous, basic-auth still insists.
    let r = get(gw.addr, "mixed.test", "/", &[]).await;
    assert_refused(
        &r,
        401,
        "Unauthorized",
        Some("Basic realm=\"service\""),
        "mixed: none",
    );
    let r = get(gw.addr, "mixed.test", "/", &[bob]).await;
    assert_consumer(&r, "bob", Some("bob"), "mixed: basic only");
    assert_eq!(r.upstream_header("x-anonymous-consumer"), None);
    let r = get(gw.addr, "mixed.test", "/", &[alice_key, bob]).await;
    assert_consumer(&r, "bob", Some("bob"), "mixed: both");
    gw.stop().await;
}

#[tokio::test]
async fn consumer_scoped_plugins_follow_the_authenticated_consumer() {
    let ir = ir();
    let bob_key = ir.consumers[1].keyauth_credentials[0].id.clone();
    let gw = gateway().await;
    // alice: consumer + service instance on both routes of `scoped`.
    for host in ["scoped.test", "scoped-route.test"] {
        let r = get(gw.addr, host, "/", &[("apikey", "alice-key")]).await;
        assert_eq!(r.status, 418, "{host}");
        assert_eq!(r.body, r#"{"message":"alice may not"}"#, "{host}");
    }
    // bob: reaches the upstream on `scoped`, gets his route-scoped answer on `scoped-route`.
    let r = get(gw.addr, "scoped.test", "/", &[("apikey", "bob-key")]).await;
    assert_consumer(&r, "bob", bob_key.as_deref(), "bob on scoped");
    assert_eq!(r.json()["uri"], "/");
    let r = get(gw.addr, "scoped-route.test", "/", &[("apikey", "bob-key")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"{"message":"bob's own answer"}"#);
    // Without a key, key-auth answers before any consumer is known.
    let r = get(gw.addr, "scoped.test", "/", &[]).await;
    assert_refused(
        &r,
        401,
        "No API key found in request",
        Some("Key"),
        "no key",
    );
    // The consumer-scoped instances are per service: alice is not refused elsewhere, and
    // the anonymous consumer is refused on `or` only.
    let r = get(gw.addr, "key.test", "/", &[("apikey", "alice-key")]).await;
    assert_eq!(r.status, 200);
    let r = get(gw.addr, "key-anon.test", "/", &[]).await;
    assert_consumer(&r, "guest", None, "guest elsewhere");
    gw.stop().await;
}
