//! The echo STS peer's Python environment (`tools/sts-echo/echo.py`): a
//! venv under `target/sts-echo-venv` with the pinned python-socketio and
//! aiohttp of `tools/sts-echo/requirements.txt`.
//!
//! A venv rather than system packages because Debian's python3-socketio
//! trails the protocol revision the STS speaks, and pip into the system
//! Python is refused (PEP 668). It is made once and reused while the
//! requirements are unchanged: the venv keeps a copy of the requirements it
//! was built from (`.requirements.txt`), which the sts crate's test helper
//! (`crates/sts/tests/support`) checks too, so whichever of the two comes
//! first builds it and the other reuses it. A lock file keeps parallel
//! builders from racing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

const REQUIREMENTS: &str = "tools/sts-echo/requirements.txt";
const VENV: &str = "sts-echo-venv";
const STAMP: &str = ".requirements.txt";

/// Makes (or finds) the echo peer's venv; returns its python.
pub fn ensure_echo_peer(sh: &Shell) -> Result<PathBuf> {
    let root = sh.current_dir();
    let requirements_path = root.join(REQUIREMENTS);
    let requirements = sh
        .read_file(&requirements_path)
        .with_context(|| format!("reading {}", requirements_path.display()))?;
    let target = target_dir(&root, std::env::var_os("CARGO_TARGET_DIR"));
    let venv = target.join(VENV);
    let python = venv.join("bin/python");
    if is_current(&venv, &requirements) {
        return Ok(python);
    }
    sh.create_dir(&target)?;
    let lock_path = target.join(format!("{VENV}.lock"));
    let lock =
        std::fs::File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    if is_current(&venv, &requirements) {
        return Ok(python);
    }
    ensure_venv_module(sh)?;
    eprintln!("creating {} for the echo STS peer", venv.display());
    cmd!(sh, "python3 -m venv --clear {venv}")
        .run()
        .context("python3 -m venv")?;
    cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check -r {requirements_path}"
    )
    .run()
    .with_context(|| format!("pip install -r {REQUIREMENTS}"))?;
    sh.write_file(venv.join(STAMP), &requirements)?;
    Ok(python)
}

/// `target/`, or `CARGO_TARGET_DIR` (relative to the workspace root) when set.
fn target_dir(root: &Path, from_env: Option<OsString>) -> PathBuf {
    match from_env {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

fn is_current(venv: &Path, requirements: &str) -> bool {
    venv.join("bin/python").exists()
        && std::fs::read_to_string(venv.join(STAMP)).is_ok_and(|built_from| built_from == requirements)
}

/// Debian ships `venv` without its pip bootstrap (python3-venv); as root
/// that is installed, otherwise the command to do so is printed.
fn ensure_venv_module(sh: &Shell) -> Result<()> {
    let works = |sh: &Shell| {
        cmd!(sh, "python3 -m ensurepip --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
    };
    if works(sh) {
        return Ok(());
    }
    let is_root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0");
    let has_apt = cmd!(sh, "sh -c 'command -v apt-get'")
        .quiet()
        .ignore_stdout()
        .run()
        .is_ok();
    if !is_root || !has_apt {
        bail!(
            "python3 cannot make a venv; install it with:\n    \
             sudo apt-get update && sudo apt-get install -y --no-install-recommends python3 python3-venv"
        );
    }
    eprintln!("installing: python3 python3-venv");
    cmd!(sh, "apt-get update -qq").run()?;
    cmd!(
        sh,
        "apt-get install -y -qq --no-install-recommends python3 python3-venv"
    )
    .env("DEBIAN_FRONTEND", "noninteractive")
    .run()?;
    if !works(sh) {
        bail!("python3 still cannot make a venv after installing python3-venv");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_venv_follows_cargo_target_dir() {
        let root = Path::new("/w");
        assert_eq!(target_dir(root, None), Path::new("/w/target"));
        assert_eq!(target_dir(root, Some("".into())), Path::new("/w/target"));
        assert_eq!(target_dir(root, Some("out".into())), Path::new("/w/out"));
        assert_eq!(target_dir(root, Some("/tmp/t".into())), Path::new("/tmp/t"));
    }

    #[test]
    fn a_venv_is_current_only_for_the_same_requirements() {
        let venv = std::env::temp_dir().join(format!("sts-peer-test-{}", std::process::id()));
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        assert!(!is_current(&venv, "a==1\n"), "no python yet");
        std::fs::write(venv.join("bin/python"), "").unwrap();
        assert!(!is_current(&venv, "a==1\n"), "no stamp yet");
        std::fs::write(venv.join(STAMP), "a==1\n").unwrap();
        assert!(is_current(&venv, "a==1\n"));
        assert!(!is_current(&venv, "a==2\n"));
        std::fs::remove_dir_all(&venv).unwrap();
    }
}
