//! What the client needs: where the STS is, what to ask of it, and the
//! limits that keep a slow or absent STS away from the segmenter.

use std::time::Duration;

use crate::error::ConfigError;
use reconnect::ReconnectPolicy;

/// The Socket.IO path servers mount by default.
const DEFAULT_SOCKETIO_PATH: &str = "/socket.io/";
/// More than this many held fragments is minutes of audio: a sign the STS is
/// gone, which the fragment timeout reports better than a longer queue.
const MAX_QUEUE_LIMIT: usize = 4096;
/// Every second the STS is unreachable is a second of dubbed audio late,
/// so the client asks again within a few seconds however long it stays
/// away; its many workers still spread out by the policy's jitter.
pub(crate) const DEFAULT_RECONNECT: ReconnectPolicy = ReconnectPolicy {
    initial_delay: Duration::from_millis(200),
    max_delay: Duration::from_secs(5),
    multiplier: 2.0,
    jitter: 0.2,
    max_attempts: None,
};
/// Beyond what any audio is recorded at: a figure above is a typo.
const MAX_SAMPLE_RATE: u32 = 192_000;
const MAX_CHANNELS: u8 = 8;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StsConfig {
    /// `http://host:port` or `ws://host:port`, with an optional path for a
    /// Socket.IO server not mounted at `/socket.io/`.
    pub url: String,
    pub source_language: String,
    pub target_language: String,
    pub voice_profile: String,
    pub format: AudioFormat,
    /// What the stream carries, announced in `stream:init` for `aac` (each
    /// fragment's own figures are read from its ADTS headers); `pcm_s16le`
    /// announces its own.
    pub sample_rate_hz: u32,
    pub channels: u8,
    /// The segment duration, announced as `chunk_duration_ms`.
    #[serde(with = "humantime_serde")]
    pub chunk_duration: Duration,
    /// Most fragments held at once, waiting or in flight; past it a
    /// submission is refused (`FragmentNotSent`), never dropped silently.
    pub max_queue: usize,
    /// How often a fragment the STS answered with `error` is sent again
    /// before it is reported failed.
    pub error_retries: u32,
    /// A mapping given keeps the defaults of the keys it leaves out.
    #[serde(deserialize_with = "reconnect_over_default")]
    pub reconnect: ReconnectPolicy,
    pub timeouts: Timeouts,
}

fn reconnect_over_default<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<ReconnectPolicy, D::Error> {
    ReconnectPolicy::deserialize_over(&DEFAULT_RECONNECT, deserializer)
}

/// What the STS is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormat {
    /// The segment's AAC frames as ADTS, as the ingest wrote them.
    Aac,
    /// The segment decoded to interleaved 16-bit little-endian PCM at this
    /// rate and channel count, by the [`crate::PcmDecoder`] given to
    /// [`crate::StsClient::start_with_decoder`]; the dub comes back as WAV.
    PcmS16le { sample_rate_hz: u32, channels: u8 },
}

impl AudioFormat {
    /// The `format` string of the STS protocol.
    pub fn wire_name(&self) -> &'static str {
        match self {
            AudioFormat::Aac => "aac",
            AudioFormat::PcmS16le { .. } => "pcm_s16le",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Websocket, Engine.IO and Socket.IO handshakes and `stream:ready`.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// One websocket write; an STS that stops reading is treated as gone.
    #[serde(with = "humantime_serde")]
    pub write: Duration,
    /// From submission to answer; past it the fragment fails with the reason.
    #[serde(with = "humantime_serde")]
    pub fragment: Duration,
    /// What [`crate::StsHandle::end`] waits for outstanding answers.
    #[serde(with = "humantime_serde")]
    pub end: Duration,
    /// The longest pause a `backpressure` message can impose.
    #[serde(with = "humantime_serde")]
    pub max_backpressure_delay: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            write: Duration::from_secs(5),
            fragment: Duration::from_secs(30),
            end: Duration::from_secs(10),
            max_backpressure_delay: Duration::from_secs(10),
        }
    }
}

impl Default for StsConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            source_language: "en".into(),
            target_language: "es".into(),
            voice_profile: "default".into(),
            format: AudioFormat::Aac,
            sample_rate_hz: 48_000,
            channels: 2,
            chunk_duration: Duration::from_secs(6),
            max_queue: 16,
            error_retries: 1,
            reconnect: DEFAULT_RECONNECT,
            timeouts: Timeouts::default(),
        }
    }
}

impl StsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.endpoint()?;
        let invalid = |field: &'static str, reason: String| Err(ConfigError::InvalidField { field, reason });
        for (field, value) in [
            ("source_language", &self.source_language),
            ("target_language", &self.target_language),
            ("voice_profile", &self.voice_profile),
        ] {
            if value.trim().is_empty() {
                return invalid(field, "must not be empty".into());
            }
        }
        if !(1..=MAX_SAMPLE_RATE).contains(&self.sample_rate_hz) {
            return invalid(
                "sample_rate_hz",
                format!("{} is outside 1..={MAX_SAMPLE_RATE}", self.sample_rate_hz),
            );
        }
        if !(1..=MAX_CHANNELS).contains(&self.channels) {
            return invalid(
                "channels",
                format!("{} is outside 1..={MAX_CHANNELS}", self.channels),
            );
        }
        if let AudioFormat::PcmS16le {
            sample_rate_hz,
            channels,
        } = self.format
        {
            if !(1..=MAX_SAMPLE_RATE).contains(&sample_rate_hz) {
                return invalid(
                    "format.sample_rate_hz",
                    format!("{sample_rate_hz} is outside 1..={MAX_SAMPLE_RATE}"),
                );
            }
            if !(1..=MAX_CHANNELS).contains(&channels) {
                return invalid(
                    "format.channels",
                    format!("{channels} is outside 1..={MAX_CHANNELS}"),
                );
            }
        }
        if self.chunk_duration.is_zero() {
            return invalid("chunk_duration", "must be above zero".into());
        }
        if !(1..=MAX_QUEUE_LIMIT).contains(&self.max_queue) {
            return invalid(
                "max_queue",
                format!("{} is outside 1..={MAX_QUEUE_LIMIT}", self.max_queue),
            );
        }
        let t = &self.timeouts;
        for (field, value) in [
            ("timeouts.connect", t.connect),
            ("timeouts.write", t.write),
            ("timeouts.fragment", t.fragment),
            ("timeouts.end", t.end),
        ] {
            if value.is_zero() {
                return invalid(field, "must be above zero".into());
            }
        }
        if self.reconnect.max_attempts.is_some() {
            // Giving up would leave held fragments with no answer; they
            // fail on time through `timeouts.fragment` instead.
            return invalid(
                "reconnect.max_attempts",
                "the STS client keeps reconnecting while fragments fail on timeouts.fragment; expected it unset".into(),
            );
        }
        Ok(self.reconnect.validate()?)
    }

    /// The rate and channel count `stream:init` announces: the decode
    /// target for `pcm_s16le`, the stream's figures for `aac`.
    pub(crate) fn announced(&self) -> (u32, u8) {
        match self.format {
            AudioFormat::Aac => (self.sample_rate_hz, self.channels),
            AudioFormat::PcmS16le {
                sample_rate_hz,
                channels,
            } => (sample_rate_hz, channels),
        }
    }

    /// The websocket URL of the Socket.IO endpoint, Engine.IO v4, websocket
    /// transport only (no long-polling first: the STS is reached directly).
    pub(crate) fn endpoint(&self) -> Result<String, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidUrl {
            url: self.url.clone(),
            reason: reason.into(),
        };
        if self.url.trim().is_empty() {
            return Err(invalid("must not be empty"));
        }
        let mut url = url::Url::parse(&self.url).map_err(|e| invalid(&e.to_string()))?;
        let scheme = match url.scheme() {
            "http" | "ws" => "ws",
            "https" | "wss" => {
                return Err(ConfigError::Unsupported {
                    what: "TLS (https/wss)",
                    reason: "this build has no TLS; reach the STS over http/ws on a trusted network".into(),
                });
            }
            other => return Err(invalid(&format!("scheme {other:?}; expected http or ws"))),
        };
        if url.host_str().is_none() {
            return Err(invalid("has no host"));
        }
        url.set_scheme(scheme)
            .map_err(|()| invalid("cannot use the ws scheme"))?;
        if url.path() == "/" || url.path().is_empty() {
            url.set_path(DEFAULT_SOCKETIO_PATH);
        } else if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url.set_query(Some("EIO=4&transport=websocket"));
        Ok(url.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_socketio_websocket_urls() {
        let endpoint = |url: &str| StsConfig::new(url).endpoint();
        assert_eq!(
            endpoint("http://127.0.0.1:5000").unwrap(),
            "ws://127.0.0.1:5000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(
            endpoint("ws://sts.local:8080/dub").unwrap(),
            "ws://sts.local:8080/dub/?EIO=4&transport=websocket"
        );
        assert!(matches!(endpoint(""), Err(ConfigError::InvalidUrl { .. })));
        assert!(matches!(
            endpoint("rtmp://x/y"),
            Err(ConfigError::InvalidUrl { .. })
        ));
        assert!(matches!(
            endpoint("https://sts"),
            Err(ConfigError::Unsupported { .. })
        ));
    }

    #[test]
    fn pcm_announces_its_own_rate_and_channels_within_bounds() {
        let pcm = |sample_rate_hz, channels| StsConfig {
            format: AudioFormat::PcmS16le {
                sample_rate_hz,
                channels,
            },
            ..StsConfig::new("http://127.0.0.1:1")
        };
        pcm(16_000, 1).validate().unwrap();
        assert_eq!(pcm(16_000, 1).announced(), (16_000, 1));
        assert_eq!(StsConfig::new("http://x:1").announced(), (48_000, 2));
        for (config, key) in [
            (pcm(0, 1), "format.sample_rate_hz"),
            (pcm(200_000, 1), "format.sample_rate_hz"),
            (pcm(16_000, 0), "format.channels"),
            (pcm(16_000, 9), "format.channels"),
        ] {
            match config.validate() {
                Err(ConfigError::InvalidField { field, .. }) => assert_eq!(field, key),
                other => panic!("{config:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_are_checked() {
        let base = StsConfig::new("http://127.0.0.1:1");
        base.validate().unwrap();
        let bad = [
            StsConfig {
                max_queue: 0,
                ..base.clone()
            },
            StsConfig {
                channels: 0,
                ..base.clone()
            },
            StsConfig {
                target_language: " ".into(),
                ..base.clone()
            },
            StsConfig {
                timeouts: Timeouts {
                    fragment: Duration::ZERO,
                    ..Timeouts::default()
                },
                ..base.clone()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(ConfigError::InvalidField { .. })),
                "{config:?}"
            );
        }
    }

    #[test]
    fn reconnects_within_seconds_and_never_gives_up() {
        let policy = StsConfig::default().reconnect;
        let delays: Vec<u128> = (1..=7).map(|a| policy.delay(a, 0.5).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000]);
        let bounded = StsConfig {
            reconnect: ReconnectPolicy {
                max_attempts: Some(3),
                ..DEFAULT_RECONNECT
            },
            ..StsConfig::new("http://127.0.0.1:1")
        };
        assert!(matches!(
            bounded.validate(),
            Err(ConfigError::InvalidField {
                field: "reconnect.max_attempts",
                ..
            })
        ));
        let too_quick = StsConfig {
            reconnect: ReconnectPolicy {
                initial_delay: Duration::ZERO,
                ..DEFAULT_RECONNECT
            },
            ..StsConfig::new("http://127.0.0.1:1")
        };
        assert!(matches!(too_quick.validate(), Err(ConfigError::Reconnect(_))));
    }

    #[test]
    fn a_partial_reconnect_setting_keeps_the_clients_own_defaults() {
        let config: StsConfig =
            serde_json::from_str(r#"{"url": "http://sts:5000", "reconnect": {"max_delay": "10s"}}"#).unwrap();
        assert_eq!(
            config.reconnect,
            ReconnectPolicy {
                max_delay: Duration::from_secs(10),
                ..DEFAULT_RECONNECT
            }
        );
        let absent: StsConfig = serde_json::from_str(r#"{"url": "http://sts:5000"}"#).unwrap();
        assert_eq!(absent.reconnect, DEFAULT_RECONNECT);
    }

    #[test]
    fn formats_read_from_yaml_like_json() {
        let aac: AudioFormat = serde_json::from_str("\"aac\"").unwrap();
        assert_eq!(aac, AudioFormat::Aac);
        let pcm: AudioFormat =
            serde_json::from_str(r#"{"pcm_s16le":{"sample_rate_hz":16000,"channels":1}}"#).unwrap();
        assert_eq!(pcm.wire_name(), "pcm_s16le");
    }
}
