//! Kong's cache key (`kong/plugins/proxy-cache/cache_key.lua`): the hex sha256 of
//! `<prefix>|<METHOD>|<uri>|<params>|<headers>`.
//!
//! * prefix: `<consumer id>:<route id>`, `<route id>`, or `default`;
//! * uri: the request line (nginx `$request`, e.g. `GET /p HTTP/1.1`) with everything from
//!   the first `?` removed, lower-cased with `ignore_uri_case`;
//! * params: `k=v` pairs joined by `:` — every query argument sorted by name when
//!   `vary_query_params` is empty, else the listed ones that are present, in list order;
//!   repeated arguments sort their values and join them with `,`; a flag (`?debug`) is a
//!   bare `k`;
//! * headers: the same for `vary_headers` (names looked up case-insensitively, written as
//!   configured), empty when none are configured.

use http::{HeaderMap, Method, Version};
use sha2::{Digest, Sha256};

use crate::plugins::key_auth::args;

/// `prefix_uuid`.
pub fn prefix(consumer_id: Option<&str>, route_id: Option<&str>) -> String {
    match (consumer_id, route_id) {
        (Some(c), Some(r)) => format!("{c}:{r}"),
        (_, Some(r)) => r.to_owned(),
        _ => "default".to_owned(),
    }
}

/// nginx's `$request` with `\?.*` removed: `METHOD target HTTP/x.y`, cut at the first `?`.
pub fn request_line(method: &Method, target: &str, version: Version, lower: bool) -> Vec<u8> {
    let version = match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    };
    let line = format!("{} {target} {version}", method.as_str());
    let mut line = match line.find('?') {
        Some(i) => line[..i].to_owned(),
        None => line,
    }
    .into_bytes();
    if lower {
        line.make_ascii_lowercase();
    }
    line
}

/// One value of an argument or header: a string, or a flag (Lua `true`).
type Values = Vec<Option<Vec<u8>>>;

fn push_field(out: &mut Vec<Vec<u8>>, field: &[u8], values: &mut Values) {
    if values.is_empty() {
        return;
    }
    let mut item = field.to_vec();
    if values.len() == 1 {
        match &values[0] {
            None => {}
            Some(v) => {
                item.push(b'=');
                item.extend_from_slice(v);
            }
        }
    } else {
        // A flag inside repeated values reads as an empty string.
        values.sort_by(|a, b| a.as_deref().unwrap_or(b"").cmp(b.as_deref().unwrap_or(b"")));
        item.push(b'=');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                item.push(b',');
            }
            item.extend_from_slice(v.as_deref().unwrap_or(b""));
        }
    }
    out.push(item);
}

/// `params_key`: the query component.
pub fn params_key(query: Option<&str>, vary: &[&str]) -> Vec<u8> {
    let parsed = args::parse(query.unwrap_or("").as_bytes());
    let values_of = |name: &[u8]| -> Values {
        parsed
            .iter()
            .filter(|a| a.name == name)
            .map(|a| a.value.clone())
            .collect()
    };
    let mut items = Vec::new();
    if vary.is_empty() {
        let mut names: Vec<&[u8]> = parsed.iter().map(|a| a.name.as_slice()).collect();
        names.sort_unstable();
        names.dedup();
        for n in names {
            push_field(&mut items, n, &mut values_of(n));
        }
    } else {
        for field in vary {
            push_field(
                &mut items,
                field.as_bytes(),
                &mut values_of(field.as_bytes()),
            );
        }
    }
    items.join(&b':')
}

/// `headers_key`: the request-header component (empty without `vary_headers`).
pub fn headers_key(headers: &HeaderMap, vary: &[&str]) -> Vec<u8> {
    let mut items = Vec::new();
    for field in vary {
        // OpenResty's header table reads `_` as `-` and ignores case.
        let name = field.replace('_', "-");
        let mut values: Values = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| Some(v.as_bytes().to_vec()))
            .collect();
        push_field(&mut items, field.as_bytes(), &mut values);
    }
    items.join(&b':')
}

/// The string Kong hashes.
pub fn key_string(
    prefix: &str,
    method: &str,
    uri: &[u8],
    params: &[u8],
    headers: &[u8],
) -> Vec<u8> {
    let mut s = Vec::with_capacity(
        prefix.len() + method.len() + uri.len() + params.len() + headers.len() + 4,
    );
    s.extend_from_slice(prefix.as_bytes());
    s.push(b'|');
    s.extend_from_slice(method.as_bytes());
    s.push(b'|');
    s.extend_from_slice(uri);
    s.push(b'|');
    s.extend_from_slice(params);
    s.push(b'|');
    s.extend_from_slice(headers);
    s
}

/// Lower-case hex sha256 of `s` (Kong's `sha256_hex`).
pub fn hex_sha256(s: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(s);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}
