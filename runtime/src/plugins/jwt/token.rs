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

/// The position of the first `\n`, eight bytes at a time.
fn newline(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    for (i, w) in (&mut words).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let x = u64::from_le_bytes(bytes) ^ (ONES * u64::from(b'\n'));
        // A zero byte in `x` (a newline in `w`) sets its high bit here.
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return w.iter().position(|&b| b == b'\n').map(|p| i * 8 + p);
        }
    }
    let rest = words.remainder();
    rest.iter()
        .position(|&b| b == b'\n')
        .map(|p| s.len() - rest.len() + p)
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
        let line = &rest[..newline(rest).unwrap_or(rest.len())];
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

/// What [`find_tokens`] found: Kong only needs to know whether there was none, exactly
/// one distinct candidate, or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tokens<'a> {
    None,
    One(Found<'a>),
    Several,
}

impl<'a> Tokens<'a> {
    fn add(&mut self, f: Found<'a>) {
        match self {
            Tokens::None => *self = Tokens::One(f),
            Tokens::One(seen) if *seen == f => {}
            _ => *self = Tokens::Several,
        }
    }
}

/// The distinct non-empty tokens in the request: query arguments, then cookies, then
/// headers (Kong's `retrieve_tokens`). `header_names` are already lower-case with `-`.
pub(crate) fn find_tokens<'a>(
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    uri_param_names: &[&str],
    cookie_names: &[&str],
    header_names: &[HeaderName],
) -> Tokens<'a> {
    let mut found = Tokens::None;
    if let (Some(q), false) = (query, uri_param_names.is_empty()) {
        for (name, value) in query_args(q) {
            if !uri_param_names.iter().any(|n| n.as_bytes() == &*name) {
                continue;
            }
            match value {
                None => found.add(Found::Flag),
                Some(v) if v.is_empty() => {}
                Some(v) => found.add(Found::Token(v)),
            }
        }
    }
    for name in cookie_names {
        if let Some(v) = cookie(headers, name).filter(|v| !v.is_empty()) {
            found.add(Found::Token(Cow::Borrowed(v)));
        }
    }
    for name in header_names {
        // Kong reads the first value of a repeated header.
        if let Some(token) = headers.get(name).and_then(|v| bearer(v.as_bytes())) {
            found.add(Found::Token(Cow::Borrowed(token)));
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

/// `DIGITS` placed for each position of a group of four digits (the first digit's bits
/// highest), an invalid byte setting bit 24 instead: OR-ing a group's four entries gives
/// its three bytes, or a value above `0xff_ffff`.
const PLACED: [[u32; 256]; 4] = {
    let mut t = [[0u32; 256]; 4];
    let mut b = 0;
    while b < 256 {
        let mut pos = 0;
        while pos < 4 {
            t[pos][b] = if DIGITS[b] == INVALID {
                1 << 24
            } else {
                (DIGITS[b] as u32) << (18 - 6 * pos)
            };
            pos += 1;
        }
        b += 1;
    }
    t
};

/// Decodes the base64url digits at the start of `s` into `out`, up to the first byte
/// outside the alphabet or the end: the bytes written and the digits read. `None` when the
/// digits are 1 mod 4 long or `out` (`s.len() / 4 * 3 + 2` bytes are enough) is too short.
fn decode_run(s: &[u8], out: &mut [u8]) -> Option<(usize, usize)> {
    let (mut read, mut written) = (0, 0);
    // Four digits at a time while all four are valid.
    for (q, o) in s.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let v = PLACED[0][usize::from(q[0])]
            | PLACED[1][usize::from(q[1])]
            | PLACED[2][usize::from(q[2])]
            | PLACED[3][usize::from(q[3])];
        if v > 0xff_ffff {
            break;
        }
        let [_, x, y, z] = v.to_be_bytes();
        o[0] = x;
        o[1] = y;
        o[2] = z;
        read += 4;
        written += 3;
    }
    let (mut v, mut held) = (0u32, 0);
    while let Some(&d) = s.get(read + held).map(|&x| &DIGITS[usize::from(x)]) {
        if d == INVALID {
            break;
        }
        if held == 3 {
            // Only when `out` was too short for the loop above.
            return None;
        }
        v = v << 6 | u32::from(d);
        held += 1;
    }
    // 2 or 3 digits left carry 1 or 2 bytes; their low bits are padding.
    match held {
        0 => {}
        1 => return None,
        2 => *out.get_mut(written)? = (v >> 4) as u8,
        _ => out
            .get_mut(written..written + 2)?
            .copy_from_slice(&[(v >> 10) as u8, (v >> 2) as u8]),
    }
    Some((written + held.saturating_sub(1), read + held))
}

/// nginx's `ngx_decode_base64url`: stops at the first `=`, rejects other characters outside
/// the url-safe alphabet and a length of 1 mod 4, ignores leftover bits.
pub fn base64url_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0; s.len() / 4 * 3 + 2];
    let (written, read) = decode_run(s, &mut out)?;
    if !matches!(s.get(read), None | Some(b'=')) {
        return None;
    }
    out.truncate(written);
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

/// A token header text common enough to recognise in its encoded form, with what
/// decoding it gives (`{"alg":"HS256","typ":"JWT"}` and its members the other way round,
/// per algorithm a secret uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownHeader {
    encoded: Vec<u8>,
    alg: &'static str,
}

/// base64url without padding.
fn base64url_encode(bytes: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let v = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(v >> (18 - 6 * i) & 63) as usize]);
        }
    }
    out
}

/// The headers to recognise for tokens of `algs` when the key claim is `key_claim_name`:
/// each text is decoded as any header would be, and kept only when it yields its
/// algorithm and no key claim.
pub(crate) fn known_headers<'s>(
    algs: impl IntoIterator<Item = &'s str>,
    key_claim_name: &str,
) -> Vec<KnownHeader> {
    let mut out: Vec<KnownHeader> = Vec::new();
    for alg in algs {
        for text in [
            format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#),
            format!(r#"{{"typ":"JWT","alg":"{alg}"}}"#),
        ] {
            let Ok(Top::Object([Field::Str(a), Field::Missing])) =
                fields::pick(text.as_bytes(), ["alg", key_claim_name])
            else {
                continue;
            };
            let Some(&alg) = KNOWN_ALGS.iter().find(|k| **k == a) else {
                continue;
            };
            let encoded = base64url_encode(text.as_bytes());
            if !out.iter().any(|k| k.encoded == encoded) {
                out.push(KnownHeader { encoded, alg });
            }
        }
    }
    out
}

/// Where a token part that starts at `start` ends (the next `.` or the end), after its
/// digits ran to `stop`; `None` when a byte outside the alphabet other than `=` ends them.
fn part_end(token: &[u8], start: usize, stop: usize) -> Option<usize> {
    let dot = |from: usize| {
        token
            .get(from..)
            .and_then(|rest| rest.iter().position(|&b| b == b'.'))
            .map_or(token.len(), |p| from + p)
    };
    match token.get(start + stop) {
        None | Some(b'.') => Some(start + stop),
        // nginx ignores everything after a `=`, up to the part's end.
        Some(b'=') => Some(dot(start + stop)),
        Some(_) => None,
    }
}

/// Kong's `decode_token`: three `.`-separated base64url parts (the third takes the rest).
/// `key_claim_name` is the member looked up in the claims, then the header; a header in
/// `known` is not decoded again.
pub(crate) fn decode<'a>(
    token: &'a [u8],
    key_claim_name: &str,
    known: &[KnownHeader],
    scratch: &'a mut Scratch,
) -> Result<Decoded<'a>, BadToken> {
    // Each part decodes to at most digits / 4 * 3 + 2 bytes.
    let buf = scratch.get(token.len() / 4 * 3 + 6);
    let known = known.iter().find(|k| {
        token.get(..k.encoded.len()) == Some(&k.encoded[..])
            && token.get(k.encoded.len()) == Some(&b'.')
    });
    let (header_len, header_end) = match known {
        Some(k) => (0, k.encoded.len()),
        None => {
            let (len, read) = decode_run(token, buf).ok_or(BadToken::Json)?;
            (len, part_end(token, 0, read).ok_or(BadToken::Json)?)
        }
    };
    // No claims part.
    let claims_start = (header_end < token.len())
        .then_some(header_end + 1)
        .ok_or(BadToken::Json)?;
    let (header_buf, rest) = buf.split_at_mut(header_len);
    let (claims_len, read) = decode_run(&token[claims_start..], rest).ok_or(BadToken::Json)?;
    let claims_end = part_end(token, claims_start, read).ok_or(BadToken::Json)?;
    let (claims_buf, signature_buf) = rest.split_at_mut(claims_len);
    // The third part is the rest of the token, dots included.
    let signature = match token.get(claims_end + 1..) {
        Some(s) => decode_run(s, signature_buf)
            .filter(|&(_, read)| matches!(s.get(read), None | Some(b'='))),
        None => None,
    };
    let header = match known {
        Some(k) => Top::Object([Field::Str(Cow::Borrowed(k.alg)), Field::Missing]),
        None => fields::pick(header_buf, ["alg", key_claim_name]).map_err(|_| BadToken::Json)?,
    };
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
    let (signature_len, _) = signature.ok_or(BadToken::Signature)?;
    Ok(Decoded {
        signed: &token[..claims_end],
        header_key,
        claims,
        alg,
        signature: &signature_buf[..signature_len],
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

    /// The decoder as it was: split on `.`, nginx's base64url byte by byte, `Value`s.
    fn reference_decode(
        token: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>, String, Field<'static>), BadToken> {
        fn b64(s: &[u8]) -> Option<Vec<u8>> {
            let len = s.iter().position(|&b| b == b'=').unwrap_or(s.len());
            if len % 4 == 1 {
                return None;
            }
            let mut out = Vec::new();
            let (mut acc, mut held) = (0u32, 0);
            for &b in &s[..len] {
                let v = DIGITS[usize::from(b)];
                if v == INVALID {
                    return None;
                }
                acc = acc << 6 | u32::from(v);
                held += 1;
                if held == 4 {
                    out.extend_from_slice(&acc.to_be_bytes()[1..]);
                    (acc, held) = (0, 0);
                }
            }
            match held {
                2 => out.push((acc >> 4) as u8),
                3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
                _ => {}
            }
            Some(out)
        }
        use serde_json::Value;
        let mut parts = token.splitn(3, |&b| b == b'.');
        let header_64 = parts.next().unwrap_or_default();
        let claims_64 = parts.next().ok_or(BadToken::Json)?;
        let signature_64 = parts.next();
        let json = |part: &[u8]| -> Result<Value, BadToken> {
            let bytes = b64(part).ok_or(BadToken::Json)?;
            serde_json::from_slice(&bytes).map_err(|_| BadToken::Json)
        };
        let header = json(header_64)?;
        let claims = json(claims_64)?;
        let Value::Object(header) = header else {
            return Err(BadToken::Alg);
        };
        let alg = match header.get("alg") {
            Some(Value::String(a)) if KNOWN_ALGS.contains(&a.as_str()) => a.clone(),
            _ => return Err(BadToken::Alg),
        };
        let key = match claims {
            Value::Object(m) => match m.get("iss") {
                None => Field::Missing,
                Some(Value::Bool(false)) => Field::False,
                Some(Value::String(s)) => Field::Str(s.clone().into()),
                Some(Value::Number(n)) => Field::Num(n.as_f64().unwrap_or_default()),
                Some(_) => Field::Other,
            },
            Value::Array(_) | Value::String(_) => Field::Missing,
            _ => return Err(BadToken::Claims),
        };
        let signature = signature_64.and_then(b64).ok_or(BadToken::Signature)?;
        let signed = token[..header_64.len() + 1 + claims_64.len()].to_vec();
        Ok((signed, signature, alg, key))
    }

    #[test]
    fn decode_agrees_with_the_reference() {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let header = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
        let claims = b"eyJpc3MiOiJtb2JpbGUtYXBwIiwiZXhwIjoxNzY0MzE1OTAzfQ";
        let mut rng = fastrand::Rng::with_seed(5);
        let mut oks = 0;
        // Every other token goes through the recognised-header path when it can.
        let all_known = known_headers(KNOWN_ALGS.iter().copied(), "iss");
        assert_eq!(all_known.len(), 2 * KNOWN_ALGS.len());
        assert!(all_known.iter().any(|k| k.encoded == header));
        for i in 0..100_000 {
            let mut token: Vec<u8> = Vec::new();
            for part in 0..rng.usize(1..5) {
                if part > 0 {
                    token.push(b'.');
                }
                match rng.usize(..8) {
                    0 => token.extend_from_slice(header),
                    1 => token.extend_from_slice(claims),
                    _ => {}
                }
                for _ in 0..rng.usize(0..6) {
                    token.push(match rng.usize(..12) {
                        0 => b'=',
                        1 => b'.',
                        2 => b'!',
                        _ => ALPHABET[rng.usize(..64)],
                    });
                }
            }
            if i % 4 == 0 {
                // Mostly well-formed: header.claims.signature with noise.
                token = [&header[..], b".", &claims[..], b".", &token[..]].concat();
            }
            let known = if i % 2 == 0 { &all_known[..] } else { &[] };
            let mut scratch = Scratch::new();
            let got = decode(&token, "iss", known, &mut scratch).map(|d| {
                (
                    d.signed.to_vec(),
                    d.signature.to_vec(),
                    d.alg.to_owned(),
                    d.claims.key.clone(),
                )
            });
            let want = reference_decode(&token);
            oks += usize::from(want.is_ok());
            assert_eq!(got, want, "{}", String::from_utf8_lossy(&token));
        }
        assert!(oks > 1000, "{oks}");
    }

    #[test]
    fn distinct_tokens() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer a".parse().expect("value"));
        let names = [header::AUTHORIZATION];
        let one = |t: &'static str| Tokens::One(Found::Token(Cow::Borrowed(t.as_bytes())));
        let cases: &[(Option<&str>, Tokens<'_>)] = &[
            (None, one("a")),
            (Some("jwt=a"), one("a")),
            (Some("jwt=a&jwt=a"), one("a")),
            (Some("jwt=b"), Tokens::Several),
            (Some("jwt="), one("a")),
            (Some("jwt&x=1"), Tokens::Several),
        ];
        for (query, want) in cases {
            assert_eq!(
                &find_tokens(*query, &h, &["jwt"], &[], &names),
                want,
                "{query:?}"
            );
        }
        let empty = HeaderMap::new();
        assert_eq!(
            find_tokens(None, &empty, &["jwt"], &[], &names),
            Tokens::None
        );
        assert_eq!(
            find_tokens(Some("jwt"), &empty, &["jwt"], &[], &names),
            Tokens::One(Found::Flag)
        );
        assert_eq!(
            find_tokens(Some("jwt&jwt=x"), &empty, &["jwt"], &[], &names),
            Tokens::Several
        );
    }

    #[test]
    fn known_headers_only_where_decoding_gives_the_same() {
        let hs = known_headers(["HS256", "HS256"], "iss");
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].encoded, b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
        assert!(hs.iter().all(|k| k.alg == "HS256"));
        // A key claim the header text holds: decoded every time.
        assert!(known_headers(["HS256"], "typ").is_empty());
        assert!(known_headers(["HS256"], "alg").is_empty());
        // An algorithm Kong's parser does not know is never recognised.
        assert!(known_headers(["none"], "iss").is_empty());
    }

    #[test]
    fn newline_search() {
        for len in 0..40 {
            let mut s = vec![b'a'; len];
            assert_eq!(newline(&s), None, "{len}");
            for at in 0..len {
                s.fill(b'a');
                s[at] = b'\n';
                if at + 3 < len {
                    s[at + 3] = b'\n';
                }
                assert_eq!(newline(&s), Some(at), "{len} {at}");
            }
        }
        // Bytes next to 0x0a, and high bytes, are not newlines.
        assert_eq!(
            newline(&[0x0b, 0x09, 0x8a, 0xff, 0x0b, 0x0b, 0x0b, 0x0b, 0x0a]),
            Some(8)
        );
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
            let got = decode(token.as_bytes(), "iss", &[], &mut scratch).map(|_| ());
            assert_eq!(&got, want, "{token}");
        }
        let token = format!("{h}.{c}.c2ln");
        let mut scratch = Scratch::new();
        let d = decode(token.as_bytes(), "iss", &[], &mut scratch).expect("valid");
        assert_eq!(d.signed, format!("{h}.{c}").as_bytes());
        assert_eq!(d.signature, b"sig");
        assert_eq!(d.alg, "HS256");
        assert_eq!(d.claims.key, Field::Str("a".into()));
        assert_eq!(d.header_key, Field::Missing);

        // Parts longer than the stack buffer are decoded on the heap.
        let long = b64(&format!(r#"{{"iss":"a","pad":"{}"}}"#, "x".repeat(2000)));
        let token = format!("{h}.{long}.c2ln");
        let mut scratch = Scratch::new();
        let d = decode(token.as_bytes(), "iss", &[], &mut scratch).expect("valid");
        assert_eq!(d.claims.key, Field::Str("a".into()));
        assert_eq!(d.signature, b"sig");
    }
}
