//! `{vault://…}` references (kong-compat.md §6). Kiln resolves them when the gateway starts,
//! from the environment; only the `env` vault exists (the `vaults` entity is not supported).

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::{SecretValue, VaultRef},
    syntax::record::Sp,
};

/// A field value that may be a vault reference.
/// Malformed references are errors (K0800).
pub(crate) fn lower_secret(v: &Sp<String>, d: &mut Diagnostics) -> Option<SecretValue> {
    let s = v.value.as_str();
    if !s.starts_with("{vault://") {
        return Some(SecretValue::Literal(v.value.clone()));
    }
    match parse(s) {
        Ok((env_var, json_key)) => Some(SecretValue::Vault(VaultRef {
            reference: v.value.clone(),
            env_var,
            json_key,
            span: v.span,
        })),
        Err(msg) => {
            d.push(
                Diagnostic::error("K0800", v.span, format!("invalid vault reference: {msg}"))
                    .label("not a usable reference")
                    .help("write `{vault://env/<name>}` or `{vault://env/<name>/<json key>}`; the gateway reads the environment variable <NAME> (upper-cased, `-` as `_`) at start-up"),
            );
            None
        }
    }
}

/// `{vault://env/my-secret[/key][?prefix=P]}` → (`PMY_SECRET`, key).
fn parse(s: &str) -> Result<(String, Option<String>), String> {
    let inner = s
        .strip_prefix("{vault://")
        .and_then(|r| r.strip_suffix('}'))
        .ok_or("a reference must end with `}`")?;
    if inner.contains('#') {
        return Err("secret versions (`#<version>`) are not supported".into());
    }
    let (path, query) = match inner.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (inner, None),
    };
    let mut parts = path.splitn(3, '/');
    let vault = parts.next().unwrap_or_default();
    if vault != "env" {
        return Err(format!("only the `env` vault is supported, not `{vault}`"));
    }
    let resource = parts
        .next()
        .filter(|r| !r.is_empty())
        .ok_or("no variable name after `env/`")?;
    let key = parts.next().filter(|k| !k.is_empty()).map(str::to_owned);
    let mut prefix = String::new();
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("prefix", p)) => prefix = p.to_owned(),
            _ => return Err(format!("unsupported option `{pair}` (only `prefix=` is)")),
        }
    }
    let var = format!("{prefix}{resource}")
        .to_ascii_uppercase()
        .replace('-', "_");
    let valid = var
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(format!("`{var}` is not a valid environment variable name"));
    }
    Ok((var, key))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn references() {
        let ok: &[(&str, &str, Option<&str>)] = &[
            ("{vault://env/my-secret}", "MY_SECRET", None),
            ("{vault://env/creds/password}", "CREDS", Some("password")),
            ("{vault://env/token?prefix=app_}", "APP_TOKEN", None),
        ];
        for (s, var, key) in ok {
            let (v, k) = parse(s).expect(s);
            assert_eq!((v.as_str(), k.as_deref()), (*var, *key), "{s}");
        }
        for bad in [
            "{vault://env/}",
            "{vault://aws/x}",
            "{vault://env/x",
            "{vault://env/x#2}",
            "{vault://env/x?ttl=3}",
            "{vault://env/1x!}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
