//! Kong's `cors` plugin (kong-compat.md §4.6): answers CORS preflight requests and adds the
//! CORS headers to every other response of its scope, gateway-generated ones included (it
//! runs at priority 2000, before authentication, and its `header_filter` runs on the 401 an
//! authentication plugin answers).
//!
//! Origins are matched as Kong's handler matches them: `*` (or no origins) allows all; a
//! single plain origin is sent as is; otherwise each entry is either a regex (any character
//! outside `[A-Za-z0-9.:/-]`), anchored at both ends and matched against the request
//! origin's host (entry without `:`) or its normalized `scheme://host[:port]`, or a plain
//! origin compared after normalization (default ports dropped).
//!
//! ```
//! use kiln_runtime::plugins::cors::{Config, Cors};
//!
//! let plugin = Cors::new(Config {
//!     origins: &["https://app.example.com", r"https://.*\.example\.org"],
//!     credentials: true,
//!     max_age: Some(3600),
//!     ..Config::DEFAULT
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

use std::{future::Future, ops::ControlFlow};

use http::{header, HeaderName, HeaderValue, Method};
use regex::Regex;

use crate::{ctx::Ctx, gateway::StartupError, plugin::Plugin, response, Request, Response};

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Allowed origins: `*`, plain origins, or regexes (Kong default: none, i.e. `*`).
    pub origins: &'static [&'static str],
    /// `Access-Control-Allow-Headers` of a preflight; empty: echo the request's
    /// `Access-Control-Request-Headers` (Kong default: none).
    pub headers: &'static [&'static str],
    /// `Access-Control-Expose-Headers`; empty: not sent (Kong default: none).
    pub exposed_headers: &'static [&'static str],
    /// `Access-Control-Allow-Methods` of a preflight (Kong default: all nine methods).
    pub methods: &'static [&'static str],
    /// `Access-Control-Max-Age` of a preflight (Kong default: not sent).
    pub max_age: Option<i64>,
    /// `Access-Control-Allow-Credentials: true` (Kong default false).
    pub credentials: bool,
    /// Answer `Access-Control-Request-Private-Network: true` with
    /// `Access-Control-Allow-Private-Network: true` (Kong default false).
    pub private_network: bool,
    /// Pass preflight requests on to the upstream instead of answering (Kong default false).
    pub preflight_continue: bool,
    /// Add the headers to responses of requests without `Origin` too (Kong default true).
    pub allow_origin_absent: bool,
}

/// Kong's default `methods`.
pub const DEFAULT_METHODS: &[&str] = &[
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

impl Config {
    /// Kong's defaults.
    pub const DEFAULT: Config = Config {
        origins: &[],
        headers: &[],
        exposed_headers: &[],
        methods: DEFAULT_METHODS,
        max_age: None,
        credentials: false,
        private_network: false,
        preflight_continue: false,
        allow_origin_absent: true,
    };
}

/// An origin as Kong's `normalize_origin` sees it (LuaSocket's `url.parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// `scheme://host[:port]`, default ports (http 80, https 443) dropped; the input itself
    /// when it has no `//authority`.
    pub domain: String,
    /// The host (IPv6 without brackets); the input itself when it has no `//authority`.
    pub host: String,
}

/// Kong's `normalize_origin`: LuaSocket's `url.parse` (scheme, `//authority`, userinfo
/// dropped, port after the last `:` not followed by `]`), then scheme + host + port.
pub fn normalize_origin(origin: &str) -> Normalized {
    let mut rest = origin;
    let mut scheme = None;
    let b = rest.as_bytes();
    if b.first().is_some_and(u8::is_ascii_alphanumeric) {
        let end = b
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || b"+-.".contains(c)))
            .unwrap_or(b.len());
        if b.get(end) == Some(&b':') {
            scheme = Some(&origin[..end]);
            rest = &origin[end + 1..];
        }
    }
    let Some(after) = rest.strip_prefix("//") else {
        return Normalized {
            domain: origin.to_owned(),
            host: origin.to_owned(),
        };
    };
    let authority = &after[..after.find('/').unwrap_or(after.len())];
    let authority = match authority.split_once('@') {
        Some((_, a)) => a,
        None => authority,
    };
    let (hostport, port) = match authority.rfind(':') {
        Some(i) if !authority[i + 1..].contains(']') => {
            (&authority[..i], Some(&authority[i + 1..]))
        }
        _ => (authority, None),
    };
    if hostport.is_empty() {
        return Normalized {
            domain: origin.to_owned(),
            host: origin.to_owned(),
        };
    }
    let host = hostport
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .filter(|h| !h.is_empty())
        .unwrap_or(hostport);
    let port = match (scheme, port) {
        (Some("http"), Some("80")) | (Some("https"), Some("443")) => None,
        (_, p) => p,
    };
    let mut domain = String::with_capacity(origin.len());
    if let Some(s) = scheme {
        domain.push_str(s);
        domain.push_str("://");
    }
    domain.push_str(host);
    if let Some(p) = port {
        domain.push(':');
        domain.push_str(p);
    }
    Normalized {
        domain,
        host: host.to_owned(),
    }
}

/// Whether Kong treats an `origins` entry as a regex: any character outside
/// `[A-Za-z0-9.:/-]`.
pub fn is_regex_origin(entry: &str) -> bool {
    entry
        .bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || b".:/-".contains(&b)))
}

/// The regex Kong's handler matches for an `origins` entry: a leading `^` removed, `$`
/// appended unless present, matched anchored at the start. The pattern given to `regex`.
pub fn origin_pattern(entry: &str) -> String {
    let body = entry.strip_prefix('^').unwrap_or(entry);
    let dollar = if body.ends_with('$') { "" } else { "$" };
    format!("^(?:{body}{dollar})")
}

#[derive(Debug)]
enum Matcher {
    Regex { re: Regex, by_host: bool },
    Plain(String),
}

#[derive(Debug)]
enum Origins {
    /// No origins or `["*"]`: `*`, no `Vary`.
    All,
    /// One plain origin: sent as is.
    Single(HeaderValue),
    /// Several entries, or one regex; `star`: one of them is `*` (then any request with an
    /// `Origin` gets `*`, as Kong's handler returns as soon as it meets it).
    List { star: bool, matchers: Vec<Matcher> },
}

/// The `cors` plugin.
#[derive(Debug)]
pub struct Cors {
    origins: Origins,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    allow_methods: HeaderValue,
    max_age: Option<HeaderValue>,
    credentials: bool,
    private_network: bool,
    preflight_continue: bool,
    allow_origin_absent: bool,
}

const ACAO: HeaderName = header::ACCESS_CONTROL_ALLOW_ORIGIN;
const ACAC: HeaderName = header::ACCESS_CONTROL_ALLOW_CREDENTIALS;
const ACRPN: HeaderName = HeaderName::from_static("access-control-request-private-network");
const ACAPN: HeaderName = HeaderName::from_static("access-control-allow-private-network");
const STAR: HeaderValue = HeaderValue::from_static("*");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const ORIGIN: HeaderValue = HeaderValue::from_static("Origin");

fn joined(field: &str, items: &[&str]) -> Result<HeaderValue, StartupError> {
    let s = items.join(",");
    HeaderValue::from_str(&s)
        .map_err(|_| StartupError(format!("cors: `{field}` {s:?} is not a valid header value")))
}

impl Cors {
    /// Compiles the origin regexes and pre-renders the headers.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let origins = match config.origins {
            [] | ["*"] => Origins::All,
            [one] if !is_regex_origin(one) => Origins::Single(
                HeaderValue::from_str(one)
                    .map_err(|_| StartupError(format!("cors: invalid origin {one:?}")))?,
            ),
            entries => {
                let mut matchers = Vec::with_capacity(entries.len());
                let mut star = false;
                for e in entries {
                    if *e == "*" {
                        star = true;
                    } else if is_regex_origin(e) {
                        let re = Regex::new(&origin_pattern(e)).map_err(|err| {
                            StartupError(format!("cors: origin {e:?} is not a valid regex: {err}"))
                        })?;
                        matchers.push(Matcher::Regex {
                            re,
                            by_host: !e.contains(':'),
                        });
                    } else {
                        matchers.push(Matcher::Plain(normalize_origin(e).domain));
                    }
                }
                Origins::List { star, matchers }
            }
        };
        let nonempty = |field, items: &[&str]| -> Result<Option<HeaderValue>, StartupError> {
            if items.is_empty() {
                Ok(None)
            } else {
                joined(field, items).map(Some)
            }
        };
        Ok(Cors {
            origins,
            allow_headers: nonempty("headers", config.headers)?,
            expose_headers: nonempty("exposed_headers", config.exposed_headers)?,
            allow_methods: joined("methods", config.methods)?,
            max_age: config.max_age.map(HeaderValue::from),
            credentials: config.credentials,
            private_network: config.private_network,
            preflight_continue: config.preflight_continue,
            allow_origin_absent: config.allow_origin_absent,
        })
    }

    /// The `Access-Control-Allow-Origin` decision (Kong's `configure_origin`): sets or
    /// clears ACAO and `Vary`; returns whether all origins are allowed (`*`).
    fn configure_origin(
        &self,
        headers: &mut http::HeaderMap,
        append_vary: bool,
        origin: Option<&HeaderValue>,
    ) -> bool {
        if let Origins::All = self.origins {
            headers.insert(ACAO, STAR);
            return true;
        }
        add_vary(headers, append_vary);
        let (star, matchers) = match &self.origins {
            Origins::Single(v) => {
                headers.insert(ACAO, v.clone());
                return false;
            }
            Origins::List { star, matchers } => (*star, matchers),
            Origins::All => return true,
        };
        if let Some(origin) = origin {
            if star {
                headers.insert(ACAO, STAR);
                return true;
            }
            // An origin that is not text cannot match anything.
            if let Ok(origin) = origin.to_str() {
                let n = normalize_origin(origin);
                let found = matchers.iter().any(|m| match m {
                    Matcher::Regex { re, by_host: true } => re.is_match(&n.host),
                    Matcher::Regex { re, by_host: false } => re.is_match(&n.domain),
                    Matcher::Plain(domain) => *domain == n.domain,
                });
                if let (true, Ok(v)) = (found, HeaderValue::from_str(&n.domain)) {
                    headers.insert(ACAO, v);
                    return false;
                }
            }
        }
        headers.remove(ACAO);
        false
    }

    /// Kong's `configure_credentials`: ACAC, and the request origin instead of `*`.
    fn configure_credentials(
        &self,
        headers: &mut http::HeaderMap,
        allow_all: bool,
        append_vary: bool,
        origin: Option<&HeaderValue>,
    ) {
        if !self.credentials {
            return;
        }
        if !allow_all {
            headers.insert(ACAC, TRUE);
            return;
        }
        if let Some(origin) = origin {
            add_vary(headers, append_vary);
            headers.insert(ACAO, origin.clone());
            headers.insert(ACAC, TRUE);
        }
    }

    /// The 200 answer to a preflight.
    fn preflight(&self, req: &Request, origin: &HeaderValue) -> Response {
        let mut resp = response::no_body(200);
        let h = resp.headers_mut();
        let allow_all = self.configure_origin(h, false, Some(origin));
        self.configure_credentials(h, allow_all, false, Some(origin));
        let acah = self.allow_headers.clone().or_else(|| {
            req.headers()
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
        });
        if let Some(v) = acah {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods.clone(),
        );
        if let Some(v) = &self.max_age {
            h.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        if self.private_network && req.headers().get(ACRPN).is_some_and(|v| v == "true") {
            h.insert(ACAPN, TRUE);
        }
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        resp
    }
}

/// Kong's `add_vary_header`: appended in `header_filter`, set in `access`.
fn add_vary(headers: &mut http::HeaderMap, append: bool) {
    if append {
        headers.append(header::VARY, ORIGIN);
    } else {
        headers.insert(header::VARY, ORIGIN);
    }
}

impl Plugin for Cors {
    const NAME: &'static str = "cors";
    const PRIORITY: i32 = 2000;
    // Extends `Vary`.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = false;

    /// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
    /// 200 with the CORS headers, or passed on with `preflight_continue`; either way this
    /// plugin's `header_filter` then adds nothing. Other requests pass untouched.
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        let origin = req.headers().get(header::ORIGIN);
        let preflight = req.method() == Method::OPTIONS
            && origin.is_some()
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let flow = match origin {
            Some(origin) if preflight => {
                cx.cors_preflight = true;
                if self.preflight_continue {
                    ControlFlow::Continue(())
                } else {
                    cx.kong_generated = true;
                    ControlFlow::Break(self.preflight(req, origin))
                }
            }
            _ => ControlFlow::Continue(()),
        };
        std::future::ready(flow)
    }

    /// On every other response (proxied or generated): ACAO, `Vary: Origin`, ACAC and
    /// `Access-Control-Expose-Headers`, from the request's `Origin`.
    fn header_filter(&self, cx: &mut Ctx, resp: &mut Response) {
        if cx.cors_preflight {
            return;
        }
        let origin = cx.request_origin.as_ref();
        if origin.is_none() && !self.allow_origin_absent {
            return;
        }
        let h = resp.headers_mut();
        let allow_all = self.configure_origin(h, true, origin);
        self.configure_credentials(h, allow_all, true, origin);
        if let Some(v) = &self.expose_headers {
            h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
    }
}

#[cfg(test)]
mod tests;
