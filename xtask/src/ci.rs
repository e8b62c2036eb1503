//! `cargo xtask ci`: what one cell of the e2e CI matrix runs, locally: the
//! conformance checks of its server (first shard), then its scenarios.

use anyhow::{Context, Result};
use clap::Args;
use xshell::{Shell, cmd};

#[derive(Debug, Args)]
pub struct Ci {
    /// rtmpsrc or rtmp2src
    #[arg(long, default_value = "rtmpsrc")]
    source: String,
    /// embedded, mediamtx or nginx
    #[arg(long, default_value = "embedded")]
    server: String,
    /// Shard K/N of the scenarios
    #[arg(long, default_value = "1/1")]
    shard: String,
    /// JUnit report path
    #[arg(long, default_value = "target/junit.xml")]
    junit: String,
    /// Image for --server mediamtx (e.g. the local stand-in)
    #[arg(long)]
    mediamtx_image: Option<String>,
}

impl Ci {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let Ci {
            source,
            server,
            shard,
            junit,
            mediamtx_image,
        } = self;
        // The server is held to MediaMTX's behaviour before the scenarios
        // rely on it; once per server, in its first shard. nginx-rtmp is a
        // second server, not MediaMTX: it has no conformance to check.
        if server == "nginx" {
            crate::deps::ensure_nginx(sh)?;
        } else if shard.starts_with("1/") {
            crate::conformance::run(sh, &server, mediamtx_image.as_deref(), &[])?;
        }
        let image: Vec<String> = mediamtx_image
            .map(|i| vec!["--mediamtx-image".to_owned(), i])
            .unwrap_or_default();
        crate::e2e::build_ingest(sh)?;
        cmd!(
            sh,
            "cargo run --quiet --locked -p e2e -- --source {source} --server {server} --shard {shard} --junit {junit} {image...}"
        )
        .env("CI", "true")
        .run()
        .context("scenarios failed")
    }
}
