//! Kong's `request-termination` plugin (kong-compat.md §4.9): answers every request of its
//! scope with a fixed response, optionally only when a trigger header or query argument is
//! present, or echoes the request back as JSON.
//!
//! ```
//! use kiln_runtime::plugins::request_termination::{Config, RequestTermination};
//!
//! let plugin = RequestTermination::new(Config {
//!     status_code: 403,
//!     message: Some("So long and thanks for all the fish!"),
//!     ..Config::DEFAULT
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

use std::{future::Future, ops::ControlFlow};

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use crate::{ctx::Ctx, gateway::StartupError, plugin::Plugin, response, Request, Response};

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Response status, 100–599 (Kong default 503).
    pub status_code: u16,
    /// Message for the `{"message": ...}` body; not together with `body`/`content_type`.
    pub message: Option<&'static str>,
    /// Raw response body.
    pub body: Option<&'static str>,
    /// `Content-Type` of `body`; requires `body`.
    pub content_type: Option<&'static str>,
    /// Answer with a JSON echo of the request instead; not together with `body`.
    pub echo: bool,
    /// When set, act only if a request header or query argument of this name is present.
    pub trigger: Option<&'static str>,
}

impl Config {
    /// Kong's defaults: 503, no message, body, content type or trigger, no echo.
    pub const DEFAULT: Config = Config {
        status_code: 503,
        message: None,
        body: None,
        content_type: None,
        echo: false,
        trigger: None,
    };
}

/// The `request-termination` plugin.
#[derive(Debug)]
pub struct RequestTermination {
    status: StatusCode,
    /// Message of the echo body (configured or default).
    message: Option<&'static str>,
    /// The fixed answer when not echoing: content type and body, or no body at all.
    fixed: Option<(Option<HeaderValue>, Bytes)>,
    echo: bool,
    trigger: Option<Trigger>,
}

#[derive(Debug)]
struct Trigger {
    /// The name as configured: compared with decoded query argument names.
    name: &'static str,
    /// The header form (lower-case, `_` read as `-`, as Kong's header table does), if the
    /// name is a valid header name at all.
    header: Option<HeaderName>,
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// Kong's request-termination defaults, which differ from `kong.response.error`'s.
fn default_message(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "Unauthorized",
        404 => "Not found",
        405 => "Method not allowed",
        500 => "An unexpected error occurred",
        502 => "Bad Gateway",
        503 => "Service unavailable",
        _ => return None,
    })
}

impl RequestTermination {
    /// Checks the config as Kong's schema does and pre-renders the fixed response.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let err = |msg: String| Err(StartupError(format!("request-termination: {msg}")));
        let present = |v: Option<&str>| v.is_some_and(|s| !s.is_empty());
        if !(100..=599).contains(&config.status_code) {
            return err(format!(
                "status_code {} is not between 100 and 599",
                config.status_code
            ));
        }
        let Ok(status) = StatusCode::from_u16(config.status_code) else {
            return err(format!("invalid status_code {}", config.status_code));
        };
        if present(config.message) && (present(config.body) || present(config.content_type)) {
            return err("message cannot be used with content_type or body".into());
        }
        if present(config.content_type) && !present(config.body) {
            return err("content_type requires a body".into());
        }
        if config.echo && present(config.body) {
            return err("echo cannot be used with body".into());
        }
        let message = config
            .message
            .or_else(|| default_message(config.status_code));
        let fixed = match config.body {
            Some(body) => {
                let content_type = match config.content_type {
                    Some(ct) => match HeaderValue::from_str(ct) {
                        Ok(v) => Some(v),
                        Err(e) => return err(format!("invalid content_type {ct:?}: {e}")),
                    },
                    None => None,
                };
                Some((content_type, Bytes::from_static(body.as_bytes())))
            }
            None => message.map(|m| {
                let body = json!({ "message": m }).to_string();
                (Some(JSON), Bytes::from(body))
            }),
        };
        let trigger = config
            .trigger
            .filter(|t| !t.is_empty())
            .map(|name| Trigger {
                name,
                header: HeaderName::from_bytes(
                    name.replace('_', "-").to_ascii_lowercase().as_bytes(),
                )
                .ok(),
            });
        Ok(RequestTermination {
            status,
            message,
            fixed,
            echo: config.echo,
            trigger,
        })
    }

    fn triggered(&self, req: &Request) -> bool {
        let Some(t) = &self.trigger else { return true };
        t.header
            .as_ref()
            .is_some_and(|h| req.headers().contains_key(h))
            || query_args(req.uri().query()).any(|(name, _)| name == t.name)
    }

    fn fixed_response(&self) -> Response {
        let mut resp = match &self.fixed {
            Some((content_type, body)) => {
                let mut resp = Response::new(response::full(body.clone()));
                if let Some(ct) = content_type {
                    resp.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
                }
                resp
            }
            None => Response::new(response::empty()),
        };
        *resp.status_mut() = self.status;
        resp
    }

    /// The echo body: Kong's `{message, request, matched_route}` (see [`echo_json`]).
    fn echo_response(&self, cx: &Ctx, req: &Request) -> Response {
        let body = echo_json(self.message, cx, req).to_string();
        response::with_body(self.status.as_u16(), JSON, body)
    }
}

impl Plugin for RequestTermination {
    const NAME: &'static str = "request-termination";
    const PRIORITY: i32 = 2;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    /// Answers now (unless a trigger is configured and absent from the request).
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        let flow = if !self.triggered(req) {
            ControlFlow::Continue(())
        } else {
            cx.kong_generated = true;
            ControlFlow::Break(if self.echo {
                self.echo_response(cx, req)
            } else {
                self.fixed_response()
            })
        };
        std::future::ready(flow)
    }
}

/// The JSON Kong's echo mode sends, from what the runtime knows:
///
/// ```text
/// { "message": <message or default; absent if none>,
///   "request": { "scheme", "host", "port", "method", "path",
///                "headers": {name: value | [values]}, "query": {name: value | true | [..]},
///                "uri_captures": {"unnamed": [group 1, group 2, ...], "named": {name: value}} },
///   "matched_route": { "id", "name", "strip_path", "preserve_host", "https_redirect_status_code",
///                      "request_buffering", "response_buffering" } }
/// ```
///
/// Not included (the runtime does not have them here): Kong's `kong` node block,
/// `request.body`/`raw_body` (bodies stream) and `matched_service`.
pub fn echo_json(message: Option<&str>, cx: &Ctx, req: &Request) -> Value {
    let mut headers = Map::new();
    for name in req.headers().keys() {
        let values: Vec<Value> = req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(name.as_str().to_owned(), one_or_many(values));
    }
    let mut query_lists: Map<String, Value> = Map::new();
    for (name, value) in query_args(req.uri().query()).take(MAX_QUERY_ARGS) {
        let value = value.map_or(Value::Bool(true), Value::String);
        match query_lists.get_mut(&name) {
            Some(Value::Array(list)) => list.push(value),
            _ => {
                query_lists.insert(name, Value::Array(vec![value]));
            }
        }
    }
    let query: Map<String, Value> = query_lists
        .into_iter()
        .map(|(k, v)| match v {
            Value::Array(list) => (k, one_or_many(list)),
            other => (k, other),
        })
        .collect();
    let mut unnamed = Vec::new();
    let mut named = Map::new();
    for (i, (name, value)) in cx.matched.captures.iter().enumerate() {
        if i == 0 {
            continue; // the whole match: Kong's cjson array encoding drops index 0
        }
        let value = value.clone().map_or(Value::Null, Value::String);
        if let (Some(name), false) = (name, value.is_null()) {
            named.insert(name.clone(), value.clone());
        }
        unnamed.push(value);
    }
    let route = cx.route;
    let mut out = Map::new();
    if let Some(m) = message {
        out.insert("message".into(), Value::String(m.to_owned()));
    }
    out.insert(
        "request".into(),
        json!({
            "scheme": cx.scheme,
            "host": request_host(req),
            "port": cx.listener_port,
            "method": req.method().as_str(),
            "path": cx.normalized_path,
            "headers": headers,
            "query": query,
            "uri_captures": { "unnamed": unnamed, "named": named },
        }),
    );
    out.insert(
        "matched_route".into(),
        json!({
            "id": route.id,
            "name": route.name,
            "strip_path": route.strip_path,
            "preserve_host": route.preserve_host,
            "https_redirect_status_code": route.https_redirect_status_code,
            "request_buffering": route.request_buffering,
            "response_buffering": route.response_buffering,
        }),
    );
    Value::Object(out)
}

/// Kong's `get_query` reads at most 100 arguments by default.
const MAX_QUERY_ARGS: usize = 100;

fn one_or_many(mut values: Vec<Value>) -> Value {
    if values.len() == 1 {
        values.pop().unwrap_or(Value::Null)
    } else {
        Value::Array(values)
    }
}

/// nginx's `$host`: the request authority or `Host` header, without port, lower-cased. The
/// port is split off as Kong splits hosts: at the first `:`, only if the rest is a number.
fn request_host(req: &Request) -> String {
    let host = req
        .uri()
        .host()
        .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
        .unwrap_or("");
    let host = match host.split_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    host.to_ascii_lowercase()
}

/// Query arguments as ngx.req.get_uri_args decodes them: split on `&`, `+` is a space,
/// `%XX` decoded; a name without `=` has no value (`true` in Kong's table).
fn query_args(query: Option<&str>) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = match pair.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (pair, None),
            };
            (!name.is_empty()).then(|| (decode(name), value.map(decode)))
        })
}

fn decode(s: &str) -> String {
    String::from_utf8_lossy(&crate::plugins::key_auth::args::unescape(s.as_bytes())).into_owned()
}

#[cfg(test)]
mod tests;
