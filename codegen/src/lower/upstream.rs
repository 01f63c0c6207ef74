//! Upstreams and targets (kong-compat.md §1.5). Kiln balances round-robin only; anything
//! that would change balancing (other algorithms, hashing, health checks) is rejected
//! rather than silently ignored.

use super::rules;
use super::{Cx, Parent, TargetDraft, UpstreamDraft};
use crate::diag::Diagnostic;
use crate::ir;
use crate::syntax::record::{Record, Sp};
use crate::syntax::{Node, NodeKind};

const HASH_FIELDS: &[&str] = &[
    "hash_on_header",
    "hash_fallback_header",
    "hash_on_cookie",
    "hash_on_query_arg",
    "hash_fallback_query_arg",
    "hash_on_uri_capture",
    "hash_fallback_uri_capture",
];

impl Cx {
    pub(crate) fn lower_upstream(&mut self, node: &Node) {
        let Some(mut r) = Record::new(node, "upstream", &mut self.d) else {
            return;
        };
        let id = self.explicit_id(&mut r);
        self.tags(&mut r);
        let d = &mut self.d;
        let name = r.req_str("name", d);
        if let Some(n) = &name {
            let err = if n.value.parse::<std::net::IpAddr>().is_ok() {
                Some("an upstream name is a host name, not an IP address".to_owned())
            } else if n.value.contains(':') {
                Some("an upstream name has no port".to_owned())
            } else {
                rules::check_hostname(&n.value).err()
            };
            if let Some(e) = err {
                d.push(
                    Diagnostic::error("K0402", n.span, format!("invalid upstream name `{}`: {e}", n.value))
                        .label("invalid upstream name")
                        .help("name the upstream like a host, e.g. `orders.internal`, and use it as the service host"),
                );
            }
        }
        if let Some(a) = r.one_of(
            "algorithm",
            &[
                "round-robin",
                "consistent-hashing",
                "least-connections",
                "latency",
            ],
            d,
        ) {
            if a.value != "round-robin" {
                d.push(unsupported(
                    a.span,
                    &format!("load-balancing algorithm `{}`", a.value),
                    "remove `algorithm` (Kiln balances round-robin)",
                ));
            }
        }
        const HASH_VALUES: &[&str] = &[
            "none",
            "consumer",
            "ip",
            "header",
            "cookie",
            "path",
            "query_arg",
            "uri_capture",
        ];
        for field in ["hash_on", "hash_fallback"] {
            if let Some(h) = r.one_of(field, HASH_VALUES, d) {
                if h.value != "none" {
                    d.push(unsupported(
                        h.span,
                        "hash-based balancing",
                        &format!("remove `{field}` (Kiln balances round-robin)"),
                    ));
                }
            }
        }
        for field in HASH_FIELDS.iter().chain(&["hash_on_cookie_path"]) {
            if let Some(v) = r.str(field, d) {
                if !(*field == "hash_on_cookie_path" && v.value == "/") {
                    d.push(unsupported(
                        v.span,
                        "hash-based balancing",
                        &format!("remove `{field}`"),
                    ));
                }
            }
        }
        let slots = r
            .int("slots", 10, 65536, d)
            .map_or(10_000, |v| v.value as u32);
        let host_header = r.str("host_header", d).map(|h| h.value);
        if let Some(span) = r.key_span("client_certificate") {
            if r.raw("client_certificate").is_some() {
                d.push(unsupported(
                    span,
                    "upstream client certificates",
                    "remove `client_certificate`",
                ));
            }
        }
        if let Some(b) = r.bool("use_srv_name", d) {
            if b.value {
                d.push(unsupported(
                    b.span,
                    "`use_srv_name`",
                    "remove `use_srv_name`",
                ));
            }
        }
        if let Some(hc) = r.raw("healthchecks") {
            check_healthchecks(hc, "healthchecks", d);
        }
        let index = self.upstreams.len();
        let Some(name) = name else {
            // Keep going so that nested targets are still checked.
            if let Some(items) = r.seq("targets", &mut self.d) {
                for item in items {
                    self.lower_target(item, Some(usize::MAX));
                }
            }
            r.finish(&mut self.d);
            return;
        };
        self.upstreams.push(UpstreamDraft {
            ir: ir::Upstream {
                id: String::new(),
                name: name.value.clone(),
                slots,
                host_header,
                targets: Vec::new(),
                origin: r.span,
            },
            id,
            name,
        });
        if let Some(items) = r.seq("targets", &mut self.d) {
            for item in items {
                self.lower_target(item, Some(index));
            }
        }
        r.finish(&mut self.d);
    }

    /// `upstream`: the enclosing upstream's index when nested (`usize::MAX` when that
    /// upstream was invalid: the target is checked, then dropped).
    pub(crate) fn lower_target(&mut self, node: &Node, upstream: Option<usize>) {
        let Some(mut r) = Record::new(node, "target", &mut self.d) else {
            return;
        };
        // Targets have ids in Kong but nothing refers to them; check the format only.
        self.explicit_id(&mut r);
        self.tags(&mut r);
        let parent = match upstream {
            Some(i) => {
                self.foreign(&mut r, "upstream", Some("upstream"));
                Parent::Nested(i)
            }
            None => {
                let p = self.foreign(&mut r, "upstream", None);
                if p == Parent::None {
                    let d = r.missing("upstream");
                    self.d.push(d.help("add `upstream: <upstream name>`, or write this target inside its upstream's `targets`"));
                }
                p
            }
        };
        let d = &mut self.d;
        let target = r.req_str("target", d);
        let weight = r.int("weight", 0, 65535, d).map_or(100, |w| w.value as u32);
        let origin = r.span;
        r.finish(d);
        let Some(target) = target else { return };
        let (host, port) = match rules::split_host_port(&target.value) {
            Ok(hp) => hp,
            Err(e) => {
                d.push(
                    Diagnostic::error(
                        "K0401",
                        target.span,
                        format!("invalid target `{}`: {e}", target.value),
                    )
                    .label("invalid target")
                    .help("write `host:port`, e.g. `10.0.0.1:8080`"),
                );
                return;
            }
        };
        if let Err(e) = rules::check_hostname(host) {
            d.push(
                Diagnostic::error(
                    "K0401",
                    target.span,
                    format!("invalid target `{}`: {e}", target.value),
                )
                .label("invalid target")
                .help("write `host:port`, e.g. `10.0.0.1:8080`"),
            );
            return;
        }
        let port = match port {
            Some(p) => p,
            None => {
                d.push(
                    Diagnostic::warning(
                        "K0403",
                        target.span,
                        format!("target `{}` has no port; Kong uses 8000", target.value),
                    )
                    .label("port 8000 assumed")
                    .help(format!(
                        "write the port explicitly, e.g. `{}:8000`",
                        target.value
                    )),
                );
                8000
            }
        };
        if matches!(parent, Parent::Nested(usize::MAX)) {
            return;
        }
        self.targets.push(TargetDraft {
            ir: ir::Target {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
                weight,
                origin,
            },
            target: Sp::new(target.value.clone(), target.span),
            upstream: parent,
        });
    }
}

fn unsupported(span: crate::diag::Span, what: &str, help: &str) -> Diagnostic {
    Diagnostic::error(
        "K0400",
        span,
        format!("{what} is not supported by Kiln yet"),
    )
    .label("not supported yet")
    .help(help.to_owned())
}

/// Kong's health-check defaults (kong-compat.md §1.5). Written values must equal them:
/// Kiln has no health checker yet, so anything else would be silently ignored.
fn healthcheck_default(path: &str) -> Option<Default> {
    use Default::*;
    Some(match path {
        "healthchecks.threshold" => Int(0),
        "healthchecks.active.type" | "healthchecks.passive.type" => Str("http"),
        "healthchecks.active.timeout" => Int(1),
        "healthchecks.active.concurrency" => Int(10),
        "healthchecks.active.http_path" => Str("/"),
        "healthchecks.active.https_verify_certificate" => Bool(true),
        "healthchecks.active.https_sni" | "healthchecks.active.headers" => Null,
        "healthchecks.active.healthy.interval"
        | "healthchecks.active.healthy.successes"
        | "healthchecks.active.unhealthy.interval"
        | "healthchecks.active.unhealthy.tcp_failures"
        | "healthchecks.active.unhealthy.timeouts"
        | "healthchecks.active.unhealthy.http_failures"
        | "healthchecks.passive.healthy.successes"
        | "healthchecks.passive.unhealthy.tcp_failures"
        | "healthchecks.passive.unhealthy.timeouts"
        | "healthchecks.passive.unhealthy.http_failures" => Int(0),
        "healthchecks.active.healthy.http_statuses" => Ints(&[200, 302]),
        "healthchecks.active.unhealthy.http_statuses" => {
            Ints(&[429, 404, 500, 501, 502, 503, 504, 505])
        }
        "healthchecks.passive.healthy.http_statuses" => Ints(&[
            200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306,
            307, 308,
        ]),
        "healthchecks.passive.unhealthy.http_statuses" => Ints(&[429, 500, 503]),
        "healthchecks.active"
        | "healthchecks.passive"
        | "healthchecks.active.healthy"
        | "healthchecks.active.unhealthy"
        | "healthchecks.passive.healthy"
        | "healthchecks.passive.unhealthy" => Record,
        _ => return None,
    })
}

enum Default {
    Int(i128),
    Str(&'static str),
    Bool(bool),
    Null,
    Ints(&'static [i128]),
    Record,
}

fn check_healthchecks(node: &Node, path: &str, d: &mut crate::diag::Diagnostics) {
    let NodeKind::Map(entries) = &node.kind else {
        d.push(crate::syntax::record::wrong_type(node, "a mapping", path));
        return;
    };
    for (k, v) in entries {
        let key = k.as_str().unwrap_or_default();
        if key == "_comment" || key == "_ignore" {
            continue;
        }
        let sub = format!("{path}.{key}");
        let Some(default) = healthcheck_default(&sub) else {
            d.push(
                Diagnostic::error("K0101", k.span, format!("unknown field `{key}` in {path}"))
                    .label("not a health-check field")
                    .help("see Kong's upstream healthchecks schema"),
            );
            continue;
        };
        let same = match (&default, &v.kind) {
            (Default::Record, NodeKind::Map(_)) => {
                check_healthchecks(v, &sub, d);
                true
            }
            (_, NodeKind::Null) => true,
            (Default::Int(a), NodeKind::Int(b)) => a == b,
            (Default::Str(a), NodeKind::Str(b)) => a == b,
            (Default::Bool(a), NodeKind::Bool(b)) => a == b,
            (Default::Ints(a), NodeKind::Seq(items)) => {
                items.len() == a.len()
                    && items
                        .iter()
                        .zip(a.iter())
                        .all(|(i, x)| i.kind == NodeKind::Int(*x))
            }
            _ => false,
        };
        if !same {
            d.push(
                Diagnostic::error(
                    "K0400",
                    v.span,
                    format!("`{sub}` other than Kong's default is not supported by Kiln yet"),
                )
                .label("health checks are not supported yet")
                .help(format!(
                    "remove `{key}`; Kiln has no active or passive health checks yet"
                )),
            );
        }
    }
}
