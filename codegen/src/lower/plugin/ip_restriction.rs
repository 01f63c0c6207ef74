//! `ip-restriction` config (kong-compat.md §4.5): Kong's fields, defaults and checks. Each
//! entry is parsed with the runtime's own parser, so what builds is what starts.

use std::net::{Ipv4Addr, Ipv6Addr};

use kiln_runtime::plugins::ip_restriction::{parse_entry, Range};

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{
        record::{Record, Sp},
        Node,
    },
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "ip-restriction config", d)?;
    let allow = r.str_list("allow", d).unwrap_or_default();
    let deny = r.str_list("deny", d).unwrap_or_default();
    let status = r.int("status", 100, 599, d).map(|s| s.value as u16);
    let message = r.str("message", d).map(|m| m.value);
    let span = r.span;
    r.finish(d);
    let mut ok = true;
    for e in allow.iter().chain(&deny) {
        ok &= check_entry(e, d);
    }
    if allow.is_empty() && deny.is_empty() {
        d.push(
            Diagnostic::error(
                "K0643",
                span,
                "ip-restriction needs a non-empty `allow` or `deny` list",
            )
            .label("no addresses to check")
            .help("add `allow: [10.0.0.0/8, ...]` and/or `deny: [...]`"),
        );
        return None;
    }
    let values = |l: Vec<Sp<String>>| l.into_iter().map(|e| e.value).collect();
    ok.then(|| {
        PluginConfig::IpRestriction(IpRestriction {
            allow: values(allow),
            deny: values(deny),
            status,
            message,
        })
    })
}

/// K0644 for an entry that is not an IP or CIDR block; K0645 (warning) for a block with host
/// bits set, which Kong accepts and matches as the whole block.
fn check_entry(e: &Sp<String>, d: &mut Diagnostics) -> bool {
    match parse_entry(&e.value) {
        Err(msg) => {
            d.push(
                Diagnostic::error(
                    "K0644",
                    e.span,
                    format!("invalid IP address or CIDR block `{}`", e.value),
                )
                .label(msg)
                .help("write an IPv4/IPv6 address (`10.0.0.1`, `2001:db8::1`) or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`)"),
            );
            false
        }
        Ok(entry) => {
            if entry.host_bits_set {
                let net = match entry.range {
                    Range::V4(lo, _) if e.value.contains(':') => {
                        format!("::ffff:{}", Ipv4Addr::from(lo))
                    }
                    Range::V4(lo, _) => Ipv4Addr::from(lo).to_string(),
                    Range::V6(lo, _) => Ipv6Addr::from(lo).to_string(),
                };
                let prefix = e.value.split_once('/').map_or("", |(_, p)| p);
                let block = format!("{net}/{prefix}");
                d.push(
                    Diagnostic::warning(
                        "K0645",
                        e.span,
                        format!("CIDR block `{}` has host bits set", e.value),
                    )
                    .label(format!("matches all of `{block}`, as in Kong"))
                    .help(format!("write `{block}` (or the address alone, without a prefix, to match one host)")),
                );
            }
            true
        }
    }
}
