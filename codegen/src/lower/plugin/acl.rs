//! `acl` config (kong-compat.md §4.4): Kong's fields, defaults and checks, plus Kiln's
//! checks of group names (here and in consumers' `acls`) and of groups no consumer holds.

use crate::{
    diag::{Diagnostic, Diagnostics},
    ir::*,
    syntax::{
        record::{did_you_mean, Record, Sp},
        Node,
    },
};

pub(crate) fn lower(node: &Node, d: &mut Diagnostics) -> Option<PluginConfig> {
    let mut r = Record::new(node, "acl config", d)?;
    let allow_key = r.key_span("allow");
    let deny_key = r.key_span("deny");
    // Kong's `only_one_of` / `at_least_one_of` treat an empty array as absent.
    let allow = r.str_list("allow", d).filter(|l| !l.is_empty());
    let deny = r.str_list("deny", d).filter(|l| !l.is_empty());
    let hide_groups_header = r.bool("hide_groups_header", d).is_some_and(|b| b.value);
    let always_use_authenticated_groups = r
        .bool("always_use_authenticated_groups", d)
        .is_some_and(|b| b.value);
    let span = r.span;
    r.finish(d);
    let (deny, groups) = match (allow, deny) {
        (Some(_), Some(_)) => {
            let (Some(a), Some(b)) = (allow_key, deny_key) else {
                return None;
            };
            d.push(
                Diagnostic::error("K0640", b, "acl takes `allow` or `deny`, not both")
                    .label("second list")
                    .secondary(a, "`allow` set here")
                    .help("use one acl list; Kong's schema allows only one of `allow` and `deny`"),
            );
            return None;
        }
        (None, None) => {
            d.push(
                Diagnostic::error(
                    "K0640",
                    span,
                    "acl needs a non-empty `allow` or `deny` list",
                )
                .label("no groups to check")
                .help("add `allow: [group, ...]` or `deny: [group, ...]`"),
            );
            return None;
        }
        (Some(a), None) => (false, a),
        (None, Some(b)) => (true, b),
    };
    let mut ok = true;
    for g in &groups {
        ok &= check_group(g, d);
    }
    ok.then(|| {
        PluginConfig::Acl(Acl {
            deny,
            spans: groups.iter().map(|g| g.span).collect(),
            groups: groups.into_iter().map(|g| g.value).collect(),
            hide_groups_header,
            always_use_authenticated_groups,
        })
    })
}

/// A group name must be something a consumer's `acls` entry can hold and
/// `X-Consumer-Groups` can carry: non-empty, no surrounding whitespace, no control
/// characters (K0641).
pub(crate) fn check_group(g: &Sp<String>, d: &mut Diagnostics) -> bool {
    let v = &g.value;
    let problem = if v.is_empty() {
        "is empty"
    } else if v.chars().any(char::is_control) {
        "contains a control character"
    } else if v.trim() != v {
        "starts or ends with whitespace"
    } else {
        return true;
    };
    d.push(
        Diagnostic::error("K0641", g.span, format!("acl group name {v:?} {problem}"))
            .label("not a usable group name")
            .help("group names are compared exactly (case-sensitive) and sent upstream in `X-Consumer-Groups`; write the name without it"),
    );
    false
}

/// Warns (K0642) about each group of an acl list that no consumer's `acls` holds: exact,
/// case-sensitive matching makes a typo silently refuse (allow) or admit (deny) everyone.
pub(crate) fn check_groups_known(acl: &Acl, consumers: &[Consumer], d: &mut Diagnostics) {
    let mut known: Vec<&str> = consumers
        .iter()
        .flat_map(|c| c.acls.iter().map(|a| a.group.as_str()))
        .collect();
    known.sort_unstable();
    known.dedup();
    for (g, span) in acl.groups.iter().zip(&acl.spans) {
        if known.binary_search(&g.as_str()).is_ok() {
            continue;
        }
        let effect = if acl.deny {
            "denies nobody"
        } else {
            "admits nobody through this entry"
        };
        let help = match did_you_mean(g, &known) {
            Some(s) => format!("did you mean `{s}`? (groups are case-sensitive)"),
            None => "add an `acls` entry with this group to a consumer, or remove it".to_owned(),
        };
        d.push(
            Diagnostic::warning("K0642", *span, format!("no consumer is in acl group `{g}`"))
                .label(effect)
                .help(help),
        );
    }
}
