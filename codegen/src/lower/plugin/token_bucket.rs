//! `kiln-token-bucket` config (docs/plugins/kiln-token-bucket.md): Kiln's own plugin, with
//! `limit_by` / `header_name` / `path` checked as Kong's rate-limiting checks them
//! (K0660 missing field, K0661 unusable value, K0662 a field `limit_by` does not use).

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{record::Record, Node},
};

const LIMIT_BY: &[&str] = &["consumer", "credential", "ip", "service", "header", "path"];

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "kiln-token-bucket config", d)?;
    let average = r.int("average", 1, 1_000_000_000, d);
    let average_missing = !r.has("average");
    let period = r
        .int("period", 1, 31_536_000, d)
        .map_or(1, |p| p.value as u32);
    let burst = r.int("burst", 1, 1_000_000_000, d);
    let limit_by = r.one_of("limit_by", LIMIT_BY, d);
    let header_name = r.str("header_name", d);
    let path = r.str("path", d);
    let max_keys = r
        .int("max_keys", 1, 100_000_000, d)
        .map_or(100_000, |m| m.value as u32);
    let error_code = r
        .int("error_code", 100, 599, d)
        .map_or(429, |c| c.value as u16);
    let error_message = r
        .str("error_message", d)
        .map_or_else(|| "API rate limit exceeded".to_owned(), |m| m.value);
    let hide_client_headers = r.bool("hide_client_headers", d).is_some_and(|b| b.value);
    if average_missing {
        d.push(r.missing("average"));
    }
    let span = r.span;
    r.finish(d);
    let by = limit_by.as_ref().map_or("consumer", |l| l.value);
    let by_span = limit_by.as_ref().map_or(span, |l| l.span);
    let mut ok = true;
    let mut need = |field: &str, present: bool, d: &mut Diagnostics| {
        if !present {
            ok = false;
            d.push(
                Diagnostic::error("K0660", by_span, format!("limit_by `{by}` needs `{field}`"))
                    .label(format!("no `{field}` in this config"))
                    .help(format!("add `{field}: ...`, or choose another limit_by")),
            );
        }
    };
    match by {
        "header" => need("header_name", header_name.is_some(), d),
        "path" => need("path", path.is_some(), d),
        _ => {}
    }
    if let Some(h) = &header_name {
        let valid = !h.value.is_empty()
            && h.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !valid {
            ok = false;
            d.push(
                Diagnostic::error(
                    "K0661",
                    h.span,
                    format!("{:?} is not a header name", h.value),
                )
                .label("not a valid HTTP header name")
                .help("use letters, digits and `-` (e.g. `x-tenant-id`)"),
            );
        }
    }
    if let Some(p) = &path {
        if !p.value.starts_with('/') {
            ok = false;
            d.push(
                Diagnostic::error(
                    "K0661",
                    p.span,
                    format!("path {:?} does not start with `/`", p.value),
                )
                .label("compared to the normalized request path")
                .help(format!("write `/{}`", p.value)),
            );
        }
    }
    for (field, value, used_by) in [
        ("header_name", header_name.as_ref(), "header"),
        ("path", path.as_ref(), "path"),
    ] {
        if let Some(v) = value.filter(|_| by != used_by) {
            d.push(
                Diagnostic::warning(
                    "K0662",
                    v.span,
                    format!("`{field}` is ignored with limit_by `{by}`"),
                )
                .label("has no effect")
                .secondary(by_span, "limit_by chosen here")
                .help(format!("remove `{field}`, or set `limit_by: {used_by}`")),
            );
        }
    }
    let average = average?.value as u32;
    if !ok {
        return None;
    }
    let limit_by = match by {
        "credential" => TokenBucketLimitBy::Credential,
        "ip" => TokenBucketLimitBy::Ip,
        "service" => TokenBucketLimitBy::Service,
        "header" => TokenBucketLimitBy::Header(header_name?.value.to_ascii_lowercase()),
        "path" => TokenBucketLimitBy::Path(path?.value),
        _ => TokenBucketLimitBy::Consumer,
    };
    Some(PluginConfig::TokenBucket(TokenBucket {
        average,
        period,
        burst: burst.map_or(average, |b| b.value as u32),
        limit_by,
        max_keys,
        error_code,
        error_message,
        hide_client_headers,
    }))
}
