//! A service scenario's `cluster:` block: the service runs as several
//! `ingest serve` processes sharing their streams through a real
//! nats-server (JetStream leases), each reaching NATS through a fault proxy
//! of its own, and the scenario's faults strike an instance (the one
//! serving a named stream when the fault comes) or NATS itself.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Instances unless the scenario says.
pub(crate) const DEFAULT_INSTANCES: usize = 2;
/// The lease's TTL unless the scenario says (the service's own default): a
/// dead owner's streams are taken over within it. Shorter ones lose leases
/// on a loaded machine, where JetStream's acknowledgements slow down.
pub(crate) const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterPlan {
    /// `ingest serve` processes (default 2), named i1, i2, ...
    #[serde(default)]
    pub instances: Option<usize>,
    /// How long a lease lasts unrenewed (default 5s).
    #[serde(with = "humantime_serde", default)]
    #[schemars(with = "Option<String>")]
    pub lease_ttl: Option<Duration>,
    /// What strikes the cluster, and when.
    #[serde(default)]
    pub faults: Vec<ClusterFault>,
}

impl ClusterPlan {
    pub fn instances(&self) -> usize {
        self.instances.unwrap_or(DEFAULT_INSTANCES)
    }

    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl.unwrap_or(DEFAULT_LEASE_TTL)
    }
}

/// One fault: at `at` (from the scenario's start), `what`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterFault {
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub at: Duration,
    #[serde(flatten)]
    pub what: ClusterFaultKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterFaultKind {
    /// SIGKILL the instance serving this stream: it writes nothing more
    /// and releases nothing; its lease expires.
    Kill { owner_of: String },
    /// SIGSTOP the instance serving this stream, and SIGCONT it after
    /// `for`: past the TTL it must find its lease lost and stop writing.
    Pause {
        owner_of: String,
        #[serde(with = "humantime_serde", rename = "for")]
        #[schemars(with = "String", rename = "for")]
        pause: Duration,
    },
    /// SIGTERM the instance serving this stream: it drains, handing every
    /// stream over before it exits.
    Drain { owner_of: String },
    /// Stop nats-server, and start it again on its port and store after
    /// `down_for`.
    RestartNats {
        #[serde(with = "humantime_serde")]
        #[schemars(with = "String")]
        down_for: Duration,
    },
    /// Cut the instance serving this stream off from NATS (its proxy
    /// relays nothing, connections stay open) for `for`.
    CutNats {
        owner_of: String,
        #[serde(with = "humantime_serde", rename = "for")]
        #[schemars(with = "String", rename = "for")]
        cut: Duration,
    },
}

impl ClusterFaultKind {
    /// The stream whose owner the fault strikes, if it strikes one.
    pub fn owner_of(&self) -> Option<&str> {
        match self {
            Self::Kill { owner_of }
            | Self::Pause { owner_of, .. }
            | Self::Drain { owner_of }
            | Self::CutNats { owner_of, .. } => Some(owner_of),
            Self::RestartNats { .. } => None,
        }
    }
}

/// What cannot go in a `cluster:` block, given the stream names.
pub(crate) fn problems(plan: &ClusterPlan, names: &std::collections::BTreeSet<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    if plan.instances() < 2 {
        problems.push("service.cluster.instances: a cluster has at least 2 instances".to_owned());
    }
    if plan.lease_ttl() < Duration::from_secs(1) {
        problems.push("service.cluster.lease_ttl: at least 1s (renewed every third of it)".to_owned());
    }
    for fault in &plan.faults {
        if let Some(name) = fault.what.owner_of()
            && !names.contains(name)
        {
            problems.push(format!(
                "service.cluster.faults: owner_of '{name}' names no stream of service.streams"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_read_as_written() {
        let plan: ClusterPlan = serde_yaml::from_str(
            "instances: 3\nlease_ttl: 3s\nfaults:\n  - {at: 12s, kill: {owner_of: a}}\n  - {at: 20s, pause: {owner_of: b, for: 6s}}\n  - {at: 9s, restart_nats: {down_for: 4s}}\n",
        )
        .unwrap();
        assert_eq!(plan.instances(), 3);
        assert_eq!(plan.lease_ttl(), Duration::from_secs(3));
        assert_eq!(
            plan.faults[1].what,
            ClusterFaultKind::Pause {
                owner_of: "b".to_owned(),
                pause: Duration::from_secs(6)
            }
        );
        assert_eq!(plan.faults[2].what.owner_of(), None);
        let names = ["a"].into_iter().collect();
        assert_eq!(problems(&plan, &names).len(), 1, "b is not a stream");
    }
}
