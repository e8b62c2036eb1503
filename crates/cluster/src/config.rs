//! Where the leases live and how long they last.

use std::time::Duration;

/// The default lease TTL: long enough for a few renewals to be lost to a
/// slow moment, short enough that a dead instance's streams come back
/// within seconds.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `nats://host:port` of a NATS server with JetStream.
    pub nats_url: String,
    /// The lease bucket; the stream state lives in `<bucket>-state`.
    pub bucket: String,
    /// This instance's name, unique in the deployment (the host name, say).
    pub instance: String,
    pub ttl: Duration,
}

impl ClusterConfig {
    pub fn new(nats_url: impl Into<String>, instance: impl Into<String>) -> Self {
        Self {
            nats_url: nats_url.into(),
            bucket: "ingest-leases".to_owned(),
            instance: instance.into(),
            ttl: DEFAULT_TTL,
        }
    }

    /// How often an owner renews: four chances before its fence.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 5
    }

    /// How long a request to JetStream may take: two renewal periods, so
    /// that an acknowledgement slowed by a loaded store still counts (the
    /// fence runs from when the renewal was sent), yet one that cannot get
    /// through fails before the fence.
    pub fn answer_within(&self) -> Duration {
        self.renew_every() * 2
    }
}
