//! jwt end to end (kong-compat.md §4.2, §5): the `jwt` fixture (seed-like: the user service
//! behind jwt with `exp` verified) compiled by build.rs, served in-process in front of the
//! echo upstream. Tokens are minted here with jsonwebtoken and the test-only keys.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use kiln_tests::harness::{get, request, start, Reply, Running};
use serde_json::{json, Value};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

macro_rules! key {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/keys/", $name))
    };
}

const HOST: &str = "api.test";
const HS_SECRET: &str = "mobile-app-hs256-secret";
const ENV_SECRET: &str = "edge-app-secret-from-the-environment";

async fn gateway() -> Running {
    static ENV: std::sync::Once = std::sync::Once::new();
    // The fixture's `{vault://env/kiln-test-jwt-secret}`; every test sets the same value.
    ENV.call_once(|| std::env::set_var("KILN_TEST_JWT_SECRET", ENV_SECRET));
    start::<jwt::Gateway>().await
}

fn now() -> i64 {
    kiln_runtime::plugins::jwt::unix_now() as i64
}

fn mint_with(header: Header, key: &EncodingKey, claims: Value) -> String {
    encode(&header, &claims, key).expect("token")
}

fn mint(alg: Algorithm, key: &EncodingKey, claims: Value) -> String {
    mint_with(Header::new(alg), key, claims)
}

fn hs(secret: &str) -> EncodingKey {
    EncodingKey::from_secret(secret.as_bytes())
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(key!("rsa-private.pem").as_bytes()).expect("rsa key")
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A jwt refusal: 401, compact JSON without request id, and `WWW-Authenticate`.
fn refused(r: &Reply, body: Value, www: &str) {
    assert_eq!(r.status, 401, "{:?}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("www-authenticate"), Some(www));
    assert!(r.header("x-kong-request-id").is_some());
    assert_eq!(r.json(), body);
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        !text.contains("request_id") && !text.contains('\n'),
        "{text}"
    );
}

const INVALID: &str = "Bearer error=\"invalid_token\"";

#[tokio::test]
async fn a_valid_token_reaches_the_user_service() {
    let gw = gateway().await;
    let token = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() + 300}),
    );
    let r = get(
        gw.addr,
        HOST,
        "/api/v1/users/42",
        &[
            ("authorization", &bearer(&token)),
            // Client copies of the consumer headers never reach the upstream.
            ("x-consumer-username", "forged"),
            ("x-anonymous-consumer", "true"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.upstream_header("x-consumer-username").as_deref(),
        Some("mobile-app")
    );
    assert_eq!(
        r.upstream_header("x-consumer-custom-id").as_deref(),
        Some("mobile-1")
    );
    assert_eq!(
        r.upstream_header("x-credential-identifier").as_deref(),
        Some("mobile-app-iss")
    );
    assert_eq!(r.upstream_header("x-anonymous-consumer"), None);
    let id = r.upstream_header("x-consumer-id").expect("consumer id");
    assert_eq!(id.len(), 36);
    // The token is not removed; correlation-id (after jwt) still runs.
    assert_eq!(r.upstream_header("authorization"), Some(bearer(&token)));
    assert!(r.upstream_header("x-request-id").is_some());
    // The product service has no jwt.
    let r = get(gw.addr, HOST, "/api/v1/products", &[]).await;
    assert_eq!(r.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn expired_forged_and_missing_tokens_get_kongs_401() {
    let gw = gateway().await;
    let users = "/api/v1/users";
    let r = get(gw.addr, HOST, users, &[]).await;
    refused(&r, json!({"message": "Unauthorized"}), "Bearer");

    let expired = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() - 1}),
    );
    let r = get(
        gw.addr,
        HOST,
        users,
        &[("authorization", &bearer(&expired))],
    )
    .await;
    refused(&r, json!({"exp": "token expired"}), INVALID);

    let forged = mint(
        Algorithm::HS256,
        &hs("guessed"),
        json!({"iss": "mobile-app-iss", "exp": now() + 60}),
    );
    let r = get(gw.addr, HOST, users, &[("authorization", &bearer(&forged))]).await;
    refused(&r, json!({"message": "Invalid signature"}), INVALID);

    let no_exp = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss"}),
    );
    let r = get(gw.addr, HOST, users, &[("authorization", &bearer(&no_exp))]).await;
    refused(&r, json!({"exp": "must be a number"}), INVALID);

    let cases: Vec<(String, &str)> = vec![
        ("garbage".into(), "Bad token; invalid JSON"),
        (
            mint(Algorithm::HS256, &hs(HS_SECRET), json!({"exp": now() + 60})),
            "No mandatory 'iss' in claims",
        ),
        (
            mint(
                Algorithm::HS256,
                &hs(HS_SECRET),
                json!({"iss": "", "exp": now() + 60}),
            ),
            "Invalid 'iss' in claims",
        ),
        (
            mint(
                Algorithm::HS256,
                &hs(HS_SECRET),
                json!({"iss": "stranger", "exp": now() + 60}),
            ),
            "No credentials found for given 'iss'",
        ),
        // Algorithm confusion: an HMAC token keyed with web-app's RSA public key.
        (
            mint(
                Algorithm::HS256,
                &hs(key!("rsa-public.pem")),
                json!({"iss": "web-app-iss", "exp": now() + 60}),
            ),
            "Invalid algorithm",
        ),
    ];
    for (token, message) in cases {
        let r = get(gw.addr, HOST, users, &[("authorization", &bearer(&token))]).await;
        refused(&r, json!({ "message": message }), INVALID);
    }
    let a = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() + 60}),
    );
    let b = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() + 61}),
    );
    let r = get(
        gw.addr,
        HOST,
        &format!("{users}?jwt={a}"),
        &[("authorization", &bearer(&b))],
    )
    .await;
    refused(&r, json!({"message": "Multiple tokens provided"}), INVALID);
    gw.stop().await;
}

#[tokio::test]
async fn public_key_algorithms_and_environment_secrets() {
    let gw = gateway().await;
    let exp = now() + 120;
    let ec = EncodingKey::from_ec_pem(key!("ec256-private.pem").as_bytes()).expect("ec key");
    let ed = EncodingKey::from_ed_pem(key!("ed25519-private.pem").as_bytes()).expect("ed key");
    let cases = [
        (Algorithm::RS256, rsa(), "web-app-iss", "web-app"),
        (Algorithm::ES256, ec, "edge-app-es256", "edge-app"),
        (Algorithm::EdDSA, ed, "edge-app-eddsa", "edge-app"),
        (Algorithm::HS384, hs(ENV_SECRET), "edge-app-env", "edge-app"),
    ];
    for (alg, key, iss, user) in cases {
        let token = mint(alg, &key, json!({"iss": iss, "exp": exp}));
        let r = get(gw.addr, HOST, &format!("/api/v1/users?jwt={token}"), &[]).await;
        assert_eq!(r.status, 200, "{iss}: {:?}", r.body);
        assert_eq!(
            r.upstream_header("x-consumer-username").as_deref(),
            Some(user)
        );
        assert_eq!(
            r.upstream_header("x-credential-identifier").as_deref(),
            Some(iss)
        );
        // The signature of another token with the same key: forged.
        if alg == Algorithm::RS256 {
            let other = mint(alg, &rsa(), json!({"iss": iss, "exp": exp + 1}));
            let (signed, _) = token.rsplit_once('.').expect("three parts");
            let (_, sig) = other.rsplit_once('.').expect("three parts");
            let r = get(
                gw.addr,
                HOST,
                &format!("/api/v1/users?jwt={signed}.{sig}"),
                &[],
            )
            .await;
            refused(&r, json!({"message": "Invalid signature"}), INVALID);
        }
    }
    gw.stop().await;
}

#[tokio::test]
async fn cookies_custom_headers_kid_realm_and_preflight() {
    let gw = gateway().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("mobile-app-iss".into());
    let token = mint_with(header, &hs(HS_SECRET), json!({"sub": "someone"}));
    for h in [
        ("cookie", format!("a=1; session={token}")),
        ("x-token", bearer(&token)),
    ] {
        let r = get(gw.addr, HOST, "/kid", &[(h.0, &h.1)]).await;
        assert_eq!(r.status, 200, "{h:?}: {:?}", r.body);
        assert_eq!(
            r.upstream_header("x-credential-identifier").as_deref(),
            Some("mobile-app-iss")
        );
    }
    // `jwt` query arguments and `Authorization` are not read on this route.
    let r = get(
        gw.addr,
        HOST,
        &format!("/kid?jwt={token}"),
        &[("authorization", &bearer(&token))],
    )
    .await;
    refused(
        &r,
        json!({"message": "Unauthorized"}),
        "Bearer realm=\"kiln\"",
    );
    let r = get(gw.addr, HOST, "/kid", &[("x-token", "Bearer not.a.token")]).await;
    refused(
        &r,
        json!({"message": "Bad token; invalid JSON"}),
        "Bearer realm=\"kiln\", error=\"invalid_token\"",
    );
    // run_on_preflight: false lets OPTIONS through unauthenticated.
    let r = request(gw.addr, "OPTIONS", HOST, "/kid", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.upstream_header("x-consumer-id"), None);
    // The user service authenticates OPTIONS (Kong's default).
    let r = request(gw.addr, "OPTIONS", HOST, "/api/v1/users", &[]).await;
    refused(&r, json!({"message": "Unauthorized"}), "Bearer");
    gw.stop().await;
}

#[tokio::test]
async fn anonymous_maximum_expiration_and_base64_secrets() {
    let gw = gateway().await;
    // Failure with `anonymous` set: the guest consumer, marked anonymous.
    let not_yet = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() + 60, "nbf": now() + 60}),
    );
    for headers in [vec![], vec![("authorization", bearer(&not_yet))]] {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(gw.addr, HOST, "/anonymous", &hs).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(
            r.upstream_header("x-consumer-username").as_deref(),
            Some("guest")
        );
        assert_eq!(
            r.upstream_header("x-anonymous-consumer").as_deref(),
            Some("true")
        );
        assert_eq!(r.upstream_header("x-credential-identifier"), None);
    }
    let ok = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() + 60, "nbf": now() - 1}),
    );
    let r = get(
        gw.addr,
        HOST,
        "/anonymous",
        &[("authorization", &bearer(&ok))],
    )
    .await;
    assert_eq!(
        r.upstream_header("x-consumer-username").as_deref(),
        Some("mobile-app")
    );
    assert_eq!(r.upstream_header("x-anonymous-consumer"), None);

    let far = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() + 3600}),
    );
    let r = get(gw.addr, HOST, "/max", &[("authorization", &bearer(&far))]).await;
    refused(
        &r,
        json!({"exp": "exceeds maximum allowed expiration"}),
        INVALID,
    );
    let near = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss", "exp": now() + 300}),
    );
    let r = get(gw.addr, HOST, "/max", &[("authorization", &bearer(&near))]).await;
    assert_eq!(r.status, 200);

    // secret_is_base64: the secret is the base64url decoding of what was written.
    let decoded = mint(
        Algorithm::HS512,
        &hs("secret-bytes-for-hs512"),
        json!({"iss": "mobile-app-b64"}),
    );
    let r = get(
        gw.addr,
        HOST,
        "/base64",
        &[("authorization", &bearer(&decoded))],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let as_written = mint(
        Algorithm::HS512,
        &hs("c2VjcmV0LWJ5dGVzLWZvci1oczUxMg"),
        json!({"iss": "mobile-app-b64"}),
    );
    let r = get(
        gw.addr,
        HOST,
        "/base64",
        &[("authorization", &bearer(&as_written))],
    )
    .await;
    refused(&r, json!({"message": "Invalid signature"}), INVALID);
    // A PEM is never valid base64url: Kong's "Invalid key/secret".
    let rs = mint(Algorithm::RS256, &rsa(), json!({"iss": "web-app-iss"}));
    let r = get(gw.addr, HOST, "/base64", &[("authorization", &bearer(&rs))]).await;
    refused(&r, json!({"message": "Invalid key/secret"}), INVALID);
    gw.stop().await;
}

#[tokio::test]
async fn jwt_then_acl_on_the_authenticated_consumer() {
    let gw = gateway().await;
    let web = mint(Algorithm::RS256, &rsa(), json!({"iss": "web-app-iss"}));
    let r = get(gw.addr, HOST, "/admin", &[("authorization", &bearer(&web))]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.upstream_header("x-consumer-groups").as_deref(),
        Some("admins")
    );
    let mobile = mint(
        Algorithm::HS256,
        &hs(HS_SECRET),
        json!({"iss": "mobile-app-iss"}),
    );
    let r = get(
        gw.addr,
        HOST,
        "/admin",
        &[("authorization", &bearer(&mobile))],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["message"], "You cannot consume this service");
    // jwt answers first when there is no token.
    let r = get(gw.addr, HOST, "/admin", &[]).await;
    refused(&r, json!({"message": "Unauthorized"}), "Bearer");
    gw.stop().await;
}
