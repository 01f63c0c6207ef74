//! request-validator end to end (docs/plugins/request-validator.md): the
//! `request-validator` fixture served in-process in front of the echo upstream, which
//! reports the body it received.

use bytes::Bytes;
use http_body_util::Full;
use kiln_runtime::plugins::request_validator::DEFAULT_MAX_BODY;
use kiln_tests::harness::{request, send, start, within, Reply, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));

const DENY: &str = r#"{"message":"request body doesn't conform to schema"}"#;
const BAD_TYPE: &str = r#"{"message":"specified Content-Type is not allowed"}"#;

async fn gateway() -> Running {
    start::<request_validator::Gateway>().await
}

async fn post(gw: &Running, host: &str, ct: Option<&str>, body: impl Into<Bytes>) -> Reply {
    post_with(gw, host, ct, body, &[]).await
}

async fn post_with(
    gw: &Running,
    host: &str,
    ct: Option<&str>,
    body: impl Into<Bytes>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut b = http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("host", host);
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(gw.addr, b.body(Full::new(body.into())).expect("request")).await
}

/// The request reached the upstream with exactly `body`.
fn assert_passed(r: &Reply, body: &str, what: &str) {
    assert_eq!(r.status, 200, "{what}: {:?}", r.body);
    let echo = r.json();
    assert_eq!(echo["body"], body, "{what}");
    assert_eq!(echo["body_bytes"], body.len() as u64, "{what}");
}

/// A 400 from the plugin with exactly `body` (Kong's `kong.response.exit` JSON).
fn assert_refused(r: &Reply, body: &str, what: &str) {
    assert_eq!(r.status, 400, "{what}: {:?}", r.body);
    assert_eq!(r.body, body.as_bytes(), "{what}");
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{what}"
    );
    assert!(r.header("x-kong-request-id").is_some(), "{what}");
}

#[tokio::test]
async fn valid_bodies_reach_the_upstream_unchanged() {
    let gw = gateway().await;
    let cases = [
        ("strict.test", r#"{"name":"kiln","qty":2}"#),
        (
            "strict.test",
            "{\n  \"name\": \"kiln\",\n  \"extra\": [1, 2]\n}\n",
        ),
        ("verbose.test", r#"{"name":"kiln"}"#),
    ];
    for (host, body) in cases {
        let r = post(&gw, host, Some("application/json"), body).await;
        assert_passed(&r, body, host);
        assert_eq!(
            r.upstream_header("content-type").as_deref(),
            Some("application/json")
        );
        assert_eq!(
            r.upstream_header("content-length"),
            Some(body.len().to_string())
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn invalid_bodies_get_kongs_message() {
    let gw = gateway().await;
    for body in [
        r#"{"qty":2}"#,
        r#"{"name":""}"#,
        r#"{"name":"kiln","qty":0}"#,
        r#"{"name":"kiln","qty":"2"}"#,
        r#"["name"]"#,
        r#"{"name":"kiln""#,
        "",
    ] {
        let r = post(&gw, "strict.test", Some("application/json"), body).await;
        assert_refused(&r, DENY, body);
    }
    gw.stop().await;
}

#[tokio::test]
async fn verbose_response_gives_the_validation_error() {
    let gw = gateway().await;
    let cases = [
        (
            r#"{"qty":2}"#,
            r#"{"message":"\"name\" is a required property"}"#,
        ),
        (
            r#"{"name":"kiln","qty":0}"#,
            r#"{"message":"/qty: 0 is less than the minimum of 1"}"#,
        ),
        (
            r#"{"name":["kiln"]}"#,
            r#"{"message":"/name: [\"kiln\"] is not of type \"string\""}"#,
        ),
        ("", r#"{"message":"request body is empty"}"#),
        (
            "{\"name\":",
            r#"{"message":"request body is not valid JSON: EOF while parsing a value at line 1 column 8"}"#,
        ),
    ];
    for (body, expected) in cases {
        let r = post(&gw, "verbose.test", Some("application/json"), body).await;
        assert_refused(&r, expected, body);
    }
    gw.stop().await;
}

#[tokio::test]
async fn content_type_must_be_allowed() {
    let gw = gateway().await;
    let ok = r#"{"name":"kiln"}"#;
    // default allowed_content_types: application/json, parameters compared strictly
    for ct in [
        None,
        Some("text/plain"),
        Some("application/json; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("json"),
    ] {
        let r = post(&gw, "strict.test", ct, ok).await;
        assert_refused(&r, BAD_TYPE, &format!("strict {ct:?}"));
    }
    let r = post(&gw, "strict.test", Some("APPLICATION/Json"), ok).await;
    assert_passed(&r, ok, "type and subtype are case-insensitive");
    // a GET without a body has no Content-Type either
    let r = request(gw.addr, "GET", "strict.test", "/orders", &[]).await;
    assert_refused(&r, BAD_TYPE, "GET");

    // configured list: parameters, +json suffix, a non-JSON type that is not validated
    let cases = [
        ("application/json; charset=UTF-8", "[1,2]", Some(true)),
        (
            "application/json;charset=\"utf-8\"",
            "[1,\"x\"]",
            Some(false),
        ),
        ("application/json", "[1,2]", None),
        ("application/json; charset=latin1", "[1,2]", None),
        ("application/merge-patch+json", "[1,2]", Some(true)),
        ("application/merge-patch+json", "{}", Some(false)),
        ("text/plain", "not json at all", Some(true)),
    ];
    for (ct, body, verdict) in cases {
        let r = post(&gw, "types.test", Some(ct), body).await;
        let what = format!("types {ct} {body}");
        match verdict {
            Some(true) => assert_passed(&r, body, &what),
            Some(false) => assert_refused(&r, DENY, &what),
            None => assert_refused(&r, BAD_TYPE, &what),
        }
    }

    // content_type_parameter_validation: false ignores the parameter
    let r = post(
        &gw,
        "lax.test",
        Some("application/json; charset=latin1"),
        "[]",
    )
    .await;
    assert_passed(&r, "[]", "lax");
    let r = post(
        &gw,
        "lax.test",
        Some("application/json; charset=latin1"),
        "{}",
    )
    .await;
    assert_refused(&r, DENY, "lax, invalid body");
    gw.stop().await;
}

#[tokio::test]
async fn chunked_bodies_are_validated_and_forwarded() {
    let gw = gateway().await;
    let body = r#"{"name":"chunked","qty":3}"#;
    let r = post_with(
        &gw,
        "strict.test",
        Some("application/json"),
        body,
        &[("transfer-encoding", "chunked")],
    )
    .await;
    assert_passed(&r, body, "chunked");
    // the buffered body goes upstream with its length
    assert_eq!(
        r.upstream_header("content-length"),
        Some(body.len().to_string())
    );
    assert_eq!(r.upstream_header("transfer-encoding"), None);
    let r = post_with(
        &gw,
        "strict.test",
        Some("application/json"),
        r#"{"qty":3}"#,
        &[("transfer-encoding", "chunked")],
    )
    .await;
    assert_refused(&r, DENY, "chunked, invalid");
    gw.stop().await;
}

/// A JSON array of `n` bytes: `[0,0,...,0]` (padded with spaces).
fn json_of_len(n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n);
    v.push(b'[');
    while v.len() + 3 <= n {
        v.extend_from_slice(b"0,");
    }
    v.pop();
    v.push(b']');
    v.resize(n, b' ');
    v
}

#[tokio::test]
async fn bodies_over_the_cap_get_413() {
    let gw = gateway().await;
    // exactly at the cap: validated and forwarded
    let at_cap = json_of_len(DEFAULT_MAX_BODY);
    let r = post(&gw, "lax.test", Some("application/json"), at_cap).await;
    assert_eq!(r.status, 200, "{:?}", r.body.len());
    assert_eq!(r.json()["body_bytes"], DEFAULT_MAX_BODY as u64);

    // streamed (chunked) past the cap: read up to the cap, then refused
    let over = json_of_len(DEFAULT_MAX_BODY + 1);
    let r = post_with(
        &gw,
        "lax.test",
        Some("application/json"),
        over,
        &[
            ("transfer-encoding", "chunked"),
            ("accept", "application/json"),
        ],
    )
    .await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["message"], "Payload too large");
    assert_eq!(
        r.json()["request_id"].as_str(),
        r.header("x-kong-request-id")
    );

    // a declared Content-Length past the cap is refused before any body byte is read
    let head = format!(
        "POST /orders HTTP/1.1\r\nhost: lax.test\r\ncontent-type: application/json\r\ncontent-length: {}\r\naccept: text/plain\r\n\r\n[",
        DEFAULT_MAX_BODY + 1
    );
    let reply = within("raw 413", async {
        let mut s = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        s.write_all(head.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("request_id: ") {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    })
    .await;
    assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
    assert!(
        reply.contains("\r\n\r\nPayload too large\nrequest_id: "),
        "{reply}"
    );
    gw.stop().await;
}
