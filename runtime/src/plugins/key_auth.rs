//! Kong's `key-auth` plugin (kong-compat.md §4.1): identifies the consumer by an API key
//! sent in a header, the query string or (optionally) the body.
//!
//! Keys never reach the binary in clear text: the compiler writes each credential as a salted
//! digest ([`crate::secret::digest`]), or as a vault reference resolved and digested at
//! start-up. A request's key is digested with the same salt and looked up in a hash map built
//! by [`KeyAuth::new`], then compared in constant time: no scan over the credentials.
//!
//! ```
//! use kiln_runtime::consumer::ConsumerSpec;
//! use kiln_runtime::plugins::key_auth::{Config, KeyAuth, KeyCredential};
//! use kiln_runtime::secret::{digest, Credential};
//!
//! static CONSUMERS: [ConsumerSpec; 1] = [ConsumerSpec {
//!     id: "5a1f4e4e-7a3c-5b8e-9f77-3f3ad2b8a001",
//!     username: Some("alice"),
//!     custom_id: None,
//!     groups: &[],
//! }];
//! const SALT: [u8; 32] = [7; 32];
//! let creds: &'static [KeyCredential] = Box::leak(Box::new([KeyCredential {
//!     key: Credential::Digest(digest(&SALT, b"alice-key")),
//!     consumer: 0,
//!     id: "0b1c1b9e-2f57-4d0e-8a8e-4c9a3f6f7d10",
//! }]));
//! let plugin = KeyAuth::new(Config {
//!     consumers: &CONSUMERS,
//!     credentials: creds,
//!     salt: SALT,
//!     ..Config::DEFAULT
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

pub(crate) mod args;
mod body;

use std::{collections::HashMap, ops::ControlFlow};

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::{
    consumer::{self, ConsumerSpec},
    ctx::Ctx,
    gateway::StartupError,
    plugin::Plugin,
    response,
    secret::{ct_eq, digest, Credential},
    Request, Response,
};

pub use body::{BODY_LIMIT, CLIENT_BODY_TIMEOUT};

use args::Lookup;
use body::BodyArgs;

/// One key-auth credential, as the compiler wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCredential {
    /// The key's salted digest (or a vault reference to read and digest at start-up).
    pub key: Credential,
    /// Index of its consumer in [`Config::consumers`].
    pub consumer: u32,
    /// The credential id: `X-Credential-Identifier`.
    pub id: &'static str,
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Names to look for, in order (Kong default `["apikey"]`).
    pub key_names: &'static [&'static str],
    /// Remove the key from the request before proxying (default false).
    pub hide_credentials: bool,
    /// Consumer used when authentication fails ("logical OR"); default none.
    pub anonymous: Option<u32>,
    /// Look in headers (default true).
    pub key_in_header: bool,
    /// Look in the query string (default true).
    pub key_in_query: bool,
    /// Look in form, JSON and multipart bodies up to [`BODY_LIMIT`] bytes (default false).
    pub key_in_body: bool,
    /// Authenticate `OPTIONS` requests too (default true).
    pub run_on_preflight: bool,
    /// `WWW-Authenticate: Key realm="<realm>"` instead of `Key` (default none).
    pub realm: Option<&'static str>,
    /// The gateway's consumers.
    pub consumers: &'static [ConsumerSpec],
    /// Every key-auth credential of the config.
    pub credentials: &'static [KeyCredential],
    /// The config's digest salt ([`crate::secret::salt_for`]).
    pub salt: [u8; 32],
}

impl Config {
    /// Kong's defaults, no consumers and no credentials.
    pub const DEFAULT: Config = Config {
        key_names: &["apikey"],
        hide_credentials: false,
        anonymous: None,
        key_in_header: true,
        key_in_query: true,
        key_in_body: false,
        run_on_preflight: true,
        realm: None,
        consumers: &[],
        credentials: &[],
        salt: [0; 32],
    };
}

#[derive(Debug)]
struct KeyName {
    /// As configured: compared with query, form and JSON names.
    name: &'static str,
    /// Header names that carry it: the name lower-cased, and with `_` read as `-` (Kong's
    /// header table normalises lookups that way).
    headers: Vec<HeaderName>,
}

#[derive(Debug, Clone, Copy)]
struct Found {
    consumer: u32,
    id: &'static str,
    digest: [u8; 32],
}

/// The `key-auth` plugin.
#[derive(Debug)]
pub struct KeyAuth {
    names: Vec<KeyName>,
    hide_credentials: bool,
    anonymous: Option<u32>,
    key_in_header: bool,
    key_in_query: bool,
    key_in_body: bool,
    run_on_preflight: bool,
    www_authenticate: HeaderValue,
    consumers: &'static [ConsumerSpec],
    by_digest: HashMap<[u8; 32], Found>,
    salt: [u8; 32],
}

/// Why authentication failed: Kong's 401 messages.
const NO_KEY: &str = "No API key found in request";
const DUPLICATE: &str = "Duplicate API key found";
const UNAUTHORIZED: &str = "Unauthorized";

enum Failure {
    /// 401 with this message (or the anonymous consumer).
    Unauthorized(&'static str),
    /// The body could not be read: answered whatever `anonymous` says.
    Body(body::ReadError),
}

impl KeyAuth {
    /// Checks the names and realm, resolves vault references and builds the digest map.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let err = |m: String| StartupError(format!("key-auth: {m}"));
        let mut names = Vec::with_capacity(config.key_names.len());
        for &name in config.key_names {
            let lower = name.to_ascii_lowercase();
            let mut headers = Vec::new();
            for form in [lower.clone(), lower.replace('_', "-")] {
                let h = HeaderName::from_bytes(form.as_bytes())
                    .map_err(|_| err(format!("invalid key name {name:?}")))?;
                if !headers.contains(&h) {
                    headers.push(h);
                }
            }
            names.push(KeyName { name, headers });
        }
        let www_authenticate = crate::consumer::challenge("key-auth", "Key", config.realm)?;
        crate::consumer::check_anonymous("key-auth", config.anonymous, config.consumers)?;
        let mut by_digest = HashMap::with_capacity(config.credentials.len());
        for c in config.credentials {
            if config.consumers.get(c.consumer as usize).is_none() {
                return Err(err(format!("credential {} names no consumer", c.id)));
            }
            let d = c.key.digest(&config.salt)?;
            let found = Found {
                consumer: c.consumer,
                id: c.id,
                digest: d,
            };
            if let Some(other) = by_digest.insert(d, found) {
                return Err(err(format!(
                    "credentials {} and {} have the same key",
                    other.id, c.id
                )));
            }
        }
        Ok(KeyAuth {
            names,
            hide_credentials: config.hide_credentials,
            anonymous: config.anonymous,
            key_in_header: config.key_in_header,
            key_in_query: config.key_in_query,
            key_in_body: config.key_in_body,
            run_on_preflight: config.run_on_preflight,
            www_authenticate,
            consumers: config.consumers,
            by_digest,
            salt: config.salt,
        })
    }

    /// The credential a key belongs to.
    fn credential(&self, key: &[u8]) -> Option<Found> {
        let d = digest(&self.salt, key);
        let found = self.by_digest.get(&d)?;
        ct_eq(&found.digest, &d).then_some(*found)
    }

    fn header_lookup(&self, headers: &HeaderMap, name: &KeyName) -> Lookup {
        let mut values = name.headers.iter().flat_map(|h| headers.get_all(h).iter());
        match (values.next(), values.next()) {
            (None, _) => Lookup::Missing,
            (Some(_), Some(_)) => Lookup::Many,
            (Some(v), None) => Lookup::One(v.as_bytes().to_vec()),
        }
    }

    /// Kong's `do_authentication`: finds the key, hides it, looks up its credential.
    async fn authenticate(&self, req: &mut Request) -> Result<Found, Failure> {
        let query = req.uri().query().map(|q| args::parse(q.as_bytes()));
        let mut body: Option<BodyArgs> = None;
        let mut key = None;
        for name in &self.names {
            let mut v = Lookup::Missing;
            if self.key_in_header {
                v = self.header_lookup(req.headers(), name);
            }
            if v == Lookup::Missing && self.key_in_query {
                if let Some(q) = &query {
                    v = args::lookup(q, name.name.as_bytes());
                }
            }
            if v == Lookup::Missing && self.key_in_body {
                if body.is_none() {
                    body = Some(self.read_body(req).await.map_err(Failure::Body)?);
                }
                if let Some(b) = &body {
                    v = b.lookup(name.name);
                }
            }
            match v {
                Lookup::One(k) => {
                    if self.hide_credentials {
                        self.hide(req, name, &mut body)
                            .await
                            .map_err(Failure::Body)?;
                    }
                    key = Some(k);
                    break;
                }
                Lookup::Many => return Err(Failure::Unauthorized(DUPLICATE)),
                Lookup::Missing | Lookup::Other => {}
            }
        }
        let key = key
            .filter(|k| !k.is_empty())
            .ok_or(Failure::Unauthorized(NO_KEY))?;
        self.credential(&key)
            .ok_or(Failure::Unauthorized(UNAUTHORIZED))
    }

    async fn read_body(&self, req: &mut Request) -> Result<BodyArgs, body::ReadError> {
        Ok(match body::read_bounded(req, BODY_LIMIT).await? {
            Some(raw) => BodyArgs::parse(req.headers().get(header::CONTENT_TYPE), raw),
            None => BodyArgs::Empty,
        })
    }

    /// `hide_credentials`: Kong clears the query argument (re-serialising a non-empty
    /// query), the header, and with `key_in_body` the body field.
    async fn hide(
        &self,
        req: &mut Request,
        name: &KeyName,
        body: &mut Option<BodyArgs>,
    ) -> Result<(), body::ReadError> {
        if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
            let q = args::clear_query_arg(q, name.name.as_bytes());
            let path = req.uri().path();
            let pq = if q.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{q}")
            };
            let mut parts = req.uri().clone().into_parts();
            if let Ok(pq) = pq.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
        for h in &name.headers {
            req.headers_mut().remove(h);
        }
        if self.key_in_body {
            if body.is_none() {
                *body = Some(self.read_body(req).await?);
            }
            if let Some(stripped) = body.as_ref().and_then(|b| b.without(name.name)) {
                body::set_body(req, stripped);
            }
        }
        Ok(())
    }

    fn unauthorized(&self, cx: &mut Ctx, req: &Request, message: &str) -> Response {
        cx.kong_generated = true;
        let mut resp = response::error(401, Some(message), &cx.request_id, req.headers());
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, self.www_authenticate.clone());
        resp
    }
}

impl Plugin for KeyAuth {
    const NAME: &'static str = "key-auth";
    const PRIORITY: i32 = 1250;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    /// Kong's `access`: preflight skip, logical OR with `anonymous`, then authentication;
    /// success sets the consumer and the §5 headers; failure answers 401 (or, with
    /// `anonymous`, continues as the anonymous consumer).
    async fn access(&self, cx: &mut Ctx, req: &mut Request) -> ControlFlow<Response> {
        if !self.run_on_preflight && req.method() == Method::OPTIONS {
            return ControlFlow::Continue(());
        }
        if self.anonymous.is_some() && cx.auth.has_credential() {
            return ControlFlow::Continue(());
        }
        match self.authenticate(req).await {
            Ok(found) => {
                consumer::authenticate(
                    cx,
                    req.headers_mut(),
                    self.consumers,
                    found.consumer,
                    Some(found.id),
                    false,
                );
                ControlFlow::Continue(())
            }
            Err(Failure::Body(e)) => {
                cx.kong_generated = true;
                ControlFlow::Break(response::error(
                    e.status,
                    Some(e.message),
                    &cx.request_id,
                    req.headers(),
                ))
            }
            Err(Failure::Unauthorized(message)) => match self.anonymous {
                Some(anonymous) => {
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
                None => ControlFlow::Break(self.unauthorized(cx, req, message)),
            },
        }
    }
}

#[cfg(test)]
mod tests;
