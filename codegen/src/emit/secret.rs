//! How secrets reach generated code: vault references as `rt::Secret::Env` (resolved at
//! start-up), credentials as salted digests only, never in clear text.

use proc_macro2::TokenStream;
use quote::quote;

use crate::{emit::SourceInfo, ir::SecretValue};

/// `rt::Secret` for a value that may be written into the binary when literal (not a
/// credential: e.g. a Redis host).
pub fn secret(v: &SecretValue, source: &SourceInfo) -> TokenStream {
    match v {
        SecretValue::Literal(s) => quote!(rt::Secret::Literal(#s)),
        SecretValue::Vault(r) => {
            let var = &r.env_var;
            let key = match &r.json_key {
                Some(k) => quote!(rt::Some(#k)),
                None => quote!(rt::None),
            };
            let reference = &r.reference;
            let origin = format!("{}:{}:{}", source.name, r.span.line, r.span.col);
            quote!(rt::Secret::Env { var: #var, json_key: #key, reference: #reference, origin: #origin })
        }
    }
}

/// The salt of this config's credential digests.
pub fn salt(source: &SourceInfo) -> [u8; 32] {
    kiln_runtime::secret::salt_for(&source.sha256)
}

/// A credential: a literal becomes `rt::Credential::Digest([..])` (salted, the clear text
/// is not in the binary); a vault reference is resolved and digested at start-up.
pub fn credential(v: &SecretValue, source: &SourceInfo) -> TokenStream {
    match v {
        SecretValue::Literal(s) => {
            let d = kiln_runtime::secret::digest(&salt(source), s.as_bytes());
            quote!(rt::Credential::Digest([#(#d),*]))
        }
        SecretValue::Vault(_) => {
            let s = secret(v, source);
            quote!(rt::Credential::Env(#s))
        }
    }
}
