//! The gateway type: plugin instances as fields, `init`, and one straight-line function per
//! distinct (plugin chain, service) pair that calls the plugins in order.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::{
    emit::{num, plugins, SourceInfo},
    ir::{self, PluginId, ServiceId},
    plan::{Chain, Plan, Step},
};

fn field(p: PluginId) -> Ident {
    format_ident!("p{}", p.0)
}

/// `match cx.auth.consumer { Some(3) => 1, Some(5) => 2, _ => 0 }`: which alternative of a
/// per-consumer step applies (0 = the step's default instance).
fn select(step: &Step) -> TokenStream {
    let arms = step.by_consumer.iter().enumerate().map(|(k, (c, _))| {
        let c = num(c.0);
        let k = num(k as u64 + 1);
        quote!(rt::Some(#c) => #k,)
    });
    quote!(match cx.auth.consumer { #(#arms)* _ => 0 })
}

/// Runs alternative `k` (a `u32` already bound) of `step` through `call`, as an `if` chain
/// (a `match` with an empty default arm is clippy's `single_match`).
fn dispatch(step: &Step, call: impl Fn(PluginId) -> TokenStream) -> TokenStream {
    let arms: Vec<TokenStream> = step
        .by_consumer
        .iter()
        .enumerate()
        .map(|(k, (_, p))| {
            let k = num(k as u64 + 1);
            let body = call(*p);
            quote!(if k == #k { #body })
        })
        .collect();
    match step.default.map(&call) {
        Some(default) => quote!(#(#arms)else* else { #default }),
        None => quote!(#(#arms)else*),
    }
}

fn step_access(i: usize, step: &Step) -> TokenStream {
    let call = |p: PluginId| {
        let f = field(p);
        quote! {
            if let rt::ControlFlow::Break(resp) = rt::Plugin::access(&self.#f, cx, req).await {
                break 'access resp;
            }
        }
    };
    if step.by_consumer.is_empty() {
        return step.default.map(call).unwrap_or_default();
    }
    let sel = format_ident!("sel_{}", i);
    let choose = select(step);
    let run = dispatch(step, call);
    quote! {
        let k: u32 = #choose;
        #sel = rt::Some(k);
        #run
    }
}

fn step_header_filter(i: usize, step: &Step) -> TokenStream {
    let call = |p: PluginId| {
        let f = field(p);
        quote!(rt::header_filter(&self.#f, cx, &mut resp);)
    };
    if step.by_consumer.is_empty() {
        return step.default.map(call).unwrap_or_default();
    }
    // The instance access chose; if access ended before this step, the one the consumer
    // known now selects (Kong resolves a plugin's config when its iterator reaches it).
    let sel = format_ident!("sel_{}", i);
    let choose = select(step);
    let run = dispatch(step, call);
    quote! {
        let k: u32 = #sel.unwrap_or(#choose);
        #run
    }
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
    let mut chains: Vec<(&Chain, Option<ServiceId>, Vec<usize>)> = Vec::new();
    for (ri, r) in config.routes.iter().enumerate() {
        let chain = &plan.chains[ri];
        match chains
            .iter_mut()
            .find(|(c, s, _)| *c == chain && *s == r.service)
        {
            Some(entry) => entry.2.push(ri),
            None => chains.push((chain, r.service, vec![ri])),
        }
    }

    let mut used: Vec<PluginId> = chains
        .iter()
        .flat_map(|c| c.0.steps.iter().flat_map(|s| s.instances()))
        .collect();
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
        let ctor = plugins::plugin_ctor(config, &config.plugins[p.index()], source);
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

    let chain_fns = chains
        .iter()
        .enumerate()
        .map(|(n, (chain, service, routes))| {
            let name = format_ident!("chain_{}", n);
            let route_names: Vec<String> =
                routes.iter().map(|&r| describe_route(config, r)).collect();
            let steps: Vec<String> = chain
                .steps
                .iter()
                .map(|s| {
                    if s.by_consumer.is_empty() {
                        s.name.to_string()
                    } else {
                        format!("{} (per consumer)", s.name)
                    }
                })
                .chain(std::iter::once(match service {
                    Some(s) => {
                        let svc = &config.services[s.index()];
                        format!("proxy to `{}`", svc.name.as_deref().unwrap_or(&svc.id))
                    }
                    None => "503: no service".to_string(),
                }))
                .collect();
            let doc = format!("Routes {}: {}.", route_names.join(", "), steps.join(" → "));
            let end = match service {
                Some(s) => {
                    let s = num(s.0);
                    quote!(rt::proxy(&self.upstreams[#s], cx, req).await)
                }
                None => quote!(rt::no_service(cx, req.headers())),
            };
            if chain.steps.is_empty() {
                return quote! {
                    #[doc = #doc]
                    async fn #name(&self, cx: &mut rt::Ctx, req: &mut rt::Request) -> rt::Response {
                        #end
                    }
                };
            }
            let selectors = chain
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.by_consumer.is_empty())
                .map(|(i, _)| {
                    let sel = format_ident!("sel_{}", i);
                    if i == 0 {
                        // The chain's first step: access always sets it before any `break`,
                        // and rustc sees the initial `None` as never read.
                        quote!(#[allow(unused_assignments)] let mut #sel: rt::Option<u32> = rt::None;)
                    } else {
                        quote!(let mut #sel: rt::Option<u32> = rt::None;)
                    }
                });
            let access = chain
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| step_access(i, s));
            let header_filters = chain
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| step_header_filter(i, s));
            quote! {
                #[doc = #doc]
                async fn #name(&self, cx: &mut rt::Ctx, req: &mut rt::Request) -> rt::Response {
                    #(#selectors)*
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

            fn consumers(&self) -> &'static [rt::ConsumerSpec] {
                &CONSUMERS
            }

            async fn handle(&self, route: u32, cx: &mut rt::Ctx, req: &mut rt::Request) -> rt::Response {
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
