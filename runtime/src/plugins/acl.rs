//! Kong's `acl` plugin (kong-compat.md §4.4): lets a request through by the groups of the
//! consumer an earlier authentication plugin identified (its `acls`), against an allow-list
//! or a deny-list.
//!
//! The verdict for every consumer is computed once at start-up (groups are part of the
//! build), so the request path is one index into a table.
//!
//! ```
//! use kiln_runtime::consumer::ConsumerSpec;
//! use kiln_runtime::plugins::acl::{Acl, Config, Rule};
//!
//! static CONSUMERS: [ConsumerSpec; 1] = [ConsumerSpec {
//!     id: "c1", username: Some("alice"), custom_id: None, groups: &["admins"],
//! }];
//! let plugin = Acl::new(Config {
//!     rule: Rule::Allow(&["admins"]),
//!     ..Config::new(&CONSUMERS)
//! })
//! .expect("valid config");
//! # let _ = plugin;
//! ```

use std::{future::Future, ops::ControlFlow};

use http::{HeaderName, HeaderValue};

use crate::{
    consumer::ConsumerSpec, ctx::Ctx, gateway::StartupError, plugin::Plugin, response, Request,
    Response,
};

/// Which list the groups form (Kong: exactly one of `allow` / `deny`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Only members of one of these groups pass.
    Allow(&'static [&'static str]),
    /// Members of one of these groups are refused.
    Deny(&'static [&'static str]),
}

/// The plugin's configuration, written by the compiler as a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub rule: Rule,
    /// Do not send `X-Consumer-Groups` / `X-Authenticated-Groups` upstream (Kong default false).
    pub hide_groups_header: bool,
    /// Prefer groups set by an authentication plugin over the consumer's own (Kong default
    /// false). See [`crate::consumer::Authenticated::authenticated_groups`].
    pub always_use_authenticated_groups: bool,
    /// The gateway's consumer table.
    pub consumers: &'static [ConsumerSpec],
}

impl Config {
    /// Kong's defaults over a consumer table, with an empty allow-list (which [`Acl::new`]
    /// refuses: set `rule`).
    pub const fn new(consumers: &'static [ConsumerSpec]) -> Config {
        Config {
            rule: Rule::Allow(&[]),
            hide_groups_header: false,
            always_use_authenticated_groups: false,
            consumers,
        }
    }
}

/// What happens to a request of a given consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// 403 `You cannot consume this service`.
    Blocked,
    /// Allow-list and the consumer has no groups: 403 with a credential, 401 without.
    NoGroups,
    /// Passes; the `X-Consumer-Groups` value (`None` when hidden).
    Pass(Option<HeaderValue>),
}

/// The `acl` plugin.
#[derive(Debug)]
pub struct Acl {
    deny: bool,
    groups: &'static [&'static str],
    hide_groups_header: bool,
    always_use_authenticated_groups: bool,
    /// Indexed by consumer index.
    verdicts: Vec<Verdict>,
}

pub const X_CONSUMER_GROUPS: HeaderName = HeaderName::from_static("x-consumer-groups");
pub const X_AUTHENTICATED_GROUPS: HeaderName = HeaderName::from_static("x-authenticated-groups");

const FORBIDDEN: &str = "You cannot consume this service";

impl Acl {
    /// Checks the config as Kong's schema does and computes every consumer's verdict.
    pub fn new(config: Config) -> Result<Self, StartupError> {
        let (deny, groups) = match config.rule {
            Rule::Allow(g) => (false, g),
            Rule::Deny(g) => (true, g),
        };
        if groups.is_empty() {
            return Err(StartupError(
                "acl: one of `allow` or `deny` must list at least one group".into(),
            ));
        }
        let mut acl = Acl {
            deny,
            groups,
            hide_groups_header: config.hide_groups_header,
            always_use_authenticated_groups: config.always_use_authenticated_groups,
            verdicts: Vec::new(),
        };
        let mut verdicts = Vec::with_capacity(config.consumers.len());
        for c in config.consumers {
            let v = if c.groups.is_empty() && !deny {
                Verdict::NoGroups
            } else {
                acl.verdict(c.groups.iter().copied())
                    .map_err(|g| StartupError(format!("acl: consumer {}: {g}", c.id)))?
            };
            verdicts.push(v);
        }
        acl.verdicts = verdicts;
        Ok(acl)
    }

    /// Blocked, or the groups header value; `Err` when a group is not a header value.
    fn verdict<'g>(
        &self,
        groups: impl Iterator<Item = &'g str> + Clone,
    ) -> Result<Verdict, String> {
        let mut all = groups.clone();
        let member = all.any(|g| self.groups.contains(&g));
        if member == self.deny {
            return Ok(Verdict::Blocked);
        }
        if self.hide_groups_header {
            return Ok(Verdict::Pass(None));
        }
        let joined = groups.collect::<Vec<_>>().join(", ");
        HeaderValue::from_str(&joined)
            .map(|v| Verdict::Pass(Some(v)))
            .map_err(|_| format!("group list {joined:?} is not a valid header value"))
    }

    fn refuse(cx: &mut Ctx, req: &Request, status: u16) -> ControlFlow<Response> {
        cx.kong_generated = true;
        let msg = if status == 401 {
            "Unauthorized"
        } else {
            FORBIDDEN
        };
        ControlFlow::Break(response::error(
            status,
            Some(msg),
            &cx.request_id,
            req.headers(),
        ))
    }

    /// Kong's flow: groups from authentication win when there is no consumer, when the
    /// consumer came without a credential (anonymous), or always with
    /// `always_use_authenticated_groups`; otherwise the consumer's groups decide.
    fn decide(&self, cx: &mut Ctx, req: &mut Request) -> ControlFlow<Response> {
        let has_credential = cx.auth.has_credential();
        let use_authenticated =
            cx.auth.consumer.is_none() || !has_credential || self.always_use_authenticated_groups;
        if use_authenticated {
            if let Some(groups) = cx.auth.authenticated_groups.as_ref() {
                let verdict = self.verdict(groups.iter().map(String::as_str));
                return match verdict {
                    Ok(Verdict::Pass(value)) => {
                        if let Some(v) = value {
                            req.headers_mut().insert(X_AUTHENTICATED_GROUPS, v);
                        }
                        ControlFlow::Continue(())
                    }
                    // Blocked, or groups that cannot be sent as a header (a plugin's bug):
                    // refuse rather than pass silently.
                    _ => Self::refuse(cx, req, 403),
                };
            }
        }
        let Some(consumer) = cx.auth.consumer else {
            let status = if has_credential { 403 } else { 401 };
            return Self::refuse(cx, req, status);
        };
        match self.verdicts.get(consumer as usize) {
            Some(Verdict::Pass(value)) => {
                if let Some(v) = value {
                    req.headers_mut().insert(X_CONSUMER_GROUPS, v.clone());
                }
                ControlFlow::Continue(())
            }
            Some(Verdict::NoGroups) => {
                let status = if has_credential { 403 } else { 401 };
                Self::refuse(cx, req, status)
            }
            Some(Verdict::Blocked) | None => Self::refuse(cx, req, 403),
        }
    }
}

impl Plugin for Acl {
    const NAME: &'static str = "acl";
    const PRIORITY: i32 = 950;
    // No header_filter.
    const INSERTS_RESPONSE_HEADERS_ONLY: bool = true;

    /// Passes (setting the groups header) or answers 401/403 in Kong's error format.
    fn access(
        &self,
        cx: &mut Ctx,
        req: &mut Request,
    ) -> impl Future<Output = ControlFlow<Response>> + Send {
        std::future::ready(self.decide(cx, req))
    }
}

#[cfg(test)]
mod tests;
