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
//!
//! `--soak 10m` runs the soak instead (soak: one realtime stream, RSS over
//! time, the manifest's tiling -> soak.md, soak.csv); `--service 64` runs
//! 64 streams through one live-dubbing service (service_mode: outputs
//! complete, output delay, CPU and RSS per stream -> service.md), whose
//! process is `bench serve` (hidden).

mod cluster_mode;
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
mod service_mode;
mod side_run;
mod soak;
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
    /// Run the live-dubbing service in this process (used by `--service`).
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        rtmp: String,
        #[arg(long)]
        api: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        sts_url: Option<String>,
        #[arg(long)]
        max_streams: usize,
        /// In a cluster: its NATS, this instance's name, the lease TTL.
        #[arg(long, requires = "instance")]
        nats: Option<String>,
        #[arg(long)]
        instance: Option<String>,
        #[arg(long, value_parser = humantime::parse_duration)]
        lease_ttl: Option<Duration>,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Fast pace at 1 and 8 streams plus one 30-s realtime stream (< 2 minutes)
    #[arg(long)]
    quick: bool,
    /// Instead of the levels: one stream for this long in real time (e.g.
    /// 10m, 90s), our ingest only; fails unless its RSS grows < 1 MB after
    /// the first minute and the manifest's segments are contiguous
    #[arg(long, value_name = "DURATION", value_parser = parse_soak, conflicts_with = "quick")]
    soak: Option<Duration>,
    /// Instead of the levels: this many streams through one live-dubbing
    /// service with the echo STS, in real time; fails unless every output
    /// is complete and the output delay's p99 is within one frame of the
    /// configured delay (reports: target/bench/service.md, service.json)
    #[arg(long, value_name = "STREAMS", conflicts_with_all = ["quick", "soak"])]
    service: Option<usize>,
    /// Instead of the levels: this many streams served by 3 `ingest serve`
    /// instances sharing leases through a nats-server; the busiest is
    /// killed with SIGKILL once all are served; fails unless every one of
    /// its streams is served again with a takeover p99 under 5 s and no
    /// stream is ever served twice (reports: target/bench/cluster.md, .json)
    #[arg(long, value_name = "STREAMS", conflicts_with_all = ["quick", "soak", "service"])]
    cluster: Option<usize>,
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

/// `600`, `600s`, `10m` or `1h`; longer than the soak's warm-up minute.
fn parse_soak(raw: &str) -> Result<Duration, String> {
    let (number, unit_s) = match raw.trim().char_indices().last() {
        Some((i, 's')) => (&raw.trim()[..i], 1.0),
        Some((i, 'm')) => (&raw.trim()[..i], 60.0),
        Some((i, 'h')) => (&raw.trim()[..i], 3600.0),
        _ => (raw.trim(), 1.0),
    };
    let secs = number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| n * unit_s)
        .ok_or_else(|| format!("'{raw}' is not a duration like 10m, 90s or 600"))?;
    if secs <= soak::WARMUP_S || secs > 24.0 * 3600.0 {
        return Err(format!(
            "a soak lasts more than its {} s warm-up and at most a day, not {secs} s",
            soak::WARMUP_S
        ));
    }
    Ok(Duration::from_secs_f64(secs))
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
        Some(Command::Serve {
            rtmp,
            api,
            out,
            listen,
            sts_url,
            max_streams,
            nats,
            instance,
            lease_ttl,
        }) => serve(service::ServiceConfig {
            rtmp,
            api,
            out,
            listen,
            max_streams,
            sts: sts_url.map(ingest::StsSettings::new),
            // A cluster run measures takeover: no dubbed output.
            output: if nats.is_some() {
                String::new()
            } else {
                service::DEFAULT_OUTPUT.to_owned()
            },
            cluster: nats
                .zip(instance)
                .map(|(nats, instance)| service::ClusterSettings {
                    nats,
                    instance,
                    lease_ttl: lease_ttl.unwrap_or_else(service::ClusterSettings::default_ttl),
                }),
            ..service::ServiceConfig::default()
        }),
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
    let out = args.out.unwrap_or_else(|| root.join("target/bench"));
    if let Some(streams) = args.service {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let options = service_mode::Options {
            streams,
            media_s: 30.0,
            out,
            fixture_cache: root.join("fixtures/.cache"),
            python: target.join("sts-echo-venv/bin/python"),
            echo_script: root.join("tools/sts-echo/echo.py"),
            command,
        };
        return block_on_until_signal(service_mode::run(options));
    }
    if let Some(streams) = args.cluster {
        let options = cluster_mode::Options {
            streams,
            media_s: 60.0,
            out,
            fixture_cache: root.join("fixtures/.cache"),
            command,
        };
        return block_on_until_signal(cluster_mode::run(options));
    }
    if let Some(length) = args.soak {
        let options = soak::Options {
            media_s: length.as_secs_f64(),
            source: args.source,
            out,
            fixture_cache: root.join("fixtures/.cache"),
            keep_segments: args.keep_segments,
            grace: Duration::from_secs(args.grace_secs),
            command,
        };
        return block_on_until_signal(soak::run(options));
    }
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
        out,
        fixture_cache: root.join("fixtures/.cache"),
        keep_segments: args.keep_segments,
        grace: Duration::from_secs(args.grace_secs),
        command,
    };
    block_on_until_signal(suite::run(options))
}

/// `bench serve`: the service until SIGTERM, as `ingest serve` runs it.
fn serve(config: service::ServiceConfig) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let running = service::Service::start(config).await?;
        let stopper = running.stopper();
        tokio::spawn(async move {
            shutdown_signal().await;
            stopper.stop();
        });
        running.wait().await?;
        Ok(())
    })
}

/// Runs `work` to its end or to Ctrl-C / SIGTERM, whichever comes first.
fn block_on_until_signal(work: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    // Current-thread: children are spawned from the main thread, which lives
    // as long as they do (their PR_SET_PDEATHSIG is tied to it).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            result = work => result,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_takes_the_cluster_s_lease_ttl_as_the_cluster_mode_gives_it() {
        let cli = Cli::try_parse_from([
            "bench",
            "serve",
            "--rtmp",
            "rtmp://127.0.0.1:1935",
            "--api",
            "http://127.0.0.1:9997",
            "--out",
            "/tmp/out",
            "--listen",
            "127.0.0.1:8080",
            "--max-streams",
            "48",
            "--nats",
            "nats://127.0.0.1:4222",
            "--instance",
            "i0",
            "--lease-ttl",
            "5s",
        ])
        .expect("the cluster mode's serve command parses");
        match cli.command {
            Some(Command::Serve { lease_ttl, .. }) => assert_eq!(lease_ttl, Some(Duration::from_secs(5))),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn soak_lengths_take_a_unit() {
        assert_eq!(parse_soak("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_soak("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_soak("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_soak("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_soak("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn soak_lengths_outside_the_warm_up_and_a_day_are_refused() {
        assert!(parse_soak("1m").unwrap_err().contains("warm-up"));
        assert!(parse_soak("25h").is_err());
        assert!(parse_soak("ten minutes").unwrap_err().contains("like 10m"));
        assert!(parse_soak("-5m").is_err());
        assert!(parse_soak("m").is_err());
    }
}
