//! `Content-Type` values as Kong's request-validator compares them: type and subtype
//! case-insensitive, only the first parameter kept ("the rest are truncated"), parameter
//! names case-insensitive, the `charset` value case-insensitive, other values exact.

/// A parsed `type/subtype[; name=value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// Lower-cased; `*` in an allowed entry matches any.
    pub kind: String,
    /// Lower-cased; `*` in an allowed entry matches any.
    pub subtype: String,
    /// The first parameter: lower-cased name, value unquoted (lower-cased for `charset`).
    pub param: Option<(String, String)>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl MediaType {
    /// `None` when `s` is not `type/subtype` followed by optional `; name=value` parameters.
    pub fn parse(s: &str) -> Option<MediaType> {
        let mut parts = s.split(';');
        let essence = parts.next()?.trim();
        let (kind, subtype) = essence.split_once('/')?;
        if !is_token(kind) || !is_token(subtype) {
            return None;
        }
        let param = match parts.next().map(str::trim) {
            None | Some("") => None,
            Some(p) => {
                let (name, value) = p.split_once('=')?;
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                if !is_token(&name) {
                    return None;
                }
                let value = if name == "charset" {
                    value.to_ascii_lowercase()
                } else {
                    value.to_owned()
                };
                Some((name, value))
            }
        };
        Some(MediaType {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            param,
        })
    }

    /// Whether this allowed entry admits the request's media type `m`. With
    /// `parameter_validation` the parameters must be equal (none on both sides, or the same
    /// one): `application/json; charset=utf-8` is not `application/json`.
    pub fn allows(&self, m: &MediaType, parameter_validation: bool) -> bool {
        (self.kind == "*" || self.kind == m.kind)
            && (self.subtype == "*" || self.subtype == m.subtype)
            && (!parameter_validation || self.param == m.param)
    }

    /// `application/json`, or a `+json` structured-syntax suffix
    /// (`application/merge-patch+json`): the bodies Kong validates.
    pub fn is_json(&self) -> bool {
        (self.kind == "application" && self.subtype == "json") || self.subtype.ends_with("+json")
    }
}
