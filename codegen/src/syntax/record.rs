//! Reading a YAML mapping as a record with typed fields.
//!
//! Every accessor records the field name as *known*, so [`Record::finish`] can report the
//! fields nobody asked for as unknown (K0101) with a did-you-mean taken from the known ones.
//! Accessors never stop at an error: they push a diagnostic and return `None`, so one pass
//! over a file reports every mistake.

use crate::diag::{Diagnostic, Diagnostics, Span};

use super::{Node, NodeKind};

/// A value with the span of where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Self {
        Sp { value, span }
    }
}

/// A mapping being read as a Kong entity or config record.
pub struct Record<'a> {
    /// "service", "route", "plugin config"… used in messages.
    pub what: &'static str,
    /// Span of the first key (or of the mapping when it is empty).
    pub span: Span,
    entries: &'a [(Node, Node)],
    used: Vec<bool>,
    known: Vec<&'static str>,
}

pub fn wrong_type(node: &Node, expected: &str, field: &str) -> Diagnostic {
    Diagnostic::error(
        "K0100",
        node.span,
        format!(
            "expected {expected} for `{field}`, found {}",
            node.kind.type_name()
        ),
    )
    .label(format!("expected {expected}"))
    .help(format!("write `{field}` as {expected}"))
}

impl<'a> Record<'a> {
    /// `None` (and K0100) when `node` is not a mapping.
    pub fn new(node: &'a Node, what: &'static str, d: &mut Diagnostics) -> Option<Self> {
        match &node.kind {
            NodeKind::Map(entries) => Some(Record {
                what,
                span: entries.first().map(|(k, _)| k.span).unwrap_or(node.span),
                entries,
                used: vec![false; entries.len()],
                known: Vec::new(),
            }),
            other => {
                d.push(
                    Diagnostic::error(
                        "K0100",
                        node.span,
                        format!("expected a mapping for {what}, found {}", other.type_name()),
                    )
                    .label("expected a mapping")
                    .help(format!("write the {what} as `key: value` pairs")),
                );
                None
            }
        }
    }

    fn find(&mut self, key: &'static str) -> Option<usize> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        let i = self
            .entries
            .iter()
            .position(|(k, _)| k.as_str() == Some(key))?;
        self.used[i] = true;
        Some(i)
    }

    /// The value of `key`; an explicit `null` counts as absent (as in Kong).
    pub fn raw(&mut self, key: &'static str) -> Option<&'a Node> {
        let entries = self.entries;
        let i = self.find(key)?;
        let v = &entries[i].1;
        (!v.is_null()).then_some(v)
    }

    /// Span of the key itself, if written (null values included).
    pub fn key_span(&mut self, key: &'static str) -> Option<Span> {
        let entries = self.entries;
        self.find(key).map(|i| entries[i].0.span)
    }

    /// Whether `key` is written with a non-null value; does not mark it as known.
    pub fn has(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, v)| k.as_str() == Some(key) && !v.is_null())
    }

    /// A string field. Empty strings are refused, as Kong's schema does for every string
    /// field (`len_min` defaults to 1).
    pub fn str(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Sp<String>> {
        let node = self.raw(key)?;
        match &node.kind {
            NodeKind::Str(s) if s.is_empty() => {
                d.push(
                    Diagnostic::error("K0103", node.span, format!("`{key}` is empty"))
                        .label("length must be at least 1")
                        .help(format!("give `{key}` a value, or leave the field out")),
                );
                None
            }
            NodeKind::Str(s) => Some(Sp::new(s.clone(), node.span)),
            _ => {
                d.push(wrong_type(node, "a string", key));
                None
            }
        }
    }

    /// A required string: K0102 when absent.
    pub fn req_str(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Sp<String>> {
        if self.raw(key).is_none() {
            d.push(self.missing(key));
            return None;
        }
        self.str(key, d)
    }

    pub fn missing(&self, key: &str) -> Diagnostic {
        Diagnostic::error(
            "K0102",
            self.span,
            format!("missing required field `{key}` in {}", self.what),
        )
        .label(format!("this {} has no `{key}`", self.what))
        .help(format!("add `{key}: ...` to this {}", self.what))
    }

    pub fn bool(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Sp<bool>> {
        let node = self.raw(key)?;
        match node.kind {
            NodeKind::Bool(b) => Some(Sp::new(b, node.span)),
            _ => {
                d.push(wrong_type(node, "a boolean (true or false)", key));
                None
            }
        }
    }

    /// An integer within `lo..=hi` (K0100 when not an integer, K0103 when out of range).
    pub fn int(
        &mut self,
        key: &'static str,
        lo: i64,
        hi: i64,
        d: &mut Diagnostics,
    ) -> Option<Sp<i64>> {
        let node = self.raw(key)?;
        int_in(node, key, lo, hi, d)
    }

    /// One of `allowed` (K0104 otherwise, with a did-you-mean).
    pub fn one_of(
        &mut self,
        key: &'static str,
        allowed: &[&'static str],
        d: &mut Diagnostics,
    ) -> Option<Sp<&'static str>> {
        let s = self.str(key, d)?;
        match allowed.iter().find(|a| **a == s.value) {
            Some(a) => Some(Sp::new(*a, s.span)),
            None => {
                d.push(not_one_of(&s, key, allowed));
                None
            }
        }
    }

    pub fn seq(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<&'a [Node]> {
        let node = self.raw(key)?;
        match &node.kind {
            NodeKind::Seq(items) => Some(items),
            _ => {
                d.push(wrong_type(node, "an array", key));
                None
            }
        }
    }

    /// An array of strings; items of another type are reported and skipped.
    pub fn str_list(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Vec<Sp<String>>> {
        let items = self.seq(key, d)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match &item.kind {
                NodeKind::Str(s) => out.push(Sp::new(s.clone(), item.span)),
                _ => d.push(wrong_type(item, "a string", key)),
            }
        }
        Some(out)
    }

    /// Whether some written field has not been asked for yet, apart from `later` (fields the
    /// caller will still read). Used to avoid follow-up errors caused by a misspelled field
    /// (`pathz` should give "unknown field", not also "route matches nothing").
    pub fn has_unknown(&self, later: &[&str]) -> bool {
        self.entries.iter().zip(&self.used).any(|((k, _), used)| {
            let name = k.as_str().unwrap_or_default();
            !used && !later.contains(&name) && !name.starts_with('_')
        })
    }

    /// Reports the fields that no accessor asked for (K0101), and checks `_comment` /
    /// `_ignore`, which Kong accepts in any entity.
    pub fn finish(mut self, d: &mut Diagnostics) {
        if let Some(c) = self.raw("_comment") {
            if c.as_str().is_none() {
                d.push(wrong_type(c, "a string", "_comment"));
            }
        }
        if let Some(c) = self.raw("_ignore") {
            if !matches!(c.kind, NodeKind::Seq(_)) {
                d.push(wrong_type(c, "an array", "_ignore"));
            }
        }
        for (i, (k, _)) in self.entries.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let name = k.as_str().unwrap_or("?");
            let candidates: Vec<&str> = self
                .known
                .iter()
                .copied()
                .filter(|c| !c.starts_with('_'))
                .collect();
            let help = match did_you_mean(name, &candidates) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "remove it; the fields of a {} are: {}",
                    self.what,
                    candidates.join(", ")
                ),
            };
            d.push(
                Diagnostic::error(
                    "K0101",
                    k.span,
                    format!("unknown field `{name}` in {}", self.what),
                )
                .label(format!("not a {} field", self.what))
                .help(help),
            );
        }
    }
}

pub fn int_in(node: &Node, key: &str, lo: i64, hi: i64, d: &mut Diagnostics) -> Option<Sp<i64>> {
    match node.kind {
        NodeKind::Int(i) if i >= i128::from(lo) && i <= i128::from(hi) => {
            // In range, so it fits i64.
            Some(Sp::new(i as i64, node.span))
        }
        NodeKind::Int(i) => {
            d.push(
                Diagnostic::error("K0103", node.span, format!("`{key}` is out of range: {i}"))
                    .label(format!("must be between {lo} and {hi}"))
                    .help(format!("use a value between {lo} and {hi}")),
            );
            None
        }
        _ => {
            d.push(wrong_type(node, "an integer", key));
            None
        }
    }
}

pub fn not_one_of(s: &Sp<String>, key: &str, allowed: &[&str]) -> Diagnostic {
    let list = allowed
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let help = match did_you_mean(&s.value, allowed) {
        Some(m) => format!("did you mean `{m}`? (expected one of {list})"),
        None => format!("expected one of {list}"),
    };
    Diagnostic::error(
        "K0104",
        s.span,
        format!("invalid value `{}` for `{key}`", s.value),
    )
    .label("not an accepted value")
    .help(help)
}

/// The closest candidate within an edit distance of about a third of its length.
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let dist = levenshtein(&word.to_ascii_lowercase(), &c.to_ascii_lowercase());
        let limit = (c.chars().count() / 3).max(1);
        if dist <= limit && best.is_none_or(|(b, _)| dist < b) {
            best = Some((dist, c));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
