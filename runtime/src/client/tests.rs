use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use super::{
    chunked::{Chunked, Decoded},
    encode_head, parse_head, request_framing, send, Conn, Decoder, Framing, Head, Outgoing,
    SendError, HEAD_LIMIT,
};
use crate::{
    pool::{Pool, PoolOptions},
    timed_io::TimedIo,
    Body,
};

fn full(data: &'static [u8]) -> Body {
    http_body_util::Full::new(Bytes::from_static(data))
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> Body {
    crate::response::empty()
}

/// A body of `parts` whose size is not known up front.
fn streamed(parts: &[&'static [u8]]) -> Body {
    Frames(
        parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p))))
            .collect(),
    )
    .boxed()
}

/// A body that yields these frames (or errors), its size unknown.
struct Frames(std::collections::VecDeque<Result<http_body::Frame<Bytes>, crate::BoxError>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, crate::BoxError>>> {
        std::task::Poll::Ready(self.get_mut().0.pop_front())
    }
}

fn parsed(bytes: &[u8], method: Method) -> Result<Option<Head>, SendError> {
    let mut buf = BytesMut::from(bytes);
    parse_head(&mut buf, &method, &mut Vec::new())
}

/// The head's fields as the map plugins see.
fn headers(p: &mut super::Parsed) -> HeaderMap {
    let mut map = HeaderMap::new();
    std::mem::take(&mut p.head).into_map(&mut map);
    map
}

fn final_head(bytes: &[u8], method: Method) -> super::Parsed {
    match parsed(bytes, method) {
        Ok(Some(Head::Final(p))) => p,
        other => panic!("not a final head: {:?}", other.map(|h| h.is_some())),
    }
}

#[test]
fn response_heads() {
    let mut p = final_head(
        b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello",
        Method::GET,
    );
    assert_eq!(p.status, StatusCode::CREATED);
    assert_eq!(p.head.content_length(), Some(5));
    let map = headers(&mut p);
    let xa: Vec<_> = map.get_all("x-a").iter().collect();
    assert_eq!(xa, ["1", "2"]);
    assert_eq!(map[header::CONTENT_LENGTH], "5");
    assert!(matches!(p.body, Decoder::Length(5)));
    assert!(p.keep_alive);

    // HEAD, 204 and 304 have no body whatever the headers say
    let p = final_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        Method::HEAD,
    );
    assert!(matches!(p.body, Decoder::Done));
    let p = final_head(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
        Method::GET,
    );
    assert!(matches!(p.body, Decoder::Done));

    // chunked wins over Content-Length, and the connection is not reused
    let mut p = final_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        Method::GET,
    );
    assert!(matches!(p.body, Decoder::Chunked(_)));
    assert!(!p.keep_alive);
    assert!(
        !headers(&mut p).contains_key(header::CONTENT_LENGTH),
        "not passed on"
    );
    // a coding after chunked: read until close
    let p = final_head(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        Method::GET,
    );
    assert!(matches!(p.body, Decoder::Close));
    // no framing at all: until close
    let p = final_head(b"HTTP/1.1 200 OK\r\n\r\n", Method::GET);
    assert!(matches!(p.body, Decoder::Close));
    assert!(!p.keep_alive);

    // keep-alive by version and Connection
    let p = final_head(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        Method::GET,
    );
    assert!(!p.keep_alive);
    let p = final_head(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Method::GET);
    assert!(!p.keep_alive);
    let p = final_head(
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
        Method::GET,
    );
    assert!(p.keep_alive);

    // equal repeated lengths are one length; differing or invalid ones are invalid
    let p = final_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\n",
        Method::GET,
    );
    assert!(matches!(p.body, Decoder::Length(3)));
    for bad in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    ] {
        assert!(
            matches!(parsed(bad, Method::GET), Err(SendError::Invalid)),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_head_over_the_limit_is_invalid_even_when_complete() {
    let mut head = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', super::HEAD_LIMIT));
    head.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
    assert!(matches!(
        parsed(&head, Method::GET),
        Err(SendError::Invalid)
    ));
}

#[test]
fn fields_are_passed_on_as_lines_in_order() {
    let p = final_head(
        b"HTTP/1.1 200 OK\r\nA: 1\r\nB:2\r\nContent-Length: 0\r\nC: 3\r\nD:   4\t \r\n\
          E: 5\nF: 6\r\nG: \r\nDate: d\r\nH: 7\r\n\r\n",
        Method::GET,
    );
    let mut out = Vec::new();
    p.head.write(&mut out, &HeaderMap::new());
    assert_eq!(
        String::from_utf8(out).expect("text"),
        "A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: \r\nDate: d\r\nH: 7\r\n"
    );
    assert!(p.head.has_date());
    assert_eq!(p.head.content_length(), Some(0));
}

#[test]
fn hop_by_hop_response_headers_stay_behind() {
    let mut p = final_head(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Up-Secret\r\nX-Up-Secret: 1\r\n\
          Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTE: x\r\n\
          Transfer-Encoding: chunked\r\nX-Kept: yes\r\nVia: 1.1 up\r\n\r\n",
        Method::GET,
    );
    let map = headers(&mut p);
    let mut names: Vec<&str> = map.keys().map(|n| n.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["via", "x-kept"]);
    assert!(p.keep_alive);
    assert!(matches!(p.body, Decoder::Chunked(_)));
}

#[test]
fn interim_heads_are_skipped_and_partial_heads_wait() {
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..],
    );
    assert!(matches!(
        parse_head(&mut buf, &Method::GET, &mut Vec::new()),
        Ok(Some(Head::Interim))
    ));
    assert!(matches!(
        parse_head(&mut buf, &Method::GET, &mut Vec::new()),
        Ok(Some(Head::Interim))
    ));
    assert!(matches!(
        parse_head(&mut buf, &Method::GET, &mut Vec::new()),
        Ok(Some(Head::Final(_)))
    ));
    assert_eq!(&buf[..], b"ok");

    let partial = b"HTTP/1.1 200 OK\r\nContent-Len";
    let mut buf = BytesMut::from(&partial[..]);
    assert!(matches!(
        parse_head(&mut buf, &Method::GET, &mut Vec::new()),
        Ok(None)
    ));
    assert_eq!(&buf[..], partial, "a partial head stays in the buffer");
}

fn decode_all(chunks: &[&[u8]]) -> Result<(Vec<u8>, Option<HeaderMap>), std::io::Error> {
    let mut state = Chunked::default();
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut pieces = chunks.iter();
    loop {
        match state.decode(&mut buf)? {
            Decoded::Data(d) => body.extend_from_slice(&d),
            Decoded::Trailers(t) => return Ok((body, Some(t))),
            Decoded::End => return Ok((body, None)),
            Decoded::NeedMore => match pieces.next() {
                Some(p) => buf.extend_from_slice(p),
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "incomplete",
                    ))
                }
            },
        }
    }
}

#[test]
fn chunked_bodies() {
    let whole = b"5\r\nhello\r\n1;name=value\r\n \r\nA \r\n0123456789\r\n0\r\n\r\n";
    let (body, trailers) = decode_all(&[whole]).expect("decodes");
    assert_eq!(body, b"hello 0123456789");
    assert!(trailers.is_none());
    // the same, one byte at a time
    let bytes: Vec<&[u8]> = whole.chunks(1).collect();
    assert_eq!(decode_all(&bytes).expect("decodes").0, b"hello 0123456789");

    let (body, trailers) =
        decode_all(&[b"3\r\nabc\r\n0\r\nX-Sum: 42\r\nX-B: b\r\n\r\n"]).expect("decodes");
    assert_eq!(body, b"abc");
    let trailers = trailers.expect("trailers");
    assert_eq!(
        trailers.get("x-sum").map(HeaderValue::as_bytes),
        Some(&b"42"[..])
    );

    for bad in [
        &b"5\r\nhello0\r\n\r\n"[..],
        b"g\r\n",
        b"\r\n",
        b"5\nhello\r\n",
        b"5 x\r\n",
        b"11111111111111111\r\n",
        b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n",
    ] {
        assert!(
            decode_all(&[bad]).is_err_and(|e| e.kind() == std::io::ErrorKind::InvalidData),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = vec![b'1'; 5000];
    assert!(decode_all(&[&long]).is_err());
}

#[test]
fn request_framing_and_head() {
    let h = HeaderMap::new();
    assert_eq!(request_framing(&h, &empty()), Some(Framing::Empty));
    assert_eq!(request_framing(&h, &full(b"abc")), Some(Framing::Length(3)));
    assert_eq!(
        request_framing(&h, &streamed(&[b"a"])),
        Some(Framing::Chunked)
    );

    // the request's own Content-Length rules (it is checked against the body as it goes)
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
    assert_eq!(
        request_framing(&h, &streamed(&[b"a"])),
        Some(Framing::Length(10))
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    assert_eq!(request_framing(&h, &empty()), Some(Framing::Empty));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("ten"));
    assert_eq!(request_framing(&h, &empty()), None);

    let head = encode_head(
        &Method::PUT,
        "/p?q=1",
        &HeaderValue::from_static("up.example:8080"),
        b"x-a: 1\r\nx-a: 2\r\n\r\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&head),
        "PUT /p?q=1 HTTP/1.1\r\nhost: up.example:8080\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
    );
}

/// A connected pair: the client side as a `Conn`, the upstream side raw.
/// A body-less GET of `head` on `conn`; the response's lines are not kept.
async fn send_get(
    conn: Box<Conn>,
    head: &[u8],
    pool: &std::sync::Arc<Pool>,
) -> Result<(StatusCode, super::UpBody), SendError> {
    let request = Outgoing {
        head,
        framing: Framing::Empty,
        method: &Method::GET,
    };
    send(conn, request, &mut None, pool, &mut None, &mut Vec::new()).await
}

async fn pair(read_timeout: Duration) -> (Box<Conn>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    let io = TimedIo::new(client, Some(read_timeout), Duration::from_secs(5));
    (Conn::new(io), server)
}

/// Reads from `s` until `end` has been seen; returns everything read.
async fn read_until(s: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(end.len()).any(|w| w == end) {
        let n = s.read(&mut buf).await.expect("read");
        assert!(
            n > 0,
            "closed early; got {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    got
}

async fn collect(body: super::UpBody) -> Result<(Vec<u8>, Option<HeaderMap>), crate::BoxError> {
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok((collected.to_bytes().to_vec(), trailers))
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(20), f)
}

#[tokio::test]
async fn exchanges_on_one_kept_alive_connection() {
    within(async {
        let pool = std::sync::Arc::new(Pool::new(PoolOptions::default()));
        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        let upstream = tokio::spawn(async move {
            let req = read_until(&mut up, b"\r\n\r\n").await;
            assert!(req.starts_with(b"GET /a HTTP/1.1\r\nhost: h\r\n"));
            up.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
                .await
                .expect("write");
            tokio::time::sleep(Duration::from_millis(20)).await;
            up.write_all(b"lo").await.expect("write");
            // the second request: a chunked POST, answered chunked with trailers
            let req = read_until(&mut up, b"0\r\n\r\n").await;
            let text = String::from_utf8_lossy(&req).into_owned();
            assert!(text.starts_with("POST /b HTTP/1.1\r\n"), "{text}");
            assert!(text.ends_with("\r\n\r\n1\r\nx\r\n2\r\nyz\r\n0\r\n\r\n"), "{text}");
            up.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")
                .await
                .expect("write");
            up
        });

        let host = HeaderValue::from_static("h");
        let head = encode_head(&Method::GET, "/a", &host, b"\r\n");
        let mut body = None;
        let mut fields = None;
        // The lines go into the memory of an earlier response's, when given.
        let mut buffer = Vec::with_capacity(4096);
        let memory = buffer.as_ptr();
        let (status, resp) = send(conn, Outgoing { head: &head, framing: Framing::Empty, method: &Method::GET }, &mut body, &pool, &mut fields, &mut buffer)
            .await
            .expect("response");
        assert_eq!(status, 200);
        let lines = fields.take().expect("the response's lines are handed over");
        assert!(buffer.is_empty());
        let reused = lines.into_buffer();
        assert_eq!(reused.as_ptr(), memory);
        assert_eq!(collect(resp).await.expect("body").0, b"hello");
        let conn = pool.take().expect("back in the pool once read");

        let streamed_body = streamed(&[b"x", b"yz"]);
        let framing = request_framing(&HeaderMap::new(), &streamed_body).expect("framing");
        let head = encode_head(
            &Method::POST,
            "/b",
            &host,
            b"transfer-encoding: chunked\r\n\r\n",
        );
        let mut body = Some(streamed_body);
        let (_, resp) = send(conn, Outgoing { head: &head, framing, method: &Method::POST }, &mut body, &pool, &mut fields, &mut Vec::new())
            .await
            .expect("response");
        let (data, trailers) = collect(resp).await.expect("body");
        assert_eq!(data, b"abc");
        assert_eq!(
            trailers.and_then(|t| t.get("x-t").cloned()),
            Some(HeaderValue::from_static("1"))
        );
        assert!(pool.take().is_some());
        drop(upstream.await.expect("upstream"));
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn an_idle_connection_closed_by_the_upstream_is_not_reused() {
    within(async {
        let pool = Pool::new(PoolOptions::default());
        let (conn, up) = pair(Duration::from_secs(5)).await;
        assert!(conn.idle_usable());
        pool.put(conn);
        drop(up);
        // the reactor sees the close on its next turn
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.take().is_none());

        // data sent on an idle connection makes it unusable too
        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        up.write_all(b"HTTP/1.1 200 OK\r\n").await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!conn.idle_usable());
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn a_connection_closed_before_any_answer() {
    within(async {
        let pool = std::sync::Arc::new(Pool::new(PoolOptions::default()));
        let head = encode_head(&Method::GET, "/", &HeaderValue::from_static("h"), b"\r\n");
        // on a new connection that is an invalid response
        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        let closer = tokio::spawn(async move {
            read_until(&mut up, b"\r\n\r\n").await;
        });
        let got = send_get(conn, &head, &pool).await;
        closer.await.expect("closer");
        assert!(matches!(got, Err(SendError::Invalid)), "{:?}", got.err());

        // on a reused one, the upstream closed it as the request went out
        let (mut conn, mut up) = pair(Duration::from_secs(5)).await;
        conn.reused = true;
        let closer = tokio::spawn(async move {
            read_until(&mut up, b"\r\n\r\n").await;
        });
        let got = send_get(conn, &head, &pool).await;
        closer.await.expect("closer");
        assert!(matches!(got, Err(SendError::Closed)), "{:?}", got.err());

        // half a head, then close: invalid
        let (mut conn, mut up) = pair(Duration::from_secs(5)).await;
        conn.reused = true;
        let closer = tokio::spawn(async move {
            read_until(&mut up, b"\r\n\r\n").await;
            up.write_all(b"HTTP/1.1 200").await.expect("write");
        });
        let got = send_get(conn, &head, &pool).await;
        closer.await.expect("closer");
        assert!(matches!(got, Err(SendError::Invalid)), "{:?}", got.err());
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn read_timeout_and_oversized_heads() {
    within(async {
        let pool = std::sync::Arc::new(Pool::new(PoolOptions::default()));
        let head = encode_head(&Method::GET, "/", &HeaderValue::from_static("h"), b"\r\n");
        let (conn, _up) = pair(Duration::from_millis(100)).await;
        let got = send_get(conn, &head, &pool).await;
        assert!(matches!(got, Err(SendError::Timeout)), "{:?}", got.err());

        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        let writer = tokio::spawn(async move {
            read_until(&mut up, b"\r\n\r\n").await;
            let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
            while big.len() <= HEAD_LIMIT {
                big.extend_from_slice(b"x-filler: 0123456789012345678901234567890123456789\r\n");
            }
            let _ = up.write_all(&big).await;
            up
        });
        let got = send_get(conn, &head, &pool).await;
        assert!(matches!(got, Err(SendError::Invalid)), "{:?}", got.err());
        drop(writer.await.expect("writer"));
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn an_early_answer_while_the_body_is_still_sent() {
    within(async {
        let pool = std::sync::Arc::new(Pool::new(PoolOptions::default()));
        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        // answers on the head, then echoes the body as the response body
        let upstream = tokio::spawn(async move {
            read_until(&mut up, b"\r\n\r\n").await;
            up.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n")
                .await
                .expect("write");
            let mut buf = [0u8; 6];
            up.read_exact(&mut buf).await.expect("body");
            up.write_all(&buf).await.expect("echo");
            up
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        let body: Body = ChannelBody { rx, left: 6 }.boxed();
        let head = encode_head(
            &Method::POST,
            "/",
            &HeaderValue::from_static("h"),
            b"content-length: 6\r\n\r\n",
        );
        let mut body = Some(body);
        let (status, resp) = send(
            conn,
            Outgoing {
                head: &head,
                framing: Framing::Length(6),
                method: &Method::POST,
            },
            &mut body,
            &pool,
            &mut None,
            &mut Vec::new(),
        )
        .await
        .expect("the answer comes before the body was sent");
        assert_eq!(status, 200);
        let feeder = tokio::spawn(async move {
            tx.send(Bytes::from_static(b"abc")).await.expect("send");
            tx.send(Bytes::from_static(b"def")).await.expect("send");
        });
        assert_eq!(collect(resp).await.expect("body").0, b"abcdef");
        feeder.await.expect("feeder");
        assert!(pool.take().is_some(), "both messages complete: reused");
        drop(upstream.await.expect("upstream"));
    })
    .await
    .expect("in time");
}

/// A request body fed by a channel, `left` bytes long.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    left: usize,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, crate::BoxError>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return std::task::Poll::Ready(None);
        }
        this.rx.poll_recv(cx).map(|d| {
            d.map(|d| {
                this.left = this.left.saturating_sub(d.len());
                Ok(http_body::Frame::data(d))
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}

#[tokio::test]
async fn a_failing_request_body_is_an_invalid_exchange() {
    within(async {
        let pool = std::sync::Arc::new(Pool::new(PoolOptions::default()));
        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        let upstream = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = up.read(&mut buf).await;
            up
        });
        let failing: Body = Frames(
            [
                Ok(http_body::Frame::data(Bytes::from_static(b"ab"))),
                Err("client went away".into()),
            ]
            .into(),
        )
        .boxed();
        let head = encode_head(&Method::POST, "/", &HeaderValue::from_static("h"), b"\r\n");
        let mut body = Some(failing);
        let got = send(
            conn,
            Outgoing {
                head: &head,
                framing: Framing::Chunked,
                method: &Method::POST,
            },
            &mut body,
            &pool,
            &mut None,
            &mut Vec::new(),
        )
        .await;
        assert!(matches!(got, Err(SendError::Invalid)), "{:?}", got.err());

        // a body longer than its Content-Length is refused the same way
        let (conn, _up2) = pair(Duration::from_secs(5)).await;
        let mut body = Some(full(b"abcdef"));
        let got = send(
            conn,
            Outgoing {
                head: &head,
                framing: Framing::Length(3),
                method: &Method::POST,
            },
            &mut body,
            &pool,
            &mut None,
            &mut Vec::new(),
        )
        .await;
        assert!(matches!(got, Err(SendError::Invalid)), "{:?}", got.err());
        drop(upstream.await.expect("upstream"));
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn close_delimited_and_truncated_bodies() {
    within(async {
        let pool = std::sync::Arc::new(Pool::new(PoolOptions::default()));
        let head = encode_head(&Method::GET, "/", &HeaderValue::from_static("h"), b"\r\n");
        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        tokio::spawn(async move {
            read_until(&mut up, b"\r\n\r\n").await;
            let _ = up.write_all(b"HTTP/1.0 200 OK\r\n\r\nuntil the end").await;
        });
        let (_, resp) = send_get(conn, &head, &pool).await.expect("response");
        assert_eq!(collect(resp).await.expect("body").0, b"until the end");
        assert!(
            pool.take().is_none(),
            "a close-delimited body ends its connection"
        );

        let (conn, mut up) = pair(Duration::from_secs(5)).await;
        tokio::spawn(async move {
            read_until(&mut up, b"\r\n\r\n").await;
            let _ = up
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
                .await;
        });
        let (_, resp) = send_get(conn, &head, &pool).await.expect("response");
        assert!(collect(resp).await.is_err(), "a truncated body is an error");
        assert!(pool.take().is_none());
    })
    .await
    .expect("in time");
}
