//! Snapshot tests: every fixture under `fixtures/errors/` renders its diagnostics (and must
//! produce the code in its file name); every fixture under `fixtures/ok/` lowers without
//! errors and its IR is snapshotted.

use kiln_codegen::diag::{Severity, SourceFile};
use kiln_codegen::lower::check;

fn load(path: &std::path::Path) -> SourceFile {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    // Relative name only, so snapshots do not depend on the checkout location.
    let name = format!(
        "fixtures/{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
    );
    SourceFile { name, text }
}

#[test]
fn error_fixtures() {
    insta::glob!("fixtures/errors/*.yml", |path| {
        let file = load(path);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 name");
        let code = stem.split('-').next().expect("code prefix");
        let (config, diags) = check(&file);
        assert!(
            diags.iter().any(|d| d.code == code),
            "{stem}: expected a {code} diagnostic, got:\n{}",
            diags.render(&file)
        );
        if diags.iter().any(|d| d.severity == Severity::Error) {
            assert!(config.is_none(), "{stem}: errors but a config was returned");
        }
        insta::assert_snapshot!(diags.render(&file));
    });
}

#[test]
fn ok_fixtures() {
    insta::glob!("fixtures/ok/*.yml", |path| {
        let file = load(path);
        let (config, diags) = check(&file);
        assert!(!diags.has_errors(), "{}", diags.render(&file));
        let config = config.expect("config for a valid file");
        insta::assert_snapshot!(format!("{}{:#?}", diags.render(&file), config));
    });
}

/// Every prefix (by character) of every fixture is checked without panicking, and produces
/// either a config or at least one error.
#[test]
fn truncated_fixtures_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files = Vec::new();
    for sub in ["ok", "errors"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("fixture dir") {
            files.push(entry.expect("dir entry").path());
        }
    }
    files.sort();
    assert!(files.len() > 10);
    for path in files {
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        let cuts: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        for cut in cuts {
            let file = SourceFile {
                name: "t.yml".into(),
                text: text[..cut].to_owned(),
            };
            let (config, diags) = check(&file);
            assert!(
                config.is_some() != diags.has_errors(),
                "{}: cut at {cut}: config and errors disagree",
                path.display()
            );
            let _ = diags.render(&file);
        }
    }
}
