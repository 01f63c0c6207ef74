//! `rate-limiting` config (kong-compat.md §4.7): Kong's fields, defaults and checks, with
//! build errors for what Kiln does not support (`policy: cluster`, `sync_rate` batching,
//! Redis over TLS).

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    lower::secret::lower_secret,
    syntax::{
        record::{wrong_type, Record, Sp},
        Node, NodeKind,
    },
};

const PERIODS: [(&str, RateLimitPeriod); 6] = [
    ("second", RateLimitPeriod::Second),
    ("minute", RateLimitPeriod::Minute),
    ("hour", RateLimitPeriod::Hour),
    ("day", RateLimitPeriod::Day),
    ("month", RateLimitPeriod::Month),
    ("year", RateLimitPeriod::Year),
];

/// Redis fields: (nested name, deprecated flat alias).
const REDIS_FIELDS: [(&str, &str); 9] = [
    ("host", "redis_host"),
    ("port", "redis_port"),
    ("username", "redis_username"),
    ("password", "redis_password"),
    ("database", "redis_database"),
    ("timeout", "redis_timeout"),
    ("ssl", "redis_ssl"),
    ("ssl_verify", "redis_ssl_verify"),
    ("server_name", "redis_server_name"),
];

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "rate-limiting config", d)?;
    let errors = d.error_count();
    let mut limits: Vec<(RateLimitPeriod, Sp<i64>)> = Vec::new();
    for (name, p) in PERIODS {
        if let Some(v) = r.int(name, 1, i64::from(u32::MAX), d) {
            limits.push((p, v));
        }
    }
    if limits.is_empty() && d.error_count() == errors {
        d.push(
            Diagnostic::error("K0650", r.span, "rate-limiting needs at least one limit")
                .label("no second, minute, hour, day, month or year")
                .help("add a limit, e.g. `minute: 100`"),
        );
    }
    for w in limits.windows(2) {
        let ((p, a), (q, b)) = (&w[0], &w[1]);
        if b.value < a.value {
            d.push(
                Diagnostic::error(
                    "K0650",
                    b.span,
                    format!(
                        "the {} limit ({}) is lower than the {} limit ({})",
                        name(*q),
                        b.value,
                        name(*p),
                        a.value
                    ),
                )
                .label("a longer window with a lower limit")
                .secondary(a.span, "the shorter window's limit")
                .help("Kong refuses this: the longer window would always block first; raise it or lower the shorter one"),
            );
        }
    }
    let limit_by = r
        .one_of(
            "limit_by",
            &["consumer", "credential", "ip", "service", "header", "path"],
            d,
        )
        .map_or("consumer", |s| s.value);
    let header_name = r.str("header_name", d);
    let path = r.str("path", d);
    let limit_by = match limit_by {
        "credential" => RateLimitBy::Credential,
        "ip" => RateLimitBy::Ip,
        "service" => RateLimitBy::Service,
        "header" => match header_name {
            Some(h) if is_header_name(&h.value) => {
                RateLimitBy::Header(h.value.to_ascii_lowercase())
            }
            Some(h) => {
                d.push(
                    Diagnostic::error(
                        "K0651",
                        h.span,
                        format!("`{}` is not a header name", h.value),
                    )
                    .label("not a valid header name")
                    .help("header names use letters, digits and `!#$%&'*+-.^_`|~`"),
                );
                return None;
            }
            None => {
                d.push(
                    Diagnostic::error("K0651", r.span, "`limit_by: header` needs `header_name`")
                        .label("no header to count by")
                        .help("add `header_name: <header>`"),
                );
                return None;
            }
        },
        "path" => match path {
            Some(p) if p.value.starts_with('/') => RateLimitBy::Path(p.value),
            Some(p) => {
                d.push(
                    Diagnostic::error("K0651", p.span, "`path` must start with `/`")
                        .label("not a path")
                        .help("write the request path to count, e.g. `path: /api/orders`"),
                );
                return None;
            }
            None => {
                d.push(
                    Diagnostic::error("K0651", r.span, "`limit_by: path` needs `path`")
                        .label("no path to count by")
                        .help("add `path: /...`"),
                );
                return None;
            }
        },
        _ => RateLimitBy::Consumer,
    };
    let policy = r.one_of("policy", &["local", "cluster", "redis"], d);
    let fault_tolerant = r.bool("fault_tolerant", d).is_none_or(|b| b.value);
    let hide_client_headers = r.bool("hide_client_headers", d).is_some_and(|b| b.value);
    let error_code = r
        .int("error_code", 100, 599, d)
        .map_or(429, |c| c.value as u16);
    let error_message = r
        .str("error_message", d)
        .map_or_else(|| "API rate limit exceeded".to_owned(), |m| m.value);
    if let Some(node) = r.raw("sync_rate") {
        let ok = match node.kind {
            NodeKind::Int(i) => i == -1,
            NodeKind::Float(f) => f == -1.0,
            _ => {
                d.push(wrong_type(node, "a number", "sync_rate"));
                true
            }
        };
        if !ok {
            d.push(
                Diagnostic::error("K0653", node.span, "`sync_rate` batching is not supported yet")
                    .label("only -1 (count synchronously) is supported")
                    .help("remove `sync_rate` (or set it to -1): every request is counted in Redis as it is evaluated"),
            );
        }
    }
    let redis = redis_settings(&mut r, d);
    let policy_span = policy.as_ref().map(|p| p.span);
    let policy = match policy.map(|p| p.value) {
        Some("cluster") => {
            let span = policy_span.unwrap_or(r.span);
            d.push(
                Diagnostic::error("K0652", span, "`policy: cluster` needs Kong's database")
                    .label("Kiln has no database")
                    .help("use `policy: redis` (with `redis.host`) for limits shared by every gateway replica, or `policy: local` for per-replica limits"),
            );
            None
        }
        Some("redis") => match redis {
            Some(Some(s)) => Some(RateLimitPolicy::Redis(Box::new(s))),
            Some(None) => {
                d.push(
                    Diagnostic::error(
                        "K0655",
                        policy_span.unwrap_or(r.span),
                        "`policy: redis` needs `redis.host`",
                    )
                    .label("no Redis server given")
                    .help("add `redis: {host: <host>, port: 6379}`"),
                );
                None
            }
            None => None,
        },
        _ => Some(RateLimitPolicy::Local),
    };
    r.finish(d);
    if d.error_count() != errors {
        return None;
    }
    Some(PluginConfig::RateLimiting(RateLimiting {
        limits: limits
            .into_iter()
            .map(|(p, v)| (p, v.value as u64))
            .collect(),
        limit_by,
        policy: policy?,
        fault_tolerant,
        hide_client_headers,
        error_code,
        error_message,
    }))
}

/// The nested node of `field` or its flat alias (not both: K0656).
fn pick<'a>(
    sub: &mut Option<Record<'a>>,
    r: &mut Record<'a>,
    field: &'static str,
    flat: &'static str,
    d: &mut Diagnostics,
) -> Option<&'a Node> {
    let a = sub
        .as_mut()
        .and_then(|s| s.raw(field).map(|n| (n, s.key_span(field))));
    let b = r.raw(flat).map(|n| (n, r.key_span(flat)));
    match (a, b) {
        (Some((_, Some(sa))), Some((_, Some(sb)))) => {
            d.push(
                Diagnostic::error(
                    "K0656",
                    sb,
                    format!("`{flat}` and `redis.{field}` are both set"),
                )
                .label("deprecated alias")
                .secondary(sa, "set here too")
                .help(format!("keep only `redis.{field}`")),
            );
            None
        }
        (Some((n, _)), _) | (None, Some((n, _))) => Some(n),
        (None, None) => None,
    }
}

fn name(p: RateLimitPeriod) -> &'static str {
    PERIODS
        .iter()
        .find(|(_, q)| *q == p)
        .map_or("?", |(n, _)| n)
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The Redis settings, from `redis: {...}` and the flat `redis_*` aliases. `None` on an
/// error already reported; `Some(None)` when no host is given.
fn redis_settings<'a>(r: &mut Record<'a>, d: &mut Diagnostics) -> Option<Option<RedisSettings>> {
    let errors = d.error_count();
    let nested = r.raw("redis");
    let mut sub = match nested {
        Some(n) => Some(Record::new(n, "redis config", d)?),
        None => None,
    };
    let mut nodes: [Option<&Node>; 9] = [None; 9];
    for (i, (field, flat)) in REDIS_FIELDS.iter().enumerate() {
        nodes[i] = pick(&mut sub, r, field, flat, d);
    }
    if let Some(s) = sub {
        s.finish(d);
    }
    let string = |n: Option<&Node>, key: &str, d: &mut Diagnostics| -> Option<Sp<String>> {
        let n = n?;
        match &n.kind {
            NodeKind::Str(s) if !s.is_empty() => Some(Sp::new(s.clone(), n.span)),
            _ => {
                d.push(wrong_type(n, "a non-empty string", key));
                None
            }
        }
    };
    let int = |n: Option<&Node>, key: &str, lo: i64, hi: i64, d: &mut Diagnostics| {
        n.and_then(|n| crate::syntax::record::int_in(n, key, lo, hi, d))
    };
    let boolean = |n: Option<&Node>, key: &str, d: &mut Diagnostics| -> Option<Sp<bool>> {
        let n = n?;
        match n.kind {
            NodeKind::Bool(b) => Some(Sp::new(b, n.span)),
            _ => {
                d.push(wrong_type(n, "a boolean (true or false)", key));
                None
            }
        }
    };
    let host = string(nodes[0], "host", d);
    let port = int(nodes[1], "port", 0, 65_535, d).map_or(6379, |p| p.value as u16);
    let username = string(nodes[2], "username", d).and_then(|u| lower_secret(&u, d));
    let password = string(nodes[3], "password", d).and_then(|p| lower_secret(&p, d));
    let database = int(nodes[4], "database", 0, i64::from(i32::MAX), d).map_or(0, |v| v.value);
    let timeout_ms =
        int(nodes[5], "timeout", 0, i64::from(i32::MAX), d).map_or(2000, |v| v.value as u64);
    let ssl = boolean(nodes[6], "ssl", d);
    if let Some(ssl) = &ssl {
        if ssl.value {
            d.push(
                Diagnostic::error("K0654", ssl.span, "Redis over TLS (`ssl: true`) is not supported yet")
                    .label("no TLS client for Redis in Kiln yet")
                    .help("connect over plain TCP on a private network (`ssl: false`), or remove the plugin's Redis policy"),
            );
        }
    }
    for (i, key) in [(7, "ssl_verify"), (8, "server_name")] {
        if let Some(n) = nodes[i] {
            let used = if key == "ssl_verify" {
                boolean(Some(n), key, d).is_some_and(|b| b.value)
            } else {
                string(Some(n), key, d).is_some()
            };
            if used && !ssl.as_ref().is_some_and(|s| s.value) {
                d.push(
                    Diagnostic::warning(
                        "K0654",
                        n.span,
                        format!("`{key}` has no effect without `ssl`"),
                    )
                    .label("only used for TLS connections")
                    .help(format!(
                        "remove `{key}`; Kiln does not support Redis over TLS yet"
                    )),
                );
            }
        }
    }
    if d.error_count() != errors {
        return None;
    }
    Some(host.map(|h| RedisSettings {
        host: h.value,
        port,
        username,
        password,
        database,
        timeout_ms,
    }))
}
