//! The tools `coverage` and `mutants` drive, installed when missing: cargo
//! subcommands from crates.io, and LLVM's `llvm-cov` and `llvm-profdata`
//! from Debian.
//!
//! rustup's `llvm-tools` component is what cargo-llvm-cov would use, but
//! the build machines reach only the package registries, so it cannot be
//! downloaded there. Debian's `llvm-N` of the same LLVM major version as
//! rustc reads the profiles rustc's instrumentation writes (LLVM keeps the
//! raw profile format within a major version), and cargo-llvm-cov takes it
//! through `LLVM_COV` and `LLVM_PROFDATA`.
//!
//! Every check is a `--version` or a file test, so a machine that has
//! everything pays nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// A cargo subcommand installed from crates.io at a pinned version: the
/// flags xtask passes are those of that version.
pub struct CargoTool {
    /// `cargo <subcommand>`
    pub subcommand: &'static str,
    pub krate: &'static str,
    pub version: &'static str,
}

pub const LLVM_COV: CargoTool = CargoTool {
    subcommand: "llvm-cov",
    krate: "cargo-llvm-cov",
    version: "0.9.1",
};

pub const MUTANTS: CargoTool = CargoTool {
    subcommand: "mutants",
    krate: "cargo-mutants",
    version: "27.1.0",
};

impl CargoTool {
    /// Installs the pinned version unless `cargo <subcommand> --version`
    /// already names it.
    pub fn ensure(&self, sh: &Shell) -> Result<()> {
        let Self {
            subcommand,
            krate,
            version,
        } = self;
        let installed = cmd!(sh, "cargo {subcommand} --version")
            .quiet()
            .ignore_stderr()
            .read()
            .ok();
        if installed.as_deref().and_then(version_of) == Some(*version) {
            return Ok(());
        }
        match &installed {
            Some(found) => eprintln!("installing {krate} {version} (found {})", found.trim()),
            None => eprintln!("installing {krate} {version}"),
        }
        cmd!(sh, "cargo install --locked --quiet {krate}@{version}")
            .run()
            .with_context(|| format!("cargo install --locked {krate}@{version}"))?;
        Ok(())
    }
}

/// `1.2.3` from a `--version` line such as `cargo-llvm-cov 1.2.3`.
fn version_of(line: &str) -> Option<&str> {
    line.split_whitespace().nth(1)
}

/// The LLVM programs that read coverage profiles.
pub struct Llvm {
    pub cov: PathBuf,
    pub profdata: PathBuf,
}

impl Llvm {
    /// The environment cargo-llvm-cov reads them from.
    pub fn env(&self) -> [(&'static str, &Path); 2] {
        [("LLVM_COV", &self.cov), ("LLVM_PROFDATA", &self.profdata)]
    }
}

/// `llvm-cov` and `llvm-profdata` of rustc's LLVM major version: those the
/// environment names, else Debian's `/usr/lib/llvm-N/bin`, installed with
/// apt (as root) when missing.
pub fn llvm(sh: &Shell) -> Result<Llvm> {
    if let (Ok(cov), Ok(profdata)) = (sh.var("LLVM_COV"), sh.var("LLVM_PROFDATA")) {
        let llvm = Llvm {
            cov: cov.into(),
            profdata: profdata.into(),
        };
        if llvm.cov.is_file() && llvm.profdata.is_file() {
            return Ok(llvm);
        }
        bail!(
            "LLVM_COV ({}) or LLVM_PROFDATA ({}) is not a file",
            llvm.cov.display(),
            llvm.profdata.display()
        );
    }
    let info = cmd!(sh, "rustc -vV").quiet().read().context("rustc -vV")?;
    let major = llvm_major(&info).context("rustc -vV names no LLVM version")?;
    let bin = PathBuf::from(format!("/usr/lib/llvm-{major}/bin"));
    let llvm = Llvm {
        cov: bin.join("llvm-cov"),
        profdata: bin.join("llvm-profdata"),
    };
    if llvm.cov.is_file() && llvm.profdata.is_file() {
        return Ok(llvm);
    }
    let package = format!("llvm-{major}");
    let is_root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
    if !is_root {
        bail!(
            "{} is missing (rustc uses LLVM {major}); install it with:\n    \
             sudo apt-get update && sudo apt-get install -y --no-install-recommends {package}\n\
             or point LLVM_COV and LLVM_PROFDATA at an llvm-cov and llvm-profdata of LLVM {major}",
            llvm.cov.display()
        );
    }
    eprintln!("installing: {package} (llvm-cov and llvm-profdata of rustc's LLVM {major})");
    cmd!(sh, "apt-get update -qq").run().context("apt-get update")?;
    cmd!(sh, "apt-get install -y -qq --no-install-recommends {package}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .with_context(|| {
            format!("apt-get install {package} (Debian bookworm has it in bookworm-security)")
        })?;
    if !(llvm.cov.is_file() && llvm.profdata.is_file()) {
        bail!("{package} is installed but {} is not there", llvm.cov.display());
    }
    Ok(llvm)
}

/// The major version from `rustc -vV`'s `LLVM version: 22.1.2` line.
fn llvm_major(rustc_info: &str) -> Option<u32> {
    rustc_info
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))?
        .split('.')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rustcs_llvm_major_version() {
        let info = "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\nLLVM version: 22.1.2\n";
        assert_eq!(llvm_major(info), Some(22));
        assert_eq!(llvm_major("rustc 1.95.0\n"), None);
    }

    #[test]
    fn reads_a_tools_version() {
        assert_eq!(version_of("cargo-llvm-cov 0.9.1\n"), Some("0.9.1"));
        assert_eq!(version_of("cargo-mutants 27.1.0"), Some("27.1.0"));
        assert_eq!(version_of(""), None);
    }
}
