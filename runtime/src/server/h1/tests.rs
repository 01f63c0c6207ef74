use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

use super::{imf_fixdate, serve, Limits};
use crate::{Request, Response};

/// What the test handler answers: method, target, the `x-a` values and the body it read,
/// one per line. `/noread` does not read the body; `/stream` answers a body of unknown
/// size; `/empty` answers 204.
use crate::upstream_head::UpstreamHead;

/// The test server's answers (the request is the connection's, lent for each one).
struct Echo;

impl super::Handler for Echo {
    type InFlight = ();

    async fn handle(&mut self, req: &mut Request, _: &mut Option<UpstreamHead>) -> (Response, ()) {
        (answer(req).await, ())
    }
}

async fn answer(req: &mut Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/empty" {
        let mut resp = Response::new(crate::response::empty());
        *resp.status_mut() = http::StatusCode::NO_CONTENT;
        return resp;
    }
    let body = if path == "/noread" {
        String::new()
    } else {
        let body = std::mem::replace(req.body_mut(), crate::response::empty());
        match body.collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(e) => format!("body error: {e}"),
        }
    };
    let xa: Vec<&str> = req
        .headers()
        .get_all("x-a")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let text = format!("{} {}\n{}\n{}", req.method(), req.uri(), xa.join(","), body);
    if path == "/stream" {
        let body = Frames(vec![Bytes::from(text), Bytes::from_static(b"!")].into()).boxed();
        return Response::new(body);
    }
    Response::new(crate::response::full(Bytes::from(text)))
}

/// Data frames, all ready, their total size unknown to the server.
struct Frames(std::collections::VecDeque<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, crate::BoxError>>> {
        std::task::Poll::Ready(
            self.get_mut()
                .0
                .pop_front()
                .map(|d| Ok(http_body::Frame::data(d))),
        )
    }
}

/// A served connection and the client's end of it.
async fn connect(limits: Limits) -> (TcpStream, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (drain_tx, mut drain) = watch::channel(false);
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, write) = stream.into_split();
        serve(read, write, BytesMut::new(), &limits, &mut drain, Echo).await;
    });
    let client = TcpStream::connect(addr).await.expect("connect");
    (client, drain_tx)
}

fn limits() -> Limits {
    Limits {
        max_head: 64 * 1024,
        header_read_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        send_timeout: Duration::from_secs(5),
    }
}

/// Reads one response: the head, and a body framed by content-length or chunked (or until
/// close when neither).
async fn response(s: &mut TcpStream) -> (String, String) {
    read_response(s, false).await
}

/// The same, for a request whose answer has no body whatever its head says (HEAD).
async fn read_response(s: &mut TcpStream, head_request: bool) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.expect("read head");
        assert!(
            n > 0,
            "closed before a head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("utf-8 head");
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        if !head.starts_with("HTTP/1.1 204") && !head_request {
            body.resize(len, 0);
            s.read_exact(&mut body).await.expect("body");
        }
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                s.read_exact(&mut byte).await.expect("chunk size");
                line.push(byte[0]);
            }
            let size =
                usize::from_str_radix(std::str::from_utf8(&line).expect("ascii").trim_end(), 16)
                    .expect("hex size");
            let mut chunk = vec![0u8; size + 2];
            s.read_exact(&mut chunk).await.expect("chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if !head.starts_with("HTTP/1.1 204") {
        s.read_to_end(&mut body).await.expect("until close");
    }
    (head, String::from_utf8(body).expect("utf-8 body"))
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await,
        Ok(Ok(0))
    )
}

fn within<F: std::future::Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(Duration::from_secs(20), f)
}

#[tokio::test]
async fn keep_alive_pipelining_and_bodies() {
    within(async {
        let (mut s, _drain) = connect(limits()).await;
        s.write_all(
            b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n\
              POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
              POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
              3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
        )
        .await
        .expect("write");
        let (head, body) = response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("date: "), "{head}");
        assert!(!head.contains("connection: close"), "{head}");
        assert_eq!(body, "GET /a?x=1\n1,2\n");
        assert_eq!(response(&mut s).await.1, "POST /b\n\nhello");
        assert_eq!(response(&mut s).await.1, "POST /c\n\nabcde");

        // a body of unknown size is chunked
        s.write_all(b"GET /stream HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        let (head, body) = response(&mut s).await;
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert_eq!(body, "GET /stream\n\n!");

        // HEAD: the length, no body; 204: neither
        s.write_all(b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        let (head, body) = read_response(&mut s, true).await;
        assert!(head.contains("content-length: 9\r\n"), "{head}");
        assert_eq!(body, "");
        s.write_all(b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        let (head, _) = response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 204"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        // nothing of the earlier requests (their method, fields, bodies) reaches a later one
        // parsed into the same request
        s.write_all(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        assert_eq!(response(&mut s).await.1, "GET /after\n\n");

        // the client's close is honoured
        s.write_all(b"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let (head, _) = response(&mut s).await;
        assert!(head.contains("connection: close"), "{head}");
        assert!(closed(&mut s).await);
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn http_1_0_clients() {
    within(async {
        let (mut s, _drain) = connect(limits()).await;
        s.write_all(b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .expect("write");
        let (head, body) = response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("connection: keep-alive"), "{head}");
        assert_eq!(body, "GET /one\n\n");
        // unknown size to an HTTP/1.0 client: until close
        s.write_all(b"GET /stream HTTP/1.0\r\n\r\n")
            .await
            .expect("write");
        let (head, body) = response(&mut s).await;
        assert!(head.contains("connection: close"), "{head}");
        assert!(!head.contains("chunked"), "{head}");
        assert_eq!(body, "GET /stream\n\n!");
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn expect_continue() {
    within(async {
        let (mut s, _drain) = connect(limits()).await;
        s.write_all(
            b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        )
        .await
        .expect("write");
        let mut interim = [0u8; 25];
        s.read_exact(&mut interim).await.expect("100 Continue");
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        s.write_all(b"abc").await.expect("body");
        assert_eq!(response(&mut s).await.1, "POST /up\n\nabc");

        // a handler that answers without reading: no 100, and the unsent body means the
        // connection cannot go on
        s.write_all(
            b"POST /noread HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        )
        .await
        .expect("write");
        let (head, _) = response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(closed(&mut s).await);

        // an unread body that has already arrived is skipped, and the connection goes on
        let (mut s, _drain) = connect(limits()).await;
        s.write_all(
            b"POST /noread HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\
              GET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        )
        .await
        .expect("write");
        response(&mut s).await;
        assert_eq!(response(&mut s).await.1, "GET /next\n\n");
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn malformed_requests_are_refused_and_closed() {
    within(async {
        let cases: &[(&[u8], &str)] = &[
            (b"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", "400"),
            (b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", "400"),
            (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", "400"),
            (b"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                "400",
            ),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", "400"),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                "400",
            ),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", "501"),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                "501",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                "400",
            ),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\nx", "400"),
            (
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                "400",
            ),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost: h\r\n folded: x\r\n\r\n", "400"),
        ];
        for (raw, status) in cases {
            let (mut s, _drain) = connect(limits()).await;
            s.write_all(raw).await.expect("write");
            let (head, _) = response(&mut s).await;
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status} ")),
                "{}: {head}",
                String::from_utf8_lossy(raw)
            );
            assert!(head.contains("connection: close"), "{head}");
            assert!(closed(&mut s).await);
        }

        // more than 100 fields, or a head over the limit: 431
        let mut many = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("x-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let (mut s, _drain) = connect(limits()).await;
        s.write_all(&many).await.expect("write");
        assert!(response(&mut s).await.0.starts_with("HTTP/1.1 431 "));
        let (mut s, _drain) = connect(Limits {
            max_head: 1024,
            ..limits()
        })
        .await;
        let big = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
        let _ = s.write_all(big.as_bytes()).await;
        assert!(response(&mut s).await.0.starts_with("HTTP/1.1 431 "));
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn idle_and_draining_connections_close() {
    within(async {
        let (mut s, _drain) = connect(Limits {
            idle_timeout: Duration::from_millis(100),
            ..limits()
        })
        .await;
        assert!(closed(&mut s).await, "idle past idle_timeout");

        let (mut s, drain) = connect(limits()).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        response(&mut s).await;
        let _ = drain.send(true);
        assert!(closed(&mut s).await, "an idle connection closes on drain");
    })
    .await
    .expect("in time");
}

#[tokio::test]
async fn a_stalled_request_body_times_out() {
    within(async {
        let (mut s, _drain) = connect(Limits {
            header_read_timeout: Duration::from_millis(200),
            ..limits()
        })
        .await;
        s.write_all(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
            .await
            .expect("write");
        let (head, body) = response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body.contains("body error"), "{body}");
        assert!(
            closed(&mut s).await,
            "the unfinished body ends the connection"
        );
    })
    .await
    .expect("in time");
}

#[test]
fn dates_are_imf_fixdate() {
    let text = |secs| String::from_utf8(imf_fixdate(secs).to_vec()).expect("ascii");
    assert_eq!(text(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(text(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(text(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(text(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
}

#[test]
fn heads_are_parsed_in_place_whatever_their_number_of_fields() {
    // Each head goes into the connection's request, emptied after the previous one (as on
    // a connection): nothing of the earlier request stays, whether the next one has more
    // fields or fewer.
    let mut req = Request::new(crate::response::empty());
    for fields in [
        0,
        1,
        super::INLINE_FIELDS,
        super::INLINE_FIELDS + 1,
        99,
        2,
        1,
    ] {
        let mut text = String::from("GET /p?q=1 HTTP/1.1\r\nHost: h\r\n");
        for i in 1..fields {
            text.push_str(&format!("X-F{i}: v {i}\r\n"));
        }
        text.push_str("\r\nNEXT");
        let mut buf = BytesMut::from(text.as_bytes());
        super::parse_head(&mut buf, 64 * 1024, &mut req)
            .expect("valid")
            .expect("complete");
        assert_eq!(&buf[..], b"NEXT", "{fields} fields");
        assert_eq!(req.uri(), "/p?q=1");
        assert_eq!(req.headers().len(), fields.max(1));
        assert_eq!(req.headers()["host"], "h");
        for i in 1..fields {
            assert_eq!(req.headers()[format!("x-f{i}")], format!("v {i}"));
        }
        assert!(!req.headers().contains_key(format!("x-f{fields}")));
        req.extensions_mut().insert(7u8);
        super::reset_request(&mut req);
        assert!(req.headers().is_empty() && req.extensions().get::<u8>().is_none());
        assert_eq!(req.uri(), "/");
    }
    // What is refused stays refused, and leaves the request as it was; an incomplete head
    // stays in the buffer.
    for (head, refusal) in [
        (
            &b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"[..],
            super::BAD,
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n",
            super::BAD,
        ),
        (
            b"POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            super::BAD,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
            super::NOT_IMPLEMENTED,
        ),
    ] {
        let mut buf = BytesMut::from(head);
        assert_eq!(
            super::parse_head(&mut buf, 8192, &mut req).err(),
            Some(refusal)
        );
        assert!(
            req.headers().is_empty(),
            "{:?}",
            String::from_utf8_lossy(head)
        );
        assert_eq!(req.uri(), "/");
    }
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\n"[..]);
    assert!(matches!(
        super::parse_head(&mut buf, 8192, &mut req),
        Ok(None)
    ));
    assert_eq!(buf.len(), 25);
}

#[tokio::test]
async fn the_waits_for_a_head_are_rearmed_for_each_request() {
    within(async {
        // The idle timer starts again for each request: three requests 250 ms apart are all
        // served with a 400 ms idle timeout, then the idle connection closes.
        let (mut s, _drain) = connect(Limits {
            idle_timeout: Duration::from_millis(400),
            ..limits()
        })
        .await;
        for _ in 0..3 {
            s.write_all(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n")
                .await
                .expect("write");
            let (head, _) = response(&mut s).await;
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(closed(&mut s).await, "idle past idle_timeout");

        // A head on its way has until `header_read_timeout`, past `idle_timeout`; then the
        // connection closes.
        let (mut s, _drain) = connect(Limits {
            idle_timeout: Duration::from_millis(200),
            header_read_timeout: Duration::from_millis(800),
            ..limits()
        })
        .await;
        s.write_all(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        response(&mut s).await;
        s.write_all(b"GET /2 HTTP/1.1\r\n").await.expect("write");
        tokio::time::sleep(Duration::from_millis(350)).await;
        s.write_all(b"Host: h\r\n\r\n").await.expect("write");
        let (head, body) = response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(body.starts_with("GET /2"), "{body}");
        s.write_all(b"GET /3 HTTP/1.1\r\n").await.expect("write");
        assert!(
            closed(&mut s).await,
            "a head not done by header_read_timeout"
        );

        // A drain that comes while a head is on its way: that request is still served,
        // and the connection closes after it.
        let (mut s, drain) = connect(limits()).await;
        s.write_all(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        response(&mut s).await;
        s.write_all(b"GET /2 HTTP/1.1\r\n").await.expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = drain.send(true);
        s.write_all(b"Host: h\r\n\r\n").await.expect("write");
        let (head, body) = response(&mut s).await;
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        assert!(body.starts_with("GET /2"), "{body}");
        assert!(closed(&mut s).await);

        // The server gone (the watch dropped): an idle connection closes.
        let (mut s, drain) = connect(limits()).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            .await
            .expect("write");
        response(&mut s).await;
        drop(drain);
        assert!(closed(&mut s).await, "closes once the server is gone");
    })
    .await
    .expect("in time");
}
