//! What a stream's fragments came to: sent, processed, failed or not sent,
//! in order, recorded once, their dubbed files real, never more in flight
//! than the STS allowed. From the worker's events (the order things
//! happened in), the manifest on disk (what was recorded) and ffprobe.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use ingest::{FragmentStatus, ManifestEntry, WorkerEvent};
use serde::Serialize;

/// Facts that do not depend on the machine's speed; the figures that do
/// (round trips, the largest number in flight) are skipped in snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StsFacts {
    /// Fragments sent at least once.
    pub fragments_sent: usize,
    pub processed: usize,
    pub failed: usize,
    pub not_sent: usize,
    /// First sends went out in segment order.
    pub sent_in_order: bool,
    /// Fragments the manifest gives more than one final status.
    pub recorded_twice: Vec<u64>,
    /// Every processed fragment's dubbed file opens in ffprobe as audio.
    pub dubbed_files_probe: bool,
    /// Never more sent and unanswered than the STS's `max_inflight`.
    pub in_flight_within_limit: bool,
    #[serde(skip)]
    pub max_in_flight: usize,
    #[serde(skip)]
    pub round_trip_ms: Vec<f64>,
    #[serde(skip)]
    pub failures: Vec<String>,
}

pub(crate) async fn of_stream(
    events: &[(Duration, WorkerEvent)],
    segments_dir: &Path,
    max_inflight: u32,
) -> StsFacts {
    let mut first_sends = Vec::new();
    let (mut in_flight, mut max_in_flight) = (BTreeSet::new(), 0);
    let mut failures = Vec::new();
    for (_, event) in events {
        match event {
            WorkerEvent::FragmentSent(r) => {
                if !first_sends.contains(&r.index) {
                    first_sends.push(r.index);
                }
                in_flight.insert(r.index);
                max_in_flight = max_in_flight.max(in_flight.len());
            }
            WorkerEvent::FragmentProcessed(r) | WorkerEvent::FragmentFailed(r) => {
                in_flight.remove(&r.index);
            }
            _ => {}
        }
        if let WorkerEvent::FragmentFailed(r) | WorkerEvent::FragmentNotSent(r) = event {
            failures.push(format!(
                "{}: {}",
                r.index,
                r.reason.as_deref().unwrap_or("no reason")
            ));
        }
    }
    let finals = final_records(&segments_dir.join("manifest.jsonl"));
    let count = |status| {
        finals
            .values()
            .filter(|v| v.iter().any(|s| s.0 == status))
            .count()
    };
    let mut dubbed_files_probe = true;
    let mut round_trip_ms = Vec::new();
    for (_, dubbed, round_trip) in finals
        .values()
        .flatten()
        .filter(|s| s.0 == FragmentStatus::Processed)
    {
        round_trip_ms.extend(round_trip);
        let opens = match dubbed {
            Some(file) => media_tools::probe(&segments_dir.join(file))
                .await
                .is_ok_and(|report| report.stream("audio").is_some()),
            None => false,
        };
        dubbed_files_probe &= opens;
    }
    StsFacts {
        fragments_sent: first_sends.len(),
        processed: count(FragmentStatus::Processed),
        failed: count(FragmentStatus::Failed),
        not_sent: count(FragmentStatus::NotSent),
        sent_in_order: first_sends.windows(2).all(|w| w[0] < w[1]),
        recorded_twice: finals
            .iter()
            .filter(|(_, statuses)| statuses.len() > 1)
            .map(|(index, _)| *index)
            .collect(),
        dubbed_files_probe,
        in_flight_within_limit: max_in_flight <= max_inflight as usize,
        max_in_flight,
        round_trip_ms,
        failures,
    }
}

/// Each fragment's final records in the manifest: status, dubbed file and
/// round trip.
type FinalRecord = (FragmentStatus, Option<String>, Option<f64>);

fn final_records(manifest: &Path) -> BTreeMap<u64, Vec<FinalRecord>> {
    let mut finals: BTreeMap<u64, Vec<FinalRecord>> = BTreeMap::new();
    let text = std::fs::read_to_string(manifest).unwrap_or_default();
    for line in text.lines() {
        if let Ok(ManifestEntry::Fragment(r)) = serde_json::from_str::<ManifestEntry>(line)
            && r.status.is_final()
        {
            finals
                .entry(r.index)
                .or_default()
                .push((r.status, r.dubbed_file, r.round_trip_ms));
        }
    }
    finals
}
