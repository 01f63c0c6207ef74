//! The chunked transfer coding of response bodies (RFC 9112 §7.1), decoded in place from the
//! connection's read buffer: chunk data leaves as slices of that buffer.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{HEAD_LIMIT, MAX_HEADERS};

/// Longest chunk-size line accepted, extensions included.
const LINE_LIMIT: usize = 4096;

/// What one decoding step found.
#[derive(Debug)]
pub(crate) enum Decoded {
    Data(Bytes),
    /// The trailer section that ends the body.
    Trailers(HeaderMap),
    /// The end of the body, without trailers.
    End,
    /// More bytes are needed.
    NeedMore,
}

#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: State,
}

#[derive(Debug, Default, Clone, Copy)]
enum State {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// This many bytes of chunk data are left (more than 0).
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer fields, then an empty line.
    Trailers,
    Done,
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Chunked {
    /// Decodes what `buf` holds, consuming it, up to the next data slice or the end.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Decoded> {
        loop {
            match self.state {
                State::Size => {
                    let Some(nl) = buf.iter().take(LINE_LIMIT).position(|&b| b == b'\n') else {
                        if buf.len() >= LINE_LIMIT {
                            return Err(invalid("chunk size line too long"));
                        }
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&buf[..nl])?;
                    buf.advance(nl + 1);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = buf.split_to(n).freeze();
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    return Ok(Decoded::Data(data));
                }
                State::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Trailers => return self.trailers(buf),
                State::Done => return Ok(Decoded::End),
            }
        }
    }

    fn trailers(&mut self, buf: &mut BytesMut) -> io::Result<Decoded> {
        if buf.len() < 2 {
            return Ok(Decoded::NeedMore);
        }
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::Done;
            return Ok(Decoded::End);
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let (len, fields) = match httparse::parse_headers(buf, &mut slots) {
            Ok(httparse::Status::Complete(done)) => done,
            Ok(httparse::Status::Partial) if buf.len() < HEAD_LIMIT => {
                return Ok(Decoded::NeedMore)
            }
            Ok(httparse::Status::Partial) => return Err(invalid("trailer section too large")),
            Err(_) => return Err(invalid("invalid trailer section")),
        };
        let mut trailers = HeaderMap::with_capacity(fields.len());
        for field in fields.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| invalid("invalid trailer name"))?;
            let value = HeaderValue::from_bytes(field.value)
                .map_err(|_| invalid("invalid trailer value"))?;
            trailers.append(name, value);
        }
        buf.advance(len);
        self.state = State::Done;
        Ok(Decoded::Trailers(trailers))
    }
}

/// The size of a chunk-size line (without its LF): hex digits, optional extensions, CR.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let line = line
        .strip_suffix(b"\r")
        .ok_or_else(|| invalid("chunk size line not ended by CRLF"))?;
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 16 {
        return Err(invalid("invalid chunk size"));
    }
    let rest = &line[digits..];
    let rest = match rest.iter().position(|&b| b != b' ' && b != b'\t') {
        Some(i) => &rest[i..],
        None => &[],
    };
    if !(rest.is_empty() || rest[0] == b';') || rest.iter().any(|&b| b < 0x20 && b != b'\t') {
        return Err(invalid("invalid chunk extension"));
    }
    line[..digits].iter().try_fold(0u64, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => d - b'A' + 10,
        };
        n.checked_mul(16)
            .map(|n| n + u64::from(v))
            .ok_or_else(|| invalid("chunk size too large"))
    })
}
