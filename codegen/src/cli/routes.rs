//! `kiln routes FILE`: the route table in match order, from the same plan `emit` uses.

use std::{fmt::Write as _, path::Path, process::ExitCode};

use anyhow::Result;

use crate::{
    cli,
    ir::{self, HeaderValue, HostPattern},
    plan::{Plan, SubPaths, SubRoute},
};

pub fn host_text(h: &HostPattern) -> String {
    let (s, port) = match h {
        HostPattern::Exact { host, port } => (host.clone(), port),
        HostPattern::Suffix { suffix, port } => (format!("*{suffix}"), port),
        HostPattern::Prefix { prefix, port } => (format!("{prefix}*"), port),
    };
    match port {
        Some(p) => format!("{s}:{p}"),
        None => s,
    }
}

pub fn conditions(sr: &SubRoute) -> String {
    let mut out = Vec::new();
    if !sr.hosts.is_empty() {
        out.push(format!(
            "hosts={}",
            sr.hosts.iter().map(host_text).collect::<Vec<_>>().join(",")
        ));
    }
    if !sr.methods.is_empty() {
        out.push(format!("methods={}", sr.methods.join(",")));
    }
    for h in &sr.headers {
        let vals: Vec<String> = h
            .values
            .iter()
            .map(|v| match v {
                HeaderValue::Exact(s) => s.clone(),
                HeaderValue::Regex(r) => format!("~*{r}"),
            })
            .collect();
        out.push(format!("header {}={}", h.name, vals.join("|")));
    }
    match &sr.paths {
        SubPaths::Any => {}
        SubPaths::Prefix(ps) => out.push(format!("paths={}", ps.join(","))),
        SubPaths::Regex(rs) => out.push(format!(
            "paths={}",
            rs.iter()
                .map(|r| format!("~{r}"))
                .collect::<Vec<_>>()
                .join(",")
        )),
    }
    if out.is_empty() {
        "(matches everything)".into()
    } else {
        out.join("  ")
    }
}

pub fn route_name(config: &ir::Config, sr: &SubRoute) -> String {
    let r = &config.routes[sr.route.index()];
    let base = r.name.clone().unwrap_or_else(|| r.id.clone());
    match sr.group {
        Some(g) => format!("{base}#{g}"),
        None => base,
    }
}

pub fn service_name(config: &ir::Config, route: &ir::Route) -> String {
    match route.service {
        Some(s) => {
            let s = &config.services[s.index()];
            s.name.clone().unwrap_or_else(|| s.id.clone())
        }
        None => "(none: 503)".into(),
    }
}

/// The table as text (also used by tests).
pub fn render(config: &ir::Config, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4}  {:<18}  {:<28}  {:<20}  conditions",
        "#", "priority", "route", "service"
    );
    for (rank, sr) in plan.sub_routes.iter().enumerate() {
        let r = &config.routes[sr.route.index()];
        let _ = writeln!(
            out,
            "{rank:>4}  {:#018x}  {:<28}  {:<20}  {}",
            sr.priority.0,
            route_name(config, sr),
            service_name(config, r),
            conditions(sr)
        );
    }
    out
}

pub fn routes(file: &Path) -> Result<ExitCode> {
    let src = cli::read_source(file)?;
    let Some((config, plan)) = cli::checked(&src) else {
        return Ok(ExitCode::FAILURE);
    };
    print!("{}", render(&config, &plan));
    Ok(ExitCode::SUCCESS)
}
