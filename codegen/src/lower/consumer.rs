//! Consumers and their credentials (kong-compat.md §1.6), nested or top-level.

use super::{ConsumerDraft, Credential, CredentialDraft, Cx, Parent, PluginParent};
use crate::diag::Diagnostic;
use crate::ir;
use crate::syntax::record::{Record, Sp};
use crate::syntax::Node;

/// The credential entities Kiln reads (each also nestable in a consumer).
pub(crate) const CREDENTIAL_KINDS: [&str; 4] = [
    "keyauth_credentials",
    "basicauth_credentials",
    "jwt_secrets",
    "acls",
];

const JWT_ALGORITHMS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

impl Cx {
    pub(crate) fn lower_consumer(&mut self, node: &Node) {
        let Some(mut r) = Record::new(node, "consumer", &mut self.d) else {
            return;
        };
        let id = self.explicit_id(&mut r);
        self.tags(&mut r);
        let username = r.str("username", &mut self.d);
        let custom_id = r.str("custom_id", &mut self.d);
        if username.is_none() && custom_id.is_none() {
            self.d.push(
                Diagnostic::error(
                    "K0500",
                    r.span,
                    "consumer must have a `username` or a `custom_id`",
                )
                .label("neither is set")
                .help("add `username: <name>`"),
            );
        }
        let index = self.consumers.len();
        self.consumers.push(ConsumerDraft {
            ir: ir::Consumer {
                id: String::new(),
                username: username.as_ref().map(|u| u.value.clone()),
                custom_id: custom_id.as_ref().map(|u| u.value.clone()),
                keyauth_credentials: Vec::new(),
                basicauth_credentials: Vec::new(),
                jwt_secrets: Vec::new(),
                acls: Vec::new(),
                origin: r.span,
            },
            id,
            username,
            custom_id,
        });
        for kind in CREDENTIAL_KINDS {
            if let Some(items) = r.seq(kind, &mut self.d) {
                for item in items {
                    self.lower_credential(kind, item, Some(index));
                }
            }
        }
        for kind in ["hmacauth_credentials", "oauth2_credentials"] {
            let why = if kind.starts_with("hmac") {
                "the hmac-auth plugin is not implemented yet"
            } else {
                "the oauth2 plugin is not implemented yet"
            };
            self.unsupported_entity(&mut r, kind, why);
        }
        if let Some(items) = r.seq("plugins", &mut self.d) {
            for item in items {
                self.lower_plugin(item, PluginParent::Consumer(index));
            }
        }
        r.finish(&mut self.d);
    }

    pub(crate) fn lower_credential(
        &mut self,
        kind: &'static str,
        node: &Node,
        consumer: Option<usize>,
    ) {
        let what = match kind {
            "keyauth_credentials" => "key-auth credential",
            "basicauth_credentials" => "basic-auth credential",
            "jwt_secrets" => "jwt secret",
            _ => "acl",
        };
        let Some(mut r) = Record::new(node, what, &mut self.d) else {
            return;
        };
        let id = self.explicit_id(&mut r).map(|i| i.value);
        self.tags(&mut r);
        let parent = match consumer {
            Some(i) => {
                self.foreign(&mut r, "consumer", Some("consumer"));
                Parent::Nested(i)
            }
            None => {
                let p = self.foreign(&mut r, "consumer", None);
                if p == Parent::None {
                    let d = r.missing("consumer");
                    self.d.push(d.help(format!("add `consumer: <username>`, or write this {what} inside its consumer's `{kind}`")));
                }
                p
            }
        };
        let d = &mut self.d;
        let origin = r.span;
        let cred = match kind {
            "keyauth_credentials" => {
                let key = required_generated(&mut r, "key", what, d);
                if let Some(ttl) = r.int("ttl", 0, 100_000_000, d) {
                    d.push(
                        Diagnostic::warning("K0504", ttl.span, "`ttl` has no effect in a declarative config")
                            .label("ignored")
                            .help("remove `ttl`; Kong expires credentials only when they are stored in a database"),
                    );
                }
                key.and_then(|k| {
                    let value = super::secret::lower_secret(&k, d)?;
                    Some(Credential::KeyAuth(
                        ir::KeyAuthCredential {
                            id,
                            key: value,
                            origin,
                        },
                        k,
                    ))
                })
            }
            "basicauth_credentials" => {
                let username = r.req_str("username", d);
                let password = r.req_str("password", d);
                let password = password.and_then(|p| super::secret::lower_secret(&p, d));
                match (username, password) {
                    (Some(u), Some(p)) => Some(Credential::BasicAuth(
                        ir::BasicAuthCredential {
                            id,
                            username: u.value.clone(),
                            password: p,
                            password_is_hashed: !self.transform,
                            origin,
                        },
                        u,
                    )),
                    _ => None,
                }
            }
            "jwt_secrets" => {
                let key = required_generated(&mut r, "key", what, d);
                let algorithm = r.one_of("algorithm", JWT_ALGORITHMS, d);
                let alg = algorithm.as_ref().map_or("HS256", |a| a.value);
                let written_secret = r.str("secret", d);
                let has_secret = written_secret.is_some();
                let secret = written_secret.and_then(|s| super::secret::lower_secret(&s, d));
                let rsa = r.str("rsa_public_key", d);
                let runtime_alg = kiln_runtime::plugins::jwt::Algorithm::from_name(alg);
                if let (Some(a), None) = (&algorithm, runtime_alg) {
                    d.push(
                        Diagnostic::error("K0507", a.span, format!("algorithm {alg} is not supported by Kiln"))
                            .label("not supported")
                            .help("use ES256 or ES384 (or RS*/PS*/EdDSA); the crypto library Kiln uses has no ES512"),
                    );
                }
                let needs_pem = !alg.starts_with("HS");
                if let Some(k) = &rsa {
                    if !looks_like_pem_public_key(&k.value) {
                        d.push(
                            Diagnostic::error("K0505", k.span, "`rsa_public_key` is not a PEM public key")
                                .label("expected -----BEGIN PUBLIC KEY-----")
                                .help("paste the PEM public key (`-----BEGIN PUBLIC KEY-----` ... `-----END PUBLIC KEY-----`) as a block scalar: `rsa_public_key: |`"),
                        );
                    } else if let (true, Some(a)) = (needs_pem, runtime_alg) {
                        if let Err(why) = kiln_runtime::plugins::jwt::public_key(a, &k.value) {
                            d.push(
                                Diagnostic::error("K0506", k.span, format!("`rsa_public_key` cannot verify {alg} tokens: {why}"))
                                    .label(format!("not a key for {alg}"))
                                    .help("give the public key that matches the algorithm (RS*/PS*: RSA 2048-8192 bits, ES256: P-256, ES384: P-384, EdDSA: Ed25519), or change `algorithm`"),
                            );
                        }
                    }
                }
                // Kong ignores the field the algorithm does not use: say so.
                let unused = if needs_pem {
                    r.key_span("secret")
                        .filter(|_| has_secret)
                        .map(|s| (s, "secret"))
                } else {
                    rsa.as_ref().map(|k| (k.span, "rsa_public_key"))
                };
                if let Some((span, field)) = unused {
                    d.push(
                        Diagnostic::warning("K0508", span, format!("`{field}` is not used by algorithm {alg}"))
                            .label("ignored, as Kong ignores it")
                            .help(if needs_pem {
                                "RS*/PS*/ES*/EdDSA secrets verify with `rsa_public_key`; remove `secret`"
                            } else {
                                "HS* secrets verify with `secret`; remove `rsa_public_key` or change `algorithm`"
                            }),
                    );
                }
                if alg.starts_with("HS") && !has_secret {
                    d.push(
                        Diagnostic::error("K0503", origin, format!("jwt secret with algorithm {alg} needs `secret`"))
                            .label("no `secret`")
                            .help("Kong would generate a random secret, which a compiled gateway cannot share with clients; write `secret: ...` or `secret: \"{vault://env/NAME}\"`"),
                    );
                }
                if needs_pem && rsa.is_none() {
                    d.push(
                        Diagnostic::error(
                            "K0502",
                            algorithm.as_ref().map_or(origin, |a| a.span),
                            format!("algorithm {alg} requires `rsa_public_key`"),
                        )
                        .label("no public key")
                        .help("add `rsa_public_key: |` with the PEM public key"),
                    );
                }
                key.map(|k| {
                    Credential::Jwt(
                        ir::JwtSecret {
                            id,
                            key: k.value.clone(),
                            secret,
                            rsa_public_key: rsa.map(|s| s.value),
                            algorithm: alg.to_owned(),
                            origin,
                        },
                        k,
                    )
                })
            }
            _ => {
                let group = r
                    .req_str("group", d)
                    .filter(|g| super::plugin::acl::check_group(g, d));
                group.map(|g| {
                    Credential::Acl(
                        ir::AclGroup {
                            id,
                            group: g.value.clone(),
                            origin,
                        },
                        g,
                    )
                })
            }
        };
        r.finish(d);
        if let Some(cred) = cred {
            self.credentials.push(CredentialDraft {
                cred,
                consumer: parent,
            });
        }
    }
}

/// A field Kong fills with a random value when absent (`key`): Kiln requires it, since a
/// random value chosen at build time could not be known to clients.
fn required_generated(
    r: &mut Record,
    field: &'static str,
    what: &str,
    d: &mut crate::diag::Diagnostics,
) -> Option<Sp<String>> {
    if r.raw(field).is_none() {
        d.push(
            Diagnostic::error("K0503", r.span, format!("{what} needs `{field}`"))
                .label(format!("no `{field}`"))
                .help(format!(
                    "Kong would generate a random `{field}`; write it explicitly"
                )),
        );
        return None;
    }
    r.str(field, d)
}

/// A structural check (markers and base64 body); the key itself is parsed by the runtime's
/// crypto library when the gateway starts.
fn looks_like_pem_public_key(pem: &str) -> bool {
    let pem = pem.trim();
    let Some(rest) = pem.strip_prefix("-----BEGIN ") else {
        return false;
    };
    let Some((label, rest)) = rest.split_once("-----") else {
        return false;
    };
    if !label.ends_with("PUBLIC KEY") {
        return false;
    }
    let Some(body) = rest.strip_suffix(&format!("-----END {label}-----")) else {
        return false;
    };
    let body: String = body.split_whitespace().collect();
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
}
