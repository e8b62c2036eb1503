//! `--service N`: N streams through one live-dubbing service, as
//! production runs it: the embedded server (MediaMTX's behaviour and API),
//! N gated publishers of the seed fixture in real time, the echo STS
//! answering every fragment, and the service (`bench serve`, a child, so
//! its CPU and memory are its own) with one worker and one dubbed output
//! per stream.
//!
//! ```text
//! publishers ──► server ──► service (bench serve): N workers ──► N outputs (live/<id>/out)
//!                             │  └─► echo STS
//!                             └─ /v1/streams, manifests ──► service.md, service.json
//! ```
//!
//! Targets: every output sent every picture its worker wrote, and the
//! output's delay behind its input (each span's, from the manifests) has
//! a p99 within one frame of the configured delay.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ingest::{Manifest, ManifestEntry};
use serde::Serialize;

use crate::fixture::Fixture;
use crate::machine::Machine;
use crate::measure::process::Process;
use crate::run::{free_port, fresh_run_dir, realtime_feeds, release_spread, wait_for_readers};
use crate::side_run::SideRun;

/// The output's delay the service learns for the seed fixture (its first
/// segment, 6 s with 2-s GOPs, plus 3 s for the STS).
const OUTPUT_DELAY: Duration = Duration::from_secs(9);
/// How long the service may take to finish every stream once published
/// (the grace, then the output's delay to drain).
const DRAIN: Duration = Duration::from_secs(60);
/// How often `/v1/streams` is asked while the streams drain.
const ASK_EVERY: Duration = Duration::from_millis(500);

pub struct Options {
    pub streams: usize,
    pub media_s: f64,
    pub out: PathBuf,
    pub fixture_cache: PathBuf,
    /// The echo STS's python (its venv, made by `cargo xtask`).
    pub python: PathBuf,
    pub echo_script: PathBuf,
    pub command: String,
}

/// What one service run came to.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceOutcome {
    pub streams: usize,
    pub media_s: f64,
    pub output_delay_ms: f64,
    /// Streams whose output sent every picture their worker wrote.
    pub complete_outputs: usize,
    pub incomplete: Vec<String>,
    /// Each output span's delay behind its input.
    pub delay_p50_ms: Option<f64>,
    pub delay_p99_ms: Option<f64>,
    pub delay_max_ms: Option<f64>,
    pub spans: usize,
    pub dubbed_spans: usize,
    pub cpu_s: f64,
    pub peak_rss_kib: u64,
    pub service_clean: bool,
}

impl ServiceOutcome {
    /// Percent of one core per stream, over the media's length.
    pub fn cpu_per_stream_pct(&self) -> f64 {
        self.cpu_s / self.media_s / self.streams as f64 * 100.0
    }

    pub fn rss_per_stream_mb(&self) -> f64 {
        self.peak_rss_kib as f64 * 1024.0 / 1e6 / self.streams as f64
    }

    pub fn failures(&self, frame_ms: f64) -> Vec<String> {
        let mut failures = Vec::new();
        if self.complete_outputs < self.streams {
            failures.push(format!(
                "{} of {} outputs incomplete: {}",
                self.streams - self.complete_outputs,
                self.streams,
                self.incomplete.join("; ")
            ));
        }
        match self.delay_p99_ms {
            Some(p99) if p99 - self.output_delay_ms <= frame_ms => {}
            Some(p99) => failures.push(format!(
                "output delay p99 {p99:.1} ms is more than one frame ({frame_ms:.1} ms) over the configured {:.0} ms",
                self.output_delay_ms
            )),
            None => failures.push("no output span was recorded".to_owned()),
        }
        if !self.service_clean {
            failures.push("the service did not stop cleanly on SIGTERM".to_owned());
        }
        failures
    }
}

pub async fn run(options: Options) -> Result<()> {
    let run = SideRun::prepare(&options.out, &options.fixture_cache, options.media_s).await?;
    let outcome = observe(&options, &run.fixture).await?;
    let frame_ms = run.fixture.frame_interval_ms();
    let markdown = markdown(&outcome, &run.machine, &run.date, &options.command, frame_ms);
    run.write("service.md", &markdown)?;
    run.write_json("service", &options.command, &outcome)?;
    run.conclude(&markdown, "service targets missed", outcome.failures(frame_ms))
}

/// `bench serve` (this binary, as `ingest serve`) following `server`'s
/// API, keeping segments in `out`, answering HTTP on `http` and taking up
/// to `max_streams`; warnings only, so that its log stays small.
pub(crate) fn serve_command(
    server: &rtmp_server::RtmpServer,
    out: &std::path::Path,
    http: &str,
    max_streams: usize,
) -> Result<std::process::Command> {
    let api = server.api_addr().context("the server's API")?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command
        .arg("serve")
        .args(["--rtmp", &format!("rtmp://{}", server.local_addr())])
        .args(["--api", &format!("http://{api}")])
        .arg("--out")
        .arg(out)
        .args(["--listen", http])
        .args(["--max-streams", &max_streams.to_string()])
        .env("RUST_LOG", "warn");
    Ok(command)
}

async fn observe(options: &Options, fixture: &Fixture) -> Result<ServiceOutcome> {
    let root = options.out.join("runs/service");
    let logs = fresh_run_dir(&root)?;
    let server = rtmp_server::RtmpServer::start(rtmp_server::ServerConfig {
        read_timeout: Duration::from_secs(60),
        ..rtmp_server::ServerConfig::with_api()
    })
    .context("starting the embedded RTMP server")?;

    // The echo STS: a child that says its port on its first line.
    let sts_log = logs.join("sts.log");
    let mut sts = tokio::process::Command::new(&options.python)
        .arg(&options.echo_script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&sts_log)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the echo STS")?;
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        sts.stdout.take().context("the echo STS's stdout")?,
    ));
    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("the echo STS did not start within 60 s")??
        .context("the echo STS exited")?;
    let sts_port = first
        .strip_prefix("listening on 127.0.0.1:")
        .context("the echo STS's first line")?
        .trim()
        .to_owned();
    // Its later lines (one per record) are drained so it never blocks.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let http = format!("127.0.0.1:{}", free_port()?);
    let segments = root.join("segments");
    let mut command = serve_command(&server, &segments, &http, options.streams)?;
    command
        .arg("--sts-url")
        .arg(format!("http://127.0.0.1:{sts_port}"));
    let mut service = Process::spawn(command, "service", &logs.join("service.log"))?;

    let (streams, mut feeds) = realtime_feeds(&server, fixture, "svc", options.streams, &logs)?;
    // The service starts a worker per stream once the server lists it.
    wait_for_readers(&server, &streams, 1).await;
    release_spread(&mut feeds).await;
    let publish_timeout = Duration::from_secs_f64(options.media_s) + Duration::from_secs(60);
    for feed in &mut feeds {
        if let Err(e) = feed.finish(publish_timeout).await {
            tracing::warn!("a publisher failed: {e:#}");
        }
    }
    drop(feeds);

    // Every worker ends once its stream is gone for the grace and its
    // output has drained; then SIGTERM, as an orchestrator stops it.
    let client = reqwest::Client::new();
    let views = stopped_views(&client, &http).await;
    service.signal(libc::SIGTERM);
    let usage = tokio::time::timeout(DRAIN, service.wait())
        .await
        .context("the service did not stop within a minute of SIGTERM")??;
    drop(sts);
    drop(server);
    Ok(outcome(options, &segments, &views, usage))
}

/// `/v1/streams` once every stream's worker has stopped (or the drain's
/// deadline has passed: the outcome then shows what is missing).
async fn stopped_views(client: &reqwest::Client, http: &str) -> Option<service::StreamsView> {
    let deadline = Instant::now() + DRAIN;
    let mut ask = tokio::time::interval(ASK_EVERY);
    let mut last = None;
    while Instant::now() < deadline {
        ask.tick().await;
        let Ok(answer) = client.get(format!("http://{http}/v1/streams")).send().await else {
            continue;
        };
        let Ok(view) = answer.json::<service::StreamsView>().await else {
            continue;
        };
        let done = !view.streams.is_empty() && view.streams.iter().all(|s| s.state == "stopped");
        last = Some(view);
        if done {
            break;
        }
    }
    last
}

fn outcome(
    options: &Options,
    segments: &Path,
    views: &Option<service::StreamsView>,
    usage: crate::measure::process::Usage,
) -> ServiceOutcome {
    let mut delays = Vec::new();
    let mut spans = 0;
    let mut dubbed = 0;
    let mut incomplete = Vec::new();
    for k in 0..options.streams {
        let id = format!("svc{k:03}");
        let entries = Manifest::read(&segments.join(&id).join(ingest::MANIFEST_FILE)).unwrap_or_default();
        let written: u64 = entries
            .iter()
            .filter_map(|e| match e {
                ManifestEntry::Segment(s) if s.kind == ingest::MediaKind::Video => Some(s.frames),
                _ => None,
            })
            .sum();
        for entry in &entries {
            if let ManifestEntry::Output(span) = entry {
                spans += 1;
                dubbed += usize::from(span.audio == ingest::SpanAudio::Dub);
                delays.push(span.delay_ms);
            }
        }
        let sent = views
            .as_ref()
            .and_then(|v| v.streams.iter().find(|s| s.id == id))
            .map(|s| s.output_pictures);
        if written == 0 || sent != Some(written) {
            incomplete.push(format!("{id}: {written} pictures written, {sent:?} sent"));
        }
    }
    delays.sort_by(f64::total_cmp);
    let percentile = |p: f64| media_tools::percentile(&delays, p);
    ServiceOutcome {
        streams: options.streams,
        media_s: options.media_s,
        output_delay_ms: OUTPUT_DELAY.as_secs_f64() * 1e3,
        complete_outputs: options.streams - incomplete.len(),
        incomplete,
        delay_p50_ms: percentile(50.0),
        delay_p99_ms: percentile(99.0),
        delay_max_ms: delays.last().copied(),
        spans,
        dubbed_spans: dubbed,
        cpu_s: usage.cpu_s,
        peak_rss_kib: usage.peak_rss_kib,
        service_clean: usage.success,
    }
}

fn markdown(outcome: &ServiceOutcome, machine: &Machine, date: &str, command: &str, frame_ms: f64) -> String {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} ms"));
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let over = outcome.delay_p99_ms.map(|p| p - outcome.output_delay_ms);
    format!(
        "# Service benchmark\n\n{date}, `{command}`, {}\n\n\
         {} streams of the seed fixture ({:.0} s each, real time) through one service \
         (`bench serve`: one worker and one dubbed output each) and the echo STS.\n\n\
         | figure | value |\n| --- | --- |\n\
         | outputs that sent every picture their worker wrote | {} of {} |\n\
         | output spans (dubbed) | {} ({}) |\n\
         | output delay p50 / p99 / max (configured {:.0} ms) | {} / {} / {} |\n\
         | CPU per stream, % of a core | {:.2} |\n\
         | peak RSS per stream | {:.1} MB |\n\
         | service stopped cleanly on SIGTERM | {} |\n\n\
         | target | |\n| --- | --- |\n\
         | every output complete | {} |\n\
         | output delay p99 within one frame ({frame_ms:.1} ms) of the configured delay | {} ({}) |\n",
        machine.summary(),
        outcome.streams,
        outcome.media_s,
        outcome.complete_outputs,
        outcome.streams,
        outcome.spans,
        outcome.dubbed_spans,
        outcome.output_delay_ms,
        ms(outcome.delay_p50_ms),
        ms(outcome.delay_p99_ms),
        ms(outcome.delay_max_ms),
        outcome.cpu_per_stream_pct(),
        outcome.rss_per_stream_mb(),
        outcome.service_clean,
        verdict(outcome.complete_outputs == outcome.streams),
        verdict(over.is_some_and(|o| o <= frame_ms)),
        over.map_or("-".to_owned(), |o| format!("+{o:.1} ms")),
    )
}
