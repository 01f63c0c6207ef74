//! Static data: `ROUTES`, `SERVICES` and the router tables.

use proc_macro2::TokenStream;
use quote::quote;

use crate::{
    emit::{num, nums},
    ir::{self, HeaderValue, HostPattern},
    plan::{Plan, SubPaths},
};

fn opt_str(s: Option<&str>) -> TokenStream {
    match s {
        Some(s) => quote!(rt::Some(#s)),
        None => quote!(rt::None),
    }
}

fn opt_u16(p: Option<u16>) -> TokenStream {
    match p {
        Some(p) => {
            let p = num(p);
            quote!(rt::Some(#p))
        }
        None => quote!(rt::None),
    }
}

fn route_spec(r: &ir::Route) -> TokenStream {
    let id = &r.id;
    let name = opt_str(r.name.as_deref());
    let service = match r.service {
        Some(s) => {
            let s = num(s.0);
            quote!(rt::Some(#s))
        }
        None => quote!(rt::None),
    };
    let strip_path = r.strip_path;
    let preserve_host = r.preserve_host;
    let https_only =
        r.protocols.contains(&ir::Protocol::Https) && !r.protocols.contains(&ir::Protocol::Http);
    let code = num(r.https_redirect_status_code);
    let reqb = r.request_buffering;
    let respb = r.response_buffering;
    quote! {
        rt::RouteSpec {
            id: #id,
            name: #name,
            service: #service,
            strip_path: #strip_path,
            preserve_host: #preserve_host,
            https_only: #https_only,
            https_redirect_status_code: #code,
            request_buffering: #reqb,
            response_buffering: #respb,
        }
    }
}

fn service_spec(config: &ir::Config, s: &ir::Service) -> TokenStream {
    let id = &s.id;
    let name = opt_str(s.name.as_deref());
    let protocol = s.protocol.as_str();
    let host = &s.host;
    let port = num(s.port);
    let path = opt_str(s.path.as_deref());
    let retries = num(s.retries);
    let (ct, wt, rt_) = (
        num(s.connect_timeout_ms),
        num(s.write_timeout_ms),
        num(s.read_timeout_ms),
    );
    let (targets, host_header) = match s.upstream {
        Some(u) => {
            let up = &config.upstreams[u.index()];
            let ts = up.targets.iter().filter(|t| t.weight > 0).map(|t| {
                let (h, p, w) = (&t.host, num(t.port), num(t.weight));
                quote!(rt::TargetSpec { host: #h, port: #p, weight: #w })
            });
            (quote!(&[#(#ts),*]), opt_str(up.host_header.as_deref()))
        }
        None => (
            quote!(&[rt::TargetSpec { host: #host, port: #port, weight: 100 }]),
            quote!(rt::None),
        ),
    };
    quote! {
        rt::ServiceSpec {
            id: #id,
            name: #name,
            protocol: #protocol,
            host: #host,
            port: #port,
            path: #path,
            retries: #retries,
            connect_timeout_ms: #ct,
            write_timeout_ms: #wt,
            read_timeout_ms: #rt_,
            targets: #targets,
            host_header: #host_header,
        }
    }
}

fn host_match(h: &HostPattern) -> TokenStream {
    match h {
        HostPattern::Exact { host, port } => {
            let port = opt_u16(*port);
            quote!(rt::HostMatch::Exact { host: #host, port: #port })
        }
        HostPattern::Suffix { suffix, port } => {
            let port = opt_u16(*port);
            quote!(rt::HostMatch::Suffix { suffix: #suffix, port: #port })
        }
        HostPattern::Prefix { prefix, port } => {
            let port = opt_u16(*port);
            quote!(rt::HostMatch::Prefix { prefix: #prefix, port: #port })
        }
    }
}

fn sub_route(plan: &Plan, sr: &crate::plan::SubRoute) -> TokenStream {
    let route = num(sr.route.0);
    let hosts = sr.hosts.iter().map(host_match);
    let methods = &sr.methods;
    let headers = sr.headers.iter().map(|h| {
        let name = &h.name;
        let values = h.values.iter().map(|v| match v {
            HeaderValue::Exact(s) => quote!(rt::HeaderValueMatch::Exact(#s)),
            HeaderValue::Regex(r) => {
                let i = num(plan.regex_index(r));
                quote!(rt::HeaderValueMatch::Regex(#i))
            }
        });
        quote!(rt::HeaderMatch { name: #name, values: &[#(#values),*] })
    });
    let paths = match &sr.paths {
        SubPaths::Any => quote!(rt::PathMatch::Any),
        SubPaths::Prefix(ps) => quote!(rt::PathMatch::Prefix(&[#(#ps),*])),
        SubPaths::Regex(rs) => {
            let idx = rs.iter().map(|r| num(plan.regex_index(r)));
            quote!(rt::PathMatch::Regex(&[#(#idx),*]))
        }
    };
    quote! {
        rt::SubRoute {
            route: #route,
            hosts: &[#(#hosts),*],
            methods: &[#(#methods),*],
            headers: &[#(#headers),*],
            paths: #paths,
        }
    }
}

/// A perfect-hash layout for the exact-host table, computed now.
fn exact_hosts(plan: &Plan) -> TokenStream {
    let keys: Vec<&str> = plan.exact_hosts.keys().map(String::as_str).collect();
    let layout = kiln_runtime::phf::build(&keys).unwrap_or_else(|e| {
        // Keys come from a BTreeMap, so they are distinct: this cannot happen.
        panic!("perfect hash over distinct keys failed: {e}")
    });
    let seed = num(layout.seed);
    let disps = nums(&layout.disps);
    let slot_keys = layout.slots.iter().map(|&k| keys[k]);
    let slot_values = layout.slots.iter().map(|&k| {
        let ranks = nums(&plan.exact_hosts[keys[k]]);
        quote!(&[#(#ranks),*])
    });
    quote! {
        rt::PhfMap {
            seed: #seed,
            disps: &[#(#disps),*],
            keys: &[#(#slot_keys),*],
            values: &[#(#slot_values),*],
        }
    }
}

pub fn emit_tables(config: &ir::Config, plan: &Plan) -> TokenStream {
    let routes = config.routes.iter().map(route_spec);
    let services = config.services.iter().map(|s| service_spec(config, s));
    let subs = plan.sub_routes.iter().map(|sr| sub_route(plan, sr));
    let exact = exact_hosts(plan);
    let other = nums(&plan.other);
    let regexes = &plan.regexes;
    let consumers = config.consumers.iter().map(|c| {
        let id = &c.id;
        let username = opt_str(c.username.as_deref());
        let custom_id = opt_str(c.custom_id.as_deref());
        let groups = c.acls.iter().map(|a| &a.group);
        quote! {
            rt::ConsumerSpec {
                id: #id,
                username: #username,
                custom_id: #custom_id,
                groups: &[#(#groups),*],
            }
        }
    });
    let nconsumers = num(config.consumers.len() as u64);
    let nroutes = num(config.routes.len() as u64);
    let nservices = num(config.services.len() as u64);
    quote! {
        /// Routes, indexed by route number.
        static ROUTES: [rt::RouteSpec; #nroutes] = [#(#routes),*];

        /// Services, indexed by service number.
        static SERVICES: [rt::ServiceSpec; #nservices] = [#(#services),*];

        /// Consumers, indexed by consumer number (what authentication records).
        static CONSUMERS: [rt::ConsumerSpec; #nconsumers] = [#(#consumers),*];

        /// Sub-routes in Kong's priority order (`kiln routes` prints the same order).
        static TABLES: rt::RouterTables = rt::RouterTables {
            sub_routes: &[#(#subs),*],
            exact_hosts: #exact,
            other: &[#(#other),*],
            regexes: &[#(#regexes),*],
        };
    }
}
