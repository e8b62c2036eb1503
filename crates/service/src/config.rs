//! The service's configuration: defaults, then a YAML file, then `INGEST_*`
//! variables (`INGEST_MAX_STREAMS=8`, `INGEST_STS_URL=...`), then flags
//! (applied by the `ingest serve` command), layered with `figment`. Each
//! stream's worker is configured from it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Yaml};
use ingest::{Fallback, OutputSettings, RtmpUrl, SourceElement, StreamId, StsSettings, WorkerConfig};
use reconnect::ReconnectPolicy;
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::paths::{DEFAULT_INPUT, DEFAULT_OUTPUT, PathPattern};

/// The service's settings; `serve --help` names the flags for them.
/// Streams an instance serves at most unless configured.
pub const DEFAULT_MAX_STREAMS: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// MediaMTX's RTMP listener, `rtmp://HOST:PORT`: inputs are read from
    /// it and outputs published to it.
    pub rtmp: String,
    /// MediaMTX's Control API, `http://HOST:PORT`: what is available.
    pub api: String,
    /// Segments and manifests go to `OUT/<id>/`.
    pub out: PathBuf,
    /// The service's own HTTP: health, readiness, metrics, streams, hooks.
    pub listen: SocketAddr,
    /// Which paths are inputs, with one `{id}`.
    pub input: String,
    /// Where each stream's dubbed output goes, with one `{id}`; empty for
    /// no output.
    pub output: String,
    /// Streams served at most at once; more are refused, visibly.
    pub max_streams: usize,
    /// How long a stream gone from MediaMTX keeps its worker.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// How often MediaMTX's path list is read.
    #[serde(with = "humantime_serde")]
    pub poll: Duration,
    #[serde(with = "humantime_serde")]
    pub segment_duration: Duration,
    pub source: SourceElement,
    /// The output's delay behind the input (default: the stream's first
    /// segment, as cut, plus the STS's budget).
    #[serde(default, with = "humantime_serde")]
    pub output_delay: Option<Duration>,
    pub output_fallback: Fallback,
    #[serde(default)]
    pub sts: Option<StsSettings>,
    /// How soon a failed worker starts again (growing while it keeps
    /// failing, as long as its stream is listed).
    pub restart: ReconnectPolicy,
    /// Several instances sharing the streams through NATS JetStream; `None`:
    /// this instance serves every stream it sees.
    #[serde(default)]
    pub cluster: Option<ClusterSettings>,
}

/// The cluster mode: a stream is served by the instance holding its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// `nats://HOST:PORT` of a NATS server with JetStream.
    pub nats: String,
    /// This instance's name, unique in the deployment (letters, digits,
    /// '-' and '_'; a Kubernetes pod's name, say).
    pub instance: String,
    /// How long a lease lasts unrenewed: a dead instance's streams are
    /// taken over within it (plus one attach).
    #[serde(default = "default_lease_ttl", with = "humantime_serde")]
    pub lease_ttl: Duration,
}

fn default_lease_ttl() -> Duration {
    cluster::DEFAULT_TTL
}

impl ClusterSettings {
    /// The lease TTL when none is given.
    pub fn default_ttl() -> Duration {
        default_lease_ttl()
    }
}

/// A failed worker starts again after 1 s, then 2, 4, ... up to 30 s.
pub const DEFAULT_RESTART: ReconnectPolicy = ReconnectPolicy {
    initial_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(30),
    multiplier: 2.0,
    jitter: 0.2,
    max_attempts: None,
};

/// The keys `INGEST_*` variables may set: the worker mode's own variables
/// (`INGEST_STREAM_ID`, ...) are not the service's.
const KEYS: [&str; 16] = [
    "rtmp",
    "api",
    "out",
    "listen",
    "input",
    "output",
    "max_streams",
    "grace",
    "poll",
    "segment_duration",
    "source",
    "output_delay",
    "output_fallback",
    "sts",
    "restart",
    "cluster",
];

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            rtmp: "rtmp://localhost:1935".into(),
            api: "http://localhost:9997".into(),
            out: PathBuf::from("segments"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            input: DEFAULT_INPUT.into(),
            output: DEFAULT_OUTPUT.into(),
            max_streams: DEFAULT_MAX_STREAMS,
            grace: Duration::from_secs(5),
            poll: Duration::from_millis(250),
            segment_duration: Duration::from_secs(6),
            source: SourceElement::default(),
            output_delay: None,
            output_fallback: Fallback::default(),
            sts: None,
            restart: DEFAULT_RESTART,
            cluster: None,
        }
    }
}

impl ServiceConfig {
    /// Defaults, then `file`, then `INGEST_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ServiceError> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ServiceError::ConfigFile {
                    path: path.to_owned(),
                    reason: "no such file".into(),
                });
            }
            figment = figment.merge(Yaml::file(path));
        }
        let env = Env::prefixed("INGEST_")
            .map(|key| {
                // `INGEST_STS_URL` is `sts.url`, `INGEST_CLUSTER_NATS` is
                // `cluster.nats`.
                let key = key.as_str();
                for section in ["sts", "cluster"] {
                    if let Some(rest) = key.strip_prefix(&format!("{section}_")) {
                        return format!("{section}.{rest}").into();
                    }
                }
                key.to_owned().into()
            })
            .filter(|key| KEYS.contains(&key.as_str().split('.').next().unwrap_or_default()));
        let config: Self = figment
            .merge(env)
            .extract()
            .map_err(|e| ServiceError::Config(e.to_string()))?;
        Ok(config)
    }

    /// Refuses what cannot run, naming the setting.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let rtmp = self.rtmp_authority()?;
        let _ = rtmp;
        if !self.api.starts_with("http://") && !self.api.starts_with("https://") {
            return Err(ServiceError::Config(format!(
                "api '{}' must be MediaMTX's Control API, http://HOST:PORT",
                self.api
            )));
        }
        let input = PathPattern::parse(&self.input, "input")?;
        if !self.output.is_empty() && input.overlaps(&PathPattern::parse(&self.output, "output")?) {
            return Err(ServiceError::Config(format!(
                "output '{}' is the input pattern: the service would serve its own output",
                self.output
            )));
        }
        if self.max_streams == 0 {
            return Err(ServiceError::Config(
                "max_streams 0 serves nothing; expected at least 1".into(),
            ));
        }
        self.restart
            .validate()
            .map_err(|e| ServiceError::Config(format!("restart: {e}")))?;
        if self.poll < Duration::from_millis(50) || self.poll > Duration::from_secs(1) {
            return Err(ServiceError::Config(format!(
                "poll {:?} is out of range; expected 50ms to 1s (a worker must start within 1 s of its stream)",
                self.poll
            )));
        }
        let probe = self.worker(&StreamId::parse("probe").expect("a valid id"))?;
        probe.validate().map_err(|e| ServiceError::Config(e.to_string()))
    }

    /// `host:port` of the RTMP listener.
    fn rtmp_authority(&self) -> Result<&str, ServiceError> {
        self.rtmp
            .strip_prefix("rtmp://")
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| {
                ServiceError::Config(format!(
                    "rtmp '{}' must be MediaMTX's RTMP listener, rtmp://HOST:PORT",
                    self.rtmp
                ))
            })
    }

    pub(crate) fn input_pattern(&self) -> PathPattern {
        PathPattern::parse(&self.input, "input").expect("validated")
    }

    /// The worker of stream `id`.
    pub(crate) fn worker(&self, id: &StreamId) -> Result<WorkerConfig, ServiceError> {
        let authority = self.rtmp_authority()?;
        let invalid = |e: ingest::ConfigError| ServiceError::Config(e.to_string());
        let url = |path: String| RtmpUrl::parse(&format!("rtmp://{authority}/{path}")).map_err(invalid);
        let mut config = WorkerConfig::new(id.clone());
        config.url = Some(url(PathPattern::parse(&self.input, "input")?.path(id))?);
        config.output_dir = self.out.clone();
        config.segment_duration = self.segment_duration;
        config.source = self.source;
        config.sts = self.sts.clone();
        if !self.output.is_empty() {
            let mut output = OutputSettings::new(url(PathPattern::parse(&self.output, "output")?.path(id))?);
            output.delay = self.output_delay;
            output.fallback = self.output_fallback;
            config.output = Some(output);
        }
        Ok(config)
    }

    /// The output path of stream `id`, if there is an output.
    pub(crate) fn output_path(&self, id: &StreamId) -> Option<String> {
        (!self.output.is_empty())
            .then(|| {
                PathPattern::parse(&self.output, "output")
                    .ok()
                    .map(|p| p.path(id))
            })
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_s_worker_reads_its_input_and_publishes_its_output() {
        let config = ServiceConfig {
            rtmp: "rtmp://mediamtx:1935".into(),
            ..ServiceConfig::default()
        };
        config.validate().unwrap();
        let worker = config.worker(&StreamId::parse("cam1").unwrap()).unwrap();
        assert_eq!(
            worker.url.unwrap().to_string(),
            "rtmp://mediamtx:1935/live/cam1/in"
        );
        assert_eq!(
            worker.output.unwrap().url.to_string(),
            "rtmp://mediamtx:1935/live/cam1/out"
        );
    }

    #[test]
    fn what_cannot_run_is_refused_naming_the_setting() {
        for (config, words) in [
            (
                ServiceConfig {
                    output: DEFAULT_INPUT.into(),
                    ..ServiceConfig::default()
                },
                "serve its own output",
            ),
            (
                ServiceConfig {
                    rtmp: "http://mediamtx:1935".into(),
                    ..ServiceConfig::default()
                },
                "rtmp://HOST:PORT",
            ),
            (
                ServiceConfig {
                    max_streams: 0,
                    ..ServiceConfig::default()
                },
                "max_streams",
            ),
            (
                ServiceConfig {
                    output_delay: Some(Duration::from_secs(1)),
                    ..ServiceConfig::default()
                },
                "output.delay",
            ),
        ] {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(words), "{message}");
        }
    }
}
