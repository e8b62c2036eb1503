//! The worker configuration's optional `output` section: where the dubbed
//! stream is published, how far behind the input, and what fills a span
//! whose dub did not come in time.

use std::time::Duration;

use crate::error::ConfigError;
use crate::rtmp_url::RtmpUrl;

/// What fills an audio span whose dub has not arrived by its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The input's own audio for that span.
    #[default]
    Original,
    /// Silence.
    Silence,
}

impl std::str::FromStr for Fallback {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "original" => Ok(Self::Original),
            "silence" => Ok(Self::Silence),
            other => Err(ConfigError::InvalidField {
                field: "output.fallback",
                reason: format!("unknown fallback '{other}'; expected 'original' or 'silence'"),
            }),
        }
    }
}

/// The output's delay: as configured, or learned from the first segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DelayRule {
    Fixed(Duration),
    /// The first segment's length, once cut, plus the STS's budget.
    FirstSegmentPlus(Duration),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// Where the dubbed stream is published, e.g.
    /// `rtmp://mediamtx:1935/live/<id>/out`.
    pub url: RtmpUrl,
    /// How far behind the input the output runs: every frame leaves this
    /// long after it arrived. It must cover a segment (audio is dubbed a
    /// segment at a time) plus the STS's answer. `None`: the stream's first
    /// segment, as cut, plus [`DEFAULT_STS_BUDGET`]; a segment ends at the
    /// first keyframe past the target, so its length depends on the
    /// stream's GOP (6-s target: 6 s with 2-s GOPs, 8 s with 4-s GOPs), and
    /// a fixed default would leave long-GOP streams no time for the STS.
    #[serde(default, with = "humantime_serde")]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub fallback: Fallback,
}

/// What the default delay leaves the STS to answer, beyond the first segment.
pub const DEFAULT_STS_BUDGET: Duration = Duration::from_secs(3);

impl OutputSettings {
    pub fn new(url: RtmpUrl) -> Self {
        Self {
            url,
            delay: None,
            fallback: Fallback::default(),
        }
    }

    /// How the output's delay is set.
    pub(crate) fn delay_rule(&self) -> DelayRule {
        match self.delay {
            Some(delay) => DelayRule::Fixed(delay),
            None => DelayRule::FirstSegmentPlus(DEFAULT_STS_BUDGET),
        }
    }

    pub(crate) fn validate(&self, segment_duration: Duration) -> Result<(), ConfigError> {
        if let Some(delay) = self.delay
            && delay < segment_duration
        {
            return Err(ConfigError::InvalidField {
                field: "output.delay",
                reason: format!(
                    "{delay:?} is shorter than a segment ({segment_duration:?}): a span's dub cannot be asked for before its segment ends; expected at least the segment duration plus the STS's time"
                ),
            });
        }
        Ok(())
    }
}
