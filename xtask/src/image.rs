//! `cargo xtask image`: the local stand-in for the MediaMTX image.
//!
//! No image can be pulled on the build machines, so the container path is
//! proven with an image built here: FROM scratch, holding a static build of
//! the embedded server, which speaks MediaMTX's RTMP path semantics and log
//! lines.

use anyhow::{Context, Result};
use clap::Args;
use xshell::{Shell, cmd};

pub const DEFAULT_TAG: &str = "rtmp-server-standin:local";
/// Marks images built here, so older builds can be pruned.
const LABEL: &str = "rtmp-ingest.standin";

#[derive(Debug, Args)]
pub struct Image {
    /// Image name and tag to build
    #[arg(long, default_value = DEFAULT_TAG)]
    tag: String,
}

impl Image {
    pub fn run(self, sh: &Shell) -> Result<()> {
        build(sh, &self.tag)
    }
}

fn host_triple(sh: &Shell) -> Result<String> {
    let info = cmd!(sh, "rustc -vV").quiet().read()?;
    info.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV printed no host triple")
}

pub fn build(sh: &Shell, tag: &str) -> Result<()> {
    let triple = host_triple(sh)?;
    // An explicit --target keeps the static RUSTFLAGS away from build
    // scripts and proc-macros, which must stay dynamic.
    cmd!(
        sh,
        "cargo build --release --locked -p rtmp-server-cli --target {triple}"
    )
    .env("RUSTFLAGS", "-C target-feature=+crt-static")
    .run()
    .context("building the static rtmp-server binary")?;
    let context_dir = sh.current_dir().join("target/image-context");
    sh.remove_path(&context_dir)?;
    sh.create_dir(&context_dir)?;
    sh.copy_file(format!("target/{triple}/release/rtmp-server"), &context_dir)?;
    sh.copy_file("crates/rtmp-server/Dockerfile", &context_dir)?;
    cmd!(
        sh,
        "docker build --quiet --label {LABEL} --tag {tag} {context_dir}"
    )
    .run()
    .context("docker build of the stand-in image")?;
    // Rebuilding leaves the previous image untagged; drop those.
    let filter = format!("label={LABEL}");
    cmd!(sh, "docker image prune --force --filter {filter}")
        .quiet()
        .ignore_stdout()
        .run()
        .context("pruning older stand-in images")?;
    eprintln!("built image {tag}");
    Ok(())
}
