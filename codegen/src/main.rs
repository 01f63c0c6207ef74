//! The `kiln` command: see `kiln --help` and docs/cli.md.

fn main() -> std::process::ExitCode {
    kiln_codegen::cli::main()
}
