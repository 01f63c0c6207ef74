use super::*;
use crate::diag::SourceFile;

fn file(text: &str) -> SourceFile {
    SourceFile {
        name: "t.yml".into(),
        text: text.into(),
    }
}

#[test]
fn spans_of_keys_and_values() {
    let (node, d) = parse(&file("a:\n  b: \"xy\"\n  c: [1, 2]\n"));
    assert!(d.is_empty());
    let node = node.expect("parsed");
    let NodeKind::Map(top) = &node.kind else {
        panic!("map")
    };
    let NodeKind::Map(inner) = &top[0].1.kind else {
        panic!("map")
    };
    assert_eq!(
        inner[0].0.span,
        Span {
            line: 2,
            col: 3,
            len: 1
        }
    );
    assert_eq!(
        inner[0].1.span,
        Span {
            line: 2,
            col: 6,
            len: 4
        }
    );
    let NodeKind::Seq(items) = &inner[1].1.kind else {
        panic!("seq")
    };
    assert_eq!(
        items[1].span,
        Span {
            line: 3,
            col: 10,
            len: 1
        }
    );
}

#[test]
fn duplicate_keys_name_both_places() {
    let (node, d) = parse(&file("a: 1\nb: 2\na: 3\n"));
    let d: Vec<_> = d.into_sorted();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "K0002");
    assert_eq!(d[0].primary.span.line, 3);
    assert_eq!(d[0].secondary[0].span.line, 1);
    let NodeKind::Map(m) = node.expect("tree").kind else {
        panic!("map")
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].1.kind, NodeKind::Int(1));
}

#[test]
fn syntax_error_has_position() {
    let (node, d) = parse(&file("a: [1\nb: 2\n"));
    assert!(node.is_none());
    let d = d.into_sorted();
    assert_eq!(d[0].code, "K0001");
    assert_eq!(d[0].primary.span.line, 2);
}

#[test]
fn json_is_yaml() {
    let (node, d) = parse(&file("{\"a\": [true, null, 1.5]}"));
    assert!(d.is_empty());
    let NodeKind::Map(m) = node.expect("tree").kind else {
        panic!("map")
    };
    let NodeKind::Seq(s) = &m[0].1.kind else {
        panic!("seq")
    };
    assert_eq!(s[0].kind, NodeKind::Bool(true));
    assert_eq!(s[1].kind, NodeKind::Null);
    assert_eq!(s[2].kind, NodeKind::Float(1.5));
}

#[test]
fn yaml11_booleans_stay_strings() {
    let (node, _) = parse(&file("y: yes\n"));
    let NodeKind::Map(m) = node.expect("tree").kind else {
        panic!("map")
    };
    assert_eq!(m[0].0.as_str(), Some("y"));
    assert_eq!(m[0].1.as_str(), Some("yes"));
}

#[test]
fn did_you_mean_picks_close_names() {
    use record::did_you_mean;
    assert_eq!(did_you_mean("pathz", &["paths", "hosts"]), Some("paths"));
    assert_eq!(did_you_mean("xyz", &["paths", "hosts"]), None);
}
