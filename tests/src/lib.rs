//! Test support for Kiln's end-to-end tests: the echo upstream, in-process gateways and a
//! small HTTP client.

pub mod echo;
pub mod harness;
