//! Diagnostics: every user mistake gets a stable code, a `file:line:col`, a source snippet
//! and a `help:` line. Stages collect all their diagnostics and report them together.

use std::fmt::Write as _;

/// A place in the config file: 1-based line and column (in characters), and the length in
/// characters of the marked text on that line (0 is shown as one caret).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    pub line: u32,
    pub col: u32,
    pub len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// A marked place with a short text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable code, e.g. `K0201`; documented in docs/diagnostics.md.
    pub code: &'static str,
    pub message: String,
    pub primary: Label,
    /// Other places involved (the first definition of a duplicate, the shadowing route…).
    pub secondary: Vec<Label>,
    /// What to write instead.
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            primary: Label {
                span,
                text: String::new(),
            },
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    /// Text under the primary carets.
    pub fn label(mut self, text: impl Into<String>) -> Self {
        self.primary.text = text.into();
        self
    }

    pub fn secondary(mut self, span: Span, text: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            text: text.into(),
        });
        self
    }

    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }
}

/// The diagnostics of one run, in the order found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Sorted by position for stable output.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by(|a, b| (a.primary.span, a.code).cmp(&(b.primary.span, b.code)));
        self.items
    }

    /// All diagnostics rendered against `file`, then a summary line.
    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = String::new();
        for d in self.clone().into_sorted() {
            out.push_str(&render(file, &d));
            out.push('\n');
        }
        let errors = self.error_count();
        let warnings = self.items.len() - errors;
        if !self.items.is_empty() {
            let _ = writeln!(
                out,
                "{}: {errors} error(s), {warnings} warning(s)",
                file.name
            );
        }
        out
    }
}

/// The config file being compiled.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As given on the command line (never made absolute).
    pub name: String,
    pub text: String,
}

/// Renders one diagnostic like rustc does:
///
/// ```text
/// error[K0101]: unknown field `pathz` in route
///   --> kong.yml:7:7
///    |
///  7 |       pathz: [/a]
///    |       ^^^^^ not a route field
///    |
///    = help: did you mean `paths`?
/// ```
pub fn render(file: &SourceFile, d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = String::new();
    let _ = writeln!(out, "{sev}[{}]: {}", d.code, d.message);
    let width = std::iter::once(&d.primary)
        .chain(&d.secondary)
        .map(|l| l.span.line.to_string().len())
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(width);
    let _ = writeln!(
        out,
        "{pad}--> {}:{}:{}",
        file.name, d.primary.span.line, d.primary.span.col
    );
    let _ = writeln!(out, "{pad} |");
    // Labels in file order, as rustc shows them; `...` marks skipped lines.
    let mut labels: Vec<(&Label, char)> = std::iter::once((&d.primary, '^'))
        .chain(d.secondary.iter().map(|l| (l, '-')))
        .collect();
    labels.sort_by_key(|(l, _)| (l.span.line, l.span.col));
    let mut last_line: Option<u32> = None;
    for (l, mark) in labels {
        match last_line {
            Some(prev) if prev == l.span.line => {
                marks(&mut out, file, l, mark, width);
                continue;
            }
            Some(prev) if l.span.line > prev + 1 => {
                let _ = writeln!(out, "{:>width$}", "...");
            }
            _ => {}
        }
        snippet(&mut out, file, l, mark, width);
        last_line = Some(l.span.line);
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{pad} = help: {help}");
    }
    out
}

fn snippet(out: &mut String, file: &SourceFile, l: &Label, mark: char, width: usize) {
    let line_text = file
        .text
        .lines()
        .nth(l.span.line.saturating_sub(1) as usize)
        .unwrap_or("");
    let _ = writeln!(out, "{:>width$} | {}", l.span.line, line_text);
    marks(out, file, l, mark, width);
}

/// The caret line under a source line.
fn marks(out: &mut String, file: &SourceFile, l: &Label, mark: char, width: usize) {
    let line_text = file
        .text
        .lines()
        .nth(l.span.line.saturating_sub(1) as usize)
        .unwrap_or("");
    let lead: String = line_text
        .chars()
        .take(l.span.col.saturating_sub(1) as usize)
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let carets: String = std::iter::repeat_n(mark, l.span.len.max(1) as usize).collect();
    let text = if l.text.is_empty() {
        String::new()
    } else {
        format!(" {}", l.text)
    };
    let _ = writeln!(out, "{:>width$} | {lead}{carets}{text}", "");
}
