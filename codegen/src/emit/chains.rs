//! The gateway type: plugin instances as fields, `init`, and one straight-line function per
//! distinct (plugin chain, service) pair that calls the plugins in order.

use std::collections::BTreeMap;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::{
    emit::{num, plugins, SourceInfo},
    ir::{self, PluginId, ServiceId},
    plan::Plan,
};

fn field(p: PluginId) -> Ident {
    format_ident!("p{}", p.0)
}

fn describe_route(config: &ir::Config, i: usize) -> String {
    let r = &config.routes[i];
    match &r.name {
        Some(n) => format!("`{n}`"),
        None => format!("`{}`", r.id),
    }
}

/// Ascending indices as inclusive runs: `[0, 1, 2, 5]` → `[(0, 2), (5, 5)]`.
fn runs(sorted: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in sorted {
        match out.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => out.push((i, i)),
        }
    }
    out
}

pub fn emit_gateway_type(config: &ir::Config, plan: &Plan, source: &SourceInfo) -> TokenStream {
    // Distinct chains, in order of first use.
    let mut chain_of_route = Vec::with_capacity(config.routes.len());
    let mut chains: Vec<(Vec<PluginId>, Option<ServiceId>, Vec<usize>)> = Vec::new();
    let mut index: BTreeMap<(Vec<PluginId>, Option<ServiceId>), usize> = BTreeMap::new();
    for (ri, r) in config.routes.iter().enumerate() {
        let key = (plan.chains[ri].plugins.clone(), r.service);
        let n = *index.entry(key.clone()).or_insert_with(|| {
            chains.push((key.0, key.1, Vec::new()));
            chains.len() - 1
        });
        chains[n].2.push(ri);
        chain_of_route.push(n);
    }

    let mut used: Vec<PluginId> = chains.iter().flat_map(|c| c.0.iter().copied()).collect();
    used.sort();
    used.dedup();
    let fields = used.iter().map(|&p| {
        let f = field(p);
        let ty = plugins::plugin_type(&config.plugins[p.index()].config);
        let doc = plugins::describe(config, p);
        quote!(#[doc = #doc] #f: #ty)
    });
    let inits = used.iter().map(|&p| {
        let f = field(p);
        let ctor = plugins::plugin_ctor(&config.plugins[p.index()].config);
        quote!(#f: #ctor)
    });
    let nservices = num(config.services.len() as u64);
    let upstream_inits = (0..config.services.len() as u64).map(|i| {
        let i = num(i);
        quote!(rt::Upstream::new(&SERVICES[#i])?)
    });
    // A gateway without services has no upstream pools (and no field to leave unread).
    let (upstreams_field, upstreams_init) = if config.services.is_empty() {
        (quote!(), quote!())
    } else {
        (
            quote!(upstreams: [rt::Upstream; #nservices],),
            quote!(upstreams: [#(#upstream_inits),*],),
        )
    };

    let chain_fns = chains.iter().enumerate().map(|(n, (plugins, service, routes))| {
        let name = format_ident!("chain_{}", n);
        let route_names: Vec<String> = routes.iter().map(|&r| describe_route(config, r)).collect();
        let steps: Vec<String> = plugins
            .iter()
            .map(|p| config.plugins[p.index()].name().to_string())
            .chain(std::iter::once(match service {
                Some(s) => {
                    let svc = &config.services[s.index()];
                    format!("proxy to `{}`", svc.name.as_deref().unwrap_or(&svc.id))
                }
                None => "503: no service".to_string(),
            }))
            .collect();
        let doc = format!("Routes {}: {}.", route_names.join(", "), steps.join(" → "));
        let access = plugins.iter().map(|&p| {
            let f = field(p);
            quote! {
                if let rt::ControlFlow::Break(resp) = rt::Plugin::access(&self.#f, cx, &mut req).await {
                    break 'access resp;
                }
            }
        });
        let end = match service {
            Some(s) => {
                let s = num(s.0);
                quote!(rt::proxy(&self.upstreams[#s], cx, req).await)
            }
            None => quote!(rt::no_service(cx, req.headers())),
        };
        let header_filters = plugins.iter().map(|&p| {
            let f = field(p);
            quote!(rt::Plugin::header_filter(&self.#f, cx, &mut resp);)
        });
        if plugins.is_empty() {
            return quote! {
                #[doc = #doc]
                async fn #name(&self, cx: &mut rt::Ctx, req: rt::Request) -> rt::Response {
                    #end
                }
            };
        }
        quote! {
            #[doc = #doc]
            async fn #name(&self, cx: &mut rt::Ctx, mut req: rt::Request) -> rt::Response {
                let mut resp = 'access: {
                    #(#access)*
                    #end
                };
                #(#header_filters)*
                resp
            }
        }
    });

    // Dispatch: routes grouped by chain.
    let arms = chains.iter().enumerate().map(|(n, (_, _, routes))| {
        let name = format_ident!("chain_{}", n);
        let pats = runs(routes).into_iter().map(|(a, b)| {
            let (la, lb) = (num(a as u64), num(b as u64));
            if a == b {
                quote!(#la)
            } else {
                quote!(#la..=#lb)
            }
        });
        quote!(#(#pats)|* => self.#name(cx, req).await,)
    });

    let src = &source.name;
    let sha = &source.sha256;
    let version = kiln_runtime::VERSION;
    let gw = Ident::new("Gateway", Span::call_site());
    quote! {
        /// The gateway compiled from the config.
        pub struct #gw {
            router: rt::Router,
            #upstreams_field
            #(#fields,)*
        }

        impl rt::Gateway for #gw {
            const INFO: rt::BuildInfo = rt::BuildInfo {
                source: #src,
                config_sha256: #sha,
                kiln_version: #version,
            };

            fn init() -> rt::Result<Self, rt::StartupError> {
                rt::Ok(#gw {
                    router: rt::Router::new(&TABLES)?,
                    #upstreams_init
                    #(#inits,)*
                })
            }

            fn route(&self, req: &rt::RouteRequest<'_>) -> rt::Option<rt::MatchInfo> {
                self.router.find(req)
            }

            fn routes(&self) -> &'static [rt::RouteSpec] {
                &ROUTES
            }

            fn services(&self) -> &'static [rt::ServiceSpec] {
                &SERVICES
            }

            async fn handle(&self, route: u32, cx: &mut rt::Ctx, req: rt::Request) -> rt::Response {
                match route {
                    #(#arms)*
                    _ => rt::unknown_route(cx, req.headers()),
                }
            }
        }

        impl #gw {
            #(#chain_fns)*
        }
    }
}
