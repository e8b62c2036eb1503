//! Which streams have a worker, and what to do next: pure logic, told what
//! MediaMTX lists, when a worker ended, and what time it is. It keeps at
//! most one worker per stream whatever order or repetition events come in;
//! a stream gone from the list keeps its worker for the grace period (a
//! publisher back within it keeps its worker and numbering); a worker that
//! failed starts again after a growing delay while its stream is listed;
//! past `max_streams`, a stream is refused, and says so once. In a
//! cluster, a stream another instance serves waits here, holding no slot,
//! and is claimed again after a moment while it is listed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ingest::StreamId;
use reconnect::ReconnectPolicy;

use crate::paths::{Matched, PathPattern};

/// What the manager must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Start(StreamId),
    Stop(StreamId),
    /// A path newly refused, with the reason (said once while it lasts).
    Refuse {
        path: String,
        reason: Refusal,
    },
}

/// Why a path gets no worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    Capacity { max_streams: usize },
    BadId(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Capacity { max_streams } => write!(
                f,
                "the service runs its maximum of {max_streams} streams (max_streams); it starts this one when a slot frees"
            ),
            Self::BadId(reason) => write!(f, "{reason}"),
        }
    }
}

/// Where a stream's worker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Started; its stream is listed.
    Running,
    /// Its stream left the list; stopped at this instant unless it returns.
    Leaving { until: Instant },
    /// Failed; starts again at this instant while its stream is listed.
    Restarting { at: Instant },
    /// Asked to stop; gone once it has.
    Stopping,
    /// Served by another instance of the cluster; claimed again at this
    /// instant while its stream is listed. Holds no slot of this one.
    Elsewhere { at: Instant },
}

impl Slot {
    /// The word `/v1/streams` says.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Leaving { .. } => "leaving",
            Self::Restarting { .. } => "restarting",
            Self::Stopping => "stopping",
            Self::Elsewhere { .. } => "elsewhere",
        }
    }
}

#[derive(Debug)]
struct Entry {
    slot: Slot,
    /// Failures since the worker last ran cleanly.
    failures: u32,
}

pub(crate) struct Roster {
    input: PathPattern,
    max_streams: usize,
    grace: Duration,
    restart: ReconnectPolicy,
    entries: BTreeMap<StreamId, Entry>,
    refused: BTreeMap<String, Refusal>,
}

impl Roster {
    pub(crate) fn new(
        input: PathPattern,
        max_streams: usize,
        grace: Duration,
        restart: ReconnectPolicy,
    ) -> Self {
        Self {
            input,
            max_streams,
            grace,
            restart,
            entries: BTreeMap::new(),
            refused: BTreeMap::new(),
        }
    }

    pub(crate) fn slot(&self, id: &StreamId) -> Option<Slot> {
        self.entries.get(id).map(|e| e.slot)
    }

    /// Paths refused now, and why.
    pub(crate) fn refused(&self) -> impl Iterator<Item = (&String, &Refusal)> {
        self.refused.iter()
    }

    /// Workers that hold a slot (every state but stopping, and streams
    /// served elsewhere).
    pub(crate) fn active(&self) -> usize {
        self.entries
            .values()
            .filter(|e| !matches!(e.slot, Slot::Stopping | Slot::Elsewhere { .. }))
            .count()
    }

    /// Another instance serves `id` (its claim was lost): claimed again at
    /// `retry_at` while listed.
    pub(crate) fn elsewhere(&mut self, id: &StreamId, retry_at: Instant) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.slot = Slot::Elsewhere { at: retry_at };
        }
    }

    /// MediaMTX lists these paths as available now.
    pub(crate) fn listed(&mut self, now: Instant, paths: &[String]) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut listed = Vec::new();
        let mut refused = BTreeMap::new();
        for path in paths {
            match self.input.matches(path) {
                Matched::Input(id) => listed.push((path, id)),
                Matched::BadId(reason) => {
                    refused.insert(path.clone(), Refusal::BadId(reason));
                }
                Matched::NotAnInput => {}
            }
        }
        for (path, id) in listed {
            let active = self.active();
            match self.entries.get_mut(&id) {
                Some(entry) => {
                    if matches!(entry.slot, Slot::Leaving { .. }) {
                        entry.slot = Slot::Running;
                    }
                }
                None if active < self.max_streams => {
                    self.entries.insert(
                        id.clone(),
                        Entry {
                            slot: Slot::Running,
                            failures: 0,
                        },
                    );
                    actions.push(Action::Start(id));
                }
                None => {
                    refused.insert(
                        path.clone(),
                        Refusal::Capacity {
                            max_streams: self.max_streams,
                        },
                    );
                }
            }
        }
        let listed_ids: Vec<StreamId> = paths
            .iter()
            .filter_map(|p| match self.input.matches(p) {
                Matched::Input(id) => Some(id),
                _ => None,
            })
            .collect();
        for (id, entry) in &mut self.entries {
            if !listed_ids.contains(id) {
                match entry.slot {
                    Slot::Running => {
                        entry.slot = Slot::Leaving {
                            until: now + self.grace,
                        }
                    }
                    // A failed worker whose stream left is not started again.
                    Slot::Restarting { .. } => entry.slot = Slot::Stopping,
                    // Forgotten below.
                    Slot::Elsewhere { .. } => {}
                    Slot::Leaving { .. } | Slot::Stopping => {}
                }
            }
        }
        self.entries.retain(|id, e| {
            // A failed worker that will not start again holds nothing, nor
            // a stream served elsewhere that left.
            let gone_elsewhere = matches!(e.slot, Slot::Elsewhere { .. }) && !listed_ids.contains(id);
            (e.slot != Slot::Stopping || e.failures == 0) && !gone_elsewhere
        });
        for (path, reason) in &refused {
            if self.refused.get(path) != Some(reason) {
                actions.push(Action::Refuse {
                    path: path.clone(),
                    reason: reason.clone(),
                });
            }
        }
        self.refused = refused;
        actions.extend(self.tick(now));
        actions
    }

    /// A worker ended: cleanly, or with `failure`.
    pub(crate) fn ended(&mut self, now: Instant, id: &StreamId, failure: Option<&str>) -> Vec<Action> {
        let Some(entry) = self.entries.get_mut(id) else {
            return Vec::new();
        };
        match (entry.slot, failure) {
            (Slot::Stopping | Slot::Leaving { .. }, _) | (_, None) => {
                self.entries.remove(id);
            }
            (_, Some(_)) => {
                entry.failures += 1;
                let delay = self.restart.delay(entry.failures, 0.5);
                entry.slot = Slot::Restarting { at: now + delay };
            }
        }
        Vec::new()
    }

    /// What time brings: leaving streams stopped, failed workers started.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        for (id, entry) in &mut self.entries {
            match entry.slot {
                Slot::Leaving { until } if until <= now => {
                    entry.slot = Slot::Stopping;
                    actions.push(Action::Stop(id.clone()));
                }
                Slot::Restarting { at } | Slot::Elsewhere { at } if at <= now => {
                    entry.slot = Slot::Running;
                    actions.push(Action::Start(id.clone()));
                }
                _ => {}
            }
        }
        actions
    }

    /// Stops every worker (the service is shutting down).
    pub(crate) fn stop_all(&mut self) -> Vec<Action> {
        // A failed worker waiting to start again has nothing to stop.
        self.entries
            .retain(|_, e| !matches!(e.slot, Slot::Restarting { .. } | Slot::Elsewhere { .. }));
        let mut actions = Vec::new();
        for (id, entry) in &mut self.entries {
            if matches!(entry.slot, Slot::Running | Slot::Leaving { .. }) {
                actions.push(Action::Stop(id.clone()));
            }
            entry.slot = Slot::Stopping;
        }
        actions
    }

    /// The next instant `tick` has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|e| match e.slot {
                Slot::Leaving { until } => Some(until),
                Slot::Restarting { at } | Slot::Elsewhere { at } => Some(at),
                _ => None,
            })
            .min()
    }

    /// Whether any worker still runs (or is being stopped).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DEFAULT_INPUT;

    fn roster(max: usize) -> Roster {
        Roster::new(
            PathPattern::parse(DEFAULT_INPUT, "input").unwrap(),
            max,
            Duration::from_secs(5),
            ReconnectPolicy {
                initial_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(30),
                multiplier: 2.0,
                jitter: 0.0,
                max_attempts: None,
            },
        )
    }

    fn id(s: &str) -> StreamId {
        StreamId::parse(s).unwrap()
    }

    fn paths(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| format!("live/{n}/in")).collect()
    }

    #[test]
    fn a_stream_served_elsewhere_holds_no_slot_and_is_claimed_again_while_listed() {
        let mut r = roster(1);
        let t = Instant::now();
        assert_eq!(r.listed(t, &paths(&["a"])), [Action::Start(id("a"))]);
        r.elsewhere(&id("a"), t + Duration::from_secs(1));
        assert_eq!(r.slot(&id("a")).map(Slot::name), Some("elsewhere"));
        // Its slot is free for another stream.
        assert_eq!(r.listed(t, &paths(&["a", "b"])), [Action::Start(id("b"))]);
        r.elsewhere(&id("b"), t + Duration::from_secs(1));
        assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(1)));
        assert_eq!(
            r.tick(t + Duration::from_secs(1)),
            [Action::Start(id("a")), Action::Start(id("b"))]
        );
        // Gone from the list while served elsewhere: forgotten.
        r.elsewhere(&id("a"), t + Duration::from_secs(2));
        r.listed(t, &paths(&["b"]));
        assert_eq!(r.slot(&id("a")), None);
        r.elsewhere(&id("b"), t + Duration::from_secs(2));
        assert_eq!(r.stop_all(), []);
        assert!(r.is_empty());
    }

    #[test]
    fn one_worker_per_stream_whatever_repeats() {
        let mut r = roster(8);
        let t = Instant::now();
        assert_eq!(
            r.listed(t, &paths(&["a", "b"])),
            [Action::Start(id("a")), Action::Start(id("b"))]
        );
        assert_eq!(r.listed(t, &paths(&["b", "a", "a"])), []);
        let mut listed = paths(&["a"]);
        listed.push("live/a/out".into());
        assert_eq!(r.listed(t, &listed), [], "an output path is no input");
        assert_eq!(r.active(), 2);
    }

    #[test]
    fn a_stream_back_within_the_grace_keeps_its_worker() {
        let mut r = roster(8);
        let t = Instant::now();
        r.listed(t, &paths(&["a"]));
        assert_eq!(r.listed(t, &[]), []);
        assert!(matches!(r.slot(&id("a")), Some(Slot::Leaving { .. })));
        assert_eq!(r.tick(t + Duration::from_secs(4)), []);
        assert_eq!(
            r.listed(t + Duration::from_secs(4), &paths(&["a"])),
            [],
            "kept, not started again"
        );
        assert_eq!(r.slot(&id("a")), Some(Slot::Running));
        r.listed(t + Duration::from_secs(5), &[]);
        assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(10)));
        assert_eq!(r.tick(t + Duration::from_secs(10)), [Action::Stop(id("a"))]);
        assert_eq!(r.ended(t + Duration::from_secs(11), &id("a"), None), []);
        assert!(r.is_empty());
    }

    #[test]
    fn a_failed_worker_starts_again_later_and_later_while_listed() {
        let mut r = roster(8);
        let t = Instant::now();
        r.listed(t, &paths(&["a"]));
        r.ended(t, &id("a"), Some("refused"));
        assert_eq!(r.next_deadline(), Some(t + Duration::from_secs(1)));
        assert_eq!(r.tick(t + Duration::from_secs(1)), [Action::Start(id("a"))]);
        r.ended(t + Duration::from_secs(1), &id("a"), Some("refused"));
        assert_eq!(
            r.next_deadline(),
            Some(t + Duration::from_secs(3)),
            "the delay doubled"
        );
        // Its stream leaves: it is not started again, and frees its slot.
        r.listed(t + Duration::from_secs(2), &[]);
        assert_eq!(r.tick(t + Duration::from_secs(60)), []);
        assert!(r.is_empty());
    }

    #[test]
    fn past_capacity_a_stream_is_refused_once_then_started_when_a_slot_frees() {
        let mut r = roster(1);
        let t = Instant::now();
        let actions = r.listed(t, &paths(&["a", "b"]));
        assert_eq!(actions[0], Action::Start(id("a")));
        assert!(
            matches!(&actions[1], Action::Refuse { path, reason: Refusal::Capacity { max_streams: 1 } } if path == "live/b/in")
        );
        assert_eq!(r.listed(t, &paths(&["a", "b"])), [], "said once");
        r.listed(t, &paths(&["b"]));
        r.tick(t + Duration::from_secs(5));
        r.ended(t + Duration::from_secs(5), &id("a"), None);
        assert_eq!(
            r.listed(t + Duration::from_secs(6), &paths(&["b"])),
            [Action::Start(id("b"))]
        );
        assert_eq!(r.refused().count(), 0);
    }

    #[test]
    fn a_bad_id_is_refused_with_its_reason_and_disturbs_nothing() {
        let mut r = roster(8);
        let t = Instant::now();
        let mut listed = paths(&["a"]);
        listed.push("live/a b/in".into());
        let actions = r.listed(t, &listed);
        assert_eq!(actions[0], Action::Start(id("a")));
        assert!(
            matches!(&actions[1], Action::Refuse { path, reason: Refusal::BadId(why) } if path == "live/a b/in" && why.contains("a b")),
            "{actions:?}"
        );
    }

    #[test]
    fn shutting_down_stops_every_worker() {
        let mut r = roster(8);
        let t = Instant::now();
        r.listed(t, &paths(&["a", "b", "c"]));
        r.ended(t, &id("c"), Some("refused"));
        assert_eq!(r.stop_all(), [Action::Stop(id("a")), Action::Stop(id("b"))]);
        r.ended(t, &id("a"), None);
        r.ended(t, &id("b"), Some("stopped mid-write"));
        assert!(r.is_empty());
    }
}
