//! `key-auth` config (kong-compat.md §4.1): Kong's fields, defaults and checks.

use super::auth::{anonymous, realm};
use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{record::Record, Node},
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "key-auth config", d)?;
    let names = r.str_list("key_names", d);
    if let Some(names) = &names {
        for n in names {
            let valid = !n.value.is_empty()
                && n.value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                d.push(
                    Diagnostic::error("K0611", n.span, format!("bad header name '{}', allowed characters are A-Z, a-z, 0-9, '_', and '-'", n.value))
                        .label("not a key name")
                        .help("key names are header names: letters, digits, `-` and `_`, e.g. `apikey` or `x-api-key`"),
                );
            }
        }
        if names.is_empty() {
            if let Some(span) = r.key_span("key_names") {
                d.push(
                    Diagnostic::error("K0611", span, "`key_names` is empty")
                        .label("no name to look for")
                        .help("every request would be refused; list at least one name, e.g. `key_names: [apikey]`, or remove the field for Kong's default"),
                );
            }
        }
    }
    let hide_credentials = r.bool("hide_credentials", d).is_some_and(|b| b.value);
    let anonymous = anonymous(&mut r, d);
    let flag = |r: &mut Record, k: &'static str, d: &mut Diagnostics, default: bool| {
        r.bool(k, d).map_or(default, |b| b.value)
    };
    let key_in_header = flag(&mut r, "key_in_header", d, true);
    let key_in_query = flag(&mut r, "key_in_query", d, true);
    let key_in_body = flag(&mut r, "key_in_body", d, false);
    let run_on_preflight = flag(&mut r, "run_on_preflight", d, true);
    let realm = realm(&mut r, d);
    r.finish(d);
    Some(PluginConfig::KeyAuth(KeyAuth {
        key_names: names.map_or_else(
            || vec!["apikey".to_owned()],
            |n| n.into_iter().map(|n| n.value).collect(),
        ),
        hide_credentials,
        anonymous,
        key_in_header,
        key_in_query,
        key_in_body,
        run_on_preflight,
        realm: realm.map(|r| r.value),
    }))
}
