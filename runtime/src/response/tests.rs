use super::*;
use http_body_util::BodyExt;

#[test]
fn response_type_table() {
    use ErrorFormat::*;
    let rows: &[(Option<&str>, ErrorFormat)] = &[
        (None, Json),
        (Some(""), Json),
        (Some("*/*"), Json),
        (Some("application/*"), Json),
        (Some("text/*"), Text),
        (Some("text/plain"), Text),
        (Some("text/html"), Html),
        (Some("application/xml"), Xml),
        (Some("application/json"), Json),
        (Some("application/grpc"), Grpc),
        (Some("image/png"), Json),
        // q-values: the highest wins, the first of equals wins, q=0 never wins
        (Some("text/html;q=0.5, text/plain"), Text),
        (Some("text/plain;q=0.5, text/html;q=0.9"), Html),
        (Some("text/html, text/plain"), Html),
        (Some("text/html;q=0, text/plain;q=0.001"), Text),
        (Some("text/html;q=0"), Json),
        (Some("text/html ; q=0.8 , application/xml ; q=0.9"), Xml),
        (Some("text/html;level=1;q=0.4, application/xml;q=0.3"), Html),
        // an unknown type with top q makes JSON win
        (Some("image/png, text/plain;q=0.5"), Json),
        // malformed q (2) is ignored: q counts as 1
        (Some("application/xml;q=0.5, text/html;q=2"), Html),
        // "1.5" reads as "1." = 1
        (Some("text/plain;q=0.9, text/html;q=1.5"), Html),
        // the regex is case-insensitive, the type lookup is not
        (Some("Text/Plain"), Json),
        (Some("text/plain;Q=0.1, text/html;q=0.05"), Text),
        // elements that do not parse are skipped
        (Some("a/b, text/plain"), Text),
        (Some("garbage, text/html;q=0.2"), Html),
    ];
    for &(accept, want) in rows {
        assert_eq!(response_type(accept), want, "Accept: {accept:?}");
    }
}

fn body_text(resp: Response) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let bytes = rt
        .block_on(resp.into_body().collect())
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn error_templates() {
    let mut h = HeaderMap::new();
    let resp = error(404, Some("no Route matched with those values"), "abc", &h);
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        body_text(resp),
        "{\n  \"message\":\"no Route matched with those values\",\n  \"request_id\":\"abc\"\n}"
    );

    h.insert(header::ACCEPT, HeaderValue::from_static("text/plain"));
    let resp = error(503, None, "r1", &h);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        body_text(resp),
        "The upstream server is currently unavailable\nrequest_id: r1\n"
    );

    h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
    let body = body_text(error(404, Some("Not found"), "r2", &h));
    assert!(body.starts_with("<!doctype html>\n<html>\n"), "{body}");
    assert!(
        body.contains("    <p>Not found.</p>\n    <p>request_id: r2</p>\n"),
        "{body}"
    );

    h.insert(header::ACCEPT, HeaderValue::from_static("application/xml"));
    assert_eq!(
        body_text(error(400, None, "r3", &h)),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<error>\n  <message>Bad request</message>\n  \
         <requestid>r3</requestid>\n</error>\n"
    );

    // several Accept headers are joined, as ngx.req.get_headers() gives a table
    let mut h = HeaderMap::new();
    h.append(header::ACCEPT, HeaderValue::from_static("text/html;q=0.1"));
    h.append(header::ACCEPT, HeaderValue::from_static("text/plain"));
    let resp = error(401, None, "r4", &h);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
}

#[test]
fn upstream_error_negotiation() {
    // no Accept, no Content-Type: error_default_type = text/plain
    let h = HeaderMap::new();
    let resp = upstream_error(502, "id", &h);
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        body_text(resp),
        "An invalid response was received from the upstream server\nrequest_id: id\n"
    );
    // Content-Type is used when there is no Accept
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let resp = upstream_error(504, "id", &h);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(
        body_text(resp),
        "{\n  \"message\":\"The upstream server is timing out\",\n  \"request_id\":\"id\"\n}"
    );
    // Accept wins over Content-Type
    h.insert(header::ACCEPT, HeaderValue::from_static("application/xml"));
    assert_eq!(
        upstream_error(504, "id", &h).headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    // gRPC: compact JSON without request id
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc+proto"),
    );
    assert_eq!(
        body_text(upstream_error(502, "id", &h)),
        "{\"message\":\"An invalid response was received from the upstream server\"}"
    );
}

#[test]
fn exit_json_is_compact() {
    let resp = exit_json(426, "Please use HTTPS protocol");
    assert_eq!(resp.status(), 426);
    assert_eq!(
        body_text(resp),
        "{\"message\":\"Please use HTTPS protocol\"}"
    );
}

#[test]
fn ip_values_print_as_nginx_does() {
    use std::net::IpAddr;
    for text in [
        "0.0.0.0",
        "1.2.3.4",
        "10.20.30.40",
        "127.0.0.1",
        "100.200.250.255",
        "9.99.100.109",
        "::1",
        "2001:db8::8a2e:370:7334",
        "::ffff:192.0.2.1",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ] {
        let ip: IpAddr = text.parse().expect("address");
        assert_eq!(ip_value(ip), text, "{text}");
        assert_eq!(ip_value(ip), ip.to_string().as_str());
    }
}

#[test]
fn number_values_from_the_table_and_beyond() {
    for n in [0u64, 7, 42, 999, 1000, 8000, 65535, u64::MAX] {
        assert_eq!(number_value(n), n.to_string().as_str(), "{n}");
        // the second call (table or per-thread cache) gives the same
        assert_eq!(number_value(n), n.to_string().as_str(), "{n}");
    }
}

#[test]
fn decimals_as_text() {
    let mut cases = vec![0, 7, 9, 10, 99, 100, 101, 12345, u64::MAX, u64::MAX - 1];
    for p in 1..20 {
        let t = 10u64.pow(p);
        cases.extend([t - 1, t, t + 1, t + 9]);
    }
    cases.extend((0..1000).map(|_| fastrand::u64(..) >> fastrand::u32(0..64)));
    for n in cases {
        let mut out = b"x".to_vec();
        push_decimal(&mut out, n);
        assert_eq!(out, format!("x{n}").as_bytes());
        assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
    }
}

#[test]
fn chunk_sizes_in_hex() {
    for n in [0usize, 9, 10, 255, 4096, 0xabcdef, usize::MAX] {
        let mut out = Vec::new();
        push_chunk_size(&mut out, n);
        assert_eq!(out, format!("{n:x}\r\n").as_bytes());
    }
}
