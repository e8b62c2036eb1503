//! The worker configuration's optional `sts` section: where the STS is and
//! what to ask of it (for `pcm_s16le`, at which rate and channel count). Checked with the rest of the configuration, so a
//! setting the sts crate would refuse stops the worker before it connects,
//! naming the key (`sts.format`), not the sts crate's own field.

use std::time::Duration;

use crate::error::ConfigError;

/// What the STS is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StsAudioFormat {
    /// The segment's AAC frames as ADTS, without decoding.
    #[default]
    Aac,
    /// The segment decoded (with GStreamer) to interleaved 16-bit PCM at
    /// `sts.sample_rate` and `sts.channels`; the dub comes back as WAV.
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
                reason: format!("unknown audio format '{other}'; expected 'aac' or 'pcm_s16le'"),
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
    /// For `pcm_s16le`: the rate the audio is resampled to, in Hz.
    #[serde(default = "defaults::sample_rate")]
    pub sample_rate: u32,
    /// For `pcm_s16le`: 1 (mono, downmixed) or 2 (stereo).
    #[serde(default = "defaults::channels")]
    pub channels: u8,
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

/// Bounds of `sts.sample_rate`: telephone speech is the least a speech
/// service takes; above 48 kHz is above what an AAC source we ingest
/// carries, so resampling up would only add bytes.
const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;
/// Mono or stereo: audioconvert downmixes or duplicates those without a
/// channel layout to invent.
const CHANNELS: std::ops::RangeInclusive<u8> = 1..=2;

/// The sts crate's defaults, so the two never disagree; the PCM target is
/// ours (the sts crate has none): 16 kHz mono, what speech services expect.
mod defaults {
    use std::time::Duration;

    pub fn sample_rate() -> u32 {
        16_000
    }
    pub fn channels() -> u8 {
        1
    }

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
            sample_rate: defaults::sample_rate(),
            channels: defaults::channels(),
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
        // Checked whatever the format: a wrong figure is wrong even while
        // `aac` leaves it unused, and would bite when the format changes.
        if !SAMPLE_RATES.contains(&self.sample_rate) {
            return Err(ConfigError::InvalidField {
                field: "sts.sample_rate",
                reason: format!(
                    "{} Hz is outside {}..={} Hz; 16000 is what speech services expect",
                    self.sample_rate,
                    SAMPLE_RATES.start(),
                    SAMPLE_RATES.end()
                ),
            });
        }
        if !CHANNELS.contains(&self.channels) {
            return Err(ConfigError::InvalidField {
                field: "sts.channels",
                reason: format!("{} is not 1 (mono) or 2 (stereo)", self.channels),
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
            format: match self.format {
                StsAudioFormat::Aac => sts::AudioFormat::Aac,
                StsAudioFormat::PcmS16le => sts::AudioFormat::PcmS16le {
                    sample_rate_hz: self.sample_rate,
                    channels: self.channels,
                },
            },
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
            // The ingest keeps the client's own policy; no setting of it is to blame.
            sts::ConfigError::Reconnect(e) => ("sts", e.to_string()),
            sts::ConfigError::InvalidField { field, reason } => {
                let key = match field {
                    "source_language" => "sts.source_language",
                    "target_language" => "sts.target_language",
                    "voice_profile" => "sts.voice_profile",
                    "max_queue" => "sts.max_queue",
                    "timeouts.fragment" => "sts.fragment_timeout",
                    "timeouts.end" => "sts.end_timeout",
                    "chunk_duration" => "segment_duration",
                    "format.sample_rate_hz" => "sts.sample_rate",
                    "format.channels" => "sts.channels",
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
    fn pcm_asks_the_client_for_the_rate_and_channels() {
        let defaults = StsSettings {
            format: StsAudioFormat::PcmS16le,
            ..StsSettings::new("http://sts:5000")
        };
        defaults.validate(SIX).unwrap();
        assert_eq!(
            defaults.client_config(SIX).format,
            sts::AudioFormat::PcmS16le {
                sample_rate_hz: 16_000,
                channels: 1
            },
            "16 kHz mono unless told"
        );
        let stereo = StsSettings {
            sample_rate: 48_000,
            channels: 2,
            ..defaults
        };
        stereo.validate(SIX).unwrap();
        assert_eq!(
            stereo.client_config(SIX).format,
            sts::AudioFormat::PcmS16le {
                sample_rate_hz: 48_000,
                channels: 2
            }
        );
    }

    #[test]
    fn rates_and_channels_out_of_bounds_name_their_key() {
        let pcm = |sample_rate, channels| StsSettings {
            format: StsAudioFormat::PcmS16le,
            sample_rate,
            channels,
            ..StsSettings::new("http://sts:5000")
        };
        for ok in [pcm(8_000, 1), pcm(22_050, 2), pcm(48_000, 1)] {
            ok.validate(SIX).unwrap();
        }
        for (rate, channels, key) in [
            (7_999, 1, "sts.sample_rate"),
            (0, 1, "sts.sample_rate"),
            (96_000, 1, "sts.sample_rate"),
            (16_000, 0, "sts.channels"),
            (16_000, 3, "sts.channels"),
        ] {
            assert_eq!(
                field(pcm(rate, channels).validate(SIX)),
                key,
                "{rate} Hz x{channels}"
            );
        }
        let message = pcm(4, 1).validate(SIX).unwrap_err().to_string();
        assert!(
            message.contains("sts.sample_rate") && message.contains("8000..=48000"),
            "{message}"
        );
        // The figures are checked under aac too, where they wait unused.
        let aac = StsSettings {
            format: StsAudioFormat::Aac,
            ..pcm(16_000, 5)
        };
        assert_eq!(field(aac.validate(SIX)), "sts.channels");
        assert_eq!(aac.client_config(SIX).format, sts::AudioFormat::Aac);
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
        let unknown = "opus".parse::<StsAudioFormat>().unwrap_err().to_string();
        assert!(unknown.contains("'aac' or 'pcm_s16le'"), "{unknown}");
    }
}
