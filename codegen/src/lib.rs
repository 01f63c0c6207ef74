//! `kiln-codegen`: the compiler from a Kong declarative config (`kong.yml`) to a specialised
//! gateway crate, and the `kiln` CLI.
//!
//! Stages, data flowing one way: [`syntax`] (spanned YAML model) → [`lower`] (checks,
//! references, defaults; [`diag::Diagnostics`]) → [`ir`] → [`plan`] (route priority, tables,
//! plugin chains) → [`emit`] (`TokenStream`) → [`write`] (formatted files).

pub mod diag;
pub mod ir;
pub mod lower;
pub mod plan;
pub mod syntax;
