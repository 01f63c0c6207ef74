//! The request body as key-auth reads it (Kong's `kong.request.get_body()`): read within a
//! bounded size, parsed by content type, and put back for the upstream.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

use super::args::{self, Arg, Lookup};
use crate::{response, Body, BoxError, Request};

/// Bodies up to this size are examined: Kong's default `client_body_buffer_size` (8k).
/// A larger body is buffered by nginx to a file, and `kong.request.get_body()` then fails,
/// so Kong does not look for a key in it either.
pub const BODY_LIMIT: usize = 8 * 1024;

/// nginx's `client_body_timeout`: the longest wait for the next piece of the body.
pub const CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The body failed to arrive: the status and Kong's error-page message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadError {
    pub status: u16,
    pub message: &'static str,
}

/// A body already read (`prefix`, maybe trailers) followed by what is still unread.
struct Replay {
    prefix: Option<Bytes>,
    rest: Option<Body>,
    trailers: Option<HeaderMap>,
}

impl HttpBody for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(p) = self.prefix.take() {
            if !p.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(p))));
            }
        }
        if let Some(rest) = self.rest.as_mut() {
            return Pin::new(rest).poll_frame(cx);
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.as_ref().is_none_or(|p| p.is_empty())
            && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
            && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let n = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        match &self.rest {
            None => SizeHint::with_exact(n),
            Some(r) => {
                let h = r.size_hint();
                let mut s = SizeHint::new();
                s.set_lower(h.lower() + n);
                if let Some(u) = h.upper() {
                    s.set_upper(u + n);
                }
                s
            }
        }
    }
}

/// Reads the whole body if it is at most `limit` bytes, and puts it back on `req`
/// unchanged either way. `Ok(None)`: too large (declared or actual), not examined.
pub(crate) async fn read_bounded(
    req: &mut Request,
    limit: usize,
) -> Result<Option<Bytes>, ReadError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    if req.body().is_end_stream() {
        return Ok(Some(Bytes::new()));
    }
    let mut body = std::mem::replace(req.body_mut(), response::empty());
    let mut buf = BytesMut::new();
    let mut trailers = None;
    loop {
        let frame = match tokio::time::timeout(CLIENT_BODY_TIMEOUT, body.frame()).await {
            Err(_) => {
                return Err(ReadError {
                    status: 408,
                    message: "Request timeout",
                })
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(ReadError {
                    status: 400,
                    message: "Bad request",
                })
            }
            Ok(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(data) => {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    *req.body_mut() = Replay {
                        prefix: Some(buf.freeze()),
                        rest: Some(body),
                        trailers: None,
                    }
                    .boxed();
                    return Ok(None);
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    let bytes = buf.freeze();
    *req.body_mut() = Replay {
        prefix: Some(bytes.clone()),
        rest: None,
        trailers,
    }
    .boxed();
    Ok(Some(bytes))
}

/// A multipart part: its name and where its value and the whole part lie in the body.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    name: Vec<u8>,
    value: std::ops::Range<usize>,
    /// From the part's `--boundary` line to the next one.
    whole: std::ops::Range<usize>,
}

/// The body as key-auth sees it.
#[derive(Debug, Clone)]
pub(crate) enum BodyArgs {
    /// Not examinable (no or unsupported content type, unparsable, too large): Kong's
    /// `EMPTY`. Nothing is found in it and it is never rewritten.
    Empty,
    Form(Vec<Arg>),
    Json(serde_json::Value),
    Multipart {
        raw: Bytes,
        parts: Vec<Part>,
    },
}

fn memmem(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// `boundary=...` (maybe quoted) of a multipart content type.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// `name="..."` of a `Content-Disposition: form-data` header line.
fn disposition_name(headers: &[u8]) -> Option<Vec<u8>> {
    for line in headers.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon].eq_ignore_ascii_case(b"content-disposition") {
            continue;
        }
        for param in line[colon + 1..].split(|&b| b == b';') {
            let param = param.trim_ascii();
            if let Some(v) = param.strip_prefix(b"name=") {
                let v = v.strip_prefix(b"\"").unwrap_or(v);
                let v = v.strip_suffix(b"\"").unwrap_or(v);
                return Some(v.to_vec());
            }
        }
    }
    None
}

fn parse_multipart(raw: &Bytes, boundary: &str) -> Option<Vec<Part>> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = memmem(raw, delim, 0)?;
    let mut parts = Vec::new();
    loop {
        let after = pos + delim.len();
        if raw[after..].starts_with(b"--") {
            return Some(parts);
        }
        let head_start = memmem(raw, b"\r\n", after)? + 2;
        let head_end = memmem(raw, b"\r\n\r\n", head_start - 2)?;
        let value_start = head_end + 4;
        let mut next_delim = Vec::with_capacity(delim.len() + 2);
        next_delim.extend_from_slice(b"\r\n");
        next_delim.extend_from_slice(delim);
        let next = memmem(raw, &next_delim, value_start)?;
        let name = disposition_name(&raw[head_start.min(head_end)..head_end])?;
        parts.push(Part {
            name,
            value: value_start..next,
            whole: pos..next + 2,
        });
        pos = next + 2;
    }
}

impl BodyArgs {
    /// Kong's `kong.request.get_body()` on `raw` with the request's `Content-Type`.
    pub(crate) fn parse(content_type: Option<&HeaderValue>, raw: Bytes) -> BodyArgs {
        let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
            return BodyArgs::Empty;
        };
        let lower = ct.to_ascii_lowercase();
        let mime = lower.split(';').next().unwrap_or("");
        if mime.starts_with("application/x-www-form-urlencoded") {
            BodyArgs::Form(args::parse(&raw))
        } else if mime.starts_with("application/json") {
            match serde_json::from_slice::<serde_json::Value>(&raw) {
                Ok(v @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    BodyArgs::Json(v)
                }
                _ => BodyArgs::Empty,
            }
        } else if mime.starts_with("multipart/form-data") {
            match boundary(ct).and_then(|b| parse_multipart(&raw, &b)) {
                Some(parts) => BodyArgs::Multipart { raw, parts },
                None => BodyArgs::Empty,
            }
        } else {
            BodyArgs::Empty
        }
    }

    /// `body[name]` as Lua sees it.
    pub(crate) fn lookup(&self, name: &str) -> Lookup {
        match self {
            BodyArgs::Empty => Lookup::Missing,
            BodyArgs::Form(a) => args::lookup(a, name.as_bytes()),
            BodyArgs::Json(serde_json::Value::Object(m)) => match m.get(name) {
                None => Lookup::Missing,
                Some(serde_json::Value::String(s)) => Lookup::One(s.as_bytes().to_vec()),
                Some(serde_json::Value::Array(_) | serde_json::Value::Object(_)) => Lookup::Many,
                Some(_) => Lookup::Other,
            },
            BodyArgs::Json(_) => Lookup::Missing,
            BodyArgs::Multipart { raw, parts } => {
                let mut found = parts.iter().filter(|p| p.name == name.as_bytes());
                match (found.next(), found.next()) {
                    (None, _) => Lookup::Missing,
                    (Some(_), Some(_)) => Lookup::Many,
                    (Some(p), None) => Lookup::One(raw[p.value.clone()].to_vec()),
                }
            }
        }
    }

    /// The body without `name`, or `None` when `name` is not in it (then the body is left
    /// exactly as received).
    pub(crate) fn without(&self, name: &str) -> Option<Bytes> {
        match self {
            BodyArgs::Empty => None,
            BodyArgs::Form(a) => {
                let kept: Vec<Arg> = a
                    .iter()
                    .filter(|x| x.name != name.as_bytes())
                    .cloned()
                    .collect();
                (kept.len() != a.len()).then(|| Bytes::from(args::encode_form_sorted(&kept)))
            }
            BodyArgs::Json(serde_json::Value::Object(m)) => {
                let mut m = m.clone();
                m.remove(name)?;
                serde_json::to_vec(&serde_json::Value::Object(m))
                    .ok()
                    .map(Bytes::from)
            }
            BodyArgs::Json(_) => None,
            BodyArgs::Multipart { raw, parts } => {
                let removed: Vec<&Part> =
                    parts.iter().filter(|p| p.name == name.as_bytes()).collect();
                if removed.is_empty() {
                    return None;
                }
                let mut out = Vec::with_capacity(raw.len());
                let mut at = 0;
                for p in removed {
                    out.extend_from_slice(&raw[at..p.whole.start]);
                    at = p.whole.end;
                }
                out.extend_from_slice(&raw[at..]);
                Some(Bytes::from(out))
            }
        }
    }
}

/// Replaces the request body and its `Content-Length`.
pub(crate) fn set_body(req: &mut Request, bytes: Bytes) {
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    req.headers_mut().remove(header::TRANSFER_ENCODING);
    *req.body_mut() = response::full(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIPART: &str = "--XyZ\r\nContent-Disposition: form-data; name=\"apikey\"\r\n\r\ns3cr3t\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";

    fn ct(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn multipart_lookup_and_removal() {
        let b = BodyArgs::parse(
            Some(&ct("multipart/form-data; boundary=XyZ")),
            Bytes::from_static(MULTIPART.as_bytes()),
        );
        assert_eq!(b.lookup("apikey"), Lookup::One(b"s3cr3t".to_vec()));
        assert_eq!(b.lookup("file"), Lookup::One(b"hello".to_vec()));
        assert_eq!(b.lookup("other"), Lookup::Missing);
        let without = b.without("apikey").expect("removed");
        assert_eq!(
            std::str::from_utf8(&without).expect("utf-8"),
            "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n"
        );
        assert!(b.without("other").is_none());
    }

    #[test]
    fn json_values_as_lua_sees_them() {
        let b = BodyArgs::parse(
            Some(&ct("application/json; charset=utf-8")),
            Bytes::from_static(br#"{"apikey":"k","n":1,"arr":["a"],"obj":{}}"#),
        );
        assert_eq!(b.lookup("apikey"), Lookup::One(b"k".to_vec()));
        assert_eq!(b.lookup("n"), Lookup::Other);
        assert_eq!(b.lookup("arr"), Lookup::Many);
        assert_eq!(b.lookup("obj"), Lookup::Many);
        assert_eq!(
            b.without("apikey").as_deref(),
            Some(&br#"{"arr":["a"],"n":1,"obj":{}}"#[..])
        );
        for (ct_, raw) in [
            ("application/json", "\"str\""),
            ("application/json", "{bad"),
            ("text/plain", "apikey=x"),
        ] {
            let b = BodyArgs::parse(Some(&ct(ct_)), Bytes::from(raw));
            assert_eq!(b.lookup("apikey"), Lookup::Missing, "{ct_} {raw}");
        }
        assert!(matches!(
            BodyArgs::parse(None, Bytes::from_static(b"apikey=x")),
            BodyArgs::Empty
        ));
    }

    #[tokio::test]
    async fn bounded_reads_put_the_body_back() {
        use crate::plugins::test_support::request;
        // Small: read whole, then readable again.
        let mut req = request("POST", "/", &[]);
        *req.body_mut() = response::full(Bytes::from_static(b"apikey=1"));
        let got = read_bounded(&mut req, 16).await.expect("read");
        assert_eq!(got.as_deref(), Some(&b"apikey=1"[..]));
        let again = std::mem::replace(req.body_mut(), response::empty())
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&again[..], b"apikey=1");
        // Large: not examined, still complete for the upstream.
        let big = Bytes::from(vec![b'a'; 100]);
        let mut req = request("POST", "/", &[]);
        *req.body_mut() = response::full(big.clone());
        assert_eq!(read_bounded(&mut req, 16).await.expect("read"), None);
        let again = std::mem::replace(req.body_mut(), response::empty())
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(again, big);
        // Declared too large: not read at all.
        let mut req = request("POST", "/", &[("content-length", "100")]);
        *req.body_mut() = response::full(big.clone());
        assert_eq!(read_bounded(&mut req, 16).await.expect("read"), None);
    }
}
