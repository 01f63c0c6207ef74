//! Lowering decisions of request-validator: Kong's defaults, the drafts, where K0680
//! points, and the runtime feature a gateway using it needs.

use kiln_runtime::plugins::request_validator::Draft;

use crate::diag::{SourceFile, Span};
use crate::ir::{PluginConfig, RequestValidator};

fn lower(config: &str) -> (Option<RequestValidator>, Vec<(&'static str, Span)>) {
    let text = format!(
        "_format_version: \"3.0\"\nplugins:\n- name: request-validator\n  config:\n{config}"
    );
    let file = SourceFile {
        name: "t.yml".into(),
        text,
    };
    let (ir, diags) = crate::lower::check(&file);
    let rv = ir.and_then(|c| match c.plugins.into_iter().next()?.config {
        PluginConfig::RequestValidator(r) => Some(r),
        _ => None,
    });
    let codes = diags
        .into_sorted()
        .iter()
        .map(|d| (d.code, d.primary.span))
        .collect();
    (rv, codes)
}

#[test]
fn kongs_defaults() {
    let (rv, diags) = lower("    version: draft4\n    body_schema: '{\"type\": \"object\"}'\n");
    assert!(diags.is_empty(), "{diags:?}");
    let rv = rv.expect("lowers");
    assert_eq!(rv.version, Draft::Draft4);
    assert_eq!(
        rv.allowed_content_types,
        vec!["application/json".to_owned()]
    );
    assert!(rv.content_type_parameter_validation);
    assert!(!rv.verbose_response);
    assert_eq!(rv.body_schema, "{\"type\": \"object\"}");
}

#[test]
fn every_draft_and_the_fields() {
    for (name, draft) in Draft::KONG_NAMES {
        let (rv, diags) = lower(&format!(
            "    version: {name}\n    body_schema: '{{}}'\n    verbose_response: true\n    content_type_parameter_validation: false\n    allowed_content_types: [text/plain, 'application/json; charset=utf-8']\n"
        ));
        assert!(diags.is_empty(), "{name}: {diags:?}");
        let rv = rv.expect("lowers");
        assert_eq!(rv.version, draft);
        assert!(rv.verbose_response && !rv.content_type_parameter_validation);
        assert_eq!(
            rv.allowed_content_types,
            vec![
                "text/plain".to_owned(),
                "application/json; charset=utf-8".to_owned()
            ]
        );
    }
}

#[test]
fn errors_and_where_they_point() {
    let span = |line, col| Span { line, col, len: 1 };
    let cases: &[(&str, &[(&str, Span)])] = &[
        // literal block: line 2 of the schema is line 8 of the file
        (
            "    version: draft7\n    body_schema: |\n      {\"type\":\n        \"object\" ]\n",
            &[("K0680", span(8, 18))],
        ),
        // plain one-line scalar
        (
            "    version: draft7\n    body_schema: 1 2\n",
            &[("K0680", span(6, 20))],
        ),
        (
            "    version: draft7\n    body_schema: '[1,,2]'\n",
            &[("K0680", span(6, 22))],
        ),
        (
            "    version: draft7\n    body_schema: \"[1,,2]\"\n",
            &[("K0680", span(6, 22))],
        ),
    ];
    for (config, expected) in cases {
        let (rv, diags) = lower(config);
        assert_eq!(&diags, expected, "{config}");
        assert!(rv.is_none());
    }
    let codes = |config: &str| lower(config).1.into_iter().map(|d| d.0).collect::<Vec<_>>();
    assert_eq!(codes("    body_schema: '{}'\n"), ["K0681"]);
    assert_eq!(
        codes("    version: kong\n    body_schema: '[]'\n"),
        ["K0681"]
    );
    assert_eq!(
        codes("    version: draft5\n    body_schema: '{}'\n"),
        ["K0104"]
    );
    assert_eq!(
        codes("    version: draft4\n    body_schema: '{\"minimum\": \"1\"}'\n"),
        ["K0682"]
    );
    assert_eq!(
        codes("    version: draft4\n    body_schema: ''\n"),
        ["K0103"]
    );
    // a mapping instead of a JSON string: a type error, no follow-up
    assert_eq!(
        codes("    version: draft4\n    body_schema: {type: object}\n"),
        ["K0100"]
    );
    assert_eq!(codes("    version: draft4\n"), ["K0684"]);
    assert_eq!(
        codes("    version: draft4\n    body_schema: '{}'\n    parameter_schema: []\n"),
        ["K0683"]
    );
    assert_eq!(
        codes("    version: draft4\n    body_schema: '{}'\n    allowed_content_types: [json]\n"),
        ["K0685"]
    );
}

#[test]
fn gateways_using_it_turn_on_the_jsonschema_feature() {
    let file = SourceFile {
        name: "t.yml".into(),
        text: "_format_version: \"3.0\"\nplugins:\n- name: request-validator\n  config:\n    version: draft4\n    body_schema: '{}'\n- name: cors\n".into(),
    };
    let compiled = crate::write::generate(&file).expect("compiles");
    assert_eq!(compiled.runtime_features(), ["jsonschema"]);
    let file = SourceFile {
        name: "t.yml".into(),
        text: "_format_version: \"3.0\"\nplugins:\n- name: cors\n".into(),
    };
    let compiled = crate::write::generate(&file).expect("compiles");
    assert!(compiled.runtime_features().is_empty());
}
