//! The worker configuration's optional `sts` section: where the STS is and
//! what to ask of it. Checked with the rest of the configuration, so a
//! setting the sts crate would refuse stops the worker before it connects,
//! naming the key (`sts.format`), not the sts crate's own field.

use std::time::Duration;

use crate::error::ConfigError;

/// What the STS is sent. Only `aac` is delivered today; `pcm_s16le` parses
/// so that asking for it gets a refusal that says why, not "unknown value".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StsAudioFormat {
    /// The segment's AAC frames as ADTS, without decoding.
    #[default]
    Aac,
    /// Decoded 16-bit PCM; refused by [`StsSettings::validate`].
    PcmS16le,
}

impl std::str::FromStr for StsAudioFormat {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aac" => Ok(Self::Aac),
            "pcm_s16le" => Ok(Self::PcmS16le),
            other => Err(ConfigError::InvalidField {
                field: "sts.format",
                reason: format!("unknown audio format '{other}'; expected 'aac'"),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsSettings {
    /// `http://host:port` (or `ws://`), with an optional Socket.IO path.
    #[serde(default)]
    pub url: String,
    #[serde(default = "defaults::source_language")]
    pub source_language: String,
    #[serde(default = "defaults::target_language")]
    pub target_language: String,
    #[serde(default = "defaults::voice_profile")]
    pub voice_profile: String,
    #[serde(default)]
    pub format: StsAudioFormat,
    /// Audio segments held at once, waiting or in flight; a segment written
    /// while it is full is recorded `not_sent` instead of waited for.
    #[serde(default = "defaults::max_queue")]
    pub max_queue: usize,
    /// From a segment's submission to its answer; past it the fragment is
    /// recorded `failed` with the reason.
    #[serde(default = "defaults::fragment_timeout", with = "humantime_serde")]
    pub fragment_timeout: Duration,
    /// How long a finishing worker waits for outstanding answers.
    #[serde(default = "defaults::end_timeout", with = "humantime_serde")]
    pub end_timeout: Duration,
}

/// The sts crate's defaults, so the two never disagree.
mod defaults {
    use std::time::Duration;

    fn base() -> sts::StsConfig {
        sts::StsConfig::default()
    }
    pub fn source_language() -> String {
        base().source_language
    }
    pub fn target_language() -> String {
        base().target_language
    }
    pub fn voice_profile() -> String {
        base().voice_profile
    }
    pub fn max_queue() -> usize {
        base().max_queue
    }
    pub fn fragment_timeout() -> Duration {
        base().timeouts.fragment
    }
    pub fn end_timeout() -> Duration {
        base().timeouts.end
    }
}

impl Default for StsSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            source_language: defaults::source_language(),
            target_language: defaults::target_language(),
            voice_profile: defaults::voice_profile(),
            format: StsAudioFormat::Aac,
            max_queue: defaults::max_queue(),
            fragment_timeout: defaults::fragment_timeout(),
            end_timeout: defaults::end_timeout(),
        }
    }
}

impl StsSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// Refuses what the sts client would refuse, with the ingest's key.
    pub fn validate(&self, segment_duration: Duration) -> Result<(), ConfigError> {
        if self.url.trim().is_empty() {
            return Err(ConfigError::InvalidField {
                field: "sts.url",
                reason: "must be set when the sts section is given, such as http://sts:5000".into(),
            });
        }
        if self.format == StsAudioFormat::PcmS16le {
            return Err(ConfigError::InvalidField {
                field: "sts.format",
                reason: "pcm_s16le is not supported: it needs the AAC decoded to PCM before sending, \
                         which this build does not do; supported: aac"
                    .into(),
            });
        }
        self.client_config(segment_duration)
            .validate()
            .map_err(|e| self.blame(e))
    }

    /// The sts client's configuration for a stream cut into
    /// `segment_duration` segments (announced as `chunk_duration_ms`).
    pub fn client_config(&self, segment_duration: Duration) -> sts::StsConfig {
        let base = sts::StsConfig::new(self.url.clone());
        sts::StsConfig {
            source_language: self.source_language.clone(),
            target_language: self.target_language.clone(),
            voice_profile: self.voice_profile.clone(),
            format: sts::AudioFormat::Aac,
            chunk_duration: segment_duration,
            max_queue: self.max_queue,
            timeouts: sts::Timeouts {
                fragment: self.fragment_timeout,
                end: self.end_timeout,
                ..base.timeouts.clone()
            },
            ..base
        }
    }

    /// Names the ingest key an sts crate error is about.
    fn blame(&self, error: sts::ConfigError) -> ConfigError {
        let (field, reason) = match error {
            sts::ConfigError::InvalidUrl { url, reason } => {
                ("sts.url", format!("'{url}' {reason}; expected http://host:port"))
            }
            sts::ConfigError::Unsupported { what, reason } => ("sts.url", format!("{what}: {reason}")),
            sts::ConfigError::InvalidField { field, reason } => {
                let key = match field {
                    "source_language" => "sts.source_language",
                    "target_language" => "sts.target_language",
                    "voice_profile" => "sts.voice_profile",
                    "max_queue" => "sts.max_queue",
                    "timeouts.fragment" => "sts.fragment_timeout",
                    "timeouts.end" => "sts.end_timeout",
                    "chunk_duration" => "segment_duration",
                    _ => "sts",
                };
                (key, reason)
            }
        };
        ConfigError::InvalidField { field, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIX: Duration = Duration::from_secs(6);

    fn field(result: Result<(), ConfigError>) -> &'static str {
        match result {
            Err(ConfigError::InvalidField { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn the_client_gets_every_setting() {
        let settings = StsSettings {
            source_language: "fr".into(),
            target_language: "de".into(),
            voice_profile: "warm".into(),
            max_queue: 4,
            fragment_timeout: Duration::from_secs(3),
            end_timeout: Duration::from_secs(2),
            ..StsSettings::new("http://sts:5000")
        };
        settings.validate(SIX).unwrap();
        let client = settings.client_config(Duration::from_secs(4));
        assert_eq!(client.url, "http://sts:5000");
        assert_eq!(
            (client.source_language.as_str(), client.target_language.as_str()),
            ("fr", "de")
        );
        assert_eq!(client.voice_profile, "warm");
        assert_eq!(client.format, sts::AudioFormat::Aac);
        assert_eq!(client.chunk_duration, Duration::from_secs(4));
        assert_eq!(client.max_queue, 4);
        assert_eq!(client.timeouts.fragment, Duration::from_secs(3));
        assert_eq!(client.timeouts.end, Duration::from_secs(2));
    }

    #[test]
    fn pcm_is_refused_naming_the_setting_and_what_is_supported() {
        let settings = StsSettings {
            format: StsAudioFormat::PcmS16le,
            ..StsSettings::new("http://sts:5000")
        };
        let message = settings.validate(SIX).unwrap_err().to_string();
        assert!(message.contains("sts.format"), "{message}");
        assert!(message.contains("pcm_s16le"), "{message}");
        assert!(message.contains("supported: aac"), "{message}");
    }

    #[test]
    fn sts_crate_refusals_name_the_ingest_key() {
        let base = StsSettings::new("http://sts:5000");
        assert_eq!(field(StsSettings::new("").validate(SIX)), "sts.url");
        assert_eq!(field(StsSettings::new("rtmp://sts/x").validate(SIX)), "sts.url");
        assert_eq!(field(StsSettings::new("https://sts").validate(SIX)), "sts.url");
        let no_queue = StsSettings {
            max_queue: 0,
            ..base.clone()
        };
        assert_eq!(field(no_queue.validate(SIX)), "sts.max_queue");
        let no_language = StsSettings {
            target_language: " ".into(),
            ..base.clone()
        };
        assert_eq!(field(no_language.validate(SIX)), "sts.target_language");
        let no_wait = StsSettings {
            fragment_timeout: Duration::ZERO,
            ..base
        };
        assert_eq!(field(no_wait.validate(SIX)), "sts.fragment_timeout");
    }

    #[test]
    fn formats_parse_from_text() {
        assert_eq!("aac".parse::<StsAudioFormat>().unwrap(), StsAudioFormat::Aac);
        assert_eq!(
            "pcm_s16le".parse::<StsAudioFormat>().unwrap(),
            StsAudioFormat::PcmS16le
        );
        assert!("opus".parse::<StsAudioFormat>().is_err());
    }
}
