//! Finding tokens in a request and decoding them, as Kong's jwt handler and `jwt_parser.lua`
//! do (kong-compat.md §4.2).

use std::borrow::Cow;

use super::fields::{self, Field, Top};
use http::{header, HeaderMap, HeaderName};

/// One token candidate found in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found<'a> {
    /// A query argument without `=` (`?jwt`): Lua's `true`, which Kong cannot use as a token.
    Flag,
    Token(Cow<'a, [u8]>),
}

/// Kong's `get_query` reads at most 100 arguments by default.
const MAX_QUERY_ARGS: usize = 100;

/// Query arguments as `ngx.req.get_uri_args` decodes them: split on `&`, `+` is a space,
/// `%XX` decoded; a name without `=` has no value.
fn query_args(query: &str) -> impl Iterator<Item = (Cow<'_, [u8]>, Option<Cow<'_, [u8]>>)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = match pair.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (pair, None),
            };
            (!name.is_empty()).then(|| (unescape(name), value.map(unescape)))
        })
        .take(MAX_QUERY_ARGS)
}

fn unescape(s: &str) -> Cow<'_, [u8]> {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|b| *b == b'+' || *b == b'%') {
        return Cow::Borrowed(bytes);
    }
    Cow::Owned(crate::plugins::key_auth::args::unescape(bytes))
}

/// nginx's `$cookie_<name>`: the first `name=value` pair (name compared case-insensitively)
/// in the `Cookie` headers; the value runs to the next `;`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    for h in headers.get_all(header::COOKIE) {
        let v = h.as_bytes();
        let mut i = 0;
        while i < v.len() {
            let matched = v
                .get(i..i + name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name));
            if matched {
                let mut j = i + name.len();
                while v.get(j) == Some(&b' ') {
                    j += 1;
                }
                if v.get(j) == Some(&b'=') {
                    j += 1;
                    while v.get(j) == Some(&b' ') {
                        j += 1;
                    }
                    let end = v[j..]
                        .iter()
                        .position(|&c| c == b';')
                        .map_or(v.len(), |p| j + p);
                    return Some(&v[j..end]);
                }
            }
            // Skip to after the next `;` or `,`, then spaces.
            while let Some(&c) = v.get(i) {
                i += 1;
                if c == b';' || c == b',' {
                    break;
                }
            }
            while v.get(i) == Some(&b' ') {
                i += 1;
            }
        }
    }
    None
}

/// PCRE's `\s`.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The first match of Kong's unanchored `\s*[Bb]earer\s+(.+)`: the capture.
pub(crate) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let mut from = 0;
    while let Some(p) = value
        .get(from..)?
        .windows(6)
        .position(|w| w == b"Bearer" || w == b"bearer")
    {
        let start = from + p + 6;
        let spaces = value[start..].iter().take_while(|&&b| is_space(b)).count();
        let rest = &value[start + spaces..];
        // `.` does not match a newline; header values cannot hold one anyway.
        let line = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
        if spaces >= 1 && !line.is_empty() {
            return Some(line);
        }
        if spaces >= 2 && line.is_empty() {
            // `\s+` gives its last character back to `.+`.
            return Some(&value[start + spaces - 1..start + spaces]);
        }
        from = from + p + 1;
    }
    None
}

/// Every distinct non-empty token in the request: query arguments, then cookies, then
/// headers (Kong's `retrieve_tokens`). `header_names` are already lower-case with `-`.
pub(crate) fn find_tokens<'a>(
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    uri_param_names: &[&str],
    cookie_names: &[&str],
    header_names: &[HeaderName],
) -> Vec<Found<'a>> {
    let mut found: Vec<Found<'a>> = Vec::new();
    let mut add = |f: Found<'a>| {
        if !found.contains(&f) {
            found.push(f);
        }
    };
    if let (Some(q), false) = (query, uri_param_names.is_empty()) {
        for (name, value) in query_args(q) {
            if !uri_param_names.iter().any(|n| n.as_bytes() == &*name) {
                continue;
            }
            match value {
                None => add(Found::Flag),
                Some(v) if v.is_empty() => {}
                Some(v) => add(Found::Token(v)),
            }
        }
    }
    for name in cookie_names {
        if let Some(v) = cookie(headers, name).filter(|v| !v.is_empty()) {
            add(Found::Token(Cow::Borrowed(v)));
        }
    }
    for name in header_names {
        // Kong reads the first value of a repeated header.
        if let Some(token) = headers.get(name).and_then(|v| bearer(v.as_bytes())) {
            add(Found::Token(Cow::Borrowed(token)));
        }
    }
    found
}

/// Digit values by byte; [`INVALID`] for bytes outside the URL-safe alphabet.
const INVALID: u8 = 0xff;
const DIGITS: [u8; 256] = {
    let mut t = [INVALID; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        t[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 10 {
        t[b'0' as usize + d] = 52 + d as u8;
        d += 1;
    }
    t[b'-' as usize] = 62;
    t[b'_' as usize] = 63;
    t
};

/// The digits nginx decodes: up to the first `=`.
fn digits(s: &[u8]) -> &[u8] {
    &s[..s.iter().position(|&b| b == b'=').unwrap_or(s.len())]
}

/// The decoded length of `digits` (already cut at `=`); `None` for a length of 1 mod 4.
fn decoded_len(digits: &[u8]) -> Option<usize> {
    let n = digits.len();
    match n % 4 {
        1 => None,
        r => Some(n / 4 * 3 + r.saturating_sub(1)),
    }
}

/// Decodes `digits` (already cut at `=`, [`decoded_len`] bytes long) into `out`.
fn decode_digits(digits: &[u8], out: &mut [u8]) -> Option<()> {
    let mut quads = digits.chunks_exact(4);
    let mut triples = out.chunks_exact_mut(3);
    for (q, o) in (&mut quads).zip(&mut triples) {
        let [a, b, c, d] = [q[0], q[1], q[2], q[3]].map(|x| DIGITS[usize::from(x)]);
        // Digits are below 64: one test finds any invalid byte.
        if (a | b | c | d) & 0xc0 != 0 {
            return None;
        }
        let v = u32::from(a) << 18 | u32::from(b) << 12 | u32::from(c) << 6 | u32::from(d);
        o.copy_from_slice(&v.to_be_bytes()[1..]);
    }
    let rest = quads.remainder();
    let tail = triples.into_remainder();
    let mut v = 0u32;
    for &x in rest {
        let d = DIGITS[usize::from(x)];
        if d == INVALID {
            return None;
        }
        v = v << 6 | u32::from(d);
    }
    // 2 or 3 digits left carry 1 or 2 bytes; their low bits are padding.
    match (rest.len(), tail) {
        (0, []) => {}
        (2, [x]) => *x = (v >> 4) as u8,
        (3, [x, y]) => [*x, *y] = [(v >> 10) as u8, (v >> 2) as u8],
        _ => return None,
    }
    Some(())
}

/// nginx's `ngx_decode_base64url`: stops at the first `=`, rejects other characters outside
/// the url-safe alphabet and a length of 1 mod 4, ignores leftover bits.
pub fn base64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let digits = digits(s);
    let mut out = vec![0; decoded_len(digits)?];
    decode_digits(digits, &mut out)?;
    Some(out)
}

/// `Bad token; <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadToken {
    Json,
    Alg,
    Claims,
    Signature,
}

impl BadToken {
    pub(crate) fn message(self) -> &'static str {
        match self {
            BadToken::Json => "Bad token; invalid JSON",
            BadToken::Alg => "Bad token; invalid alg",
            BadToken::Claims => "Bad token; invalid claims",
            BadToken::Signature => "Bad token; invalid signature",
        }
    }
}

/// The algorithms Kong's parser knows (`alg_verify`); others are `invalid alg`.
pub(crate) const KNOWN_ALGS: &[&str] = &[
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256",
    "PS384", "PS512", "EdDSA",
];

/// Room for the decoded parts of a token, on the caller's stack when they fit.
pub(crate) struct Scratch {
    stack: [u8; 768],
    heap: Vec<u8>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            stack: [0; 768],
            heap: Vec::new(),
        }
    }

    fn get(&mut self, len: usize) -> &mut [u8] {
        if len <= self.stack.len() {
            &mut self.stack[..len]
        } else {
            self.heap.resize(len, 0);
            &mut self.heap[..]
        }
    }
}

/// A decoded token.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    /// `header_64.claims_64`: what the signature covers.
    pub signed: &'a [u8],
    /// The header's key claim (`key_claim_name`).
    pub header_key: Field<'a>,
    /// The claims' key claim, `exp` and `nbf`; all missing when the claims are an array or a
    /// string.
    pub claims: Claims<'a>,
    pub alg: &'a str,
    pub signature: &'a [u8],
}

/// The claims the plugin reads.
#[derive(Debug, Default)]
pub(crate) struct Claims<'a> {
    pub key: Field<'a>,
    pub exp: Field<'a>,
    pub nbf: Field<'a>,
}

/// Kong's `decode_token`: three `.`-separated base64url parts (the third takes the rest).
/// `key_claim_name` is the member looked up in the claims, then the header.
pub(crate) fn decode<'a>(
    token: &'a [u8],
    key_claim_name: &str,
    scratch: &'a mut Scratch,
) -> Result<Decoded<'a>, BadToken> {
    let mut parts = token.splitn(3, |&b| b == b'.');
    let header_64 = parts.next().unwrap_or_default();
    let claims_64 = parts.next().ok_or(BadToken::Json)?;
    let signature_64 = parts.next();
    let (header_d, claims_d) = (digits(header_64), digits(claims_64));
    let (header_len, claims_len) = (decoded_len(header_d), decoded_len(claims_d));
    let signature_d = signature_64.map(digits);
    let signature_len = signature_d.and_then(decoded_len);
    let total = header_len.unwrap_or(0) + claims_len.unwrap_or(0) + signature_len.unwrap_or(0);
    let buf = scratch.get(total);
    let (header_buf, rest) = buf.split_at_mut(header_len.unwrap_or(0));
    let (claims_buf, signature_buf) = rest.split_at_mut(claims_len.unwrap_or(0));
    header_len.ok_or(BadToken::Json)?;
    decode_digits(header_d, header_buf).ok_or(BadToken::Json)?;
    let header = fields::pick(header_buf, ["alg", key_claim_name]).map_err(|_| BadToken::Json)?;
    claims_len.ok_or(BadToken::Json)?;
    decode_digits(claims_d, claims_buf).ok_or(BadToken::Json)?;
    let claims =
        fields::pick(claims_buf, [key_claim_name, "exp", "nbf"]).map_err(|_| BadToken::Json)?;
    // An array has no `alg`; Kong fails on scalars too (a string has no `alg`; a number,
    // boolean or null makes its handler raise an error, 500 — Kiln answers 401).
    let Top::Object([alg, header_key]) = header else {
        return Err(BadToken::Alg);
    };
    let alg = match alg {
        Field::Str(a) => KNOWN_ALGS
            .iter()
            .find(|k| **k == a)
            .copied()
            .ok_or(BadToken::Alg)?,
        _ => return Err(BadToken::Alg),
    };
    let claims = match claims {
        Top::Object([key, exp, nbf]) => Claims { key, exp, nbf },
        Top::Array | Top::String => Claims::default(),
        // `false` is Kong's `invalid claims`; null, numbers and `true` make Kong raise (500).
        Top::Scalar => return Err(BadToken::Claims),
    };
    match (signature_d, signature_len) {
        (Some(d), Some(_)) => decode_digits(d, signature_buf).ok_or(BadToken::Signature)?,
        _ => return Err(BadToken::Signature),
    }
    let signed_len = header_64.len() + 1 + claims_64.len();
    Ok(Decoded {
        signed: &token[..signed_len],
        header_key,
        claims,
        alg,
        signature: signature_buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_regex() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("  Bearer   abc def", Some("abc def")),
            ("BEARER abc", None),
            ("Bearerabc", None),
            ("Bearer ", None),
            ("Bearer   ", Some(" ")),
            ("Basic x, Bearer tok", Some("tok")),
            ("xBearer tok", Some("tok")),
            ("Bearer\ttok", Some("tok")),
            ("Bearer Bearer x", Some("Bearer x")),
            ("Token abc", None),
        ];
        for (input, want) in cases {
            let got = bearer(input.as_bytes()).map(|b| String::from_utf8_lossy(b).into_owned());
            assert_eq!(got.as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn base64url_as_nginx() {
        let ok: &[(&str, &[u8])] = &[
            ("", b""),
            ("YQ", b"a"),
            ("YQ==", b"a"),
            ("YWI", b"ab"),
            ("YWJj", b"abc"),
            ("YWJj=garbage", b"abc"),
            ("_-8", &[0xff, 0xef]),
        ];
        for (input, want) in ok {
            assert_eq!(
                base64url_decode(input.as_bytes()).as_deref(),
                Some(*want),
                "{input}"
            );
        }
        for bad in ["Y", "YWJjZ", "YW+j", "YW/j", "YW j", "YW.j"] {
            assert_eq!(base64url_decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn base64url_round_trips_every_length() {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut rng = fastrand::Rng::with_seed(7);
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            // the reference encoder: bit by bit, six at a time, no padding
            let bits: Vec<bool> = bytes
                .iter()
                .flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1))
                .collect();
            let text: Vec<u8> = bits
                .chunks(6)
                .map(|c| {
                    let v =
                        (0..6).fold(0usize, |v, i| v << 1 | usize::from(c.get(i) == Some(&true)));
                    ALPHABET[v]
                })
                .collect();
            assert_eq!(
                base64url_decode(&text).as_deref(),
                Some(&bytes[..]),
                "{len}"
            );
        }
    }

    #[test]
    fn cookies_as_nginx() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; JWT = tok ;b=2".parse().expect("value"),
        );
        h.append(header::COOKIE, "jwtx=no; c=3".parse().expect("value"));
        assert_eq!(cookie(&h, "jwt"), Some(&b"tok "[..]));
        assert_eq!(cookie(&h, "b"), Some(&b"2"[..]));
        assert_eq!(cookie(&h, "c"), Some(&b"3"[..]));
        assert_eq!(cookie(&h, "jwtx"), Some(&b"no"[..]));
        assert_eq!(cookie(&h, "d"), None);
    }

    #[test]
    fn decode_errors() {
        let b64 = base64_url;
        fn base64_url(s: &str) -> String {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let b = s.as_bytes();
            let mut out = String::new();
            for c in b.chunks(3) {
                let n = (u32::from(c[0]) << 16)
                    | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                    | u32::from(*c.get(2).unwrap_or(&0));
                for i in 0..=c.len() {
                    out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        }
        let h = b64(r#"{"alg":"HS256"}"#);
        let c = b64(r#"{"iss":"a"}"#);
        let cases: &[(String, Result<(), BadToken>)] = &[
            (format!("{h}.{c}.c2ln"), Ok(())),
            ("abc".into(), Err(BadToken::Json)),
            (h.clone(), Err(BadToken::Json)),
            (format!("{h}.{c}"), Err(BadToken::Signature)),
            (format!("{h}.{c}.a.b"), Err(BadToken::Signature)),
            (format!("{h}.!!.x"), Err(BadToken::Json)),
            (
                format!("{}.{c}.x", b64(r#"{"alg":"none"}"#)),
                Err(BadToken::Alg),
            ),
            (
                format!("{}.{c}.x", b64(r#"{"typ":"JWT"}"#)),
                Err(BadToken::Alg),
            ),
            (
                format!("{}.{c}.x", b64(r#"{"alg":256}"#)),
                Err(BadToken::Alg),
            ),
            (format!("{}.{c}.x", b64(r#"[1]"#)), Err(BadToken::Alg)),
            (format!("{h}.{}.c2ln", b64("false")), Err(BadToken::Claims)),
            (format!("{h}.{}.c2ln", b64("[]")), Ok(())),
            (format!("{h}.{c}.x"), Err(BadToken::Signature)),
        ];
        for (token, want) in cases {
            let mut scratch = Scratch::new();
            let got = decode(token.as_bytes(), "iss", &mut scratch).map(|_| ());
            assert_eq!(&got, want, "{token}");
        }
        let token = format!("{h}.{c}.c2ln");
        let mut scratch = Scratch::new();
        let d = decode(token.as_bytes(), "iss", &mut scratch).expect("valid");
        assert_eq!(d.signed, format!("{h}.{c}").as_bytes());
        assert_eq!(d.signature, b"sig");
        assert_eq!(d.alg, "HS256");
        assert_eq!(d.claims.key, Field::Str("a".into()));
        assert_eq!(d.header_key, Field::Missing);

        // Parts longer than the stack buffer are decoded on the heap.
        let long = b64(&format!(r#"{{"iss":"a","pad":"{}"}}"#, "x".repeat(2000)));
        let token = format!("{h}.{long}.c2ln");
        let mut scratch = Scratch::new();
        let d = decode(token.as_bytes(), "iss", &mut scratch).expect("valid");
        assert_eq!(d.claims.key, Field::Str("a".into()));
        assert_eq!(d.signature, b"sig");
    }
}
