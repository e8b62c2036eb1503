//! Reconnect policy: exponential backoff with jitter.
//!
//! Many workers share one STS, so when it restarts they must not all come
//! back in the same millisecond: each delay is randomised by `jitter`. The
//! cap is short (5 s) because every second offline is a second of dubbed
//! audio late, and fragments still fail on time through
//! [`crate::Timeouts::fragment`] however long the STS stays away.

use std::time::Duration;

use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectPolicy {
    #[serde(with = "humantime_serde")]
    pub initial_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    pub multiplier: f64,
    /// Fraction of each delay that is randomised (0.2 = ±20 %).
    pub jitter: f64,
}

/// Below this a refusing STS would be asked again thousands of times a second.
const MIN_DELAY: Duration = Duration::from_millis(10);

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl ReconnectPolicy {
    /// Delay before retry number `attempt` (1-based), with `unit_random` in
    /// [0, 1) supplying the jitter.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(63) as i32;
        let base = self.initial_delay.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_delay.as_secs_f64());
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * unit_random - 1.0);
        Duration::from_secs_f64((capped * (1.0 + spread)).max(0.0))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidField {
            field: "reconnect",
            reason,
        };
        if self.initial_delay < MIN_DELAY {
            return Err(invalid(format!(
                "initial_delay {:?} is below {MIN_DELAY:?}",
                self.initial_delay
            )));
        }
        if self.initial_delay > self.max_delay {
            return Err(invalid(format!(
                "initial_delay {:?} is above max_delay {:?}",
                self.initial_delay, self.max_delay
            )));
        }
        if self.max_delay > Duration::from_secs(3600) {
            return Err(invalid(format!("max_delay {:?} is above 1h", self.max_delay)));
        }
        if !(1.0..=100.0).contains(&self.multiplier) {
            return Err(invalid(format!(
                "multiplier {} is outside 1..=100",
                self.multiplier
            )));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(invalid(format!("jitter {} is outside 0..=1", self.jitter)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> ReconnectPolicy {
        ReconnectPolicy {
            jitter: 0.0,
            ..ReconnectPolicy::default()
        }
    }

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let policy = no_jitter();
        let delays: Vec<u64> = (1..=7).map(|a| policy.delay(a, 0.5).as_millis() as u64).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(policy.delay(u32::MAX, 0.5), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = ReconnectPolicy::default();
        assert_eq!(policy.delay(1, 0.0), Duration::from_millis(160));
        let high = policy.delay(1, 0.999_999);
        assert!(
            high > Duration::from_millis(239) && high <= Duration::from_millis(240),
            "{high:?}"
        );
    }

    #[test]
    fn nonsensical_policies_are_refused() {
        let bad = [
            ReconnectPolicy {
                initial_delay: Duration::ZERO,
                ..ReconnectPolicy::default()
            },
            ReconnectPolicy {
                initial_delay: Duration::from_secs(10),
                ..ReconnectPolicy::default()
            },
            ReconnectPolicy {
                max_delay: Duration::MAX,
                ..ReconnectPolicy::default()
            },
            ReconnectPolicy {
                jitter: 2.0,
                ..ReconnectPolicy::default()
            },
            ReconnectPolicy {
                multiplier: 0.5,
                ..ReconnectPolicy::default()
            },
        ];
        for policy in bad {
            assert!(policy.validate().is_err(), "{policy:?}");
        }
        ReconnectPolicy::default().validate().unwrap();
    }
}
