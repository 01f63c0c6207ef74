//! Warns about (parts of) routes that can never match because a route tried earlier
//! matches every request they match.
//!
//! The check is conservative: it only reports what it can prove from the fields alone
//! (host patterns, method sets, exact header values, prefixes; identical regex lists).

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::{self, HeaderValue, HostPattern},
    plan::{SubPaths, SubRoute},
};

fn port_covers(a: Option<u16>, b: Option<u16>) -> bool {
    a.is_none() || a == b
}

fn host_covers(a: &HostPattern, b: &HostPattern) -> bool {
    use HostPattern::*;
    match (a, b) {
        (Exact { host: ha, port: pa }, Exact { host: hb, port: pb }) => {
            ha == hb && port_covers(*pa, *pb)
        }
        (Suffix { suffix, port: pa }, Exact { host, port: pb }) => {
            host.ends_with(suffix.as_str()) && port_covers(*pa, *pb)
        }
        (Prefix { prefix, port: pa }, Exact { host, port: pb }) => {
            host.starts_with(prefix.as_str()) && port_covers(*pa, *pb)
        }
        (
            Suffix {
                suffix: sa,
                port: pa,
            },
            Suffix {
                suffix: sb,
                port: pb,
            },
        ) => sb.ends_with(sa.as_str()) && port_covers(*pa, *pb),
        (
            Prefix {
                prefix: sa,
                port: pa,
            },
            Prefix {
                prefix: sb,
                port: pb,
            },
        ) => sb.starts_with(sa.as_str()) && port_covers(*pa, *pb),
        _ => false,
    }
}

/// True when every request `b` matches is matched by `a`.
pub fn covers(a: &SubRoute, b: &SubRoute) -> bool {
    let hosts = a.hosts.is_empty()
        || (!b.hosts.is_empty()
            && b.hosts
                .iter()
                .all(|hb| a.hosts.iter().any(|ha| host_covers(ha, hb))));
    let methods = a.methods.is_empty()
        || (!b.methods.is_empty() && b.methods.iter().all(|m| a.methods.contains(m)));
    let headers = a.headers.iter().all(|ha| {
        b.headers
            .iter()
            .any(|hb| hb.name == ha.name && hb.values.iter().all(|v| a_value_covers(&ha.values, v)))
    });
    let paths = match (&a.paths, &b.paths) {
        (SubPaths::Any, _) => true,
        (SubPaths::Prefix(pa), SubPaths::Prefix(pb)) => pb
            .iter()
            .all(|p| pa.iter().any(|q| p.starts_with(q.as_str()))),
        (SubPaths::Regex(ra), SubPaths::Regex(rb)) => rb.iter().all(|r| ra.contains(r)),
        // A regex without metacharacters (`~/api`) is, anchored at the start, a prefix.
        (SubPaths::Regex(ra), SubPaths::Prefix(pb)) => pb.iter().all(|p| {
            ra.iter()
                .any(|r| is_literal(r) && p.starts_with(r.as_str()))
        }),
        _ => false,
    };
    hosts && methods && headers && paths
}

fn is_literal(re: &str) -> bool {
    regex_syntax::escape(re) == re
}

fn a_value_covers(a: &[HeaderValue], v: &HeaderValue) -> bool {
    a.contains(v)
}

fn route_label(config: &ir::Config, sr: &SubRoute) -> String {
    let r = &config.routes[sr.route.index()];
    match &r.name {
        Some(n) => format!("route '{n}'"),
        None => format!("route {}", r.id),
    }
}

pub fn check(config: &ir::Config, subs: &[SubRoute], diags: &mut Diagnostics) {
    // shadowed[route] = (number of shadowed sub-routes, first shadowing sub-route)
    let mut per_route: Vec<(usize, usize, Option<usize>)> = vec![(0, 0, None); config.routes.len()];
    for sr in subs {
        per_route[sr.route.index()].0 += 1;
    }
    for (j, b) in subs.iter().enumerate() {
        if let Some(i) = subs[..j]
            .iter()
            .position(|a| a.route != b.route && covers(a, b))
        {
            let e = &mut per_route[b.route.index()];
            e.1 += 1;
            e.2.get_or_insert(i);
        }
    }
    for (ri, (total, shadowed, by)) in per_route.into_iter().enumerate() {
        let Some(by) = by else { continue };
        let b_route = &config.routes[ri];
        let a = &subs[by];
        let a_route = &config.routes[a.route.index()];
        let b_label = match &b_route.name {
            Some(n) => format!("route '{n}'"),
            None => format!("route {}", b_route.id),
        };
        let msg = if shadowed == total {
            format!(
                "{b_label} can never match: {} always matches first",
                route_label(config, a)
            )
        } else {
            format!(
                "some paths of {b_label} can never match: {} always matches them first",
                route_label(config, a)
            )
        };
        diags.push(
            Diagnostic::warning("K1001", b_route.origin, msg)
                .label("shadowed")
                .secondary(a_route.origin, "this route has higher priority")
                .help(
                    "make the shadowed route more specific (hosts, methods, headers or a longer \
                     path), or the other one less general; `kiln routes` shows the order",
                ),
        );
    }
}
