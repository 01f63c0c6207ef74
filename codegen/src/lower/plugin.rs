//! Plugin instances (kong-compat.md §1.7) and the configs of the plugins Kiln implements
//! (§4.9 request-termination, §4.12 correlation-id).

pub(crate) mod acl;
mod auth;
mod basic_auth;
mod correlation_id;
mod cors;
mod ip_restriction;
mod jwt;
mod key_auth;
mod proxy_cache;
mod rate_limiting;
mod request_size_limiting;
mod request_termination;
mod request_validator;
mod token_bucket;

use super::service::protocols;
use super::{Cx, Parent, PluginDraft, PluginParent};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ir::{PluginConfig, Protocol};
use crate::syntax::record::{did_you_mean, Record, Sp};
use crate::syntax::{Node, NodeKind};

/// Kong's bundled plugins (kong-compat.md §3.1, §4) that Kiln does not implement yet.
pub(crate) const KONG_PLUGINS: &[&str] = &[
    "acme",
    "ai-azure-content-safety",
    "ai-prompt-decorator",
    "ai-prompt-guard",
    "ai-prompt-template",
    "ai-proxy",
    "ai-request-transformer",
    "ai-response-transformer",
    "aws-lambda",
    "azure-functions",
    "bot-detection",
    "datadog",
    "file-log",
    "grpc-gateway",
    "grpc-web",
    "hmac-auth",
    "http-log",
    "ldap-auth",
    "loggly",
    "oauth2",
    "opentelemetry",
    "post-function",
    "pre-function",
    "prometheus",
    "rate-limiting",
    "proxy-cache",
    "redirect",
    "request-transformer",
    "response-ratelimiting",
    "response-transformer",
    "session",
    "standard-webhooks",
    "statsd",
    "syslog",
    "tcp-log",
    "udp-log",
    "zipkin",
];

/// The plugins Kiln implements.
pub(crate) const KILN_PLUGINS: &[&str] = &[
    "acl",
    "basic-auth",
    "correlation-id",
    "cors",
    "ip-restriction",
    "jwt",
    "key-auth",
    "kiln-token-bucket",
    "request-size-limiting",
    "proxy-cache",
    "rate-limiting",
    "request-termination",
    "request-validator",
];

/// Plugins whose Kong schema refuses a consumer scope (`consumer = typedefs.no_consumer`,
/// kong-compat.md §1.7).
const NO_CONSUMER_SCOPE: &[&str] = &[
    "acl",
    "basic-auth",
    "bot-detection",
    "cors",
    "hmac-auth",
    "jwt",
    "key-auth",
    "ldap-auth",
    "oauth2",
    "session",
];

const DEFAULT_PROTOCOLS: &[Protocol] = &[
    Protocol::Grpc,
    Protocol::Grpcs,
    Protocol::Http,
    Protocol::Https,
];

impl Cx {
    pub(crate) fn lower_plugin(&mut self, node: &Node, parent: PluginParent) {
        let Some(mut r) = Record::new(node, "plugin", &mut self.d) else {
            return;
        };
        let id = self.explicit_id(&mut r);
        self.tags(&mut r);
        let nested_in = match parent {
            PluginParent::Top => None,
            PluginParent::Service(_) => Some("service"),
            PluginParent::Route(_) => Some("route"),
            PluginParent::Consumer(_) => Some("consumer"),
        };
        let mut route = self.foreign(&mut r, "route", nested_in);
        let mut service = self.foreign(&mut r, "service", nested_in);
        let mut consumer = self.foreign(&mut r, "consumer", nested_in);
        match parent {
            PluginParent::Top => {}
            PluginParent::Service(i) => service = Parent::Nested(i),
            PluginParent::Route(i) => route = Parent::Nested(i),
            PluginParent::Consumer(i) => consumer = Parent::Nested(i),
        }
        let instance_name = r.str("instance_name", &mut self.d);
        if let Some(n) = &instance_name {
            if let Err(c) = super::rules::check_name(&n.value) {
                self.d.push(
                    Diagnostic::error("K0200", n.span, format!("invalid character {c:?} in instance_name"))
                        .label("not allowed in a name")
                        .help("names may use letters, digits, `.`, `-`, `_`, `~` (and non-ASCII characters)"),
                );
            }
        }
        let protocols = protocols(self, &mut r, DEFAULT_PROTOCOLS, "plugin")
            .unwrap_or_else(|| DEFAULT_PROTOCOLS.to_vec());
        let d = &mut self.d;
        let enabled = r.bool("enabled", d).is_none_or(|b| b.value);
        // Enterprise-only dynamic ordering would change the chain order silently.
        if let Some(span) = r.key_span("ordering") {
            if r.raw("ordering").is_some() {
                d.push(
                    Diagnostic::error(
                        "K0605",
                        span,
                        "`ordering` (dynamic plugin ordering) is not supported",
                    )
                    .label("Kong Enterprise only")
                    .help("remove `ordering`; plugins run in Kong's static priority order"),
                );
            }
        }
        let name = r.req_str("name", d);
        if let Some(n) = name
            .as_ref()
            .filter(|n| NO_CONSUMER_SCOPE.contains(&n.value.as_str()))
        {
            let message = format!("plugin '{}' cannot be scoped to a consumer", n.value);
            let help = "Kong refuses a consumer on this plugin; apply it to a route, a service or globally";
            match (&consumer, parent) {
                (Parent::Ref(c), _) => d.push(
                    Diagnostic::error("K0606", c.span, message)
                        .label("scoped to this consumer")
                        .secondary(n.span, "this plugin")
                        .help(help),
                ),
                (_, PluginParent::Consumer(_)) => d.push(
                    Diagnostic::error("K0606", n.span, message)
                        .label("nested in a consumer")
                        .help(help),
                ),
                _ => {}
            }
        }
        let config_node = r.raw("config");
        let config = match &name {
            Some(n) => plugin_config(n, config_node, &self.source, d),
            None => None,
        };
        let origin = r.span;
        r.finish(d);
        let (Some(name), Some(config)) = (name, config) else {
            return;
        };
        self.plugins.push(PluginDraft {
            name,
            config,
            id,
            instance_name,
            route,
            service,
            consumer,
            protocols,
            enabled,
            origin,
        });
    }
}

fn plugin_config(
    name: &Sp<String>,
    config: Option<&Node>,
    source: &str,
    d: &mut Diagnostics,
) -> Option<PluginConfig> {
    let empty = Node {
        kind: NodeKind::Map(Vec::new()),
        span: name.span,
    };
    let node = config.unwrap_or(&empty);
    match name.value.as_str() {
        "correlation-id" => correlation_id::lower(node, d),
        "request-termination" => request_termination::lower(node, d),
        "jwt" => jwt::lower(node, d),
        "acl" => acl::lower(node, d),
        "ip-restriction" => ip_restriction::lower(node, d),
        "cors" => cors::lower(node, d),
        "key-auth" => key_auth::lower(node, d),
        "basic-auth" => basic_auth::lower(node, d),
        "request-validator" => request_validator::lower(node, source, d),
        "request-size-limiting" => request_size_limiting::lower(node, d),
        "kiln-token-bucket" => token_bucket::lower(node, d),
        "proxy-cache" => proxy_cache::lower(node, d),
        "rate-limiting" => rate_limiting::lower(node, d),
        other if KONG_PLUGINS.contains(&other) => {
            d.push(
                Diagnostic::error(
                    "K0601",
                    name.span,
                    format!("plugin '{other}' is not supported by Kiln yet"),
                )
                .label("a Kong plugin Kiln does not implement yet")
                .help(format!(
                    "remove this plugin; Kiln implements: {}",
                    KILN_PLUGINS.join(", ")
                )),
            );
            None
        }
        other => {
            let all: Vec<&str> = KILN_PLUGINS.iter().chain(KONG_PLUGINS).copied().collect();
            let help = match did_you_mean(other, &all) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("Kiln implements: {}", KILN_PLUGINS.join(", ")),
            };
            d.push(
                Diagnostic::error("K0600", name.span, format!("unknown plugin '{other}'"))
                    .label("not a Kong plugin")
                    .help(help),
            );
            None
        }
    }
}
