//! `request-size-limiting` config (kong-compat.md §4.8): Kong's fields, defaults and checks,
//! plus K0663 for a limit that does not fit in 64 bits.

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{record::Record, Node},
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "request-size-limiting config", d)?;
    // Kong's schema: an integer (a negative one refuses every body; Kiln refuses it here).
    let size = r.int("allowed_payload_size", 0, i64::MAX, d);
    let unit = r.one_of("size_unit", &["megabytes", "kilobytes", "bytes"], d);
    let require_content_length = r.bool("require_content_length", d).is_some_and(|b| b.value);
    r.finish(d);
    let size_unit = match unit.as_ref().map(|u| u.value) {
        Some("kilobytes") => RequestSizeUnit::Kilobytes,
        Some("bytes") => RequestSizeUnit::Bytes,
        _ => RequestSizeUnit::Megabytes,
    };
    let factor: u64 = match size_unit {
        RequestSizeUnit::Megabytes => 1_048_576,
        RequestSizeUnit::Kilobytes => 1024,
        RequestSizeUnit::Bytes => 1,
    };
    let allowed_payload_size = match &size {
        Some(s) => {
            let v = s.value as u64;
            if v.checked_mul(factor).is_none() {
                d.push(
                    Diagnostic::error(
                        "K0663",
                        s.span,
                        format!(
                            "allowed_payload_size {v} {} does not fit in 64 bits of bytes",
                            unit.as_ref().map_or("megabytes", |u| u.value)
                        ),
                    )
                    .label("too large")
                    .help(format!(
                        "use at most {} in this size_unit",
                        u64::MAX / factor
                    )),
                );
                return None;
            }
            v
        }
        None => 128,
    };
    Some(PluginConfig::RequestSizeLimiting(RequestSizeLimiting {
        allowed_payload_size,
        size_unit,
        require_content_length,
    }))
}
