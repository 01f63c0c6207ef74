//! Kong's `ip-restriction` plugin (kong-compat.md §4.5): refuses clients by address, with
//! allow and deny lists of IPv4/IPv6 addresses and CIDR blocks.
//!
//! Each list is turned at start-up into sorted, merged, disjoint address ranges, one table
//! per address family, so a check is a binary search whatever the number of entries.
//!
//! ```
//! use kiln_runtime::plugins::ip_restriction::{Config, IpRestriction};
//!
//! let plugin = IpRestriction::new(Config {
//!     deny: &["10.0.0.0/8", "2001:db8::/32"],
//!     ..Config::DEFAULT
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

use std::{
    future::Future,
    net::{IpAddr, Ipv6Addr},
    ops::ControlFlow,
};

use crate::{ctx::Ctx, gateway::StartupError, plugin::Plugin, response, Request, Response};

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Addresses or CIDR blocks allowed (when non-empty, every other client is refused).
    pub allow: &'static [&'static str],
    /// Addresses or CIDR blocks refused; checked before `allow`.
    pub deny: &'static [&'static str],
    /// Status of the refusal (Kong: `null` ⇒ 403).
    pub status: Option<u16>,
    /// Message of the refusal (Kong: `null` ⇒ `IP address not allowed: <client ip>`).
    pub message: Option<&'static str>,
}

impl Config {
    /// Kong's defaults: empty lists (which [`IpRestriction::new`] refuses), 403, default message.
    pub const DEFAULT: Config = Config {
        allow: &[],
        deny: &[],
        status: None,
        message: None,
    };
}

/// One parsed `allow`/`deny` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The addresses it covers, inclusive.
    pub range: Range,
    /// A CIDR block with bits set after the prefix (`10.0.0.1/8`): Kong accepts it and
    /// matches the whole block (`10.0.0.0/8`), and so does Kiln.
    pub host_bits_set: bool,
}

/// An inclusive address range of one family. IPv4-mapped IPv6 entries
/// (`::ffff:10.0.0.0/104`) are IPv4 ranges, as client addresses are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    V4(u32, u32),
    V6(u128, u128),
}

/// Parses an IP address or CIDR block as Kong's `ip_or_cidr` type accepts it: an IPv4 or
/// IPv6 address, optionally followed by `/prefix` (0–32, 0–128). The error says what is wrong.
pub fn parse_entry(s: &str) -> Result<Entry, String> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n <= max && !p.starts_with('+') => n,
            _ => return Err(format!("`/{p}` is not a prefix length between 0 and {max}")),
        },
    };
    let (range, host_bits_set) = match ip {
        IpAddr::V4(v4) => {
            let (lo, hi, host) = block(u128::from(u32::from(v4)), prefix, 32);
            (Range::V4(lo as u32, hi as u32), host)
        }
        IpAddr::V6(v6) => match (v6.to_ipv4_mapped(), prefix >= 96) {
            (Some(v4), true) => {
                let (lo, hi, host) = block(u128::from(u32::from(v4)), prefix - 96, 32);
                (Range::V4(lo as u32, hi as u32), host)
            }
            _ => {
                let (lo, hi, host) = block(u128::from(v6), prefix, 128);
                (Range::V6(lo, hi), host)
            }
        },
    };
    Ok(Entry {
        range,
        host_bits_set,
    })
}

/// `(first, last, host bits set)` of the `prefix`-bit block containing `addr` (`bits` wide).
fn block(addr: u128, prefix: u32, bits: u32) -> (u128, u128, bool) {
    let width = u128::MAX >> (128 - bits);
    let host_mask = if prefix >= bits { 0 } else { width >> prefix };
    let lo = addr & !host_mask & width;
    (lo, lo | host_mask, addr & host_mask != 0)
}

/// Disjoint, sorted, merged inclusive ranges of one family.
#[derive(Debug, Default)]
struct Ranges<T>(Vec<(T, T)>);

impl<T: Copy + Ord + num::Succ> Ranges<T> {
    fn build(mut v: Vec<(T, T)>) -> Self {
        v.sort_unstable();
        let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
        for (lo, hi) in v {
            match out.last_mut() {
                // overlapping or adjacent: extend
                Some(last) if last.1 >= lo || last.1.succ() == Some(lo) => {
                    last.1 = last.1.max(hi);
                }
                _ => out.push((lo, hi)),
            }
        }
        Ranges(out)
    }

    /// Binary search: the last range starting at or before `x` must end at or after it.
    fn contains(&self, x: T) -> bool {
        let i = self.0.partition_point(|(lo, _)| *lo <= x);
        i > 0 && self.0.get(i - 1).is_some_and(|(_, hi)| x <= *hi)
    }
}

mod num {
    pub trait Succ: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl Succ for u32 {
        fn succ(self) -> Option<u32> {
            self.checked_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Option<u128> {
            self.checked_add(1)
        }
    }
}

/// One list, both families.
#[derive(Debug, Default)]
struct List {
    v4: Ranges<u32>,
    v6: Ranges<u128>,
    empty: bool,
}

impl List {
    fn build(entries: &[&str], field: &str) -> Result<List, StartupError> {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for e in entries {
            let entry = parse_entry(e).map_err(|msg| {
                StartupError(format!(
                    "ip-restriction: invalid `{field}` entry {e:?}: {msg}"
                ))
            })?;
            match entry.range {
                Range::V4(lo, hi) => v4.push((lo, hi)),
                Range::V6(lo, hi) => v6.push((lo, hi)),
            }
        }
        Ok(List {
            v4: Ranges::build(v4),
            v6: Ranges::build(v6),
            empty: entries.is_empty(),
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.v4.contains(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.contains(u128::from(v6)),
        }
    }
}

/// The `ip-restriction` plugin.
#[derive(Debug)]
pub struct IpRestriction {
    allow: List,
    deny: List,
    status: u16,
    message: Option<&'static str>,
}

impl IpRestriction {
    /// Parses both lists into range tables; refuses a config Kong's schema refuses.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        if config.allow.is_empty() && config.deny.is_empty() {
            return Err(StartupError(
                "ip-restriction: at least one of `allow` or `deny` must be set".into(),
            ));
        }
        let status = config.status.unwrap_or(403);
        if !(100..=599).contains(&status) {
            return Err(StartupError(format!(
                "ip-restriction: status {status} is not between 100 and 599"
            )));
        }
        Ok(IpRestriction {
            allow: List::build(config.allow, "allow")?,
            deny: List::build(config.deny, "deny")?,
            status,
            message: config.message,
        })
    }

    /// The client address as matched: IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, seen on
    /// dual-stack listeners) are their IPv4 address.
    pub fn client_ip(cx: &Ctx) -> IpAddr {
        match cx.client_addr.ip() {
            IpAddr::V6(v6) => canonical(v6),
            v4 => v4,
        }
    }

    /// Whether `ip` may pass: not in `deny`, and in `allow` when `allow` is set.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if !self.deny.empty && self.deny.contains(ip) {
            return false;
        }
        self.allow.empty || self.allow.contains(ip)
    }
}

fn canonical(v6: Ipv6Addr) -> IpAddr {
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

impl Plugin for IpRestriction {
    const NAME: &'static str = "ip-restriction";
    const PRIORITY: i32 = 990;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    /// Refuses with `kong.response.error(status, message)` when the client may not pass.
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        let ip = Self::client_ip(cx);
        let flow = if self.allows(ip) {
            ControlFlow::Continue(())
        } else {
            cx.kong_generated = true;
            let default;
            let message = match self.message {
                Some(m) => m,
                None => {
                    default = format!("IP address not allowed: {ip}");
                    &default
                }
            };
            ControlFlow::Break(response::error(
                self.status,
                Some(message),
                &cx.request_id,
                req.headers(),
            ))
        };
        std::future::ready(flow)
    }
}

#[cfg(test)]
mod tests;
