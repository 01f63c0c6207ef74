//! jwt HMAC secrets reach generated code only as midstates: neither the secret, nor its
//! base64url decoding, nor any of its bytes as a Rust byte/string literal appear.

use kiln_codegen::{diag::SourceFile, write};
use kiln_runtime::plugins::jwt::{HmacHash, HmacKey};

const SECRETS: &[&str] = &[
    "a-rather-long-hs256-secret-value",
    "hs384-secret-Zq9",
    "c2VjcmV0LWJ5dGVzLWZvci1oczUxMg",
];

#[test]
fn hmac_secrets_are_not_in_generated_code() {
    let file = SourceFile {
        name: "kong.yml".into(),
        text: format!(
            "_format_version: \"3.0\"\n\
             services:\n- name: s\n  url: http://up.test\n  routes:\n  - paths: [/a]\n    plugins:\n    - name: jwt\n  - paths: [/b]\n    plugins:\n    - name: jwt\n      config: {{secret_is_base64: true}}\n\
             consumers:\n- username: alice\n  jwt_secrets:\n\
             \x20 - {{key: k1, secret: {}}}\n\
             \x20 - {{key: k2, algorithm: HS384, secret: {}}}\n\
             \x20 - {{key: k3, algorithm: HS512, secret: {}}}\n\
             \x20 - {{key: k4, secret: \"{{vault://env/jwt-secret}}\"}}\n",
            SECRETS[0], SECRETS[1], SECRETS[2]
        ),
    };
    let compiled = write::generate(&file).unwrap_or_else(|d| panic!("{}", d.render(&file)));
    let code = &compiled.gateway_rs;
    for s in SECRETS {
        assert!(!code.contains(s), "secret {s} in generated code");
    }
    assert!(
        !code.contains("secret-bytes-for-hs512"),
        "decoded secret in generated code"
    );
    assert!(code.contains("HmacKey::Sha256"), "{code}");
    assert!(code.contains("HmacKey::Sha384") && code.contains("HmacKey::Sha512"));
    assert!(code.contains("HmacEnv") && code.contains("\"JWT_SECRET\""));
    // The midstate words of the first secret are what was written.
    let HmacKey::Sha256 { inner, .. } = HmacKey::new(HmacHash::Sha256, SECRETS[0].as_bytes())
    else {
        panic!("sha256 key");
    };
    for w in inner {
        assert!(
            code.contains(&w.to_string()),
            "inner state word {w} not found"
        );
    }
}
