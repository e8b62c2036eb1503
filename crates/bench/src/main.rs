//! `cargo xtask bench`: ingest cost, scale and latency, side by side with
//! ffmpeg's segment muxer and GStreamer's splitmuxsink.
//!
//! ```text
//! main (CLI) -> suite (plan, report files) -> run (one level: server,
//! publish, contenders) -> measure (process accounting, inotify, ffprobe)
//! -> results -> report (tables, ratios, targets) + plot (SVG)
//! ```
//!
//! `bench drive` (hidden) is our ingest running every stream in one process;
//! the bench starts it as a child, like the peers' processes.

mod contenders;
mod driver;
mod fixture;
mod machine;
mod measure;
mod plot;
mod publish;
mod report;
mod results;
mod run;
mod suite;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::{Parser, Subcommand};
use ingest::SourceElement;
use media_tools::Pace;

use crate::contenders::Contender;

#[derive(Debug, Parser)]
#[command(
    name = "bench",
    about = "Measure ingest cost, scale and latency against ffmpeg and splitmuxsink",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run our ingest for every URL in this one process (used by the bench).
    #[command(hide = true)]
    Drive {
        /// Output directory; segments go to DIR/<stream id>/
        #[arg(long)]
        out: PathBuf,
        /// Source element the ingest reads with
        #[arg(long, default_value = "rtmpsrc")]
        source: SourceElement,
        /// Streams to pull
        #[arg(required = true)]
        urls: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Fast pace at 1 and 8 streams plus one 30-s realtime stream (< 2 minutes)
    #[arg(long)]
    quick: bool,
    /// Concurrency levels, in streams
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    levels: Vec<usize>,
    /// Paces: fast (cost) and realtime (latency)
    #[arg(long, value_delimiter = ',', default_value = "fast,realtime", value_parser = parse_pace)]
    paces: Vec<Pace>,
    /// Media per stream at fast pace, seconds (the 30-s fixture is looped or cut)
    #[arg(long, default_value_t = 30.0)]
    fast_secs: f64,
    /// Media per stream at realtime pace, seconds
    #[arg(long, default_value_t = 60.0)]
    realtime_secs: f64,
    /// Who to measure
    #[arg(long, value_delimiter = ',', default_value = "ours,ffmpeg,gst")]
    contenders: Vec<Contender>,
    /// Source element our ingest reads with: rtmpsrc (the ingest's default,
    /// cheapest) or rtmp2src (lower latency, more CPU)
    #[arg(long, default_value = "rtmpsrc")]
    source: SourceElement,
    /// After the last realtime level, add 32 streams at a time while our
    /// ingest keeps p99 lag < 300 ms with no lost frames
    #[arg(long)]
    until_break: bool,
    /// Upper bound for --until-break
    #[arg(long, default_value_t = 256)]
    max_streams: usize,
    /// Where reports go [default: <workspace>/target/bench]
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the segment files (they are deleted once counted)
    #[arg(long)]
    keep_segments: bool,
    /// Seconds, beyond the media's own duration, before a level's stragglers are killed
    #[arg(long, default_value_t = 120)]
    grace_secs: u64,
}

fn parse_pace(raw: &str) -> Result<Pace, String> {
    match raw {
        "fast" => Ok(Pace::Fast),
        "realtime" => Ok(Pace::Realtime),
        other => Err(format!("unknown pace '{other}'; expected fast or realtime")),
    }
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the bench crate lives two levels below the workspace root")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Some(Command::Drive { out, source, urls }) => driver::run(out, source, urls),
        None => bench(cli.run),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: RunArgs) -> Result<()> {
    let root = workspace_root();
    let command = std::iter::once("cargo xtask bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let options = suite::Options {
        quick: args.quick,
        levels: args.levels,
        paces: args.paces,
        fast_secs: args.fast_secs,
        realtime_secs: args.realtime_secs,
        contenders: args.contenders,
        source: args.source,
        until_break: args.until_break,
        max_streams: args.max_streams,
        out: args.out.unwrap_or_else(|| root.join("target/bench")),
        fixture_cache: root.join("fixtures/.cache"),
        keep_segments: args.keep_segments,
        grace: Duration::from_secs(args.grace_secs),
        command,
    };
    // Current-thread: children are spawned from the main thread, which lives
    // as long as they do (their PR_SET_PDEATHSIG is tied to it).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            result = suite::run(options) => result,
            signal = shutdown_signal() => Err(anyhow!("interrupted by {signal}; children killed")),
        }
    })
}

/// Ctrl-C or SIGTERM. Returning drops the running level, whose handles
/// kill every child process.
async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "Ctrl-C";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}
