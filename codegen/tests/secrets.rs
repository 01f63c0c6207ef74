//! Credentials never reach generated code in clear text: key-auth keys and basic-auth
//! passwords appear only as salted digests (the compiled binary is checked the same way by
//! the slower kiln-tests binary tests once they build such a config).

use kiln_codegen::{diag::SourceFile, write};

#[test]
fn generated_code_holds_digests_not_credentials() {
    let text = "_format_version: \"3.0\"\n\
services:\n- name: s\n  url: http://s.internal\n  plugins:\n  - name: key-auth\n  - name: basic-auth\n  routes:\n  - paths: [/]\n\
consumers:\n- username: alice\n  keyauth_credentials:\n  - key: k3y-Alice-0001\n  - key: \"{vault://env/alice-key}\"\n  basicauth_credentials:\n  - username: alice\n    password: pa55-Alice-0002\n";
    let file = SourceFile {
        name: "kong.yml".into(),
        text: text.into(),
    };
    let out = write::generate(&file).expect("valid config").gateway_rs;
    for secret in ["k3y-Alice-0001", "pa55-Alice-0002"] {
        assert!(!out.contains(secret), "{secret} is in the generated code");
    }
    assert!(out.contains("rt::Credential::Digest(["), "{out}");
    assert!(out.contains("var: \"ALICE_KEY\""), "{out}");
    // The username is not a secret; it is the basic-auth lookup key.
    assert!(out.contains("username: \"alice\""));
}
