//! `kiln check | emit | build | run | routes | explain` (docs/cli.md).

mod build;
pub mod explain;
pub mod routes;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::{
    diag::{Diagnostics, SourceFile},
    write,
};

/// Kiln: compile a Kong declarative config (kong.yml) into one gateway binary.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate FILE; print every problem with file:line:col. Exit 1 on errors.
    Check { file: PathBuf },
    /// Write the generated gateway crate for FILE into DIR.
    Emit {
        file: PathBuf,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Build an optimised, stripped gateway binary for FILE at BIN.
    Build {
        file: PathBuf,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        #[command(flatten)]
        opts: build::BuildOpts,
    },
    /// Build FILE's gateway, then run it in the foreground (env: KILN_PROXY_LISTEN, …).
    Run {
        file: PathBuf,
        #[command(flatten)]
        opts: build::BuildOpts,
    },
    /// Print the compiled route table in the order routes are tried.
    Routes { file: PathBuf },
    /// Show which route a request matches, why, and the upstream request it would send.
    Explain {
        file: PathBuf,
        /// HTTP method, e.g. GET.
        method: String,
        /// Request URL, e.g. http://api.example.com/v1/users?id=1
        url: String,
        /// Request header, `Name: value` (repeatable).
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads FILE, keeping the name as the user wrote it (never made absolute).
pub(crate) fn read_source(path: &Path) -> Result<SourceFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(SourceFile {
        name: path.display().to_string(),
        text,
    })
}

pub(crate) fn report(file: &SourceFile, diags: &Diagnostics) {
    if !diags.is_empty() {
        eprint!("{}", diags.render(file));
    }
}

/// Front end + plan, diagnostics printed; `None` when there were errors.
pub(crate) fn checked(file: &SourceFile) -> Option<(crate::ir::Config, crate::plan::Plan)> {
    match write::check(file) {
        Ok((config, plan, warnings)) => {
            report(file, &warnings);
            Some((config, plan))
        }
        Err(diags) => {
            report(file, &diags);
            None
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Check { file } => {
            let src = read_source(&file)?;
            let Some((config, plan)) = checked(&src) else {
                return Ok(ExitCode::FAILURE);
            };
            eprintln!(
                "{}: ok — {} services, {} routes ({} after splitting), {} plugins",
                src.name,
                config.services.len(),
                config.routes.len(),
                plan.sub_routes.len(),
                config.plugins.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Emit { file, out } => {
            let src = read_source(&file)?;
            let compiled = match write::generate(&src) {
                Ok(c) => c,
                Err(diags) => {
                    report(&src, &diags);
                    return Ok(ExitCode::FAILURE);
                }
            };
            report(&src, &compiled.warnings);
            write::write_crate(&out, &compiled, &src.name, "gateway")
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { file, out, opts } => build::build(&file, &out, &opts),
        Command::Run { file, opts } => build::run(&file, &opts),
        Command::Routes { file } => routes::routes(&file),
        Command::Explain {
            file,
            method,
            url,
            headers,
        } => explain::explain(&file, &method, &url, &headers),
    }
}
