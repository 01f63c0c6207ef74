//! Request ids: 32 lower-case hex characters (Kong's `X-Kong-Request-Id` shape).
//!
//! Drawn from `fastrand`'s thread-local generator (seeded once per thread), so making an id
//! costs no system call; kept inline, so it costs no allocation either. Every id is a valid
//! header value as it is: its bytes go into header lines without a check or a copy.

use std::{fmt, ops::Deref};

/// One request's id: 32 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId([u8; 32]);

/// The two hex digits of every byte value.
const PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    pairs
};

impl RequestId {
    /// A fresh random id.
    pub fn new() -> RequestId {
        let mut id = [0u8; 32];
        for (pair, b) in id.chunks_exact_mut(2).zip(fastrand::u128(..).to_be_bytes()) {
            pair.copy_from_slice(&PAIRS[usize::from(b)]);
        }
        RequestId(id)
    }

    /// `text` as an id if it has the shape of one (32 lower-case hex characters).
    pub fn parse(text: &str) -> Option<RequestId> {
        let id = <[u8; 32]>::try_from(text.as_bytes()).ok()?;
        id.iter()
            .all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
            .then_some(RequestId(id))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex, by construction.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id's bytes, as they go into a header line.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The id as a header value.
    pub fn header_value(&self) -> http::HeaderValue {
        http::HeaderValue::from_bytes(&self.0)
            .unwrap_or_else(|_| http::HeaderValue::from_static(""))
    }
}

impl Default for RequestId {
    fn default() -> RequestId {
        RequestId::new()
    }
}

impl Deref for RequestId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// A fresh request id.
pub fn new() -> RequestId {
    RequestId::new()
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn shape_and_uniqueness() {
        let a = super::new();
        let b = super::new();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{a}"
        );
        assert_ne!(a, b);
        assert_eq!(a.header_value().as_bytes(), a.as_bytes());
        assert_eq!(format!("{a}"), a.as_str());
        assert_eq!(RequestId::parse(&a), Some(a));
    }

    #[test]
    fn digits_are_the_bytes_in_hex() {
        // Every byte value's pair, against the formatter.
        for b in 0..=255u8 {
            assert_eq!(super::PAIRS[usize::from(b)], *format!("{b:02x}").as_bytes());
        }
    }

    #[test]
    fn parse_takes_only_the_shape_of_an_id() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(RequestId::parse(id).map(|i| i.to_string()), Some(id.into()));
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
            "bad\nid",
        ] {
            assert_eq!(RequestId::parse(bad), None, "{bad:?}");
        }
    }
}
