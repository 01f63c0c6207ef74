//! Fields shared by the authentication plugins (kong-compat.md §4 "Common auth behaviour").

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::ConsumerRef,
    syntax::record::{Record, Sp},
};

/// `anonymous`: a consumer username or id, resolved (or reported, K0700) once consumers
/// are known. Kong answers 500 at run time for an unknown one; Kiln refuses to build.
pub(crate) fn anonymous(r: &mut Record, d: &mut Diagnostics) -> Option<ConsumerRef> {
    r.str("anonymous", d).map(|a| ConsumerRef {
        written: a.value,
        span: a.span,
        resolved: None,
    })
}

/// `realm`: sent in `WWW-Authenticate`, so it must be printable ASCII (K0612).
pub(crate) fn realm(r: &mut Record, d: &mut Diagnostics) -> Option<Sp<String>> {
    let realm = r.str("realm", d)?;
    if !realm
        .value
        .bytes()
        .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        d.push(
            Diagnostic::error(
                "K0612",
                realm.span,
                "`realm` cannot be sent in a `WWW-Authenticate` header",
            )
            .label("control or non-ASCII character")
            .help("use printable ASCII characters only, e.g. `realm: my-api`"),
        );
        return None;
    }
    Some(realm)
}
