//! Kong's `request-validator` plugin (Kong Enterprise; priority 999), JSON Schema part:
//! checks the request's `Content-Type` against `allowed_content_types` and validates JSON
//! bodies against `body_schema`.
//!
//! The schema text is a literal the compiler wrote after checking it with the same
//! [`compile_schema`] (so a gateway binary never holds a schema that fails to compile); it is
//! compiled once at start-up. A JSON body is read into memory up to [`Config::max_body`]
//! bytes (413 beyond), parsed, validated, and put back unchanged for the upstream.
//!
//! ```
//! use kiln_runtime::plugins::request_validator::{Config, Draft, RequestValidator};
//!
//! let plugin = RequestValidator::new(Config {
//!     body_schema: r#"{"type":"object","required":["name"]}"#,
//!     ..Config::new(Draft::Draft4)
//! })
//! .expect("valid schema");
//! # let _ = plugin;
//! ```

mod media;

use std::{future::Future, ops::ControlFlow};

use bytes::{Bytes, BytesMut};
use http::header;
use http_body_util::BodyExt;

pub use media::MediaType;

use crate::{ctx::Ctx, gateway::StartupError, plugin::Plugin, response, Request, Response};

/// The most body bytes read for validation (8 MiB): a larger JSON body gets 413
/// `Payload too large`. Kong itself buffers without a limit (`client_max_body_size 0`);
/// Kiln bounds the memory a request can hold.
pub const DEFAULT_MAX_BODY: usize = 8 * 1024 * 1024;

/// The 400 message for a body that is not JSON or does not conform (Kong's text).
pub const DENY_BODY: &str = "request body doesn't conform to schema";
/// The 400 message for a `Content-Type` not in `allowed_content_types` (Kong's text).
pub const DENY_CONTENT_TYPE: &str = "specified Content-Type is not allowed";

/// The JSON Schema drafts Kong's `version` field names (all but `kong`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draft {
    Draft4,
    Draft6,
    Draft7,
    Draft201909,
    Draft202012,
}

impl Draft {
    /// Kong's `version` values for the drafts, in Kong's spelling.
    pub const KONG_NAMES: [(&'static str, Draft); 5] = [
        ("draft4", Draft::Draft4),
        ("draft6", Draft::Draft6),
        ("draft7", Draft::Draft7),
        ("draft201909", Draft::Draft201909),
        ("draft202012", Draft::Draft202012),
    ];

    /// The draft Kong's `version` value names.
    pub fn from_kong(name: &str) -> Option<Draft> {
        Self::KONG_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    fn jsonschema(self) -> jsonschema::Draft {
        match self {
            Draft::Draft4 => jsonschema::Draft::Draft4,
            Draft::Draft6 => jsonschema::Draft::Draft6,
            Draft::Draft7 => jsonschema::Draft::Draft7,
            Draft::Draft201909 => jsonschema::Draft::Draft201909,
            Draft::Draft202012 => jsonschema::Draft::Draft202012,
        }
    }
}

/// Why a `body_schema` text is refused.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// Not JSON; `line`/`column` are 1-based, the column counted in bytes (serde_json's).
    #[error("invalid JSON: {message}")]
    Json {
        message: String,
        line: usize,
        column: usize,
    },
    /// JSON, but not a schema of the draft (meta-schema violation, bad regex, a `$ref`
    /// that does not resolve…); `location` is a JSON pointer into the schema (may be empty).
    #[error("{message}")]
    Schema { message: String, location: String },
}

/// Compiles `text` as a JSON Schema of `draft`, checking it against the draft's
/// meta-schema. External `$ref`s (http, files) are not fetched: they fail here. Codegen
/// calls this at build time, [`RequestValidator::new`] at start-up.
pub fn compile_schema(text: &str, draft: Draft) -> Result<jsonschema::Validator, SchemaError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| SchemaError::Json {
        message: json_error_text(&e),
        line: e.line(),
        column: e.column(),
    })?;
    jsonschema::options()
        .with_draft(draft.jsonschema())
        .build(&value)
        .map_err(|e| SchemaError::Schema {
            message: e.to_string(),
            location: e.instance_path().to_string(),
        })
}

/// serde_json's message without its " at line L column C" tail.
fn json_error_text(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The JSON Schema, as written in `body_schema`.
    pub body_schema: &'static str,
    /// Kong's `version` (the `kong` format is refused at build time).
    pub version: Draft,
    /// Kong's `allowed_content_types` (default `["application/json"]`).
    pub allowed_content_types: &'static [&'static str],
    /// Kong's `content_type_parameter_validation` (default true): compare the
    /// `Content-Type` parameter too.
    pub content_type_parameter_validation: bool,
    /// Kong's `verbose_response` (default false): answer the validation error text.
    pub verbose_response: bool,
    /// Largest body read for validation (Kiln; [`DEFAULT_MAX_BODY`]).
    pub max_body: usize,
}

impl Config {
    /// Kong's defaults with an empty schema (`{}` accepts any JSON): set `body_schema`.
    pub const fn new(version: Draft) -> Config {
        Config {
            body_schema: "{}",
            version,
            allowed_content_types: &["application/json"],
            content_type_parameter_validation: true,
            verbose_response: false,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// The `request-validator` plugin.
#[derive(Debug)]
pub struct RequestValidator {
    validator: jsonschema::Validator,
    allowed: Vec<MediaType>,
    parameter_validation: bool,
    verbose: bool,
    max_body: usize,
}

impl RequestValidator {
    /// Compiles the schema and parses the allowed content types.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let validator = compile_schema(config.body_schema, config.version)
            .map_err(|e| StartupError(format!("request-validator: body_schema: {e}")))?;
        let mut allowed = Vec::with_capacity(config.allowed_content_types.len());
        for ct in config.allowed_content_types {
            let m = MediaType::parse(ct).ok_or_else(|| {
                StartupError(format!(
                    "request-validator: allowed_content_types: {ct:?} is not a media type"
                ))
            })?;
            allowed.push(m);
        }
        Ok(RequestValidator {
            validator,
            allowed,
            parameter_validation: config.content_type_parameter_validation,
            verbose: config.verbose_response,
            max_body: config.max_body,
        })
    }

    /// Whether the request's `Content-Type` (its first value) is allowed; its media type
    /// when it is.
    fn allowed_type(&self, req: &Request) -> Option<MediaType> {
        let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        let m = MediaType::parse(value)?;
        self.allowed
            .iter()
            .any(|a| a.allows(&m, self.parameter_validation))
            .then_some(m)
    }

    /// Validates a complete body; the 400 message when it fails.
    fn check_body(&self, body: &[u8]) -> Result<(), String> {
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) if body.iter().all(u8::is_ascii_whitespace) => {
                return Err(self.message(|| "request body is empty".to_owned()));
            }
            Err(e) => {
                return Err(self.message(|| format!("request body is not valid JSON: {e}")));
            }
        };
        match self.validator.validate(&value) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.message(|| {
                let path = e.instance_path().to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })),
        }
    }

    fn message(&self, verbose: impl FnOnce() -> String) -> String {
        if self.verbose {
            verbose()
        } else {
            DENY_BODY.to_owned()
        }
    }

    async fn run(&self, cx: &mut Ctx, req: &mut Request) -> ControlFlow<Response> {
        let Some(media) = self.allowed_type(req) else {
            cx.kong_generated = true;
            return ControlFlow::Break(response::exit_json(400, DENY_CONTENT_TYPE));
        };
        // Kong validates only JSON bodies; other allowed types pass unread.
        if !media.is_json() {
            return ControlFlow::Continue(());
        }
        let body = match read_body(req, self.max_body).await {
            Ok(b) => b,
            Err(status) => {
                cx.kong_generated = true;
                return ControlFlow::Break(response::error(
                    status,
                    None,
                    &cx.request_id,
                    req.headers(),
                ));
            }
        };
        let verdict = self.check_body(&body);
        *req.body_mut() = response::full(body);
        match verdict {
            Ok(()) => ControlFlow::Continue(()),
            Err(message) => {
                cx.kong_generated = true;
                ControlFlow::Break(response::exit_json(400, &message))
            }
        }
    }
}

/// Reads the whole request body, at most `max` bytes: `Err(413)` beyond (decided from
/// `Content-Length` before reading when it is declared), `Err(400)` when the client's
/// body fails (reset, malformed chunk). Trailers are dropped.
async fn read_body(req: &mut Request, max: usize) -> Result<Bytes, u16> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(413);
    }
    let mut body = std::mem::replace(req.body_mut(), response::empty());
    // Grow with what arrives: a declared length alone must not reserve the whole cap.
    let mut buf = BytesMut::with_capacity(declared.map_or(0, |n| n as usize).min(64 * 1024));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| 400u16)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(413);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

impl Plugin for RequestValidator {
    const NAME: &'static str = "request-validator";
    const PRIORITY: i32 = 999;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        self.run(cx, req)
    }
}

#[cfg(test)]
mod tests;
