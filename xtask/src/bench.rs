//! `cargo xtask bench`: ingest cost, scale and latency against ffmpeg's
//! segment muxer and GStreamer's splitmuxsink (see crates/bench).
//!
//! The measuring happens in the `bench` binary, which links GStreamer
//! through the ingest library; xtask only builds and runs it, so xtask
//! itself still builds on a machine without GStreamer.

use anyhow::{Context, Result};
use clap::Args;
use xshell::{Shell, cmd};

#[derive(Debug, Args)]
pub struct Bench {
    /// Fast pace at 1 and 8 streams plus one 30-s realtime stream
    /// (under 2 minutes once built)
    #[arg(long)]
    quick: bool,
    /// Instead: one stream in real time for this long (e.g. `10m`), failing
    /// unless our ingest's RSS grows < 1 MB after the first minute and its
    /// segments are contiguous (reports: target/bench/soak.md, soak.csv)
    #[arg(long, value_name = "DURATION", conflicts_with = "quick")]
    soak: Option<String>,
    /// Instead: this many streams through one live-dubbing service with the
    /// echo STS, failing unless every output is complete and the output
    /// delay's p99 is within one frame of the configured one (reports:
    /// target/bench/service.md, service.json)
    #[arg(long, value_name = "STREAMS", conflicts_with_all = ["quick", "soak"])]
    service: Option<usize>,
    /// Instead: this many streams served by 3 instances sharing leases
    /// through a nats-server, the busiest killed with SIGKILL: takeover
    /// time per stream, streams served twice (reports: target/bench/cluster.md)
    #[arg(long, value_name = "STREAMS", conflicts_with_all = ["quick", "soak", "service"])]
    cluster: Option<usize>,
    /// Further options for the bench binary, e.g. `--levels 1,8,32,64,96`,
    /// `--paces realtime`, `--until-break` (`cargo xtask bench -- --help`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

impl Bench {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let quick = self.quick.then_some("--quick");
        let soak = self.soak.map(|length| format!("--soak={length}"));
        let service = self.service.map(|streams| format!("--service={streams}"));
        let cluster = self.cluster.map(|streams| format!("--cluster={streams}"));
        let args = self.args;
        // Release build: the figures describe the shipped code. Reports land
        // in target/bench/ (results.md, .csv, .svg, .json; soak.md, .csv, .json).
        cmd!(
            sh,
            "cargo run --release --locked -p bench -- {quick...} {soak...} {service...} {cluster...} {args...}"
        )
        .run()
        .context("running the bench (reports in target/bench/)")?;
        Ok(())
    }
}
