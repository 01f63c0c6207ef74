//! After collection: Kong's ids, uniqueness, references, and the final IR.

use std::collections::BTreeMap;

use super::{ids, suggest, Credential, Cx, Parent};
use crate::diag::{Diagnostic, Diagnostics, Span};
use crate::ir::{self, ConsumerId, RouteId, Scope, ServiceId, UpstreamId};
use crate::syntax::record::Sp;

/// Lookup of one entity table by endpoint key (name/username) and by id.
struct Index {
    entity: &'static str,
    by_key: BTreeMap<String, usize>,
    by_id: BTreeMap<String, usize>,
}

impl Index {
    fn new(entity: &'static str) -> Self {
        Index {
            entity,
            by_key: BTreeMap::new(),
            by_id: BTreeMap::new(),
        }
    }

    /// Kong's `find_entity`: endpoint key first, then id.
    fn resolve(&self, d: &mut Diagnostics, field: &str, parent: &Parent) -> Option<usize> {
        match parent {
            Parent::None => None,
            Parent::Nested(i) => Some(*i),
            Parent::Ref(s) => {
                let found = self
                    .by_key
                    .get(&s.value)
                    .or_else(|| self.by_id.get(&s.value.to_ascii_lowercase()));
                if found.is_none() {
                    let names: Vec<&str> = self.by_key.keys().map(String::as_str).collect();
                    let help = suggest(&s.value, &names).unwrap_or_else(|| {
                        if names.is_empty() {
                            format!("there are no {} in this file", self.entity)
                        } else {
                            format!("known {}: {}", self.entity, names.join(", "))
                        }
                    });
                    d.push(
                        Diagnostic::error(
                            "K0700",
                            s.span,
                            format!(
                                "invalid reference '{field}: {}' (no such entry in '{}')",
                                s.value, self.entity
                            ),
                        )
                        .label("not found")
                        .help(help),
                    );
                }
                found.copied()
            }
        }
    }
}

/// Reports `uniqueness violation` for repeated values; returns nothing, the first wins.
fn unique<'a>(
    d: &mut Diagnostics,
    entity: &str,
    field: &str,
    values: impl Iterator<Item = &'a Sp<String>>,
) {
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    for v in values {
        if let Some(first) = seen.get(v.value.as_str()) {
            d.push(
                Diagnostic::error(
                    "K0701",
                    v.span,
                    format!("uniqueness violation: '{entity}' entity with {field} set to '{}' already declared", v.value),
                )
                .label("declared again here")
                .secondary(*first, "first declared here")
                .help(format!("give each of the {entity} a different {field}")),
            );
        } else {
            seen.insert(&v.value, v.span);
        }
    }
}

/// The key an entity's reference contributes to a cache key: the parent's id when
/// nested, the reference as written when top-level (Kong uses the raw string), else "".
fn ref_key(parent: &Parent, parent_ids: &[String]) -> String {
    match parent {
        Parent::None => String::new(),
        Parent::Nested(i) => parent_ids.get(*i).cloned().unwrap_or_default(),
        Parent::Ref(s) => s.value.clone(),
    }
}

/// Kong's plugin uniqueness key: name, route, service, consumer.
type PluginKey = (String, Option<usize>, Option<usize>, Option<usize>);

pub(super) fn assemble(cx: &mut Cx) -> Option<ir::Config> {
    let d = &mut cx.d;

    // Ids (kong-compat.md §1.2).
    for (i, s) in cx.services.iter_mut().enumerate() {
        s.ir.id = match (&s.id, &s.name) {
            (Some(id), _) => id.value.clone(),
            (None, Some(n)) => ids::entity_id("services", &n.value),
            (None, None) => ids::positional_id("services", "service", i),
        };
    }
    for (i, r) in cx.routes.iter_mut().enumerate() {
        r.ir.id = match (&r.id, &r.name) {
            (Some(id), _) => id.value.clone(),
            (None, Some(n)) => ids::entity_id("routes", &n.value),
            (None, None) => ids::positional_id("routes", "route", i),
        };
    }
    for u in &mut cx.upstreams {
        u.ir.id = match &u.id {
            Some(id) => id.value.clone(),
            None => ids::entity_id("upstreams", &u.name.value),
        };
    }
    for (i, c) in cx.consumers.iter_mut().enumerate() {
        c.ir.id = match (&c.id, &c.username) {
            (Some(id), _) => id.value.clone(),
            (None, Some(n)) => ids::entity_id("consumers", &n.value),
            (None, None) => ids::positional_id("consumers", "consumer", i),
        };
    }

    // Uniqueness.
    unique(
        d,
        "services",
        "name",
        cx.services.iter().filter_map(|s| s.name.as_ref()),
    );
    unique(
        d,
        "services",
        "id",
        cx.services.iter().filter_map(|s| s.id.as_ref()),
    );
    unique(
        d,
        "routes",
        "name",
        cx.routes.iter().filter_map(|s| s.name.as_ref()),
    );
    unique(
        d,
        "routes",
        "id",
        cx.routes.iter().filter_map(|s| s.id.as_ref()),
    );
    unique(d, "upstreams", "name", cx.upstreams.iter().map(|s| &s.name));
    unique(
        d,
        "upstreams",
        "id",
        cx.upstreams.iter().filter_map(|s| s.id.as_ref()),
    );
    unique(
        d,
        "consumers",
        "username",
        cx.consumers.iter().filter_map(|s| s.username.as_ref()),
    );
    unique(
        d,
        "consumers",
        "custom_id",
        cx.consumers.iter().filter_map(|s| s.custom_id.as_ref()),
    );
    unique(
        d,
        "consumers",
        "id",
        cx.consumers.iter().filter_map(|s| s.id.as_ref()),
    );
    unique(
        d,
        "plugins",
        "instance_name",
        cx.plugins.iter().filter_map(|p| p.instance_name.as_ref()),
    );
    unique(
        d,
        "plugins",
        "id",
        cx.plugins.iter().filter_map(|p| p.id.as_ref()),
    );

    // Indexes for references.
    let mut services = Index::new("services");
    for (i, s) in cx.services.iter().enumerate() {
        if let Some(n) = &s.name {
            services.by_key.entry(n.value.clone()).or_insert(i);
        }
        services.by_id.entry(s.ir.id.clone()).or_insert(i);
    }
    let mut routes = Index::new("routes");
    for (i, r) in cx.routes.iter().enumerate() {
        if let Some(n) = &r.name {
            routes.by_key.entry(n.value.clone()).or_insert(i);
        }
        routes.by_id.entry(r.ir.id.clone()).or_insert(i);
    }
    let mut upstreams = Index::new("upstreams");
    for (i, u) in cx.upstreams.iter().enumerate() {
        upstreams.by_key.entry(u.name.value.clone()).or_insert(i);
        upstreams.by_id.entry(u.ir.id.clone()).or_insert(i);
    }
    let mut consumers = Index::new("consumers");
    for (i, c) in cx.consumers.iter().enumerate() {
        if let Some(n) = &c.username {
            consumers.by_key.entry(n.value.clone()).or_insert(i);
        }
        consumers.by_id.entry(c.ir.id.clone()).or_insert(i);
    }

    // Routes → services.
    for r in &mut cx.routes {
        r.ir.service = services
            .resolve(d, "service", &r.service)
            .map(|i| ServiceId(i as u32));
    }
    // Services → upstreams (by host).
    for s in &mut cx.services {
        s.ir.upstream = upstreams
            .by_key
            .get(&s.ir.host)
            .map(|i| UpstreamId(*i as u32));
    }
    // Targets → upstreams.
    let upstream_ids: Vec<String> = cx.upstreams.iter().map(|u| u.ir.id.clone()).collect();
    let mut target_keys: Vec<Sp<String>> = Vec::new();
    for t in std::mem::take(&mut cx.targets) {
        if let Some(i) = upstreams.resolve(d, "upstream", &t.upstream) {
            target_keys.push(Sp::new(
                format!("{}:{}", upstream_ids[i], t.target.value),
                t.target.span,
            ));
            cx.upstreams[i].ir.targets.push(t.ir);
        }
    }
    unique(d, "targets", "upstream and target", target_keys.iter());
    // An upstream in use without an enabled target answers every request with 503.
    for (i, u) in cx.upstreams.iter().enumerate() {
        let users: Vec<Span> = cx
            .services
            .iter()
            .filter(|s| s.ir.upstream == Some(UpstreamId(i as u32)))
            .map(|s| s.ir.origin)
            .collect();
        if users.is_empty() || u.ir.targets.iter().any(|t| t.weight > 0) {
            continue;
        }
        let mut diag = Diagnostic::warning(
            "K0404",
            u.name.span,
            format!(
                "upstream '{}' has no target with a weight above 0",
                u.name.value
            ),
        )
        .label("every request to it gets 503")
        .help("add a target (`targets: [{target: \"host:port\"}]`) or give one a weight above 0");
        for s in users {
            diag = diag.secondary(s, "service using it");
        }
        d.push(diag);
    }

    // Credentials → consumers.
    let consumer_ids: Vec<String> = cx.consumers.iter().map(|c| c.ir.id.clone()).collect();
    let mut keyauth_keys = Vec::new();
    let mut basic_users = Vec::new();
    let mut jwt_keys = Vec::new();
    let mut acl_keys = Vec::new();
    for c in std::mem::take(&mut cx.credentials) {
        let Some(i) = consumers.resolve(d, "consumer", &c.consumer) else {
            continue;
        };
        let consumer_key = ref_key(&c.consumer, &consumer_ids);
        let target = &mut cx.consumers[i].ir;
        match c.cred {
            Credential::KeyAuth(k, key) => {
                keyauth_keys.push(key);
                target.keyauth_credentials.push(k);
            }
            Credential::BasicAuth(mut b, user) => {
                if b.id.is_none() {
                    b.id = Some(ids::cache_key_id("basicauth_credentials", &[&b.username]));
                }
                basic_users.push(user);
                target.basicauth_credentials.push(b);
            }
            Credential::Jwt(j, key) => {
                jwt_keys.push(key);
                target.jwt_secrets.push(j);
            }
            Credential::Acl(mut a, group) => {
                if a.id.is_none() {
                    a.id = Some(ids::cache_key_id("acls", &[&consumer_key, &a.group]));
                }
                acl_keys.push(Sp::new(
                    format!("{}:{}", consumer_ids[i], group.value),
                    group.span,
                ));
                target.acls.push(a);
            }
        }
    }
    unique(d, "keyauth_credentials", "key", keyauth_keys.iter());
    unique(d, "basicauth_credentials", "username", basic_users.iter());
    unique(d, "jwt_secrets", "key", jwt_keys.iter());
    unique(d, "acls", "consumer and group", acl_keys.iter());

    // Plugins: scope, id, one instance per (name, route, service, consumer).
    let service_ids: Vec<String> = cx.services.iter().map(|s| s.ir.id.clone()).collect();
    let route_ids: Vec<String> = cx.routes.iter().map(|r| r.ir.id.clone()).collect();
    let mut plugins = Vec::new();
    let mut seen: BTreeMap<PluginKey, Span> = BTreeMap::new();
    for p in &cx.plugins {
        let route = routes.resolve(d, "route", &p.route);
        let service = services.resolve(d, "service", &p.service);
        let consumer = consumers.resolve(d, "consumer", &p.consumer);
        let unresolved = [
            (&p.route, route),
            (&p.service, service),
            (&p.consumer, consumer),
        ]
        .iter()
        .any(|(parent, r)| **parent != Parent::None && r.is_none());
        if unresolved {
            continue;
        }
        let key = (p.name.value.clone(), route, service, consumer);
        if let Some(first) = seen.get(&key) {
            d.push(
                Diagnostic::error("K0602", p.origin, format!("plugin '{}' is configured twice for the same scope", p.name.value))
                    .label("second instance")
                    .secondary(*first, "first instance")
                    .help("Kong allows one instance per plugin name and route/service/consumer; merge the two configs or scope them differently"),
            );
            continue;
        }
        seen.insert(key, p.origin);
        let id = match &p.id {
            Some(id) => id.value.clone(),
            None => ids::cache_key_id(
                "plugins",
                &[
                    &p.name.value,
                    &ref_key(&p.route, &route_ids),
                    &ref_key(&p.service, &service_ids),
                    &ref_key(&p.consumer, &consumer_ids),
                ],
            ),
        };
        if !p.enabled {
            continue;
        }
        let mut config = p.config.clone();
        for r in config.consumer_refs_mut() {
            let written = Parent::Ref(Sp {
                value: r.written.clone(),
                span: r.span,
            });
            r.resolved = consumers
                .resolve(d, "anonymous", &written)
                .map(|i| ConsumerId(i as u32));
        }
        plugins.push(ir::PluginInstance {
            id,
            instance_name: p.instance_name.as_ref().map(|n| n.value.clone()),
            scope: Scope {
                route: route.map(|i| RouteId(i as u32)),
                service: service.map(|i| ServiceId(i as u32)),
                consumer: consumer.map(|i| ConsumerId(i as u32)),
            },
            config,
            protocols: p.protocols.clone(),
            origin: p.origin,
        });
    }
    let consumer_irs: Vec<ir::Consumer> = cx.consumers.iter().map(|c| c.ir.clone()).collect();
    for p in &plugins {
        if let ir::PluginConfig::Acl(acl) = &p.config {
            super::plugin::acl::check_groups_known(acl, &consumer_irs, d);
        }
    }

    if d.has_errors() {
        return None;
    }

    // Routes of disabled services leave the router (Kong), and with them the plugins
    // scoped to those routes.
    let mut route_map: Vec<Option<RouteId>> = Vec::with_capacity(cx.routes.len());
    let mut kept = Vec::new();
    for r in &cx.routes {
        let disabled =
            r.ir.service
                .and_then(|s| cx.services.get(s.index()))
                .filter(|s| !s.ir.enabled);
        if let Some(s) = disabled {
            d.push(
                Diagnostic::warning(
                    "K0314",
                    r.ir.origin,
                    "route of a disabled service is left out of the router",
                )
                .label("never matched")
                .secondary(s.ir.origin, "this service has `enabled: false`")
                .help("remove the route, or enable its service"),
            );
            route_map.push(None);
        } else {
            route_map.push(Some(RouteId(kept.len() as u32)));
            kept.push(r.ir.clone());
        }
    }
    let plugins = plugins
        .into_iter()
        .filter_map(|mut p| {
            if let Some(r) = p.scope.route {
                match route_map.get(r.index()).copied().flatten() {
                    Some(new) => p.scope.route = Some(new),
                    None => {
                        d.push(
                            Diagnostic::warning(
                                "K0315",
                                p.origin,
                                format!(
                                    "plugin '{}' is dropped: its route is left out of the router",
                                    p.name()
                                ),
                            )
                            .label("never runs")
                            .help("its route belongs to a disabled service"),
                        );
                        return None;
                    }
                }
            }
            Some(p)
        })
        .collect();

    Some(ir::Config {
        services: cx.services.iter().map(|s| s.ir.clone()).collect(),
        routes: kept,
        upstreams: cx.upstreams.iter().map(|u| u.ir.clone()).collect(),
        consumers: cx.consumers.iter().map(|c| c.ir.clone()).collect(),
        plugins,
    })
}
