//! `ingest serve`: the live-dubbing service. Settings come from defaults,
//! then `--config FILE`, then `INGEST_*` variables, then these flags; logs
//! (at `info` unless `RUST_LOG` says otherwise) go to stderr with each
//! stream's id. SIGTERM or SIGINT lets every worker finish its stream
//! (segments flushed, STS session and output ended), then it exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use ingest::{Fallback, SourceElement, StsSettings};
use service::{Service, ServiceConfig};

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// MediaMTX's RTMP listener, e.g. rtmp://mediamtx:1935: inputs are read
    /// from it and the dubbed outputs published to it
    #[arg(long, value_name = "URL")]
    rtmp: Option<String>,
    /// MediaMTX's Control API, e.g. http://mediamtx:9997: which streams are
    /// available
    #[arg(long, value_name = "URL")]
    api: Option<String>,
    /// Segments and manifests go to DIR/<stream id>/
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The service's HTTP address (/healthz, /readyz, /metrics,
    /// /v1/streams, /v1/hooks/*), e.g. 127.0.0.1:8080; port 0 picks one
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Deliver each stream's audio segments to the speech-to-speech service
    /// at URL
    #[arg(long, value_name = "URL")]
    sts_url: Option<String>,
    /// YAML settings; INGEST_* variables and flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Which paths are inputs, with one {id}
    #[arg(long, value_name = "PATTERN")]
    input: Option<String>,
    /// Where each dubbed stream is published, with one {id} ("" for none)
    #[arg(long, value_name = "TEMPLATE")]
    output: Option<String>,
    /// Streams served at most at once; more are refused, visibly
    #[arg(long, value_name = "N")]
    max_streams: Option<usize>,
    /// How long a stream gone from MediaMTX keeps its worker, e.g. 5s
    #[arg(long, value_parser = humantime::parse_duration)]
    grace: Option<Duration>,
    /// How often MediaMTX's path list is read, e.g. 250ms
    #[arg(long, value_parser = humantime::parse_duration)]
    poll: Option<Duration>,
    /// Target segment duration, e.g. 6s
    #[arg(long, value_parser = humantime::parse_duration)]
    segment_duration: Option<Duration>,
    /// RTMP source element
    #[arg(long)]
    source: Option<SourceElement>,
    /// How far behind its input the output runs (default: the stream's
    /// first segment, as cut, plus the STS's 3-s budget)
    #[arg(long, value_parser = humantime::parse_duration)]
    output_delay: Option<Duration>,
    /// What fills a span whose dub did not come in time: original or silence
    #[arg(long)]
    output_fallback: Option<Fallback>,
    /// Share the streams with other instances through NATS JetStream at
    /// URL (nats://HOST:4222): each stream is served by the instance
    /// holding its lease, and taken over when that instance dies
    #[arg(long, value_name = "URL", requires = "instance")]
    nats: Option<String>,
    /// This instance's name in the cluster, unique (letters, digits, - and _)
    #[arg(long, value_name = "NAME", requires = "nats")]
    instance: Option<String>,
    /// How long a stream's lease lasts unrenewed, e.g. 5s: a dead
    /// instance's streams are taken over within it
    #[arg(long, value_parser = humantime::parse_duration, requires = "nats")]
    lease_ttl: Option<Duration>,
}

impl ServeArgs {
    fn config(&self) -> Result<ServiceConfig> {
        let mut config =
            ServiceConfig::load(self.config.as_deref()).context("loading the service's settings")?;
        macro_rules! set {
            ($($field:ident),*) => {$(
                if let Some(value) = &self.$field {
                    config.$field = value.clone();
                }
            )*};
        }
        set!(
            rtmp,
            api,
            out,
            listen,
            input,
            output,
            max_streams,
            grace,
            poll,
            segment_duration,
            source,
            output_fallback
        );
        if let Some(delay) = self.output_delay {
            config.output_delay = Some(delay);
        }
        if let (Some(nats), Some(instance)) = (&self.nats, &self.instance) {
            config.cluster = Some(service::ClusterSettings {
                nats: nats.clone(),
                instance: instance.clone(),
                lease_ttl: service::ClusterSettings::default_ttl(),
            });
        }
        if let (Some(ttl), Some(cluster)) = (self.lease_ttl, config.cluster.as_mut()) {
            cluster.lease_ttl = ttl;
        }
        if let Some(url) = &self.sts_url {
            config
                .sts
                .get_or_insert_with(StsSettings::default)
                .url
                .clone_from(url);
        }
        config.validate()?;
        Ok(config)
    }
}

pub(crate) async fn serve(args: &ServeArgs) -> Result<()> {
    let config = args.config()?;
    let service = Service::start(config).await?;
    eprintln!("serving on http://{}", service.addr());
    let stopper = service.stopper();
    tokio::spawn(async move {
        let said = stop_signal().await;
        tracing::info!("{said}: every worker finishes its stream, then the service exits");
        stopper.stop();
    });
    service.wait().await?;
    Ok(())
}

/// Waits for SIGTERM (what an orchestrator sends) or SIGINT (Ctrl-C).
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!("SIGTERM cannot be handled ({e}); Ctrl-C still stops the service");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
