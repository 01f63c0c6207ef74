//! Consumers and what authentication leaves behind (kong-compat.md §4, §5).
//!
//! The compiler writes every consumer as a [`ConsumerSpec`] in a static table; an
//! authentication plugin that accepts a request records the consumer's index and the
//! credential in [`Authenticated`] on the [`crate::Ctx`], and sets the consumer headers for
//! the upstream with [`set_consumer_headers`]. Generated chains then select
//! consumer-scoped plugin instances with a `match` on that index.

use http::{HeaderMap, HeaderName, HeaderValue};

/// A consumer, as the compiler wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSpec {
    /// Kong id (explicit, or UUIDv5 of the username as Kong derives it).
    pub id: &'static str,
    pub username: Option<&'static str>,
    pub custom_id: Option<&'static str>,
    /// ACL groups, in the order written (`acls` entries).
    pub groups: &'static [&'static str],
}

/// The result of authentication so far on this request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authenticated {
    /// Index of the consumer in [`crate::Gateway::consumers`].
    pub consumer: Option<u32>,
    /// The credential's identifier as `X-Credential-Identifier` shows it (key-auth: the
    /// credential id; jwt: the secret's key; basic-auth: the username). `None` for the
    /// anonymous consumer. The config's credentials are borrowed, not copied.
    pub credential: Option<std::borrow::Cow<'static, str>>,
    /// The anonymous consumer was used after a failed authentication.
    pub anonymous: bool,
    /// Groups an authentication plugin established without a consumer (Kong's
    /// `ctx.authenticated_groups`, e.g. from an LDAP or OAuth2 server). acl uses them when
    /// there is no consumer, when the consumer has no credential (anonymous), or always with
    /// `always_use_authenticated_groups`. No Kiln plugin sets them yet.
    pub authenticated_groups: Option<Vec<String>>,
}

impl Authenticated {
    /// A credential was accepted by an earlier plugin (anonymous does not count): later
    /// plugins with `anonymous` set do nothing (Kong's "logical OR").
    pub fn has_credential(&self) -> bool {
        self.credential.is_some()
    }
}

pub const X_CONSUMER_ID: HeaderName = HeaderName::from_static("x-consumer-id");
pub const X_CONSUMER_CUSTOM_ID: HeaderName = HeaderName::from_static("x-consumer-custom-id");
pub const X_CONSUMER_USERNAME: HeaderName = HeaderName::from_static("x-consumer-username");
pub const X_CREDENTIAL_IDENTIFIER: HeaderName = HeaderName::from_static("x-credential-identifier");
pub const X_ANONYMOUS_CONSUMER: HeaderName = HeaderName::from_static("x-anonymous-consumer");

fn set_or_clear(headers: &mut HeaderMap, name: HeaderName, value: Option<&str>) {
    match value.and_then(|v| HeaderValue::from_str(v).ok()) {
        Some(v) => {
            headers.insert(name, v);
        }
        None => {
            headers.remove(name);
        }
    }
}

/// Sets (or clears) the consumer headers of §5 on the upstream request, exactly as Kong's
/// auth plugins do after accepting a credential or falling back to the anonymous consumer.
pub fn set_consumer_headers(
    headers: &mut HeaderMap,
    consumer: &ConsumerSpec,
    credential: Option<&str>,
    anonymous: bool,
) {
    set_or_clear(headers, X_CONSUMER_ID, Some(consumer.id));
    set_or_clear(headers, X_CONSUMER_CUSTOM_ID, consumer.custom_id);
    set_or_clear(headers, X_CONSUMER_USERNAME, consumer.username);
    set_or_clear(
        headers,
        X_CREDENTIAL_IDENTIFIER,
        if anonymous { None } else { credential },
    );
    set_or_clear(headers, X_ANONYMOUS_CONSUMER, anonymous.then_some("true"));
}

/// A header value borrowing a `'static` string (cloning it copies a pointer), when
/// `HeaderValue::from_str` accepts the string.
pub fn static_value(s: &'static str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()?;
    HeaderValue::from_maybe_shared(bytes::Bytes::from_static(s.as_bytes())).ok()
}

/// A consumer's upstream header values, made once at start-up so that accepting a
/// credential copies them instead of validating and copying the strings per request.
/// `None` where [`set_consumer_headers`] would clear the header.
#[derive(Debug, Clone)]
pub struct ConsumerHeaders {
    id: Option<HeaderValue>,
    custom_id: Option<HeaderValue>,
    username: Option<HeaderValue>,
}

impl ConsumerHeaders {
    pub fn new(consumer: &ConsumerSpec) -> Self {
        ConsumerHeaders {
            id: static_value(consumer.id),
            custom_id: consumer.custom_id.and_then(static_value),
            username: consumer.username.and_then(static_value),
        }
    }

    /// One entry per consumer, indexed as `consumers`.
    pub fn for_all(consumers: &[ConsumerSpec]) -> Vec<ConsumerHeaders> {
        consumers.iter().map(ConsumerHeaders::new).collect()
    }
}

/// Whether `headers` has one of the headers [`set_consumer_headers`] sets or clears, any
/// case. One pass over the (few) names costs less than looking each one up: a lookup of a
/// missing name still hashes it.
fn has_consumer_headers(headers: &HeaderMap) -> bool {
    headers.keys().any(|k| {
        let k = k.as_str();
        k.starts_with("x-consumer-")
            || k == X_CREDENTIAL_IDENTIFIER.as_str()
            || k == X_ANONYMOUS_CONSUMER.as_str()
    })
}

/// Sets `name` to `value`, or removes it when `stale` says the request may carry it.
fn set_or_clear_value(
    headers: &mut HeaderMap,
    stale: bool,
    name: HeaderName,
    value: Option<&HeaderValue>,
) {
    match value {
        Some(v) => {
            headers.insert(name, v.clone());
        }
        None if stale => {
            headers.remove(name);
        }
        None => {}
    }
}

/// [`authenticate`] for an accepted credential, with the consumer's header values and the
/// credential's `X-Credential-Identifier` value made at start-up (`None`: not a valid
/// header value, so the header is cleared as [`set_consumer_headers`] does).
pub fn authenticate_prepared(
    cx: &mut crate::Ctx,
    headers: &mut HeaderMap,
    consumer: u32,
    values: Option<&ConsumerHeaders>,
    credential: &'static str,
    credential_value: Option<&HeaderValue>,
) {
    if let Some(v) = values {
        let stale = has_consumer_headers(headers);
        set_or_clear_value(headers, stale, X_CONSUMER_ID, v.id.as_ref());
        set_or_clear_value(headers, stale, X_CONSUMER_CUSTOM_ID, v.custom_id.as_ref());
        set_or_clear_value(headers, stale, X_CONSUMER_USERNAME, v.username.as_ref());
        set_or_clear_value(headers, stale, X_CREDENTIAL_IDENTIFIER, credential_value);
        set_or_clear_value(headers, stale, X_ANONYMOUS_CONSUMER, None);
    }
    cx.auth = Authenticated {
        consumer: Some(consumer),
        credential: Some(credential.into()),
        anonymous: false,
        authenticated_groups: cx.auth.authenticated_groups.take(),
    };
}

/// Records an accepted credential (or the anonymous fallback) on the context and sets the
/// upstream headers. `consumers` is [`crate::Gateway::consumers`].
pub fn authenticate(
    cx: &mut crate::Ctx,
    headers: &mut HeaderMap,
    consumers: &'static [ConsumerSpec],
    consumer: u32,
    credential: Option<&'static str>,
    anonymous: bool,
) {
    if let Some(spec) = consumers.get(consumer as usize) {
        set_consumer_headers(headers, spec, credential, anonymous);
    }
    cx.auth = Authenticated {
        consumer: Some(consumer),
        credential: credential.map(Into::into),
        anonymous,
        authenticated_groups: cx.auth.authenticated_groups.take(),
    };
}

/// Start-up check of an auth plugin's `anonymous` consumer index (the compiler resolved it;
/// this guards hand-written configs).
pub fn check_anonymous(
    plugin: &str,
    anonymous: Option<u32>,
    consumers: &[ConsumerSpec],
) -> Result<(), crate::StartupError> {
    match anonymous {
        Some(a) if consumers.get(a as usize).is_none() => Err(crate::StartupError(format!(
            "{plugin}: anonymous consumer #{a} does not exist"
        ))),
        _ => Ok(()),
    }
}

/// An auth plugin's `WWW-Authenticate` challenge: `<scheme>`, or `<scheme> realm="<realm>"`.
/// A realm that cannot go in a header refuses start-up (the compiler checks it first).
pub fn challenge(
    plugin: &str,
    scheme: &str,
    realm: Option<&str>,
) -> Result<http::HeaderValue, crate::StartupError> {
    let text = match realm {
        Some(r) => format!("{scheme} realm=\"{r}\""),
        None => scheme.to_owned(),
    };
    http::HeaderValue::from_str(&text).map_err(|_| {
        crate::StartupError(format!(
            "{plugin}: realm {realm:?} cannot be sent in a header"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: ConsumerSpec = ConsumerSpec {
        id: "8b6b4fa4-5b0e-5c4e-9c43-2a6a5a1c1f10",
        username: Some("alice"),
        custom_id: None,
        groups: &["admins"],
    };

    #[test]
    fn challenges() {
        assert_eq!(challenge("key-auth", "Key", None).expect("ok"), "Key");
        assert_eq!(
            challenge("basic-auth", "Basic", Some("service")).expect("ok"),
            "Basic realm=\"service\""
        );
        assert!(challenge("key-auth", "Key", Some("a\nb")).is_err());
    }

    #[test]
    fn headers_are_set_and_stale_ones_cleared() {
        let mut h = HeaderMap::new();
        h.insert(X_CONSUMER_CUSTOM_ID, HeaderValue::from_static("forged"));
        h.insert(X_ANONYMOUS_CONSUMER, HeaderValue::from_static("true"));
        set_consumer_headers(&mut h, &ALICE, Some("cred-1"), false);
        assert_eq!(h[X_CONSUMER_ID], ALICE.id);
        assert_eq!(h[X_CONSUMER_USERNAME], "alice");
        assert_eq!(h[X_CREDENTIAL_IDENTIFIER], "cred-1");
        assert!(h.get(X_CONSUMER_CUSTOM_ID).is_none());
        assert!(h.get(X_ANONYMOUS_CONSUMER).is_none());

        set_consumer_headers(&mut h, &ALICE, Some("cred-1"), true);
        assert_eq!(h[X_ANONYMOUS_CONSUMER], "true");
        assert!(h.get(X_CREDENTIAL_IDENTIFIER).is_none());
    }

    #[test]
    fn prepared_values_set_the_same_headers() {
        const ODD: ConsumerSpec = ConsumerSpec {
            id: "id-2",
            username: Some("caf\u{e9}"),
            custom_id: Some("c-2"),
            groups: &[],
        };
        let names = [
            X_CONSUMER_ID,
            X_CONSUMER_CUSTOM_ID,
            X_CONSUMER_USERNAME,
            X_CREDENTIAL_IDENTIFIER,
            X_ANONYMOUS_CONSUMER,
        ];
        // What the client sent: none of them, every one, each alone, or lookalikes only.
        let mut sent: Vec<Vec<HeaderName>> = vec![vec![], names.to_vec()];
        sent.extend(names.iter().map(|n| vec![n.clone()]));
        sent.push(vec![
            HeaderName::from_static("x-consumer"),
            HeaderName::from_static("x-consumers"),
            HeaderName::from_static("x-consumer-other"),
        ]);
        let forged = |h: &mut HeaderMap, names: &[HeaderName]| {
            h.insert("x-unrelated", HeaderValue::from_static("kept"));
            for name in names {
                h.insert(name, HeaderValue::from_static("forged"));
            }
        };
        for ((spec, credential), sent) in [
            (&ALICE, "cred-1"),
            (&ODD, "k\u{e9}y"),
            (&ODD, "line\nbreak"),
        ]
        .into_iter()
        .flat_map(|c| sent.iter().map(move |s| (c, s)))
        {
            let mut want = HeaderMap::new();
            forged(&mut want, sent);
            set_consumer_headers(&mut want, spec, Some(credential), false);
            let mut got = HeaderMap::new();
            forged(&mut got, sent);
            let mut cx = crate::plugins::test_support::ctx();
            let values = ConsumerHeaders::new(spec);
            let credential: &'static str = Box::leak(credential.to_owned().into_boxed_str());
            let credential_value = static_value(credential);
            authenticate_prepared(
                &mut cx,
                &mut got,
                7,
                Some(&values),
                credential,
                credential_value.as_ref(),
            );
            assert_eq!(got, want, "{spec:?} {credential:?} {sent:?}");
            assert_eq!(cx.auth.consumer, Some(7));
            assert_eq!(cx.auth.credential.as_deref(), Some(credential));
            assert!(!cx.auth.anonymous);
        }
    }
}
