//! `proxy-cache` config (kong-compat.md §4.13): Kong's fields, defaults and checks, the
//! `memory` strategy only, plus Kiln's memory limits under `memory` (`max_bytes`,
//! `max_entry_bytes`).

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{
        record::{int_in, not_one_of, Record, Sp},
        Node,
    },
};

const METHODS: &[&str] = &["HEAD", "GET", "POST", "PATCH", "PUT"];

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "proxy-cache config", d)?;
    let mut ok = true;
    let response_code = match r.seq("response_code", d) {
        None => vec![200, 301, 404],
        Some(items) => {
            if items.is_empty() {
                if let Some(span) = r.key_span("response_code") {
                    d.push(
                        Diagnostic::error("K0674", span, "`response_code` is empty")
                            .label("Kong requires at least one status")
                            .help("list the cacheable statuses, e.g. `response_code: [200]`, or leave the field out for 200, 301, 404"),
                    );
                }
                ok = false;
            }
            items
                .iter()
                .filter_map(|n| int_in(n, "response_code", 100, 900, d))
                .map(|s| s.value as u16)
                .collect()
        }
    };
    let request_method = match r.str_list("request_method", d) {
        None => vec!["GET".to_owned(), "HEAD".to_owned()],
        Some(list) => {
            for m in &list {
                if !METHODS.contains(&m.value.as_str()) {
                    d.push(not_one_of(m, "request_method", METHODS));
                    ok = false;
                }
            }
            list.into_iter().map(|m| m.value).collect()
        }
    };
    let content_type = match r.str_list("content_type", d) {
        None => vec!["text/plain".to_owned(), "application/json".to_owned()],
        Some(list) => {
            for c in &list {
                ok &= check_content_type(c, d);
            }
            list.into_iter().map(|c| c.value).collect()
        }
    };
    let cache_ttl = r
        .int("cache_ttl", 1, i64::from(u32::MAX), d)
        .map_or(300, |v| v.value as u64);
    let storage_ttl = r
        .int("storage_ttl", 0, i64::from(u32::MAX), d)
        .map(|v| v.value as u64);
    let strategy = r.req_str("strategy", d);
    if let Some(s) = &strategy {
        if s.value != "memory" {
            d.push(
                Diagnostic::error(
                    "K0670",
                    s.span,
                    format!("proxy-cache strategy `{}` is not supported", s.value),
                )
                .label("Kiln caches in memory only")
                .help("use `strategy: memory`; each gateway process keeps its own cache"),
            );
            ok = false;
        }
    } else {
        ok = false;
    }
    let cache_control = r.bool("cache_control", d).is_some_and(|b| b.value);
    let ignore_uri_case = r.bool("ignore_uri_case", d).is_some_and(|b| b.value);
    let values = |l: Option<Vec<Sp<String>>>| -> Vec<Sp<String>> { l.unwrap_or_default() };
    let vary_query_params = values(r.str_list("vary_query_params", d));
    let vary_headers = values(r.str_list("vary_headers", d));
    for h in &vary_headers {
        if http::HeaderName::from_bytes(h.value.replace('_', "-").as_bytes()).is_err() {
            d.push(
                Diagnostic::error(
                    "K0672",
                    h.span,
                    format!("`{}` in vary_headers is not a header name", h.value),
                )
                .label("no request can carry this header")
                .help("use letters, digits and `-`, e.g. `Accept-Language`"),
            );
            ok = false;
        }
    }
    let mut response_headers = (true, true, true);
    if let Some(n) = r.raw("response_headers") {
        if let Some(mut rh) = Record::new(n, "proxy-cache response_headers", d) {
            let mut flag =
                |k: &'static str, d: &mut Diagnostics| rh.bool(k, d).is_none_or(|b| b.value);
            response_headers = (
                flag("age", d),
                flag("X-Cache-Status", d),
                flag("X-Cache-Key", d),
            );
            rh.finish(d);
        }
    }
    let mut dictionary_name = "kong_db_cache".to_owned();
    let mut max_bytes = 128 * 1024 * 1024;
    let mut max_entry_bytes = 1024 * 1024;
    if let Some(n) = r.raw("memory") {
        if let Some(mut m) = Record::new(n, "proxy-cache memory", d) {
            if let Some(name) = m.str("dictionary_name", d) {
                dictionary_name = name.value;
            }
            let max = m.int("max_bytes", 4096, i64::MAX, d);
            let entry = m.int("max_entry_bytes", 1, i64::MAX, d);
            if let Some(v) = &max {
                max_bytes = v.value as u64;
            }
            if let Some(v) = &entry {
                max_entry_bytes = v.value as u64;
            }
            if max_entry_bytes > max_bytes {
                let span = entry.as_ref().or(max.as_ref()).map_or(m.span, |v| v.span);
                d.push(
                    Diagnostic::error(
                        "K0673",
                        span,
                        format!("`max_entry_bytes` ({max_entry_bytes}) is larger than `max_bytes` ({max_bytes})"),
                    )
                    .label("no such response could be stored")
                    .help("make `memory.max_entry_bytes` at most `memory.max_bytes`"),
                );
                ok = false;
            }
            m.finish(d);
        }
    }
    r.finish(d);
    let names = |l: Vec<Sp<String>>| l.into_iter().map(|e| e.value).collect();
    ok.then(|| {
        PluginConfig::ProxyCache(ProxyCache {
            response_code,
            request_method,
            content_type,
            cache_ttl,
            storage_ttl,
            cache_control,
            ignore_uri_case,
            vary_query_params: names(vary_query_params),
            vary_headers: names(vary_headers),
            response_headers,
            dictionary_name,
            max_bytes,
            max_entry_bytes,
        })
    })
}

/// `type/subtype[; name=value]*` with tokens (`*` allowed), as Kong's `parse_mime_type`
/// reads it; anything else could never match a response (K0671).
fn check_content_type(c: &Sp<String>, d: &mut Diagnostics) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    let mut parts = c.value.split(';');
    let head_ok = parts
        .next()
        .and_then(|h| h.trim().split_once('/'))
        .is_some_and(|(t, s)| token(t) && token(s));
    let params_ok = parts.all(|p| {
        let p = p.trim();
        p.is_empty() || p.split_once('=').is_some_and(|(k, _)| token(k.trim()))
    });
    if head_ok && params_ok {
        return true;
    }
    d.push(
        Diagnostic::error(
            "K0671",
            c.span,
            format!("content_type `{}` is not a media type", c.value),
        )
        .label("expected `type/subtype` with optional `; name=value` parameters")
        .help("write e.g. `application/json` or `text/plain; charset=utf-8` (parameters must match exactly; `*` matches any type or subtype)"),
    );
    false
}
