use std::ops::ControlFlow;

use http_body_util::BodyExt;

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready};

const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["name"],
  "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
}"#;

fn plugin(config: Config) -> RequestValidator {
    RequestValidator::new(config).expect("valid config")
}

fn default_plugin() -> RequestValidator {
    plugin(Config {
        body_schema: SCHEMA,
        ..Config::new(Draft::Draft4)
    })
}

fn post(content_type: Option<&str>, body: &'static str) -> Request {
    let mut b = http::Request::builder().method("POST").uri("/orders");
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(response::full(body)).expect("request")
}

/// Runs `access`; `Ok(body the upstream would get)` or `Err((status, body))`.
fn run(p: &RequestValidator, mut req: Request) -> Result<String, (u16, String)> {
    let mut cx = ctx();
    match ready(p.access(&mut cx, &mut req)) {
        ControlFlow::Continue(()) => {
            assert!(!cx.kong_generated);
            let bytes = ready(req.into_body().collect())
                .expect("in-memory body")
                .to_bytes();
            Ok(String::from_utf8(bytes.to_vec()).expect("utf-8"))
        }
        ControlFlow::Break(resp) => {
            assert!(cx.kong_generated);
            Err((resp.status().as_u16(), body_text(resp)))
        }
    }
}

const DENY: &str = r#"{"message":"request body doesn't conform to schema"}"#;
const BAD_TYPE: &str = r#"{"message":"specified Content-Type is not allowed"}"#;

#[test]
fn valid_body_passes_unchanged() {
    let body = "{\"name\": \"kiln\",\n \"age\": 3}";
    let out = run(&default_plugin(), post(Some("application/json"), body));
    assert_eq!(out, Ok(body.to_owned()));
}

#[test]
fn invalid_bodies_get_kongs_message() {
    let p = default_plugin();
    for body in [
        r#"{"age": 3}"#,
        r#"{"name": 7}"#,
        r#"{"name": "a", "age": -1}"#,
        "[]",
        "{not json",
        "",
        "  \n",
    ] {
        let out = run(&p, post(Some("application/json"), body));
        assert_eq!(out, Err((400, DENY.to_owned())), "body {body:?}");
    }
}

#[test]
fn verbose_response_names_the_error() {
    let p = plugin(Config {
        body_schema: SCHEMA,
        verbose_response: true,
        ..Config::new(Draft::Draft4)
    });
    let cases = [
        (
            r#"{"age": 3}"#,
            r#"{"message":"\"name\" is a required property"}"#,
        ),
        (
            r#"{"name": 7}"#,
            r#"{"message":"/name: 7 is not of type \"string\""}"#,
        ),
        ("", r#"{"message":"request body is empty"}"#),
        (
            "{not json",
            r#"{"message":"request body is not valid JSON: key must be a string at line 1 column 2"}"#,
        ),
    ];
    for (body, expected) in cases {
        let out = run(&p, post(Some("application/json"), body));
        assert_eq!(out, Err((400, expected.to_owned())), "body {body:?}");
    }
}

#[test]
fn content_type_is_checked_before_the_body() {
    let p = default_plugin();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some("application/json; charset=utf-8"),
        Some("application/jsonx"),
        Some("not a type"),
    ] {
        let out = run(&p, post(ct, r#"{"name": "a"}"#));
        assert_eq!(out, Err((400, BAD_TYPE.to_owned())), "content type {ct:?}");
    }
    // type and subtype are case-insensitive
    let out = run(&p, post(Some("Application/JSON"), r#"{"name": "a"}"#));
    assert!(out.is_ok());
}

#[test]
fn content_type_parameters() {
    let p = plugin(Config {
        body_schema: SCHEMA,
        allowed_content_types: &["application/json; charset=UTF-8", "text/plain"],
        ..Config::new(Draft::Draft7)
    });
    let ok = r#"{"name": "a"}"#;
    // charset value and parameter name case-insensitive; only the first parameter counts
    for ct in [
        "application/json; charset=utf-8",
        "application/json;CHARSET=\"UTF-8\"",
        "application/json; charset=utf-8; boundary=x",
    ] {
        assert_eq!(run(&p, post(Some(ct), ok)), Ok(ok.to_owned()), "{ct}");
    }
    for ct in ["application/json", "application/json; charset=latin1"] {
        assert_eq!(
            run(&p, post(Some(ct), ok)),
            Err((400, BAD_TYPE.to_owned())),
            "{ct}"
        );
    }
    // an allowed type that is not JSON passes without body validation
    assert_eq!(
        run(&p, post(Some("text/plain"), "anything")),
        Ok("anything".to_owned())
    );

    let lax = plugin(Config {
        body_schema: SCHEMA,
        content_type_parameter_validation: false,
        ..Config::new(Draft::Draft4)
    });
    assert!(run(&lax, post(Some("application/json; charset=latin1"), ok)).is_ok());
    assert_eq!(
        run(&lax, post(Some("application/json; charset=latin1"), "{}")),
        Err((400, DENY.to_owned()))
    );
}

#[test]
fn json_suffix_types_are_validated() {
    let p = plugin(Config {
        body_schema: SCHEMA,
        allowed_content_types: &["application/merge-patch+json", "application/*"],
        ..Config::new(Draft::Draft202012)
    });
    assert_eq!(
        run(&p, post(Some("application/merge-patch+json"), "{}")),
        Err((400, DENY.to_owned()))
    );
    assert_eq!(
        run(&p, post(Some("application/vnd.api+json"), "{}")),
        Err((400, DENY.to_owned()))
    );
    assert_eq!(
        run(&p, post(Some("application/octet-stream"), "{}")),
        Ok("{}".to_owned())
    );
}

#[test]
fn oversize_body_is_413() {
    let p = plugin(Config {
        body_schema: "{}",
        max_body: 8,
        ..Config::new(Draft::Draft4)
    });
    assert_eq!(
        run(&p, post(Some("application/json"), "[1,2,3]")),
        Ok("[1,2,3]".to_owned())
    );
    let (status, body) = run(&p, post(Some("application/json"), "[1,2,3,4,5]")).expect_err("413");
    assert_eq!(status, 413);
    assert!(body.contains("\"message\":\"Payload too large\""), "{body}");
    assert!(body.contains("0123456789abcdef0123456789abcdef"), "{body}");
    // a declared Content-Length over the limit is refused before reading
    let mut req = post(Some("application/json"), "[]");
    req.headers_mut()
        .insert("content-length", http::HeaderValue::from_static("9"));
    assert_eq!(run(&p, req).map_err(|e| e.0), Err(413));
}

#[test]
fn schema_errors() {
    match compile_schema("{\"type\": \n  \"object\",}", Draft::Draft4) {
        Err(SchemaError::Json { line, column, .. }) => assert_eq!((line, column), (2, 12)),
        other => panic!("{other:?}"),
    }
    match compile_schema(r#"{"properties": {"a": {"type": "strin"}}}"#, Draft::Draft4) {
        Err(SchemaError::Schema { location, .. }) => {
            assert_eq!(location, "/properties/a/type")
        }
        other => panic!("{other:?}"),
    }
    assert!(compile_schema(r#"{"$ref": "http://example.com/s.json"}"#, Draft::Draft7).is_err());
    let err = RequestValidator::new(Config {
        body_schema: "[",
        ..Config::new(Draft::Draft4)
    })
    .expect_err("refused");
    assert!(err
        .0
        .starts_with("request-validator: body_schema: invalid JSON"));
}

#[test]
fn media_types() {
    let m = MediaType::parse(" Application/Merge-Patch+JSON ; Charset=\"UTF-8\" ; x=y")
        .expect("parses");
    assert_eq!(m.kind, "application");
    assert_eq!(m.subtype, "merge-patch+json");
    assert_eq!(m.param, Some(("charset".into(), "utf-8".into())));
    assert!(m.is_json());
    for bad in [
        "",
        "json",
        "/json",
        "application/",
        "a b/c",
        "application/json; x",
    ] {
        assert_eq!(MediaType::parse(bad), None, "{bad:?}");
    }
    assert_eq!(Draft::from_kong("draft7"), Some(Draft::Draft7));
    assert_eq!(Draft::from_kong("kong"), None);
}

/// A body that yields its chunks one frame at a time, with no length known.
struct Frames(std::collections::VecDeque<bytes::Bytes>);

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = crate::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn streamed(chunks: &[&'static str]) -> Request {
    let body = Frames(
        chunks
            .iter()
            .map(|c| bytes::Bytes::from_static(c.as_bytes()))
            .collect(),
    );
    http::Request::builder()
        .method("POST")
        .uri("/orders")
        .header("content-type", "application/json")
        .body(body.boxed())
        .expect("request")
}

#[test]
fn streamed_bodies_are_counted_across_frames() {
    let p = plugin(Config {
        body_schema: r#"{"type": "array"}"#,
        max_body: 10,
        ..Config::new(Draft::Draft4)
    });
    assert_eq!(
        run(&p, streamed(&["[1,", "2,", "3]"])),
        Ok("[1,2,3]".to_owned())
    );
    assert_eq!(
        run(&p, streamed(&["[1,2,", "3,4,", "5]"])).map_err(|e| e.0),
        Err(413)
    );
    assert_eq!(
        run(&p, streamed(&["{\"a\":", "1}"])),
        Err((400, DENY.to_owned()))
    );
}
