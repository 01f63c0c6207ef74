//! Responses the gateway produces itself, in Kong's formats (kong-compat.md §2.7).
//!
//! * [`error`] is `kong.response.error(status, msg)`: the body format follows the request's
//!   `Accept` header (q-values honoured; JSON by default) and carries the request id;
//! * [`upstream_error`] is Kong's nginx `error_page` handler (502/504 from the proxy…): the
//!   format follows `Accept`, else the request's `Content-Type`, else `text/plain`;
//! * [`exit_json`] is `kong.response.exit(status, {message = msg})`: compact JSON.
//!
//! ```
//! use http::HeaderMap;
//! let mut h = HeaderMap::new();
//! h.insert("accept", "text/plain".parse().unwrap());
//! let resp = kiln_runtime::response::error(404, Some("no Route matched with those values"), "0123", &h);
//! assert_eq!(resp.status(), 404);
//! assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
//! ```

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

use crate::{Body, Response};

/// A body from bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
const PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const XML: HeaderValue = HeaderValue::from_static("application/xml; charset=utf-8");

/// Kong's `kong.response.exit(status, {message = msg})`: compact JSON, no request id.
pub fn exit_json(status: u16, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    with_body(status, JSON, body)
}

/// A response with a body and a content type.
pub fn with_body(status: u16, content_type: HeaderValue, body: impl Into<Bytes>) -> Response {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status_code(status);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    resp
}

/// A response with no body (Kong's `kong.response.exit(status)`).
pub fn no_body(status: u16) -> Response {
    let mut resp = Response::new(empty());
    *resp.status_mut() = status_code(status);
    resp
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Kong's default message for `kong.response.error(status)` without one.
pub fn default_message(status: u16) -> String {
    match status {
        400 => "Bad request".into(),
        401 => "Unauthorized".into(),
        403 => "Forbidden".into(),
        404 => "Not found".into(),
        405 => "Method not allowed".into(),
        413 => "Payload too large".into(),
        429 => "Too many requests".into(),
        500 => "An unexpected error occurred".into(),
        502 => "An invalid response was received from the upstream server".into(),
        503 => "The upstream server is currently unavailable".into(),
        504 => "The upstream server is timing out".into(),
        other => format!("The upstream server responded with {other}"),
    }
}

/// The body formats of Kong's error templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `application/json; charset=utf-8` (the default).
    Json,
    /// `text/plain; charset=utf-8`.
    Text,
    /// `text/html; charset=utf-8`.
    Html,
    /// `application/xml; charset=utf-8`.
    Xml,
    /// `application/grpc` was asked for: Kong's template is empty (no body, no type).
    Grpc,
}

/// Kong's `get_mime_type` with its default: the format for one media type.
fn mime_type(media: &str) -> ErrorFormat {
    let media = media.trim();
    let media = media.split(';').next().unwrap_or("");
    match media.split_once('/') {
        Some(("text", "*")) => ErrorFormat::Text,
        Some((_, "*")) => ErrorFormat::Json,
        Some(_) => match media {
            "text/plain" => ErrorFormat::Text,
            "text/html" => ErrorFormat::Html,
            "application/xml" => ErrorFormat::Xml,
            "application/grpc" => ErrorFormat::Grpc,
            _ => ErrorFormat::Json,
        },
        None => ErrorFormat::Json,
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-!#$&^_+.".contains(&b)
}

/// `[a-z0-9][a-z0-9-!#$&^_+.]+` or `*` (Kong's pattern, case-insensitive); returns the rest.
fn media_token(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('*') {
        return Some(rest);
    }
    let b = s.as_bytes();
    if !b.first().is_some_and(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let n = 1 + b[1..].iter().take_while(|&&c| is_token_byte(c)).count();
    (n >= 2).then(|| &s[n..])
}

/// `1(\.0{0,3})?` or `0(\.\d{0,3})?`, as Lua's `tonumber` reads it; returns the rest.
fn q_value(s: &str) -> Option<(f32, &str)> {
    let b = s.as_bytes();
    let (first, digit_ok): (u8, fn(u8) -> bool) = match b.first() {
        Some(b'1') => (b'1', |c| c == b'0'),
        Some(b'0') => (b'0', |c: u8| c.is_ascii_digit()),
        _ => return None,
    };
    let mut n = 1;
    if b.get(1) == Some(&b'.') {
        n = 2 + b[2..].iter().take(3).take_while(|&&c| digit_ok(c)).count();
    }
    let text = &s[..n];
    let q = if first == b'1' {
        1.0
    } else {
        text.trim_end_matches('.').parse().unwrap_or(0.0)
    };
    Some((q, &s[n..]))
}

/// Parses one `Accept` element like Kong's regex (anchored at the start, case-insensitive):
/// the media type and the last well-formed `q` parameter (1 when absent).
fn accept_element(s: &str) -> Option<(&str, f32)> {
    let after_type = media_token(s)?;
    let after_slash = after_type.strip_prefix('/')?;
    let after_sub = media_token(after_slash)?;
    let media = &s[..s.len() - after_sub.len()];
    let mut q = None;
    let mut rest = after_sub;
    while let Some(p) = rest.trim_start().strip_prefix(';') {
        let p = p.trim_start();
        // `q=<value>` first (the regex's first alternative), else a generic parameter.
        if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
            if let Some((value, r)) = q_value(v) {
                q = Some(value);
                rest = r;
                continue;
            }
        }
        let Some(r) = media_token(p).filter(|_| !p.starts_with('*')) else {
            break;
        };
        rest = match r.strip_prefix('=') {
            Some(v) => &v[v.find(';').unwrap_or(v.len())..],
            None => r,
        };
    }
    Some((media, q.unwrap_or(1.0)))
}

/// Kong's `get_response_type`: the first element with the highest q (> 0) decides; an
/// unknown media type means JSON; no `Accept` means JSON.
pub fn response_type(accept: Option<&str>) -> ErrorFormat {
    let mut format = ErrorFormat::Json;
    let Some(accept) = accept else { return format };
    let mut best = 0.0f32;
    for element in accept.split(',') {
        if let Some((media, q)) = accept_element(element.trim()) {
            if q > best {
                best = q;
                format = mime_type(media);
            }
        }
    }
    format
}

/// The body and content type of Kong's error templates.
pub fn error_body(
    format: ErrorFormat,
    message: &str,
    request_id: &str,
) -> (Option<HeaderValue>, String) {
    match format {
        ErrorFormat::Json => (
            Some(JSON),
            format!("{{\n  \"message\":\"{message}\",\n  \"request_id\":\"{request_id}\"\n}}"),
        ),
        ErrorFormat::Text => (Some(PLAIN), format!("{message}\nrequest_id: {request_id}\n")),
        ErrorFormat::Html => (
            Some(HTML),
            format!(
                "<!doctype html>\n<html>\n  <head>\n    <meta charset=\"utf-8\">\n    \
                 <title>Error</title>\n  </head>\n  <body>\n    <h1>Error</h1>\n    \
                 <p>{message}.</p>\n    <p>request_id: {request_id}</p>\n  </body>\n</html>\n"
            ),
        ),
        ErrorFormat::Xml => (
            Some(XML),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>{message}</message>\n  \
                 <requestid>{request_id}</requestid>\n</error>\n"
            ),
        ),
        ErrorFormat::Grpc => (None, String::new()),
    }
}

/// An error response in `format`.
pub fn error_as(format: ErrorFormat, status: u16, message: &str, request_id: &str) -> Response {
    let (content_type, body) = error_body(format, message, request_id);
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status_code(status);
    if let Some(ct) = content_type {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

fn is_grpc(content_type: Option<&HeaderValue>) -> bool {
    content_type.is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Kong's `kong.response.error(status, message)`: negotiated on every `Accept` value of the
/// request (joined with `,`); `None` uses [`default_message`]. gRPC requests get Kong's empty
/// gRPC template.
pub fn error(
    status: u16,
    message: Option<&str>,
    request_id: &str,
    req_headers: &HeaderMap,
) -> Response {
    let format = if is_grpc(req_headers.get(header::CONTENT_TYPE)) {
        ErrorFormat::Grpc
    } else {
        let accept: Vec<&str> = req_headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if accept.is_empty() {
            ErrorFormat::Json
        } else {
            response_type(Some(&accept.join(",")))
        }
    };
    let default;
    let message = match message {
        Some(m) => m,
        None => {
            default = default_message(status);
            &default
        }
    };
    error_as(format, status, message, request_id)
}

/// Kong's `error_page` handler, used for errors of the proxy itself (502, 504…): the format
/// follows the first `Accept` value, else the request `Content-Type`, else `text/plain`
/// (`error_default_type`); a gRPC type gets compact JSON. Always [`default_message`].
pub fn upstream_error(status: u16, request_id: &str, req_headers: &HeaderMap) -> Response {
    let message = default_message(status);
    let basis = req_headers
        .get(header::ACCEPT)
        .or_else(|| req_headers.get(header::CONTENT_TYPE))
        .map(|v| v.to_str().unwrap_or(""))
        .unwrap_or("text/plain");
    if basis.starts_with("application/grpc") {
        return exit_json(status, &message);
    }
    error_as(response_type(Some(basis)), status, &message, request_id)
}

/// A redirect without body (Kong's `https_redirect_status_code` answers).
pub fn redirect(status: u16, location: HeaderValue) -> Response {
    let mut resp = no_body(status);
    resp.headers_mut().insert(header::LOCATION, location);
    resp
}

/// A header value holding the decimal `n`. Values below 1,000 (latencies in ms) come from
/// a table built once, and the last larger value made on this thread (the listener's port
/// for `X-Forwarded-Port`, a rate limit) is reused, so most calls cost no allocation.
pub fn number_value(n: u64) -> HeaderValue {
    static SMALL: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, HeaderValue)>> = const { std::cell::RefCell::new(None) };
    }
    if n < 1000 {
        let table = SMALL.get_or_init(|| (0..1000u64).map(HeaderValue::from).collect());
        if let Some(v) = table.get(n as usize) {
            return v.clone();
        }
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((m, v)) if *m == n => v.clone(),
            _ => {
                let v = HeaderValue::from(n);
                *last = Some((n, v.clone()));
                v
            }
        }
    })
}

/// A header value holding an IP address as nginx prints it (`$remote_addr`); IPv4 is
/// written without an intermediate `String`.
pub fn ip_value(ip: std::net::IpAddr) -> HeaderValue {
    let mut text = Vec::with_capacity(15);
    push_ip(&mut text, ip);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).unwrap_or(HeaderValue::from_static(""))
}

/// Appends `ip` as nginx prints it (`$remote_addr`).
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    let std::net::IpAddr::V4(v4) = ip else {
        out.extend_from_slice(ip.to_string().as_bytes());
        return;
    };
    // Dotted quad by hand, from a table of the 256 octets and written at once: `Display`
    // goes through the formatting machinery.
    let mut text = [0u8; 16];
    let mut len = 0;
    for octet in v4.octets() {
        let (digits, n) = OCTET_TEXT[usize::from(octet)];
        // Three bytes go, the first `n` stay; the dot goes after them.
        text[len..len + 3].copy_from_slice(&digits);
        len += n;
        text[len] = b'.';
        len += 1;
    }
    // Without the last dot.
    out.extend_from_slice(&text[..len - 1]);
}

/// Each octet in decimal, without leading zeros: its digits (padded to three) and how many.
const OCTET_TEXT: [([u8; 3], usize); 256] = {
    let mut table = [([0u8; 3], 0usize); 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let (h, t, o) = (b'0' + b / 100, b'0' + b / 10 % 10, b'0' + b % 10);
        table[i] = match b {
            100.. => ([h, t, o], 3),
            10..=99 => ([t, o, 0], 2),
            _ => ([o, 0, 0], 1),
        };
        i += 1;
    }
    table
};

/// Appends one HTTP/1 header field line, `name: value` and CRLF.
pub(crate) fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a chunk-size line: `n` in lower-case hex and CRLF.
pub(crate) fn push_chunk_size(out: &mut Vec<u8>, mut n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 18];
    let mut i = 16;
    loop {
        i -= 1;
        text[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    text[16..].copy_from_slice(b"\r\n");
    out.extend_from_slice(&text[i..]);
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    if n < 10 {
        // Latencies mostly.
        out.push(b'0' + n as u8);
        return;
    }
    out.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// "00" to "99", two bytes each.
const DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// `n` in decimal, written at the end of `buf` (20 digits hold any `u64`), two digits a
/// step.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut put = |at: &mut usize, pair: u64| {
        let pair = pair as usize * 2;
        *at -= 2;
        buf[*at..*at + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    };
    while n >= 100 {
        put(&mut at, n % 100);
        n /= 100;
    }
    if n >= 10 {
        put(&mut at, n);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    &buf[at..]
}

#[cfg(test)]
mod tests;
