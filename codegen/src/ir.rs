//! The validated config: what `lower` produces and `plan`/`emit` consume.
//!
//! Plain data, no spans except each item's [`Origin`] (for messages from later stages),
//! references resolved to newtype ids (indices into the `Config` vectors), Kong's defaults
//! applied. A second input dialect would be a new front end lowering into these types.

use crate::diag::Span;

macro_rules! id {
    ($($name:ident),*) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize { self.0 as usize }
        }
    )*};
}
id!(ServiceId, RouteId, UpstreamId, ConsumerId, PluginId);

/// Where an item was written: the span of its first key (or of its list entry).
pub type Origin = Span;

/// The whole validated gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub services: Vec<Service>,
    /// Only routes that take part in routing: routes of disabled services are dropped here
    /// (Kong leaves them out of the router), and a warning says so.
    pub routes: Vec<Route>,
    pub upstreams: Vec<Upstream>,
    pub consumers: Vec<Consumer>,
    /// Enabled plugin instances only (`enabled: false` ones are dropped, as Kong does).
    pub plugins: Vec<PluginInstance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Https,
    Grpc,
    Grpcs,
    Tcp,
    Tls,
    TlsPassthrough,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Grpc => "grpc",
            Protocol::Grpcs => "grpcs",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::TlsPassthrough => "tls_passthrough",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Explicit `id`, else UUIDv5 as Kong derives it from the name.
    pub id: String,
    pub name: Option<String>,
    pub protocol: Protocol,
    pub host: String,
    pub port: u16,
    pub path: Option<String>,
    pub retries: u32,
    pub connect_timeout_ms: u64,
    pub write_timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub enabled: bool,
    /// Set when `host` names an upstream.
    pub upstream: Option<UpstreamId>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostPattern {
    /// `a.b` or `a.b:8080`.
    Exact { host: String, port: Option<u16> },
    /// `*.b.c` stored as suffix `.b.c`.
    Suffix { suffix: String, port: Option<u16> },
    /// `a.*` stored as prefix `a.`.
    Prefix { prefix: String, port: Option<u16> },
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathPattern {
    /// A normalized literal prefix.
    Prefix(String),
    /// The regex source after `~` with `(?<name>` already rewritten to `(?P<name>`; checked
    /// with regex-syntax; matched anchored at the start.
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeaderValue {
    /// Lower-cased literal.
    Exact(String),
    /// From `~*`: the regex source, lower-cased.
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeaderCondition {
    /// Lower-cased header name.
    pub name: String,
    pub values: Vec<HeaderValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Explicit `id`, else UUIDv5 from the name as Kong derives it; an unnamed route without
    /// id gets a UUIDv5 of its position (Kong would use a random one).
    pub id: String,
    pub name: Option<String>,
    pub service: Option<ServiceId>,
    pub protocols: Vec<Protocol>,
    pub methods: Vec<String>,
    /// `None`: the field was absent; `Some(vec![])`: written as `[]` (Kong's plain-host
    /// priority quirk treats these differently).
    pub hosts: Option<Vec<HostPattern>>,
    pub paths: Vec<PathPattern>,
    pub headers: Vec<HeaderCondition>,
    pub snis: Vec<String>,
    pub strip_path: bool,
    pub preserve_host: bool,
    pub regex_priority: i64,
    pub https_redirect_status_code: u16,
    pub request_buffering: bool,
    pub response_buffering: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub weight: u32,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub id: String,
    pub name: String,
    /// Only round-robin is supported for now (others are rejected by `lower`).
    pub slots: u32,
    pub host_header: Option<String>,
    pub targets: Vec<Target>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub id: String,
    pub username: Option<String>,
    pub custom_id: Option<String>,
    pub keyauth_credentials: Vec<KeyAuthCredential>,
    pub basicauth_credentials: Vec<BasicAuthCredential>,
    pub jwt_secrets: Vec<JwtSecret>,
    pub acls: Vec<AclGroup>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyAuthCredential {
    /// Explicit, else derived by `lower` (always `Some` in a lowered config).
    pub id: Option<String>,
    /// A literal key or a vault reference (Kiln accepts references here; Kong does not).
    pub key: SecretValue,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuthCredential {
    pub id: Option<String>,
    pub username: String,
    /// A literal or a vault reference (Kiln accepts references here; Kong does not).
    pub password: SecretValue,
    /// `_transform: false` in the file: `password` is already Kong's
    /// `hex(sha1(password .. consumer_id))`, not the clear text.
    pub password_is_hashed: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JwtSecret {
    pub id: Option<String>,
    pub key: String,
    /// HS* secret; Kiln also accepts a `{vault://env/...}` reference here (Kong does not).
    pub secret: Option<SecretValue>,
    pub rsa_public_key: Option<String>,
    pub algorithm: String,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AclGroup {
    pub id: Option<String>,
    pub group: String,
    pub origin: Origin,
}

/// Where a plugin instance is attached; all `None` is global.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scope {
    pub route: Option<RouteId>,
    pub service: Option<ServiceId>,
    pub consumer: Option<ConsumerId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginInstance {
    pub id: String,
    pub instance_name: Option<String>,
    pub scope: Scope,
    pub config: PluginConfig,
    /// Kong's `protocols` (default `[grpc, grpcs, http, https]`); Kiln accepts the
    /// http-family values only. At run time Kong uses it to pick the subsystem, not to
    /// filter http vs https requests.
    pub protocols: Vec<Protocol>,
    pub origin: Origin,
}

impl PluginInstance {
    pub fn name(&self) -> &'static str {
        self.config.name()
    }
}

/// Every plugin Kiln implements; a closed set. Kong's defaults are already applied.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginConfig {
    CorrelationId(CorrelationId),
    RequestTermination(RequestTermination),
    Jwt(Jwt),
    Acl(Acl),
    IpRestriction(IpRestriction),
    Cors(Cors),
    KeyAuth(KeyAuth),
    BasicAuth(BasicAuth),
    RequestValidator(RequestValidator),
    RequestSizeLimiting(RequestSizeLimiting),
    TokenBucket(TokenBucket),
    ProxyCache(ProxyCache),
    RateLimiting(RateLimiting),
}

impl PluginConfig {
    /// Kong's plugin name.
    pub fn name(&self) -> &'static str {
        match self {
            PluginConfig::CorrelationId(_) => "correlation-id",
            PluginConfig::RequestTermination(_) => "request-termination",
            PluginConfig::Jwt(_) => "jwt",
            PluginConfig::Acl(_) => "acl",
            PluginConfig::IpRestriction(_) => "ip-restriction",
            PluginConfig::Cors(_) => "cors",
            PluginConfig::KeyAuth(_) => "key-auth",
            PluginConfig::BasicAuth(_) => "basic-auth",
            PluginConfig::RequestValidator(_) => "request-validator",
            PluginConfig::RequestSizeLimiting(_) => "request-size-limiting",
            PluginConfig::TokenBucket(_) => "kiln-token-bucket",
            PluginConfig::ProxyCache(_) => "proxy-cache",
            PluginConfig::RateLimiting(_) => "rate-limiting",
        }
    }

    /// Authentication plugins identify consumers (and run Kong's anonymous logic).
    pub fn is_authentication(&self) -> bool {
        match self {
            PluginConfig::CorrelationId(_) | PluginConfig::RequestTermination(_) => false,
            PluginConfig::Jwt(_) => true,
            PluginConfig::Acl(_) | PluginConfig::IpRestriction(_) | PluginConfig::Cors(_) => false,
            PluginConfig::KeyAuth(_) | PluginConfig::BasicAuth(_) => true,
            PluginConfig::RequestValidator(_) => false,
            PluginConfig::RequestSizeLimiting(_) | PluginConfig::TokenBucket(_) => false,
            PluginConfig::ProxyCache(_) => false,
            PluginConfig::RateLimiting(_) => false,
        }
    }

    /// Optional kiln-runtime cargo features this instance needs (e.g. `redis`); the
    /// generated crate turns on only these.
    pub fn runtime_features(&self) -> &'static [&'static str] {
        match self {
            PluginConfig::RequestValidator(_) => &["jsonschema"],
            PluginConfig::TokenBucket(_) => &["governor"],
            PluginConfig::ProxyCache(_) => &["proxy-cache"],
            PluginConfig::RateLimiting(RateLimiting {
                policy: RateLimitPolicy::Redis(_),
                ..
            }) => &["redis"],
            _ => &[],
        }
    }

    /// Kong's priority (kong-compat.md §3.1).
    pub fn priority(&self) -> i32 {
        match self {
            PluginConfig::CorrelationId(_) => 100001,
            PluginConfig::RequestTermination(_) => 2,
            PluginConfig::Jwt(_) => 1450,
            PluginConfig::Acl(_) => 950,
            PluginConfig::IpRestriction(_) => 990,
            PluginConfig::Cors(_) => 2000,
            PluginConfig::KeyAuth(_) => 1250,
            PluginConfig::BasicAuth(_) => 1100,
            PluginConfig::RequestValidator(_) => 999,
            PluginConfig::RequestSizeLimiting(_) => 951,
            // Kiln's own: right after Kong's rate-limiting (910), docs/plugins/kiln-token-bucket.md.
            PluginConfig::TokenBucket(_) => 909,
            PluginConfig::ProxyCache(_) => 100,
            PluginConfig::RateLimiting(_) => 910,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorrelationGenerator {
    Uuid,
    UuidCounter,
    Tracker,
}

/// kong-compat.md §4.12.
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationId {
    pub header_name: String,
    pub generator: CorrelationGenerator,
    pub echo_downstream: bool,
}

/// kong-compat.md §4.9.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTermination {
    pub status_code: u16,
    pub message: Option<String>,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub echo: bool,
    pub trigger: Option<String>,
}

/// A registered claim jwt can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtClaim {
    Exp,
    Nbf,
}

/// kong-compat.md §4.2. The name lists are Kong sets: duplicates removed, order kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    pub uri_param_names: Vec<String>,
    pub cookie_names: Vec<String>,
    /// As written; the runtime matches them case-insensitively with `_` read as `-`.
    pub header_names: Vec<String>,
    pub claims_to_verify: Vec<JwtClaim>,
    pub key_claim_name: String,
    pub secret_is_base64: bool,
    /// Seconds, 0 = no limit.
    pub maximum_expiration: u32,
    pub anonymous: Option<ConsumerRef>,
    pub run_on_preflight: bool,
    pub realm: Option<String>,
}

/// kong-compat.md §4.4: exactly one of `allow` / `deny`.
#[derive(Debug, Clone, PartialEq)]
pub struct Acl {
    /// `deny` was given (otherwise `allow`).
    pub deny: bool,
    /// The groups of that list, as written (non-empty).
    pub groups: Vec<String>,
    /// Where each group is written (for plan-time warnings).
    pub spans: Vec<Span>,
    pub hide_groups_header: bool,
    pub always_use_authenticated_groups: bool,
}

/// kong-compat.md §4.5. Entries are checked IPs/CIDR blocks, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct IpRestriction {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub status: Option<u16>,
    pub message: Option<String>,
}

/// kong-compat.md §4.6, Kong's defaults applied (`methods`: all nine; `allow_origin_absent`:
/// true). Empty `headers` / `exposed_headers` behave as Kong's `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cors {
    pub origins: Vec<String>,
    pub headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub methods: Vec<String>,
    pub max_age: Option<i64>,
    pub credentials: bool,
    pub private_network: bool,
    pub preflight_continue: bool,
    pub allow_origin_absent: bool,
}

/// Kong's `request-validator` (Enterprise), JSON Schema bodies: `body_schema` already
/// compiled once by lower (so the runtime's start-up compile cannot fail), Kong's defaults
/// applied (`allowed_content_types` `["application/json"]`,
/// `content_type_parameter_validation` true, `verbose_response` false).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestValidator {
    /// The JSON Schema text as written.
    pub body_schema: String,
    pub version: kiln_runtime::plugins::request_validator::Draft,
    pub allowed_content_types: Vec<String>,
    pub content_type_parameter_validation: bool,
    pub verbose_response: bool,
}

/// kong-compat.md §4.1.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyAuth {
    /// Header-name syntax (`[A-Za-z0-9_-]+`), in lookup order; default `["apikey"]`.
    pub key_names: Vec<String>,
    pub hide_credentials: bool,
    pub anonymous: Option<ConsumerRef>,
    pub key_in_header: bool,
    pub key_in_query: bool,
    pub key_in_body: bool,
    pub run_on_preflight: bool,
    pub realm: Option<String>,
}

/// kong-compat.md §4.3.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuth {
    pub anonymous: Option<ConsumerRef>,
    pub hide_credentials: bool,
    /// Default `service`.
    pub realm: String,
}

/// kong-compat.md §4.8.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSizeLimiting {
    /// In `size_unit`s (default 128); the product fits in 64 bits.
    pub allowed_payload_size: u64,
    pub size_unit: RequestSizeUnit,
    pub require_content_length: bool,
}

/// request-size-limiting's `size_unit` (default megabytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestSizeUnit {
    Megabytes,
    Kilobytes,
    Bytes,
}

/// Kiln's `kiln-token-bucket` (docs/plugins/kiln-token-bucket.md), defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    pub average: u32,
    /// Seconds.
    pub period: u32,
    /// Default `average`.
    pub burst: u32,
    pub limit_by: TokenBucketLimitBy,
    pub max_keys: u32,
    pub error_code: u16,
    pub error_message: String,
    pub hide_client_headers: bool,
}

/// `limit_by` of kiln-token-bucket, with the field the choice needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenBucketLimitBy {
    Consumer,
    Credential,
    Ip,
    Service,
    Header(String),
    Path(String),
}

/// A rate-limiting period (kong-compat.md §4.7), shortest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RateLimitPeriod {
    Second,
    Minute,
    Hour,
    Day,
    Month,
    Year,
}

/// Kong's `limit_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitBy {
    Consumer,
    Credential,
    Ip,
    Service,
    Header(String),
    Path(String),
}

/// kong-compat.md §4.13, Kong's defaults applied; `memory` strategy only.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyCache {
    pub response_code: Vec<u16>,
    pub request_method: Vec<String>,
    /// Checked media types, as written.
    pub content_type: Vec<String>,
    pub cache_ttl: u64,
    pub storage_ttl: Option<u64>,
    pub cache_control: bool,
    pub ignore_uri_case: bool,
    /// Empty: every query argument.
    pub vary_query_params: Vec<String>,
    pub vary_headers: Vec<String>,
    /// `response_headers`: (`age`, `X-Cache-Status`, `X-Cache-Key`).
    pub response_headers: (bool, bool, bool),
    pub dictionary_name: String,
    /// Kiln: `memory.max_bytes` (default 128 MiB).
    pub max_bytes: u64,
    /// Kiln: `memory.max_entry_bytes` (default 1 MiB).
    pub max_entry_bytes: u64,
}

/// `policy: redis` connection settings (nested `redis.*` or the deprecated `redis_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<SecretValue>,
    pub password: Option<SecretValue>,
    pub database: i64,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitPolicy {
    Local,
    Redis(Box<RedisSettings>),
}

/// kong-compat.md §4.7, Kong's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimiting {
    /// Shortest period first, each at most once, non-decreasing limits (checked).
    pub limits: Vec<(RateLimitPeriod, u64)>,
    pub limit_by: RateLimitBy,
    pub policy: RateLimitPolicy,
    pub fault_tolerant: bool,
    pub hide_client_headers: bool,
    pub error_code: u16,
    pub error_message: String,
}

/// A `{vault://env/...}` reference (kong-compat.md §6), resolved by the gateway at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRef {
    /// As written, e.g. `{vault://env/my-secret}`.
    pub reference: String,
    /// The environment variable: (prefix +) resource, upper-cased, `-` → `_`.
    pub env_var: String,
    /// `{vault://env/name/key}`: the variable holds JSON; use this string field.
    pub json_key: Option<String>,
    pub span: Span,
}

/// A config value that may be a vault reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    Literal(String),
    Vault(VaultRef),
}

/// A plugin field naming a consumer (`anonymous`): by username or id, resolved by `lower`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRef {
    pub written: String,
    pub span: Span,
    /// Set by `lower` once consumers are known; always `Some` in a lowered config.
    pub resolved: Option<ConsumerId>,
}

impl PluginConfig {
    /// The consumer references in this config, for `lower` to resolve.
    pub fn consumer_refs_mut(&mut self) -> Vec<&mut ConsumerRef> {
        match self {
            PluginConfig::CorrelationId(_) | PluginConfig::RequestTermination(_) => Vec::new(),
            PluginConfig::Jwt(j) => j.anonymous.iter_mut().collect(),
            PluginConfig::Acl(_) | PluginConfig::IpRestriction(_) | PluginConfig::Cors(_) => {
                Vec::new()
            }
            PluginConfig::KeyAuth(c) => c.anonymous.iter_mut().collect(),
            PluginConfig::BasicAuth(c) => c.anonymous.iter_mut().collect(),
            PluginConfig::RequestValidator(_) => Vec::new(),
            PluginConfig::RequestSizeLimiting(_) | PluginConfig::TokenBucket(_) => Vec::new(),
            PluginConfig::ProxyCache(_) => Vec::new(),
            PluginConfig::RateLimiting(_) => Vec::new(),
        }
    }
}
