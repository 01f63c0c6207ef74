//! Responses the gateway produces itself, in Kong's formats (kong-compat.md §2.7).

use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

use crate::{Body, Response};

/// A body from bytes already in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// Kong's `kong.response.exit(status, {message = msg})`: compact JSON, no request id.
pub fn exit_json(status: u16, message: &str) -> Response {
    let body = serde_json::json!({ "message": message }).to_string();
    with_body(status, JSON, body)
}

/// A response with a body and a content type.
pub fn with_body(status: u16, content_type: HeaderValue, body: impl Into<Bytes>) -> Response {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, content_type);
    resp
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
