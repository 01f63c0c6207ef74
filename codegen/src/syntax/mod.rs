//! kong.yml as written: a generic YAML tree in which every node (keys included) keeps its
//! [`Span`], plus a [`record::Record`] reader that turns mappings into typed fields while
//! collecting diagnostics (wrong type, out of range, missing, unknown field).
//!
//! Why a generic tree instead of a serde struct model: Kong's schema has many shapes that
//! depend on other fields (url shorthand, nested vs. top-level entities, plugin configs keyed
//! by plugin name), and serde's derive stops at the first error. A tree of spanned nodes lets
//! `lower` report *every* mistake of a file in one run with the exact position.
//!
//! The tree is deserialized by serde-saphyr into `Spanned<Raw>` (its `Spanned` wrapper works
//! on a custom `deserialize_any` type, keys included), with
//! `DuplicateKeyPolicy::PassThrough` so that repeated keys reach us and we can report both
//! places (saphyr's own duplicate error names only the second one).
//!
//! ```
//! use kiln_codegen::diag::SourceFile;
//! use kiln_codegen::syntax::{parse, NodeKind};
//! let file = SourceFile { name: "kong.yml".into(), text: "a: [1, x]\n".into() };
//! let (node, diags) = parse(&file);
//! assert!(diags.is_empty());
//! let node = node.expect("valid yaml");
//! let NodeKind::Map(entries) = &node.kind else { panic!() };
//! assert_eq!(entries[0].1.span.col, 4);
//! ```

pub mod record;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};

/// One YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// Scalars: the written text (quotes included) on its first line. Collections: the
    /// position of the first key / item or of the opening bracket, length 1.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; keys are nodes so that they keep their spans.
    Map(Vec<(Node, Node)>),
}

impl NodeKind {
    /// Used in "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "an array",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }
}

/// Parses `file` (YAML or JSON). On a YAML syntax error returns `None` and one diagnostic
/// (K0001) at the parser's position. Duplicate keys (K0002) and non-string keys (K0003) are
/// reported for every mapping; the tree is still returned (the first entry of a duplicate
/// key is kept, the later ones are dropped) so that later stages can check the rest.
pub fn parse(file: &SourceFile) -> (Option<Node>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        // YAML 1.2 booleans only: `y`, `yes`, `on` stay strings (a key `y:` must not
        // become `true`).
        strict_booleans: true,
    };
    let raw: Spanned<Raw> = match serde_saphyr::from_str_with_options(&file.text, options) {
        Ok(raw) => raw,
        Err(e) => {
            let (line, col) = e
                .location()
                .map(|l| (to_u32(l.line()), to_u32(l.column())))
                .unwrap_or((1, 1));
            let message = e.without_snippet().to_string();
            diags.push(
                Diagnostic::error(
                    "K0001",
                    Span {
                        line: line.max(1),
                        col: col.max(1),
                        len: 1,
                    },
                    format!("invalid YAML: {}", strip_position(&message)),
                )
                .help("fix the YAML syntax at this position (kong.yml may also be JSON)"),
            );
            return (None, diags);
        }
    };
    let lines: Vec<&str> = file.text.lines().collect();
    let node = convert(raw, &lines, &mut diags);
    (Some(node), diags)
}

/// saphyr's messages end with " at line L, column C"; the diagnostic already says where.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn span_of<T>(s: &Spanned<T>, lines: &[&str], scalar: bool) -> Span {
    let line = to_u32(s.referenced.line()).max(1);
    let col = to_u32(s.referenced.column()).max(1);
    let len = if scalar {
        // Clamp to the end of the first line: multi-line scalars are marked on their
        // first line only.
        let avail = lines
            .get(line as usize - 1)
            .map(|l| l.chars().count().saturating_sub(col as usize - 1))
            .unwrap_or(0);
        to_u32(s.referenced.span().len())
            .min(to_u32(avail as u64))
            .max(1)
    } else {
        1
    };
    Span { line, col, len }
}

fn convert(raw: Spanned<Raw>, lines: &[&str], diags: &mut Diagnostics) -> Node {
    let scalar = !matches!(raw.value, Raw::Seq(_) | Raw::Map(_));
    let span = span_of(&raw, lines, scalar);
    let kind = match raw.value {
        Raw::Null => NodeKind::Null,
        Raw::Bool(b) => NodeKind::Bool(b),
        Raw::Int(i) => NodeKind::Int(i),
        Raw::Float(f) => NodeKind::Float(f),
        Raw::Str(s) => NodeKind::Str(s),
        Raw::Seq(items) => NodeKind::Seq(
            items
                .into_iter()
                .map(|i| convert(i, lines, diags))
                .collect(),
        ),
        Raw::Map(entries) => {
            let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
            let mut seen: BTreeMap<String, Span> = BTreeMap::new();
            for (k, v) in entries {
                let key = convert(k, lines, diags);
                let value = convert(v, lines, diags);
                let name = match &key.kind {
                    NodeKind::Str(s) => s.clone(),
                    other => {
                        diags.push(
                            Diagnostic::error(
                                "K0003",
                                key.span,
                                format!(
                                    "mapping key must be a string, found {}",
                                    other.type_name()
                                ),
                            )
                            .label("not a string")
                            .help("quote the key, e.g. \"80\": ..."),
                        );
                        continue;
                    }
                };
                if let Some(first) = seen.get(&name) {
                    diags.push(
                        Diagnostic::error("K0002", key.span, format!("duplicate key `{name}`"))
                            .label("repeated here")
                            .secondary(*first, "first defined here")
                            .help("remove one of the two entries (YAML keys must be unique)"),
                    );
                    continue;
                }
                seen.insert(name, key.span);
                out.push((key, value));
            }
            NodeKind::Map(out)
        }
    };
    Node { kind, span }
}

/// What serde-saphyr hands us; converted to [`Node`] right away.
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Raw, E> {
        i128::try_from(v)
            .map(Raw::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element()? {
            v.push(x);
        }
        Ok(Raw::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Raw, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_entry()? {
            v.push(x);
        }
        Ok(Raw::Map(v))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

#[cfg(test)]
mod tests;
