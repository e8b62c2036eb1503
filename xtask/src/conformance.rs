//! `cargo xtask conformance`: the media-server conformance suite (one test
//! per MediaMTX behaviour, `harness::conformance`) against the server given.

use anyhow::{Context, Result};
use clap::Args;
use xshell::{Shell, cmd};

#[derive(Debug, Args)]
pub struct Conformance {
    /// embedded, mediamtx (Docker, via testcontainers), or
    /// external=rtmp://HOST:PORT[,api=http://HOST:PORT]
    #[arg(long, default_value = "embedded")]
    server: String,
    /// Image for --server mediamtx (default: the pinned bluenviron/mediamtx)
    #[arg(long, value_name = "NAME:TAG")]
    mediamtx_image: Option<String>,
    /// Run only checks whose name contains this (e.g. reading::, takes_over)
    filters: Vec<String>,
}

impl Conformance {
    pub fn run(self, sh: &Shell) -> Result<()> {
        run(sh, &self.server, self.mediamtx_image.as_deref(), &self.filters)
    }
}

/// Runs the checks; each starts its own server, so they run side by side.
pub fn run(sh: &Shell, server: &str, image: Option<&str>, filters: &[String]) -> Result<()> {
    let _server = sh.push_env("E2E_SERVER", server);
    let _image = sh.push_env("E2E_MEDIAMTX_IMAGE", image.unwrap_or_default());
    cmd!(
        sh,
        "cargo test --quiet --locked -p harness --test conformance -- --test-threads 4 {filters...}"
    )
    .run()
    .with_context(|| format!("conformance checks against {server}"))
}
