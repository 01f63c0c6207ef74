//! Kong's value rules as pure functions (no spans, no diagnostics): path normalization,
//! host patterns, methods, names, regexes, `url` shorthand. `lower` turns their `Err`
//! texts into diagnostics; `tests.rs` checks them as tables.

use crate::ir::{HostPattern, Protocol};

/// Kong's path normalization (kong/tools/uri.lua, kong-compat.md §2.1): `%XX` decoded unless
/// the byte is reserved (then kept with upper-case hex), dot segments removed, repeated
/// slashes merged.
pub fn normalize_path(path: &str) -> String {
    const KEEP_ENCODED: &[u8] = b"!*'();:@&=+$,/?%#[]";
    let bytes = path.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                let b = h * 16 + l;
                if KEEP_ENCODED.contains(&b) {
                    decoded.push(b'%');
                    decoded.push(bytes[i + 1].to_ascii_uppercase());
                    decoded.push(bytes[i + 2].to_ascii_uppercase());
                } else {
                    decoded.push(b);
                }
                i += 3;
                continue;
            }
        }
        decoded.push(bytes[i]);
        i += 1;
    }
    let s = String::from_utf8_lossy(&decoded).into_owned();
    merge_slashes(&remove_dot_segments(&s))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(input: &str) -> String {
    let mut input = input.to_owned();
    let mut out = String::with_capacity(input.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_owned();
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_owned();
        } else if input.starts_with("/./") {
            input = input[2..].to_owned();
        } else if input == "/." {
            input = "/".to_owned();
        } else if input.starts_with("/../") || input == "/.." {
            input = if input == "/.." {
                "/".to_owned()
            } else {
                input[3..].to_owned()
            };
            if let Some(p) = out.rfind('/') {
                out.truncate(p);
            } else {
                out.clear();
            }
        } else if input == "." || input == ".." {
            input.clear();
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..]
                .find('/')
                .map(|p| p + start)
                .unwrap_or(input.len());
            out.push_str(&input[..end]);
            input = input[end..].to_owned();
        }
    }
    out
}

fn merge_slashes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '/' && out.ends_with('/') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Characters Kong accepts in a path (RFC 3986 unreserved, sub-delims, `:`, `@`, `/`, `%`).
pub fn check_path_chars(path: &str) -> Result<(), String> {
    for (i, c) in path.char_indices() {
        let ok = c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/%".contains(c);
        if !ok {
            return Err(format!("invalid character {c:?} in path"));
        }
        if c == '%' {
            let b = path.as_bytes();
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return Err("invalid percent-encoding in path".to_owned());
            }
        }
    }
    Ok(())
}

/// A literal route path: starts with `/`, valid characters, and already normalized.
pub enum PrefixError {
    Invalid(String),
    NotNormalized(String),
}

/// Checks a literal route path and returns the prefix to match: Kong's normalized form
/// (what requests are normalized to before matching). The written path must equal that form
/// re-escaped (`escape_path`), e.g. `/a%20b` is fine and matches `/a b`, `/a/../b` is not.
pub fn check_prefix_path(path: &str) -> Result<String, PrefixError> {
    if !path.starts_with('/') {
        return Err(PrefixError::Invalid(
            "path must start with `/` (or `~/` for a regex)".into(),
        ));
    }
    check_path_chars(path).map_err(PrefixError::Invalid)?;
    let n = normalize_path(path);
    let escaped = escape_path(&n);
    if escaped != path {
        return Err(PrefixError::NotNormalized(escaped));
    }
    Ok(n)
}

/// Percent-encodes what may not appear literally in a path.
pub fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Legacy (`_format_version` 1.1 / 2.1) path migration: a path made only of
/// `[a-zA-Z0-9.\-_~/%]` is plain (normalized), any other becomes a regex (`~` + the
/// percent-decoded path).
pub fn migrate_legacy_path(path: &str) -> String {
    let plain = path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-_~/%".contains(c));
    if plain {
        escape_path(&normalize_path(path))
    } else {
        format!("~{}", percent_decode(path))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a regex was rejected.
#[derive(Debug, PartialEq)]
pub enum RegexError {
    /// Look-around or backreference: PCRE has them, Rust's regex does not.
    Unsupported(String, Option<usize>),
    Invalid(String, Option<usize>),
}

impl RegexError {
    /// Byte offset of the error in the *written* pattern, when the `(?<name>` rewrite did
    /// not shift it.
    pub fn offset(&self) -> Option<usize> {
        match self {
            RegexError::Unsupported(_, o) | RegexError::Invalid(_, o) => *o,
        }
    }
}

/// Rewrites `(?<name>` to `(?P<name>` (not touching look-behind `(?<=`, `(?<!`) and checks
/// the result with regex-syntax, as the runtime's `regex` crate will compile it.
pub fn check_regex(src: &str) -> Result<String, RegexError> {
    let rewritten = rewrite_named_groups(src);
    match regex_syntax::Parser::new().parse(&rewritten) {
        Ok(_) => Ok(rewritten),
        Err(e) => {
            use regex_syntax::ast::ErrorKind as K;
            let (kind_text, unsupported) = match &e {
                regex_syntax::Error::Parse(a) => (
                    a.kind().to_string(),
                    matches!(
                        a.kind(),
                        K::UnsupportedLookAround | K::UnsupportedBackreference
                    ),
                ),
                regex_syntax::Error::Translate(h) => (h.kind().to_string(), false),
                other => (other.to_string(), false),
            };
            let offset = match &e {
                regex_syntax::Error::Parse(a) => Some(a.span().start.offset),
                regex_syntax::Error::Translate(h) => Some(h.span().start.offset),
                _ => None,
            };
            let offset = offset.filter(|_| rewritten == src);
            if unsupported {
                Err(RegexError::Unsupported(kind_text, offset))
            } else {
                Err(RegexError::Invalid(kind_text, offset))
            }
        }
    }
}

pub fn rewrite_named_groups(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 4);
    let mut rest = src;
    while let Some(p) = rest.find("(?<") {
        let after = &rest[p + 3..];
        let escaped = rest[..p].chars().rev().take_while(|c| *c == '\\').count() % 2 == 1;
        out.push_str(&rest[..p]);
        if !escaped && !after.starts_with('=') && !after.starts_with('!') {
            out.push_str("(?P<");
        } else {
            out.push_str("(?<");
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `^[A-Z]+$`.
pub fn check_method(m: &str) -> Result<(), String> {
    if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()) {
        Err(m.to_ascii_uppercase())
    } else {
        Err(String::new())
    }
}

/// Entity names: `[A-Za-z0-9.\-_~]` plus any non-ASCII character.
pub fn check_name(name: &str) -> Result<(), char> {
    match name
        .chars()
        .find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || ".-_~".contains(*c)))
    {
        Some(c) => Err(c),
        None if name.is_empty() => Err(' '),
        None => Ok(()),
    }
}

/// Tags: printable ASCII except `,` and `/`, or any non-ASCII character.
pub fn check_tag(tag: &str) -> Result<(), char> {
    match tag
        .chars()
        .find(|c| c.is_ascii() && (!c.is_ascii_graphic() && *c != ' ' || *c == ',' || *c == '/'))
    {
        Some(c) => Err(c),
        None => Ok(()),
    }
}

/// A DNS name or IPv4/IPv6 address, without port.
pub fn check_hostname(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("invalid IPv6 address `{host}`"));
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._".contains(*c)))
    {
        return Err(format!("invalid character {c:?} in hostname `{host}`"));
    }
    if host.split('.').any(str::is_empty) && host != "." {
        // A single trailing dot (FQDN) is fine; empty labels elsewhere are not.
        let trimmed = host.strip_suffix('.').unwrap_or(host);
        if trimmed.split('.').any(str::is_empty) {
            return Err(format!("empty label in hostname `{host}`"));
        }
    }
    Ok(())
}

/// Splits `host[:port]` (IPv6 in brackets). `Err` if the port is not 0–65535.
pub fn split_host_port(s: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if s.starts_with('[') {
        match s.find(']') {
            Some(end) => {
                let rest = &s[end + 1..];
                match rest.strip_prefix(':') {
                    Some(p) => (&s[..=end], Some(p)),
                    None if rest.is_empty() => (s, None),
                    None => return Err(format!("unexpected `{rest}` after IPv6 address")),
                }
            }
            None => return Err("missing `]` in IPv6 address".into()),
        }
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').unwrap_or((s, ""));
        (h, Some(p))
    } else {
        (s, None)
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("invalid port `{p}` (must be 0-65535)"))?,
        ),
        None => None,
    };
    Ok((host, port))
}

/// Route `hosts` entry: `a.b`, `*.b`, `a.*`, each with an optional `:port`.
pub fn parse_host_pattern(s: &str) -> Result<HostPattern, String> {
    // Kong (and the gateway) split the request's Host at the first `:` unless it is a
    // bracketed IPv6 literal, which never carries a port: `[::1]:8080` could never match.
    if s.starts_with('[') && !s.ends_with(']') {
        return Err(
            "an IPv6 host cannot have a port in a route (Kong matches `[...]` as a whole host)"
                .into(),
        );
    }
    let (host, port) = split_host_port(s)?;
    let stars = host.matches('*').count();
    if stars > 1 {
        return Err("at most one wildcard `*` is allowed".into());
    }
    if stars == 1 {
        if let Some(rest) = host.strip_prefix("*.") {
            check_hostname(rest)?;
            return Ok(HostPattern::Suffix {
                suffix: format!(".{rest}"),
                port,
            });
        }
        if let Some(rest) = host.strip_suffix(".*") {
            check_hostname(rest)?;
            return Ok(HostPattern::Prefix {
                prefix: format!("{rest}."),
                port,
            });
        }
        return Err(
            "the wildcard must be the whole leftmost (`*.x.y`) or rightmost (`x.y.*`) label".into(),
        );
    }
    check_hostname(host)?;
    Ok(HostPattern::Exact {
        host: host.to_owned(),
        port,
    })
}

/// What the `url` shorthand of a service sets (kong-compat.md §1.3).
#[derive(Debug, PartialEq, Eq)]
pub struct ServiceUrl {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    pub path: Option<String>,
}

/// `scheme://host[:port][/path][?query][#fragment]`. Port: explicit, else 443 for https and
/// 80 for every other scheme (Kong's rule, so `grpcs://h` gets 80). Query and fragment are
/// ignored. The path is kept as written (no normalization), as Kong does.
pub fn parse_service_url(url: &str) -> Result<ServiceUrl, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("missing scheme (`http://`)".into());
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_ok {
        return Err(format!("invalid scheme `{scheme}`"));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err("user information (`user@`) is not allowed in a service url".into());
    }
    let (host, port) = split_host_port(authority)?;
    check_hostname(host)?;
    let after = &rest[end..];
    let path_end = after.find(['?', '#']).unwrap_or(after.len());
    let path = &after[..path_end];
    let scheme = scheme.to_ascii_lowercase();
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok(ServiceUrl {
        scheme,
        host: host.to_owned(),
        port,
        path: (!path.is_empty()).then(|| path.to_owned()),
    })
}

pub fn parse_protocol(s: &str) -> Option<Protocol> {
    Some(match s {
        "http" => Protocol::Http,
        "https" => Protocol::Https,
        "grpc" => Protocol::Grpc,
        "grpcs" => Protocol::Grpcs,
        "tcp" => Protocol::Tcp,
        "tls" => Protocol::Tls,
        "tls_passthrough" => Protocol::TlsPassthrough,
        "udp" => Protocol::Udp,
        _ => return None,
    })
}

pub const PROTOCOLS: &[&str] = &[
    "http",
    "https",
    "grpc",
    "grpcs",
    "tcp",
    "tls",
    "tls_passthrough",
    "udp",
];
