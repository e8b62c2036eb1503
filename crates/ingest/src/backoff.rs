//! Reconnect policy: exponential backoff with jitter.
//!
//! A reader that arrives before the publisher is refused by MediaMTX, so
//! while a stream is missing the ingest keeps asking: it must attach within
//! 0.5 s of the stream becoming available (aim: 0.25 s), which bounds every
//! delay, jitter included, at [`MAX_ATTACH_DELAY`]. That is four or five
//! attempts a second against a server that refuses, a cost MediaMTX
//! answers in microseconds.

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

/// The shortest delay allowed between attempts.
pub const MIN_DELAY: Duration = Duration::from_millis(10);

/// The longest default delay between attempts, jitter included.
pub const MAX_ATTACH_DELAY: Duration = Duration::from_millis(250);

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(200),
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
        if self.initial_delay < MIN_DELAY {
            return Err(invalid(format!(
                "initial_delay {:?} is below {MIN_DELAY:?}: a server that refuses would be asked again at once, thousands of times a second; expected at least {MIN_DELAY:?}, such as 100ms",
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
    #[case(3, 200)]
    #[case(60, 200)]
    fn grows_exponentially_up_to_the_cap(#[case] attempt: u32, #[case] millis: u64) {
        assert_eq!(no_jitter().delay(attempt, 0.5), Duration::from_millis(millis));
    }

    #[rstest]
    #[case(1, 100)]
    #[case(2, 300)]
    #[case(3, 900)]
    #[case(4, 2700)]
    #[case(5, 5000)]
    fn each_delay_is_the_last_times_the_multiplier(#[case] attempt: u32, #[case] millis: u64) {
        let policy = ReconnectPolicy {
            max_delay: Duration::from_secs(5),
            multiplier: 3.0,
            ..no_jitter()
        };
        let delay = policy.delay(attempt, 0.5);
        let expected = Duration::from_millis(millis);
        assert!(delay.abs_diff(expected) < Duration::from_micros(1), "{delay:?}");
    }

    #[rstest]
    #[case(0.25, 90)]
    #[case(0.5, 100)]
    #[case(0.75, 110)]
    fn jitter_moves_a_delay_in_proportion_to_the_draw(#[case] unit_random: f64, #[case] millis: u64) {
        let delay = ReconnectPolicy::default().delay(1, unit_random);
        let expected = Duration::from_millis(millis);
        assert!(delay.abs_diff(expected) < Duration::from_micros(1), "{delay:?}");
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
    fn a_missing_stream_is_picked_up_within_a_quarter_second() {
        // Worst case between the stream appearing and the next attempt is one
        // full delay, with maximal jitter, however long the stream was missing.
        let policy = ReconnectPolicy::default();
        let worst = (1..1000).map(|a| policy.delay(a, 0.999_999)).max().unwrap();
        assert!(worst <= MAX_ATTACH_DELAY, "{worst:?}");
        let best = (1..1000).map(|a| policy.delay(a, 0.0)).min().unwrap();
        assert!(best >= Duration::from_millis(80), "{best:?}");
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
    fn limits_are_inclusive() {
        let settings = [
            ReconnectPolicy {
                initial_delay: Duration::from_millis(200),
                max_delay: Duration::from_millis(200),
                ..ReconnectPolicy::default()
            },
            ReconnectPolicy {
                max_delay: Duration::from_secs(3600),
                ..ReconnectPolicy::default()
            },
            ReconnectPolicy {
                multiplier: 1.0,
                jitter: 0.0,
                ..ReconnectPolicy::default()
            },
            ReconnectPolicy {
                multiplier: 100.0,
                jitter: 1.0,
                ..ReconnectPolicy::default()
            },
        ];
        for policy in settings {
            policy.validate().unwrap_or_else(|e| panic!("{policy:?}: {e}"));
        }
        let over = ReconnectPolicy {
            max_delay: Duration::from_secs(3601),
            ..ReconnectPolicy::default()
        };
        let message = over.validate().unwrap_err().to_string();
        assert!(message.contains("above 1h"), "{message}");
        let above = ReconnectPolicy {
            initial_delay: Duration::from_millis(201),
            ..ReconnectPolicy::default()
        };
        let message = above.validate().unwrap_err().to_string();
        assert!(message.contains("above max_delay"), "{message}");
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

    #[rstest]
    #[case(Duration::ZERO)]
    #[case(Duration::from_millis(9))]
    fn delays_below_the_floor_are_refused(#[case] initial: Duration) {
        let policy = ReconnectPolicy {
            initial_delay: initial,
            ..ReconnectPolicy::default()
        };
        let message = policy.validate().unwrap_err().to_string();
        assert!(
            message.contains("initial_delay") && message.contains("at least 10ms"),
            "{message}"
        );
        let floor = ReconnectPolicy {
            initial_delay: MIN_DELAY,
            ..ReconnectPolicy::default()
        };
        assert!(floor.validate().is_ok());
    }
}
