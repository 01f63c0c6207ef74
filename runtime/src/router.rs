//! Route tables and matching (kong-compat.md §2.1–2.3).
//!
//! The compiler orders every (sub-)route by Kong's priority and writes [`RouterTables`]:
//! `sub_routes[rank]` in priority order (rank 0 wins first), a perfect hash from exact host
//! (without port) to the ascending ranks that name it, and the ascending ranks of sub-routes
//! that can match other hosts (wildcard hosts or no hosts). Matching merges the two rank lists
//! and returns the first sub-route whose every field matches.
//!
//! [`Router::new`] compiles the regexes and, for long rank lists, builds a prefix tree over
//! the literal path prefixes, so a request only looks at the prefix sub-routes whose prefix
//! starts its path. The answer is always the lowest matching rank, exactly as a linear scan
//! of the merged lists would give (a test checks this against a brute-force reference).
//!
//! ```
//! use kiln_runtime::phf::PhfMap;
//! use kiln_runtime::router::*;
//!
//! static SUB_ROUTES: [SubRoute; 2] = [
//!     SubRoute {
//!         route: 0,
//!         hosts: &[],
//!         methods: &[],
//!         headers: &[],
//!         paths: PathMatch::Regex(&[0]),
//!     },
//!     SubRoute {
//!         route: 1,
//!         hosts: &[],
//!         methods: &["GET"],
//!         headers: &[],
//!         paths: PathMatch::Prefix(&["/api"]),
//!     },
//! ];
//! static TABLES: RouterTables = RouterTables {
//!     sub_routes: &SUB_ROUTES,
//!     exact_hosts: PhfMap::EMPTY,
//!     other: &[0, 1],
//!     regexes: &[r"/users/(?P<id>\d+)"],
//! };
//!
//! let router = Router::new(&TABLES).expect("regexes compile");
//! let headers = http::HeaderMap::new();
//! let req = RouteRequest { method: "GET", host: "x", port: 80, path: "/api/v1", headers: &headers };
//! let m = router.find(&req).expect("matches");
//! assert_eq!((m.route, m.matched_len), (1, Some(4)));
//!
//! let req = RouteRequest { path: "/users/42/x", ..req };
//! let m = router.find(&req).expect("matches");
//! assert_eq!(m.route, 0);
//! assert_eq!(m.captures[1], (Some("id".to_owned()), Some("42".to_owned())));
//! ```

use http::HeaderName;

use crate::{ctx::MatchInfo, phf::PhfMap, StartupError};

mod index;

use index::RankIndex;

/// A host condition. Hosts compare case-sensitively, as Kong does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostMatch {
    /// `a.b` (or `a.b:8080`): the request host equals `host`.
    Exact {
        /// The host, without port.
        host: &'static str,
        /// When set, the request port must equal it.
        port: Option<u16>,
    },
    /// `*.b.c`: host ends with `suffix` (which is `.b.c`).
    Suffix {
        /// The configured host without its leading `*`.
        suffix: &'static str,
        /// When set, the request port must equal it.
        port: Option<u16>,
    },
    /// `a.*`: host starts with `prefix` (which is `a.`).
    Prefix {
        /// The configured host without its trailing `*`.
        prefix: &'static str,
        /// When set, the request port must equal it.
        port: Option<u16>,
    },
}

/// One value of a header condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValueMatch {
    /// Lower-cased literal compared with the lower-cased request value.
    Exact(&'static str),
    /// Index into [`RouterTables::regexes`] (from a `~*` value; pattern already lower-cased).
    /// Searched anywhere in the lower-cased value: Kong does not anchor header regexes.
    Regex(u32),
}

/// A header condition: any request value of `name` matches any of `values`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lower-cased header name (`_` is read as `-`, as Kong does).
    pub name: &'static str,
    /// At least one must match one of the request's values for `name`.
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
    /// Any may match. Empty: any host.
    pub hosts: &'static [HostMatch],
    /// Exact, case-sensitive method names; any may match. Empty: any method.
    pub methods: &'static [&'static str],
    /// All must match.
    pub headers: &'static [HeaderMatch],
    /// The path condition.
    pub paths: PathMatch,
}

/// Everything the compiler decided about routing, as static data.
#[derive(Debug)]
pub struct RouterTables {
    /// In priority order: index = rank, rank 0 is tried first.
    pub sub_routes: &'static [SubRoute],
    /// Exact host (without port) → strictly ascending ranks (no duplicates) of the
    /// sub-routes naming that exact host, with or without a port.
    pub exact_hosts: PhfMap<&'static [u32]>,
    /// Strictly ascending ranks of the sub-routes that can match without an exact host hit
    /// (no hosts, or at least one wildcard host).
    pub other: &'static [u32],
    /// Regex sources (as written after `~` / `~*`, lower-cased for header values); compiled
    /// at start-up. Path regexes get a `^` prepended, as Kong does (so a top-level alternation
    /// `a|b` anchors only its first branch — Kong's behaviour), header regexes are
    /// not (Kong: `lower(http.headers.x) ~ "re"`).
    pub regexes: &'static [&'static str],
}

/// What the router looks at. `path` is already normalized (see [`crate::path::normalize`]).
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// Request method, as sent.
    pub method: &'a str,
    /// Host part of the `Host` header (or the URI authority), split as Kong does.
    pub host: &'a str,
    /// Port from the `Host` header, else the listener port.
    pub port: u16,
    /// The normalized path, without query.
    pub path: &'a str,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
}

/// [`MatchInfo::captures`].
type Captures = Vec<(Option<String>, Option<String>)>;

/// The lowest matching rank found so far and its [`MatchInfo::matched_len`]; the captures
/// are kept apart, so that a match without captures moves no `Vec`.
struct Best {
    /// `u32::MAX` until a sub-route matched ([`Router::new`] refuses that many sub-routes).
    rank: u32,
    /// [`MatchInfo::matched_len`], with [`NO_LEN`] for `None`: one word, stored and loaded
    /// whole. (As an `Option<usize>` it was stored as two words and loaded back as one
    /// 16-byte load, which the CPU cannot forward from the two stores: a stall per lookup.)
    matched_len: usize,
}

/// [`Best::matched_len`] of a match without a path. No matched length reaches it: a `str`
/// is at most `isize::MAX` bytes long.
const NO_LEN: usize = usize::MAX;

impl Best {
    const NONE: Best = Best {
        rank: u32::MAX,
        matched_len: NO_LEN,
    };
}

/// Empties `captures` for a match without them, releasing any allocation left by a match
/// that a lower rank replaced.
#[inline]
fn clear_captures(captures: &mut Captures) {
    if captures.capacity() != 0 {
        *captures = Vec::new();
    }
}

/// A compiled path regex.
#[derive(Debug)]
struct PathRegex {
    re: regex::Regex,
    /// False when the pattern has no groups: then no captures are reported (Kong sets
    /// `uri_captures` only when group 1 matched) and matching never allocates.
    has_groups: bool,
    /// Bytes every match starts with ([`literal_prefix`]): checked before running the regex
    /// and used as the sub-route's key in the prefix index. `None`: no finite prefix set.
    prefix: Option<Box<[u8]>>,
}

/// Compiled tables: [`RouterTables`] plus the regexes and indexes built at start-up.
#[derive(Debug)]
pub struct Router {
    /// The static tables this router was built from.
    pub tables: &'static RouterTables,
    /// By regex index: `Some` when some sub-route uses it as a path regex.
    path_regexes: Vec<Option<PathRegex>>,
    /// By regex index: `Some` when some sub-route uses it as a header value regex.
    header_regexes: Vec<Option<regex::bytes::Regex>>,
    /// By rank: parsed header names of the sub-route's header conditions.
    header_names: Vec<Box<[HeaderName]>>,
    /// By rank: what matching the sub-route needs to look at.
    rank_info: Box<[RankInfo]>,
    /// By [`PhfMap`] slot of `exact_hosts`: that host's rank list, maybe indexed.
    host_lists: Vec<RankIndex>,
    /// By [`PhfMap`] slot of `exact_hosts`: the first sub-route of that host's list, when
    /// the hit decides it up to its path prefix.
    host_heads: Box<[HostHead]>,
    /// `tables.other`, maybe indexed.
    other: RankIndex,
    /// The lowest rank in `tables.other`; `u32::MAX` when it is empty.
    other_first: u32,
}

/// The first sub-route of an exact host's rank list when the exact-host hit proves its host
/// and it has no method or header condition and no path regex: if its path condition holds,
/// it is the host's answer unless `other` has a lower matching rank.
#[derive(Debug, Clone, Copy)]
struct HostHead {
    /// Its rank; `u32::MAX` when the host's first sub-route is not such a sub-route.
    rank: u32,
    /// [`SubRoute::route`].
    route: u32,
    /// `None`: no path condition; else [`PathMatch::Prefix`]'s prefixes.
    prefixes: Option<&'static [&'static str]>,
}

/// Per rank, precomputed at start-up.
#[derive(Debug, Clone, Copy)]
struct RankInfo {
    /// [`SubRoute::route`].
    route: u32,
    /// Every exact-host rank list holding this rank belongs to a host that the sub-route
    /// lists without a port: found through such a list, its host condition holds.
    host_proven: bool,
    /// No condition at all: the sub-route matches every request.
    unconditional: bool,
    /// `host_proven`, and no condition besides the hosts: found through an exact-host rank
    /// list, the sub-route matches.
    unconditional_via_exact: bool,
}

impl Router {
    /// Compiles the regexes and builds the prefix indexes. Fails only on something the
    /// compiler should have refused: a regex that does not build, a bad header name, a
    /// rank or regex index out of range, or a rank list that is not strictly ascending.
    pub fn new(tables: &'static RouterTables) -> Result<Router, StartupError> {
        let n_regex = tables.regexes.len();
        let mut path_regexes: Vec<Option<PathRegex>> = (0..n_regex).map(|_| None).collect();
        let mut header_regexes: Vec<Option<regex::bytes::Regex>> =
            (0..n_regex).map(|_| None).collect();
        let mut header_names = Vec::with_capacity(tables.sub_routes.len());
        let source = |i: u32| {
            tables.regexes.get(i as usize).copied().ok_or_else(|| {
                StartupError(format!("router: regex index {i} out of range ({n_regex})"))
            })
        };
        for sub in tables.sub_routes {
            if let PathMatch::Regex(list) = sub.paths {
                for &i in list {
                    let src = source(i)?;
                    if path_regexes[i as usize].is_none() {
                        let re = regex::Regex::new(&format!("^{src}")).map_err(|e| {
                            StartupError(format!(
                                "router: path regex {src:?} does not compile: {e}"
                            ))
                        })?;
                        let has_groups = re.captures_len() > 1;
                        let prefix = literal_prefix(src);
                        path_regexes[i as usize] = Some(PathRegex {
                            re,
                            has_groups,
                            prefix,
                        });
                    }
                }
            }
            let mut names = Vec::with_capacity(sub.headers.len());
            for h in sub.headers {
                let name = h.name.replace('_', "-").to_ascii_lowercase();
                names.push(HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                    StartupError(format!("router: bad header name {:?}: {e}", h.name))
                })?);
                for v in h.values {
                    if let HeaderValueMatch::Regex(i) = *v {
                        let src = source(i)?;
                        if header_regexes[i as usize].is_none() {
                            let re = regex::bytes::Regex::new(src).map_err(|e| {
                                StartupError(format!(
                                    "router: header regex {src:?} does not compile: {e}"
                                ))
                            })?;
                            header_regexes[i as usize] = Some(re);
                        }
                    }
                }
            }
            header_names.push(names.into_boxed_slice());
        }
        let n = tables.sub_routes.len();
        if n >= u32::MAX as usize {
            return Err(StartupError(format!("router: too many sub-routes ({n})")));
        }
        let keys: Vec<Option<Vec<Box<[u8]>>>> = tables
            .sub_routes
            .iter()
            .map(|sub| match sub.paths {
                PathMatch::Any => None,
                PathMatch::Prefix(list) => Some(list.iter().map(|p| p.as_bytes().into()).collect()),
                PathMatch::Regex(list) => list
                    .iter()
                    .map(|&i| path_regexes.get(i as usize)?.as_ref()?.prefix.clone())
                    .collect(),
            })
            .collect();
        let check = |list: &'static [u32]| {
            if let Some(r) = list.iter().find(|&&r| r as usize >= n) {
                return Err(StartupError(format!("router: rank {r} out of range ({n})")));
            }
            if list.windows(2).any(|w| w[0] >= w[1]) {
                return Err(StartupError(format!(
                    "router: rank list {list:?} is not strictly ascending"
                )));
            }
            Ok(RankIndex::new(list, &keys))
        };
        let host_lists = tables
            .exact_hosts
            .values
            .iter()
            .map(|&list| check(list))
            .collect::<Result<_, _>>()?;
        let other = check(tables.other)?;
        // Ranks are in range from here on (`check` returned no error).
        let mut host_proven = vec![true; n];
        for (slot, &list) in tables.exact_hosts.values.iter().enumerate() {
            let key = tables.exact_hosts.keys.get(slot).copied();
            for &rank in list {
                let names_key = key.is_some_and(|key| {
                    tables.sub_routes[rank as usize]
                        .hosts
                        .iter()
                        .any(|h| matches!(*h, HostMatch::Exact { host, port: None } if host == key))
                });
                if !names_key {
                    host_proven[rank as usize] = false;
                }
            }
        }
        let rank_info = tables
            .sub_routes
            .iter()
            .zip(host_proven)
            .map(|(sub, host_proven)| {
                let no_other_condition =
                    sub.methods.is_empty() && sub.headers.is_empty() && sub.paths == PathMatch::Any;
                RankInfo {
                    route: sub.route,
                    host_proven,
                    unconditional: no_other_condition && sub.hosts.is_empty(),
                    unconditional_via_exact: no_other_condition && host_proven,
                }
            })
            .collect::<Box<[RankInfo]>>();
        let host_heads = tables
            .exact_hosts
            .values
            .iter()
            .map(|list| {
                let none = HostHead {
                    rank: u32::MAX,
                    route: 0,
                    prefixes: None,
                };
                let Some(&rank) = list.first() else {
                    return none;
                };
                let sub = &tables.sub_routes[rank as usize];
                if !rank_info[rank as usize].host_proven
                    || !sub.methods.is_empty()
                    || !sub.headers.is_empty()
                {
                    return none;
                }
                let prefixes = match sub.paths {
                    PathMatch::Any => None,
                    PathMatch::Prefix(list) => Some(list),
                    PathMatch::Regex(_) => return none,
                };
                HostHead {
                    rank,
                    route: sub.route,
                    prefixes,
                }
            })
            .collect();
        Ok(Router {
            tables,
            path_regexes,
            header_regexes,
            header_names,
            rank_info,
            host_lists,
            host_heads,
            other,
            other_first: tables.other.first().copied().unwrap_or(u32::MAX),
        })
    }

    /// The highest-priority (lowest-rank) sub-route whose every field matches.
    ///
    /// Does not allocate unless the winning sub-route has a path regex with capture groups.
    pub fn find(&self, req: &RouteRequest<'_>) -> Option<MatchInfo> {
        let mut best = Best::NONE;
        let mut captures = Vec::new();
        if let Some(slot) = self.tables.exact_hosts.slot(req.host) {
            if let Some(head) = self.host_heads.get(slot) {
                // When the host's first sub-route matches, only `other` can beat it.
                if head.rank < self.other_first {
                    let matched_len = match head.prefixes {
                        None => Some(None),
                        Some(list) => list
                            .iter()
                            .find(|p| crate::phf::starts_with(req.path.as_bytes(), p.as_bytes()))
                            .map(|p| Some(p.len())),
                    };
                    if let Some(matched_len) = matched_len {
                        return Some(MatchInfo {
                            route: head.route,
                            sub_route: head.rank,
                            matched_len,
                            captures: Vec::new(),
                        });
                    }
                }
            }
            if let Some(list) = self.host_lists.get(slot) {
                list.for_each_candidate(req.path, &mut |ranks| {
                    self.scan::<true>(ranks, req, &mut best, &mut captures)
                });
            }
        }
        // `other` is ascending: when its first rank cannot beat `best`, none can.
        if self.other_first < best.rank {
            self.other.for_each_candidate(req.path, &mut |ranks| {
                self.scan::<false>(ranks, req, &mut best, &mut captures)
            });
        }
        let info = self.rank_info.get(best.rank as usize)?;
        Some(MatchInfo {
            route: info.route,
            sub_route: best.rank,
            matched_len: (best.matched_len != NO_LEN).then_some(best.matched_len),
            captures,
        })
    }

    /// Tries `ranks` (ascending) in order, stopping at the first match or at a rank that
    /// cannot beat `best`. On a match, `captures` holds the match's captures. `VIA_EXACT`:
    /// `ranks` come from the exact-host rank list of the request's host.
    #[inline(always)]
    fn scan<const VIA_EXACT: bool>(
        &self,
        ranks: &[u32],
        req: &RouteRequest<'_>,
        best: &mut Best,
        captures: &mut Captures,
    ) {
        for &rank in ranks {
            if rank >= best.rank {
                return;
            }
            if let Some(matched_len) = self.match_rank::<VIA_EXACT>(rank, req, captures) {
                *best = Best {
                    rank,
                    matched_len: matched_len.unwrap_or(NO_LEN),
                };
                return;
            }
        }
    }

    /// Whether sub-route `rank` matches: its [`MatchInfo::matched_len`] if so, with its
    /// captures written to `captures` (left as they were when it does not match).
    /// `VIA_EXACT` as for [`Router::scan`].
    #[inline(always)]
    fn match_rank<const VIA_EXACT: bool>(
        &self,
        rank: u32,
        req: &RouteRequest<'_>,
        captures: &mut Captures,
    ) -> Option<Option<usize>> {
        let info = self.rank_info.get(rank as usize)?;
        let unconditional = if VIA_EXACT {
            info.unconditional_via_exact
        } else {
            info.unconditional
        };
        if unconditional {
            clear_captures(captures);
            return Some(None);
        }
        let sub = self.tables.sub_routes.get(rank as usize)?;
        if !sub.methods.is_empty()
            && !sub
                .methods
                .iter()
                .any(|m| crate::phf::str_eq(req.method, m))
        {
            return None;
        }
        let host_ok = (VIA_EXACT && info.host_proven)
            || sub.hosts.is_empty()
            || self.hosts_match(sub.hosts, req);
        if !host_ok {
            return None;
        }
        if !sub.headers.is_empty() && !self.headers_match(rank, sub.headers, req.headers) {
            return None;
        }
        let matched_len = match sub.paths {
            PathMatch::Any => None,
            PathMatch::Prefix(list) => {
                let p = list
                    .iter()
                    .find(|p| crate::phf::starts_with(req.path.as_bytes(), p.as_bytes()))?;
                Some(p.len())
            }
            PathMatch::Regex(list) => return self.match_path_regexes(list, req.path, captures),
        };
        clear_captures(captures);
        Some(matched_len)
    }

    /// Whether any of `hosts` matches the request's host and port.
    #[inline(never)]
    fn hosts_match(&self, hosts: &[HostMatch], req: &RouteRequest<'_>) -> bool {
        hosts.iter().any(|h| host_matches(h, req))
    }

    /// The first of the path regexes `list` that matches `path`: its matched length, with
    /// its captures written to `captures` (left as they were when none matches). The literal
    /// prefix checks run inline; only a regex whose prefix matched is run, out of line.
    #[inline]
    fn match_path_regexes(
        &self,
        list: &[u32],
        path: &str,
        captures: &mut Captures,
    ) -> Option<Option<usize>> {
        for &i in list {
            let Some(Some(compiled)) = self.path_regexes.get(i as usize) else {
                continue;
            };
            if let Some(prefix) = &compiled.prefix {
                if !crate::phf::starts_with(path.as_bytes(), prefix) {
                    continue;
                }
            }
            if let Some((len, caps)) = run_path_regex(compiled, path) {
                *captures = caps;
                return Some(Some(len));
            }
        }
        None
    }

    /// Whether every header condition of sub-route `rank` matches.
    #[inline(never)]
    fn headers_match(&self, rank: u32, conds: &[HeaderMatch], headers: &http::HeaderMap) -> bool {
        let Some(names) = self.header_names.get(rank as usize) else {
            return false;
        };
        conds
            .iter()
            .zip(names.iter())
            .all(|(cond, name)| self.header_matches(cond, name, headers))
    }

    fn header_matches(
        &self,
        cond: &HeaderMatch,
        name: &HeaderName,
        headers: &http::HeaderMap,
    ) -> bool {
        headers.get_all(name).iter().any(|value| {
            let value = value.as_bytes();
            cond.values.iter().any(|v| match *v {
                HeaderValueMatch::Exact(lit) => value.eq_ignore_ascii_case(lit.as_bytes()),
                HeaderValueMatch::Regex(i) => match self.header_regexes.get(i as usize) {
                    Some(Some(re)) => with_lowercase(value, |lower| re.is_match(lower)),
                    _ => false,
                },
            })
        })
    }
}

/// Runs path regex `compiled` on `path` (its literal prefix already checked): the matched
/// length and the captures.
#[inline(never)]
fn run_path_regex(compiled: &PathRegex, path: &str) -> Option<(usize, Captures)> {
    if !compiled.has_groups {
        let m = compiled.re.find(path)?;
        return Some((m.len(), Vec::new()));
    }
    let caps = compiled.re.captures(path)?;
    let whole = caps.get(0)?.len();
    if caps.get(1).is_none() {
        // Kong keeps `uri_captures` only when group 1 matched
        // (`(captures and captures[1]) and captures or nil` in kong/router/atc.lua).
        return Some((whole, Vec::new()));
    }
    let captures = compiled
        .re
        .capture_names()
        .zip(caps.iter())
        .map(|(name, m)| (name.map(str::to_owned), m.map(|m| m.as_str().to_owned())))
        .collect();
    Some((whole, captures))
}

#[inline]
fn host_matches(h: &HostMatch, req: &RouteRequest<'_>) -> bool {
    let (ok, port) = match *h {
        HostMatch::Exact { host, port } => (crate::phf::str_eq(req.host, host), port),
        HostMatch::Suffix { suffix, port } => (req.host.ends_with(suffix), port),
        HostMatch::Prefix { prefix, port } => (req.host.starts_with(prefix), port),
    };
    ok && port.is_none_or(|p| p == req.port)
}

/// The bytes every match of path regex `src` (anchored at the start) begins with; `None`
/// when the pattern does not parse or has no finite set of prefixes.
fn literal_prefix(src: &str) -> Option<Box<[u8]>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(&format!("^{src}"))
        .ok()?;
    // Only a pattern whose every match starts at the start of the path can be indexed by
    // its literal prefix (`^/a|/b` matches `/x/b`).
    if !hir
        .properties()
        .look_set_prefix()
        .contains(regex_syntax::hir::Look::Start)
    {
        return None;
    }
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    seq.longest_common_prefix().map(Into::into)
}

/// Calls `f` with the ASCII-lower-cased `value`, on the stack when it is short.
fn with_lowercase<R>(value: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buf = [0u8; 256];
    if let Some(dst) = buf.get_mut(..value.len()) {
        dst.copy_from_slice(value);
        dst.make_ascii_lowercase();
        f(dst)
    } else {
        f(&value.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests;
