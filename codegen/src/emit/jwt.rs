//! The jwt secrets table: one `rt::plugins::jwt::JwtSecret` per consumer `jwt_secrets` entry.
//! HMAC secrets written in the config become midstates computed here (the clear text is not
//! in the binary); `{vault://env/...}` secrets are read at start-up; public keys stay PEM.

use proc_macro2::TokenStream;
use quote::quote;

use kiln_runtime::plugins::jwt::{base64url_decode, Algorithm, HmacKey};

use crate::{
    emit::{num, secret, SourceInfo},
    ir::{self, PluginConfig, SecretValue},
};

fn hmac_key(k: &HmacKey) -> TokenStream {
    let words32 = |w: &[u32; 8]| {
        let w = w.iter().map(|x| num(*x));
        quote!([#(#w),*])
    };
    let words64 = |w: &[u64; 8]| {
        let w = w.iter().map(|x| num(*x));
        quote!([#(#w),*])
    };
    match k {
        HmacKey::Sha256 { inner, outer } => {
            let (i, o) = (words32(inner), words32(outer));
            quote!(rt::plugins::jwt::HmacKey::Sha256 { inner: #i, outer: #o })
        }
        HmacKey::Sha384 { inner, outer } => {
            let (i, o) = (words64(inner), words64(outer));
            quote!(rt::plugins::jwt::HmacKey::Sha384 { inner: #i, outer: #o })
        }
        HmacKey::Sha512 { inner, outer } => {
            let (i, o) = (words64(inner), words64(outer));
            quote!(rt::plugins::jwt::HmacKey::Sha512 { inner: #i, outer: #o })
        }
    }
}

fn algorithm(a: Algorithm) -> TokenStream {
    let name = proc_macro2::Ident::new(a.as_str(), proc_macro2::Span::call_site());
    quote!(rt::plugins::jwt::Algorithm::#name)
}

/// Whether the config has a jwt plugin, and one that decodes secrets as base64url.
fn jwt_usage(config: &ir::Config) -> (bool, bool) {
    let mut any = false;
    let mut base64 = false;
    for p in &config.plugins {
        if let PluginConfig::Jwt(j) = &p.config {
            any = true;
            base64 |= j.secret_is_base64;
        }
    }
    (any, base64)
}

/// `static JWT_SECRETS: [rt::plugins::jwt::JwtSecret; N]`, when the config has a jwt plugin.
pub fn emit_jwt_secrets(config: &ir::Config, source: &SourceInfo) -> TokenStream {
    let (any, base64) = jwt_usage(config);
    if !any {
        return TokenStream::new();
    }
    let mut entries = Vec::new();
    for (ci, c) in config.consumers.iter().enumerate() {
        for s in &c.jwt_secrets {
            // `lower` rejects algorithms the runtime lacks and HS secrets without `secret`.
            let Some(alg) = Algorithm::from_name(&s.algorithm) else {
                continue;
            };
            let material = match (alg.hmac(), &s.secret, &s.rsa_public_key) {
                (Some(hash), Some(SecretValue::Literal(text)), _) => {
                    let key = hmac_key(&HmacKey::new(hash, text.as_bytes()));
                    let decoded = if base64 {
                        match base64url_decode(text.as_bytes()) {
                            Some(bytes) => {
                                let k = hmac_key(&HmacKey::new(hash, &bytes));
                                quote!(rt::Some(rt::plugins::jwt::Base64Key::Key(#k)))
                            }
                            None => quote!(rt::Some(rt::plugins::jwt::Base64Key::Invalid)),
                        }
                    } else {
                        quote!(rt::None)
                    };
                    quote!(rt::plugins::jwt::Material::Hmac { key: #key, base64url: #decoded })
                }
                (Some(_), Some(v @ SecretValue::Vault(_)), _) => {
                    let s = secret::secret(v, source);
                    quote!(rt::plugins::jwt::Material::HmacEnv(#s))
                }
                (None, _, Some(pem)) => quote!(rt::plugins::jwt::Material::PublicKey(#pem)),
                _ => continue,
            };
            let key = &s.key;
            let consumer = num(ci as u64);
            let alg = algorithm(alg);
            entries.push(quote! {
                rt::plugins::jwt::JwtSecret {
                    key: #key,
                    consumer: #consumer,
                    algorithm: #alg,
                    material: #material,
                }
            });
        }
    }
    let n = num(entries.len() as u64);
    quote! {
        /// Consumers' jwt secrets: HMAC keys as midstates, public keys as PEM.
        #[allow(dead_code)] // unread when every jwt plugin is scoped to a route-less service
        static JWT_SECRETS: [rt::plugins::jwt::JwtSecret; #n] = [#(#entries),*];
    }
}
