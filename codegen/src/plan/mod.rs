//! Routing and chain decisions, computed once from the IR: what `emit` writes, and what
//! `kiln routes` / `kiln explain` show. Both read this same value, so they cannot disagree
//! with the generated code.
//!
//! - [`priority`]: Kong's route priority as Kong 3.x actually computes it (docs/routing.md).
//! - sub-routes: a route with paths of several kinds/lengths is split as Kong splits it.
//! - tables: exact hosts → ranks (perfect-hashed by `emit`), the other ranks, regexes.
//! - chains: per route, the plugin instances that run, Kong's precedence already applied,
//!   in Kong's priority order.
//! - shadowing: a warning for every route that a higher-priority route always pre-empts.

pub mod chains;
pub mod priority;
pub mod shadow;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::{
    diag::Diagnostics,
    ir::{self, HeaderCondition, HostPattern, PathPattern, RouteId},
};

pub use chains::{Chain, Step};
pub use priority::Priority;

/// The path condition of one sub-route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubPaths {
    Any,
    /// Literal prefixes, all of the same length.
    Prefix(Vec<String>),
    /// Regex sources (after `~`).
    Regex(Vec<String>),
}

/// A route, or one path group of a split route, with its place in the priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRoute {
    pub route: RouteId,
    /// Kong's id for this sub-route: the route id, or UUIDv5 of `"<route id>#<group>"`
    /// when the route was split.
    pub id: String,
    /// 1-based group index when split.
    pub group: Option<usize>,
    pub priority: Priority,
    pub hosts: Vec<HostPattern>,
    pub methods: Vec<String>,
    pub headers: Vec<HeaderCondition>,
    pub paths: SubPaths,
}

/// Everything `emit` needs beyond the IR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// In match order: index = rank.
    pub sub_routes: Vec<SubRoute>,
    /// Exact host (without port) → ascending ranks.
    pub exact_hosts: BTreeMap<String, Vec<u32>>,
    /// Ascending ranks of sub-routes reachable without an exact host hit.
    pub other: Vec<u32>,
    /// Distinct regex sources in first-use order; `SubPaths::Regex` and header regexes
    /// refer to them by index.
    pub regexes: Vec<String>,
    /// One per route, indexed by `RouteId`.
    pub chains: Vec<Chain>,
}

impl Plan {
    pub fn regex_index(&self, source: &str) -> u32 {
        self.regexes
            .iter()
            .position(|r| r == source)
            .unwrap_or(usize::MAX) as u32
    }
}

/// Plans `config`. Returns warnings (shadowed routes, inert consumer-scoped plugins).
pub fn plan(config: &ir::Config) -> (Plan, Diagnostics) {
    let mut diags = Diagnostics::default();
    let mut sub_routes: Vec<SubRoute> = config
        .routes
        .iter()
        .enumerate()
        .flat_map(|(i, r)| split_route(RouteId(i as u32), r))
        .collect();
    // Highest priority first; ties: larger id first (atc-router iterates its sorted map
    // in reverse).
    sub_routes.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| b.id.cmp(&a.id)));

    let mut exact_hosts: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut other = Vec::new();
    let mut regexes: Vec<String> = Vec::new();
    let mut note_regex = |src: &str| {
        if !regexes.iter().any(|r| r == src) {
            regexes.push(src.to_owned());
        }
    };
    for (rank, sr) in sub_routes.iter().enumerate() {
        let rank = rank as u32;
        let mut reachable_elsewhere = sr.hosts.is_empty();
        for h in &sr.hosts {
            match h {
                HostPattern::Exact { host, .. } => {
                    let ranks = exact_hosts.entry(host.clone()).or_default();
                    if ranks.last() != Some(&rank) {
                        ranks.push(rank);
                    }
                }
                _ => reachable_elsewhere = true,
            }
        }
        if reachable_elsewhere {
            other.push(rank);
        }
        if let SubPaths::Regex(rs) = &sr.paths {
            rs.iter().for_each(|r| note_regex(r));
        }
        for h in &sr.headers {
            for v in &h.values {
                if let ir::HeaderValue::Regex(r) = v {
                    note_regex(r);
                }
            }
        }
    }

    let chains = chains::plan_chains(config, &mut diags);
    shadow::check(config, &sub_routes, &mut diags);
    let plan = Plan {
        sub_routes,
        exact_hosts,
        other,
        regexes,
        chains,
    };
    (plan, diags)
}

/// Kong's split (router/transform.lua `split_routes_and_services_by_path`): paths grouped
/// by "regex" or by prefix length, groups numbered in order of first appearance; a route
/// with one group is not split.
fn split_route(id: RouteId, r: &ir::Route) -> Vec<SubRoute> {
    let mut groups: Vec<(Option<usize>, Vec<&PathPattern>)> = Vec::new();
    for p in &r.paths {
        let key = match p {
            PathPattern::Regex(_) => None,
            PathPattern::Prefix(s) => Some(s.len()),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ps)) => ps.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    let make = |group: Option<usize>, sub_id: String, paths: SubPaths| {
        let hosts = r.hosts.clone().unwrap_or_default();
        let priority = Priority::of(r, &paths);
        SubRoute {
            route: id,
            id: sub_id,
            group,
            priority,
            hosts,
            methods: r.methods.clone(),
            headers: r.headers.clone(),
            paths,
        }
    };
    let to_paths = |ps: &[&PathPattern]| match ps.first() {
        None => SubPaths::Any,
        Some(PathPattern::Regex(_)) => SubPaths::Regex(
            ps.iter()
                .filter_map(|p| match p {
                    PathPattern::Regex(s) => Some(s.clone()),
                    PathPattern::Prefix(_) => None,
                })
                .collect(),
        ),
        Some(PathPattern::Prefix(_)) => SubPaths::Prefix(
            ps.iter()
                .filter_map(|p| match p {
                    PathPattern::Prefix(s) => Some(s.clone()),
                    PathPattern::Regex(_) => None,
                })
                .collect(),
        ),
    };
    if groups.len() <= 1 {
        let paths = groups
            .first()
            .map(|(_, ps)| to_paths(ps))
            .unwrap_or(SubPaths::Any);
        return vec![make(None, r.id.clone(), paths)];
    }
    groups
        .iter()
        .enumerate()
        .map(|(i, (_, ps))| {
            let n = i + 1;
            make(Some(n), split_id(&r.id, n), to_paths(ps))
        })
        .collect()
}

/// Kong's id for group `n` of a split route.
pub fn split_id(route_id: &str, n: usize) -> String {
    const NS: uuid::Uuid = uuid::uuid!("7f145bf9-0dce-4f91-98eb-debbce4b9f6b");
    uuid::Uuid::new_v5(&NS, format!("{route_id}#{n}").as_bytes()).to_string()
}
