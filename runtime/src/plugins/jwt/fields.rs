//! Reading the few members the plugin needs from a token's header and claims JSON.
//!
//! Kong decodes the whole JSON (cjson) and then looks up `alg`, the key claim, `exp` and
//! `nbf`. Building a `serde_json::Value` for that costs an allocation per key and string.
//! [`pick`] first tries a scanner that reads the plain JSON tokens are made of (printable
//! ASCII strings without escapes, integers of at most 15 digits, `true`/`false`/`null`,
//! nested arrays and objects) and keeps the named members of the top-level object,
//! borrowed from the text. Anything else — escapes, other bytes, fractions, exponents,
//! long integers, deep nesting, a top level that is not an object, or a syntax error — is
//! handed to `serde_json::from_slice::<Value>`, which decides as before. The scanner only
//! accepts text serde_json accepts, with the same values (a repeated member keeps its last
//! value, as a `Value` map does), so the answers are the same either way.

use std::borrow::Cow;

use serde_json::Value;

/// One member's value, as far as the checks look at it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Field<'a> {
    /// Not in the object (or the JSON is not an object).
    #[default]
    Missing,
    /// `false`, which Kong's Lua treats as absent.
    False,
    Str(Cow<'a, str>),
    Num(f64),
    /// `null`, `true`, an array or an object.
    Other,
}

impl Field<'_> {
    /// The number (`Value::as_f64`).
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Field::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// Present as Lua sees it: neither missing nor `false`.
    pub(crate) fn present(&self) -> bool {
        !matches!(self, Field::Missing | Field::False)
    }

    fn from_value(v: &Value) -> Field<'static> {
        match v {
            Value::Bool(false) => Field::False,
            Value::String(s) => Field::Str(Cow::Owned(s.clone())),
            Value::Number(n) => n.as_f64().map_or(Field::Other, Field::Num),
            _ => Field::Other,
        }
    }
}

/// What the top-level JSON value is, with the picked members of an object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Top<'a, const N: usize> {
    Object([Field<'a>; N]),
    Array,
    String,
    /// A number, a boolean or `null`.
    Scalar,
}

/// Not valid JSON (Kong's `Bad token; invalid JSON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadJson;

/// Parses `json` (one value, then only whitespace) and keeps the members named `names` of
/// a top-level object, in the order of `names` (a name may appear twice).
pub(crate) fn pick<'a, const N: usize>(
    json: &'a [u8],
    names: [&str; N],
) -> Result<Top<'a, N>, BadJson> {
    if let Some(fields) = Scanner::new(json).object(names) {
        return Ok(Top::Object(fields));
    }
    with_serde(json, names)
}

/// What [`pick`] answers by way of a whole `serde_json::Value` (the slow path, and what the
/// plugin read before the scanner).
fn with_serde<'a, const N: usize>(json: &[u8], names: [&str; N]) -> Result<Top<'a, N>, BadJson> {
    let value: Value = serde_json::from_slice(json).map_err(|_| BadJson)?;
    Ok(match value {
        Value::Object(m) => {
            Top::Object(names.map(|n| m.get(n).map_or(Field::Missing, Field::from_value)))
        }
        Value::Array(_) => Top::Array,
        Value::String(_) => Top::String,
        _ => Top::Scalar,
    })
}

/// Nesting the scanner follows (serde_json's own limit is 128).
const MAX_DEPTH: usize = 32;
/// Integer digits the scanner reads: below 2^53, so exact as an `f64`.
const MAX_DIGITS: usize = 15;

/// The fast path: `None` means "not sure, ask serde_json".
struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a [u8]) -> Self {
        Scanner { text, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    /// JSON's whitespace.
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.space();
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// The whole text as one object with the named members kept.
    fn object<const N: usize>(mut self, names: [&str; N]) -> Option<[Field<'a>; N]> {
        let mut out: [Field<'a>; N] = std::array::from_fn(|_| Field::Missing);
        self.eat(b'{')?;
        self.space();
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                self.space();
                // Names are compared as bytes: no need to make a `str` of the key.
                let key = self.string_bytes()?;
                self.eat(b':')?;
                self.space();
                let mut hits = [false; N];
                for (hit, name) in hits.iter_mut().zip(names) {
                    *hit = name.as_bytes() == key;
                }
                if hits.contains(&true) {
                    let value = self.field()?;
                    for (slot, hit) in out.iter_mut().zip(hits) {
                        if hit {
                            *slot = value.clone();
                        }
                    }
                } else {
                    self.skip(1)?;
                }
                self.space();
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.space();
        (self.at == self.text.len()).then_some(out)
    }

    /// A string of printable ASCII without escapes, when its opening quote is next: its
    /// bytes.
    fn string_bytes(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let rest = self.text.get(start..)?;
        let mut len = 0;
        loop {
            match *rest.get(len)? {
                b'"' => break,
                b'\\' => return None,
                0x20..=0x7e => len += 1,
                _ => return None,
            }
        }
        self.at = start + len + 1;
        Some(&rest[..len])
    }

    /// [`Self::string_bytes`] as a `str` (printable ASCII is UTF-8).
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.string_bytes()?).ok()
    }

    /// An integer of at most [`MAX_DIGITS`] digits, no leading zero, no `-0`.
    fn integer(&mut self) -> Option<f64> {
        let negative = self.peek()? == b'-';
        if negative {
            self.at += 1;
        }
        let digits = self
            .text
            .get(self.at..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let text = self.text.get(self.at..self.at + digits)?;
        let first = *text.first()?;
        if digits > MAX_DIGITS || (first == b'0' && (digits > 1 || negative)) {
            return None;
        }
        // A fraction or an exponent is serde_json's to read.
        if let Some(b'.' | b'e' | b'E') = self.text.get(self.at + digits) {
            return None;
        }
        self.at += digits;
        let n = text.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        Some(if negative { -(n as f64) } else { n as f64 })
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A picked member's value.
    fn field(&mut self) -> Option<Field<'a>> {
        Some(match self.peek()? {
            b'"' => Field::Str(Cow::Borrowed(self.string()?)),
            b'-' | b'0'..=b'9' => Field::Num(self.integer()?),
            b'f' => {
                self.literal(b"false")?;
                Field::False
            }
            _ => {
                self.skip(1)?;
                Field::Other
            }
        })
    }

    /// Reads any value at nesting `depth` (1 for a member of the top-level object).
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string_bytes().map(drop),
            b'-' | b'0'..=b'9' => self.integer().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            open @ (b'[' | b'{') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let close = if open == b'[' { b']' } else { b'}' };
                self.at += 1;
                self.space();
                if self.peek()? == close {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.space();
                    if open == b'{' {
                        self.string_bytes()?;
                        self.eat(b':')?;
                        self.space();
                    }
                    self.skip(depth + 1)?;
                    self.space();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b if b == close => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
