//! One arm per plugin: its runtime type and the config literal its constructor takes.

use proc_macro2::TokenStream;
use quote::quote;

use crate::{
    emit::SourceInfo,
    ir::{self, CorrelationGenerator, PluginConfig, PluginId},
};

fn opt_str(s: Option<&str>) -> TokenStream {
    match s {
        Some(s) => quote!(rt::Some(#s)),
        None => quote!(rt::None),
    }
}

pub fn plugin_type(c: &PluginConfig) -> TokenStream {
    match c {
        PluginConfig::CorrelationId(_) => quote!(rt::plugins::correlation_id::CorrelationId),
        PluginConfig::RequestTermination(_) => {
            quote!(rt::plugins::request_termination::RequestTermination)
        }
        PluginConfig::Jwt(_) => quote!(rt::plugins::jwt::Jwt),
    }
}

/// The constructor call for one instance (`?` on start-up errors). `config` gives access to
/// consumers (anonymous), `source` to the salt and origins of secrets.
pub fn plugin_ctor(config: &ir::Config, c: &PluginConfig, source: &SourceInfo) -> TokenStream {
    let _ = (config, source);
    match c {
        PluginConfig::CorrelationId(c) => {
            let header_name = &c.header_name;
            let generator = match c.generator {
                CorrelationGenerator::Uuid => quote!(Uuid),
                CorrelationGenerator::UuidCounter => quote!(UuidCounter),
                CorrelationGenerator::Tracker => quote!(Tracker),
            };
            let echo = c.echo_downstream;
            quote! {
                rt::plugins::correlation_id::CorrelationId::new(rt::plugins::correlation_id::Config {
                    header_name: #header_name,
                    generator: rt::plugins::correlation_id::Generator::#generator,
                    echo_downstream: #echo,
                })?
            }
        }
        PluginConfig::RequestTermination(c) => {
            let status = crate::emit::num(c.status_code);
            let message = opt_str(c.message.as_deref());
            let body = opt_str(c.body.as_deref());
            let content_type = opt_str(c.content_type.as_deref());
            let echo = c.echo;
            let trigger = opt_str(c.trigger.as_deref());
            quote! {
                rt::plugins::request_termination::RequestTermination::new(
                    rt::plugins::request_termination::Config {
                        status_code: #status,
                        message: #message,
                        body: #body,
                        content_type: #content_type,
                        echo: #echo,
                        trigger: #trigger,
                    },
                )?
            }
        }
        PluginConfig::Jwt(j) => {
            let uri = &j.uri_param_names;
            let cookies = &j.cookie_names;
            let headers = &j.header_names;
            let claims = j.claims_to_verify.iter().map(|c| match c {
                ir::JwtClaim::Exp => quote!(rt::plugins::jwt::Claim::Exp),
                ir::JwtClaim::Nbf => quote!(rt::plugins::jwt::Claim::Nbf),
            });
            let key_claim = &j.key_claim_name;
            let b64 = j.secret_is_base64;
            let max = crate::emit::num(j.maximum_expiration);
            let anonymous = match j.anonymous.as_ref().and_then(|a| a.resolved) {
                Some(c) => {
                    let c = crate::emit::num(c.0);
                    quote!(rt::Some(#c))
                }
                None => quote!(rt::None),
            };
            let preflight = j.run_on_preflight;
            let realm = opt_str(j.realm.as_deref());
            quote! {
                rt::plugins::jwt::Jwt::new(rt::plugins::jwt::Config {
                    uri_param_names: &[#(#uri),*],
                    cookie_names: &[#(#cookies),*],
                    header_names: &[#(#headers),*],
                    claims_to_verify: &[#(#claims),*],
                    key_claim_name: #key_claim,
                    secret_is_base64: #b64,
                    maximum_expiration: #max,
                    anonymous: #anonymous,
                    run_on_preflight: #preflight,
                    realm: #realm,
                    consumers: &CONSUMERS,
                    secrets: &JWT_SECRETS,
                })?
            }
        }
    }
}

/// `correlation-id` on service `users` (kong.yml:12:9)
pub fn describe(config: &ir::Config, p: PluginId) -> String {
    let inst = &config.plugins[p.index()];
    let scope = match (inst.scope.route, inst.scope.service) {
        (Some(r), _) => {
            let r = &config.routes[r.index()];
            format!("route `{}`", r.name.as_deref().unwrap_or(&r.id))
        }
        (None, Some(s)) => {
            let s = &config.services[s.index()];
            format!("service `{}`", s.name.as_deref().unwrap_or(&s.id))
        }
        (None, None) => "global".to_string(),
    };
    format!("`{}` ({scope}, line {})", inst.name(), inst.origin.line)
}
