//! syntax → ir: reads the spanned tree as Kong's declarative config, applies Kong's
//! defaults, resolves references, derives Kong's ids, and checks everything Kiln can check
//! before build time. All diagnostics of the stage are collected and returned together.
//!
//! ```
//! use kiln_codegen::diag::SourceFile;
//! let file = SourceFile {
//!     name: "kong.yml".into(),
//!     text: "_format_version: \"3.0\"\nservices:\n- name: a\n  url: http://up:8080\n  routes:\n  - paths: [/a]\n".into(),
//! };
//! let (config, diags) = kiln_codegen::lower::check(&file);
//! assert!(!diags.has_errors());
//! let config = config.expect("valid");
//! assert_eq!(config.services[0].port, 8080);
//! assert_eq!(config.routes[0].service.map(|s| s.index()), Some(0));
//! ```
//!
//! Diagnostic codes are documented in docs/diagnostics.md.

mod consumer;
mod ids;
mod plugin;
mod resolve;
mod route;
pub mod rules;
pub(crate) mod secret;
mod service;
mod upstream;

use crate::diag::{Diagnostic, Diagnostics, SourceFile, Span};
use crate::ir;
use crate::syntax::record::{did_you_mean, Record, Sp};
use crate::syntax::{self, Node, NodeKind};

/// Parses and checks `file`. The config is `Some` only when there is no error; warnings may
/// accompany it.
pub fn check(file: &SourceFile) -> (Option<ir::Config>, Diagnostics) {
    let (node, mut diags) = syntax::parse(file);
    let Some(node) = node else {
        return (None, diags);
    };
    let mut cx = Cx {
        source: file.text.clone(),
        transform: true,
        ..Cx::default()
    };
    cx.lower_top(&node);
    let config = cx.finish();
    diags.extend(std::mem::take(&mut cx.d));
    if diags.has_errors() {
        (None, diags)
    } else {
        (config, diags)
    }
}

/// How an entity is attached to a parent entity.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parent {
    None,
    /// Written inside the parent: index into the parent's draft vector.
    Nested(usize),
    /// Top-level, with `service: <name or id>` etc.
    Ref(Sp<String>),
}

pub(crate) struct SvcDraft {
    pub ir: ir::Service,
    pub id: Option<Sp<String>>,
    pub name: Option<Sp<String>>,
}

pub(crate) struct RouteDraft {
    pub ir: ir::Route,
    pub id: Option<Sp<String>>,
    pub name: Option<Sp<String>>,
    pub service: Parent,
}

pub(crate) struct UpstreamDraft {
    pub ir: ir::Upstream,
    pub id: Option<Sp<String>>,
    pub name: Sp<String>,
}

pub(crate) struct TargetDraft {
    pub ir: ir::Target,
    /// `host:port` as written (Kong's cache key uses it).
    pub target: Sp<String>,
    pub upstream: Parent,
}

pub(crate) struct ConsumerDraft {
    pub ir: ir::Consumer,
    pub id: Option<Sp<String>>,
    pub username: Option<Sp<String>>,
    pub custom_id: Option<Sp<String>>,
}

pub(crate) enum Credential {
    KeyAuth(ir::KeyAuthCredential, Sp<String>),
    BasicAuth(ir::BasicAuthCredential, Sp<String>),
    Jwt(ir::JwtSecret, Sp<String>),
    Acl(ir::AclGroup, Sp<String>),
}

pub(crate) struct CredentialDraft {
    pub cred: Credential,
    pub consumer: Parent,
}

pub(crate) struct PluginDraft {
    pub name: Sp<String>,
    pub config: ir::PluginConfig,
    pub id: Option<Sp<String>>,
    pub instance_name: Option<Sp<String>>,
    pub route: Parent,
    pub service: Parent,
    pub consumer: Parent,
    pub protocols: Vec<ir::Protocol>,
    pub enabled: bool,
    pub origin: Span,
}

/// The lowering context: diagnostics and the entities collected so far (nested ones
/// flattened, with their parent recorded).
#[derive(Default)]
pub(crate) struct Cx {
    pub d: Diagnostics,
    /// The file text, to point inside written values (regex errors).
    pub source: String,
    /// `_format_version` 1.1 / 2.1: route paths are migrated.
    pub legacy_paths: bool,
    /// `_transform` (default true); false: basic-auth passwords are already hashed.
    pub transform: bool,
    pub services: Vec<SvcDraft>,
    pub routes: Vec<RouteDraft>,
    pub upstreams: Vec<UpstreamDraft>,
    pub targets: Vec<TargetDraft>,
    pub consumers: Vec<ConsumerDraft>,
    pub credentials: Vec<CredentialDraft>,
    pub plugins: Vec<PluginDraft>,
}

/// Entity arrays Kong accepts that Kiln does not implement yet.
const UNSUPPORTED_ENTITIES: &[(&str, &str)] = &[
    ("certificates", "TLS termination is not implemented yet"),
    ("snis", "TLS termination is not implemented yet"),
    ("ca_certificates", "upstream TLS is not implemented yet"),
    ("vaults", "only `{vault://env/NAME}` references are planned"),
    ("keys", "the keys entity is not implemented yet"),
    ("key_sets", "the key_sets entity is not implemented yet"),
    ("filter_chains", "Kiln has no Wasm filter support"),
    (
        "hmacauth_credentials",
        "the hmac-auth plugin is not implemented yet",
    ),
    (
        "oauth2_credentials",
        "the oauth2 plugin is not implemented yet",
    ),
];

impl Cx {
    fn lower_top(&mut self, node: &Node) {
        let Some(mut r) = Record::new(node, "declarative config", &mut self.d) else {
            return;
        };
        self.format_version(&mut r);
        if let Some(t) = r.bool("_transform", &mut self.d) {
            self.transform = t.value;
        }
        // Kong's decK metadata is not part of the format; Kong rejects it too (unknown field).
        if let Some(items) = r.seq("upstreams", &mut self.d) {
            for item in items {
                self.lower_upstream(item);
            }
        }
        if let Some(items) = r.seq("services", &mut self.d) {
            for item in items {
                self.lower_service(item);
            }
        }
        if let Some(items) = r.seq("routes", &mut self.d) {
            for item in items {
                self.lower_route(item, None);
            }
        }
        if let Some(items) = r.seq("targets", &mut self.d) {
            for item in items {
                self.lower_target(item, None);
            }
        }
        if let Some(items) = r.seq("consumers", &mut self.d) {
            for item in items {
                self.lower_consumer(item);
            }
        }
        for kind in consumer::CREDENTIAL_KINDS {
            if let Some(items) = r.seq(kind, &mut self.d) {
                for item in items {
                    self.lower_credential(kind, item, None);
                }
            }
        }
        if let Some(items) = r.seq("plugins", &mut self.d) {
            for item in items {
                self.lower_plugin(item, PluginParent::Top);
            }
        }
        for (kind, why) in UNSUPPORTED_ENTITIES {
            self.unsupported_entity(&mut r, kind, why);
        }
        r.finish(&mut self.d);
    }

    /// An entity array Kiln does not implement: an error unless it is empty.
    pub(crate) fn unsupported_entity(&mut self, r: &mut Record, kind: &'static str, why: &str) {
        let Some(span) = r.key_span(kind) else { return };
        let Some(value) = r.raw(kind) else { return };
        if matches!(&value.kind, NodeKind::Seq(items) if items.is_empty()) {
            return;
        }
        self.d.push(
            Diagnostic::error(
                "K0013",
                span,
                format!("`{kind}` are not supported by Kiln yet"),
            )
            .label("not supported yet")
            .help(format!("{why}; remove this section")),
        );
    }

    fn format_version(&mut self, r: &mut Record) {
        let Some(node) = r.raw("_format_version") else {
            let d = r
                .missing("_format_version")
                .with_code("K0010")
                .help("add `_format_version: \"3.0\"` at the top of the file");
            self.d.push(d);
            return;
        };
        match &node.kind {
            NodeKind::Str(v) if v == "3.0" => {}
            NodeKind::Str(v) if v == "1.1" || v == "2.1" => self.legacy_paths = true,
            NodeKind::Float(_) | NodeKind::Int(_) => self.d.push(
                Diagnostic::error("K0011", node.span, "`_format_version` must be a string")
                    .label("a number, not a string")
                    .help("quote it: `_format_version: \"3.0\"`"),
            ),
            _ => self.d.push(
                Diagnostic::error("K0011", node.span, "unsupported `_format_version`")
                    .label("not one of \"1.1\", \"2.1\", \"3.0\"")
                    .help("use `_format_version: \"3.0\"`"),
            ),
        }
    }

    /// The `id` field: must be a UUID.
    pub(crate) fn explicit_id(&mut self, r: &mut Record) -> Option<Sp<String>> {
        let id = r.str("id", &mut self.d)?;
        if ids::is_uuid(&id.value) {
            Some(Sp::new(id.value.to_ascii_lowercase(), id.span))
        } else {
            self.d.push(
                Diagnostic::error("K0702", id.span, format!("`{}` is not a valid UUID", id.value))
                    .label("expected a UUID")
                    .help("write an id like `9748f662-7711-4a90-8186-dc02f10eb0f5`, or remove it to let Kiln derive one"),
            );
            None
        }
    }

    /// `name`: Kong's charset for service and route names.
    pub(crate) fn entity_name(&mut self, r: &mut Record) -> Option<Sp<String>> {
        let name = r.str("name", &mut self.d)?;
        if let Err(c) = rules::check_name(&name.value) {
            let what = if c == ' ' && name.value.is_empty() {
                "empty name".to_owned()
            } else {
                format!("invalid character {c:?} in name")
            };
            self.d.push(
                Diagnostic::error("K0200", name.span, what)
                    .label("not allowed in a name")
                    .help("names may use letters, digits, `.`, `-`, `_`, `~` (and non-ASCII characters)"),
            );
            return None;
        }
        Some(name)
    }

    /// `tags`: an array of strings in Kong's tag charset.
    pub(crate) fn tags(&mut self, r: &mut Record) {
        let Some(tags) = r.str_list("tags", &mut self.d) else {
            return;
        };
        for t in tags {
            if let Err(c) = rules::check_tag(&t.value) {
                self.d.push(
                    Diagnostic::error("K0207", t.span, format!("invalid character {c:?} in tag"))
                        .label("not allowed in a tag")
                        .help("tags are printable characters except `,` and `/`"),
                );
            }
        }
    }

    /// A foreign key written in a record: top-level entities may name their parent;
    /// nested ones may not (the parent is the enclosing record).
    pub(crate) fn foreign(
        &mut self,
        r: &mut Record,
        field: &'static str,
        nested_in: Option<&str>,
    ) -> Parent {
        let Some(key_span) = r.key_span(field) else {
            return Parent::None;
        };
        let Some(node) = r.raw(field) else {
            return Parent::None;
        };
        if let Some(parent) = nested_in {
            self.d.push(
                Diagnostic::error(
                    "K0703",
                    key_span,
                    format!("a {} nested in a {parent} cannot set `{field}`", r.what),
                )
                .label("its parent is the enclosing entity")
                .help(format!(
                    "remove `{field}`, or move this {} to the top level",
                    r.what
                )),
            );
            return Parent::None;
        }
        match &node.kind {
            NodeKind::Str(s) => Parent::Ref(Sp::new(s.clone(), node.span)),
            NodeKind::Map(entries) => {
                // decK style `service: {id: ...}` / `{name: ...}`.
                let found = entries
                    .iter()
                    .find(|(k, _)| matches!(k.as_str(), Some("id" | "name" | "username")));
                match found.and_then(|(_, v)| v.as_str().map(|s| Sp::new(s.to_owned(), v.span))) {
                    Some(s) => Parent::Ref(s),
                    None => {
                        self.d
                            .push(syntax::record::wrong_type(node, "a name or id", field));
                        Parent::None
                    }
                }
            }
            _ => {
                self.d
                    .push(syntax::record::wrong_type(node, "a name or id", field));
                Parent::None
            }
        }
    }

    fn finish(&mut self) -> Option<ir::Config> {
        resolve::assemble(self)
    }
}

trait WithCode {
    fn with_code(self, code: &'static str) -> Self;
}

impl WithCode for Diagnostic {
    fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

/// Where a plugin record was written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PluginParent {
    Top,
    Service(usize),
    Route(usize),
    Consumer(usize),
}

/// "did you mean" for a reference among the names written in the file.
pub(crate) fn suggest(word: &str, names: &[&str]) -> Option<String> {
    did_you_mean(word, names).map(|s| format!("did you mean `{s}`?"))
}

#[cfg(test)]
mod tests;
