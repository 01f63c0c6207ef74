//! Traffic control end to end: request-size-limiting (kong-compat.md §4.8) and Kiln's
//! kiln-token-bucket, the `traffic` fixture served in-process in front of the echo upstream.
//!
//! Requests whose framing matters (a `Content-Length` without a body, chunked bodies,
//! `Expect: 100-continue`) are written as raw HTTP/1.1 on a socket: a writer task sends the
//! request while the reader takes the answer, so a gateway that answers before the whole
//! body is sent is observed as a client sees it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use kiln_tests::harness::{get, within, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

async fn gateway() -> kiln_tests::harness::Running {
    kiln_tests::harness::start::<traffic::Gateway>().await
}

/// Sends `head` (request line and headers, without the blank line) and `body` as they
/// are, and reads one final response (1xx answers skipped).
async fn raw(addr: SocketAddr, head: &str, body: Vec<u8>) -> Reply {
    within("raw request", async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut rd, mut wr) = stream.into_split();
        let mut bytes = format!("{head}\r\n\r\n").into_bytes();
        bytes.extend_from_slice(&body);
        // The gateway may answer and close before reading everything: write errors are
        // expected then, and the answer is what the test checks.
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&bytes).await;
            let _ = wr.flush().await;
            wr
        });
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(reply) = parse(&buf) {
                writer.abort();
                return reply;
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        panic!(
            "incomplete response: {:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(2000)])
        );
    })
    .await
}

/// One complete final response at the start of `buf` (after any 1xx), or `None`.
fn parse(mut buf: &[u8]) -> Option<Reply> {
    loop {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
        let rest = &buf[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let version = match status_line.split(' ').next() {
            Some("HTTP/1.1") => http::Version::HTTP_11,
            Some("HTTP/1.0") => http::Version::HTTP_10,
            other => panic!("version in the status line: {other:?}"),
        };
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let mut headers = HeaderMap::new();
        for line in lines {
            let (k, v) = line.split_once(':').expect("header line");
            headers.append(
                HeaderName::from_bytes(k.trim().as_bytes()).expect("name"),
                HeaderValue::from_str(v.trim()).expect("value"),
            );
        }
        let body = if let Some(len) = headers.get("content-length") {
            let len: usize = len.to_str().ok()?.parse().ok()?;
            if rest.len() < len {
                return None;
            }
            Bytes::copy_from_slice(&rest[..len])
        } else if headers
            .get("transfer-encoding")
            .is_some_and(|v| v == "chunked")
        {
            let mut out = Vec::new();
            let mut r = rest;
            loop {
                let eol = r.windows(2).position(|w| w == b"\r\n")?;
                let size = usize::from_str_radix(std::str::from_utf8(&r[..eol]).ok()?.trim(), 16)
                    .expect("chunk size");
                r = &r[eol + 2..];
                if size == 0 {
                    break;
                }
                if r.len() < size + 2 {
                    return None;
                }
                out.extend_from_slice(&r[..size]);
                r = &r[size + 2..];
            }
            Bytes::from(out)
        } else {
            Bytes::copy_from_slice(rest)
        };
        return Some(Reply {
            status: StatusCode::from_u16(status).expect("status"),
            version,
            headers,
            body,
        });
    }
}

/// `body` as chunks of `size` bytes in chunked transfer coding.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn post(host: &str, extra: &[&str]) -> String {
    let mut head = format!("POST /upload HTTP/1.1\r\nHost: {host}\r\nConnection: close");
    for h in extra {
        head.push_str("\r\n");
        head.push_str(h);
    }
    head
}

fn assert_kong_error(r: &Reply, status: u16, message: &str) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let j = r.json();
    assert_eq!(j["message"], message);
    assert_eq!(
        j["request_id"].as_str(),
        r.header("x-kong-request-id"),
        "kong.response.error carries the request id"
    );
}

fn assert_echoed(r: &Reply, bytes: u64) {
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["body_bytes"], bytes);
}

const EXCEEDED: &str = "Request size limit exceeded";

#[tokio::test]
async fn content_length_over_the_limit_is_413_before_any_body() {
    let gw = gateway().await;
    // 1 kilobyte: 1025 declared bytes are refused from the head alone.
    let r = raw(
        gw.addr,
        &post("size-kb.test", &["Content-Length: 1025"]),
        vec![],
    )
    .await;
    assert_kong_error(&r, 413, EXCEEDED);
    // Exactly the limit passes and reaches the upstream.
    let r = raw(
        gw.addr,
        &post("size-kb.test", &["Content-Length: 1024"]),
        vec![b'a'; 1024],
    )
    .await;
    assert_echoed(&r, 1024);
    // Kong's defaults: 128 megabytes.
    let r = raw(
        gw.addr,
        &post("size-default.test", &["Content-Length: 134217729"]),
        vec![],
    )
    .await;
    assert_kong_error(&r, 413, EXCEEDED);
    gw.stop().await;
}

#[tokio::test]
async fn expect_100_continue_over_the_limit_is_417() {
    let gw = gateway().await;
    let r = raw(
        gw.addr,
        &post(
            "size-kb.test",
            &["Content-Length: 2048", "Expect: 100-continue"],
        ),
        vec![],
    )
    .await;
    assert_kong_error(&r, 417, EXCEEDED);
    // Chunked, measured while streaming: 417 as well.
    let r = raw(
        gw.addr,
        &post(
            "size-kb.test",
            &["Transfer-Encoding: chunked", "Expect: 100-continue"],
        ),
        chunked(&[b'e'; 3000], 500),
    )
    .await;
    assert_kong_error(&r, 417, EXCEEDED);
    gw.stop().await;
}

#[tokio::test]
async fn require_content_length() {
    let gw = gateway().await;
    let r = raw(gw.addr, &post("size-required.test", &[]), vec![]).await;
    assert_kong_error(&r, 411, "A valid Content-Length header is required");
    // Chunked bodies are measured instead.
    let r = raw(
        gw.addr,
        &post("size-required.test", &["Transfer-Encoding: chunked"]),
        chunked(&[b'c'; 100], 30),
    )
    .await;
    assert_echoed(&r, 100);
    let r = raw(
        gw.addr,
        &post("size-required.test", &["Transfer-Encoding: chunked"]),
        chunked(&[b'c'; 101], 30),
    )
    .await;
    assert_kong_error(&r, 413, EXCEEDED);
    let r = raw(
        gw.addr,
        &post("size-required.test", &["Content-Length: 101"]),
        vec![b'c'; 101],
    )
    .await;
    assert_kong_error(&r, 413, EXCEEDED);
    // Not required: a request without a length passes.
    let r = raw(gw.addr, &post("size-kb.test", &[]), vec![]).await;
    assert_echoed(&r, 0);
    gw.stop().await;
}

#[tokio::test]
async fn small_chunked_bodies_under_and_over_the_limit() {
    let gw = gateway().await;
    let r = raw(
        gw.addr,
        &post("size-kb.test", &["Transfer-Encoding: chunked"]),
        chunked(&[b's'; 1024], 300),
    )
    .await;
    assert_echoed(&r, 1024);
    assert_eq!(r.json()["body"], "s".repeat(1024));
    let r = raw(
        gw.addr,
        &post("size-kb.test", &["Transfer-Encoding: chunked"]),
        chunked(&[b's'; 1025], 300),
    )
    .await;
    assert_kong_error(&r, 413, EXCEEDED);
    gw.stop().await;
}

#[tokio::test]
async fn large_chunked_bodies_stream_under_and_over_the_limit() {
    let gw = gateway().await;
    // 1 megabyte limit: 900 KiB streams through.
    let body = vec![b'L'; 900 * 1024];
    let r = raw(
        gw.addr,
        &post("size-mb.test", &["Transfer-Encoding: chunked"]),
        chunked(&body, 16 * 1024),
    )
    .await;
    assert_echoed(&r, 900 * 1024);
    // 8 MiB: cut off after the first megabyte, answered 413.
    let body = vec![b'L'; 8 * 1024 * 1024];
    let r = raw(
        gw.addr,
        &post("size-mb.test", &["Transfer-Encoding: chunked"]),
        chunked(&body, 64 * 1024),
    )
    .await;
    assert_kong_error(&r, 413, EXCEEDED);
    // The gateway is fine afterwards.
    let r = get(gw.addr, "size-mb.test", "/", &[]).await;
    assert_eq!(r.status, 200);
    gw.stop().await;
}

fn limits(r: &Reply) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        r.header("ratelimit-limit"),
        r.header("ratelimit-remaining"),
        r.header("ratelimit-reset"),
    )
}

#[tokio::test]
async fn token_bucket_burst_then_429_with_headers() {
    let gw = gateway().await;
    // 2 per hour, burst 3: a token every 1800 s.
    for (remaining, reset) in [("2", "1800"), ("1", "3600"), ("0", "5400")] {
        let r = get(gw.addr, "tb-ip.test", "/", &[]).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.json()["path"], "/", "proxied");
        assert_eq!(limits(&r), (Some("3"), Some(remaining), Some(reset)));
        assert_eq!(r.header("retry-after"), None);
    }
    let r = get(gw.addr, "tb-ip.test", "/", &[]).await;
    assert_kong_error(&r, 429, "API rate limit exceeded");
    assert_eq!(limits(&r), (Some("3"), Some("0"), Some("5400")));
    assert_eq!(r.header("retry-after"), Some("1800"));
    gw.stop().await;
}

#[tokio::test]
async fn token_bucket_by_header_with_ip_fallback_and_bounded_keys() {
    let gw = gateway().await;
    let tenant = |t: &'static str| [("x-tenant", t)];
    assert_eq!(
        get(gw.addr, "tb-header.test", "/", &tenant("a"))
            .await
            .status,
        200
    );
    let r = get(gw.addr, "tb-header.test", "/", &tenant("a")).await;
    assert_kong_error(&r, 429, "API rate limit exceeded");
    assert_eq!(r.header("retry-after"), Some("3600"));
    assert_eq!(
        get(gw.addr, "tb-header.test", "/", &tenant("b"))
            .await
            .status,
        200
    );
    // No header: the client IP's bucket.
    assert_eq!(get(gw.addr, "tb-header.test", "/", &[]).await.status, 200);
    assert_eq!(get(gw.addr, "tb-header.test", "/", &[]).await.status, 429);

    // max_keys 16: sixteen more tenants push out the oldest buckets ("a" first).
    const MORE: [&str; 16] = [
        "t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10", "t11", "t12", "t13",
        "t14", "t15",
    ];
    for t in MORE {
        assert_eq!(
            get(gw.addr, "tb-header.test", "/", &tenant(t)).await.status,
            200
        );
    }
    assert_eq!(
        get(gw.addr, "tb-header.test", "/", &tenant("a"))
            .await
            .status,
        200,
        "the evicted bucket starts full"
    );
    assert_eq!(
        get(gw.addr, "tb-header.test", "/", &tenant("t15"))
            .await
            .status,
        429,
        "the newest buckets are kept"
    );
    gw.stop().await;
}

#[tokio::test]
async fn token_bucket_hidden_headers_and_custom_error() {
    let gw = gateway().await;
    let r = get(gw.addr, "tb-hidden.test", "/", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(limits(&r), (None, None, None));
    let r = get(gw.addr, "tb-hidden.test", "/", &[]).await;
    assert_kong_error(&r, 503, "slow down");
    assert_eq!(limits(&r), (None, None, None));
    assert_eq!(r.header("retry-after"), None);
    gw.stop().await;
}

#[tokio::test]
async fn token_bucket_by_consumer() {
    let gw = gateway().await;
    let key = |k: &'static str| [("apikey", k)];
    let r = get(gw.addr, "tb-consumer.test", "/", &key("alice-key")).await;
    assert_eq!(r.status, 200);
    assert_eq!(limits(&r), (Some("1"), Some("0"), Some("3600")));
    assert_eq!(
        get(gw.addr, "tb-consumer.test", "/", &key("alice-key"))
            .await
            .status,
        429
    );
    // Another consumer from the same IP has its own bucket.
    assert_eq!(
        get(gw.addr, "tb-consumer.test", "/", &key("bob-key"))
            .await
            .status,
        200
    );
    // key-auth (1250) runs before the bucket (909).
    let r = get(gw.addr, "tb-consumer.test", "/", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(limits(&r), (None, None, None));
    gw.stop().await;
}
