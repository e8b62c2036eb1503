//! Exponential backoff with jitter: many workers share a server, so when it
//! comes back they must not all return in the same millisecond.

use std::time::Duration;

use crate::error::PolicyError;

/// The shortest delay allowed between attempts.
pub const MIN_DELAY: Duration = Duration::from_millis(10);

/// The longest delay allowed between attempts: beyond it a worker is as good
/// as stopped, and a typo (`max_delay: 5000` read as seconds) is likelier.
pub const MAX_DELAY_CEILING: Duration = Duration::from_secs(3600);

/// How long to wait before each retry. There is no default: what suits a
/// reader waiting for a stream to appear (retry within a quarter second)
/// would hammer a service that is down, and the reverse would make the
/// reader late. Each caller names its own and reads settings over it with
/// [`ReconnectPolicy::deserialize_over`], so a field left out of a settings
/// file keeps that caller's value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The settings a file may give, each optional.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    #[serde(default, with = "humantime_serde")]
    initial_delay: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_delay: Option<Duration>,
    multiplier: Option<f64>,
    jitter: Option<f64>,
    /// Given as `null`, retries for ever.
    #[serde(default, deserialize_with = "given")]
    max_attempts: Option<Option<u32>>,
}

/// Tells a `null` (given: retry for ever) from an absent key (keep `base`).
fn given<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<u32>>, D::Error> {
    serde::Deserialize::deserialize(deserializer).map(Some)
}

impl ReconnectPolicy {
    /// Reads a settings mapping over `base`: the fields it gives replace
    /// `base`'s, an unknown one is refused. For `#[serde(deserialize_with)]`
    /// through a function of the caller's that supplies its `base`.
    pub fn deserialize_over<'de, D: serde::Deserializer<'de>>(
        base: &ReconnectPolicy,
        deserializer: D,
    ) -> Result<ReconnectPolicy, D::Error> {
        let given: Overrides = serde::Deserialize::deserialize(deserializer)?;
        Ok(ReconnectPolicy {
            initial_delay: given.initial_delay.unwrap_or(base.initial_delay),
            max_delay: given.max_delay.unwrap_or(base.max_delay),
            multiplier: given.multiplier.unwrap_or(base.multiplier),
            jitter: given.jitter.unwrap_or(base.jitter),
            max_attempts: given.max_attempts.unwrap_or(base.max_attempts),
        })
    }

    /// Delay before retry number `attempt` (1-based), with `unit_random` in
    /// [0, 1) supplying the jitter.
    pub fn delay(&self, attempt: u32, unit_random: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(63) as i32;
        let base = self.initial_delay.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = base.min(self.max_delay.as_secs_f64());
        let spread = self.jitter.clamp(0.0, 1.0) * (2.0 * unit_random - 1.0);
        Duration::from_secs_f64((capped * (1.0 + spread)).max(0.0))
    }

    /// Whether another attempt is allowed after `attempts` failed ones.
    pub fn allows(&self, attempts: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempts < max)
    }

    /// Refuses settings that would make delays meaningless or overflow.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.initial_delay < MIN_DELAY {
            return Err(PolicyError::InitialDelayBelowFloor {
                given: self.initial_delay,
            });
        }
        if self.initial_delay > self.max_delay {
            return Err(PolicyError::InitialDelayAboveMax {
                initial: self.initial_delay,
                max: self.max_delay,
            });
        }
        if self.max_delay > MAX_DELAY_CEILING {
            return Err(PolicyError::MaxDelayAboveCeiling {
                given: self.max_delay,
            });
        }
        if !(1.0..=100.0).contains(&self.multiplier) {
            return Err(PolicyError::Multiplier {
                given: self.multiplier,
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(PolicyError::Jitter { given: self.jitter });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    /// The figures the tests are written for: 100 ms doubling to 200 ms, ±20 %.
    const SAMPLE: ReconnectPolicy = ReconnectPolicy {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.2,
        max_attempts: None,
    };

    fn no_jitter() -> ReconnectPolicy {
        ReconnectPolicy {
            jitter: 0.0,
            ..SAMPLE
        }
    }

    #[rstest]
    #[case(1, 100)]
    #[case(2, 200)]
    #[case(3, 200)]
    #[case(60, 200)]
    #[case(u32::MAX, 200)]
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
        let delay = SAMPLE.delay(1, unit_random);
        let expected = Duration::from_millis(millis);
        assert!(delay.abs_diff(expected) < Duration::from_micros(1), "{delay:?}");
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let policy = SAMPLE;
        let low = policy.delay(1, 0.0);
        let high = policy.delay(1, 0.999_999);
        assert_eq!(low, Duration::from_millis(80));
        assert!(high > Duration::from_millis(119) && high <= Duration::from_millis(120));
    }

    #[rstest]
    #[case::initial_above_max(ReconnectPolicy { initial_delay: Duration::from_secs(5), ..SAMPLE }, "above max_delay")]
    #[case::max_above_an_hour(ReconnectPolicy { max_delay: Duration::MAX, ..SAMPLE }, "above 3600s")]
    #[case::jitter_above_one(ReconnectPolicy { jitter: 2.0, ..SAMPLE }, "jitter 2")]
    #[case::jitter_below_zero(ReconnectPolicy { jitter: -0.1, ..SAMPLE }, "jitter -0.1")]
    #[case::multiplier_below_one(ReconnectPolicy { multiplier: 0.5, ..SAMPLE }, "multiplier 0.5")]
    #[case::multiplier_above_hundred(ReconnectPolicy { multiplier: 101.0, ..SAMPLE }, "multiplier 101")]
    fn nonsensical_policies_are_refused_naming_the_setting(
        #[case] policy: ReconnectPolicy,
        #[case] says: &str,
    ) {
        let message = policy.validate().unwrap_err().to_string();
        assert!(message.contains(says), "{message}");
    }

    #[test]
    fn limits_are_inclusive() {
        let settings = [
            ReconnectPolicy {
                initial_delay: Duration::from_millis(200),
                max_delay: Duration::from_millis(200),
                ..SAMPLE
            },
            ReconnectPolicy {
                max_delay: MAX_DELAY_CEILING,
                ..SAMPLE
            },
            ReconnectPolicy {
                multiplier: 1.0,
                jitter: 0.0,
                ..SAMPLE
            },
            ReconnectPolicy {
                multiplier: 100.0,
                jitter: 1.0,
                ..SAMPLE
            },
            ReconnectPolicy {
                initial_delay: MIN_DELAY,
                ..SAMPLE
            },
        ];
        for policy in settings {
            policy.validate().unwrap_or_else(|e| panic!("{policy:?}: {e}"));
        }
        let over = ReconnectPolicy {
            max_delay: MAX_DELAY_CEILING + Duration::from_secs(1),
            ..SAMPLE
        };
        assert!(matches!(
            over.validate(),
            Err(PolicyError::MaxDelayAboveCeiling { .. })
        ));
        let above = ReconnectPolicy {
            initial_delay: Duration::from_millis(201),
            ..SAMPLE
        };
        assert!(matches!(
            above.validate(),
            Err(PolicyError::InitialDelayAboveMax { .. })
        ));
    }

    #[test]
    fn max_attempts_limits_retries() {
        let policy = ReconnectPolicy {
            max_attempts: Some(3),
            ..SAMPLE
        };
        assert!(policy.allows(2));
        assert!(!policy.allows(3));
        assert!(SAMPLE.allows(u32::MAX - 1));
    }

    #[rstest]
    #[case(Duration::ZERO)]
    #[case(Duration::from_millis(9))]
    fn delays_below_the_floor_are_refused(#[case] initial: Duration) {
        let policy = ReconnectPolicy {
            initial_delay: initial,
            ..SAMPLE
        };
        let message = policy.validate().unwrap_err().to_string();
        assert!(
            message.contains("initial_delay") && message.contains("at least 10ms"),
            "{message}"
        );
    }

    fn over_sample(json: &str) -> Result<ReconnectPolicy, serde_json::Error> {
        ReconnectPolicy::deserialize_over(&SAMPLE, &mut serde_json::Deserializer::from_str(json))
    }

    #[test]
    fn a_settings_file_replaces_what_it_gives_and_keeps_the_rest() {
        let policy = over_sample(r#"{"max_delay": "3s", "max_attempts": 4}"#).unwrap();
        assert_eq!(
            policy,
            ReconnectPolicy {
                max_delay: Duration::from_secs(3),
                max_attempts: Some(4),
                ..SAMPLE
            }
        );
        let bounded = ReconnectPolicy {
            max_attempts: Some(4),
            ..SAMPLE
        };
        let reread = ReconnectPolicy::deserialize_over(
            &bounded,
            &mut serde_json::Deserializer::from_str(r#"{"max_attempts": null}"#),
        )
        .unwrap();
        assert_eq!(reread.max_attempts, None, "null retries for ever");
        assert_eq!(over_sample("{}").unwrap(), SAMPLE);
    }

    #[test]
    fn a_settings_file_with_an_unknown_or_mistyped_field_is_refused() {
        let typo = over_sample(r#"{"max_dealy": "3s"}"#).unwrap_err();
        assert!(typo.to_string().contains("max_dealy"), "{typo}");
        let text = over_sample(r#"{"jitter": "a lot"}"#).unwrap_err();
        assert!(text.to_string().contains("invalid type"), "{text}");
    }

    #[test]
    fn a_policy_written_out_reads_back_the_same() {
        let bounded = ReconnectPolicy {
            max_attempts: Some(7),
            ..SAMPLE
        };
        let json = serde_json::to_string(&bounded).unwrap();
        assert_eq!(serde_json::from_str::<ReconnectPolicy>(&json).unwrap(), bounded);
    }
}
