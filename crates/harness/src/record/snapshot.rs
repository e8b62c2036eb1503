//! Outcome snapshots with insta: one `.snap` per scenario under
//! `scenarios/snapshots/`. In CI (`CI` set) a missing or changed snapshot
//! fails and nothing is written; locally a changed one is written as
//! `.snap.new` for `cargo insta review`, or accepted with
//! `cargo xtask e2e --update-snapshots`.

use std::path::Path;

use crate::assess::outcome::ScenarioOutcome;
use crate::plan::scenario::ScenarioFile;

/// The outcome differs from its stored snapshot: insta's report of how.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SnapshotMismatch(String);

/// Compares `outcome` with the stored snapshot; `Err` carries insta's report.
pub(crate) fn check(
    file: &ScenarioFile,
    outcome: &ScenarioOutcome,
    snapshot_dir: &Path,
) -> Result<(), SnapshotMismatch> {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(&file.path);
    settings.set_omit_expression(true);
    settings.set_description(file.scenario.description.clone());
    // Where a fault lost media, how many frames made it before the break
    // depends on the moment it struck, to a frame or two, and which
    // keyframe the ingest resumed at depends on how soon it reconnected:
    // those counts, durations and partial segments are checked against the
    // gaps instead (outcome::unmet, continuity), not snapshotted.
    let lossy = outcome
        .streams
        .iter()
        .any(|s| s.continuity.as_ref().is_some_and(|c| !c.gaps.is_empty()));
    if lossy {
        for key in [
            ".streams[].video_frames",
            ".streams[].audio_frames",
            ".streams[].audio_frames_total",
            ".streams[].video_durations",
            ".streams[].audio_durations",
            ".streams[].partial_segments",
            ".streams[].last_segment_partial",
        ] {
            settings.add_redaction(key, "[checked against the gaps]");
        }
        settings.add_redaction(".streams[].continuity.gap_seconds", "[timing: see outcome.yaml]");
    }
    // Where a live-joining ingest came in depends on the server and the
    // moment: what follows from it is checked against the fixture from its
    // first picture on (outcome::unmet), and the join facts are snapshotted.
    if outcome.streams.iter().any(|s| s.join.is_some()) {
        for key in [
            ".streams[].video_segments",
            ".streams[].audio_segments",
            ".streams[].video_durations",
            ".streams[].audio_durations",
            ".streams[].video_frames",
            ".streams[].audio_frames",
            ".streams[].audio_frames_total",
            ".streams[].partial_segments",
            ".streams[].last_segment_partial",
        ] {
            settings.add_redaction(key, "[from where the ingest joined: see outcome.yaml]");
        }
    }
    // Where a service's worker came into a stream published live, or
    // into a stream running when the service restarted, depends on the
    // moment: those counts are checked for what holds wherever it joined
    // (numbering without a hole, every picture of every output read).
    if let Some(service) = &file.scenario.service
        && (service.restart_at.is_some() || service.streams.iter().any(|s| s.live))
    {
        for key in [
            ".service.streams.*.video_segments",
            ".service.streams.*.audio_segments",
            ".service.streams.*.output.spans",
        ] {
            settings.add_redaction(key, "[from where the worker joined: see outcome.yaml]");
        }
    }
    // With NATS itself down, whether an owner keeps its stream through the
    // outage depends on which renewal lands first: how many turns and
    // connections the stream took is checked, not recorded.
    if let Some(cluster) = file.scenario.service.as_ref().and_then(|s| s.cluster.as_ref())
        && cluster
            .faults
            .iter()
            .any(|f| matches!(f.what, crate::plan::cluster::ClusterFaultKind::RestartNats { .. }))
    {
        for key in [
            ".service.streams.*.connections",
            ".service.streams.*.cluster.turns",
            ".service.streams.*.cluster.owners",
        ] {
            settings.add_redaction(key, "[depends on the outage's timing: see outcome.yaml]");
        }
    }
    let name = file.name.replace('/', "__");
    settings.bind(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            insta::assert_yaml_snapshot!(name.as_str(), outcome);
        }))
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "snapshot assertion failed".into())
        })
        .map_err(SnapshotMismatch)
    })
}
