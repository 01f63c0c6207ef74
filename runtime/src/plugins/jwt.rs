//! Kong's `jwt` plugin (kong-compat.md §4.2): authenticates a request by a JSON Web Token
//! signed with a consumer's `jwt_secrets` entry.
//!
//! The token comes from the query (`uri_param_names`), cookies (`cookie_names`) or headers
//! (`header_names`, `Bearer <token>`); its `key_claim_name` claim (or header field) names
//! the secret; the secret's `algorithm` must be the token's `alg` (the credential pins the
//! algorithm: no `none`, no HMAC with an RSA key); the signature is checked, then `exp`/`nbf`
//! when configured. Errors are Kong's compact JSON bodies with `WWW-Authenticate`.
//!
//! Secrets arrive as the compiler wrote them: HMAC keys as precomputed midstates
//! ([`HmacKey`]), never in clear text; public keys as PEM, parsed once here. Environment
//! references are read and turned into the same forms at start-up.
//!
//! ```
//! use kiln_runtime::plugins::jwt::{Algorithm, Config, HmacHash, HmacKey, Jwt, JwtSecret, Material};
//! use kiln_runtime::consumer::ConsumerSpec;
//!
//! static CONSUMERS: [ConsumerSpec; 1] = [ConsumerSpec {
//!     id: "8b6b4fa4-5b0e-5c4e-9c43-2a6a5a1c1f10", username: Some("alice"), custom_id: None, groups: &[],
//! }];
//! // The compiler computes this with `HmacKey::new` and writes the resulting numbers.
//! let key = HmacKey::new(HmacHash::Sha256, b"alice's secret");
//! let secrets: &'static [JwtSecret] = Box::leak(Box::new([JwtSecret {
//!     key: "alice-iss", consumer: 0, algorithm: Algorithm::HS256,
//!     material: Material::Hmac { key, base64url: None },
//! }]));
//! let plugin = Jwt::new(Config { consumers: &CONSUMERS, secrets, ..Config::DEFAULT }).expect("valid");
//! # let _ = plugin;
//! ```

mod cache;
mod fields;
mod hmac;
mod token;

use std::{collections::HashMap, future::Future, ops::ControlFlow};

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method};
use serde_json::{Map, Value};

use fields::Field;

pub use hmac::{HmacHash, HmacKey};
pub use token::base64url_decode;

use crate::{
    consumer::{self, ConsumerSpec},
    ctx::Ctx,
    gateway::StartupError,
    plugin::Plugin,
    response,
    secret::{self, Secret},
    Request, Response,
};

/// A jwt secret's algorithm (Kong's `jwt_secrets.algorithm`; ES512 is not supported).
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
    RS256,
    RS384,
    RS512,
    ES256,
    ES384,
    PS256,
    PS384,
    PS512,
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::EdDSA,
    ];

    /// The name in a token's `alg` and in Kong's config.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The hash of an HS* algorithm.
    pub fn hmac(self) -> Option<HmacHash> {
        match self {
            Algorithm::HS256 => Some(HmacHash::Sha256),
            Algorithm::HS384 => Some(HmacHash::Sha384),
            Algorithm::HS512 => Some(HmacHash::Sha512),
            _ => None,
        }
    }

    fn verification(self) -> Option<&'static dyn VerificationAlgorithm> {
        Some(match self {
            Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA => &sig::ED25519,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => return None,
        })
    }
}

/// Parses a PEM public key for `alg` (jsonwebtoken reads the PEM and checks the key family,
/// aws-lc parses and checks the key itself: curve, RSA size, Ed25519). The compiler calls this
/// to reject a bad key at build time; the gateway calls it once at start-up.
pub fn public_key(alg: Algorithm, pem: &str) -> Result<ParsedPublicKey, String> {
    use jsonwebtoken::{DecodingKey, DecodingKeyKind};
    let Some(verification) = alg.verification() else {
        return Err(format!("{} uses `secret`, not a public key", alg.as_str()));
    };
    let (decoded, family) = match alg {
        Algorithm::ES256 | Algorithm::ES384 => (DecodingKey::from_ec_pem(pem.as_bytes()), "an EC"),
        Algorithm::EdDSA => (DecodingKey::from_ed_pem(pem.as_bytes()), "an Ed25519"),
        _ => (DecodingKey::from_rsa_pem(pem.as_bytes()), "an RSA"),
    };
    let decoded = decoded.map_err(|_| format!("not {family} public key in PEM format"))?;
    let der = match decoded.kind() {
        DecodingKeyKind::SecretOrDer(der) => der,
        DecodingKeyKind::RsaModulusExponent { .. } => {
            return Err(format!("not {family} public key in PEM format"))
        }
    };
    let rsa = matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    );
    if rsa {
        // aws-lc checks the size only when verifying: refuse a small key now.
        match rsa_modulus_bits(der) {
            Some(bits) if (2048..=8192).contains(&bits) => {}
            Some(bits) => {
                return Err(format!(
                    "{} needs an RSA key of 2048 to 8192 bits, not {bits}",
                    alg.as_str()
                ))
            }
            None => return Err(format!("not {family} public key in PEM format")),
        }
    }
    ParsedPublicKey::new(verification, der).map_err(|e| {
        let why = match alg {
            Algorithm::ES256 => "a P-256 key",
            Algorithm::ES384 => "a P-384 key",
            Algorithm::EdDSA => "an Ed25519 key",
            _ => "an RSA key of 2048 to 8192 bits",
        };
        format!("{} needs {why} ({e})", alg.as_str())
    })
}

/// The modulus size of a PKCS#1 `RSAPublicKey` (`SEQUENCE { INTEGER n, INTEGER e }`, DER).
fn rsa_modulus_bits(der: &[u8]) -> Option<usize> {
    /// One DER header: (tag, content start, content length).
    fn header(b: &[u8], at: usize) -> Option<(u8, usize, usize)> {
        let tag = *b.get(at)?;
        let first = *b.get(at + 1)?;
        if first < 0x80 {
            return Some((tag, at + 2, usize::from(first)));
        }
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len = b
            .get(at + 2..at + 2 + n)?
            .iter()
            .fold(0usize, |acc, &x| acc << 8 | usize::from(x));
        Some((tag, at + 2 + n, len))
    }
    let (0x30, seq, _) = header(der, 0)? else {
        return None;
    };
    let (0x02, start, len) = header(der, seq)? else {
        return None;
    };
    let n = der.get(start..start + len)?;
    let n = &n[n.iter().take_while(|&&b| b == 0).count()..];
    let top = *n.first()?;
    Some((n.len() - 1) * 8 + (8 - top.leading_zeros() as usize))
}

/// An HMAC secret under `secret_is_base64: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Key {
    /// The secret is not base64url: Kong answers `Invalid key/secret`.
    Invalid,
    /// Midstates of the decoded secret.
    Key(HmacKey),
}

/// How a secret's key reaches the gateway.
// Static data written by the compiler, read once at start-up: size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    /// HS*: midstates of the secret as written, and of its base64url decoding (`None`
    /// when no jwt plugin of the config has `secret_is_base64`).
    Hmac {
        key: HmacKey,
        base64url: Option<Base64Key>,
    },
    /// HS*: a `{vault://env/...}` secret, read at start-up.
    HmacEnv(Secret),
    /// RS*/PS*/ES*/EdDSA: the PEM public key (`rsa_public_key`).
    PublicKey(&'static str),
}

/// One `jwt_secrets` entry, as the compiler wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwtSecret {
    /// `key`: what the token's key claim must equal; `X-Credential-Identifier`.
    pub key: &'static str,
    /// Index of its consumer in the consumers table.
    pub consumer: u32,
    pub algorithm: Algorithm,
    pub material: Material,
}

/// A registered claim `claims_to_verify` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Exp,
    Nbf,
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub uri_param_names: &'static [&'static str],
    pub cookie_names: &'static [&'static str],
    pub header_names: &'static [&'static str],
    pub claims_to_verify: &'static [Claim],
    pub key_claim_name: &'static str,
    pub secret_is_base64: bool,
    /// Seconds; 0 = no limit.
    pub maximum_expiration: u32,
    /// Index of the anonymous consumer (resolved at build time).
    pub anonymous: Option<u32>,
    pub run_on_preflight: bool,
    pub realm: Option<&'static str>,
    pub consumers: &'static [ConsumerSpec],
    pub secrets: &'static [JwtSecret],
}

impl Config {
    /// Kong's defaults, no consumers and no secrets.
    pub const DEFAULT: Config = Config {
        uri_param_names: &["jwt"],
        cookie_names: &[],
        header_names: &["authorization"],
        claims_to_verify: &[],
        key_claim_name: "iss",
        secret_is_base64: false,
        maximum_expiration: 0,
        anonymous: None,
        run_on_preflight: true,
        realm: None,
        consumers: &[],
        secrets: &[],
    };
}

/// How one secret verifies signatures.
enum Check {
    Hmac(HmacKey),
    Public(ParsedPublicKey),
    /// Kong's `Invalid key/secret`.
    Invalid,
}

struct Verifier {
    key: &'static str,
    /// `key` as the `X-Credential-Identifier` value.
    key_value: Option<HeaderValue>,
    consumer: u32,
    algorithm: Algorithm,
    check: Check,
}

/// A refusal: the body and whether it is the "no token" case (plain `WWW-Authenticate`).
struct Refusal {
    body: Bytes,
    no_token: bool,
}

/// The `jwt` plugin.
pub struct Jwt {
    uri_param_names: &'static [&'static str],
    cookie_names: &'static [&'static str],
    header_names: Vec<HeaderName>,
    claims_to_verify: Vec<Claim>,
    key_claim_name: &'static str,
    maximum_expiration: u32,
    anonymous: Option<u32>,
    run_on_preflight: bool,
    consumers: &'static [ConsumerSpec],
    /// Common token headers of the secrets' algorithms, recognised without decoding.
    known_headers: Vec<token::KnownHeader>,
    /// The consumers' upstream header values, indexed as `consumers`.
    consumer_headers: Vec<consumer::ConsumerHeaders>,
    by_key: HashMap<&'static str, usize>,
    verifiers: Vec<Verifier>,
    www_authenticate: HeaderValue,
    www_authenticate_error: HeaderValue,
    /// Pre-rendered bodies of the fixed messages.
    bodies: Bodies,
    now: fn() -> u64,
    /// This instance's key in the worker threads' caches of verified tokens.
    cache_id: u64,
}

struct Bodies {
    unauthorized: Bytes,
    multiple: Bytes,
    unrecognizable: Bytes,
    no_mandatory: Bytes,
    invalid_claim: Bytes,
    no_credentials: Bytes,
    invalid_algorithm: Bytes,
    invalid_key: Bytes,
    invalid_signature: Bytes,
    bad: [Bytes; 4],
}

fn body(message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "message": message }).to_string())
}

/// Seconds since the Unix epoch (Kong's `ngx.time()`).
pub fn unix_now() -> u64 {
    crate::clock::unix_time().as_secs()
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("key_claim_name", &self.key_claim_name)
            .field("secrets", &self.verifiers.len())
            .finish_non_exhaustive()
    }
}

impl Jwt {
    /// Resolves environment secrets, parses public keys and builds the key index.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let err = |msg: String| StartupError(format!("jwt: {msg}"));
        let mut header_names = Vec::with_capacity(config.header_names.len());
        for name in config.header_names {
            let normalized = name.to_ascii_lowercase().replace('_', "-");
            let h = HeaderName::from_bytes(normalized.as_bytes())
                .map_err(|_| err(format!("invalid header name {name:?} in header_names")))?;
            header_names.push(h);
        }
        let (base, with_error) = match config.realm {
            Some(r) => (
                format!("Bearer realm=\"{r}\""),
                format!("Bearer realm=\"{r}\", error=\"invalid_token\""),
            ),
            None => (
                "Bearer".to_owned(),
                "Bearer error=\"invalid_token\"".to_owned(),
            ),
        };
        let header = |v: String| {
            HeaderValue::from_str(&v)
                .map_err(|_| err(format!("realm cannot be sent in a header: {v:?}")))
        };
        let mut verifiers = Vec::with_capacity(config.secrets.len());
        let mut by_key = HashMap::with_capacity(config.secrets.len());
        for (i, s) in config.secrets.iter().enumerate() {
            let what = || format!("jwt secret '{}'", s.key);
            if s.consumer as usize >= config.consumers.len() {
                return Err(err(format!("{} names no consumer", what())));
            }
            let check = match s.material {
                Material::Hmac { key, base64url } => {
                    let key = if config.secret_is_base64 {
                        match base64url {
                            Some(Base64Key::Key(k)) => Some(k),
                            Some(Base64Key::Invalid) => None,
                            None => return Err(err(format!("{}: decoded key missing", what()))),
                        }
                    } else {
                        Some(key)
                    };
                    match key {
                        Some(k) if Some(k.hash()) == s.algorithm.hmac() => Check::Hmac(k),
                        Some(_) => {
                            return Err(err(format!(
                                "{}: key does not match its algorithm",
                                what()
                            )))
                        }
                        None => Check::Invalid,
                    }
                }
                Material::HmacEnv(ref secret) => {
                    let hash = s.algorithm.hmac().ok_or_else(|| {
                        err(format!("{}: a secret for {}", what(), s.algorithm.as_str()))
                    })?;
                    let value = secret::resolve(secret)?;
                    let bytes = if config.secret_is_base64 {
                        base64url_decode(value.as_bytes())
                    } else {
                        Some(value.into_bytes())
                    };
                    match bytes {
                        Some(b) => Check::Hmac(HmacKey::new(hash, &b)),
                        None => Check::Invalid,
                    }
                }
                // Kong base64-decodes whatever key the secret uses; a PEM never decodes.
                Material::PublicKey(_) if config.secret_is_base64 => Check::Invalid,
                Material::PublicKey(pem) => Check::Public(
                    public_key(s.algorithm, pem).map_err(|e| err(format!("{}: {e}", what())))?,
                ),
            };
            if by_key.insert(s.key, i).is_some() {
                return Err(err(format!("{} is defined twice", what())));
            }
            verifiers.push(Verifier {
                key: s.key,
                key_value: consumer::static_value(s.key),
                consumer: s.consumer,
                algorithm: s.algorithm,
                check,
            });
        }
        crate::consumer::check_anonymous("jwt", config.anonymous, config.consumers)?;
        let mut claims_to_verify = config.claims_to_verify.to_vec();
        claims_to_verify.dedup();
        let name = config.key_claim_name;
        Ok(Jwt {
            uri_param_names: config.uri_param_names,
            cookie_names: config.cookie_names,
            header_names,
            claims_to_verify,
            key_claim_name: name,
            maximum_expiration: config.maximum_expiration,
            anonymous: config.anonymous,
            run_on_preflight: config.run_on_preflight,
            consumers: config.consumers,
            consumer_headers: consumer::ConsumerHeaders::for_all(config.consumers),
            known_headers: token::known_headers(
                config.secrets.iter().map(|s| s.algorithm.as_str()),
                name,
            ),
            by_key,
            verifiers,
            www_authenticate: header(base)?,
            www_authenticate_error: header(with_error)?,
            bodies: Bodies {
                unauthorized: body("Unauthorized"),
                multiple: body("Multiple tokens provided"),
                unrecognizable: body("Unrecognizable token"),
                no_mandatory: body(&format!("No mandatory '{name}' in claims")),
                invalid_claim: body(&format!("Invalid '{name}' in claims")),
                no_credentials: body(&format!("No credentials found for given '{name}'")),
                invalid_algorithm: body("Invalid algorithm"),
                invalid_key: body("Invalid key/secret"),
                invalid_signature: body("Invalid signature"),
                bad: [
                    token::BadToken::Json,
                    token::BadToken::Alg,
                    token::BadToken::Claims,
                    token::BadToken::Signature,
                ]
                .map(|b| body(b.message())),
            },
            now: unix_now,
            cache_id: cache::instance_id(),
        })
    }

    /// The index of the secret whose `key` is `key`: a scan when there are few (no
    /// hashing), else the index.
    fn verifier(&self, key: &str) -> Option<usize> {
        if self.verifiers.len() <= 8 {
            self.verifiers.iter().position(|v| v.key == key)
        } else {
            self.by_key.get(key).copied()
        }
    }

    /// Replaces the clock (seconds since the epoch) used for `exp`, `nbf` and
    /// `maximum_expiration`: for tests.
    pub fn with_clock(mut self, now: fn() -> u64) -> Self {
        self.now = now;
        self
    }

    fn refuse(&self, body: &Bytes) -> Refusal {
        Refusal {
            body: body.clone(),
            no_token: false,
        }
    }

    /// Kong's `do_authentication`: the accepted secret, or the refusal.
    fn authenticate(&self, req: &Request) -> Result<&Verifier, Refusal> {
        let b = &self.bodies;
        let found = token::find_tokens(
            req.uri().query(),
            req.headers(),
            self.uri_param_names,
            self.cookie_names,
            &self.header_names,
        );
        let raw = match found {
            token::Tokens::None => {
                return Err(Refusal {
                    body: b.unauthorized.clone(),
                    no_token: true,
                })
            }
            token::Tokens::One(token::Found::Token(t)) => t,
            token::Tokens::One(token::Found::Flag) => return Err(self.refuse(&b.unrecognizable)),
            token::Tokens::Several => return Err(self.refuse(&b.multiple)),
        };
        if let Some(hit) = cache::lookup(self.cache_id, &raw) {
            if let Some(secret) = self.verifiers.get(hit.verifier) {
                self.check_claims(hit.exp, hit.nbf)?;
                return Ok(secret);
            }
        }
        let mut scratch = token::Scratch::new();
        let jwt = token::decode(&raw, self.key_claim_name, &self.known_headers, &mut scratch)
            .map_err(|e| self.refuse(&b.bad[e as usize]))?;
        let key = if jwt.claims.key.present() {
            &jwt.claims.key
        } else if jwt.header_key.present() {
            &jwt.header_key
        } else {
            return Err(self.refuse(&b.no_mandatory));
        };
        let index = match key {
            Field::Str(s) if s.is_empty() => return Err(self.refuse(&b.invalid_claim)),
            Field::Str(s) => self.verifier(s),
            // Secret keys are strings: nothing else names one.
            _ => None,
        };
        let (index, secret) = index
            .and_then(|i| Some((i, self.verifiers.get(i)?)))
            .ok_or_else(|| self.refuse(&b.no_credentials))?;
        if jwt.alg != secret.algorithm.as_str() {
            return Err(self.refuse(&b.invalid_algorithm));
        }
        let valid = match &secret.check {
            Check::Invalid => return Err(self.refuse(&b.invalid_key)),
            Check::Hmac(k) => k.verify(jwt.signed, jwt.signature),
            Check::Public(k) => k.verify_sig(jwt.signed, jwt.signature).is_ok(),
        };
        if !valid {
            return Err(self.refuse(&b.invalid_signature));
        }
        let verified = cache::Verified {
            verifier: index,
            exp: jwt.claims.exp.as_f64(),
            nbf: jwt.claims.nbf.as_f64(),
        };
        cache::store(self.cache_id, &raw, verified);
        self.check_claims(verified.exp, verified.nbf)?;
        Ok(secret)
    }

    /// Kong's `verify_registered_claims` and `check_maximum_expiration`, on the token's
    /// `exp` and `nbf` as numbers (`None`: missing or not a number).
    fn check_claims(&self, exp: Option<f64>, nbf: Option<f64>) -> Result<(), Refusal> {
        let now = (self.now)() as f64;
        let mut errors = Map::new();
        for claim in &self.claims_to_verify {
            let (name, failed, value) = match claim {
                Claim::Exp => ("exp", "token expired", exp),
                Claim::Nbf => ("nbf", "token not valid yet", nbf),
            };
            let problem = match value {
                None => Some("must be a number"),
                Some(v) if *claim == Claim::Exp && v <= now => Some(failed),
                Some(v) if *claim == Claim::Nbf && v > now => Some(failed),
                Some(_) => None,
            };
            if let Some(p) = problem {
                errors.insert(name.to_owned(), Value::String(p.to_owned()));
            }
        }
        if errors.is_empty()
            && self.maximum_expiration > 0
            && exp.is_none_or(|e| e - now > f64::from(self.maximum_expiration))
        {
            errors.insert(
                "exp".to_owned(),
                Value::String("exceeds maximum allowed expiration".to_owned()),
            );
        }
        if !errors.is_empty() {
            return Err(Refusal {
                body: Bytes::from(Value::Object(errors).to_string()),
                no_token: false,
            });
        }
        Ok(())
    }

    fn access_now(&self, cx: &mut Ctx, req: &mut Request) -> ControlFlow<Response> {
        if !self.run_on_preflight && req.method() == Method::OPTIONS {
            return ControlFlow::Continue(());
        }
        if self.anonymous.is_some() && cx.auth.has_credential() {
            return ControlFlow::Continue(());
        }
        match self.authenticate(req) {
            Ok(v) => {
                consumer::authenticate_prepared(
                    cx,
                    req.headers_mut(),
                    v.consumer,
                    self.consumer_headers.get(v.consumer as usize),
                    v.key,
                    v.key_value.as_ref(),
                );
                ControlFlow::Continue(())
            }
            Err(_) if self.anonymous.is_some() => {
                if let Some(a) = self.anonymous {
                    consumer::authenticate(cx, req.headers_mut(), self.consumers, a, None, true);
                }
                ControlFlow::Continue(())
            }
            Err(refusal) => {
                cx.kong_generated = true;
                let mut resp = response::with_body(401, JSON, refusal.body);
                let www = if refusal.no_token {
                    &self.www_authenticate
                } else {
                    &self.www_authenticate_error
                };
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, www.clone());
                ControlFlow::Break(resp)
            }
        }
    }
}

impl Plugin for Jwt {
    const NAME: &'static str = "jwt";
    const PRIORITY: i32 = 1450;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        std::future::ready(self.access_now(cx, req))
    }
}

#[cfg(test)]
mod tests;
