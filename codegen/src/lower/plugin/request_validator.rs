//! `request-validator` config (Kong Enterprise; docs/plugins/request-validator.md): JSON
//! Schema bodies. The schema is parsed and compiled here with the runtime's own
//! [`compile_schema`], so a schema that would fail at start-up fails the build instead, with
//! a JSON syntax error pointed at inside the YAML value (K0680).

use kiln_runtime::plugins::request_validator::{compile_schema, Draft, MediaType, SchemaError};

use crate::{
    diag::{Diagnostic, Diagnostics, Span},
    ir::*,
    syntax::{
        record::{Record, Sp},
        Node,
    },
};

const VERSIONS: &[&str] = &[
    "kong",
    "draft4",
    "draft6",
    "draft7",
    "draft201909",
    "draft202012",
];

const HELP_VERSION: &str = "set `version: draft4` (or draft6, draft7, draft201909, draft202012) and write `body_schema` as a JSON Schema";

pub(crate) fn lower(node: &Node, source: &str, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "request-validator config", d)?;
    // Written (not null) but refused by the accessors: already reported, no follow-ups.
    let schema_written = r.has("body_schema");
    let version_written = r.has("version");
    let body_schema = r.str("body_schema", d);
    let parameter_key = r.key_span("parameter_schema");
    let has_parameters = r.raw("parameter_schema").is_some();
    let version = r.one_of("version", VERSIONS, d);
    let allowed = r.str_list("allowed_content_types", d);
    let verbose_response = r.bool("verbose_response", d).is_some_and(|b| b.value);
    let content_type_parameter_validation = r
        .bool("content_type_parameter_validation", d)
        .is_none_or(|b| b.value);
    let span = r.span;
    r.finish(d);

    let mut ok = true;
    if let (true, Some(key)) = (has_parameters, parameter_key) {
        d.push(
            Diagnostic::error(
                "K0683",
                key,
                "request-validator `parameter_schema` is not supported yet",
            )
            .label("path, query and header parameter validation is not implemented")
            .help("remove `parameter_schema`; Kiln validates request bodies (`body_schema`) only"),
        );
        ok = false;
    }
    let Some(body_schema) = body_schema else {
        if !has_parameters && !schema_written {
            d.push(
                Diagnostic::error(
                    "K0684",
                    span,
                    "request-validator needs a `body_schema`",
                )
                .label("nothing to validate")
                .help("add `body_schema:` with a JSON Schema (Kong requires one of `body_schema` or `parameter_schema`)"),
            );
        }
        return None;
    };
    // Kong's default `version` is `kong`: its own array-of-fields format.
    let draft = match version.as_ref().map(|v| v.value) {
        Some(name) => Draft::from_kong(name),
        None if version_written => return None, // already reported (K0100, K0104)
        None => None,
    };
    let Some(draft) = draft else {
        let (at, message) = match &version {
            Some(v) => (v.span, "request-validator `version: kong` is not supported"),
            None => (
                body_schema.span,
                "request-validator without `version` uses Kong's default `kong` schema format, which Kiln does not support",
            ),
        };
        d.push(
            Diagnostic::error("K0681", at, message)
                .label("Kong's own schema format (an array of field records)")
                .help(HELP_VERSION),
        );
        return None;
    };
    match compile_schema(&body_schema.value, draft) {
        Ok(_) => {}
        Err(SchemaError::Json {
            message,
            line,
            column,
        }) => {
            let at = point_into(source, &body_schema, line, column);
            let whereabouts = if at == body_schema.span {
                format!(" (line {line}, column {column} of the schema)")
            } else {
                String::new()
            };
            d.push(
                Diagnostic::error(
                    "K0680",
                    at,
                    format!("`body_schema` is not valid JSON: {message}{whereabouts}"),
                )
                .label("JSON syntax error")
                .help("`body_schema` is a JSON Schema written as a JSON string; a YAML block scalar (`body_schema: |`) keeps it readable"),
            );
            ok = false;
        }
        Err(SchemaError::Schema { message, location }) => {
            let at = if location.is_empty() {
                String::new()
            } else {
                format!(" at `{location}`")
            };
            let name = version.as_ref().map_or("", |v| v.value);
            d.push(
                Diagnostic::error(
                    "K0682",
                    body_schema.span,
                    format!("`body_schema` is not a valid {name} JSON Schema{at}: {message}"),
                )
                .label("invalid schema")
                .help("fix the schema; external `$ref`s (http:, file:) are not fetched: put the referenced schema under `definitions` and use a local `#/definitions/...` reference"),
            );
            ok = false;
        }
    }
    let allowed_content_types = match allowed {
        None => vec!["application/json".to_owned()],
        Some(list) => {
            for ct in &list {
                if MediaType::parse(&ct.value).is_none() {
                    d.push(
                        Diagnostic::error(
                            "K0685",
                            ct.span,
                            format!("invalid content type `{}` in `allowed_content_types`", ct.value),
                        )
                        .label("not a media type")
                        .help("write `type/subtype`, optionally with one parameter, e.g. `application/json` or `application/json; charset=utf-8`"),
                    );
                    ok = false;
                }
            }
            list.into_iter().map(|c| c.value).collect()
        }
    };
    ok.then_some(PluginConfig::RequestValidator(RequestValidator {
        body_schema: body_schema.value,
        version: draft,
        allowed_content_types,
        content_type_parameter_validation,
        verbose_response,
    }))
}

/// The file position of byte `column` (1-based) of line `line` (1-based) of the string
/// value `s`, when the value is written so that its text appears verbatim in the file: a
/// plain scalar, a literal block scalar (`|`), or a one-line quoted string without escapes.
/// Otherwise (folded or escaped text) the whole value's span.
fn point_into(source: &str, s: &Sp<String>, line: usize, column: usize) -> Span {
    let fallback = s.span;
    let Some(vline) = s.value.split('\n').nth(line.saturating_sub(1)) else {
        return fallback;
    };
    let mut byte = column.saturating_sub(1).min(vline.len());
    while !vline.is_char_boundary(byte) {
        byte -= 1;
    }
    let chars_before = vline[..byte].chars().count();
    let start_col = s.span.col as usize;
    let file_line = |n: usize| -> Option<String> {
        let l = source.lines().nth(n.checked_sub(1)?)?;
        Some(l.chars().skip(start_col - 1).collect())
    };
    let at = |line_no: usize, col: usize| Span {
        line: u32::try_from(line_no).unwrap_or(u32::MAX),
        col: u32::try_from(col).unwrap_or(u32::MAX),
        len: 1,
    };
    // Plain or literal block: value line k is file line (first + k - 1) from the same column.
    let target = s.span.line as usize + line - 1;
    if let Some(written) = file_line(target) {
        if !vline.is_empty() && written.starts_with(vline) {
            return at(target, start_col + chars_before);
        }
    }
    // One-line quoted string without escapes.
    if line == 1 && !s.value.contains('\n') {
        if let Some(written) = file_line(s.span.line as usize) {
            for q in ['"', '\''] {
                let quoted = format!("{q}{}{q}", s.value);
                if written.starts_with(&quoted) {
                    return at(s.span.line as usize, start_col + 1 + chars_before);
                }
            }
        }
    }
    fallback
}

#[cfg(test)]
mod tests;
