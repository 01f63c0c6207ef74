//! One arm per plugin: its runtime type and the config literal its constructor takes.

use proc_macro2::TokenStream;
use quote::quote;

use crate::{
    emit::{secret, SourceInfo},
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
        PluginConfig::Acl(_) => quote!(rt::plugins::acl::Acl),
        PluginConfig::IpRestriction(_) => quote!(rt::plugins::ip_restriction::IpRestriction),
        PluginConfig::Cors(_) => quote!(rt::plugins::cors::Cors),
        PluginConfig::KeyAuth(_) => quote!(rt::plugins::key_auth::KeyAuth),
        PluginConfig::BasicAuth(_) => quote!(rt::plugins::basic_auth::BasicAuth),
        PluginConfig::RequestValidator(_) => {
            quote!(rt::plugins::request_validator::RequestValidator)
        }
        PluginConfig::RequestSizeLimiting(_) => {
            quote!(rt::plugins::request_size_limiting::RequestSizeLimiting)
        }
        PluginConfig::TokenBucket(_) => quote!(rt::plugins::token_bucket::TokenBucket),
        PluginConfig::ProxyCache(_) => quote!(rt::plugins::proxy_cache::ProxyCache),
        PluginConfig::RateLimiting(_) => quote!(rt::plugins::rate_limiting::RateLimiting),
    }
}

fn str_slice(items: &[String]) -> TokenStream {
    quote!(&[#(#items),*])
}

/// The constructor call for one instance (`?` on start-up errors). `config` gives access to
/// consumers (anonymous), `inst` to where the instance is attached, `source` to the salt
/// and origins of secrets.
pub fn plugin_ctor(
    config: &ir::Config,
    inst: &ir::PluginInstance,
    source: &SourceInfo,
) -> TokenStream {
    match &inst.config {
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
        PluginConfig::Acl(c) => {
            let groups = str_slice(&c.groups);
            let rule = if c.deny {
                quote!(Deny(#groups))
            } else {
                quote!(Allow(#groups))
            };
            let hide = c.hide_groups_header;
            let always = c.always_use_authenticated_groups;
            quote! {
                rt::plugins::acl::Acl::new(rt::plugins::acl::Config {
                    rule: rt::plugins::acl::Rule::#rule,
                    hide_groups_header: #hide,
                    always_use_authenticated_groups: #always,
                    consumers: &CONSUMERS,
                })?
            }
        }
        PluginConfig::IpRestriction(c) => {
            let allow = str_slice(&c.allow);
            let deny = str_slice(&c.deny);
            let status = match c.status {
                Some(s) => {
                    let s = crate::emit::num(s);
                    quote!(rt::Some(#s))
                }
                None => quote!(rt::None),
            };
            let message = opt_str(c.message.as_deref());
            quote! {
                rt::plugins::ip_restriction::IpRestriction::new(
                    rt::plugins::ip_restriction::Config {
                        allow: #allow,
                        deny: #deny,
                        status: #status,
                        message: #message,
                    },
                )?
            }
        }
        PluginConfig::Cors(c) => {
            let origins = str_slice(&c.origins);
            let headers = str_slice(&c.headers);
            let exposed = str_slice(&c.exposed_headers);
            let methods = str_slice(&c.methods);
            let max_age = match c.max_age {
                Some(m) => {
                    let m = proc_macro2::Literal::i64_unsuffixed(m);
                    quote!(rt::Some(#m))
                }
                None => quote!(rt::None),
            };
            let (credentials, private_network, preflight_continue, allow_origin_absent) = (
                c.credentials,
                c.private_network,
                c.preflight_continue,
                c.allow_origin_absent,
            );
            quote! {
                rt::plugins::cors::Cors::new(rt::plugins::cors::Config {
                    origins: #origins,
                    headers: #headers,
                    exposed_headers: #exposed,
                    methods: #methods,
                    max_age: #max_age,
                    credentials: #credentials,
                    private_network: #private_network,
                    preflight_continue: #preflight_continue,
                    allow_origin_absent: #allow_origin_absent,
                })?
            }
        }
        PluginConfig::KeyAuth(c) => key_auth(config, c, source),
        PluginConfig::BasicAuth(c) => basic_auth(config, c, source),
        PluginConfig::RateLimiting(c) => rate_limiting(config, inst, c, source),
        PluginConfig::ProxyCache(c) => proxy_cache(c),
        PluginConfig::RequestValidator(c) => request_validator(c),
        PluginConfig::RequestSizeLimiting(c) => {
            let size = crate::emit::num(c.allowed_payload_size);
            let unit = match c.size_unit {
                ir::RequestSizeUnit::Megabytes => quote!(Megabytes),
                ir::RequestSizeUnit::Kilobytes => quote!(Kilobytes),
                ir::RequestSizeUnit::Bytes => quote!(Bytes),
            };
            let require = c.require_content_length;
            quote! {
                rt::plugins::request_size_limiting::RequestSizeLimiting::new(
                    rt::plugins::request_size_limiting::Config {
                        allowed_payload_size: #size,
                        size_unit: rt::plugins::request_size_limiting::SizeUnit::#unit,
                        require_content_length: #require,
                    },
                )?
            }
        }
        PluginConfig::TokenBucket(c) => token_bucket(c),
    }
}

fn token_bucket(c: &ir::TokenBucket) -> TokenStream {
    let limit_by = match &c.limit_by {
        ir::TokenBucketLimitBy::Consumer => quote!(Consumer),
        ir::TokenBucketLimitBy::Credential => quote!(Credential),
        ir::TokenBucketLimitBy::Ip => quote!(Ip),
        ir::TokenBucketLimitBy::Service => quote!(Service),
        ir::TokenBucketLimitBy::Header(h) => quote!(Header(#h)),
        ir::TokenBucketLimitBy::Path(p) => quote!(Path(#p)),
    };
    let average = crate::emit::num(c.average);
    let period = crate::emit::num(c.period);
    let burst = crate::emit::num(c.burst);
    let max_keys = crate::emit::num(c.max_keys);
    let error_code = crate::emit::num(c.error_code);
    let error_message = &c.error_message;
    let hide = c.hide_client_headers;
    quote! {
        rt::plugins::token_bucket::TokenBucket::new(rt::plugins::token_bucket::Config {
            average: #average,
            period_secs: #period,
            burst: #burst,
            limit_by: rt::plugins::token_bucket::LimitBy::#limit_by,
            max_keys: #max_keys,
            error_code: #error_code,
            error_message: #error_message,
            hide_client_headers: #hide,
        })?
    }
}

/// The schema text goes in as written; the runtime compiles it once at start-up (lower
/// already compiled it, so that cannot fail).
fn request_validator(c: &ir::RequestValidator) -> TokenStream {
    use kiln_runtime::plugins::request_validator::Draft;
    let schema = &c.body_schema;
    let version = match c.version {
        Draft::Draft4 => quote!(Draft4),
        Draft::Draft6 => quote!(Draft6),
        Draft::Draft7 => quote!(Draft7),
        Draft::Draft201909 => quote!(Draft201909),
        Draft::Draft202012 => quote!(Draft202012),
    };
    let types = str_slice(&c.allowed_content_types);
    let params = c.content_type_parameter_validation;
    let verbose = c.verbose_response;
    quote! {
        rt::plugins::request_validator::RequestValidator::new(
            rt::plugins::request_validator::Config {
                body_schema: #schema,
                version: rt::plugins::request_validator::Draft::#version,
                allowed_content_types: #types,
                content_type_parameter_validation: #params,
                verbose_response: #verbose,
                max_body: rt::plugins::request_validator::DEFAULT_MAX_BODY,
            },
        )?
    }
}

/// rate-limiting, with the ids of the route and service the instance is attached to (Kong's
/// counter key; zeros when unscoped).
fn rate_limiting(
    config: &ir::Config,
    inst: &ir::PluginInstance,
    c: &ir::RateLimiting,
    source: &SourceInfo,
) -> TokenStream {
    const NO_ID: &str = "00000000-0000-0000-0000-000000000000";
    let route_id = inst
        .scope
        .route
        .map_or(NO_ID, |r| config.routes[r.index()].id.as_str());
    let service_id = inst
        .scope
        .service
        .map_or(NO_ID, |s| config.services[s.index()].id.as_str());
    let limits = c.limits.iter().map(|(p, l)| {
        let p = match p {
            ir::RateLimitPeriod::Second => quote!(Second),
            ir::RateLimitPeriod::Minute => quote!(Minute),
            ir::RateLimitPeriod::Hour => quote!(Hour),
            ir::RateLimitPeriod::Day => quote!(Day),
            ir::RateLimitPeriod::Month => quote!(Month),
            ir::RateLimitPeriod::Year => quote!(Year),
        };
        let l = crate::emit::num(*l);
        quote!((rt::plugins::rate_limiting::Period::#p, #l))
    });
    let limit_by = match &c.limit_by {
        ir::RateLimitBy::Consumer => quote!(Consumer),
        ir::RateLimitBy::Credential => quote!(Credential),
        ir::RateLimitBy::Ip => quote!(Ip),
        ir::RateLimitBy::Service => quote!(Service),
        ir::RateLimitBy::Header(h) => quote!(Header(#h)),
        ir::RateLimitBy::Path(p) => quote!(Path(#p)),
    };
    let policy = match &c.policy {
        ir::RateLimitPolicy::Local => quote!(rt::plugins::rate_limiting::Policy::Local),
        ir::RateLimitPolicy::Redis(r) => {
            let host = &r.host;
            let port = crate::emit::num(u64::from(r.port));
            let opt = |v: &Option<ir::SecretValue>| match v {
                Some(v) => {
                    let s = secret::secret(v, source);
                    quote!(rt::Some(#s))
                }
                None => quote!(rt::None),
            };
            let username = opt(&r.username);
            let password = opt(&r.password);
            let database = proc_macro2::Literal::i64_unsuffixed(r.database);
            let timeout = crate::emit::num(r.timeout_ms);
            quote! {
                rt::plugins::rate_limiting::Policy::Redis(rt::plugins::rate_limiting::RedisConfig {
                    host: #host,
                    port: #port,
                    username: #username,
                    password: #password,
                    database: #database,
                    timeout_ms: #timeout,
                })
            }
        }
    };
    let (fault_tolerant, hide) = (c.fault_tolerant, c.hide_client_headers);
    let error_code = crate::emit::num(u64::from(c.error_code));
    let error_message = &c.error_message;
    quote! {
        rt::plugins::rate_limiting::RateLimiting::new(rt::plugins::rate_limiting::Config {
            limits: &[#(#limits),*],
            limit_by: rt::plugins::rate_limiting::LimitBy::#limit_by,
            policy: #policy,
            fault_tolerant: #fault_tolerant,
            hide_client_headers: #hide,
            error_code: #error_code,
            error_message: #error_message,
            route_id: #route_id,
            service_id: #service_id,
            services: &SERVICES,
            consumers: &CONSUMERS,
        })?
    }
}

/// `rt::Some(<consumer index>)` for a resolved `anonymous`.
fn anonymous(a: &Option<ir::ConsumerRef>) -> TokenStream {
    match a.as_ref().and_then(|a| a.resolved) {
        Some(c) => {
            let c = crate::emit::num(c.0);
            quote!(rt::Some(#c))
        }
        None => quote!(rt::None),
    }
}

fn salt(source: &SourceInfo) -> TokenStream {
    let salt = crate::emit::nums(&secret::salt(source));
    quote!([#(#salt),*])
}

/// Every key-auth credential of the config, keys as salted digests only.
fn key_auth(config: &ir::Config, c: &ir::KeyAuth, source: &SourceInfo) -> TokenStream {
    let creds = config
        .consumers
        .iter()
        .enumerate()
        .flat_map(|(ci, consumer)| {
            consumer.keyauth_credentials.iter().map(move |k| {
                let key = secret::credential(&k.key, source);
                let id = k.id.as_deref().unwrap_or_default();
                let ci = crate::emit::num(ci as u64);
                quote!(rt::plugins::key_auth::KeyCredential { key: #key, consumer: #ci, id: #id })
            })
        });
    let names = &c.key_names;
    let hide = c.hide_credentials;
    let anonymous = anonymous(&c.anonymous);
    let (in_header, in_query, in_body) = (c.key_in_header, c.key_in_query, c.key_in_body);
    let preflight = c.run_on_preflight;
    let realm = opt_str(c.realm.as_deref());
    let salt = salt(source);
    quote! {
        rt::plugins::key_auth::KeyAuth::new(rt::plugins::key_auth::Config {
            key_names: &[#(#names),*],
            hide_credentials: #hide,
            anonymous: #anonymous,
            key_in_header: #in_header,
            key_in_query: #in_query,
            key_in_body: #in_body,
            run_on_preflight: #preflight,
            realm: #realm,
            consumers: &CONSUMERS,
            credentials: &[#(#creds),*],
            salt: #salt,
        })?
    }
}

/// Every basic-auth credential of the config, passwords as salted digests only.
fn basic_auth(config: &ir::Config, c: &ir::BasicAuth, source: &SourceInfo) -> TokenStream {
    let creds = config.consumers.iter().enumerate().flat_map(|(ci, consumer)| {
        consumer.basicauth_credentials.iter().map(move |b| {
            let digest = secret::credential(&b.password, source);
            let password = if b.password_is_hashed {
                quote!(rt::plugins::basic_auth::Password::KongSha1(#digest))
            } else {
                quote!(rt::plugins::basic_auth::Password::Plain(#digest))
            };
            let username = &b.username;
            let ci = crate::emit::num(ci as u64);
            quote!(rt::plugins::basic_auth::BasicCredential { username: #username, password: #password, consumer: #ci })
        })
    });
    let anonymous = anonymous(&c.anonymous);
    let hide = c.hide_credentials;
    let realm = &c.realm;
    let salt = salt(source);
    quote! {
        rt::plugins::basic_auth::BasicAuth::new(rt::plugins::basic_auth::Config {
            anonymous: #anonymous,
            hide_credentials: #hide,
            realm: #realm,
            consumers: &CONSUMERS,
            credentials: &[#(#creds),*],
            salt: #salt,
        })?
    }
}

/// The cache's config; consumers and services come from the gateway's tables.
fn proxy_cache(c: &ir::ProxyCache) -> TokenStream {
    let codes = crate::emit::nums(&c.response_code);
    let methods = str_slice(&c.request_method);
    let types = str_slice(&c.content_type);
    let cache_ttl = crate::emit::num(c.cache_ttl);
    let storage_ttl = match c.storage_ttl {
        Some(s) => {
            let s = crate::emit::num(s);
            quote!(rt::Some(#s))
        }
        None => quote!(rt::None),
    };
    let (cache_control, ignore_uri_case) = (c.cache_control, c.ignore_uri_case);
    let vary_query = str_slice(&c.vary_query_params);
    let vary_headers = str_slice(&c.vary_headers);
    let (age, status, key) = c.response_headers;
    let dict = &c.dictionary_name;
    let max_bytes = crate::emit::num(c.max_bytes);
    let max_entry = crate::emit::num(c.max_entry_bytes);
    quote! {
        rt::plugins::proxy_cache::ProxyCache::new(rt::plugins::proxy_cache::Config {
            response_code: &[#(#codes),*],
            request_method: #methods,
            content_type: #types,
            cache_ttl: #cache_ttl,
            storage_ttl: #storage_ttl,
            cache_control: #cache_control,
            ignore_uri_case: #ignore_uri_case,
            vary_query_params: #vary_query,
            vary_headers: #vary_headers,
            response_headers: rt::plugins::proxy_cache::ResponseHeaders {
                age: #age,
                x_cache_status: #status,
                x_cache_key: #key,
            },
            dictionary_name: #dict,
            max_bytes: #max_bytes,
            max_entry_bytes: #max_entry,
            consumers: &CONSUMERS,
            services: &SERVICES,
        })?
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
