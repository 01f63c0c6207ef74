//! `kiln-codegen`: the compiler from a Kong declarative config (`kong.yml`) to a specialised
//! gateway crate, and the `kiln` CLI.
//!
//! Stages, data flowing one way: [`syntax`] (spanned YAML model) → [`lower`] (checks,
//! references, defaults; [`diag::Diagnostics`]) → [`ir`] → [`plan`] (route priority, tables,
//! plugin chains) → [`emit`] (`TokenStream`) → [`write`] (formatted files).
//!
//! ```no_run
//! use kiln_codegen::{diag::SourceFile, write};
//! let file = SourceFile { name: "kong.yml".into(), text: std::fs::read_to_string("kong.yml").unwrap() };
//! match write::generate(&file) {
//!     Ok(compiled) => println!("{}", compiled.gateway_rs),
//!     Err(diags) => eprint!("{}", diags.render(&file)),
//! }
//! ```

pub mod cli;
pub mod diag;
pub mod emit;
pub mod ir;
pub mod lower;
pub mod plan;
pub mod syntax;
pub mod write;
