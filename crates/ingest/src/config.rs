//! Worker configuration: defaults, a YAML or JSON file, then `INGEST_*`
//! environment variables, in that order of precedence.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::{Mapping, Value};

use crate::dubbing::StsSettings;
use crate::error::ConfigError;
use crate::output::OutputSettings;
use crate::rtmp_url::{DEFAULT_RTMP_PORT, RtmpUrl};
use crate::stream_id::StreamId;
use reconnect::ReconnectPolicy;

/// Prefix of the environment variables that override file settings, e.g.
/// `INGEST_STREAM_ID=abc`, `INGEST_SEGMENT_DURATION=4s`,
/// `INGEST_RECONNECT_MAX_DELAY=2s`, `INGEST_STS_URL=http://sts:5000`.
pub const ENV_PREFIX: &str = "INGEST_";

/// Sections whose keys are set from the environment as
/// `INGEST_<SECTION>_<KEY>`.
const SECTIONS: [&str; 4] = ["reconnect", "unreachable", "sts", "output"];

/// Settings whose environment values are taken as text, never parsed (a
/// target language `no` is Norwegian, not YAML's false).
const TEXT_SETTINGS: [&str; 13] = [
    "output_url",
    "output_fallback",
    "stream_id",
    "url",
    "mediamtx_host",
    "app_path",
    "output_dir",
    "source",
    "sts_url",
    "sts_source_language",
    "sts_target_language",
    "sts_voice_profile",
    "sts_format",
];

/// A reader that arrives before the publisher is refused by MediaMTX, so
/// while a stream is missing the ingest keeps asking: it must attach within
/// 0.5 s of the stream becoming available (aim: 0.25 s), which bounds every
/// default delay, jitter included, at this. That is four or five attempts a
/// second against a server that refuses, a cost MediaMTX answers in
/// microseconds.
pub const MAX_ATTACH_DELAY: Duration = Duration::from_millis(250);

/// 100 ms doubling to 200 ms, ±20 %, for ever: within [`MAX_ATTACH_DELAY`]
/// at the worst draw.
pub const DEFAULT_RECONNECT: ReconnectPolicy = ReconnectPolicy {
    initial_delay: Duration::from_millis(100),
    max_delay: Duration::from_millis(200),
    multiplier: 2.0,
    jitter: 0.2,
    max_attempts: None,
};

/// A server that cannot be reached at all (it refuses the connection, or
/// does not answer) is not a stream that is about to appear: asking five
/// times a second would hammer it, so the delay grows to seconds: 250 ms
/// doubling to 5 s, ±20 %, for ever. Once the server answers again, the
/// quick [`DEFAULT_RECONNECT`] applies.
pub const DEFAULT_UNREACHABLE: ReconnectPolicy = ReconnectPolicy {
    initial_delay: Duration::from_millis(250),
    max_delay: Duration::from_secs(5),
    multiplier: 2.0,
    jitter: 0.2,
    max_attempts: None,
};

/// Longer segments would mean hours of media held before a file appears.
const MAX_SEGMENT_DURATION: Duration = Duration::from_secs(3600);

/// Which GStreamer RTMP source element pulls the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceElement {
    /// librtmp-based; blocks in its state change while connecting.
    #[default]
    Rtmpsrc,
    /// GStreamer's native RTMP client; connects asynchronously.
    Rtmp2src,
}

impl SourceElement {
    pub fn factory_name(self) -> &'static str {
        match self {
            Self::Rtmpsrc => "rtmpsrc",
            Self::Rtmp2src => "rtmp2src",
        }
    }
}

impl std::str::FromStr for SourceElement {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rtmpsrc" => Ok(Self::Rtmpsrc),
            "rtmp2src" => Ok(Self::Rtmp2src),
            other => Err(ConfigError::InvalidField {
                field: "source",
                reason: format!("unknown source element '{other}'; expected 'rtmpsrc' or 'rtmp2src'"),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    #[serde(default = "defaults::host")]
    pub mediamtx_host: String,
    #[serde(default = "defaults::port")]
    pub mediamtx_rtmp_port: u16,
    #[serde(default = "defaults::app_path")]
    pub app_path: String,
    pub stream_id: StreamId,
    /// Pull this URL instead of the one built from host, port and app path.
    #[serde(default)]
    pub url: Option<RtmpUrl>,
    #[serde(default = "defaults::segment_duration", with = "humantime_serde")]
    pub segment_duration: Duration,
    /// Capacity, in buffers, of each branch's queue and appsink. (flvdemux has
    /// no such property, so it cannot be applied there.)
    #[serde(default = "defaults::max_buffers")]
    pub max_buffers: u32,
    #[serde(default)]
    pub source: SourceElement,
    #[serde(default = "defaults::audio_validation_timeout", with = "humantime_serde")]
    pub audio_validation_timeout: Duration,
    /// Once both tracks are announced, each must deliver a frame within
    /// this: a joining worker's first picture waits for the publisher's next
    /// keyframe, so this bounds the GOP the ingest serves.
    #[serde(default = "defaults::keyframe_timeout", with = "humantime_serde")]
    pub keyframe_timeout: Duration,
    /// A server that accepted the play must send a track within this, or
    /// the connection is dropped (and retried) with that reason.
    #[serde(default = "defaults::track_timeout", with = "humantime_serde")]
    pub track_timeout: Duration,
    /// A server silent this long has its connection dropped (and retried).
    #[serde(default = "defaults::idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Relay the source through the guard (see `guard`): limits on what a
    /// server may send, idle detection, an orderly end of stream. Off only
    /// to compare with the bare source.
    #[serde(default = "defaults::yes")]
    pub source_guard: bool,
    #[serde(
        default = "defaults::reconnect",
        deserialize_with = "defaults::reconnect_over"
    )]
    pub reconnect: ReconnectPolicy,
    /// How to retry a server that cannot be reached (connection refused or
    /// unanswered), as the source guard tells; the same keys as `reconnect`.
    #[serde(
        default = "defaults::unreachable",
        deserialize_with = "defaults::unreachable_over"
    )]
    pub unreachable: ReconnectPolicy,
    #[serde(default = "defaults::output_dir")]
    pub output_dir: PathBuf,
    /// Deliver every audio segment to the speech-to-speech service; absent,
    /// nothing is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<StsSettings>,
    /// Publish the input's video with the dubbed audio; absent, nothing is
    /// published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSettings>,
}

mod defaults {
    use super::*;
    pub fn host() -> String {
        "localhost".into()
    }
    pub fn port() -> u16 {
        DEFAULT_RTMP_PORT
    }
    pub fn app_path() -> String {
        crate::DEFAULT_APP_PATH.into()
    }
    pub fn segment_duration() -> Duration {
        Duration::from_secs(6)
    }
    pub fn max_buffers() -> u32 {
        10
    }
    pub fn audio_validation_timeout() -> Duration {
        Duration::from_secs(2)
    }
    pub fn keyframe_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn track_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn idle_timeout() -> Duration {
        Duration::from_secs(10)
    }
    pub fn yes() -> bool {
        true
    }
    pub fn output_dir() -> PathBuf {
        PathBuf::from("segments")
    }
    pub fn reconnect() -> ReconnectPolicy {
        DEFAULT_RECONNECT
    }
    pub fn unreachable() -> ReconnectPolicy {
        DEFAULT_UNREACHABLE
    }
    /// An `unreachable:` mapping keeps the defaults of the keys it leaves out.
    pub fn unreachable_over<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ReconnectPolicy, D::Error> {
        ReconnectPolicy::deserialize_over(&DEFAULT_UNREACHABLE, deserializer)
    }
    /// A `reconnect:` mapping keeps the defaults of the keys it leaves out.
    pub fn reconnect_over<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<ReconnectPolicy, D::Error> {
        ReconnectPolicy::deserialize_over(&DEFAULT_RECONNECT, deserializer)
    }
}

impl WorkerConfig {
    /// A configuration with every default and the given stream id.
    pub fn new(stream_id: StreamId) -> Self {
        Self {
            mediamtx_host: defaults::host(),
            mediamtx_rtmp_port: defaults::port(),
            app_path: defaults::app_path(),
            stream_id,
            url: None,
            segment_duration: defaults::segment_duration(),
            max_buffers: defaults::max_buffers(),
            source: SourceElement::default(),
            audio_validation_timeout: defaults::audio_validation_timeout(),
            keyframe_timeout: defaults::keyframe_timeout(),
            track_timeout: defaults::track_timeout(),
            idle_timeout: defaults::idle_timeout(),
            source_guard: true,
            reconnect: DEFAULT_RECONNECT,
            unreachable: DEFAULT_UNREACHABLE,
            output_dir: defaults::output_dir(),
            sts: None,
            output: None,
        }
    }

    /// A configuration for pulling `url`, with the stream id taken from it.
    pub fn for_url(url: &str) -> Result<Self, ConfigError> {
        let parsed = RtmpUrl::parse(url)?;
        let mut config = Self::new(parsed.stream_id()?);
        config.mediamtx_host = parsed.host().to_owned();
        config.mediamtx_rtmp_port = parsed.port();
        config.url = Some(parsed);
        Ok(config)
    }

    /// Loads an optional YAML/JSON file, applies `INGEST_*` variables, then
    /// `url` (a command-line flag, which decides the URL, the stream id, the
    /// host and the port).
    pub fn load(file: Option<&Path>, url: Option<&str>) -> Result<Self, ConfigError> {
        let Some(path) = file else {
            return Self::from_layers(Value::Mapping(Mapping::new()), std::env::vars(), url);
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let located = |e: serde_yaml::Error| match e.location() {
            Some(at) => ConfigError::FileSetting {
                path: path.to_owned(),
                line: at.line(),
                column: at.column(),
                reason: e.to_string(),
            },
            None => ConfigError::File {
                path: path.to_owned(),
                reason: e.to_string(),
            },
        };
        let base: Value = serde_yaml::from_str(&text).map_err(located)?;
        Self::from_layers(base, std::env::vars(), url).map_err(|e| match e {
            // A value the file holds, pointed at where it is written.
            ConfigError::Setting { .. } => match serde_yaml::from_str::<Self>(&text) {
                Err(file_error) if file_error.location().is_some() => located(file_error),
                _ => e,
            },
            other => other,
        })
    }

    fn from_layers(
        mut value: Value,
        env: impl IntoIterator<Item = (String, String)>,
        url: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let Value::Mapping(root) = &mut value else {
            return Err(ConfigError::Setting {
                key: "(the whole file)".into(),
                reason: "the configuration must be a mapping of settings".into(),
            });
        };
        let mut from_env = Vec::new();
        for (var, raw) in env {
            let Some(key) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            // Text settings stay text (a stream id `007` or an empty one is
            // not a number or null); others parse as a YAML scalar so
            // numbers and `null` keep their type.
            let parsed = if TEXT_SETTINGS.contains(&key.as_str()) {
                Value::String(raw.clone())
            } else {
                match serde_yaml::from_str(&raw).unwrap_or(Value::String(raw.clone())) {
                    Value::Mapping(_) | Value::Sequence(_) => Value::String(raw.clone()),
                    scalar => scalar,
                }
            };
            let section = SECTIONS.iter().find_map(|section| {
                key.strip_prefix(section)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .map(|sub| (*section, sub))
            });
            match section {
                Some((section, sub)) => {
                    let entry = root
                        .entry(Value::from(section))
                        .or_insert_with(|| Value::Mapping(Mapping::new()));
                    // `sts: null` in a file is an absent section that the
                    // environment may still fill in.
                    if entry.is_null() {
                        *entry = Value::Mapping(Mapping::new());
                    }
                    if let Value::Mapping(map) = entry {
                        map.insert(Value::from(sub), parsed);
                    }
                    from_env.push((format!("{section}.{sub}"), var));
                }
                None => {
                    root.insert(Value::from(key.as_str()), parsed);
                    from_env.push((key, var));
                }
            }
        }
        let url = match url {
            // The flag decides the URL, host and port.
            Some(url) => {
                let parsed = RtmpUrl::parse(url)?;
                for (key, value) in [
                    ("url", Value::from(url)),
                    ("mediamtx_host", Value::from(parsed.host())),
                    ("mediamtx_rtmp_port", Value::from(parsed.port())),
                ] {
                    root.insert(Value::from(key), value);
                }
                Some(parsed)
            }
            None => match root.get("url").and_then(Value::as_str) {
                Some(url) => Some(RtmpUrl::parse(url)?),
                None => None,
            },
        };
        // A URL names its stream; a stream_id given as well must agree.
        if let Some(url) = &url {
            let url_id = url.stream_id()?;
            match root.get("stream_id").and_then(Value::as_str) {
                Some(id) if id != url_id.as_str() => {
                    return Err(ConfigError::ConflictingStreamId {
                        url_id: url_id.to_string(),
                        stream_id: id.to_owned(),
                    });
                }
                Some(_) => {}
                None => {
                    root.insert(Value::from("stream_id"), Value::from(url_id.as_str()));
                }
            }
        }
        let config: Self = match serde_yaml::from_value(value.clone()) {
            Ok(config) => config,
            Err(e) => return Err(Self::blame(&value, &from_env, e)),
        };
        config.validate()?;
        Ok(config)
    }

    /// Says which setting a deserialisation error is about: serde_yaml names
    /// the expected type but not the key, so each value that came from the
    /// environment is taken out in turn; the one whose absence changes the
    /// error is to blame.
    fn blame(value: &Value, from_env: &[(String, String)], error: serde_yaml::Error) -> ConfigError {
        let reason = error.to_string();
        for (key, var) in from_env {
            let mut without = value.clone();
            let removed = match key.split_once('.') {
                Some((outer, inner)) => without
                    .get_mut(outer)
                    .and_then(Value::as_mapping_mut)
                    .and_then(|m| m.remove(inner)),
                None => without.as_mapping_mut().and_then(|m| m.remove(key.as_str())),
            };
            if removed.is_none() {
                continue;
            }
            let changed = match serde_yaml::from_value::<Self>(without) {
                Ok(_) => true,
                Err(other) => other.to_string() != reason,
            };
            if changed {
                return ConfigError::Env {
                    var: var.clone(),
                    reason,
                };
            }
        }
        ConfigError::Setting {
            key: "(a file setting)".into(),
            reason,
        }
    }

    /// Checks values that serde alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(Duration::from_millis(100)..=MAX_SEGMENT_DURATION).contains(&self.segment_duration) {
            return Err(ConfigError::InvalidField {
                field: "segment_duration",
                reason: format!(
                    "{:?} is out of range; expected between 100ms and {}",
                    self.segment_duration,
                    humantime::format_duration(MAX_SEGMENT_DURATION)
                ),
            });
        }
        self.reconnect.validate()?;
        self.unreachable.validate()?;
        if self.max_buffers == 0 {
            return Err(ConfigError::InvalidField {
                field: "max_buffers",
                reason: "0 would stall the pipeline; expected at least 1".into(),
            });
        }
        for (field, value, example) in [
            ("audio_validation_timeout", self.audio_validation_timeout, "2s"),
            ("track_timeout", self.track_timeout, "5s"),
            ("keyframe_timeout", self.keyframe_timeout, "30s"),
            ("idle_timeout", self.idle_timeout, "10s"),
        ] {
            if value < Duration::from_millis(100) {
                return Err(ConfigError::InvalidField {
                    field,
                    reason: format!("{value:?} is too short; expected at least 100ms, such as {example}"),
                });
            }
        }
        if self.mediamtx_rtmp_port == 0 {
            return Err(ConfigError::InvalidField {
                field: "mediamtx_rtmp_port",
                reason: "port 0 cannot be connected to; expected a port from 1 to 65535, such as 1935".into(),
            });
        }
        if let Some(sts) = &self.sts {
            sts.validate(self.segment_duration)?;
        }
        if let Some(output) = &self.output {
            output.validate(self.segment_duration)?;
        }
        let url = self.rtmp_url()?;
        // A URL set on the struct directly must agree with the id too.
        let url_id = url.stream_id()?;
        if url_id != self.stream_id {
            return Err(ConfigError::ConflictingStreamId {
                url_id: url_id.to_string(),
                stream_id: self.stream_id.to_string(),
            });
        }
        Ok(())
    }

    /// The URL to pull: `url` if set, else `rtmp://{host}:{port}/{app}/{stream_id}/in`.
    pub fn rtmp_url(&self) -> Result<RtmpUrl, ConfigError> {
        match &self.url {
            Some(url) => Ok(url.clone()),
            None => RtmpUrl::for_stream(
                &self.mediamtx_host,
                self.mediamtx_rtmp_port,
                &self.app_path,
                &self.stream_id,
            ),
        }
    }

    /// Where this stream's segments and manifest go.
    pub fn stream_dir(&self) -> PathBuf {
        self.output_dir.join(self.stream_id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_missing_stream_is_picked_up_within_a_quarter_second() {
        // Worst case between the stream appearing and the next attempt is one
        // full delay, with maximal jitter, however long the stream was missing.
        let policy = WorkerConfig::new(StreamId::parse("abc").unwrap()).reconnect;
        let worst = (1..1000).map(|a| policy.delay(a, 0.999_999)).max().unwrap();
        assert!(worst <= MAX_ATTACH_DELAY, "{worst:?}");
        let best = (1..1000).map(|a| policy.delay(a, 0.0)).min().unwrap();
        assert!(best >= Duration::from_millis(80), "{best:?}");
    }

    #[test]
    fn a_reconnect_policy_that_would_hammer_the_server_is_refused() {
        let mut config = WorkerConfig::new(StreamId::parse("abc").unwrap());
        config.reconnect.initial_delay = Duration::from_millis(1);
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.starts_with("invalid value for reconnect: initial_delay 1ms"),
            "{message}"
        );
    }

    #[test]
    fn defaults_match_the_service_spec() {
        let config = WorkerConfig::new(StreamId::parse("abc").unwrap());
        assert_eq!(config.mediamtx_rtmp_port, 1935);
        assert_eq!(config.app_path, "live");
        assert_eq!(config.segment_duration, Duration::from_secs(6));
        assert_eq!(config.max_buffers, 10);
        assert_eq!(config.source, SourceElement::Rtmpsrc);
        assert_eq!(config.audio_validation_timeout, Duration::from_secs(2));
        assert_eq!(
            config.rtmp_url().unwrap().expose(),
            "rtmp://localhost:1935/live/abc/in"
        );
    }

    #[test]
    fn file_values_then_env_overrides() {
        let file: Value = serde_yaml::from_str(
            "mediamtx_host: mediamtx\nstream_id: abc\nsegment_duration: 4s\nreconnect: {max_delay: 3s}\n",
        )
        .unwrap();
        let config = WorkerConfig::from_layers(
            file,
            env(&[
                ("INGEST_SOURCE", "rtmp2src"),
                ("INGEST_MAX_BUFFERS", "20"),
                ("INGEST_RECONNECT_MAX_ATTEMPTS", "5"),
                ("PATH", "/bin"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(config.mediamtx_host, "mediamtx");
        assert_eq!(config.segment_duration, Duration::from_secs(4));
        assert_eq!(config.source, SourceElement::Rtmp2src);
        assert_eq!(config.max_buffers, 20);
        assert_eq!(config.reconnect.max_delay, Duration::from_secs(3));
        assert_eq!(config.reconnect.max_attempts, Some(5));
        // What the file and the environment leave out keeps the ingest's own.
        assert_eq!(config.reconnect.initial_delay, DEFAULT_RECONNECT.initial_delay);
        assert_eq!(config.reconnect.jitter, DEFAULT_RECONNECT.jitter);
    }

    #[test]
    fn env_alone_is_enough() {
        let config = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "s1"), ("INGEST_MEDIAMTX_RTMP_PORT", "1936")]),
            None,
        )
        .unwrap();
        assert_eq!(
            config.rtmp_url().unwrap().expose(),
            "rtmp://localhost:1936/live/s1/in"
        );
    }

    #[test]
    fn unknown_settings_and_bad_ids_are_refused() {
        let unknown = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "s1"), ("INGEST_MAX_BUFERS", "3")]),
            None,
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("max_bufers"), "{unknown}");
        let bad_id = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "../etc")]),
            None,
        )
        .unwrap_err();
        assert!(bad_id.to_string().contains("stream id"), "{bad_id}");
    }

    #[test]
    fn a_url_flag_decides_the_stream_while_env_sets_the_rest() {
        let config = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "cam7"), ("INGEST_SEGMENT_DURATION", "4s")]),
            Some("rtmp://h:1940/live/cam7/in"),
        )
        .unwrap();
        assert_eq!(config.stream_id.as_str(), "cam7");
        assert_eq!(config.segment_duration, Duration::from_secs(4));
        assert_eq!(config.rtmp_url().unwrap().expose(), "rtmp://h:1940/live/cam7/in");
    }

    #[test]
    fn for_url_takes_the_stream_id_from_the_path() {
        let config = WorkerConfig::for_url("rtmp://h:1940/live/cam7/in").unwrap();
        assert_eq!(config.stream_id.as_str(), "cam7");
        assert_eq!(config.rtmp_url().unwrap().port(), 1940);
    }

    #[test]
    fn absurd_segment_durations_are_refused() {
        let mut config = WorkerConfig::new(StreamId::parse("a").unwrap());
        config.segment_duration = Duration::from_secs(500 * 365 * 86_400);
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("segment_duration") && message.contains("1h"),
            "{message}"
        );
    }

    #[test]
    fn zero_values_are_refused() {
        let mut config = WorkerConfig::new(StreamId::parse("a").unwrap());
        config.max_buffers = 0;
        assert!(config.validate().unwrap_err().to_string().contains("max_buffers"));
    }

    #[test]
    fn a_url_and_a_stream_id_that_disagree_are_refused() {
        let flag = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "other")]),
            Some("rtmp://h/live/cam7/in"),
        )
        .unwrap_err();
        assert!(matches!(flag, ConfigError::ConflictingStreamId { .. }), "{flag}");
        assert!(
            flag.to_string().contains("'cam7'") && flag.to_string().contains("'other'"),
            "{flag}"
        );
        let file: Value = serde_yaml::from_str("stream_id: ok\nurl: rtmp://h/live/escape/in\n").unwrap();
        let in_file = WorkerConfig::from_layers(file, env(&[]), None).unwrap_err();
        assert!(
            matches!(in_file, ConfigError::ConflictingStreamId { .. }),
            "{in_file}"
        );
        let mut direct = WorkerConfig::new(StreamId::parse("ok").unwrap());
        direct.url = Some(RtmpUrl::parse("rtmp://h/live/other/in").unwrap());
        assert!(matches!(
            direct.validate(),
            Err(ConfigError::ConflictingStreamId { .. })
        ));
    }

    #[test]
    fn a_url_alone_in_a_file_names_the_stream() {
        let file: Value = serde_yaml::from_str("url: rtmp://h:1940/live/cam7/in\n").unwrap();
        let config = WorkerConfig::from_layers(file, env(&[]), None).unwrap();
        assert_eq!(config.stream_id.as_str(), "cam7");
    }

    #[rstest::rstest]
    #[case("../escape")]
    #[case("a/b")]
    #[case("")]
    #[case(" ")]
    #[case("a b")]
    #[case("a%00")]
    #[case("a\u{0}b")]
    fn bad_ids_are_refused_from_env_and_file(#[case] id: &str) {
        let from_env = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", id)]),
            None,
        );
        assert!(from_env.is_err(), "{id:?} accepted from the environment");
        let mut map = Mapping::new();
        map.insert(Value::from("stream_id"), Value::from(id));
        let from_file = WorkerConfig::from_layers(Value::Mapping(map), env(&[]), None).unwrap_err();
        assert!(from_file.to_string().contains("stream id"), "{from_file}");
        let url = format!("rtmp://h/live/{id}/in");
        assert!(
            WorkerConfig::from_layers(Value::Mapping(Mapping::new()), env(&[]), Some(&url)).is_err(),
            "{url:?}"
        );
    }

    #[test]
    fn a_300_character_id_is_refused_everywhere() {
        let id = "x".repeat(300);
        let from_env = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", &id)]),
            None,
        )
        .unwrap_err();
        assert!(from_env.to_string().contains("longer than"), "{from_env}");
        let url = format!("rtmp://h/live/{id}/in");
        let from_url =
            WorkerConfig::from_layers(Value::Mapping(Mapping::new()), env(&[]), Some(&url)).unwrap_err();
        assert!(from_url.to_string().contains("longer than"), "{from_url}");
    }

    #[test]
    fn port_zero_is_refused() {
        let error = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "a"), ("INGEST_MEDIAMTX_RTMP_PORT", "0")]),
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("port 0"), "{error}");
    }

    #[test]
    fn a_bad_environment_value_names_its_variable() {
        let error = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "a"), ("INGEST_MAX_BUFFERS", "many")]),
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("INGEST_MAX_BUFFERS"), "{error}");
    }

    #[test]
    fn a_bad_file_value_names_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.yaml");
        std::fs::write(&path, "stream_id: a\nmax_buffers: many\n").unwrap();
        let error = WorkerConfig::load(Some(&path), None).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with(&format!("{}:2:", path.display())), "{text}");
        assert!(text.contains("max_buffers"), "{text}");
    }

    #[test]
    fn no_sts_section_means_no_sts() {
        let config = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "a")]),
            None,
        )
        .unwrap();
        assert_eq!(config.sts, None);
        let json = serde_json::to_value(&config).unwrap();
        assert!(json.get("sts").is_none(), "{json}");
    }

    #[test]
    fn the_sts_section_is_read_from_the_file_then_the_environment() {
        let file: Value = serde_yaml::from_str(
            "stream_id: a\nsts:\n  url: http://sts:5000\n  target_language: fr\n  max_queue: 8\n",
        )
        .unwrap();
        let config = WorkerConfig::from_layers(
            file,
            env(&[
                ("INGEST_STS_VOICE_PROFILE", "warm"),
                // Text, not YAML's `false`.
                ("INGEST_STS_SOURCE_LANGUAGE", "no"),
                ("INGEST_STS_FRAGMENT_TIMEOUT", "4s"),
            ]),
            None,
        )
        .unwrap();
        let sts = config.sts.expect("an sts section");
        assert_eq!(sts.url, "http://sts:5000");
        assert_eq!(sts.target_language, "fr");
        assert_eq!(sts.source_language, "no");
        assert_eq!(sts.voice_profile, "warm");
        assert_eq!(sts.max_queue, 8);
        assert_eq!(sts.format, crate::dubbing::StsAudioFormat::Aac);
        assert_eq!(sts.fragment_timeout, Duration::from_secs(4));
        assert_eq!(sts.end_timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_environment_alone_enables_sts() {
        let config = WorkerConfig::from_layers(
            serde_yaml::from_str("stream_id: a\nsts: null\n").unwrap(),
            env(&[("INGEST_STS_URL", "http://127.0.0.1:5000")]),
            None,
        )
        .unwrap();
        assert_eq!(config.sts.unwrap().url, "http://127.0.0.1:5000");
    }

    #[test]
    fn pcm_takes_its_rate_and_channels_from_the_file_then_the_environment() {
        use crate::dubbing::StsAudioFormat;
        let from_env = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[
                ("INGEST_STREAM_ID", "a"),
                ("INGEST_STS_URL", "http://sts:5000"),
                ("INGEST_STS_FORMAT", "pcm_s16le"),
                ("INGEST_STS_SAMPLE_RATE", "24000"),
                ("INGEST_STS_CHANNELS", "2"),
            ]),
            None,
        )
        .unwrap()
        .sts
        .unwrap();
        assert_eq!(
            (from_env.format, from_env.sample_rate, from_env.channels),
            (StsAudioFormat::PcmS16le, 24_000, 2)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ingest.yaml");
        std::fs::write(
            &path,
            "stream_id: a\nsts: {url: 'http://sts:5000', format: pcm_s16le, sample_rate: 8000}\n",
        )
        .unwrap();
        let from_file = WorkerConfig::load(Some(&path), None).unwrap().sts.unwrap();
        assert_eq!(
            (from_file.format, from_file.sample_rate, from_file.channels),
            (StsAudioFormat::PcmS16le, 8_000, 1),
            "mono unless told"
        );
        let refused = |pairs: &[(&str, &str)]| {
            let mut all = vec![
                ("INGEST_STREAM_ID", "a"),
                ("INGEST_STS_URL", "http://sts:5000"),
                ("INGEST_STS_FORMAT", "pcm_s16le"),
            ];
            all.extend_from_slice(pairs);
            WorkerConfig::from_layers(Value::Mapping(Mapping::new()), env(&all), None)
                .unwrap_err()
                .to_string()
        };
        let low = refused(&[("INGEST_STS_SAMPLE_RATE", "100")]);
        assert!(low.contains("sts.sample_rate"), "{low}");
        let many = refused(&[("INGEST_STS_CHANNELS", "6")]);
        assert!(many.contains("sts.channels"), "{many}");
        let not_a_number = refused(&[("INGEST_STS_CHANNELS", "stereo")]);
        assert!(not_a_number.contains("INGEST_STS_CHANNELS"), "{not_a_number}");
    }

    #[test]
    fn bad_sts_settings_name_their_key() {
        let refused = |pairs: &[(&str, &str)]| {
            let mut all = vec![("INGEST_STREAM_ID", "a")];
            all.extend_from_slice(pairs);
            WorkerConfig::from_layers(Value::Mapping(Mapping::new()), env(&all), None)
                .unwrap_err()
                .to_string()
        };
        let no_url = refused(&[("INGEST_STS_TARGET_LANGUAGE", "fr")]);
        assert!(no_url.contains("sts.url"), "{no_url}");
        let bad_url = refused(&[("INGEST_STS_URL", "rtmp://sts/x")]);
        assert!(
            bad_url.contains("sts.url") && bad_url.contains("rtmp"),
            "{bad_url}"
        );
        let unknown_format = refused(&[("INGEST_STS_URL", "http://s:1"), ("INGEST_STS_FORMAT", "opus")]);
        assert!(unknown_format.contains("INGEST_STS_FORMAT"), "{unknown_format}");
        let unknown_key = refused(&[("INGEST_STS_URL", "http://s:1"), ("INGEST_STS_LANGUAGE", "fr")]);
        assert!(unknown_key.contains("INGEST_STS_LANGUAGE"), "{unknown_key}");
        let zero_queue = refused(&[("INGEST_STS_URL", "http://s:1"), ("INGEST_STS_MAX_QUEUE", "0")]);
        assert!(zero_queue.contains("sts.max_queue"), "{zero_queue}");
    }

    #[test]
    fn text_settings_from_the_environment_stay_text() {
        let config = WorkerConfig::from_layers(
            Value::Mapping(Mapping::new()),
            env(&[("INGEST_STREAM_ID", "007")]),
            None,
        )
        .unwrap();
        assert_eq!(config.stream_id.as_str(), "007");
    }
}
