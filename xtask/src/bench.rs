//! `cargo xtask bench` (being written; see crates/bench).

use anyhow::Result;
use clap::Args;
use xshell::{Shell, cmd};

#[derive(Debug, Args)]
pub struct Bench {
    /// Arguments for the bench binary
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

impl Bench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let args = self.args;
        cmd!(sh, "cargo run --release --locked -p bench -- {args...}").run()?;
        Ok(())
    }
}
