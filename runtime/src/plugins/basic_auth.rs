//! Kong's `basic-auth` plugin (kong-compat.md §4.3): identifies the consumer by a username
//! and password in `Proxy-Authorization` or `Authorization`.
//!
//! Passwords never reach the binary in clear text: the compiler writes a salted digest of
//! each ([`crate::secret::digest`]), or a vault reference resolved and digested at start-up.
//! Credentials imported with `_transform: false` hold Kong's stored form,
//! `hex(sha1(password .. consumer_id))`; the request's password is hashed the same way and
//! its digest compared. Usernames are looked up in a hash map built at start-up; digests are
//! compared in constant time.
//!
//! ```
//! use kiln_runtime::consumer::ConsumerSpec;
//! use kiln_runtime::plugins::basic_auth::{BasicAuth, BasicCredential, Config, Password};
//! use kiln_runtime::secret::{digest, Credential};
//!
//! static CONSUMERS: [ConsumerSpec; 1] = [ConsumerSpec {
//!     id: "5a1f4e4e-7a3c-5b8e-9f77-3f3ad2b8a001",
//!     username: Some("alice"),
//!     custom_id: None,
//!     groups: &[],
//! }];
//! const SALT: [u8; 32] = [7; 32];
//! let creds: &'static [BasicCredential] = Box::leak(Box::new([BasicCredential {
//!     username: "alice",
//!     password: Password::Plain(Credential::Digest(digest(&SALT, b"wonderland"))),
//!     consumer: 0,
//! }]));
//! let plugin = BasicAuth::new(Config {
//!     consumers: &CONSUMERS,
//!     credentials: creds,
//!     salt: SALT,
//!     ..Config::DEFAULT
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

use std::{collections::HashMap, future::Future, ops::ControlFlow};

use http::{header, HeaderName, HeaderValue};

use crate::{
    consumer::{self, ConsumerSpec},
    ctx::Ctx,
    gateway::StartupError,
    plugin::Plugin,
    response,
    secret::{ct_eq, digest, Credential},
    Request, Response,
};

/// How a password is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Password {
    /// The clear-text password (as a digest): compared with the request's password.
    Plain(Credential),
    /// Kong's stored form `hex(sha1(password .. consumer_id))` (as a digest): the request's
    /// password is hashed that way first (`_transform: false` imports).
    KongSha1(Credential),
}

/// One basic-auth credential, as the compiler wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasicCredential {
    /// Also `X-Credential-Identifier`.
    pub username: &'static str,
    pub password: Password,
    /// Index of its consumer in [`Config::consumers`].
    pub consumer: u32,
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Consumer used when authentication fails ("logical OR"); default none.
    pub anonymous: Option<u32>,
    /// Remove the credentials' header(s) before proxying (default false).
    pub hide_credentials: bool,
    /// `WWW-Authenticate: Basic realm="<realm>"` (default `service`).
    pub realm: &'static str,
    /// The gateway's consumers.
    pub consumers: &'static [ConsumerSpec],
    /// Every basic-auth credential of the config.
    pub credentials: &'static [BasicCredential],
    /// The config's digest salt ([`crate::secret::salt_for`]).
    pub salt: [u8; 32],
}

impl Config {
    /// Kong's defaults, no consumers and no credentials.
    pub const DEFAULT: Config = Config {
        anonymous: None,
        hide_credentials: false,
        realm: "service",
        consumers: &[],
        credentials: &[],
        salt: [0; 32],
    };
}

#[derive(Debug, Clone, Copy)]
struct Stored {
    digest: [u8; 32],
    kong_sha1: bool,
    consumer: u32,
}

/// The `basic-auth` plugin.
#[derive(Debug)]
pub struct BasicAuth {
    anonymous: Option<u32>,
    hide_credentials: bool,
    www_authenticate: HeaderValue,
    consumers: &'static [ConsumerSpec],
    by_username: HashMap<&'static [u8], (Stored, &'static str)>,
    salt: [u8; 32],
}

/// nginx's `ngx.decode_base64`: the standard alphabet, decoding stops at the first `=`
/// (what follows is ignored), padding optional, trailing bits ignored; any other byte, or
/// a length of 4n+1, fails.
pub fn decode_base64(s: &[u8]) -> Option<Vec<u8>> {
    fn val(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let end = s.iter().position(|&b| b == b'=').unwrap_or(s.len());
    let s = &s[..end];
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3 + 2);
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= val(b)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

/// Kong's `retrieve_credentials` on one header value: the first `Basic`/`basic` (the regex
/// `\s*[Bb]asic\s*(.+)` is not anchored), whitespace, the base64 rest, decoded and split
/// like `([^:]+):(.*)` (first non-`:` run before a `:`; the password ends at a newline).
pub fn parse_basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let at = value
        .windows(5)
        .position(|w| w == b"Basic" || w == b"basic")?;
    let rest = &value[at + 5..];
    let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
    // `\s*` gives one character back when nothing else is left for `(.+)`.
    let encoded = if skip == rest.len() {
        rest.get(rest.len().checked_sub(1)?..)?
    } else {
        &rest[skip..]
    };
    if encoded.is_empty() {
        return None;
    }
    let decoded = decode_base64(encoded)?;
    let start = decoded.iter().position(|&b| b != b':')?;
    let colon = start + decoded[start..].iter().position(|&b| b == b':')?;
    let password = &decoded[colon + 1..];
    let password = &password[..password
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(password.len())];
    Some((decoded[start..colon].to_vec(), password.to_vec()))
}

/// Kong's `crypto.hash(consumer_id, password)`: `hex(sha1(password .. consumer_id))`.
pub fn kong_sha1(password: &[u8], consumer_id: &str) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(password);
    h.update(consumer_id.as_bytes());
    h.digest().to_string()
}

const PROXY_AUTHORIZATION: HeaderName = header::PROXY_AUTHORIZATION;

impl BasicAuth {
    /// Checks the realm, resolves vault references and builds the username map.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let err = |m: String| StartupError(format!("basic-auth: {m}"));
        let www_authenticate =
            crate::consumer::challenge("basic-auth", "Basic", Some(config.realm))?;
        crate::consumer::check_anonymous("basic-auth", config.anonymous, config.consumers)?;
        let mut by_username = HashMap::with_capacity(config.credentials.len());
        for c in config.credentials {
            if config.consumers.get(c.consumer as usize).is_none() {
                return Err(err(format!("credential {} names no consumer", c.username)));
            }
            let (cred, kong_sha1) = match c.password {
                Password::Plain(p) => (p, false),
                Password::KongSha1(p) => (p, true),
            };
            let stored = Stored {
                digest: cred.digest(&config.salt)?,
                kong_sha1,
                consumer: c.consumer,
            };
            if by_username
                .insert(c.username.as_bytes(), (stored, c.username))
                .is_some()
            {
                return Err(err(format!("username {:?} is used twice", c.username)));
            }
        }
        Ok(BasicAuth {
            anonymous: config.anonymous,
            hide_credentials: config.hide_credentials,
            www_authenticate,
            consumers: config.consumers,
            by_username,
            salt: config.salt,
        })
    }

    /// Username and password from one header (first value), clearing it when hiding.
    fn retrieve(&self, req: &mut Request, name: &HeaderName) -> Option<(Vec<u8>, Vec<u8>)> {
        let found = req
            .headers()
            .get(name)
            .and_then(|v| parse_basic(v.as_bytes()));
        if self.hide_credentials {
            req.headers_mut().remove(name);
        }
        found
    }

    fn valid(&self, stored: &Stored, password: &[u8]) -> bool {
        let d = if stored.kong_sha1 {
            let id = self
                .consumers
                .get(stored.consumer as usize)
                .map_or("", |c| c.id);
            digest(&self.salt, kong_sha1(password, id).as_bytes())
        } else {
            digest(&self.salt, password)
        };
        ct_eq(&d, &stored.digest)
    }

    /// Kong's `do_authentication`: the consumer index and username, or `None` (401).
    fn authenticate(&self, req: &mut Request) -> Option<(u32, &'static str)> {
        let h = req.headers();
        if !h.contains_key(header::AUTHORIZATION) && !h.contains_key(PROXY_AUTHORIZATION) {
            return None;
        }
        let mut credential = None;
        let mut given = self.retrieve(req, &PROXY_AUTHORIZATION);
        if let Some((user, _)) = &given {
            credential = self.by_username.get(user.as_slice());
        }
        if credential.is_none() {
            given = self.retrieve(req, &header::AUTHORIZATION);
            let (user, _) = given.as_ref()?;
            credential = self.by_username.get(user.as_slice());
        }
        let (stored, username) = credential?;
        let (_, password) = given?;
        self.valid(stored, &password)
            .then_some((stored.consumer, *username))
    }
}

impl Plugin for BasicAuth {
    const NAME: &'static str = "basic-auth";
    const PRIORITY: i32 = 1100;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    /// Kong's `access`: logical OR with `anonymous`, then authentication; success sets the
    /// consumer and the §5 headers; failure answers 401 `Unauthorized` with
    /// `WWW-Authenticate: Basic realm="..."` (or, with `anonymous`, continues as the
    /// anonymous consumer).
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        let flow = 'flow: {
            if self.anonymous.is_some() && cx.auth.has_credential() {
                break 'flow ControlFlow::Continue(());
            }
            match (self.authenticate(req), self.anonymous) {
                (Some((consumer, username)), _) => {
                    consumer::authenticate(
                        cx,
                        req.headers_mut(),
                        self.consumers,
                        consumer,
                        Some(username),
                        false,
                    );
                    ControlFlow::Continue(())
                }
                (None, Some(anonymous)) => {
                    consumer::authenticate(
                        cx,
                        req.headers_mut(),
                        self.consumers,
                        anonymous,
                        None,
                        true,
                    );
                    ControlFlow::Continue(())
                }
                (None, None) => {
                    cx.kong_generated = true;
                    let mut resp =
                        response::error(401, Some("Unauthorized"), &cx.request_id, req.headers());
                    resp.headers_mut()
                        .insert(header::WWW_AUTHENTICATE, self.www_authenticate.clone());
                    ControlFlow::Break(resp)
                }
            }
        };
        std::future::ready(flow)
    }
}

#[cfg(test)]
mod tests;
