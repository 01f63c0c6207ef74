//! Services (kong-compat.md §1.3), with their nested routes and plugins.

use super::rules::{self, parse_protocol, PROTOCOLS};
use super::{Cx, PluginParent, SvcDraft};
use crate::diag::Diagnostic;
use crate::ir::{self, Protocol};
use crate::syntax::record::{not_one_of, Record, Sp};
use crate::syntax::Node;

const TIMEOUT_MAX: i64 = (1 << 31) - 2;

impl Cx {
    pub(crate) fn lower_service(&mut self, node: &Node) {
        let Some(mut r) = Record::new(node, "service", &mut self.d) else {
            return;
        };
        let id = self.explicit_id(&mut r);
        let name = self.entity_name(&mut r);
        self.tags(&mut r);
        let d = &mut self.d;

        let mut protocol = Protocol::Http;
        let mut protocol_span = r.span;
        let mut host: Option<Sp<String>> = None;
        let mut port: u16 = 80;
        let mut path: Option<Sp<String>> = None;

        let url = r.str("url", d);
        if let Some(url) = &url {
            match rules::parse_service_url(&url.value) {
                Ok(u) => {
                    protocol_span = url.span;
                    match parse_protocol(&u.scheme) {
                        Some(p) => protocol = p,
                        None => d.push(
                            Diagnostic::error(
                                "K0201",
                                url.span,
                                format!("invalid url: unknown scheme `{}`", u.scheme),
                            )
                            .label("invalid url")
                            .help(format!(
                                "the scheme is the service protocol, one of {}",
                                PROTOCOLS.join(", ")
                            )),
                        ),
                    }
                    host = Some(Sp::new(u.host, url.span));
                    port = u.port;
                    path = u.path.map(|p| Sp::new(p, url.span));
                }
                Err(e) => d.push(
                    Diagnostic::error("K0201", url.span, format!("invalid url: {e}"))
                        .label("invalid url")
                        .help("write it as `http://host:port/path`"),
                ),
            }
            // Kong: url overrides these fields; writing both is almost always a mistake.
            for field in ["protocol", "host", "port", "path"] {
                if let Some(span) = r.key_span(field) {
                    d.push(
                        Diagnostic::warning(
                            "K0206",
                            span,
                            format!("`{field}` is overridden by `url`"),
                        )
                        .label("ignored")
                        .secondary(url.span, "`url` sets it")
                        .help(format!("remove `{field}` or `url`")),
                    );
                }
            }
        } else {
            if let Some(p) = r.one_of("protocol", PROTOCOLS, d) {
                protocol_span = p.span;
                protocol = parse_protocol(p.value).unwrap_or(Protocol::Http);
            }
            host = r.req_str("host", d);
            if let Some(p) = r.int("port", 0, 65535, d) {
                port = p.value as u16;
            }
            path = r.str("path", d);
        }
        if protocol != Protocol::Http {
            d.push(
                Diagnostic::error(
                    "K0204",
                    protocol_span,
                    format!("service protocol `{}` is not supported by Kiln yet", protocol.as_str()),
                )
                .label("not supported yet")
                .help("Kiln proxies to http upstreams only for now; use `protocol: http` (or an `http://` url)"),
            );
        }
        if let Some(h) = &host {
            if let Err(e) = rules::check_hostname(&h.value) {
                let help = if h.value.contains(':') && !h.value.starts_with('[') {
                    "write the port in `port:`, not in `host`"
                } else {
                    "write a host name or an IP address"
                };
                d.push(
                    Diagnostic::error("K0202", h.span, format!("invalid service host: {e}"))
                        .label("invalid host")
                        .help(help),
                );
            }
        }
        if let Some(p) = &path {
            let err = if !p.value.starts_with('/') {
                Some("must start with `/`".to_owned())
            } else if p.value.contains("//") {
                Some("must not contain `//`".to_owned())
            } else {
                rules::check_path_chars(&p.value).err()
            };
            if let Some(e) = err {
                d.push(
                    Diagnostic::error(
                        "K0203",
                        p.span,
                        format!("invalid service path `{}`: {e}", p.value),
                    )
                    .label("invalid path")
                    .help(
                        "write an absolute path such as `/api`, percent-encoding other characters",
                    ),
                );
            }
        }
        let retries = r.int("retries", 0, 32767, d).map_or(5, |v| v.value as u32);
        let mut timeout = |r: &mut Record, key: &'static str| {
            r.int(key, 1, TIMEOUT_MAX, d)
                .map_or(60_000, |v| v.value as u64)
        };
        let connect_timeout_ms = timeout(&mut r, "connect_timeout");
        let write_timeout_ms = timeout(&mut r, "write_timeout");
        let read_timeout_ms = timeout(&mut r, "read_timeout");
        let d = &mut self.d;
        let enabled = r.bool("enabled", d).is_none_or(|b| b.value);
        for field in [
            "client_certificate",
            "tls_verify",
            "tls_verify_depth",
            "ca_certificates",
        ] {
            if let Some(span) = r.key_span(field) {
                if r.raw(field).is_some() {
                    d.push(
                        Diagnostic::error(
                            "K0205",
                            span,
                            format!("`{field}` is not supported by Kiln yet"),
                        )
                        .label("upstream TLS is not supported yet")
                        .help(format!(
                            "remove `{field}` (it applies only to https/tls services)"
                        )),
                    );
                }
            }
        }

        let index = self.services.len();
        self.services.push(SvcDraft {
            ir: ir::Service {
                id: String::new(),
                name: name.as_ref().map(|n| n.value.clone()),
                protocol,
                host: host.map(|h| h.value).unwrap_or_default(),
                port,
                path: path.map(|p| p.value),
                retries,
                connect_timeout_ms,
                write_timeout_ms,
                read_timeout_ms,
                enabled,
                upstream: None,
                origin: r.span,
            },
            id,
            name,
        });

        if let Some(items) = r.seq("routes", &mut self.d) {
            for item in items {
                self.lower_route(item, Some(index));
            }
        }
        if let Some(items) = r.seq("plugins", &mut self.d) {
            for item in items {
                self.lower_plugin(item, PluginParent::Service(index));
            }
        }
        r.finish(&mut self.d);
    }
}

/// A `protocols` list: each known, supported by Kiln (`supported`), no duplicates.
pub(crate) fn protocols(
    cx: &mut Cx,
    r: &mut Record,
    supported: &[Protocol],
    what: &str,
) -> Option<Vec<Protocol>> {
    let list = r.str_list("protocols", &mut cx.d)?;
    if list.is_empty() {
        if let Some(span) = r.key_span("protocols") {
            cx.d.push(
                Diagnostic::error("K0104", span, format!("{what} `protocols` is empty"))
                    .label("needs at least one protocol")
                    .help("write e.g. `protocols: [http, https]`, or leave the field out for the default"),
            );
        }
        return None;
    }
    let mut out = Vec::new();
    for p in &list {
        match parse_protocol(&p.value) {
            Some(proto) if supported.contains(&proto) => {
                if !out.contains(&proto) {
                    out.push(proto);
                }
            }
            Some(proto) => cx.d.push(
                Diagnostic::error(
                    "K0300",
                    p.span,
                    format!(
                        "{what} protocol `{}` is not supported by Kiln yet",
                        proto.as_str()
                    ),
                )
                .label("not supported yet")
                .help(format!(
                    "Kiln supports {}",
                    supported
                        .iter()
                        .map(|p| format!("`{}`", p.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
            None => cx.d.push(not_one_of(p, "protocols", PROTOCOLS)),
        }
    }
    Some(out)
}
