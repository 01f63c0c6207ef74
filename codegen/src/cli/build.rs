//! `kiln build` and `kiln run`: emit into a per-config crate under a shared target
//! directory, compile with cargo (release), copy the binary out.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Instant,
};

use anyhow::{bail, Context, Result};

use crate::{cli, write};

#[derive(Debug, clap::Args)]
pub struct BuildOpts {
    /// Shared build directory (default: $KILN_TARGET_DIR, else target/kiln in the Kiln
    /// checkout). Reusing it makes a config edit recompile only the generated crate.
    #[arg(long)]
    target_dir: Option<PathBuf>,
    /// Optimise the whole program as one unit (link-time optimisation across the runtime
    /// and its dependencies, one codegen unit): fewer instructions per request, but every
    /// build, a config edit included, takes tens of seconds instead of a few.
    #[arg(long)]
    lto: bool,
}

impl BuildOpts {
    /// The cargo profile of the generated crate (gateway-template/Cargo.toml).
    fn profile(&self) -> &'static str {
        if self.lto {
            "release-lto"
        } else {
            "release"
        }
    }
}

fn target_dir(opts: &BuildOpts) -> PathBuf {
    opts.target_dir
        .clone()
        .or_else(|| std::env::var_os("KILN_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kiln"))
}

/// Compiles `file` and returns the path of the binary inside the target directory.
fn compile(file: &Path, opts: &BuildOpts) -> Result<Option<PathBuf>> {
    let started = Instant::now();
    let src = cli::read_source(file)?;
    let compiled = match write::generate(&src) {
        Ok(c) => c,
        Err(diags) => {
            cli::report(&src, &diags);
            return Ok(None);
        }
    };
    cli::report(&src, &compiled.warnings);
    let target = target_dir(opts);
    std::fs::create_dir_all(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    // One crate directory per config file (by its absolute path), one binary name per crate.
    let abs = std::fs::canonicalize(file)?;
    let key = &write::sha256_hex(abs.to_string_lossy().as_bytes())[..12];
    let stem: String = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let bin = format!("gw-{stem}-{key}");
    let crate_dir = target.join("gateways").join(&bin);
    write::write_crate(&crate_dir, &compiled, &src.name, &bin)
        .with_context(|| format!("cannot write {}", crate_dir.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .arg("build")
        .arg("--profile")
        .arg(opts.profile())
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target.join("cargo"))
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "cargo build failed for the generated crate {}",
            crate_dir.display()
        );
    }
    let built = target.join("cargo").join(opts.profile()).join(&bin);
    let size = std::fs::metadata(&built).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "built {} in {:.1}s ({:.1} MiB)",
        src.name,
        started.elapsed().as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(Some(built))
}

pub fn build(file: &Path, out: &Path, opts: &BuildOpts) -> Result<ExitCode> {
    let Some(built) = compile(file, opts)? else {
        return Ok(ExitCode::FAILURE);
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Copy to a temporary name, then rename: a running copy of BIN is never half-written.
    let tmp = out.with_extension("kiln-tmp");
    std::fs::copy(&built, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

pub fn run(file: &Path, opts: &BuildOpts) -> Result<ExitCode> {
    let Some(built) = compile(file, opts)? else {
        return Ok(ExitCode::FAILURE);
    };
    use std::os::unix::process::CommandExt;
    let err = Command::new(&built).exec();
    bail!("cannot start {}: {err}", built.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--lto` names a profile that the generated crate's manifest defines, with fat LTO
    /// and one codegen unit; without it the build stays on the fast `release` profile.
    #[test]
    fn lto_profile_is_defined_by_the_template() {
        let opts = |lto| BuildOpts {
            target_dir: None,
            lto,
        };
        assert_eq!(opts(false).profile(), "release");
        assert_eq!(opts(true).profile(), "release-lto");
        let template = include_str!("../../../gateway-template/Cargo.toml");
        let section = template
            .split("\n[")
            .find(|s| s.starts_with("profile.release-lto]"))
            .expect("the template defines [profile.release-lto]");
        for line in [
            "inherits = \"release\"",
            "lto = \"fat\"",
            "codegen-units = 1",
        ] {
            assert!(section.lines().any(|l| l == line), "{line} in {section}");
        }
    }
}
