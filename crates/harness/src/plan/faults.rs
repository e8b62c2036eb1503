//! A scenario's `faults:` list: what to do to which connection, and when,
//! in the fixture's media time (counted from the first frame the ingest is
//! sent, so a fault lands at the same point of the stream at either pace).

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(crate) use crate::world::faults::proxy::CutKind;

/// Which connection a fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Between the publisher (ffmpeg) and the server.
    Publisher,
    /// Between the server and the ingest.
    Ingest,
}

fn fin() -> CutKind {
    CutKind::Fin
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Ends the side's connections (later ones pass).
    Cut {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        at: Duration,
        side: Side,
        /// fin (default) or rst.
        #[serde(default = "fin")]
        how: CutKind,
        /// Publisher side only: the publisher comes back this long after
        /// the cut (at once by default), as an encoder that reconnects,
        /// from the first keyframe of the live stream then; the media in
        /// between is lost.
        #[serde(with = "humantime_serde", default)]
        #[schemars(with = "Option<String>")]
        back_after: Option<Duration>,
    },
    /// Restarts the server (the embedded one on the same port, a container
    /// with `docker stop` and `start`): every connection ends and every
    /// path is forgotten. The publisher comes back `back_after` later (at
    /// once by default) from the first keyframe of the live stream then;
    /// the ingest reconnects. The scenario gets a server of its own.
    RestartServer {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        at: Duration,
        #[serde(with = "humantime_serde", default)]
        #[schemars(with = "Option<String>")]
        back_after: Option<Duration>,
    },
    /// Relays nothing for a while (sockets stay open); without `for`, for
    /// the rest of the run.
    Stall {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        at: Duration,
        side: Side,
        #[serde(rename = "for", with = "humantime_serde", default)]
        #[schemars(rename = "for", with = "Option<String>")]
        lasting: Option<Duration>,
    },
    /// Relays at most this many bytes per second, each way, for a while.
    Throttle {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        at: Duration,
        side: Side,
        bytes_per_second: u64,
        #[serde(rename = "for", with = "humantime_serde")]
        #[schemars(rename = "for", with = "String")]
        lasting: Duration,
    },
    /// Relays in writes of at most this many bytes, for a while.
    Slice {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        at: Duration,
        side: Side,
        bytes: usize,
        #[serde(rename = "for", with = "humantime_serde")]
        #[schemars(rename = "for", with = "String")]
        lasting: Duration,
    },
    /// Closes the ingest's connection through the server's Control API
    /// (MediaMTX's `POST /v3/rtmpconns/kick/<id>`).
    KickIngest {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        at: Duration,
    },
}

impl Fault {
    pub fn at(&self) -> Duration {
        match self {
            Self::Cut { at, .. }
            | Self::Stall { at, .. }
            | Self::Throttle { at, .. }
            | Self::Slice { at, .. }
            | Self::KickIngest { at }
            | Self::RestartServer { at, .. } => *at,
        }
    }

    /// When the publisher comes back, in media time, after a fault that
    /// ends its connection for good (its ffmpeg exits).
    pub fn publisher_back_at(&self) -> Option<Duration> {
        match self {
            Self::Cut {
                at,
                side: Side::Publisher,
                back_after,
                ..
            } => Some(*at + back_after.unwrap_or_default()),
            Self::RestartServer { at, back_after } => Some(*at + back_after.unwrap_or_default()),
            _ => None,
        }
    }

    /// The side whose connections go through a fault proxy, if any.
    pub fn side(&self) -> Option<Side> {
        match self {
            Self::Cut { side, .. }
            | Self::Stall { side, .. }
            | Self::Throttle { side, .. }
            | Self::Slice { side, .. } => Some(*side),
            Self::KickIngest { .. } | Self::RestartServer { .. } => None,
        }
    }

    /// The sides whose connections go through a fault proxy: a restarted
    /// container may come back on another port, which only a proxy in
    /// between can hide from the publisher and the ingest.
    pub fn proxied_sides(&self) -> Vec<Side> {
        match self {
            Self::RestartServer { .. } => vec![Side::Publisher, Side::Ingest],
            other => other.side().into_iter().collect(),
        }
    }

    /// Media time after `at` when it is over (`None`: it never ends).
    pub fn lasting(&self) -> Option<Duration> {
        match self {
            Self::Cut { .. } | Self::KickIngest { .. } | Self::RestartServer { .. } => Some(Duration::ZERO),
            Self::Stall { lasting, .. } => *lasting,
            Self::Throttle { lasting, .. } | Self::Slice { lasting, .. } => Some(*lasting),
        }
    }

    /// Whether media can be lost to it: a cut, a kick and a stall longer
    /// than the server's and the ingest's patience end connections.
    pub fn may_lose_media(&self) -> bool {
        match self {
            Self::Cut { .. } | Self::KickIngest { .. } | Self::RestartServer { .. } => true,
            Self::Stall { lasting, .. } => lasting.is_none_or(|d| d >= Duration::from_secs(10)),
            Self::Throttle { .. } | Self::Slice { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_fault_and_refuses_unknown_keys() {
        let faults: Vec<Fault> = serde_yaml::from_str(
            "- {do: cut, at: 10.5s, side: ingest}\n\
             - {do: cut, at: 3s, side: publisher, how: rst}\n\
             - {do: stall, at: 8s, side: ingest, for: 5s}\n\
             - {do: stall, at: 8s, side: ingest}\n\
             - {do: throttle, at: 8s, side: ingest, bytes_per_second: 50000, for: 5s}\n\
             - {do: slice, at: 2s, side: publisher, bytes: 7, for: 4s}\n\
             - {do: kick_ingest, at: 10s}\n",
        )
        .unwrap();
        assert_eq!(faults.len(), 7);
        assert_eq!(faults[0].at(), Duration::from_millis(10_500));
        assert!(matches!(
            faults[1],
            Fault::Cut {
                how: CutKind::Rst,
                ..
            }
        ));
        assert_eq!(faults[3].lasting(), None);
        assert!(faults[3].may_lose_media() && !faults[2].may_lose_media());
        let typo = serde_yaml::from_str::<Vec<Fault>>("- {do: stall, at: 1s, side: ingest, fro: 2s}\n");
        assert!(typo.unwrap_err().to_string().contains("fro"));
    }
}
