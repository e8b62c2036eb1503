//! Why a policy was refused, with what is expected.

use std::time::Duration;

use crate::policy::{MAX_DELAY_CEILING, MIN_DELAY};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "initial_delay {given:?} is below {MIN_DELAY:?}: a server that refuses would be asked again at once, thousands of times a second; expected at least {MIN_DELAY:?}, such as 100ms"
    )]
    InitialDelayBelowFloor { given: Duration },
    #[error("initial_delay {initial:?} is above max_delay {max:?}; expected initial_delay <= max_delay")]
    InitialDelayAboveMax { initial: Duration, max: Duration },
    #[error("max_delay {given:?} is above {MAX_DELAY_CEILING:?}; expected at most an hour")]
    MaxDelayAboveCeiling { given: Duration },
    #[error("multiplier {given} is outside 1..=100")]
    Multiplier { given: f64 },
    #[error("jitter {given} is outside 0..=1 (a fraction of each delay)")]
    Jitter { given: f64 },
}
