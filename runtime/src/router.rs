//! Route tables and matching (kong-compat.md §2.1–2.3).
//!
//! The compiler orders every (sub-)route by Kong's priority and writes [`RouterTables`]:
//! `sub_routes[rank]` in priority order (rank 0 wins first), a perfect hash from exact host
//! (without port) to the ascending ranks that name it, and the ascending ranks of sub-routes
//! that can match other hosts (wildcard hosts or no hosts). Matching merges the two rank lists
//! and returns the first sub-route whose every field matches.

use crate::phf::PhfMap;

/// A host condition. Hosts compare case-sensitively, as Kong does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMatch {
    /// `a.b` (or `a.b:8080`).
    Exact { host: &'static str, port: Option<u16> },
    /// `*.b.c`: host ends with `suffix` (which is `.b.c`).
    Suffix { suffix: &'static str, port: Option<u16> },
    /// `a.*`: host starts with `prefix` (which is `a.`).
    Prefix { prefix: &'static str, port: Option<u16> },
}

/// One value of a header condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValueMatch {
    /// Lower-cased literal compared with the lower-cased request value.
    Exact(&'static str),
    /// Index into [`RouterTables::regexes`] (from a `~*` value; pattern already lower-cased).
    Regex(u32),
}

/// A header condition: any request value of `name` matches any of `values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lower-cased header name.
    pub name: &'static str,
    pub values: &'static [HeaderValueMatch],
}

/// A sub-route's path condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMatch {
    /// No paths configured.
    Any,
    /// Plain string prefixes (all of one length, as Kong splits them).
    Prefix(&'static [&'static str]),
    /// Indices into [`RouterTables::regexes`] (path regexes, anchored at the start).
    Regex(&'static [u32]),
}

/// One sub-route: a route, or one path group of a split multi-path route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRoute {
    /// Index of the route in [`crate::Gateway::routes`].
    pub route: u32,
    /// Empty: any host.
    pub hosts: &'static [HostMatch],
    /// Empty: any method.
    pub methods: &'static [&'static str],
    /// All must match.
    pub headers: &'static [HeaderMatch],
    pub paths: PathMatch,
}

/// Everything the compiler decided about routing, as static data.
#[derive(Debug)]
pub struct RouterTables {
    /// In priority order.
    pub sub_routes: &'static [SubRoute],
    /// Exact host → ascending ranks of sub-routes with that exact host.
    pub exact_hosts: PhfMap<&'static [u32]>,
    /// Ascending ranks of sub-routes that match without an exact host hit.
    pub other: &'static [u32],
    /// Regex sources (as written after `~` / `~*`, lower-cased for header values); compiled
    /// at start-up, anchored at the start.
    pub regexes: &'static [&'static str],
}

/// What the router looks at. `path` is already normalized (see [`crate::path::normalize`]).
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    pub method: &'a str,
    /// Host part of the `Host` header (or the URI authority), split as Kong does.
    pub host: &'a str,
    /// Port from the `Host` header, else the listener port.
    pub port: u16,
    pub path: &'a str,
    pub headers: &'a http::HeaderMap,
}

/// Compiled tables: [`RouterTables`] plus the regexes built at start-up.
#[derive(Debug)]
pub struct Router {
    pub tables: &'static RouterTables,
    // (filled in by the implementation: compiled regexes)
}

impl Router {
    /// Compiles the regexes. Fails only if a regex the compiler accepted does not build.
    pub fn new(tables: &'static RouterTables) -> Result<Router, crate::StartupError> {
        let _ = tables;
        unimplemented!("router")
    }

    /// The highest-priority sub-route whose every field matches.
    pub fn find(&self, req: &RouteRequest<'_>) -> Option<crate::ctx::MatchInfo> {
        let _ = req;
        unimplemented!("router")
    }
}
