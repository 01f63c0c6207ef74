//! IR + plan → the generated module (`src/gateway.rs` of the emitted crate).
//!
//! One emitter per concern: [`tables`] (static routes, services, router tables), [`chains`]
//! (the gateway type, `init`, one function per distinct plugin chain), [`plugins`] (one
//! config literal per plugin instance). Every path goes through `rt`, the runtime's
//! `__private` module, so the code does not depend on what the including scope imports.

mod chains;
mod jwt;
mod plugins;
pub mod secret;
mod tables;

use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// An integer literal without a type suffix (`8080`, not `8080u16`): the field type decides.
pub(crate) fn num(n: impl Into<u64>) -> Literal {
    Literal::u64_unsuffixed(n.into())
}

/// Unsuffixed literals for a list of numbers.
pub(crate) fn nums<T: Copy + Into<u64>>(ns: &[T]) -> Vec<Literal> {
    ns.iter().map(|&n| num(n)).collect()
}

use crate::{ir, plan::Plan};

/// Facts about the source, for the header and `Gateway::INFO`.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// The file name as the user gave it.
    pub name: String,
    pub sha256: String,
}

/// The whole generated module.
pub fn emit_gateway(config: &ir::Config, plan: &Plan, source: &SourceInfo) -> TokenStream {
    let tables = tables::emit_tables(config, plan);
    let gateway = chains::emit_gateway_type(config, plan, source);
    let jwt_secrets = jwt::emit_jwt_secrets(config, source);
    let version = kiln_runtime::VERSION;
    quote! {
        use ::kiln_runtime::__private as rt;

        // The runtime this code was generated for.
        const _: () = ::core::assert!(
            rt::str_eq(rt::VERSION, #version),
            "generated for another kiln-runtime version: run `kiln emit` again"
        );

        #tables
        #jwt_secrets
        #gateway
    }
}
