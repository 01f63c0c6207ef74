//! `request-termination` config (kong-compat.md §4.9): Kong's fields, defaults and checks.

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{
        record::{Record, Sp},
        Node,
    },
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "request-termination config", d)?;
    let status_code = r
        .int("status_code", 100, 599, d)
        .map_or(503, |s| s.value as u16);
    let message = r.str("message", d);
    let body = r.str("body", d);
    let content_type = r.str("content_type", d);
    let echo = r.bool("echo", d);
    let trigger = r.str("trigger", d);
    r.finish(d);
    let conflict = |d: &mut Diagnostics,
                    a: &Sp<String>,
                    b_name: &str,
                    b: crate::diag::Span,
                    msg: &str,
                    help: &str| {
        d.push(
            Diagnostic::error("K0603", a.span, msg.to_owned())
                .label("conflicts")
                .secondary(b, format!("`{b_name}` set here"))
                .help(help.to_owned()),
        );
    };
    if let Some(m) = &message {
        if let Some(b) = &body {
            conflict(d, m, "body", b.span, "`message` cannot be combined with `body`", "use `message` for a JSON `{\"message\": ...}` body, or `body` + `content_type` for a raw body");
        }
        if let Some(c) = &content_type {
            conflict(
                d,
                m,
                "content_type",
                c.span,
                "`message` cannot be combined with `content_type`",
                "remove `content_type`, or replace `message` with `body`",
            );
        }
    }
    if let (Some(c), None) = (&content_type, &body) {
        d.push(
            Diagnostic::error("K0603", c.span, "`content_type` requires `body`")
                .label("no `body`")
                .help("add `body: ...` or remove `content_type`"),
        );
    }
    if let (Some(e), Some(b)) = (&echo, &body) {
        if e.value {
            d.push(
                Diagnostic::error(
                    "K0603",
                    b.span,
                    "`body` cannot be combined with `echo: true`",
                )
                .label("conflicts")
                .secondary(e.span, "`echo` set here")
                .help("remove `body` or `echo`"),
            );
        }
    }
    Some(PluginConfig::RequestTermination(RequestTermination {
        status_code,
        message: message.map(|m| m.value),
        body: body.map(|b| b.value),
        content_type: content_type.map(|c| c.value),
        echo: echo.is_some_and(|e| e.value),
        trigger: trigger.map(|t| t.value),
    }))
}
