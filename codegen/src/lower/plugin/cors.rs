//! `cors` config (kong-compat.md §4.6): Kong's fields, defaults and checks. Regex origins
//! are checked here with the syntax of the `regex` crate the runtime compiles them with.

use kiln_runtime::plugins::cors::{is_regex_origin, origin_pattern, DEFAULT_METHODS};

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{
        record::{not_one_of, Record, Sp},
        Node,
    },
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "cors config", d)?;
    let origins = r.str_list("origins", d).unwrap_or_default();
    let headers = r.str_list("headers", d).unwrap_or_default();
    let exposed_headers = r.str_list("exposed_headers", d).unwrap_or_default();
    let methods = r.str_list("methods", d);
    let max_age = r.int("max_age", i64::MIN, i64::MAX, d).map(|m| m.value);
    let mut flag =
        |key, default: bool, d: &mut Diagnostics| r.bool(key, d).map_or(default, |b| b.value);
    let credentials = flag("credentials", false, d);
    let private_network = flag("private_network", false, d);
    let preflight_continue = flag("preflight_continue", false, d);
    let allow_origin_absent = flag("allow_origin_absent", true, d);
    r.finish(d);
    let mut ok = true;
    for o in &origins {
        ok &= check_origin(o, d);
    }
    for h in headers.iter().chain(&exposed_headers) {
        ok &= check_header_name(h, d);
    }
    let methods = match methods {
        None => DEFAULT_METHODS.iter().map(|m| m.to_string()).collect(),
        Some(list) => {
            for m in &list {
                if !DEFAULT_METHODS.contains(&m.value.as_str()) {
                    d.push(not_one_of(m, "methods", DEFAULT_METHODS));
                    ok = false;
                }
            }
            list.into_iter().map(|m| m.value).collect()
        }
    };
    let values = |l: Vec<Sp<String>>| l.into_iter().map(|e| e.value).collect();
    ok.then(|| {
        PluginConfig::Cors(Cors {
            origins: values(origins),
            headers: values(headers),
            exposed_headers: values(exposed_headers),
            methods,
            max_age,
            credentials,
            private_network,
            preflight_continue,
            allow_origin_absent,
        })
    })
}

/// K0646: an entry Kong reads as a regex must be one the runtime's `regex` accepts.
fn check_origin(o: &Sp<String>, d: &mut Diagnostics) -> bool {
    if o.value == "*" || !is_regex_origin(&o.value) {
        return true;
    }
    match regex_syntax::Parser::new().parse(&origin_pattern(&o.value)) {
        Ok(_) => true,
        Err(e) => {
            let reason = match &e {
                regex_syntax::Error::Parse(p) => p.kind().to_string(),
                regex_syntax::Error::Translate(t) => t.kind().to_string(),
                other => other.to_string(),
            };
            d.push(
                Diagnostic::error(
                    "K0646",
                    o.span,
                    format!("invalid regex in cors origin `{}`", o.value),
                )
                .label(reason)
                .help("an origin with characters other than letters, digits, `.`, `:`, `/` and `-` is a regex (Rust `regex` syntax, no look-around or backreferences), matched against the origin's host, or its `scheme://host[:port]` when the entry contains `:`; escape dots as `\\.`"),
            );
            false
        }
    }
}

/// K0604: `headers` / `exposed_headers` entries are header names (or `*`).
fn check_header_name(h: &Sp<String>, d: &mut Diagnostics) -> bool {
    if http::HeaderName::from_bytes(h.value.as_bytes()).is_ok() {
        return true;
    }
    d.push(
        Diagnostic::error(
            "K0604",
            h.span,
            format!("invalid header name `{}`", h.value),
        )
        .label("not a header name")
        .help("use letters, digits and `-`, e.g. `X-Request-ID`"),
    );
    false
}
