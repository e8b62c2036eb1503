//! A scenario's `sts:` block: the echo peer's knobs, and what the STS does
//! during the run.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// With a block, every stream of the scenario sends its audio segments to
/// an echo STS of its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StsPlan {
    /// `max_inflight` the peer announces in `stream:ready` (default 3).
    #[serde(default)]
    pub max_inflight: Option<u32>,
    /// The peer's processing time per fragment.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub delay: Option<Duration>,
    /// A `backpressure` event after every N-th fragment received.
    #[serde(default)]
    pub backpressure_every: Option<u32>,
    /// Its `recommended_delay_ms` (the peer's default: 200 ms).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub backpressure_delay: Option<Duration>,
    /// Sequence numbers answered with an error, every time they come.
    #[serde(default)]
    pub error_on: Vec<u64>,
    /// The peer drops the connection on the N-th fragment, once, unanswered.
    #[serde(default)]
    pub drop_after: Option<u32>,
    /// Media time (as faults count it) at which the peer is killed and
    /// started again on the same port.
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub restart_at: Option<Duration>,
    /// No STS at all: the ingest is pointed at a port nothing listens on.
    #[serde(default)]
    pub down: bool,
    /// Answer every fragment with a sine tone of this frequency instead of
    /// its own audio, so a dub can be told from the original (service
    /// scenarios use 1000 Hz unless told).
    #[serde(default)]
    pub tone_hz: Option<f64>,
    /// The ingest's `sts.fragment_timeout` (its default: 30 s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub fragment_timeout: Option<Duration>,
}

impl StsPlan {
    /// The peer's command-line flags for these knobs.
    pub fn peer_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut flag = |name: &str, value: String| {
            args.push(format!("--{name}"));
            args.push(value);
        };
        if let Some(n) = self.max_inflight {
            flag("max-inflight", n.to_string());
        }
        if let Some(d) = self.delay {
            flag("delay-ms", d.as_millis().to_string());
        }
        if let Some(n) = self.backpressure_every {
            flag("backpressure-every", n.to_string());
        }
        if let Some(d) = self.backpressure_delay {
            flag("backpressure-delay-ms", d.as_millis().to_string());
        }
        for k in &self.error_on {
            flag("error-on", k.to_string());
        }
        if let Some(n) = self.drop_after {
            flag("drop-after", n.to_string());
        }
        if let Some(hz) = self.tone_hz {
            flag("tone-hz", hz.to_string());
        }
        args
    }

    /// The peer's announced limit (its default when not set).
    pub fn max_inflight(&self) -> u32 {
        self.max_inflight.unwrap_or(3)
    }
}

/// What the fragments must come to; each count is checked when given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedSts {
    #[serde(default)]
    pub processed: Option<usize>,
    #[serde(default)]
    pub failed: Option<usize>,
    #[serde(default)]
    pub not_sent: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_become_the_peers_flags() {
        let plan: StsPlan =
            serde_yaml::from_str("{max_inflight: 1, delay: 1500ms, error_on: [2, 4], drop_after: 3}")
                .unwrap();
        assert_eq!(
            plan.peer_args(),
            [
                "--max-inflight",
                "1",
                "--delay-ms",
                "1500",
                "--error-on",
                "2",
                "--error-on",
                "4",
                "--drop-after",
                "3"
            ]
        );
        assert_eq!(plan.max_inflight(), 1);
        assert_eq!(StsPlan::default().max_inflight(), 3);
        assert!(serde_yaml::from_str::<StsPlan>("{max_inflight: 1, delya: 1s}").is_err());
    }
}
