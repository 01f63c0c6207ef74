//! `jwt` config (kong-compat.md §4.2): Kong's fields, defaults and checks.

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{
        record::{Record, Sp},
        Node,
    },
};

/// Kong's `set` of strings: duplicates dropped, first occurrence kept.
fn set(list: Option<Vec<Sp<String>>>, default: &[&str]) -> Vec<Sp<String>> {
    let Some(list) = list else {
        return default
            .iter()
            .map(|s| Sp::new((*s).to_owned(), crate::diag::Span::default()))
            .collect();
    };
    let mut out: Vec<Sp<String>> = Vec::with_capacity(list.len());
    for item in list {
        if !out.iter().any(|o| o.value == item.value) {
            out.push(item);
        }
    }
    out
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "jwt config", d)?;
    let uri_param_names = set(r.str_list("uri_param_names", d), &["jwt"]);
    let cookie_names = set(r.str_list("cookie_names", d), &[]);
    let header_names = set(r.str_list("header_names", d), &["authorization"]);
    for h in &header_names {
        if !is_header_name(&h.value) {
            d.push(
                Diagnostic::error(
                    "K0604",
                    h.span,
                    format!("invalid header name `{}`", h.value),
                )
                .label("not a header name")
                .help("use letters, digits and `-`, e.g. `Authorization`"),
            );
        }
    }
    let mut claims_to_verify = Vec::new();
    let claims_key = r.key_span("claims_to_verify");
    if let Some(items) = r.str_list("claims_to_verify", d) {
        for c in items {
            let claim = match c.value.as_str() {
                "exp" => JwtClaim::Exp,
                "nbf" => JwtClaim::Nbf,
                _ => {
                    d.push(crate::syntax::record::not_one_of(
                        &c,
                        "claims_to_verify",
                        &["exp", "nbf"],
                    ));
                    continue;
                }
            };
            if !claims_to_verify.contains(&claim) {
                claims_to_verify.push(claim);
            }
        }
    }
    let key_claim_name = r.str("key_claim_name", d);
    let secret_is_base64 = r.bool("secret_is_base64", d).is_some_and(|b| b.value);
    let maximum_expiration = r.int("maximum_expiration", 0, 31_536_000, d);
    let anonymous = r.str("anonymous", d).map(|a| ConsumerRef {
        written: a.value,
        span: a.span,
        resolved: None,
    });
    let run_on_preflight = r.bool("run_on_preflight", d).is_none_or(|b| b.value);
    let realm = r.str("realm", d);
    r.finish(d);
    if let Some(m) = &maximum_expiration {
        if m.value > 0 && !claims_to_verify.contains(&JwtClaim::Exp) {
            let mut diag = Diagnostic::error(
                "K0620",
                m.span,
                "`maximum_expiration` requires `exp` in `claims_to_verify`",
            )
            .label("limits `exp`, which is not verified");
            if let Some(c) = claims_key {
                diag = diag.secondary(c, "`exp` is not listed here");
            }
            d.push(diag.help("add `claims_to_verify: [exp]`, or remove `maximum_expiration`"));
        }
    }
    if let Some(k) = &key_claim_name {
        if k.value.is_empty() {
            d.push(
                Diagnostic::error("K0104", k.span, "`key_claim_name` is empty")
                    .label("no claim has an empty name")
                    .help("use `iss` (Kong's default) or a header field such as `kid`"),
            );
        }
    }
    if let Some(realm) = &realm {
        let ok = realm
            .value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
        if !ok {
            d.push(
                Diagnostic::error(
                    "K0621",
                    realm.span,
                    "`realm` cannot be sent in `WWW-Authenticate`",
                )
                .label("quote, backslash or control character")
                .help("use printable characters other than `\"` and `\\`"),
            );
        }
    }
    Some(PluginConfig::Jwt(Jwt {
        uri_param_names: uri_param_names.into_iter().map(|s| s.value).collect(),
        cookie_names: cookie_names.into_iter().map(|s| s.value).collect(),
        header_names: header_names.into_iter().map(|s| s.value).collect(),
        claims_to_verify,
        key_claim_name: key_claim_name.map_or_else(|| "iss".to_owned(), |k| k.value),
        secret_is_base64,
        maximum_expiration: maximum_expiration.map_or(0, |m| m.value as u32),
        anonymous,
        run_on_preflight,
        realm: realm.map(|r| r.value),
    }))
}
