//! Kong's path rules: request path normalisation (kong-compat.md §2.1), the upstream path
//! (§2.4, v0), the upstream `Host` (§2.5) and splitting the `Host` header (§2.1).
//!
//! All functions are pure; the tables in `path/tests.rs` are Kong's own examples.
//!
//! ```
//! use kiln_runtime::path::{normalize, upstream_path};
//! let req = normalize("/h%65llo/anything/a/../b").unwrap();
//! assert_eq!(req, "/hello/anything/b");
//! // service path `/srv`, route `/hello` with strip_path, query kept verbatim:
//! assert_eq!(upstream_path(Some("/srv"), &req, Some(6), Some("a=%20")), "/srv/anything/b?a=%20");
//! ```

use std::fmt::Write as _;

/// Why a path was refused (the server answers 400, as nginx does before Kong runs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PathError(pub &'static str);

/// Bytes that stay percent-encoded when decoding (Kong's `RESERVED_CHARS`).
fn is_reserved(b: u8) -> bool {
    b"!*'();:@&=+$,/?%#[]".contains(&b)
}

/// Bytes sent upstream as they are; everything else is `%XX`-encoded (Kong's
/// `ESCAPE_PATTERN`, which is case-insensitive and so also lets `a-z` through).
fn is_upstream_safe(b: u8) -> bool {
    UPSTREAM_SAFE[usize::from(b)]
}

const UPSTREAM_SAFE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'/'
                    | b':'
                    | b';'
                    | b'='
                    | b'?'
                    | b'@'
                    | b'['
                    | b']'
                    | b'-'
                    | b'_'
                    | b'.'
                    | b'~'
                    | b'%'
            );
        b += 1;
    }
    table
};

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_pct(out: &mut String, b: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "%{b:02X}");
}

/// Normalises a request path (query already removed), as Kong's router sees it:
///
/// 1. `%XX` triplets are decoded, except bytes of the reserved set ``!*'();:@&=+$,/?%#[]``,
///    which stay encoded with upper-case hex (`%2f` → `%2F`);
/// 2. dot segments are removed (`%2E` counts as `.` after step 1);
/// 3. repeated slashes are merged.
///
/// Refused (400), as nginx refuses them before Kong runs: a path not starting with `/`, a `%`
/// not followed by two hex digits, an encoded NUL, and `..` segments that climb above the root.
///
/// Decoded bytes that do not form UTF-8 stay encoded (`%FF`): they cannot appear in a route
/// path (the config file is UTF-8), and [`upstream_path`] would re-encode them to the same
/// text, so routing and the upstream request are unchanged.
pub fn normalize(raw: &str) -> Result<String, PathError> {
    let mut out = String::new();
    normalize_into(raw, &mut out)?;
    Ok(out)
}

/// [`normalize`] into `out`, replacing what it held (a connection's requests reuse its
/// memory); on an error `out` is left empty.
pub fn normalize_into(raw: &str, out: &mut String) -> Result<(), PathError> {
    out.clear();
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError("request path is not absolute"));
    }
    // The usual path has nothing to decode, no dot and no repeated slash: it is its own
    // normal form (one scan instead of three).
    let mut prev = 0;
    let plain = bytes.iter().all(|&b| {
        let ok = b != b'%' && b != b'.' && !(b == b'/' && prev == b'/');
        prev = b;
        ok
    });
    if plain {
        out.push_str(raw);
        return Ok(());
    }
    *out = if raw.contains('%') {
        remove_dot_segments(&percent_decode(bytes)?)
    } else {
        remove_dot_segments(raw)
    }?;
    Ok(())
}

/// Step 1 of [`normalize`].
fn percent_decode(bytes: &[u8]) -> Result<String, PathError> {
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex_val),
            bytes.get(i + 2).copied().and_then(hex_val),
        ) else {
            return Err(PathError("invalid percent-encoding in request path"));
        };
        let v = hi << 4 | lo;
        if v == 0 {
            return Err(PathError("encoded NUL in request path"));
        }
        if is_reserved(v) {
            out.push(b'%');
            out.extend_from_slice(format!("{v:02X}").as_bytes());
        } else {
            out.push(v);
        }
        i += 3;
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut s = String::with_capacity(bytes.len() + 8);
            for chunk in bytes.utf8_chunks() {
                s.push_str(chunk.valid());
                for &b in chunk.invalid() {
                    push_pct(&mut s, b);
                }
            }
            s
        }
    })
}

/// Steps 2 and 3 of [`normalize`]: Kong's `remove_dot_segments` loop with slash merging.
fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    if !path.contains('.') && !path.contains("//") {
        return Ok(path.to_owned());
    }
    let mut out: Vec<&str> = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if rest == "/." {
            rest = "/";
        } else if rest == "/.." {
            if out.pop().is_none() {
                return Err(PathError("request path climbs above the root"));
            }
            rest = "/";
        } else if rest == "." || rest == ".." {
            rest = "";
        } else if let Some(r) = rest.strip_prefix("../") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("./") {
            rest = r;
        } else if rest.starts_with("/./") {
            rest = &rest[2..];
        } else if rest.starts_with("/../") {
            if out.pop().is_none() {
                return Err(PathError("request path climbs above the root"));
            }
            rest = &rest[3..];
        } else if rest.starts_with("//") {
            rest = &rest[1..];
        } else {
            // One segment: up to (not including) the next `/` after the first byte.
            let end = rest[1..].find('/').map_or(rest.len(), |i| i + 1);
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    Ok(out.concat())
}

/// The path sent upstream (kong-compat.md §2.4, the v0 algorithm), with the raw query.
///
/// * `service_path`: the service's `path` (`None` is `/`);
/// * `normalized`: the request path after [`normalize`];
/// * `stripped_prefix_len`: `Some(len)` when the route has `strip_path` and matched on a path
///   (`len` bytes of `normalized`: the literal prefix or the regex's whole match), else `None`;
/// * `raw_query`: the request's query as received (`Some("")` for a bare trailing `?`, which
///   is preserved).
pub fn upstream_path(
    service_path: Option<&str>,
    normalized: &str,
    stripped_prefix_len: Option<usize>,
    raw_query: Option<&str>,
) -> String {
    let mut path = String::with_capacity(
        service_path.map_or(1, str::len)
            + normalized.len()
            + 1
            + raw_query.map_or(0, |q| q.len() + 1),
    );
    push_upstream_path(
        &mut path,
        service_path,
        normalized,
        stripped_prefix_len,
        raw_query,
    );
    path
}

/// Appends [`upstream_path`] to `path` (the proxy builds it straight into the upstream
/// request line).
pub fn push_upstream_path(
    path: &mut String,
    service_path: Option<&str>,
    normalized: &str,
    stripped_prefix_len: Option<usize>,
    raw_query: Option<&str>,
) {
    let base = service_path.unwrap_or("/");
    let req = normalized;
    // Built escaped in one pass: escaping goes byte by byte, so the pieces can be escaped
    // one by one.
    match stripped_prefix_len {
        Some(len) => {
            let post = sanitize_post(req.get(len..).unwrap_or(""));
            if let Some(base_dir) = base.strip_suffix('/') {
                if post.is_empty() {
                    if base == "/" {
                        push_escaped(path, "/");
                    } else if req.ends_with('/') {
                        push_escaped(path, base);
                    } else {
                        push_escaped(path, base_dir);
                    }
                } else if post.starts_with('/') {
                    push_escaped(path, base_dir);
                    push_escaped(path, post);
                } else {
                    push_escaped(path, base);
                    push_escaped(path, post);
                }
            } else if post.is_empty() {
                push_escaped(path, base);
                if req.len() > 1 && req.ends_with('/') {
                    push_escaped(path, "/");
                }
            } else if post.starts_with('/') {
                push_escaped(path, base);
                push_escaped(path, post);
            } else {
                push_escaped(path, base);
                push_escaped(path, "/");
                push_escaped(path, post);
            }
        }
        None => {
            if base.ends_with('/') {
                push_escaped(path, base);
                push_escaped(path, req.strip_prefix('/').unwrap_or(req));
            } else {
                push_escaped(path, base);
                if req != "/" {
                    push_escaped(path, req);
                }
            }
        }
    }
    if let Some(q) = raw_query {
        path.push('?');
        path.push_str(q);
    }
}

/// `post` sanitising of §2.4: `.`/`..` become empty, a leading `./` or `../` goes once.
fn sanitize_post(post: &str) -> &str {
    if post == "." || post == ".." {
        ""
    } else if let Some(p) = post.strip_prefix("./") {
        p
    } else if let Some(p) = post.strip_prefix("../") {
        p
    } else {
        post
    }
}

/// Kong's `escape`: every byte outside the upstream-safe set becomes `%XX` (upper case).
pub fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    push_escaped(&mut out, path);
    out
}

/// Appends `piece` to `out` as [`escape`] writes it.
fn push_escaped(out: &mut String, piece: &str) {
    let mut start = 0;
    for (i, &b) in piece.as_bytes().iter().enumerate() {
        if !is_upstream_safe(b) {
            // What lies between is ASCII; an empty run may start inside a char (`get` then
            // gives `None`).
            out.push_str(piece.get(start..i).unwrap_or(""));
            push_pct(out, b);
            start = i + 1;
        }
    }
    out.push_str(piece.get(start..).unwrap_or(""));
}

/// Splits a `Host` value as Kong does: at the **first** `:`; when the rest is not a port
/// number the whole value is the host (so `[::1]:80` has no port). No lower-casing.
pub fn split_host(host: &str) -> (&str, Option<u16>) {
    let Some(colon) = host.bytes().position(|b| b == b':') else {
        return (host, None);
    };
    let digits = &host.as_bytes()[colon + 1..];
    if digits.is_empty() {
        return (host, None);
    }
    let mut port: u32 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return (host, None);
        }
        port = port * 10 + u32::from(b - b'0');
        if port > u32::from(u16::MAX) {
            return (host, None);
        }
    }
    match (host.get(..colon), u16::try_from(port)) {
        (Some(h), Ok(port)) => (h, Some(port)),
        _ => (host, None),
    }
}

/// The upstream `Host` when the route does not preserve the client's (kong-compat.md §2.5):
/// the target host, plus `:port` unless the port is the scheme's default (80 for http/grpc,
/// 443 for https/grpcs). IPv6 literals are bracketed.
pub fn upstream_host_header(host: &str, port: u16, scheme: &str) -> String {
    let default = matches!(
        (scheme, port),
        ("http" | "grpc", 80) | ("https" | "grpcs", 443)
    );
    let bracket = host.contains(':') && !host.starts_with('[');
    let mut out = String::with_capacity(host.len() + 8);
    if bracket {
        out.push('[');
        out.push_str(host);
        out.push(']');
    } else {
        out.push_str(host);
    }
    if !default {
        let _ = write!(out, ":{port}");
    }
    out
}

#[cfg(test)]
mod tests;
