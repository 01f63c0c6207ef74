//! Per-route plugin chains with Kong's precedence resolved at build time
//! (kong-compat.md §3.1, §3.3).
//!
//! For each plugin name exactly one instance runs on a request: the first that exists of
//! route+service+consumer, route+consumer, service+consumer, route+service, consumer, route,
//! service, global. The consumer is only known once an authentication plugin has run; Kiln
//! has no authentication plugin yet, so no consumer is ever identified and the
//! consumer-scoped levels never apply (a warning says so for every such instance).

use std::collections::BTreeMap;

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::{self, PluginId, RouteId, ServiceId},
};

/// The instances that run on one route, in execution order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    pub plugins: Vec<PluginId>,
}

/// Precedence level of an instance for a route, lower wins; `None` if it doesn't apply.
fn level(scope: &ir::Scope, route: RouteId, service: Option<ServiceId>) -> Option<u8> {
    if scope.consumer.is_some() {
        return None;
    }
    let on_route = scope.route == Some(route);
    let on_service = scope.service.is_some() && scope.service == service;
    match (scope.route, scope.service) {
        (Some(_), Some(_)) if on_route && on_service => Some(4),
        (Some(_), None) if on_route => Some(6),
        (None, Some(_)) if on_service => Some(7),
        (None, None) => Some(8),
        _ => None,
    }
}

pub fn plan_chains(config: &ir::Config, diags: &mut Diagnostics) -> Vec<Chain> {
    for p in &config.plugins {
        if let Some(c) = p.scope.consumer {
            let who = config.consumers[c.index()]
                .username
                .clone()
                .or_else(|| config.consumers[c.index()].custom_id.clone())
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
                    "a consumer is only known after an authentication plugin has run, and \
                     this config has none that Kiln supports yet",
                ),
            );
        }
    }
    config
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| chain_for(config, RouteId(i as u32), r.service))
        .collect()
}

fn chain_for(config: &ir::Config, route: RouteId, service: Option<ServiceId>) -> Chain {
    let mut best: BTreeMap<&'static str, (u8, PluginId)> = BTreeMap::new();
    for (i, p) in config.plugins.iter().enumerate() {
        let Some(lvl) = level(&p.scope, route, service) else {
            continue;
        };
        let id = PluginId(i as u32);
        best.entry(p.name())
            .and_modify(|cur| {
                if lvl < cur.0 {
                    *cur = (lvl, id);
                }
            })
            .or_insert((lvl, id));
    }
    let mut plugins: Vec<PluginId> = best.into_values().map(|(_, id)| id).collect();
    // Higher priority first; equal priorities by name, descending (Kong's sort).
    plugins.sort_by(|a, b| {
        let (pa, pb) = (
            &config.plugins[a.index()].config,
            &config.plugins[b.index()].config,
        );
        pb.priority()
            .cmp(&pa.priority())
            .then_with(|| pb.name().cmp(pa.name()))
    });
    Chain { plugins }
}
