use std::ops::ControlFlow;

use super::*;
use crate::{
    consumer::Authenticated,
    plugins::test_support::{body_text, ctx, ready, request},
};

static CONSUMERS: [ConsumerSpec; 4] = [
    ConsumerSpec {
        id: "id-alice",
        username: Some("alice"),
        custom_id: None,
        groups: &["admins", "ops"],
    },
    ConsumerSpec {
        id: "id-bob",
        username: Some("bob"),
        custom_id: None,
        groups: &["users"],
    },
    ConsumerSpec {
        id: "id-carol",
        username: Some("carol"),
        custom_id: None,
        groups: &[],
    },
    ConsumerSpec {
        id: "id-anon",
        username: Some("anon"),
        custom_id: None,
        groups: &["guests"],
    },
];

fn acl(rule: Rule, hide: bool, always: bool) -> Acl {
    Acl::new(Config {
        rule,
        hide_groups_header: hide,
        always_use_authenticated_groups: always,
        consumers: &CONSUMERS,
    })
    .expect("valid config")
}

fn auth(consumer: Option<u32>, credential: bool, groups: Option<&[&str]>) -> Authenticated {
    Authenticated {
        consumer,
        credential: credential.then(|| "cred".into()),
        anonymous: consumer.is_some() && !credential,
        authenticated_groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
    }
}

/// Status (200: passed on), error message, and the groups header sent upstream (name, value).
type Outcome = (u16, String, Option<(String, String)>);

/// An authentication state and the expected status, message and groups header.
type Case = (Authenticated, (u16, &'static str, Option<(String, String)>));

/// One request through the plugin.
fn run(p: &Acl, a: Authenticated) -> Outcome {
    let mut cx = ctx();
    cx.auth = a;
    let mut req = request("GET", "/", &[("accept", "application/json")]);
    match ready(p.access(&mut cx, &mut req)) {
        ControlFlow::Continue(()) => {
            let h = [X_CONSUMER_GROUPS, X_AUTHENTICATED_GROUPS]
                .into_iter()
                .find_map(|n| {
                    let v = req.headers().get(&n)?.to_str().ok()?.to_owned();
                    Some((n.as_str().to_owned(), v))
                });
            (200, String::new(), h)
        }
        ControlFlow::Break(resp) => {
            assert!(cx.kong_generated);
            let status = resp.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_str(&body_text(resp)).expect("json error body");
            assert_eq!(body["request_id"], cx.request_id.as_str());
            (
                status,
                body["message"].as_str().unwrap_or("").to_owned(),
                None,
            )
        }
    }
}

fn groups_header(v: &str) -> Option<(String, String)> {
    Some(("x-consumer-groups".into(), v.into()))
}

#[test]
fn allow_list_by_consumer() {
    let p = acl(Rule::Allow(&["admins", "users"]), false, false);
    let cases: &[Case] = &[
        (
            auth(Some(0), true, None),
            (200, "", groups_header("admins, ops")),
        ),
        (auth(Some(1), true, None), (200, "", groups_header("users"))),
        // member of no listed group
        (auth(Some(3), true, None), (403, FORBIDDEN, None)),
        // no groups at all: 403 with a credential, 401 anonymous
        (auth(Some(2), true, None), (403, FORBIDDEN, None)),
        (auth(Some(2), false, None), (401, "Unauthorized", None)),
        // anonymous consumer with groups: its groups decide
        (auth(Some(3), false, None), (403, FORBIDDEN, None)),
        (
            auth(Some(0), false, None),
            (200, "", groups_header("admins, ops")),
        ),
        // nobody authenticated
        (auth(None, false, None), (401, "Unauthorized", None)),
    ];
    for (a, (status, msg, header)) in cases {
        let got = run(&p, a.clone());
        assert_eq!(got, (*status, msg.to_string(), header.clone()), "{a:?}");
    }
}

#[test]
fn deny_list_by_consumer() {
    let p = acl(Rule::Deny(&["users"]), false, false);
    assert_eq!(run(&p, auth(Some(1), true, None)).0, 403);
    assert_eq!(
        run(&p, auth(Some(0), true, None)),
        (200, String::new(), groups_header("admins, ops"))
    );
    // no groups: allowed, with Kong's empty header value
    assert_eq!(
        run(&p, auth(Some(2), true, None)),
        (200, String::new(), groups_header(""))
    );
    assert_eq!(run(&p, auth(None, false, None)).0, 401);
}

#[test]
fn groups_are_exact_and_case_sensitive() {
    let p = acl(Rule::Allow(&["Admins", "admin"]), false, false);
    assert_eq!(run(&p, auth(Some(0), true, None)).0, 403);
}

#[test]
fn hide_groups_header() {
    let p = acl(Rule::Allow(&["admins"]), true, false);
    assert_eq!(
        run(&p, auth(Some(0), true, None)),
        (200, String::new(), None)
    );
}

#[test]
fn authenticated_groups() {
    let p = acl(Rule::Allow(&["ldap-admins"]), false, false);
    let header = Some((
        "x-authenticated-groups".to_owned(),
        "ldap-admins, x".to_owned(),
    ));
    // no consumer: authenticated groups decide
    assert_eq!(
        run(&p, auth(None, false, Some(&["ldap-admins", "x"]))),
        (200, String::new(), header.clone())
    );
    assert_eq!(run(&p, auth(None, false, Some(&["x"]))).0, 403);
    // anonymous consumer: authenticated groups override its own
    assert_eq!(
        run(&p, auth(Some(0), false, Some(&["ldap-admins", "x"]))),
        (200, String::new(), header.clone())
    );
    // consumer with a credential: its own groups, unless always_use_authenticated_groups
    assert_eq!(
        run(&p, auth(Some(0), true, Some(&["ldap-admins", "x"]))).0,
        403
    );
    let always = acl(Rule::Allow(&["ldap-admins"]), false, true);
    assert_eq!(
        run(&always, auth(Some(0), true, Some(&["ldap-admins", "x"]))),
        (200, String::new(), header)
    );
    // always_use_authenticated_groups without any: the consumer's groups
    assert_eq!(run(&always, auth(Some(0), true, None)).0, 403);
}

#[test]
fn empty_list_is_refused() {
    let err = Acl::new(Config::new(&CONSUMERS)).expect_err("empty allow-list");
    assert!(err.0.contains("at least one group"), "{}", err.0);
}
