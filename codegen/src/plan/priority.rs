//! Kong's route priority, bit for bit as Kong 3.x computes it (kong-compat.md §2.3).
//!
//! Kong means to pack `weight<<61 | plain_host<<60 | header_count<<52 | regex<<51 |
//! regex_priority<<19 | prefix_len` into a u64, but its shift helper falls back to
//! LuaJIT's 32-bit shifts (shift count mod 32), so weight, header count and regex priority
//! land in one signed 32-bit word, and only the plain-host and regex flags are 64-bit. A
//! negative word (weight ≥ 4, or a negative or very large regex_priority) is converted to
//! u64 by saturation, i.e. 2^63. We reproduce that, so that routes sort as they do in Kong.

use crate::{ir, plan::SubPaths};

/// A sub-route's priority; larger matches first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(pub u64);

const PLAIN_HOST_ONLY: u64 = 1 << 60;
const REGEX_URL: u64 = 1 << 51;
const SATURATED: u64 = 1 << 63;

/// Fields that enter the priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// Number of non-empty fields among methods, hosts, headers, paths, snis.
    pub weight: u32,
    /// `hosts` is present (even `[]`) and has no `*` entry.
    pub plain_host_only: bool,
    /// Header names, capped at 255.
    pub header_count: u32,
    pub regex: bool,
    /// `regex_priority` when `regex`, else 0.
    pub regex_priority: i64,
    /// Prefix length (0 for regex / no paths).
    pub uri_length: usize,
}

/// LuaJIT `bit.lshift(x, n)`: x to int32 (mod 2^32), shift count mod 32, int32 result.
fn lshift32(x: i64, n: u32) -> i32 {
    (x as i32).wrapping_shl(n % 32)
}

/// A Lua number converted to uint64 by LuaJIT on x86-64: negatives saturate to 2^63.
fn to_u64(x: i32) -> u64 {
    if x < 0 {
        SATURATED
    } else {
        x as u64
    }
}

impl Priority {
    pub fn from_inputs(i: Inputs) -> Priority {
        let w = lshift32(i.weight as i64, 61);
        let hc = lshift32(i.header_count.min(255) as i64, 52);
        let rp = lshift32(if i.regex { i.regex_priority } else { 0 }, 19);
        let len = (i.uri_length & 0x7FFFF) as i32;
        if !i.plain_host_only && !i.regex {
            // bit.bor of plain numbers: a 32-bit result, converted to u64 by the router.
            return Priority(to_u64(w | hc | rp | len));
        }
        // A 64-bit cdata operand makes bit.bor convert every operand to 64 bits.
        let mut p = to_u64(w) | to_u64(hc) | to_u64(rp) | to_u64(len);
        if i.plain_host_only {
            p |= PLAIN_HOST_ONLY;
        }
        if i.regex {
            p |= REGEX_URL;
        }
        Priority(p)
    }

    /// The priority of `route` restricted to one path group.
    pub fn of(route: &ir::Route, paths: &SubPaths) -> Priority {
        Priority::from_inputs(inputs(route, paths))
    }
}

pub fn inputs(route: &ir::Route, paths: &SubPaths) -> Inputs {
    let hosts = route.hosts.as_deref().unwrap_or(&[]);
    let weight = [
        !route.methods.is_empty(),
        !hosts.is_empty(),
        !route.headers.is_empty(),
        !matches!(paths, SubPaths::Any),
        !route.snis.is_empty(),
    ]
    .iter()
    .filter(|b| **b)
    .count() as u32;
    let plain_host_only = route.hosts.as_ref().is_some_and(|hs| {
        hs.iter()
            .all(|h| matches!(h, ir::HostPattern::Exact { .. }))
    });
    let (regex, uri_length) = match paths {
        SubPaths::Any => (false, 0),
        SubPaths::Regex(_) => (true, 0),
        SubPaths::Prefix(ps) => (false, ps.first().map_or(0, |p| p.len())),
    };
    Inputs {
        weight,
        plain_host_only,
        header_count: route.headers.len() as u32,
        regex,
        regex_priority: route.regex_priority,
        uri_length,
    }
}
