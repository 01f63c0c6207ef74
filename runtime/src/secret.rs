//! Secrets: `{vault://env/NAME}` references resolved at start-up, salted credential digests
//! and constant-time comparison.
//!
//! A secret written literally in the config never reaches the binary in clear text where it
//! can be avoided: key-auth keys and basic-auth passwords are stored as [`digest`]s (salted
//! SHA-256, salt derived from the config hash), and compared in constant time. Values given as
//! vault references are read from the environment when the gateway starts; a missing
//! variable stops start-up with a message naming it and where the config used it.

use sha2::{Digest, Sha256};

use crate::StartupError;

/// A config value that may come from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// Written in the config (only for values that are not credentials, or already digested).
    Literal(&'static str),
    /// `{vault://env/...}`: the variable `var` (already prefixed, upper-cased, `-` → `_`);
    /// with `json_key`, the variable holds a JSON object and that string field is used.
    Env {
        var: &'static str,
        json_key: Option<&'static str>,
        /// The reference as written and where: for start-up errors.
        reference: &'static str,
        origin: &'static str,
    },
}

/// Reads a secret now. Errors name the variable and the config location.
pub fn resolve(s: &Secret) -> Result<String, StartupError> {
    match *s {
        Secret::Literal(v) => Ok(v.to_owned()),
        Secret::Env {
            var,
            json_key,
            reference,
            origin,
        } => {
            let value = std::env::var(var).map_err(|_| {
                StartupError(format!(
                    "environment variable {var} is not set (needed by {reference} at {origin})"
                ))
            })?;
            match json_key {
                None => Ok(value),
                Some(key) => {
                    let json: serde_json::Value = serde_json::from_str(&value).map_err(|_| {
                        StartupError(format!(
                            "environment variable {var} is not a JSON object (needed by {reference} at {origin})"
                        ))
                    })?;
                    json.get(key).and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(|| {
                        StartupError(format!(
                            "environment variable {var} has no string field '{key}' (needed by {reference} at {origin})"
                        ))
                    })
                }
            }
        }
    }
}

/// The salt for credential digests of one config: derived from the config's sha256 (hex),
/// so the same config always compiles to the same bytes.
pub fn salt_for(config_sha256: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"kiln credential digest v1\0");
    h.update(config_sha256.as_bytes());
    h.finalize().into()
}

/// Salted digest of a credential: `sha256(salt || len(secret) as u64 LE || secret)`.
pub fn digest(salt: &[u8; 32], secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update((secret.len() as u64).to_le_bytes());
    h.update(secret);
    h.finalize().into()
}

/// `a == b` in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the fold from being turned into an early-exit compare.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_depend_on_salt_and_secret() {
        let s1 = salt_for("aa");
        let s2 = salt_for("ab");
        assert_ne!(digest(&s1, b"key"), digest(&s2, b"key"));
        assert_ne!(digest(&s1, b"key"), digest(&s1, b"kez"));
        assert_eq!(digest(&s1, b"key"), digest(&s1, b"key"));
        assert_ne!(digest(&s1, b"ab"), digest(&s1, b"a\0b"));
    }

    #[test]
    fn constant_time_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn env_secrets_resolve_or_name_the_variable() {
        let s = Secret::Env {
            var: "KILN_TEST_SECRET_SURELY_UNSET",
            json_key: None,
            reference: "{vault://env/kiln-test-secret-surely-unset}",
            origin: "kong.yml:3:9",
        };
        let e = resolve(&s).expect_err("unset");
        assert!(
            e.0.contains("KILN_TEST_SECRET_SURELY_UNSET") && e.0.contains("kong.yml:3:9"),
            "{e}"
        );
        assert_eq!(resolve(&Secret::Literal("x")).expect("literal"), "x");
    }
}

/// A credential as generated code holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// [`digest`] of the clear text with the config's salt, computed at build time.
    Digest([u8; 32]),
    /// Read at start-up, then digested.
    Env(Secret),
}

impl Credential {
    /// The digest, resolving an environment reference first.
    pub fn digest(&self, salt: &[u8; 32]) -> Result<[u8; 32], StartupError> {
        match self {
            Credential::Digest(d) => Ok(*d),
            Credential::Env(s) => Ok(digest(salt, resolve(s)?.as_bytes())),
        }
    }
}
