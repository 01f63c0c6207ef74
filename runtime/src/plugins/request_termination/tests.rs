use serde_json::json;

use super::*;
use crate::plugins::test_support::{body_text, ctx, ready, request};

fn plugin(config: Config) -> RequestTermination {
    RequestTermination::new(config).expect("valid config")
}

/// Runs access on a GET of `uri`; `None` when the plugin let the request through.
fn answer(
    p: &RequestTermination,
    uri: &str,
    headers: &[(&str, &str)],
) -> Option<(u16, Option<String>, String)> {
    let mut cx = ctx();
    let mut req = request("GET", uri, headers);
    match ready(p.access(&mut cx, &mut req)) {
        ControlFlow::Continue(()) => {
            assert!(!cx.kong_generated);
            None
        }
        ControlFlow::Break(resp) => {
            assert!(cx.kong_generated, "marked as a gateway answer");
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().expect("ascii").to_owned());
            Some((status, ct, body_text(resp)))
        }
    }
}

const JSON_CT: Option<&str> = Some("application/json; charset=utf-8");

#[test]
fn fixed_responses() {
    let cases: &[(&str, Config, u16, Option<&str>, &str)] = &[
        (
            "default 503",
            Config::DEFAULT,
            503,
            JSON_CT,
            r#"{"message":"Service unavailable"}"#,
        ),
        (
            "401 default",
            Config {
                status_code: 401,
                ..Config::DEFAULT
            },
            401,
            JSON_CT,
            r#"{"message":"Unauthorized"}"#,
        ),
        (
            "404 default",
            Config {
                status_code: 404,
                ..Config::DEFAULT
            },
            404,
            JSON_CT,
            r#"{"message":"Not found"}"#,
        ),
        (
            "405 default",
            Config {
                status_code: 405,
                ..Config::DEFAULT
            },
            405,
            JSON_CT,
            r#"{"message":"Method not allowed"}"#,
        ),
        (
            "500 default",
            Config {
                status_code: 500,
                ..Config::DEFAULT
            },
            500,
            JSON_CT,
            r#"{"message":"An unexpected error occurred"}"#,
        ),
        (
            "502 default (not the error() text)",
            Config {
                status_code: 502,
                ..Config::DEFAULT
            },
            502,
            JSON_CT,
            r#"{"message":"Bad Gateway"}"#,
        ),
        (
            "no default: no body",
            Config {
                status_code: 403,
                ..Config::DEFAULT
            },
            403,
            None,
            "",
        ),
        (
            "2xx without message",
            Config {
                status_code: 200,
                ..Config::DEFAULT
            },
            200,
            None,
            "",
        ),
        (
            "custom message, escaped",
            Config {
                status_code: 418,
                message: Some("a \"teapot\"/x"),
                ..Config::DEFAULT
            },
            418,
            JSON_CT,
            r#"{"message":"a \"teapot\"/x"}"#,
        ),
        (
            "raw body with content type",
            Config {
                status_code: 200,
                body: Some("<h1>bye</h1>"),
                content_type: Some("text/html"),
                ..Config::DEFAULT
            },
            200,
            Some("text/html"),
            "<h1>bye</h1>",
        ),
        (
            "raw body without content type",
            Config {
                status_code: 410,
                body: Some("gone"),
                ..Config::DEFAULT
            },
            410,
            None,
            "gone",
        ),
    ];
    for (name, config, status, ct, body) in cases {
        let got = answer(&plugin(*config), "/", &[]);
        let want = Some((*status, ct.map(str::to_owned), (*body).to_owned()));
        assert_eq!(got, want, "case {name:?}");
    }
}

#[test]
fn trigger() {
    let p = plugin(Config {
        trigger: Some("X_Kill"),
        ..Config::DEFAULT
    });
    type Headers = &'static [(&'static str, &'static str)];
    let cases: &[(&str, &str, Headers, bool)] = &[
        ("absent", "/?a=1", &[], false),
        (
            "header, `_` read as `-`, any case",
            "/",
            &[("x-kill", "1")],
            true,
        ),
        ("empty header value counts", "/", &[("X-Kill", "")], true),
        ("query arg with value", "/?X_Kill=1", &[], true),
        ("query arg without value", "/?a&X_Kill", &[], true),
        ("query arg percent-encoded", "/?X%5FKill=", &[], true),
        ("query names are exact", "/?x_kill=1", &[], false),
        ("query value is not a name", "/?a=X_Kill", &[], false),
    ];
    for (name, uri, headers, fires) in cases {
        assert_eq!(answer(&p, uri, headers).is_some(), *fires, "case {name:?}");
    }
}

#[test]
fn echo() {
    let p = plugin(Config {
        status_code: 404,
        echo: true,
        ..Config::DEFAULT
    });
    let mut cx = ctx();
    cx.normalized_path = "/users/42".into();
    cx.matched.captures = vec![
        (None, Some("/users/42".into())),
        (Some("id".into()), Some("42".into())),
        (None, None),
    ];
    let mut req = request(
        "POST",
        "/users/42?a=1&a=2&flag&q=x+y%21",
        &[
            ("Host", "API.Example.com:8443"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
        ],
    );
    let ControlFlow::Break(resp) = ready(p.access(&mut cx, &mut req)) else {
        panic!("echo answers");
    };
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], JSON_CT.expect("set"));
    let got: Value = serde_json::from_str(&body_text(resp)).expect("json");
    let want = json!({
        "message": "Not found",
        "request": {
            "scheme": "http",
            "host": "api.example.com",
            "port": 8000,
            "method": "POST",
            "path": "/users/42",
            "headers": { "host": "API.Example.com:8443", "x-multi": ["1", "2"] },
            "query": { "a": ["1", "2"], "flag": true, "q": "x y!" },
            "uri_captures": { "unnamed": ["42", null], "named": { "id": "42" } },
        },
        "matched_route": {
            "id": "8f0a9e1c-6a1f-4c5e-9a57-5d8e0b2c1a01",
            "name": "orders",
            "strip_path": true,
            "preserve_host": false,
            "https_redirect_status_code": 426,
            "request_buffering": true,
            "response_buffering": true,
        },
    });
    assert_eq!(got, want);
}

#[test]
fn echo_without_message_omits_it() {
    let p = plugin(Config {
        status_code: 200,
        echo: true,
        ..Config::DEFAULT
    });
    let body = answer(&p, "/", &[]).expect("answers").2;
    let got: Value = serde_json::from_str(&body).expect("json");
    assert!(got.get("message").is_none(), "{got}");
    assert_eq!(
        got["request"]["uri_captures"],
        json!({ "unnamed": [], "named": {} })
    );
}

#[test]
fn invalid_configs_fail_at_startup() {
    let cases: &[(&str, Config)] = &[
        (
            "status too low",
            Config {
                status_code: 99,
                ..Config::DEFAULT
            },
        ),
        (
            "status too high",
            Config {
                status_code: 600,
                ..Config::DEFAULT
            },
        ),
        (
            "message with body",
            Config {
                message: Some("m"),
                body: Some("b"),
                ..Config::DEFAULT
            },
        ),
        (
            "message with content_type",
            Config {
                message: Some("m"),
                content_type: Some("text/plain"),
                ..Config::DEFAULT
            },
        ),
        (
            "content_type without body",
            Config {
                content_type: Some("text/plain"),
                ..Config::DEFAULT
            },
        ),
        (
            "echo with body",
            Config {
                echo: true,
                body: Some("b"),
                ..Config::DEFAULT
            },
        ),
        (
            "bad content type",
            Config {
                body: Some("b"),
                content_type: Some("a\nb"),
                ..Config::DEFAULT
            },
        ),
    ];
    for (name, config) in cases {
        assert!(RequestTermination::new(*config).is_err(), "case {name:?}");
    }
}

#[test]
fn query_decoding() {
    let got: Vec<_> = query_args(Some("a=%41%zz&&b+c=%&=x&d")).collect();
    let s = |v: &str| v.to_owned();
    assert_eq!(
        got,
        vec![
            (s("a"), Some(s("A%zz"))),
            (s("b c"), Some(s("%"))),
            (s("d"), None),
        ]
    );
}
