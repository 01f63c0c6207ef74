//! `kiln explain FILE METHOD URL [-H 'Name: value']...`: which route matches and why, and
//! the upstream request that would be sent. Computed offline from the same plan the code
//! is generated from, with the runtime's own router and path functions.

use std::{fmt::Write as _, path::Path, process::ExitCode};

use anyhow::{anyhow, bail, Context, Result};
use kiln_runtime::{
    path,
    phf::PhfMap,
    router::{self, RouteRequest, Router, RouterTables},
};

use crate::{
    cli::{self, routes},
    ir::{self, HeaderValue, HostPattern},
    plan::{Plan, SubPaths},
};

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Vec::leak(v)
}

fn leak_str(s: &str) -> &'static str {
    String::leak(s.to_owned())
}

/// The plan as the runtime's tables — the same data `emit` writes as literals. Leaks: for
/// a short-lived CLI process only.
pub fn router_tables(plan: &Plan) -> Result<&'static RouterTables> {
    let host = |h: &HostPattern| match h {
        HostPattern::Exact { host, port } => router::HostMatch::Exact {
            host: leak_str(host),
            port: *port,
        },
        HostPattern::Suffix { suffix, port } => router::HostMatch::Suffix {
            suffix: leak_str(suffix),
            port: *port,
        },
        HostPattern::Prefix { prefix, port } => router::HostMatch::Prefix {
            prefix: leak_str(prefix),
            port: *port,
        },
    };
    let subs = plan
        .sub_routes
        .iter()
        .map(|sr| router::SubRoute {
            route: sr.route.0,
            hosts: leak(sr.hosts.iter().map(host).collect()),
            methods: leak(sr.methods.iter().map(|m| leak_str(m)).collect()),
            headers: leak(
                sr.headers
                    .iter()
                    .map(|h| router::HeaderMatch {
                        name: leak_str(&h.name),
                        values: leak(
                            h.values
                                .iter()
                                .map(|v| match v {
                                    HeaderValue::Exact(s) => {
                                        router::HeaderValueMatch::Exact(leak_str(s))
                                    }
                                    HeaderValue::Regex(r) => {
                                        router::HeaderValueMatch::Regex(plan.regex_index(r))
                                    }
                                })
                                .collect(),
                        ),
                    })
                    .collect(),
            ),
            paths: match &sr.paths {
                SubPaths::Any => router::PathMatch::Any,
                SubPaths::Prefix(ps) => {
                    router::PathMatch::Prefix(leak(ps.iter().map(|p| leak_str(p)).collect()))
                }
                SubPaths::Regex(rs) => {
                    router::PathMatch::Regex(leak(rs.iter().map(|r| plan.regex_index(r)).collect()))
                }
            },
        })
        .collect();
    let keys: Vec<&'static str> = plan.exact_hosts.keys().map(|k| leak_str(k)).collect();
    let layout = kiln_runtime::phf::build(&keys).map_err(|e| anyhow!("{e}"))?;
    let exact_hosts = PhfMap {
        seed: layout.seed,
        disps: leak(layout.disps.clone()),
        keys: leak(layout.slots.iter().map(|&k| keys[k]).collect()),
        values: leak(
            layout
                .slots
                .iter()
                .map(|&k| leak(plan.exact_hosts[keys[k]].clone()) as &'static [u32])
                .collect(),
        ),
    };
    Ok(Box::leak(Box::new(RouterTables {
        sub_routes: leak(subs),
        exact_hosts,
        other: leak(plan.other.clone()),
        regexes: leak(plan.regexes.iter().map(|r| leak_str(r)).collect()),
    })))
}

/// The explanation as text (also used by tests).
pub fn render(
    config: &ir::Config,
    plan: &Plan,
    method: &str,
    url: &str,
    headers: &[String],
) -> Result<String> {
    let parsed = url::Url::parse(url).with_context(|| format!("invalid URL '{url}'"))?;
    let mut header_map = http::HeaderMap::new();
    for h in headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("header '{h}' is not `Name: value`"))?;
        header_map.append(
            http::HeaderName::from_bytes(name.trim().as_bytes())
                .with_context(|| format!("invalid header name in '{h}'"))?,
            http::HeaderValue::from_str(value.trim())
                .with_context(|| format!("invalid header value in '{h}'"))?,
        );
    }
    let scheme = parsed.scheme();
    if scheme != "http" && scheme != "https" {
        bail!("only http:// and https:// URLs can be explained");
    }
    let host_header = match header_map
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => h.to_owned(),
        None => {
            let host = parsed.host_str().unwrap_or_default();
            match parsed.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            }
        }
    };
    let listener_port = parsed.port_or_known_default().unwrap_or(80);
    let (host, port) = path::split_host(&host_header);
    // The path as written: the url crate would already resolve dot segments.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let raw_target = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    let raw_target = raw_target.split('#').next().unwrap_or("/");
    let (raw_path, query) = match raw_target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw_target, None),
    };

    let mut out = String::new();
    let _ = writeln!(out, "request:  {method} {url}");
    let normalized = match path::normalize(raw_path) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "answer:   400 Bad Request ({e})");
            return Ok(out);
        }
    };
    let _ = writeln!(out, "path:     {raw_path} (normalized: {normalized})");
    let router = Router::new(router_tables(plan)?).map_err(|e| anyhow!("{e}"))?;
    let req = RouteRequest {
        method,
        host,
        port: port.unwrap_or(listener_port),
        path: &normalized,
        headers: &header_map,
    };
    let Some(m) = router.find(&req) else {
        let _ = writeln!(
            out,
            "match:    none of {} sub-routes",
            plan.sub_routes.len()
        );
        let _ = writeln!(
            out,
            "answer:   404 {{\"message\":\"no Route matched with those values\"}}"
        );
        return Ok(out);
    };
    let route = &config.routes[m.route as usize];
    let rank = m.sub_route as usize;
    let sr = &plan.sub_routes[rank];
    let _ = writeln!(
        out,
        "match:    route '{}' (line {}), rank {rank} of {}, priority {:#018x}",
        routes::route_name(config, sr),
        route.origin.line,
        plan.sub_routes.len(),
        sr.priority.0
    );
    let _ = writeln!(out, "because:  {}", routes::conditions(sr));
    if rank > 0 {
        let _ = writeln!(
            out,
            "          ({rank} higher-priority sub-routes did not match)"
        );
    }
    if let Some(len) = m.matched_len {
        let _ = writeln!(
            out,
            "matched:  '{}'",
            &normalized[..len.min(normalized.len())]
        );
    }
    for (i, (name, value)) in m.captures.iter().enumerate() {
        let key = name.clone().unwrap_or_else(|| i.to_string());
        let _ = writeln!(
            out,
            "capture:  {key} = {}",
            value.as_deref().unwrap_or("(none)")
        );
    }
    let chain: Vec<&str> = plan.chains[m.route as usize].names();
    let _ = writeln!(
        out,
        "plugins:  {}",
        if chain.is_empty() {
            "(none)".to_string()
        } else {
            chain.join(" → ")
        }
    );
    let https_only = route.protocols.contains(&ir::Protocol::Https)
        && !route.protocols.contains(&ir::Protocol::Http);
    if https_only && scheme == "http" {
        let _ = writeln!(
            out,
            "answer:   {} (route accepts https only)",
            route.https_redirect_status_code
        );
        return Ok(out);
    }
    let Some(sid) = route.service else {
        let _ = writeln!(
            out,
            "answer:   503 {{\"message\":\"no Service found with those values\"}} (after plugins)"
        );
        return Ok(out);
    };
    let svc = &config.services[sid.index()];
    let stripped = if route.strip_path {
        m.matched_len
    } else {
        None
    };
    let upath = path::upstream_path(svc.path.as_deref(), &normalized, stripped, query);
    let (target_host, target_port, host_header_override) = match svc.upstream {
        Some(u) => {
            let up = &config.upstreams[u.index()];
            match up.targets.iter().find(|t| t.weight > 0) {
                Some(t) => (t.host.clone(), t.port, up.host_header.clone()),
                None => (svc.host.clone(), svc.port, up.host_header.clone()),
            }
        }
        None => (svc.host.clone(), svc.port, None),
    };
    let upstream_host = if route.preserve_host {
        host_header.clone()
    } else {
        match host_header_override {
            Some(h) => h,
            None => path::upstream_host_header(&target_host, target_port, svc.protocol.as_str()),
        }
    };
    let _ = writeln!(
        out,
        "upstream: {method} {}://{target_host}:{target_port}{upath}",
        svc.protocol.as_str()
    );
    let _ = writeln!(out, "          Host: {upstream_host}");
    if let Some(len) = stripped.filter(|&l| l > 0 && &normalized[..l] != "/") {
        let _ = writeln!(out, "          X-Forwarded-Prefix: {}", &normalized[..len]);
    }
    let _ = writeln!(
        out,
        "          X-Forwarded-Host: {}",
        host.to_ascii_lowercase()
    );
    let _ = writeln!(out, "          X-Forwarded-Path: {raw_path}");
    Ok(out)
}

pub fn explain(file: &Path, method: &str, url: &str, headers: &[String]) -> Result<ExitCode> {
    let src = cli::read_source(file)?;
    let Some((config, plan)) = cli::checked(&src) else {
        return Ok(ExitCode::FAILURE);
    };
    print!("{}", render(&config, &plan, method, url, headers)?);
    Ok(ExitCode::SUCCESS)
}
