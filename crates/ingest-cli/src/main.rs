//! `ingest`: pull one RTMP stream into keyframe-aligned segments, or, as
//! `ingest serve`, run the live-dubbing service ([`serve`]) that keeps one
//! such worker per stream MediaMTX has.
//!
//! A single worker prints one line per event. Waits for a missing or ended stream to
//! come back (use `--once` to exit when it ends); Ctrl-C flushes the partial
//! segment and exits 0; a fatal error exits non-zero with the reason.

mod cluster_status;
mod repeats;
mod serve;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use ingest::{
    FragmentRecord, SourceElement, SpanAudio, StsAudioFormat, StsSettings, WorkerConfig, WorkerEvent,
    WorkerRunner,
};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Pull an RTMP stream (H.264 + AAC) into keyframe-aligned MPEG-TS segments",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    worker: Args,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run the live-dubbing service: follow MediaMTX, keep one worker per
    /// input stream (live/<id>/in), publish each dubbed stream on
    /// live/<id>/out, and serve health, metrics and streams over HTTP
    Serve(Box<serve::ServeArgs>),
    /// A cluster of `ingest serve --nats` instances
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Which instance serves which stream, and where each stream's
    /// numbering stands
    Status(cluster_status::StatusArgs),
}

#[derive(Debug, clap::Args)]
struct Args {
    /// Stream to pull, e.g. rtmp://mediamtx:1935/live/<id>/in
    #[arg(long)]
    url: Option<String>,
    /// Output directory; segments go to DIR/<stream id>/
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// YAML or JSON worker configuration; flags and INGEST_* variables override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Target segment duration, e.g. 6s or 500ms
    #[arg(long, value_parser = humantime::parse_duration)]
    segment_duration: Option<Duration>,
    /// RTMP source element
    #[arg(long)]
    source: Option<SourceElement>,
    /// Capacity of each branch's queue and appsink
    #[arg(long)]
    max_buffers: Option<u32>,
    /// How long to wait for the second track before refusing the stream
    #[arg(long, value_parser = humantime::parse_duration)]
    audio_validation_timeout: Option<Duration>,
    /// Deliver the audio segments to the speech-to-speech service at URL,
    /// e.g. http://sts:5000 (the `sts` section; INGEST_STS_URL)
    #[arg(long, value_name = "URL")]
    sts_url: Option<String>,
    /// Language spoken in the stream, e.g. en
    #[arg(long, value_name = "LANG")]
    sts_source_language: Option<String>,
    /// Language to dub into, e.g. es
    #[arg(long, value_name = "LANG")]
    sts_target_language: Option<String>,
    /// STS voice profile
    #[arg(long, value_name = "NAME")]
    sts_voice_profile: Option<String>,
    /// Audio sent to the STS: aac, or pcm_s16le (rate and channels from
    /// the file or INGEST_STS_SAMPLE_RATE / INGEST_STS_CHANNELS)
    #[arg(long, value_name = "FORMAT")]
    sts_format: Option<StsAudioFormat>,
    /// Print events as JSON lines
    #[arg(long)]
    json: bool,
    /// Exit 0 when the stream ends instead of waiting for it to return
    #[arg(long)]
    once: bool,
}

impl Args {
    fn worker_config(&self) -> Result<WorkerConfig> {
        let mut config =
            WorkerConfig::load(self.config.as_deref(), self.url.as_deref()).with_context(|| {
                match (&self.config, &self.url) {
                    (Some(file), _) => format!("loading {}", file.display()),
                    (None, Some(_)) => "configuring from --url and INGEST_* variables".to_owned(),
                    (None, None) => {
                        "no --url or --config given, and INGEST_* variables do not name a stream".to_owned()
                    }
                }
            })?;
        if let Some(out) = &self.out {
            config.output_dir = out.clone();
        }
        if let Some(d) = self.segment_duration {
            config.segment_duration = d;
        }
        if let Some(s) = self.source {
            config.source = s;
        }
        if let Some(n) = self.max_buffers {
            config.max_buffers = n;
        }
        if let Some(t) = self.audio_validation_timeout {
            config.audio_validation_timeout = t;
        }
        self.apply_sts_flags(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Any `--sts-*` flag asks for STS delivery: it fills in (or creates)
    /// the `sts` section; one without a URL is refused by validation.
    fn apply_sts_flags(&self, config: &mut WorkerConfig) {
        let given = self.sts_url.is_some()
            || self.sts_source_language.is_some()
            || self.sts_target_language.is_some()
            || self.sts_voice_profile.is_some()
            || self.sts_format.is_some();
        if !given {
            return;
        }
        let sts = config.sts.get_or_insert_with(StsSettings::default);
        for (flag, setting) in [
            (&self.sts_url, &mut sts.url),
            (&self.sts_source_language, &mut sts.source_language),
            (&self.sts_target_language, &mut sts.target_language),
            (&self.sts_voice_profile, &mut sts.voice_profile),
        ] {
            if let Some(value) = flag {
                setting.clone_from(value);
            }
        }
        if let Some(format) = self.sts_format {
            sts.format = format;
        }
    }
}

fn describe_fragment(what: &str, f: &FragmentRecord) -> String {
    let mut line = format!("fragment {what}: audio segment {}", f.index);
    if let Some(id) = &f.fragment_id {
        line += &format!(" ({id})");
    }
    if let Some(attempts) = f.attempts.filter(|n| *n > 1) {
        line += &format!(", attempt {attempts}");
    }
    if let Some(file) = &f.dubbed_file {
        line += &format!(" -> {file}");
    }
    if let Some(ms) = f.round_trip_ms {
        line += &format!(", round trip {ms:.0} ms");
    }
    if let Some(reason) = &f.reason {
        line += &format!(": {reason}");
    }
    line
}

fn describe(event: &WorkerEvent) -> String {
    match event {
        WorkerEvent::Connecting {
            connection,
            attempt,
            url,
        } => {
            format!("connecting: {url} (connection {connection}, attempt {attempt})")
        }
        WorkerEvent::Playing { connection } => {
            format!("playing: the server accepted connection {connection}")
        }
        WorkerEvent::Connected { connection } => format!("connected: connection {connection} is receiving"),
        WorkerEvent::TracksValidated(c) => {
            let mut line = format!(
                "tracks validated: {} + {} (first video after {:.0} ms, first audio after {:.0} ms)",
                c.video_codec, c.audio_codec, c.first_video_ms, c.first_audio_ms
            );
            if let Some(span) = &c.join.not_received {
                line += &format!(
                    "; joined at the keyframe at {:.3} s: {:.3}-{:.3} s of the stream not received",
                    span.to_s, span.from_s, span.to_s
                );
            }
            line
        }
        WorkerEvent::SegmentWritten(s) => format!(
            "segment: {} start {:.3}s duration {:.3}s, {} frames, {} bytes{}, written {:.1} ms after its last buffer arrived",
            s.file,
            s.start_s,
            s.duration_s,
            s.frames,
            s.bytes,
            if s.partial { ", partial" } else { "" },
            s.write_latency_ms
        ),
        WorkerEvent::Disconnected { connection, reason } => {
            format!("disconnected: connection {connection}: {reason}")
        }
        WorkerEvent::Reconnecting {
            attempt,
            delay_ms,
            reason,
        } => {
            format!("reconnecting: attempt {attempt} in {delay_ms} ms ({reason})")
        }
        WorkerEvent::StsReady {
            session_id,
            max_inflight,
            connection,
        } => format!(
            "sts ready: session {session_id} (STS connection {connection}, up to {max_inflight} in flight)"
        ),
        WorkerEvent::StsConnectFailed {
            attempt,
            reason,
            retry_in_ms,
        } => format!("sts unreachable: attempt {attempt}: {reason}; retrying in {retry_in_ms} ms"),
        WorkerEvent::StsDisconnected { connection, reason } => {
            format!("sts disconnected: STS connection {connection}: {reason}")
        }
        WorkerEvent::FragmentSent(f) => describe_fragment("sent", f),
        WorkerEvent::FragmentAcked(f) => describe_fragment("acked", f),
        WorkerEvent::FragmentProcessed(f) => describe_fragment("processed", f),
        WorkerEvent::FragmentFailed(f) => describe_fragment("failed", f),
        WorkerEvent::FragmentNotSent(f) => describe_fragment("not sent", f),
        WorkerEvent::StsEnded {
            processed,
            failed,
            not_sent,
            stream_end_sent,
        } => format!(
            "sts ended: {processed} processed, {failed} failed, {not_sent} not sent{}",
            if *stream_end_sent {
                ""
            } else {
                " (no session for stream:end)"
            }
        ),
        WorkerEvent::OutputStarted { connection, url } => {
            format!("output: publishing connection {connection} to {url}")
        }
        WorkerEvent::OutputSpan(span) => {
            let mut line = format!(
                "output span: audio segment {} carries {}, {:.0} ms behind the input",
                span.index,
                match span.audio {
                    SpanAudio::Dub => "its dub",
                    SpanAudio::Original => "the original audio",
                    SpanAudio::Silence => "silence",
                },
                span.delay_ms
            );
            if let Some(reason) = &span.reason {
                line += &format!(" ({reason})");
            }
            line
        }
        WorkerEvent::OutputEnded {
            connection,
            failure,
            pictures,
        } => match failure {
            None => format!("output ended: connection {connection}, {pictures} pictures sent"),
            Some(failure) => {
                format!("output failed: connection {connection} after {pictures} pictures: {failure}")
            }
        },
        WorkerEvent::Failed { kind, error } => format!("failed ({kind}): {error}"),
        WorkerEvent::Finished {
            video_segments,
            audio_segments,
            connections,
        } => format!(
            "finished: {video_segments} video and {audio_segments} audio segments over {connections} connection(s)"
        ),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service says what it does (workers started, stopped, refused);
    // a single worker's events already go to stdout.
    let default_level = if cli.command.is_some() { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match &cli.command {
        Some(Command::Serve(args)) => serve::serve(args).await,
        Some(Command::Cluster(ClusterCommand::Status(args))) => cluster_status::status(args).await,
        None => run(&cli.worker).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<()> {
    let config = args.worker_config()?;
    let mut handle = WorkerRunner::new(config)
        .stop_when_stream_ends(args.once)
        .spawn()?;
    let stopper = handle.stopper();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stopper.stop();
        }
    });
    let mut out = std::io::stdout().lock();
    let mut repeats = repeats::Repeats::default();
    while let Some(event) = handle.next_event().await {
        let lines = if args.json {
            vec![serde_json::to_string(&event).context("serialising an event")?]
        } else {
            let (mut said, own) = repeats.judge(&event, std::time::Instant::now());
            if own {
                said.push(describe(&event));
            }
            said
        };
        // Whoever read the events has gone (`ingest ... | head -1`): stop
        // the worker cleanly, flushing what it holds, and end quietly.
        let written = lines
            .iter()
            .try_for_each(|line| writeln!(out, "{line}"))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).context("writing events to stdout");
            }
            handle.stopper().stop();
            while handle.next_event().await.is_some() {}
            break;
        }
    }
    drop(out);
    handle.wait().await?;
    Ok(())
}
