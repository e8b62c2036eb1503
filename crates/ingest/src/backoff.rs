//! Reconnect policy: exponential backoff with jitter.
//!
//! A reader that arrives before the publisher is refused by MediaMTX, so the
//! first delays must be short enough that a late stream is picked up within
//! the 2-s startup target; the cap keeps a long outage from hammering the
//! server.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectPolicy {
    #[serde(with = "humantime_serde")]
    pub initial_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    pub multiplier: f64,
    /// Fraction of each delay that is randomised (0.2 = ±20 %), so many
    /// workers do not reconnect in lockstep.
    pub jitter: f64,
    /// `None` retries for ever.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: None,
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

    /// Refuses settings that would make delays meaningless or overflow.
    pub fn validate(&self) -> Result<(), crate::error::ConfigError> {
        let invalid = |reason: String| crate::error::ConfigError::InvalidField {
            field: "reconnect",
            reason,
        };
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

    /// Whether another attempt is allowed after `attempts` failed ones.
    pub fn allows(&self, attempts: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempts < max)
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    fn no_jitter() -> ReconnectPolicy {
        ReconnectPolicy {
            jitter: 0.0,
            ..ReconnectPolicy::default()
        }
    }

    #[rstest]
    #[case(1, 100)]
    #[case(2, 200)]
    #[case(3, 400)]
    #[case(4, 800)]
    #[case(5, 1000)]
    #[case(60, 1000)]
    fn grows_exponentially_up_to_the_cap(#[case] attempt: u32, #[case] millis: u64) {
        assert_eq!(no_jitter().delay(attempt, 0.5), Duration::from_millis(millis));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = ReconnectPolicy::default();
        let low = policy.delay(1, 0.0);
        let high = policy.delay(1, 0.999_999);
        assert_eq!(low, Duration::from_millis(80));
        assert!(high > Duration::from_millis(119) && high <= Duration::from_millis(120));
    }

    #[test]
    fn startup_schedule_meets_the_two_second_target() {
        // Worst case between the stream appearing and the next attempt is one
        // full delay; even with maximal jitter it must stay well under 2 s.
        let policy = ReconnectPolicy::default();
        let worst = (1..100).map(|a| policy.delay(a, 0.999_999)).max().unwrap();
        assert!(worst < Duration::from_millis(1500), "{worst:?}");
    }

    #[test]
    fn nonsensical_policies_are_refused() {
        let bad = [
            ReconnectPolicy {
                initial_delay: Duration::from_secs(5),
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

    #[test]
    fn max_attempts_limits_retries() {
        let policy = ReconnectPolicy {
            max_attempts: Some(3),
            ..ReconnectPolicy::default()
        };
        assert!(policy.allows(2));
        assert!(!policy.allows(3));
        assert!(ReconnectPolicy::default().allows(u32::MAX - 1));
    }
}
