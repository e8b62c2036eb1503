//! `cargo xtask e2e`, `schema` and `fixtures`: thin fronts for the harness's
//! `e2e` binary, which links GStreamer and so cannot live in xtask.

use anyhow::{Context, Result};
use clap::Args;
use xshell::{Shell, cmd};

/// Arguments are passed to the harness unchanged; see `cargo xtask e2e --help`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct E2e {
    /// e.g. happy-path --tag smoke --source rtmp2src --jobs 2 --shard 1/2
    /// --junit report.xml --server external=rtmp://127.0.0.1:1935
    /// --keep-artifacts --retries 1 --update-snapshots --list
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

impl E2e {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let nginx = self
            .args
            .windows(2)
            .any(|w| w[0] == "--server" && w[1] == "nginx")
            || self.args.iter().any(|a| a == "--server=nginx");
        if nginx {
            crate::deps::ensure_nginx(sh)?;
        }
        // Ctrl-C reaches the suite too, which stops its publishers, ingests
        // and containers; xtask must outlive that clean-up, so it catches
        // the signal and simply waits. (A handler, unlike SIG_IGN, is reset
        // for the child by exec, so the suite still gets Ctrl-C.)
        build_ingest(sh)?;
        wait_through_ctrl_c();
        // The suite's exit code is the answer (1: a scenario failed, 2: the
        // scenarios are invalid, 130: interrupted); pass it through as is.
        let status = std::process::Command::new("cargo")
            .args(["run", "--quiet", "--locked", "-p", "e2e", "--"])
            .args(&self.args)
            .current_dir(sh.current_dir())
            .status()
            .context("running the scenario suite")?;
        std::process::exit(exit_code_of(status))
    }
}

/// Builds the `ingest` binary beside the suite's: the cluster scenarios
/// run it as separate processes (`ingest serve`), which they kill, pause
/// and drain.
pub(crate) fn build_ingest(sh: &Shell) -> Result<()> {
    cmd!(sh, "cargo build --quiet --locked -p ingest-cli --bin ingest")
        .run()
        .context("building the ingest binary")
}

#[derive(Debug, Args)]
pub struct Schema {
    /// Only check that the committed schema is current
    #[arg(long)]
    check: bool,
}

pub const SCHEMA_PATH: &str = "scenarios/scenario.schema.json";

impl Schema {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let schema = cmd!(sh, "cargo run --quiet --locked -p e2e -- --print-schema").read()?;
        let schema = schema + "\n";
        if self.check {
            let committed = sh.read_file(SCHEMA_PATH).unwrap_or_default();
            anyhow::ensure!(
                committed == schema,
                "{SCHEMA_PATH} is stale; run `cargo xtask schema`"
            );
            return Ok(());
        }
        sh.write_file(SCHEMA_PATH, schema)?;
        eprintln!("wrote {SCHEMA_PATH}");
        Ok(())
    }
}

#[derive(Debug, Args)]
pub struct Fixtures {}

impl Fixtures {
    pub fn run(self, sh: &Shell) -> Result<()> {
        cmd!(sh, "cargo run --quiet --locked -p e2e -- --build-fixtures")
            .run()
            .context("building fixtures")
    }
}

extern "C" fn ignore(_: libc::c_int) {}

pub fn wait_through_ctrl_c() {
    // SAFETY: installs a handler that does nothing, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, ignore as *const () as libc::sighandler_t);
    }
}

/// The child's exit code; a child killed by a signal is said so (it printed
/// nothing itself) and exits as a shell would: 128 + the signal.
pub fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => {
            eprintln!(
                "error: the scenario suite was killed by signal {signal} ({})",
                signal_name(signal)
            );
            128 + signal
        }
        (None, None) => 1,
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        2 => "SIGINT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "see `kill -l`",
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn a_signal_becomes_128_plus_it() {
        assert_eq!(exit_code_of(std::process::ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code_of(std::process::ExitStatus::from_raw(3 << 8)), 3);
    }
}
