//! Routes (kong-compat.md §1.4, §2.1–2.2), nested in a service or top-level.

use super::rules::{self, PrefixError, RegexError};
use super::service::protocols;
use super::{Cx, Parent, PluginParent, RouteDraft};
use crate::diag::Diagnostic;
use crate::ir::{self, HeaderCondition, HeaderValue, PathPattern, Protocol};
use crate::syntax::record::{wrong_type, Record, Sp};
use crate::syntax::{Node, NodeKind};

const REDIRECT_CODES: &[i64] = &[426, 301, 302, 307, 308];

impl Cx {
    /// `service`: the index of the enclosing service when nested.
    pub(crate) fn lower_route(&mut self, node: &Node, service: Option<usize>) {
        let Some(mut r) = Record::new(node, "route", &mut self.d) else {
            return;
        };
        let id = self.explicit_id(&mut r);
        let name = self.entity_name(&mut r);
        self.tags(&mut r);
        let service_parent = match service {
            Some(i) => {
                self.foreign(&mut r, "service", Some("service"));
                Parent::Nested(i)
            }
            None => self.foreign(&mut r, "service", None),
        };
        let protocols = protocols(self, &mut r, &[Protocol::Http, Protocol::Https], "route")
            .unwrap_or(vec![Protocol::Http, Protocol::Https]);
        let d = &mut self.d;

        let mut methods = Vec::new();
        let methods_written = nonempty(r.raw("methods"));
        for m in r.str_list("methods", d).unwrap_or_default() {
            match rules::check_method(&m.value) {
                Ok(()) => {
                    if !methods.contains(&m.value) {
                        methods.push(m.value)
                    }
                }
                Err(upper) => {
                    let help = if upper.is_empty() {
                        "methods are upper-case letters only, e.g. `GET`".to_owned()
                    } else {
                        format!("write `{upper}`")
                    };
                    d.push(
                        Diagnostic::error("K0301", m.span, format!("invalid method `{}`", m.value))
                            .label("must match ^[A-Z]+$")
                            .help(help),
                    );
                }
            }
        }

        let hosts_written = nonempty(r.raw("hosts"));
        let hosts = r.str_list("hosts", d).map(|list| {
            let mut out = Vec::new();
            for h in list {
                match rules::parse_host_pattern(&h.value) {
                    Ok(p) => out.push(p),
                    Err(e) => d.push(
                        Diagnostic::error("K0302", h.span, format!("invalid host `{}`: {e}", h.value))
                            .label("invalid host")
                            .help("write `example.com`, `example.com:8080`, `*.example.com` or `example.*`"),
                    ),
                }
            }
            out
        });

        let mut paths = Vec::new();
        let paths_written = nonempty(r.raw("paths"));
        for p in r.str_list("paths", d).unwrap_or_default() {
            let written = if self.legacy_paths {
                let migrated = rules::migrate_legacy_path(&p.value);
                if migrated.starts_with('~') && !p.value.starts_with('~') {
                    d.push(
                        Diagnostic::warning(
                            "K0012",
                            p.span,
                            format!("legacy path `{}` is migrated to the regex `{migrated}`", p.value),
                        )
                        .label("treated as a regex")
                        .help(format!(
                            "Kong migrates paths of format 1.1/2.1 this way; write `{migrated}` and use `_format_version: \"3.0\"`"
                        )),
                    );
                }
                migrated
            } else {
                p.value.clone()
            };
            if let Some(src) = written.strip_prefix('~') {
                if !src.starts_with('/') {
                    d.push(
                        Diagnostic::error("K0304", p.span, format!("invalid path `{}`", p.value))
                            .label("a regex path must start with `~/`")
                            .help(
                                "write the regex after `~`, starting with `/`, e.g. `~/users/\\d+`",
                            ),
                    );
                    continue;
                }
                match rules::check_regex(src) {
                    Ok(re) => paths.push(PathPattern::Regex(re)),
                    // Legacy-migrated paths are not what is written: point at the whole value.
                    Err(e) if self.legacy_paths => d.push(regex_error("", &p, 1, e, "path")),
                    Err(e) => d.push(regex_error(&self.source, &p, 1, e, "path")),
                }
                continue;
            }
            match rules::check_prefix_path(&written) {
                Ok(prefix) => paths.push(PathPattern::Prefix(prefix)),
                Err(PrefixError::Invalid(e)) => d.push(
                    Diagnostic::error("K0304", p.span, format!("invalid path `{}`: {e}", p.value))
                        .label("invalid path")
                        .help("a path starts with `/` (prefix) or `~/` (regex)"),
                ),
                Err(PrefixError::NotNormalized(n)) => d.push(
                    Diagnostic::error(
                        "K0303",
                        p.span,
                        format!("non-normalized path, consider use '{n}' instead"),
                    )
                    .label("not normalized")
                    .help(format!("write `{n}`")),
                ),
            }
        }

        let mut headers = Vec::new();
        let headers_written = nonempty(r.raw("headers"));
        if let Some(h) = r.raw("headers") {
            headers = route_headers(&self.source, h, d);
        }

        let snis_written = nonempty(r.raw("snis"));
        let mut snis = Vec::new();
        if let Some(list) = r.str_list("snis", d) {
            let https = protocols.contains(&Protocol::Https);
            for s in list {
                if !https {
                    d.push(
                        Diagnostic::error(
                            "K0309",
                            s.span,
                            "`snis` can only be set when `protocols` includes `https`",
                        )
                        .label("this route has no https protocol")
                        .help("add `https` to `protocols`, or remove `snis`"),
                    );
                    break;
                }
                match rules::parse_host_pattern(&s.value) {
                    Ok(_) if !s.value.contains(':') => snis.push(s.value),
                    Ok(_) => d.push(
                        Diagnostic::error(
                            "K0302",
                            s.span,
                            format!("invalid sni `{}`: an SNI has no port", s.value),
                        )
                        .label("invalid sni")
                        .help("remove the port"),
                    ),
                    Err(e) => d.push(
                        Diagnostic::error(
                            "K0302",
                            s.span,
                            format!("invalid sni `{}`: {e}", s.value),
                        )
                        .label("invalid sni")
                        .help("write `example.com`, `*.example.com` or `example.*`"),
                    ),
                }
            }
        }

        for field in ["expression", "priority"] {
            if let Some(span) = r.key_span(field) {
                if r.raw(field).is_some() {
                    d.push(
                        Diagnostic::error("K0313", span, format!("`{field}` exists only under Kong's expressions router"))
                            .label("not a traditional_compatible route field")
                            .help("Kiln follows `router_flavor = traditional_compatible`: match with `paths`, `hosts`, `methods`, `headers`"),
                    );
                }
            }
        }
        for field in ["sources", "destinations"] {
            if let Some(span) = r.key_span(field) {
                if r.raw(field).is_some() {
                    d.push(
                        Diagnostic::error(
                            "K0311",
                            span,
                            format!("`{field}` cannot be set on an http/https route"),
                        )
                        .label("only for tcp/tls/udp routes")
                        .help(format!(
                            "remove `{field}`; to filter clients use the ip-restriction plugin"
                        )),
                    );
                }
            }
        }

        let strip_path = r.bool("strip_path", d).is_none_or(|b| b.value);
        let preserve_host = r.bool("preserve_host", d).is_some_and(|b| b.value);
        let regex_priority = r
            .int("regex_priority", i64::MIN, i64::MAX, d)
            .map_or(0, |v| v.value);
        if let Some(ph) = r.one_of("path_handling", &["v0", "v1"], d) {
            if ph.value == "v1" {
                d.push(
                    Diagnostic::warning("K0312", ph.span, "`path_handling: v1` behaves as `v0` under Kong's traditional_compatible router")
                        .label("treated as v0")
                        .help("remove it or write `v0`; Kiln implements the v0 upstream path algorithm"),
                );
            }
        }
        let mut https_redirect_status_code = 426;
        if let Some(node) = r.raw("https_redirect_status_code") {
            match node.kind {
                NodeKind::Int(c) if REDIRECT_CODES.iter().any(|x| i128::from(*x) == c) => {
                    https_redirect_status_code = c as u16;
                }
                NodeKind::Int(c) => d.push(
                    Diagnostic::error(
                        "K0104",
                        node.span,
                        format!("invalid value `{c}` for `https_redirect_status_code`"),
                    )
                    .label("not an accepted value")
                    .help("expected one of 426, 301, 302, 307, 308"),
                ),
                _ => d.push(wrong_type(node, "an integer", "https_redirect_status_code")),
            }
        }
        // Kiln always streams bodies in both directions (as Kong does with `false`); an
        // explicit `true` is said to have no effect rather than silently dropped.
        let mut buffering = |field: &'static str, d: &mut crate::diag::Diagnostics| {
            let b = r.bool(field, d);
            if let Some(b) = b.as_ref().filter(|b| b.value) {
                d.push(
                    Diagnostic::warning("K0316", b.span, format!("`{field}: true` has no effect: Kiln streams bodies"))
                        .label("ignored")
                        .help(format!("bodies are streamed with bounded memory, as Kong does with `{field}: false`; write `false` or leave the field out")),
                );
            }
            b.is_none_or(|b| b.value)
        };
        let request_buffering = buffering("request_buffering", d);
        let response_buffering = buffering("response_buffering", d);

        // Required attributes (routes_subschemas.lua): http needs one of
        // methods/hosts/headers/paths; https-only may use snis instead.
        let has_matcher = methods_written || hosts_written || headers_written || paths_written;
        let https_only = !protocols.contains(&Protocol::Http);
        if !(has_matcher
            || https_only && snis_written
            || r.has_unknown(&["plugins"])
            || r.has("expression"))
        {
            d.push(
                Diagnostic::error(
                    "K0310",
                    r.span,
                    "route must set at least one of `methods`, `hosts`, `headers`, `paths`",
                )
                .label("this route matches nothing")
                .help("add e.g. `paths: [/]` to match every request"),
            );
        }

        let index = self.routes.len();
        self.routes.push(RouteDraft {
            ir: ir::Route {
                id: String::new(),
                name: name.as_ref().map(|n| n.value.clone()),
                service: None,
                protocols,
                methods,
                hosts,
                paths,
                headers,
                snis,
                strip_path,
                preserve_host,
                regex_priority,
                https_redirect_status_code,
                request_buffering,
                response_buffering,
                origin: r.span,
            },
            id,
            name,
            service: service_parent,
        });
        if let Some(items) = r.seq("plugins", &mut self.d) {
            for item in items {
                self.lower_plugin(item, PluginParent::Route(index));
            }
        }
        r.finish(&mut self.d);
    }
}

/// Points at the offending character of a regex when the value is written plain or
/// quoted without escapes (so that character offsets in the value are columns in the file);
/// otherwise at the whole value.
fn regex_span(
    source: &str,
    p: &Sp<String>,
    prefix: usize,
    offset: Option<usize>,
) -> crate::diag::Span {
    let Some(offset) = offset else { return p.span };
    let line = source
        .lines()
        .nth(p.span.line as usize - 1)
        .unwrap_or_default();
    let written: String = line
        .chars()
        .skip(p.span.col as usize - 1)
        .take(p.span.len as usize)
        .collect();
    let quote = if written == p.value {
        0
    } else if (written.starts_with('"') || written.starts_with('\''))
        && written.get(1..written.len().saturating_sub(1)) == Some(p.value.as_str())
    {
        1
    } else {
        return p.span;
    };
    let pattern = p.value.get(prefix..).unwrap_or_default();
    let chars = pattern.get(..offset).map_or(0, |s| s.chars().count());
    crate::diag::Span {
        line: p.span.line,
        col: p.span.col + (quote + prefix + chars) as u32,
        len: 1,
    }
}

fn regex_error(
    source: &str,
    p: &Sp<String>,
    prefix: usize,
    e: RegexError,
    what: &str,
) -> Diagnostic {
    let span = regex_span(source, p, prefix, e.offset());
    let at = match e.offset() {
        Some(o) if span == p.span => format!(" (at byte {o} of the pattern)"),
        _ => String::new(),
    };
    match e {
        RegexError::Unsupported(msg, _) => Diagnostic::error(
            "K0306",
            span,
            format!("regex {what} uses a feature Rust's regex does not have: {msg}{at}"),
        )
        .label("look-around and backreferences are not supported")
        .help("Kong compiles route regexes with Rust's `regex` crate, which has no look-around or backreferences; rewrite the pattern without them"),
        RegexError::Invalid(msg, _) => Diagnostic::error("K0305", span, format!("invalid regex {what}: {msg}{at}"))
            .label("invalid regex")
            .help("fix the regular expression (Rust `regex` syntax)"),
    }
}

fn route_headers(
    source: &str,
    node: &Node,
    d: &mut crate::diag::Diagnostics,
) -> Vec<HeaderCondition> {
    let NodeKind::Map(entries) = &node.kind else {
        d.push(wrong_type(
            node,
            "a mapping of header names to values",
            "headers",
        ));
        return Vec::new();
    };
    let mut out: Vec<HeaderCondition> = Vec::new();
    for (k, v) in entries {
        let name = k.as_str().unwrap_or_default().to_ascii_lowercase();
        if name == "host" {
            d.push(
                Diagnostic::error(
                    "K0307",
                    k.span,
                    "header `host` cannot be used in route `headers`",
                )
                .label("use `hosts` instead")
                .help("match the Host header with the route's `hosts` field"),
            );
            continue;
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            d.push(
                Diagnostic::error("K0307", k.span, format!("invalid header name `{name}`"))
                    .label("not a header name")
                    .help("header names are letters, digits and `-`"),
            );
            continue;
        }
        let values: Vec<Sp<String>> = match &v.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| match &i.kind {
                    NodeKind::Str(s) => Some(Sp::new(s.clone(), i.span)),
                    _ => {
                        d.push(wrong_type(i, "a string", "headers"));
                        None
                    }
                })
                .collect(),
            NodeKind::Str(s) => vec![Sp::new(s.clone(), v.span)],
            _ => {
                d.push(wrong_type(v, "an array of strings", "headers"));
                continue;
            }
        };
        if values.is_empty() {
            d.push(
                Diagnostic::error("K0307", v.span, format!("header `{name}` has no values"))
                    .label("empty")
                    .help("list at least one value"),
            );
            continue;
        }
        let mut cond = HeaderCondition {
            name,
            values: Vec::new(),
        };
        for value in values {
            if let Some(re) = value.value.strip_prefix("~*") {
                match rules::check_regex(&re.to_ascii_lowercase()) {
                    Ok(re) => cond.values.push(HeaderValue::Regex(re)),
                    Err(e) => d.push(regex_error(source, &value, 2, e, "header value")),
                }
            } else {
                cond.values
                    .push(HeaderValue::Exact(value.value.to_ascii_lowercase()));
            }
        }
        out.push(cond);
    }
    out
}

/// Kong's `at_least_one_of` treats an empty array like an absent field.
fn nonempty(node: Option<&Node>) -> bool {
    match node.map(|n| &n.kind) {
        None => false,
        Some(NodeKind::Seq(items)) => !items.is_empty(),
        Some(NodeKind::Map(entries)) => !entries.is_empty(),
        Some(_) => true,
    }
}
