//! Compiles every gateway fixture (tests/fixtures/*.yml, plus a generated 1,000-route config)
//! with the real code generator into modules of one test binary (`$OUT_DIR/fixtures.rs`).
//! Each module shadows `Option`, `Result`, `Ok`, `Err`, `Some`, `None`, `Box` and `Send`, so
//! generated code that relied on the including scope's names would fail to build.

use std::{fmt::Write as _, path::Path};

use kiln_codegen::{diag::SourceFile, write};

fn big_config(n: usize) -> String {
    let mut y = String::from("_format_version: \"3.0\"\nservices:\n  - name: big\n    url: http://echo.test/base\n    routes:\n");
    for i in 0..n {
        let _ = writeln!(y, "      - name: r{i}\n        paths: [/r{i}/x]");
        if i % 10 == 0 {
            let _ = writeln!(y, "        hosts: [h{i}.big.test]");
        }
    }
    y
}

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);
    let dir = Path::new("fixtures");
    println!("cargo:rerun-if-changed=fixtures");
    let mut files: Vec<(String, SourceFile)> = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/fixtures exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_stem()
            .expect("file name")
            .to_string_lossy()
            .replace('-', "_");
        let text = std::fs::read_to_string(&p).expect("readable fixture");
        let file = SourceFile {
            name: format!(
                "fixtures/{}",
                p.file_name().expect("name").to_string_lossy()
            ),
            text,
        };
        files.push((name, file));
    }
    files.push((
        "big".into(),
        SourceFile {
            name: "generated/big.yml".into(),
            text: big_config(1000),
        },
    ));
    let mut index = String::new();
    for (name, file) in files {
        let compiled = match write::generate(&file) {
            Ok(c) => c,
            Err(d) => panic!(
                "fixture {} does not compile:\n{}",
                file.name,
                d.render(&file)
            ),
        };
        let path = out.join(format!("{name}.rs"));
        write::write_if_changed(&path, compiled.gateway_rs.as_bytes()).expect("write fixture");
        let _ = writeln!(
            index,
            "pub mod {name} {{\n\
             \x20   #[allow(dead_code, non_camel_case_types, non_snake_case, non_upper_case_globals)]\n\
             \x20   mod shadow {{\n\
             \x20       pub struct Option; pub struct Result; pub struct Box; pub struct Send;\n\
             \x20       pub fn Ok() {{}} pub fn Err() {{}} pub fn Some() {{}} pub const None: () = ();\n\
             \x20   }}\n\
             \x20   #[deny(warnings)]\n\
             \x20   pub mod gateway {{\n\
             \x20       #[allow(unused_imports)]\n\
             \x20       use super::shadow::*;\n\
             \x20       include!(concat!(env!(\"OUT_DIR\"), \"/{name}.rs\"));\n\
             \x20   }}\n\
             \x20   pub use gateway::Gateway;\n\
             }}"
        );
    }
    write::write_if_changed(&out.join("fixtures.rs"), index.as_bytes()).expect("write index");
}
