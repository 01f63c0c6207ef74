//! Bundled plugins, one module each.
//!
//! Each plugin is a concrete type implementing [`crate::Plugin`], with a `Config` struct of
//! `&'static` data that the compiler writes as a literal and a `new(config)` constructor
//! that does the start-up work (parsing header names, pre-rendering bodies) and refuses a
//! config Kong's schema would refuse.

pub mod acl;
pub mod basic_auth;
pub mod correlation_id;
pub mod cors;
pub mod ip_restriction;
pub mod jwt;
pub mod key_auth;
#[cfg(feature = "proxy-cache")]
pub mod proxy_cache;
pub mod rate_limiting;
pub mod request_size_limiting;
pub mod request_termination;
#[cfg(feature = "jsonschema")]
pub mod request_validator;
#[cfg(feature = "governor")]
pub mod token_bucket;

pub use acl::Acl;
pub use correlation_id::CorrelationId;
pub use cors::Cors;
pub use ip_restriction::IpRestriction;
pub use jwt::Jwt;
pub use request_termination::RequestTermination;

#[cfg(test)]
pub(crate) mod test_support;
