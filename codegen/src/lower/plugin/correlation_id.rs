//! `correlation-id` config (kong-compat.md §4.12): Kong's fields, defaults and checks.

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{record::Record, Node},
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "correlation-id config", d)?;
    let header_name = r.str("header_name", d);
    if let Some(h) = &header_name {
        if h.value.is_empty()
            || !h
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            d.push(
                Diagnostic::error(
                    "K0604",
                    h.span,
                    format!("invalid header name `{}`", h.value),
                )
                .label("not a header name")
                .help("use letters, digits and `-`, e.g. `X-Request-ID`"),
            );
        }
    }
    let generator = match r
        .one_of("generator", &["uuid", "uuid#counter", "tracker"], d)
        .map(|g| g.value)
    {
        Some("uuid") => CorrelationGenerator::Uuid,
        Some("tracker") => CorrelationGenerator::Tracker,
        _ => CorrelationGenerator::UuidCounter,
    };
    let echo_downstream = r.bool("echo_downstream", d).is_some_and(|b| b.value);
    r.finish(d);
    Some(PluginConfig::CorrelationId(CorrelationId {
        header_name: header_name.map_or_else(|| "Kong-Request-ID".to_owned(), |h| h.value),
        generator,
        echo_downstream,
    }))
}
