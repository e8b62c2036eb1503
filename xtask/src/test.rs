//! `cargo xtask test`: the README's test command. Unit and integration
//! tests, the conformance checks and the scenario suite on the embedded
//! server (all through nextest), then, where a Docker engine answers, the
//! container paths (conformance and smoke scenarios on the stand-in image).

use anyhow::Result;
use clap::Args;
use xshell::{Shell, cmd};

#[derive(Debug, Args)]
pub struct Test {
    /// Extra arguments for the test runner (after --)
    #[arg(last = true)]
    args: Vec<String>,
}

impl Test {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let args = self.args;
        let has_nextest = cmd!(sh, "cargo nextest --version")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok();
        if has_nextest {
            cmd!(sh, "cargo nextest run --workspace --no-fail-fast {args...}").run()?;
            // nextest does not run doctests.
            cmd!(sh, "cargo test --workspace --doc").run()?;
        } else {
            cmd!(sh, "cargo test --workspace --no-fail-fast {args...}").run()?;
        }
        if crate::containers::docker_answers(sh) {
            crate::containers::testcontainers_smoke(sh)?;
            crate::containers::compose_smoke(sh)?;
        } else {
            eprintln!("skipped: container smoke tests (no Docker engine answers)");
        }
        Ok(())
    }
}
