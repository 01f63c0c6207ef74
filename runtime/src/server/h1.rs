//! HTTP/1.1 on the proxy listener, one connection per task, the request handled in that
//! same task.
//!
//! The request head is parsed from the connection's read buffer (httparse) into a request
//! whose target and header values are slices of that buffer (no copy); the request body ([`ReqBody`]) reads from
//! the same buffer and socket as it is polled. The response head is written from one
//! buffer, with the first piece of the body when it is ready at once.
//!
//! Parsing is strict, as nginx's is: a malformed request line or header, an invalid,
//! repeated or listed `Content-Length`, a repeated `Transfer-Encoding`, `Transfer-Encoding`
//! on HTTP/1.0, both `Transfer-Encoding` and `Content-Length`, or more than one `Host` →
//! 400 and close; a transfer coding other than `chunked` alone → 501 and close; a head over
//! the limit or with more than 100 fields → 431 and close. `Expect: 100-continue` is
//! answered with `100 Continue` when the body is first read (never, if the answer comes
//! first). Responses carry `Date`; their
//! body is framed by `Content-Length` when its size is known, else chunked (HTTP/1.0
//! clients: until close). A connection is kept alive unless the client or the response
//! says otherwise, the request body was not read to its end, or the server is draining.

use std::{
    cell::RefCell,
    future::{poll_fn, Future},
    io,
    mem::MaybeUninit,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncRead, AsyncWriteExt},
    net::tcp::{OwnedReadHalf, OwnedWriteHalf},
    sync::watch,
};

use crate::{
    client::{
        chunked::{Chunked, Decoded},
        parse_decimal, trim,
    },
    response::push_field,
    timed_io::TimedIo,
    upstream_head::UpstreamHead,
    BoxError, Request, Response,
};

/// Most request header fields accepted (then 431).
const MAX_HEADERS: usize = 100;
/// Request header fields whose places are noted on the stack while parsing; more spill.
const INLINE_FIELDS: usize = 24;
/// Room made in the read buffer when less than `READ_MIN` is left.
const READ_SIZE: usize = 8 * 1024;
const READ_MIN: usize = 1024;
/// Response body pieces up to this size go out in the same write as the head or their
/// chunk framing.
const COPY_LIMIT: usize = 16 * 1024;
/// A connection's output buffer is kept for the next response up to this capacity.
const WBUF_KEEP: usize = 64 * 1024;
/// A connection's request keeps its header map's memory for the next request while the
/// map has room for at most this many fields.
const SPARE_FIELDS: usize = 96;

/// The HTTP/2 connection preface: a connection that starts with it speaks h2c.
pub(super) const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Limits of one connection.
pub(super) struct Limits {
    pub max_head: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub send_timeout: Duration,
}

/// The read side of a connection, shared by the head reader and the request body.
pub(super) struct ReadSide {
    half: OwnedReadHalf,
    buf: BytesMut,
    /// What is left of the current request's body.
    body: BodyState,
    /// `Expect: 100-continue` not answered yet: the body's first read answers it, unless
    /// the response has started.
    continue_pending: bool,
    /// The response head is being written: no `100 Continue` any more.
    responding: bool,
    /// A partial `100 Continue` went out: nothing more can be written.
    broken: bool,
    /// Longest wait for more of a request body (nginx's `client_body_timeout`).
    body_timeout: Duration,
    body_timer: Pin<Box<tokio::time::Sleep>>,
    body_timer_armed: bool,
}

type Shared = Arc<Mutex<ReadSide>>;

fn lock(shared: &Shared) -> MutexGuard<'_, ReadSide> {
    // Nothing panics while holding it that could leave it inconsistent.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReadSide {
    pub(super) fn new(half: OwnedReadHalf, buf: BytesMut, body_timeout: Duration) -> ReadSide {
        ReadSide {
            half,
            buf,
            body: BodyState::Done,
            continue_pending: false,
            responding: false,
            broken: false,
            body_timeout,
            body_timer: Box::pin(tokio::time::sleep(body_timeout)),
            body_timer_armed: false,
        }
    }

    /// Reads more of a request body; an error once `body_timeout` passes without a byte.
    fn poll_body_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        match self.poll_fill(cx) {
            Poll::Pending => {}
            ready => {
                self.body_timer_armed = false;
                return ready;
            }
        }
        if !self.body_timer_armed {
            let deadline = crate::clock::tokio_now() + self.body_timeout;
            self.body_timer.as_mut().reset(deadline);
            self.body_timer_armed = true;
        }
        match self.body_timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.body_timer_armed = false;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client sent no more of the request body in time",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_MIN {
            self.buf.reserve(READ_SIZE);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.half), cx, &mut self.buf)
    }

    /// The next piece of the body from what is buffered: `None` when more must be read.
    fn decode(&mut self) -> Option<Result<Option<Frame<Bytes>>, BoxError>> {
        match &mut self.body {
            BodyState::Done => Some(Ok(None)),
            BodyState::Length(_) if self.buf.is_empty() => None,
            BodyState::Length(left) => {
                let n = self
                    .buf
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                if *left == 0 {
                    self.body = BodyState::Done;
                }
                Some(Ok(Some(Frame::data(self.buf.split_to(n).freeze()))))
            }
            BodyState::Chunked(state) => match state.decode(&mut self.buf) {
                Ok(Decoded::Data(data)) => Some(Ok(Some(Frame::data(data)))),
                Ok(Decoded::Trailers(t)) => {
                    self.body = BodyState::Done;
                    Some(Ok(Some(Frame::trailers(t))))
                }
                Ok(Decoded::End) => {
                    self.body = BodyState::Done;
                    Some(Ok(None))
                }
                Ok(Decoded::NeedMore) => None,
                Err(e) => Some(Err(Box::new(e))),
            },
        }
    }

    /// Answers `Expect: 100-continue` before the body is first read. Nothing else is being
    /// written then, so the 25 bytes normally go at once. If the send buffer is full, the
    /// interim answer is left out (the client sends its body after its own wait); if only
    /// part of it went, the connection is done for (`false`).
    fn answer_continue(&mut self) -> bool {
        self.continue_pending = false;
        const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        match self.half.as_ref().try_write(CONTINUE) {
            Ok(n) if n == CONTINUE.len() => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => true,
            _ => {
                self.broken = true;
                false
            }
        }
    }

    /// After the response: skips what is left of the request body if it is already here
    /// (or arrives with one more read that does not wait). True if the body is behind us.
    fn skip_body(&mut self) -> bool {
        for round in 0..2 {
            loop {
                match self.decode() {
                    Some(Ok(None)) => return true,
                    Some(Ok(Some(_))) => {}
                    Some(Err(_)) => return false,
                    None => break,
                }
            }
            if round == 0 {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                if !matches!(self.poll_fill(&mut cx), Poll::Ready(Ok(n)) if n > 0) {
                    return false;
                }
            }
        }
        false
    }
}

/// What the connection needs to know about a parsed request head (the head itself is in
/// the connection's request).
struct Head {
    body: BodyState,
    keep_alive: bool,
    expect_continue: bool,
    /// The client accepts trailers (`TE: trailers`).
    trailers: bool,
}

#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(Chunked),
    Done,
}

/// Why a request head was refused: 400 or 431, and the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refused(pub u16);

const BAD: Refused = Refused(400);
const NOT_IMPLEMENTED: Refused = Refused(501);
const TOO_LARGE: Refused = Refused(431);

/// Parses one request head at the start of `buf` and removes it from there; `None` while it
/// is incomplete. The method, target, version and fields go into `out`, whose header map
/// must be empty (the connection's request, emptied after the previous one: its memory is
/// reused); `out` is left as it was while the head is incomplete or when it is refused.
fn parse_head(
    buf: &mut BytesMut,
    max_head: usize,
    out: &mut Request,
) -> Result<Option<Head>, Refused> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) if len <= max_head => len,
        Ok(httparse::Status::Complete(_)) => return Err(TOO_LARGE),
        Ok(httparse::Status::Partial) if buf.len() >= max_head => return Err(TOO_LARGE),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(TOO_LARGE),
        Err(_) => return Err(BAD),
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes()).map_err(|_| BAD)?;
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(BAD),
    };
    // Where each part lies in the head (its values then share the read buffer: see below).
    let base = buf.as_ptr() as usize;
    let at = |part: &[u8]| {
        let start = part.as_ptr() as usize - base;
        start..start + part.len()
    };
    let path = at(req.path.unwrap_or_default().as_bytes());
    // Name and value of each field, as (start, end, start, end): on the stack for the
    // usual few fields.
    let n = req.headers.len();
    let mut inline = [[0usize; 4]; INLINE_FIELDS];
    let mut spilled = Vec::new();
    let fields = if n <= INLINE_FIELDS {
        &mut inline[..n]
    } else {
        spilled.resize(n, [0usize; 4]);
        &mut spilled[..]
    };
    let mut length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    let mut close = false;
    let mut keep_alive = false;
    let mut hosts = 0;
    let mut expect_continue = false;
    let mut trailers = false;
    for (h, field) in req.headers.iter().zip(fields.iter_mut()) {
        let (name, value) = (at(h.name.as_bytes()), at(h.value));
        *field = [name.start, name.end, value.start, value.end];
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            // One field, one number (nginx refuses repeats and lists alike).
            if length.is_some() {
                return Err(BAD);
            }
            length = Some(parse_decimal(trim(h.value)).ok_or(BAD)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only `chunked` alone is supported: other codings are 501, as in nginx.
            if chunked.is_some() {
                return Err(BAD);
            }
            chunked = Some(trim(h.value).eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in h.value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case(b"te") {
            trailers |= h
                .value
                .split(|&b| b == b',')
                .any(|t| trim(t).eq_ignore_ascii_case(b"trailers"));
        }
    }
    // The head leaves the read buffer without a copy; the URI and the header values are
    // slices of it.
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path)).map_err(|_| BAD)?;
    if hosts > 1 {
        return Err(BAD);
    }
    let body = match (chunked, length) {
        (Some(_), _) if version == Version::HTTP_10 => return Err(BAD),
        (Some(_), Some(_)) => return Err(BAD),
        (Some(true), None) => BodyState::Chunked(Chunked::default()),
        (Some(false), None) => return Err(NOT_IMPLEMENTED),
        (None, Some(n)) if n > 0 => BodyState::Length(n),
        (None, _) => BodyState::Done,
    };
    let keep_alive = !close && (version == Version::HTTP_11 || keep_alive);
    // With room for what plugins and the gateway add.
    let headers = out.headers_mut();
    debug_assert!(
        headers.is_empty(),
        "the connection's request is emptied after each use"
    );
    headers.reserve(fields.len() + 8);
    for &[name_start, name_end, value_start, value_end] in fields.iter() {
        let name = HeaderName::from_bytes(&head[name_start..name_end]).ok();
        let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end)).ok();
        let (Some(name), Some(value)) = (name, value) else {
            // Refused: nothing of this head stays in the request.
            headers.clear();
            return Err(BAD);
        };
        headers.append(name, value);
    }
    *out.method_mut() = method;
    *out.uri_mut() = uri;
    *out.version_mut() = version;
    Ok(Some(Head {
        body,
        keep_alive,
        expect_continue,
        trailers,
    }))
}

/// A request body, read from the connection as it is polled.
struct ReqBody {
    shared: Shared,
}

impl HttpBody for ReqBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut side = lock(&self.shared);
        if side.continue_pending && !side.responding && !side.answer_continue() {
            return Poll::Ready(Some(Err("could not send 100 Continue".into())));
        }
        loop {
            if let Some(got) = side.decode() {
                return Poll::Ready(got.transpose());
            }
            match side.poll_body_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Some(Err(Box::new(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the connection before the end of the body",
                    )))))
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(lock(&self.shared).body, BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match lock(&self.shared).body {
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Length(n) => SizeHint::with_exact(n),
            BodyState::Chunked(_) => SizeHint::default(),
        }
    }
}

/// Why the wait for a request head ended without one.
pub(super) enum NoHead {
    /// The client closed, went idle, was too slow, or the server is draining: close.
    Close,
    /// The head was refused: answer with this status, then close.
    Refused(Refused),
}

/// What the server's drain watch said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// The server drains.
    Draining,
    /// The server is gone (the watch's sender was dropped).
    Gone,
}

/// Resolves once the server drains or is gone.
async fn drained(mut drain: watch::Receiver<bool>) -> Drained {
    match drain.wait_for(|draining| *draining).await {
        Ok(_) => Drained::Draining,
        Err(_) => Drained::Gone,
    }
}

/// What the wait for a request head keeps from one request to the next: the drain signal
/// and the head timer are made once per connection (a fresh `changed()` future or `Sleep`
/// per request would register and unregister a waiter each time).
struct Waits<'a, D> {
    drained: Pin<&'a mut D>,
    /// What `drained` resolved to, once it has.
    seen: Option<Drained>,
    timer: Pin<&'a mut tokio::time::Sleep>,
}

/// Waits for the next request head: while nothing has arrived, at most `idle_timeout` and
/// only until the server drains; the whole head within `header_read_timeout`.
async fn next_head<D: Future<Output = Drained>>(
    shared: &Shared,
    limits: &Limits,
    waits: &mut Waits<'_, D>,
    req: &mut Request,
) -> Result<Head, NoHead> {
    let start = crate::clock::tokio_now();
    let head_deadline = start + limits.header_read_timeout;
    let idle_deadline = start + limits.idle_timeout.min(limits.header_read_timeout);
    let mut read = std::pin::pin!(poll_fn(|cx| {
        let mut side = lock(shared);
        loop {
            if !side.buf.is_empty() {
                match parse_head(&mut side.buf, limits.max_head, req) {
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(r) => return Poll::Ready(Err(NoHead::Refused(r))),
                }
            }
            match side.poll_fill(cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Err(NoHead::Close)),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    }));
    // The timer is moved only when it would go off too late. One that goes off too early
    // (set for an earlier wait) is moved on then: most waits end long before it, so it is
    // seldom moved at all.
    let timer = &mut waits.timer;
    if timer.deadline() > idle_deadline {
        timer.as_mut().reset(idle_deadline);
    }
    let mut idle = true;
    loop {
        tokio::select! {
            biased;
            got = &mut read => return got,
            () = timer.as_mut() => {
                let now = crate::clock::tokio_now();
                let due = if idle { idle_deadline } else { head_deadline };
                if now < due {
                    timer.as_mut().reset(due);
                    continue;
                }
                if idle && lock(shared).buf.is_empty() {
                    return Err(NoHead::Close);
                }
                if now >= head_deadline {
                    return Err(NoHead::Close);
                }
                idle = false;
                timer.as_mut().reset(head_deadline);
            }
            signal = waits.drained.as_mut(), if waits.seen.is_none() => {
                waits.seen = Some(signal);
                // Draining (or the server is gone): an idle connection closes now; a
                // request on its way is still served.
                if signal == Drained::Gone || lock(shared).buf.is_empty() {
                    return Err(NoHead::Close);
                }
            }
            // The server is gone: as when it went.
            () = std::future::ready(()), if waits.seen == Some(Drained::Gone) => {
                return Err(NoHead::Close);
            }
        }
    }
}

/// What answers the requests of an HTTP/1.1 connection.
pub(super) trait Handler {
    /// Lives until the response is written (the in-flight count).
    type InFlight: Send;

    /// Answers `req`; the upstream's header lines of a proxied response go to `fields`
    /// ([`UpstreamHead`]), which is empty when called. Both are lent: they are the
    /// connection's, and the next request's head is parsed into `req`.
    fn handle<'a>(
        &'a mut self,
        req: &'a mut Request,
        fields: &'a mut Option<UpstreamHead>,
    ) -> impl Future<Output = (Response, Self::InFlight)> + Send + 'a;

    /// Takes back the upstream's lines of a response once they were written (their memory
    /// may serve a later response).
    fn written(&mut self, fields: UpstreamHead) {
        drop(fields);
    }
}

/// Serves HTTP/1.1 requests on a connection until it closes. `buf` holds what was already
/// read from it.
pub(super) async fn serve<H: Handler>(
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    buf: BytesMut,
    limits: &Limits,
    drain: &mut watch::Receiver<bool>,
    mut handler: H,
) {
    let shared: Shared = Arc::new(Mutex::new(ReadSide::new(
        read,
        buf,
        limits.header_read_timeout,
    )));
    let mut out = TimedIo::new(write, None, limits.send_timeout);
    let mut wbuf = Vec::new();
    // One request per connection, filled by each head in turn: its parts are not moved
    // from the parser through the handler and back, and its header map keeps its memory.
    let mut req = Request::new(crate::response::empty());
    let mut waits = Waits {
        drained: std::pin::pin!(drained(drain.clone())),
        seen: None,
        timer: std::pin::pin!(tokio::time::sleep(limits.idle_timeout)),
    };
    loop {
        if *drain.borrow() && lock(&shared).buf.is_empty() {
            return;
        }
        let head = match next_head(&shared, limits, &mut waits, &mut req).await {
            Ok(head) => head,
            Err(NoHead::Close) => return,
            Err(NoHead::Refused(Refused(status))) => {
                if out.write_all(&refusal(status)).await.is_ok() {
                    linger(&shared, &mut out).await;
                }
                return;
            }
        };
        let is_head = req.method() == Method::HEAD;
        let version = req.version();
        let has_body = !matches!(head.body, BodyState::Done);
        {
            let mut side = lock(&shared);
            side.body = head.body;
            side.continue_pending = has_body && head.expect_continue && version == Version::HTTP_11;
            side.responding = false;
        }
        if has_body {
            *req.body_mut() = ReqBody {
                shared: shared.clone(),
            }
            .boxed();
        }
        let mut fields = None;
        let (resp, in_flight) = handler.handle(&mut req, &mut fields).await;
        reset_request(&mut req);
        {
            let mut side = lock(&shared);
            if side.broken {
                return;
            }
            side.responding = true;
        }
        let reply = Reply {
            is_head,
            version,
            trailers: head.trailers,
            keep_alive: head.keep_alive && !*drain.borrow(),
        };
        let written = write_response(&mut out, &mut wbuf, resp, fields.as_ref(), reply).await;
        if let Some(fields) = fields {
            handler.written(fields);
        }
        if wbuf.capacity() > WBUF_KEEP {
            wbuf = Vec::new();
        }
        drop(in_flight);
        let Ok(keep_alive) = written else {
            return;
        };
        // The next request can be read once this one's body is behind us.
        let body_behind = lock(&shared).skip_body();
        if keep_alive && body_behind {
            continue;
        }
        if !body_behind {
            linger(&shared, &mut out).await;
        }
        return;
    }
}

/// Empties the connection's request once it has been answered: its target and header
/// values are slices of the read buffer, which can then reuse its memory; its body (a
/// plugin may have replaced it) goes. A header map that grew for an unusually large request
/// is let go.
fn reset_request(req: &mut Request) {
    req.headers_mut().clear();
    if req.headers().capacity() > SPARE_FIELDS {
        *req.headers_mut() = http::HeaderMap::new();
    }
    req.extensions_mut().clear();
    *req.uri_mut() = Uri::default();
    *req.body_mut() = crate::response::empty();
}

/// Closes a connection whose client may still be sending (a refused head, an unread
/// body): the write side first, then what arrives is read and dropped for up to
/// `LINGER` — closing with unread input would reset the connection and could destroy the
/// answer before the client read it (nginx's lingering close).
async fn linger(shared: &Shared, out: &mut TimedIo<OwnedWriteHalf>) {
    const LINGER: Duration = Duration::from_secs(5);
    if out.shutdown().await.is_err() {
        return;
    }
    let drained = poll_fn(|cx| {
        let mut side = lock(shared);
        loop {
            side.buf.clear();
            match side.poll_fill(cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    let _ = tokio::time::timeout(LINGER, drained).await;
}

/// What the response depends on from its request.
#[derive(Clone, Copy)]
struct Reply {
    is_head: bool,
    version: Version,
    trailers: bool,
    keep_alive: bool,
}

/// A bare error answer to a head that could not be read.
fn refusal(status: u16) -> Vec<u8> {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"HTTP/1.1 ");
    crate::response::push_decimal(&mut out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\ndate: ");
    push_date(&mut out);
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// How a response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body is sent (HEAD, 1xx, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// HTTP/1.0 client, size unknown: the body ends with the connection.
    Close,
}

/// Writes `resp`, with the upstream's header lines `fields` after its own headers (those
/// replace the lines of the same name); `Ok(keep_alive)` once it is all sent. `head` is the
/// connection's output buffer, reused from one response to the next.
async fn write_response(
    out: &mut TimedIo<OwnedWriteHalf>,
    head: &mut Vec<u8>,
    resp: Response,
    fields: Option<&UpstreamHead>,
    reply: Reply,
) -> io::Result<bool> {
    let (parts, mut body) = resp.into_parts();
    let status = parts.status;
    let given_length = match parts.headers.get(header::CONTENT_LENGTH) {
        Some(v) => parse_decimal(v.as_bytes()),
        None => fields.and_then(UpstreamHead::content_length),
    };
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::None
    } else if let Some(n) = given_length {
        Framing::Length(n)
    } else if body.is_end_stream() {
        Framing::Length(0)
    } else if let Some(n) = body.size_hint().exact() {
        Framing::Length(n)
    } else if reply.version == Version::HTTP_11 {
        Framing::Chunked
    } else {
        Framing::Close
    };
    let says_close = parts.headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| trim(t).eq_ignore_ascii_case(b"close"))
    });
    let keep_alive = reply.keep_alive && framing != Framing::Close && !says_close;

    head.clear();
    head.reserve(
        256 + fields.map_or(0, UpstreamHead::len)
            + parts
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum::<usize>(),
    );
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let mut has_date = false;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        has_date |= name == header::DATE;
        push_field(head, name.as_str().as_bytes(), value.as_bytes());
    }
    if let Some(fields) = fields {
        has_date |= fields.has_date();
        fields.write(head, &parts.headers);
    }
    if !has_date {
        head.extend_from_slice(b"date: ");
        push_date(head);
        head.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) => {
            head.extend_from_slice(b"content-length: ");
            crate::response::push_decimal(head, n);
            head.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::None | Framing::Close => {
            // HEAD: the length the body would have.
            if let (Some(n), false) = (given_length, no_body) {
                head.extend_from_slice(b"content-length: ");
                crate::response::push_decimal(head, n);
                head.extend_from_slice(b"\r\n");
            }
        }
    }
    if !keep_alive && !says_close {
        head.extend_from_slice(b"connection: close\r\n");
    } else if keep_alive && reply.version == Version::HTTP_10 {
        head.extend_from_slice(b"connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");

    if reply.is_head || framing == Framing::None {
        out.write_all(head).await?;
        return Ok(keep_alive);
    }
    let mut left = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };
    let chunked = framing == Framing::Chunked;
    // The first piece of the body goes with the head when it is there already.
    let first = poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
        Poll::Ready(frame) => Poll::Ready(Some(frame)),
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    let mut pending = match first {
        Some(frame) => Some(frame),
        None => {
            out.write_all(head).await?;
            head.clear();
            None
        }
    };
    loop {
        let frame = match pending.take() {
            Some(frame) => frame,
            None => body.frame().await,
        };
        match frame {
            None => {
                if left.is_some_and(|n| n > 0) {
                    return Err(io::Error::other("response body shorter than its length"));
                }
                if chunked {
                    head.extend_from_slice(b"0\r\n\r\n");
                }
                if !head.is_empty() {
                    out.write_all(head).await?;
                }
                return Ok(keep_alive);
            }
            Some(Err(e)) => return Err(io::Error::other(e)),
            Some(Ok(frame)) => {
                let frame = match frame.into_data() {
                    Ok(data) => data,
                    Err(frame) => {
                        if let (Ok(t), true) = (frame.into_trailers(), chunked) {
                            head.extend_from_slice(b"0\r\n");
                            if reply.trailers {
                                for (name, value) in &t {
                                    push_field(head, name.as_str().as_bytes(), value.as_bytes());
                                }
                            }
                            head.extend_from_slice(b"\r\n");
                            out.write_all(head).await?;
                            return Ok(keep_alive);
                        }
                        continue;
                    }
                };
                if frame.is_empty() {
                    continue;
                }
                if let Some(n) = &mut left {
                    let len = frame.len() as u64;
                    if len > *n {
                        return Err(io::Error::other("response body longer than its length"));
                    }
                    *n -= len;
                }
                if chunked {
                    crate::response::push_chunk_size(head, frame.len());
                }
                if frame.len() <= COPY_LIMIT {
                    head.extend_from_slice(&frame);
                    if chunked {
                        head.extend_from_slice(b"\r\n");
                    }
                    out.write_all(head).await?;
                } else {
                    out.write_all(head).await?;
                    out.write_all(&frame).await?;
                    if chunked {
                        out.write_all(b"\r\n").await?;
                    }
                }
                head.clear();
            }
        }
    }
}

thread_local! {
    /// The `Date` value of the current second.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Appends the current time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), formatted
/// once per second per thread.
fn push_date(out: &mut Vec<u8>) {
    let now = crate::clock::unix_time().as_secs();
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            *cached = (now, imf_fixdate(now));
        }
        out.extend_from_slice(&cached.1);
    });
}

fn imf_fixdate(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = [0u8; 29];
    let digits = |n: i64, width: usize, dst: &mut [u8]| {
        let mut n = n.rem_euclid(10_i64.pow(width as u32));
        for i in (0..width).rev() {
            dst[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    out[3..5].copy_from_slice(b", ");
    digits(day, 2, &mut out[5..7]);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    digits(year, 4, &mut out[12..16]);
    out[16] = b' ';
    digits((rem / 3600) as i64, 2, &mut out[17..19]);
    out[19] = b':';
    digits((rem / 60 % 60) as i64, 2, &mut out[20..22]);
    out[22] = b':';
    digits((rem % 60) as i64, 2, &mut out[23..25]);
    out[25..29].copy_from_slice(b" GMT");
    out
}

/// Reads the first bytes of a connection, enough to tell HTTP/2 prior knowledge from
/// HTTP/1: `Some(true)` for h2c, `Some(false)` for HTTP/1, `None` if the client closed,
/// stayed idle past `idle`, or the server drains first.
pub(super) async fn sniff<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut BytesMut,
    idle: Duration,
    drain: &mut watch::Receiver<bool>,
) -> Option<bool> {
    use tokio::io::AsyncReadExt;
    let deadline = crate::clock::tokio_now() + idle;
    loop {
        let n = H2_PREFACE.len().min(buf.len());
        if buf[..n] != H2_PREFACE[..n] {
            return Some(false);
        }
        if n == H2_PREFACE.len() {
            return Some(true);
        }
        buf.reserve(READ_SIZE);
        tokio::select! {
            got = read.read_buf(buf) => match got {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            },
            () = tokio::time::sleep_until(deadline) => return None,
            _ = drain.changed(), if !*drain.borrow() => if buf.is_empty() { return None },
        }
    }
}

#[cfg(test)]
mod tests;
