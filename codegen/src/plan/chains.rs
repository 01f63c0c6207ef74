//! Per-route plugin chains with Kong's precedence resolved at build time
//! (kong-compat.md §3.1, §3.3).
//!
//! For each plugin name exactly one instance runs on a request: the first that exists of
//! route+service+consumer, route+consumer, service+consumer, route+service, consumer, route,
//! service, global — where the consumer is the one authenticated *when the plugin is
//! reached*. Everything but the consumer is known at build time, so each [`Step`] holds the
//! instance used without a consumer and, per consumer, the instance that replaces it; the
//! generated chain picks among them with a `match` on the consumer index.

use std::collections::BTreeMap;

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::{self, ConsumerId, PluginId, RouteId, ServiceId},
};

/// One plugin name on one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: &'static str,
    pub priority: i32,
    /// The instance that runs when no consumer (or a consumer without an override) is
    /// authenticated; `None` when only consumer-scoped instances apply.
    pub default: Option<PluginId>,
    /// Consumers for which another instance runs, ascending by consumer.
    pub by_consumer: Vec<(ConsumerId, PluginId)>,
}

impl Step {
    /// Every instance this step may run.
    pub fn instances(&self) -> impl Iterator<Item = PluginId> + '_ {
        self.default
            .into_iter()
            .chain(self.by_consumer.iter().map(|(_, p)| *p))
    }
}

/// The steps that run on one route, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    pub steps: Vec<Step>,
}

impl Chain {
    /// Plugin names in execution order.
    pub fn names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.name).collect()
    }
}

/// Precedence level of an instance for a route and (maybe) a consumer, lower wins; `None`
/// if it doesn't apply.
fn level(
    scope: &ir::Scope,
    route: RouteId,
    service: Option<ServiceId>,
    consumer: Option<ConsumerId>,
) -> Option<u8> {
    let on_route = scope.route == Some(route);
    let on_service = scope.service.is_some() && scope.service == service;
    match (scope.route, scope.service, scope.consumer) {
        (_, _, Some(c)) if Some(c) != consumer => None,
        (Some(_), Some(_), Some(_)) if on_route && on_service => Some(1),
        (Some(_), None, Some(_)) if on_route => Some(2),
        (None, Some(_), Some(_)) if on_service => Some(3),
        (Some(_), Some(_), None) if on_route && on_service => Some(4),
        (None, None, Some(_)) => Some(5),
        (Some(_), None, None) if on_route => Some(6),
        (None, Some(_), None) if on_service => Some(7),
        (None, None, None) => Some(8),
        _ => None,
    }
}

fn best(
    config: &ir::Config,
    name: &str,
    route: RouteId,
    service: Option<ServiceId>,
    consumer: Option<ConsumerId>,
) -> Option<PluginId> {
    config
        .plugins
        .iter()
        .enumerate()
        .filter(|(_, p)| p.name() == name)
        .filter_map(|(i, p)| level(&p.scope, route, service, consumer).map(|l| (l, i)))
        .min()
        .map(|(_, i)| PluginId(i as u32))
}

fn chain_for(config: &ir::Config, route: RouteId, service: Option<ServiceId>) -> Chain {
    // Plugin names with any instance that can apply to this route.
    let mut names: BTreeMap<&'static str, i32> = BTreeMap::new();
    for p in &config.plugins {
        let applies = (0..config.consumers.len())
            .map(|c| Some(ConsumerId(c as u32)))
            .chain(std::iter::once(None))
            .any(|c| level(&p.scope, route, service, c).is_some());
        if applies {
            names.insert(p.name(), p.config.priority());
        }
    }
    let mut steps: Vec<Step> = names
        .into_iter()
        .map(|(name, priority)| {
            let default = best(config, name, route, service, None);
            let mut by_consumer = Vec::new();
            for c in 0..config.consumers.len() {
                let c = ConsumerId(c as u32);
                let has_own = config
                    .plugins
                    .iter()
                    .any(|p| p.name() == name && p.scope.consumer == Some(c));
                if !has_own {
                    continue;
                }
                if let Some(p) = best(config, name, route, service, Some(c)) {
                    if Some(p) != default {
                        by_consumer.push((c, p));
                    }
                }
            }
            Step {
                name,
                priority,
                default,
                by_consumer,
            }
        })
        .filter(|s| s.default.is_some() || !s.by_consumer.is_empty())
        .collect();
    // Higher priority first; equal priorities by name, descending (Kong's sort).
    steps.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| b.name.cmp(a.name)));
    Chain { steps }
}

pub fn plan_chains(config: &ir::Config, diags: &mut Diagnostics) -> Vec<Chain> {
    let chains: Vec<Chain> = config
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| chain_for(config, RouteId(i as u32), r.service))
        .collect();
    // A consumer-scoped instance runs only where an authentication plugin runs before it.
    for (pi, p) in config.plugins.iter().enumerate() {
        let Some(c) = p.scope.consumer else { continue };
        let pid = PluginId(pi as u32);
        let reachable = chains.iter().any(|ch| {
            let selected = ch
                .steps
                .iter()
                .any(|s| s.by_consumer.iter().any(|(_, q)| *q == pid));
            let auth_before = ch.steps.iter().any(|s| {
                s.priority > p.config.priority()
                    && s.instances()
                        .any(|q| config.plugins[q.index()].config.is_authentication())
            });
            selected && auth_before
        });
        if !reachable {
            let consumer = &config.consumers[c.index()];
            let who = consumer
                .username
                .clone()
                .or_else(|| consumer.custom_id.clone())
                .unwrap_or_default();
            diags.push(
                Diagnostic::warning(
                    "K1002",
                    p.origin,
                    format!(
                        "plugin '{}' scoped to consumer '{who}' never runs",
                        p.name()
                    ),
                )
                .label("consumer-scoped")
                .help(
                    "a consumer is only known after an authentication plugin (key-auth, jwt, \
                     basic-auth) has run; add one that runs before this plugin on the routes \
                     it should apply to",
                ),
            );
        }
    }
    chains
}
