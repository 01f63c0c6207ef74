//! Query strings and form bodies as nginx/OpenResty parse them (`ngx.req.get_uri_args`,
//! `get_post_args`) and as Kong writes them back (`clear_query_arg`, `set_body`).

/// One `name[=value]` pair, percent-decoded with `+` read as a space. `value` is `None`
/// for a flag (`?debug`), which Lua sees as `true`, not a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    pub name: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` decoded, `+` as space; a `%` not followed by two hex digits stays as it is.
pub(crate) fn unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                s.get(i + 1).and_then(|&b| hex(b)),
                s.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// nginx's argument parser: `&`-separated, first `=` splits, empty names skipped.
pub(crate) fn parse(s: &[u8]) -> Vec<Arg> {
    s.split(|&b| b == b'&')
        .filter_map(|part| {
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], Some(unescape(&part[i + 1..]))),
                None => (part, None),
            };
            (!name.is_empty()).then(|| Arg {
                name: unescape(name),
                value,
            })
        })
        .collect()
}

/// What a name holds in a table of arguments, as Lua code sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Absent (`nil`).
    Missing,
    /// One string value.
    One(Vec<u8>),
    /// Several values (a Lua table): Kong's "Duplicate API key found".
    Many,
    /// Present but neither a string nor a table (a flag argument, a JSON number…).
    Other,
}

pub(crate) fn lookup(args: &[Arg], name: &[u8]) -> Lookup {
    let mut found = args.iter().filter(|a| a.name == name);
    match (found.next(), found.next()) {
        (None, _) => Lookup::Missing,
        (Some(_), Some(_)) => Lookup::Many,
        (Some(Arg { value: Some(v), .. }), None) => Lookup::One(v.clone()),
        (Some(Arg { value: None, .. }), None) => Lookup::Other,
    }
}

/// `application/x-www-form-urlencoded` serialisation of WHATWG URL (what Kong's
/// `clear_query_arg` writes through lua-resty-ada): alphanumerics and `*-._` stay, space
/// becomes `+`, every other byte `%XX`.
fn whatwg_encode(s: &[u8], out: &mut String) {
    for &b in s {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push_str(&format!("{b:02X}"));
            }
        }
    }
}

/// Kong's `kong.service.request.clear_query_arg(name)`: the query parsed as WHATWG URL
/// search parameters, every `name` removed, the rest serialised in order (always
/// `name=value`, so a flag `a` becomes `a=`) and `+` replaced by `%20`. Bytes that are not
/// UTF-8 become U+FFFD, as the WHATWG parser decodes them.
pub(crate) fn clear_query_arg(query: &str, name: &[u8]) -> String {
    let mut out = String::with_capacity(query.len());
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (n, v) = part.split_once('=').unwrap_or((part, ""));
        // WHATWG percent-decoding keeps malformed `%` sequences; `+` is a space.
        let n = String::from_utf8_lossy(&unescape(n.as_bytes())).into_owned();
        let v = String::from_utf8_lossy(&unescape(v.as_bytes())).into_owned();
        if n.as_bytes() == name {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        whatwg_encode(n.as_bytes(), &mut out);
        out.push('=');
        whatwg_encode(v.as_bytes(), &mut out);
    }
    out.replace('+', "%20")
}

/// `ngx.escape_uri` (component): unreserved bytes stay, the rest `%XX`.
fn ngx_escape(s: &[u8], out: &mut String) {
    for &b in s {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
    }
}

/// Kong's `set_body` for a form: one `ngx.encode_args` piece per name (`k=v&k=w`, a flag
/// as bare `k`), pieces sorted, joined with `&`.
pub(crate) fn encode_form_sorted(args: &[Arg]) -> String {
    let mut names: Vec<&[u8]> = args.iter().map(|a| a.name.as_slice()).collect();
    names.sort();
    names.dedup();
    let mut pieces: Vec<String> = names
        .into_iter()
        .map(|name| {
            let mut piece = String::new();
            for a in args.iter().filter(|a| a.name == name) {
                if !piece.is_empty() {
                    piece.push('&');
                }
                ngx_escape(name, &mut piece);
                if let Some(v) = &a.value {
                    piece.push('=');
                    ngx_escape(v, &mut piece);
                }
            }
            piece
        })
        .collect();
    pieces.sort();
    pieces.join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_nginx() {
        let args = parse(b"apikey=a%20b+c&flag&&=x&k=%zz&k=2");
        assert_eq!(lookup(&args, b"apikey"), Lookup::One(b"a b c".to_vec()));
        assert_eq!(lookup(&args, b"flag"), Lookup::Other);
        assert_eq!(lookup(&args, b"k"), Lookup::Many);
        assert_eq!(lookup(&args, b""), Lookup::Missing);
        assert_eq!(lookup(&args, b"nope"), Lookup::Missing);
        assert_eq!(parse(b"k=%zz")[0].value.as_deref(), Some(&b"%zz"[..]));
    }

    #[test]
    fn clear_query_arg_reserialises_like_kong() {
        let cases: &[(&str, &str)] = &[
            ("apikey=s3cr3t", ""),
            ("a=1&apikey=x&b=2", "a=1&b=2"),
            (
                "b=hello+world&apikey=x&a=%41%7e~",
                "b=hello%20world&a=A%7E%7E",
            ),
            ("flag&apikey=x&c=1", "flag=&c=1"),
            ("apikey=1&apikey=2&z=%2B", "z=%2B"),
            ("x=a%2Fb&&y=", "x=a%2Fb&y="),
        ];
        for (q, want) in cases {
            assert_eq!(clear_query_arg(q, b"apikey"), *want, "{q}");
        }
    }

    #[test]
    fn form_bodies_are_sorted_by_piece() {
        let args = parse(b"z=1&b=x%20y&a=2&a=1&flag");
        assert_eq!(encode_form_sorted(&args), "a=2&a=1&b=x%20y&flag&z=1");
    }
}
