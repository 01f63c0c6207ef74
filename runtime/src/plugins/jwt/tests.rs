use std::ops::ControlFlow;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready, request};

macro_rules! key {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/keys/",
            $name
        ))
    };
}

static CONSUMERS: [ConsumerSpec; 3] = [
    ConsumerSpec {
        id: "8b6b4fa4-5b0e-5c4e-9c43-2a6a5a1c1f10",
        username: Some("alice"),
        custom_id: None,
        groups: &[],
    },
    ConsumerSpec {
        id: "0d5b7e44-3c57-5d0a-9a7e-1c2b3d4e5f60",
        username: Some("bob"),
        custom_id: Some("b-1"),
        groups: &[],
    },
    ConsumerSpec {
        id: "1e6c8f55-4d68-5e1b-8b8f-2d3c4e5f6a71",
        username: Some("anon"),
        custom_id: None,
        groups: &[],
    },
];

const NOW: u64 = 1_800_000_000;

fn now() -> u64 {
    NOW
}

fn hmac(key: &'static str, alg: Algorithm, secret: &str) -> JwtSecret {
    let hash = alg.hmac().expect("HS");
    let decoded = match base64url_decode(secret.as_bytes()) {
        Some(d) => Base64Key::Key(HmacKey::new(hash, &d)),
        None => Base64Key::Invalid,
    };
    JwtSecret {
        key,
        consumer: 0,
        algorithm: alg,
        material: Material::Hmac {
            key: HmacKey::new(hash, secret.as_bytes()),
            base64url: Some(decoded),
        },
    }
}

fn public(key: &'static str, consumer: u32, alg: Algorithm, pem: &'static str) -> JwtSecret {
    JwtSecret {
        key,
        consumer,
        algorithm: alg,
        material: Material::PublicKey(pem),
    }
}

fn secrets() -> &'static [JwtSecret] {
    Box::leak(Box::new([
        hmac("hs256", Algorithm::HS256, "alice-secret"),
        hmac("hs384", Algorithm::HS384, "alice-secret-384"),
        hmac("hs512", Algorithm::HS512, "alice-secret-512"),
        hmac("b64", Algorithm::HS256, "c2VjcmV0LWJ5dGVz"),
        public("rs256", 1, Algorithm::RS256, key!("rsa-public.pem")),
        public("ps256", 1, Algorithm::PS256, key!("rsa-public.pem")),
        public("es256", 1, Algorithm::ES256, key!("ec256-public.pem")),
        public("es384", 1, Algorithm::ES384, key!("ec384-public.pem")),
        public("eddsa", 1, Algorithm::EdDSA, key!("ed25519-public.pem")),
    ]))
}

fn plugin(config: Config) -> Jwt {
    Jwt::new(Config {
        consumers: &CONSUMERS,
        secrets: secrets(),
        ..config
    })
    .expect("valid config")
    .with_clock(now)
}

fn mint(alg: jsonwebtoken::Algorithm, key: &EncodingKey, claims: Value) -> String {
    encode(&Header::new(alg), &claims, key).expect("signs")
}

fn hs(secret: &str) -> EncodingKey {
    EncodingKey::from_secret(secret.as_bytes())
}

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_pem(key!("rsa-private.pem").as_bytes()).expect("rsa")
}

/// Runs access; `Ok(request)` when it continued, `Err((body, www-authenticate))` on 401.
fn run(p: &Jwt, cx: &mut Ctx, mut req: Request) -> Result<Request, (Value, String)> {
    match ready(p.access(cx, &mut req)) {
        ControlFlow::Continue(()) => Ok(req),
        ControlFlow::Break(resp) => {
            assert_eq!(resp.status(), 401);
            assert_eq!(
                resp.headers()["content-type"],
                "application/json; charset=utf-8"
            );
            assert!(cx.kong_generated);
            let www = resp.headers()["www-authenticate"]
                .to_str()
                .expect("ascii")
                .to_owned();
            let body = body_text(resp);
            // Compact JSON, no request id.
            assert!(!body.contains('\n') && !body.contains("\": "), "{body}");
            assert!(!body.contains("request_id"), "{body}");
            Err((serde_json::from_str(&body).expect("json"), www))
        }
    }
}

fn bearer(token: &str) -> Request {
    request("GET", "/", &[("authorization", &format!("Bearer {token}"))])
}

fn message(r: Result<Request, (Value, String)>) -> String {
    match r {
        Ok(_) => "accepted".into(),
        Err((v, _)) => v["message"]
            .as_str()
            .map_or_else(|| v.to_string(), str::to_owned),
    }
}

#[test]
fn every_algorithm_verifies_and_pins_its_key() {
    use jsonwebtoken::Algorithm as A;
    let p = plugin(Config::DEFAULT);
    let ec256 = EncodingKey::from_ec_pem(key!("ec256-private.pem").as_bytes()).expect("ec");
    let ec384 = EncodingKey::from_ec_pem(key!("ec384-private.pem").as_bytes()).expect("ec");
    let ed = EncodingKey::from_ed_pem(key!("ed25519-private.pem").as_bytes()).expect("ed");
    let cases: Vec<(&str, A, EncodingKey, &str)> = vec![
        ("hs256", A::HS256, hs("alice-secret"), "alice"),
        ("hs384", A::HS384, hs("alice-secret-384"), "alice"),
        ("hs512", A::HS512, hs("alice-secret-512"), "alice"),
        ("rs256", A::RS256, rsa(), "bob"),
        ("ps256", A::PS256, rsa(), "bob"),
        ("es256", A::ES256, ec256, "bob"),
        ("es384", A::ES384, ec384, "bob"),
        ("eddsa", A::EdDSA, ed, "bob"),
    ];
    for (iss, alg, key, user) in cases {
        let token = mint(alg, &key, json!({ "iss": iss }));
        let mut cx = ctx();
        let req = run(&p, &mut cx, bearer(&token)).unwrap_or_else(|e| panic!("{iss}: {e:?}"));
        assert_eq!(req.headers()["x-consumer-username"], user, "{iss}");
        assert_eq!(req.headers()["x-credential-identifier"], iss);
        assert!(req.headers().get("x-anonymous-consumer").is_none());
        // The token stays in the request.
        assert_eq!(req.headers()["authorization"], format!("Bearer {token}"));
        assert_eq!(cx.auth.credential.as_deref(), Some(iss));

        // A forged signature (last byte of the signature changed).
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(
            message(run(&p, &mut ctx(), bearer(&forged))),
            "Invalid signature",
            "{iss}"
        );
    }
    // An RSA-keyed secret does not accept an HMAC token signed with its public key
    // (algorithm confusion), nor `none`.
    let confused = mint(
        A::HS256,
        &hs(key!("rsa-public.pem")),
        json!({"iss": "rs256"}),
    );
    assert_eq!(
        message(run(&p, &mut ctx(), bearer(&confused))),
        "Invalid algorithm"
    );
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(r#"{"iss":"hs256"}"#)
    );
    assert_eq!(
        message(run(&p, &mut ctx(), bearer(&none))),
        "Bad token; invalid alg"
    );
    let rs_for_hs = mint(A::RS256, &rsa(), json!({"iss": "hs256"}));
    assert_eq!(
        message(run(&p, &mut ctx(), bearer(&rs_for_hs))),
        "Invalid algorithm"
    );
    // ES512 is an algorithm Kong's parser knows: no secret can have it.
    let es512 = format!(
        "{}.{}.AAAA",
        b64(r#"{"alg":"ES512"}"#),
        b64(r#"{"iss":"es256"}"#)
    );
    assert_eq!(
        message(run(&p, &mut ctx(), bearer(&es512))),
        "Invalid algorithm"
    );
}

fn b64(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in s.as_bytes().chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[test]
fn token_sources_and_www_authenticate() {
    let p = plugin(Config {
        cookie_names: &["session"],
        header_names: &["authorization", "x_token"],
        ..Config::DEFAULT
    });
    let good = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("alice-secret"),
        json!({"iss": "hs256"}),
    );
    let other = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("alice-secret"),
        json!({"iss": "hs256", "x": 1}),
    );
    let accepted: Vec<Request> = vec![
        request("GET", &format!("/?jwt={good}"), &[]),
        request("GET", &format!("/?a=1&jwt={good}&jwt={good}"), &[]),
        request("GET", "/", &[("cookie", &format!("a=b; session={good}"))]),
        request("GET", "/", &[("x-token", &format!("bearer {good}"))]),
        // The same token in several places is one token.
        request(
            "GET",
            &format!("/?jwt={good}"),
            &[("authorization", &format!("Bearer {good}"))],
        ),
        // An empty query value is skipped.
        request(
            "GET",
            "/?jwt=",
            &[("authorization", &format!("Bearer {good}"))],
        ),
    ];
    for req in accepted {
        let uri = req.uri().clone();
        assert!(run(&p, &mut ctx(), req).is_ok(), "{uri}");
    }
    let none = run(
        &p,
        &mut ctx(),
        request("GET", "/", &[("authorization", "Basic abc")]),
    );
    let (body, www) = none.expect_err("no token");
    assert_eq!(body, json!({"message": "Unauthorized"}));
    assert_eq!(www, "Bearer");
    let multiple = run(
        &p,
        &mut ctx(),
        request(
            "GET",
            &format!("/?jwt={good}"),
            &[("x-token", &format!("Bearer {other}"))],
        ),
    );
    let (body, www) = multiple.expect_err("two tokens");
    assert_eq!(body, json!({"message": "Multiple tokens provided"}));
    assert_eq!(www, "Bearer error=\"invalid_token\"");
    assert_eq!(
        message(run(&p, &mut ctx(), request("GET", "/?jwt", &[]))),
        "Unrecognizable token"
    );

    let realm = plugin(Config {
        realm: Some("kiln"),
        ..Config::DEFAULT
    });
    let (_, www) = run(&realm, &mut ctx(), request("GET", "/", &[])).expect_err("no token");
    assert_eq!(www, "Bearer realm=\"kiln\"");
    let (_, www) = run(&realm, &mut ctx(), bearer("x.y.z")).expect_err("bad");
    assert_eq!(www, "Bearer realm=\"kiln\", error=\"invalid_token\"");
}

#[test]
fn kong_messages_for_each_failure() {
    let p = plugin(Config::DEFAULT);
    let hs256 = |claims: Value| mint(jsonwebtoken::Algorithm::HS256, &hs("alice-secret"), claims);
    let with_kid = {
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("hs256".into());
        encode(&h, &json!({"sub": "x"}), &hs("alice-secret")).expect("signs")
    };
    let cases: Vec<(String, &str)> = vec![
        ("not-a-token".into(), "Bad token; invalid JSON"),
        (hs256(json!({})), "No mandatory 'iss' in claims"),
        (hs256(json!({"iss": false})), "No mandatory 'iss' in claims"),
        (hs256(json!({"iss": ""})), "Invalid 'iss' in claims"),
        (
            hs256(json!({"iss": "nobody"})),
            "No credentials found for given 'iss'",
        ),
        (
            hs256(json!({"iss": 42})),
            "No credentials found for given 'iss'",
        ),
        (
            mint(
                jsonwebtoken::Algorithm::HS256,
                &hs("wrong"),
                json!({"iss": "hs256"}),
            ),
            "Invalid signature",
        ),
        (
            mint(
                jsonwebtoken::Algorithm::HS384,
                &hs("alice-secret"),
                json!({"iss": "hs256"}),
            ),
            "Invalid algorithm",
        ),
    ];
    for (token, want) in cases {
        assert_eq!(
            message(run(&p, &mut ctx(), bearer(&token))),
            want,
            "{token}"
        );
    }
    // key_claim_name found in the token header (`kid`).
    let kid = plugin(Config {
        key_claim_name: "kid",
        ..Config::DEFAULT
    });
    assert!(run(&kid, &mut ctx(), bearer(&with_kid)).is_ok());
    assert_eq!(
        message(run(
            &kid,
            &mut ctx(),
            bearer(&hs256(json!({"iss": "hs256"})))
        )),
        "No mandatory 'kid' in claims"
    );
}

#[test]
fn registered_claims_with_an_injected_clock() {
    let p = plugin(Config {
        claims_to_verify: &[Claim::Exp, Claim::Nbf],
        ..Config::DEFAULT
    });
    let t = |claims: Value| {
        let token = mint(jsonwebtoken::Algorithm::HS256, &hs("alice-secret"), claims);
        match run(&p, &mut ctx(), bearer(&token)) {
            Ok(_) => json!("accepted"),
            Err((v, www)) => {
                assert_eq!(www, "Bearer error=\"invalid_token\"");
                v
            }
        }
    };
    let n = NOW as i64;
    assert_eq!(
        t(json!({"iss": "hs256", "exp": n + 1, "nbf": n})),
        json!("accepted")
    );
    assert_eq!(
        t(json!({"iss": "hs256", "exp": n, "nbf": n})),
        json!({"exp": "token expired"})
    );
    assert_eq!(
        t(json!({"iss": "hs256", "exp": n + 10, "nbf": n + 1})),
        json!({"nbf": "token not valid yet"})
    );
    assert_eq!(
        t(json!({"iss": "hs256", "exp": "soon"})),
        json!({"exp": "must be a number", "nbf": "must be a number"})
    );
    assert_eq!(
        t(json!({"iss": "hs256", "exp": n - 1, "nbf": n + 1})),
        json!({"exp": "token expired", "nbf": "token not valid yet"})
    );
    // Without claims_to_verify, an expired token passes (Kong's default).
    let lax = plugin(Config::DEFAULT);
    let expired = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("alice-secret"),
        json!({"iss": "hs256", "exp": 1}),
    );
    assert!(run(&lax, &mut ctx(), bearer(&expired)).is_ok());

    let max = plugin(Config {
        claims_to_verify: &[Claim::Exp],
        maximum_expiration: 60,
        ..Config::DEFAULT
    });
    let m = |exp: i64| {
        let token = mint(
            jsonwebtoken::Algorithm::HS256,
            &hs("alice-secret"),
            json!({"iss": "hs256", "exp": exp}),
        );
        run(&max, &mut ctx(), bearer(&token)).err().map(|e| e.0)
    };
    assert_eq!(m(n + 60), None);
    assert_eq!(
        m(n + 61),
        Some(json!({"exp": "exceeds maximum allowed expiration"}))
    );
    assert_eq!(m(n), Some(json!({"exp": "token expired"})));
}

#[test]
fn secret_is_base64_decodes_as_kong() {
    let p = plugin(Config {
        secret_is_base64: true,
        ..Config::DEFAULT
    });
    let good = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("secret-bytes"),
        json!({"iss": "b64"}),
    );
    assert!(run(&p, &mut ctx(), bearer(&good)).is_ok());
    // "alice-secret" is valid base64url too (12 chars): the decoded bytes are the key.
    let raw = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("alice-secret"),
        json!({"iss": "hs256"}),
    );
    assert_eq!(
        message(run(&p, &mut ctx(), bearer(&raw))),
        "Invalid signature"
    );
    // "alice-secret-384" has 16 chars of the url alphabet: decodes; a PEM never does.
    let rs = mint(
        jsonwebtoken::Algorithm::RS256,
        &rsa(),
        json!({"iss": "rs256"}),
    );
    assert_eq!(
        message(run(&p, &mut ctx(), bearer(&rs))),
        "Invalid key/secret"
    );
}

#[test]
fn anonymous_and_preflight() {
    let p = plugin(Config {
        anonymous: Some(2),
        run_on_preflight: false,
        ..Config::DEFAULT
    });
    let mut cx = ctx();
    let req = run(&p, &mut cx, bearer("garbage")).expect("anonymous");
    assert_eq!(req.headers()["x-consumer-username"], "anon");
    assert_eq!(req.headers()["x-anonymous-consumer"], "true");
    assert!(req.headers().get("x-credential-identifier").is_none());
    assert!(cx.auth.anonymous && !cx.auth.has_credential());

    // An earlier plugin's credential: with anonymous set, this one does nothing.
    let mut cx = ctx();
    cx.auth.consumer = Some(1);
    cx.auth.credential = Some("other".into());
    let req = run(&p, &mut cx, bearer("garbage")).expect("logical OR");
    assert!(req.headers().get("x-consumer-username").is_none());
    assert_eq!(cx.auth.credential.as_deref(), Some("other"));

    // Preflight passes untouched; with run_on_preflight (default) it is authenticated.
    let options = || request("OPTIONS", "/", &[]);
    let req = run(&p, &mut ctx(), options()).expect("preflight");
    assert!(req.headers().get("x-consumer-id").is_none());
    let strict = plugin(Config::DEFAULT);
    assert_eq!(message(run(&strict, &mut ctx(), options())), "Unauthorized");
}

#[test]
fn environment_secrets_and_startup_errors() {
    let var = "KILN_JWT_TEST_SECRET";
    // Only this test reads or sets this variable.
    std::env::set_var(var, "from-env");
    let env: &'static [JwtSecret] = Box::leak(Box::new([JwtSecret {
        key: "env",
        consumer: 0,
        algorithm: Algorithm::HS512,
        material: Material::HmacEnv(Secret::Env {
            var,
            json_key: None,
            reference: "{vault://env/kiln-jwt-test-secret}",
            origin: "kong.yml:1:1",
        }),
    }]));
    let p = Jwt::new(Config {
        consumers: &CONSUMERS,
        secrets: env,
        ..Config::DEFAULT
    })
    .expect("resolves");
    let token = mint(
        jsonwebtoken::Algorithm::HS512,
        &hs("from-env"),
        json!({"iss": "env"}),
    );
    assert!(run(&p, &mut ctx(), bearer(&token)).is_ok());

    // A missing variable stops start-up, naming it and the config location.
    let missing: &'static [JwtSecret] = Box::leak(Box::new([JwtSecret {
        material: Material::HmacEnv(Secret::Env {
            var: "KILN_JWT_TEST_SECRET_SURELY_UNSET",
            json_key: None,
            reference: "{vault://env/kiln-jwt-test-secret-surely-unset}",
            origin: "kong.yml:9:17",
        }),
        ..env[0]
    }]));
    let e = Jwt::new(Config {
        consumers: &CONSUMERS,
        secrets: missing,
        ..Config::DEFAULT
    })
    .expect_err("unset variable");
    assert!(
        e.0.contains("KILN_JWT_TEST_SECRET_SURELY_UNSET") && e.0.contains("kong.yml:9:17"),
        "{e}"
    );

    let bad_key: &'static [JwtSecret] = Box::leak(Box::new([public(
        "k",
        0,
        Algorithm::ES256,
        key!("ec384-public.pem"),
    )]));
    let e = Jwt::new(Config {
        consumers: &CONSUMERS,
        secrets: bad_key,
        ..Config::DEFAULT
    })
    .expect_err("P-384 key for ES256");
    assert!(e.0.contains("P-256"), "{e}");
}

#[test]
fn public_keys_are_checked_against_the_algorithm() {
    let ok = [
        (Algorithm::RS256, key!("rsa-public.pem")),
        (Algorithm::PS512, key!("rsa-public.pem")),
        (Algorithm::ES256, key!("ec256-public.pem")),
        (Algorithm::ES384, key!("ec384-public.pem")),
        (Algorithm::EdDSA, key!("ed25519-public.pem")),
    ];
    for (alg, pem) in ok {
        assert!(public_key(alg, pem).is_ok(), "{alg:?}");
    }
    let bad = [
        (Algorithm::RS256, key!("ec256-public.pem")),
        (Algorithm::RS256, key!("rsa1024-public.pem")),
        (Algorithm::ES256, key!("rsa-public.pem")),
        (Algorithm::ES384, key!("ec256-public.pem")),
        (Algorithm::EdDSA, key!("ec256-public.pem")),
        (
            Algorithm::RS256,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ),
        (Algorithm::HS256, key!("rsa-public.pem")),
    ];
    for (alg, pem) in bad {
        assert!(public_key(alg, pem).is_err(), "{alg:?} {pem}");
    }
}

/// A token of raw header and claims texts, signed with HS256 and `secret`.
fn raw_hs256(header: &str, claims: &str, secret: &str) -> String {
    let signed = format!("{}.{}", b64(header), b64(claims));
    let (mac, len) = HmacKey::new(HmacHash::Sha256, secret.as_bytes()).mac(signed.as_bytes());
    // `b64` takes text; the MAC is bytes.
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in mac[..len].chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    format!("{signed}.{out}")
}

#[test]
fn malformed_tokens_get_kong_messages() {
    let p = plugin(Config {
        claims_to_verify: &[Claim::Exp],
        ..Config::DEFAULT
    });
    let kid = plugin(Config {
        key_claim_name: "kid",
        ..Config::DEFAULT
    });
    let h = r#"{"alg":"HS256","typ":"JWT"}"#;
    let exp = NOW + 60;
    let good = format!(r#"{{"iss":"hs256","exp":{exp}}}"#);
    let signed = |header: &str, claims: &str| raw_hs256(header, claims, "alice-secret");
    let bad_json = "Bad token; invalid JSON";
    let cases: Vec<(&Jwt, String, Value)> = vec![
        (&p, signed(h, &good), json!("accepted")),
        // Escapes, spaces and non-ASCII are read by serde_json, with the same result.
        (
            &p,
            signed(
                h,
                &format!(r#"{{ "i\u0073s" : "hs\u0032\u0035\u0036", "exp": {exp}, "n": "é" }}"#),
            ),
            json!("accepted"),
        ),
        (
            &p,
            signed(h, &format!(r#"{{"iss":"hs256","exp":{exp}.5}}"#)),
            json!("accepted"),
        ),
        (
            &p,
            signed(h, &format!(r#"{{"iss":"hs256","exp":{exp}e0}}"#)),
            json!("accepted"),
        ),
        (
            &p,
            signed(
                h,
                &format!(r#"{{"iss":"nobody","iss":"hs256","exp":{exp}}}"#),
            ),
            json!("accepted"),
        ),
        // Bad base64 in each part.
        (
            &p,
            format!("{}.!!.{}", b64(h), b64("sig")),
            json!({"message": bad_json}),
        ),
        (
            &p,
            format!("*{}.{}.c2ln", b64(h), b64(&good)),
            json!({"message": bad_json}),
        ),
        (
            &p,
            format!("{}.{}.c2l!", b64(h), b64(&good)),
            json!({"message": "Bad token; invalid signature"}),
        ),
        // Bad JSON.
        (
            &p,
            signed(h, r#"{"iss":"hs256","#),
            json!({"message": bad_json}),
        ),
        (
            &p,
            signed(h, r#"{"iss":"hs256"} x"#),
            json!({"message": bad_json}),
        ),
        (
            &p,
            signed(h, r#"{"iss":"hs256","exp":1e400}"#),
            json!({"message": bad_json}),
        ),
        (
            &p,
            signed(h, r#"{"iss":"hs256","x":"\ud800"}"#),
            json!({"message": bad_json}),
        ),
        (
            &p,
            signed(r#"{"alg":"HS256""#, &good),
            json!({"message": bad_json}),
        ),
        // Bad JSON in the claims wins over a bad header.
        (&p, signed("[1]", "{"), json!({"message": bad_json})),
        (
            &p,
            signed("[1]", &good),
            json!({"message": "Bad token; invalid alg"}),
        ),
        (
            &p,
            signed(r#"{"alg":"HS256\u0000"}"#, &good),
            json!({"message": "Bad token; invalid alg"}),
        ),
        (
            &p,
            signed(h, "false"),
            json!({"message": "Bad token; invalid claims"}),
        ),
        (
            &p,
            signed(h, "17"),
            json!({"message": "Bad token; invalid claims"}),
        ),
        // Claims that are not numbers.
        (
            &p,
            signed(h, r#"{"iss":"hs256","exp":"soon"}"#),
            json!({"exp": "must be a number"}),
        ),
        (
            &p,
            signed(h, r#"{"iss":"hs256","exp":null}"#),
            json!({"exp": "must be a number"}),
        ),
        (
            &p,
            signed(h, r#"{"iss":"hs256"}"#),
            json!({"exp": "must be a number"}),
        ),
        // The key claim: missing, false, null, not a string, escaped.
        (
            &p,
            signed(h, &format!(r#"{{"exp":{exp}}}"#)),
            json!({"message": "No mandatory 'iss' in claims"}),
        ),
        (
            &p,
            signed(h, r#"{"iss":false}"#),
            json!({"message": "No mandatory 'iss' in claims"}),
        ),
        (
            &p,
            signed(h, r#"{"iss":null}"#),
            json!({"message": "No credentials found for given 'iss'"}),
        ),
        (
            &p,
            signed(h, r#"{"iss":["hs256"]}"#),
            json!({"message": "No credentials found for given 'iss'"}),
        ),
        (
            &p,
            signed(h, r#"{"iss":""}"#),
            json!({"message": "Invalid 'iss' in claims"}),
        ),
        // Claims that are an array or a string have no members: the header is looked at.
        (
            &kid,
            signed(r#"{"alg":"HS256","kid":"hs256"}"#, "[1]"),
            json!("accepted"),
        ),
        (
            &kid,
            signed(r#"{"alg":"HS256","kid":"hs256"}"#, r#""text""#),
            json!("accepted"),
        ),
        (
            &kid,
            signed(r#"{"alg":"HS256","kid":"hs256"}"#, r#"{"kid":false}"#),
            json!("accepted"),
        ),
        (
            &kid,
            signed(r#"{"alg":"HS256","kid":"hs256"}"#, r#"{"kid":"other"}"#),
            json!({"message": "No credentials found for given 'kid'"}),
        ),
        (
            &kid,
            signed(r#"{"alg":"HS256","kid":false}"#, "{}"),
            json!({"message": "No mandatory 'kid' in claims"}),
        ),
    ];
    for (plugin, token, want) in cases {
        let got = match run(plugin, &mut ctx(), bearer(&token)) {
            Ok(_) => json!("accepted"),
            Err((v, _)) => v,
        };
        assert_eq!(got, want, "{token}");
    }
}

#[test]
fn few_secrets_are_found_by_scanning() {
    let few = Jwt::new(Config {
        consumers: &CONSUMERS,
        secrets: &secrets()[..3],
        ..Config::DEFAULT
    })
    .expect("valid config")
    .with_clock(now);
    let hs256 = |iss: &str| {
        mint(
            jsonwebtoken::Algorithm::HS256,
            &hs("alice-secret"),
            json!({ "iss": iss }),
        )
    };
    assert!(run(&few, &mut ctx(), bearer(&hs256("hs256"))).is_ok());
    assert_eq!(
        message(run(&few, &mut ctx(), bearer(&hs256("b64")))),
        "No credentials found for given 'iss'"
    );
    assert_eq!(
        message(run(&few, &mut ctx(), bearer(&hs256("hs384")))),
        "Invalid algorithm"
    );
}

/// The clock of `cached_tokens_are_checked_against_the_clock_again`.
static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(NOW);

fn moving_clock() -> u64 {
    CLOCK.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn cached_tokens_are_checked_against_the_clock_again() {
    let p = plugin(Config {
        claims_to_verify: &[Claim::Exp, Claim::Nbf],
        maximum_expiration: 10,
        ..Config::DEFAULT
    })
    .with_clock(moving_clock);
    let n = NOW as i64;
    let token = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("alice-secret"),
        json!({"iss": "hs256", "exp": n + 10, "nbf": n - 5}),
    );
    assert_eq!(cache::lookup(p.cache_id, token.as_bytes()), None);
    for _ in 0..2 {
        let mut cx = ctx();
        let req = run(&p, &mut cx, bearer(&token)).expect("accepted");
        assert_eq!(req.headers()["x-consumer-username"], "alice");
        assert_eq!(req.headers()["x-credential-identifier"], "hs256");
        assert_eq!(cx.auth.credential.as_deref(), Some("hs256"));
        assert!(cache::lookup(p.cache_id, token.as_bytes()).is_some());
    }
    // A cached token is held to the clock as an uncached one is.
    CLOCK.store(NOW + 10, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        run(&p, &mut ctx(), bearer(&token)).err().map(|e| e.0),
        Some(json!({"exp": "token expired"}))
    );
    CLOCK.store(NOW - 200, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        run(&p, &mut ctx(), bearer(&token)).err().map(|e| e.0),
        Some(json!({"nbf": "token not valid yet"}))
    );
    CLOCK.store(NOW - 1, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        run(&p, &mut ctx(), bearer(&token)).err().map(|e| e.0),
        Some(json!({"exp": "exceeds maximum allowed expiration"}))
    );
    CLOCK.store(NOW, std::sync::atomic::Ordering::Relaxed);
    assert!(run(&p, &mut ctx(), bearer(&token)).is_ok());
}

#[test]
fn only_verified_tokens_are_cached_and_only_for_their_instance() {
    let p = plugin(Config::DEFAULT);
    let good = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("alice-secret"),
        json!({"iss": "hs256"}),
    );
    assert!(run(&p, &mut ctx(), bearer(&good)).is_ok());
    assert!(cache::lookup(p.cache_id, good.as_bytes()).is_some());

    // The same token with its first signature byte changed shares the cached token's slot
    // (the slot comes from the last bytes) and is still checked.
    let (signed, signature) = good.rsplit_once('.').expect("three parts");
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    let forged = format!("{signed}.{flipped}{}", &signature[1..]);
    assert_eq!(
        message(run(&p, &mut ctx(), bearer(&forged))),
        "Invalid signature"
    );
    assert_eq!(cache::lookup(p.cache_id, forged.as_bytes()), None);
    // A refused token is never stored, however often it is sent.
    let wrong = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("not-alice-secret"),
        json!({"iss": "hs256"}),
    );
    for _ in 0..2 {
        assert_eq!(
            message(run(&p, &mut ctx(), bearer(&wrong))),
            "Invalid signature"
        );
        assert_eq!(cache::lookup(p.cache_id, wrong.as_bytes()), None);
    }

    // Another instance whose `hs256` secret differs does not take the first one's verdict.
    let other = Jwt::new(Config {
        consumers: &CONSUMERS,
        secrets: Box::leak(Box::new([hmac("hs256", Algorithm::HS256, "bob-secret")])),
        ..Config::DEFAULT
    })
    .expect("valid config");
    assert_ne!(other.cache_id, p.cache_id);
    assert_eq!(
        message(run(&other, &mut ctx(), bearer(&good))),
        "Invalid signature"
    );
    assert!(run(&p, &mut ctx(), bearer(&good)).is_ok());
}

#[test]
fn cache_hits_with_many_secrets_and_with_anonymous() {
    // More than eight secrets: the key index instead of the scan.
    const KEYS: [&str; 10] = ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"];
    let many: &'static [JwtSecret] = Box::leak(
        KEYS.iter()
            .map(|k| hmac(k, Algorithm::HS256, &format!("secret-of-{k}")))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    let p = Jwt::new(Config {
        consumers: &CONSUMERS,
        secrets: many,
        anonymous: Some(2),
        ..Config::DEFAULT
    })
    .expect("valid config")
    .with_clock(now);
    let token = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("secret-of-k7"),
        json!({"iss": "k7"}),
    );
    for round in 0..2 {
        let mut cx = ctx();
        let req = run(&p, &mut cx, bearer(&token)).expect("accepted");
        assert_eq!(
            req.headers()["x-credential-identifier"],
            "k7",
            "round {round}"
        );
        assert_eq!(req.headers()["x-consumer-username"], "alice");
        assert!(req.headers().get("x-anonymous-consumer").is_none());
        assert!(cache::lookup(p.cache_id, token.as_bytes()).is_some());
    }
    // A token signed with another secret of the set is refused, so it continues as the
    // anonymous consumer, and is not stored.
    let other = mint(
        jsonwebtoken::Algorithm::HS256,
        &hs("secret-of-k6"),
        json!({"iss": "k7"}),
    );
    let req = run(&p, &mut ctx(), bearer(&other)).expect("anonymous");
    assert_eq!(req.headers()["x-consumer-username"], "anon");
    assert_eq!(req.headers()["x-anonymous-consumer"], "true");
    assert_eq!(cache::lookup(p.cache_id, other.as_bytes()), None);
}
