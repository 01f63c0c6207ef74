//! The upstream HTTP/1.1 client: one request at a time on a kept-alive connection, driven
//! by the request's own task.
//!
//! The request head is written from one buffer; the response head is parsed from the
//! connection's read buffer (httparse), and its fields are kept as lines
//! ([`UpstreamHead`](crate::upstream_head::UpstreamHead)). The
//! response body ([`UpBody`]) owns the connection: it decodes the body (content-length,
//! chunked, or until close) while it is read, goes on sending what is left of the request
//! body in the same polls (an upstream may answer before it has read the whole request),
//! and puts the connection back into its pool once both messages are complete and the
//! connection may be reused. A body dropped half-read closes its connection.
//!
//! Framing follows RFC 9112 §6: no body for `HEAD`, 1xx, 204 and 304; `Transfer-Encoding`
//! over `Content-Length` (and then no reuse); chunked only as the final coding, any other
//! coding is read until close; differing or invalid `Content-Length`s are an invalid
//! response. Interim 1xx answers are skipped; `101` is invalid (no upgrade is ever asked).

use std::{
    collections::VecDeque,
    future::poll_fn,
    io,
    mem::MaybeUninit,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::AsyncWrite;

use crate::{
    pool::Pool,
    timed_io::TimedIo,
    upstream_head::{Field, UpstreamHead},
    Body, BoxError,
};

pub(crate) mod chunked;
#[cfg(test)]
mod tests;

use chunked::Chunked;

/// Longest response head (status line and headers) accepted; more is an invalid response.
pub(crate) const HEAD_LIMIT: usize = 64 * 1024;
/// Most response headers accepted (hyper's default).
const MAX_HEADERS: usize = 100;
/// Room made in the read buffer when less than `READ_MIN` is left.
const READ_SIZE: usize = 8 * 1024;
const READ_MIN: usize = 2 * 1024;
/// Request body chunks up to this size are copied next to their chunked framing and
/// written with it; larger ones are written as they are.
const COPY_LIMIT: usize = 8 * 1024;

/// One upstream connection and its read buffer.
pub(crate) struct Conn {
    io: TimedIo,
    buf: BytesMut,
    /// Whether a request was already sent on this connection.
    reused: bool,
}

impl Conn {
    /// Boxed once per connection: a request moves it into the exchange, into the response
    /// body and back to the pool, a pointer each time instead of the whole connection.
    pub(crate) fn new(io: TimedIo) -> Box<Conn> {
        Box::new(Conn {
            io,
            buf: BytesMut::with_capacity(READ_SIZE),
            reused: false,
        })
    }

    /// Whether this idle connection can take a request: the upstream has neither closed it
    /// nor sent anything since the last response. Costs no system call unless the socket
    /// was reported readable.
    pub(crate) fn idle_usable(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let stream = self.io.get_ref();
        let mut cx = Context::from_waker(Waker::noop());
        match stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable: data or end of stream, unless the readiness is stale, which a read
            // that would block tells (and clears).
            Poll::Ready(Ok(())) => matches!(
                stream.try_read(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            ),
        }
    }
}

/// How a request body is framed upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length`: exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Chooses the framing of a request body: the request's own `Content-Length` when it has
/// one, else the body's exact size, else chunked. `None`: the request's `Content-Length` is
/// not one valid number.
pub(crate) fn request_framing(headers: &HeaderMap, body: &Body) -> Option<Framing> {
    if headers.contains_key(header::CONTENT_LENGTH) {
        return match content_length(headers)? {
            0 if body.is_end_stream() => Some(Framing::Empty),
            n => Some(Framing::Length(n)),
        };
    }
    if body.is_end_stream() {
        return Some(Framing::Empty);
    }
    Some(match body.size_hint().exact() {
        Some(n) => Framing::Length(n),
        None => Framing::Chunked,
    })
}

/// The one value of every `Content-Length` (repeated values must agree); `None` when absent,
/// differing or not a number.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut found = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let n = parse_decimal(trim(part))?;
            if found.is_some_and(|f| f != n) {
                return None;
            }
            found = Some(n);
        }
    }
    found
}

/// A decimal field value (`Content-Length`): digits only, at most 19 of them.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// `s` without the spaces and tabs around it (a field value or list element).
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Ends a request line that `out` holds up to its target (`METHOD target`), and adds
/// `Host`; returns where the host's value is in `out` (a retry on another target puts that
/// target's there).
pub(crate) fn end_request_line(out: &mut Vec<u8>, host: &HeaderValue) -> std::ops::Range<usize> {
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    let at = out.len();
    out.extend_from_slice(host.as_bytes());
    let host_range = at..out.len();
    out.extend_from_slice(b"\r\n");
    host_range
}

/// A whole request head: the request line, `Host`, and then `rest` (the other headers
/// and the blank line).
#[cfg(test)]
pub(crate) fn encode_head(
    method: &Method,
    target: &str,
    host: &HeaderValue,
    rest: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {target}").into_bytes();
    end_request_line(&mut out, host);
    out.extend_from_slice(rest);
    out
}

/// Why an exchange gave no response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Not one byte of the request was written, and the body is untouched: the request may
    /// go out on another connection as it is.
    Unsent,
    /// The connection ended before any byte of a response: on a kept-alive connection, the
    /// upstream closed it as the request went out.
    Closed,
    /// A read or write timed out (504).
    Timeout,
    /// Anything else: an invalid response, a broken connection, a request body that failed
    /// (502).
    Invalid,
}

impl SendError {
    fn of_io(e: &io::Error) -> SendError {
        match e.kind() {
            io::ErrorKind::TimedOut => SendError::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => SendError::Closed,
            _ => SendError::Invalid,
        }
    }
}

/// One request as it goes upstream: its head (request line to blank line), how its body is
/// framed, and its method (which decides whether the response has a body).
#[derive(Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub(crate) head: &'a [u8],
    pub(crate) framing: Framing,
    pub(crate) method: &'a Method,
}

/// Sends one request on `conn` and waits for the response head. `body` is taken only once
/// the head is written, so after [`SendError::Unsent`] it is still there. The response's
/// header lines go to `fields`, in `buffer`'s memory (an earlier response's lines, or
/// empty).
pub(crate) async fn send(
    mut conn: Box<Conn>,
    request: Outgoing<'_>,
    body: &mut Option<Body>,
    pool: &Arc<Pool>,
    fields: &mut Option<UpstreamHead>,
    buffer: &mut Vec<u8>,
) -> Result<(StatusCode, UpBody), SendError> {
    let Outgoing {
        head,
        framing,
        method,
    } = request;
    let mut written = 0;
    let written_head = poll_fn(|cx| {
        while written < head.len() {
            match Pin::new(&mut conn.io).poll_write(cx, &head[written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero)))
                }
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    })
    .await;
    if let Err(e) = written_head {
        return Err(match SendError::of_io(&e) {
            SendError::Closed | SendError::Invalid if written == 0 => SendError::Unsent,
            other => other,
        });
    }
    let was_reused = conn.reused;
    conn.reused = true;
    let mut upload = match (framing, body.take()) {
        (Framing::Empty, _) | (_, None) => None,
        (framing, Some(body)) => Some(Upload::new(body, framing)),
    };
    let mut upload_failed = false;

    let parsed = poll_fn(|cx| {
        if let Some(up) = &mut upload {
            match up.poll_send(cx, &mut conn.io) {
                Poll::Ready(Ok(())) => upload = None,
                Poll::Ready(Err(e)) => {
                    upload = None;
                    upload_failed = true;
                    match e {
                        // The request cannot stand without its whole body.
                        UploadError::Body => return Poll::Ready(Err(SendError::Invalid)),
                        UploadError::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
                            return Poll::Ready(Err(SendError::Timeout))
                        }
                        // The upstream may have answered before it stopped reading (e.g.
                        // an early 413): that answer is read below.
                        UploadError::Io(_) => {}
                    }
                }
                Poll::Pending => {}
            }
        }
        poll_head(cx, &mut conn, method, buffer)
    })
    .await;
    let parsed = match parsed {
        Ok(p) => p,
        Err(SendError::Closed) if !was_reused || upload_failed => return Err(SendError::Invalid),
        Err(e) => return Err(e),
    };
    let keep_alive = parsed.keep_alive && !upload_failed;
    let decoder = parsed.body;
    let body = UpBody {
        conn: Some(conn),
        decoder,
        upload,
        keep_alive,
        pool: pool.clone(),
    };
    *fields = Some(parsed.head);
    Ok((parsed.status, body.released_if_done()))
}

/// A parsed response head.
struct Parsed {
    status: StatusCode,
    head: UpstreamHead,
    body: Decoder,
    keep_alive: bool,
}

/// Reads until one final response head is parsed.
fn poll_head(
    cx: &mut Context<'_>,
    conn: &mut Conn,
    method: &Method,
    buffer: &mut Vec<u8>,
) -> Poll<Result<Parsed, SendError>> {
    loop {
        if !conn.buf.is_empty() {
            match parse_head(&mut conn.buf, method, buffer)? {
                Some(Head::Final(parsed)) => return Poll::Ready(Ok(parsed)),
                Some(Head::Interim) => continue,
                None if conn.buf.len() >= HEAD_LIMIT => {
                    return Poll::Ready(Err(SendError::Invalid))
                }
                None => {}
            }
        }
        let had = conn.buf.len();
        match read_more(cx, conn) {
            Poll::Ready(Ok(0)) if had == 0 => return Poll::Ready(Err(SendError::Closed)),
            Poll::Ready(Ok(0)) => return Poll::Ready(Err(SendError::Invalid)),
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => {
                return Poll::Ready(Err(match SendError::of_io(&e) {
                    SendError::Closed if had > 0 => SendError::Invalid,
                    other => other,
                }))
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}

fn read_more(cx: &mut Context<'_>, conn: &mut Conn) -> Poll<io::Result<usize>> {
    // Small answers share one buffer until it is nearly used up: room is only made (a new
    // buffer, while earlier responses still hold parts of this one) below `READ_MIN`.
    if conn.buf.capacity() - conn.buf.len() < READ_MIN {
        conn.buf.reserve(READ_SIZE);
    }
    tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf)
}

// Returned once per response and taken apart at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Head {
    /// A 1xx answer, skipped.
    Interim,
    Final(Parsed),
}

/// Parses a response head at the start of `buf` and removes it from there; `None` when the
/// head is not complete yet.
fn parse_head(
    buf: &mut BytesMut,
    method: &Method,
    buffer: &mut Vec<u8>,
) -> Result<Option<Head>, SendError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) if len <= HEAD_LIMIT => len,
        Ok(httparse::Status::Complete(_)) => return Err(SendError::Invalid),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(SendError::Invalid),
    };
    let code = resp.code.ok_or(SendError::Invalid)?;
    let status = StatusCode::from_u16(code).map_err(|_| SendError::Invalid)?;
    if status.is_informational() {
        if code == 101 {
            return Err(SendError::Invalid);
        }
        buf.advance(len);
        return Ok(Some(Head::Interim));
    }
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // The fields are passed on as lines (see `upstream_head`), without the hop-by-hop ones:
    // those are read for framing and keep-alive only.
    let mut framing = ResponseFraming::default();
    let mut listed = false;
    let mut head = UpstreamHead::in_buffer(std::mem::take(buffer), len);
    // Lines already in `name: value` CRLF form that follow each other are copied in one go.
    let mut run = 0..0;
    for h in resp.headers.iter() {
        let kind = match Field::of(h.name.as_bytes()) {
            Field::Connection => {
                listed |= framing.connection(h.value);
                continue;
            }
            Field::TransferEncoding => {
                framing.transfer_encoding(h.value);
                continue;
            }
            Field::ContentLength => {
                framing.content_length(h.value);
                continue;
            }
            Field::HopByHop => continue,
            kind => kind,
        };
        if kind != Field::Gateway {
            if let Some(line) = wire_line(buf, h) {
                if line.start != run.end {
                    head.push_lines(&buf[run]);
                    run = line.start..line.start;
                }
                run.end = line.end;
                head.note(kind, h.name.as_bytes());
                continue;
            }
        }
        head.push_lines(&buf[run]);
        run = 0..0;
        head.push(kind, h.name.as_bytes(), h.value)
            .map_err(|()| SendError::Invalid)?;
    }
    head.push_lines(&buf[run]);
    if listed {
        // Fields the upstream's `Connection` names are hop-by-hop too: the lines again,
        // without them (rare), in the same memory.
        head = UpstreamHead::in_buffer(head.into_buffer(), len);
        for h in resp.headers.iter() {
            let kind = Field::of(h.name.as_bytes());
            if matches!(
                kind,
                Field::Other | Field::Date | Field::Server | Field::Gateway
            ) && !connection_lists(resp.headers, h.name)
            {
                head.push(kind, h.name.as_bytes(), h.value)
                    .map_err(|()| SendError::Invalid)?;
            }
        }
    }
    let (body, keep_alive) = framing.decide(method, status, version)?;
    if framing.chunked.is_none() {
        // With a coding, a length next to it is wrong and is not passed on (RFC 9112 §6.3).
        head.set_content_length(framing.length.and_then(Result::ok));
    }
    buf.advance(len);
    Ok(Some(Head::Final(Parsed {
        status,
        head,
        body,
        keep_alive,
    })))
}

/// Where `h`'s line is in `buf` (a slice of it) when it is exactly `name: value` CRLF.
fn wire_line(buf: &[u8], h: &httparse::Header<'_>) -> Option<std::ops::Range<usize>> {
    let base = buf.as_ptr() as usize;
    let name = (h.name.as_ptr() as usize).checked_sub(base)?;
    let value = (h.value.as_ptr() as usize).checked_sub(base)?;
    let name_end = name + h.name.len();
    let end = value + h.value.len() + 2;
    let exact = !h.value.is_empty()
        && value == name_end + 2
        && buf.get(name_end..value) == Some(b": ")
        && buf.get(end - 2..end) == Some(b"\r\n");
    exact.then_some(name..end)
}

/// Whether a `Connection` field of `headers` names `name` (it is then hop-by-hop too).
fn connection_lists(headers: &[httparse::Header<'_>], name: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .any(|token| trim(token).eq_ignore_ascii_case(name.as_bytes()))
}

/// What a response head says about its body and its connection.
#[derive(Default)]
struct ResponseFraming {
    /// `Transfer-Encoding` present: whether its final coding is chunked.
    chunked: Option<bool>,
    /// Every `Content-Length` value, if they agree (`Err`: they do not, or one is invalid).
    length: Option<Result<u64, ()>>,
    close: bool,
    keep_alive: bool,
}

impl ResponseFraming {
    /// Reads a `Connection` value; true when it names other headers.
    fn connection(&mut self, value: &[u8]) -> bool {
        let mut others = false;
        for token in value.split(|&b| b == b',') {
            let token = trim(token);
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if !token.is_empty() {
                others = true;
            }
        }
        others
    }

    /// Reads a `Transfer-Encoding` value: the last one decides.
    fn transfer_encoding(&mut self, value: &[u8]) {
        let last = value.rsplit(|&b| b == b',').next().map(trim);
        self.chunked = Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
    }

    fn content_length(&mut self, value: &[u8]) {
        for part in value.split(|&b| b == b',') {
            let n = parse_decimal(trim(part)).ok_or(());
            self.length = Some(match (self.length, n) {
                (None, n) => n,
                (Some(Ok(a)), Ok(b)) if a == b => Ok(a),
                _ => Err(()),
            });
        }
    }

    /// The body's decoder, and whether the connection may be reused after it
    /// (RFC 9112 §6.3, §9.3).
    fn decide(
        &self,
        method: &Method,
        status: StatusCode,
        version: Version,
    ) -> Result<(Decoder, bool), SendError> {
        let persistent = !self.close && (version == Version::HTTP_11 || self.keep_alive);
        if method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok((Decoder::Done, persistent));
        }
        if method == Method::CONNECT && status.is_success() {
            // A tunnel: whatever follows, until close.
            return Ok((Decoder::Close, false));
        }
        match (self.chunked, self.length) {
            (Some(true), length) => Ok((
                Decoder::Chunked(Chunked::default()),
                persistent && length.is_none(),
            )),
            (Some(false), _) => Ok((Decoder::Close, false)),
            (None, Some(Ok(0))) => Ok((Decoder::Done, persistent)),
            (None, Some(Ok(n))) => Ok((Decoder::Length(n), persistent)),
            (None, Some(Err(()))) => Err(SendError::Invalid),
            (None, None) => Ok((Decoder::Close, false)),
        }
    }
}

/// What is left of a response body.
enum Decoder {
    /// Exactly this many more bytes (more than 0).
    Length(u64),
    Chunked(Chunked),
    /// Until the upstream closes the connection.
    Close,
    Done,
}

/// Why a request body could not be sent.
enum UploadError {
    /// The body itself failed (the client went away, a plugin cut it off) or did not match
    /// its `Content-Length`.
    Body,
    /// Writing to the upstream failed.
    Io(io::Error),
}

/// What is left of a request body, and its framing.
struct Upload {
    body: Body,
    chunked: bool,
    /// Bytes still allowed under `Content-Length`.
    remaining: u64,
    /// Bytes to write before the next frame is polled.
    out: VecDeque<Bytes>,
    ended: bool,
}

impl Upload {
    fn new(body: Body, framing: Framing) -> Upload {
        let (chunked, remaining) = match framing {
            Framing::Chunked => (true, 0),
            Framing::Length(n) => (false, n),
            Framing::Empty => (false, 0),
        };
        Upload {
            body,
            chunked,
            remaining,
            out: VecDeque::new(),
            ended: false,
        }
    }

    /// Writes the body until it is all sent (`Ready(Ok)`), it fails, or it or the socket
    /// has to wait.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut TimedIo,
    ) -> Poll<Result<(), UploadError>> {
        loop {
            while let Some(front) = self.out.front_mut() {
                match Pin::new(&mut *io).poll_write(cx, front) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(UploadError::Io(io::ErrorKind::WriteZero.into())))
                    }
                    Poll::Ready(Ok(n)) => {
                        front.advance(n);
                        if front.is_empty() {
                            self.out.pop_front();
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(UploadError::Io(e))),
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.ended {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(UploadError::Body)),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.queue_data(data)?,
                    Err(frame) => {
                        if frame.is_trailers() {
                            self.finish()?;
                        }
                    }
                },
                Poll::Ready(None) => self.finish()?,
            }
        }
    }

    fn queue_data(&mut self, data: Bytes) -> Result<(), UploadError> {
        if data.is_empty() {
            return Ok(());
        }
        if !self.chunked {
            let len = data.len() as u64;
            if len > self.remaining {
                // Longer than its Content-Length.
                return Err(UploadError::Body);
            }
            self.remaining -= len;
            self.out.push_back(data);
            return Ok(());
        }
        let mut size = Vec::with_capacity(18);
        crate::response::push_chunk_size(&mut size, data.len());
        if data.len() <= COPY_LIMIT {
            let mut one = Vec::with_capacity(size.len() + data.len() + 2);
            one.extend_from_slice(&size);
            one.extend_from_slice(&data);
            one.extend_from_slice(b"\r\n");
            self.out.push_back(Bytes::from(one));
        } else {
            self.out.push_back(Bytes::from(size));
            self.out.push_back(data);
            self.out.push_back(Bytes::from_static(b"\r\n"));
        }
        Ok(())
    }

    /// The end of the body. Request trailers are not passed on (nginx does not either):
    /// they would reach the upstream past the header rules and the plugins.
    fn finish(&mut self) -> Result<(), UploadError> {
        self.ended = true;
        if !self.chunked {
            if self.remaining > 0 {
                // Shorter than its Content-Length.
                return Err(UploadError::Body);
            }
            return Ok(());
        }
        self.out.push_back(Bytes::from_static(b"0\r\n\r\n"));
        Ok(())
    }
}

/// An upstream response body. It owns its connection until both this body and the request
/// body are complete, then gives the connection back to the pool when it may be reused.
pub(crate) struct UpBody {
    conn: Option<Box<Conn>>,
    decoder: Decoder,
    upload: Option<Upload>,
    keep_alive: bool,
    pool: Arc<Pool>,
}

impl UpBody {
    /// Releases the connection at once when there is no body to read.
    fn released_if_done(mut self) -> UpBody {
        if matches!(self.decoder, Decoder::Done) {
            self.release();
        }
        self
    }

    /// The body is complete: the connection goes back to the pool if the request body was
    /// all sent, nothing more arrived, and the response allows it.
    fn release(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.keep_alive && self.upload.is_none() && conn.buf.is_empty() {
            self.pool.put(conn);
        }
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(up) = &mut self.upload {
            match up.poll_send(cx, &mut conn.io) {
                Poll::Ready(Ok(())) => self.upload = None,
                Poll::Ready(Err(_)) => {
                    // The answer goes on; the connection will not be reused.
                    self.upload = None;
                    self.keep_alive = false;
                }
                Poll::Pending => {}
            }
        }
        loop {
            let step = match &mut self.decoder {
                Decoder::Done => return Poll::Ready(None),
                Decoder::Length(left) => {
                    if conn.buf.is_empty() {
                        Step::Read
                    } else {
                        let n = conn
                            .buf
                            .len()
                            .min(usize::try_from(*left).unwrap_or(usize::MAX));
                        *left -= n as u64;
                        let data = conn.buf.split_to(n).freeze();
                        if *left == 0 {
                            self.decoder = Decoder::Done;
                        }
                        Step::Frame(Frame::data(data))
                    }
                }
                Decoder::Close => {
                    if conn.buf.is_empty() {
                        Step::Read
                    } else {
                        Step::Frame(Frame::data(conn.buf.split().freeze()))
                    }
                }
                Decoder::Chunked(state) => match state.decode(&mut conn.buf) {
                    Ok(chunked::Decoded::Data(data)) => Step::Frame(Frame::data(data)),
                    Ok(chunked::Decoded::Trailers(t)) => {
                        self.decoder = Decoder::Done;
                        Step::Frame(Frame::trailers(t))
                    }
                    Ok(chunked::Decoded::End) => {
                        self.decoder = Decoder::Done;
                        Step::End
                    }
                    Ok(chunked::Decoded::NeedMore) => Step::Read,
                    Err(e) => Step::Fail(e),
                },
            };
            match step {
                Step::Frame(frame) => return Poll::Ready(Some(Ok(frame))),
                Step::End => return Poll::Ready(None),
                Step::Fail(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Step::Read => match read_more(cx, conn) {
                    Poll::Ready(Ok(0)) => {
                        if matches!(self.decoder, Decoder::Close) {
                            self.decoder = Decoder::Done;
                            self.conn = None;
                            return Poll::Ready(None);
                        }
                        self.conn = None;
                        return Poll::Ready(Some(Err(Box::new(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "upstream closed the connection in the middle of the body",
                        )))));
                    }
                    Poll::Ready(Ok(_)) => {}
                    Poll::Ready(Err(e)) => {
                        self.conn = None;
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                    Poll::Pending => return Poll::Pending,
                },
            }
        }
    }
}

enum Step {
    Frame(Frame<Bytes>),
    End,
    Fail(io::Error),
    Read,
}

impl HttpBody for UpBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = this.poll_data(cx);
        if matches!(this.decoder, Decoder::Done) {
            this.release();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.decoder, Decoder::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder {
            Decoder::Done => SizeHint::with_exact(0),
            Decoder::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
