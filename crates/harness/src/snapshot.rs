//! Outcome snapshots with insta: one `.snap` per scenario under
//! `scenarios/snapshots/`. In CI (`CI` set) a missing or changed snapshot
//! fails and nothing is written; locally a changed one is written as
//! `.snap.new` for `cargo insta review`, or accepted with
//! `cargo xtask e2e --update-snapshots`.

use std::path::Path;

use crate::outcome::ScenarioOutcome;
use crate::scenario::ScenarioFile;

/// Compares `outcome` with the stored snapshot; `Err` carries insta's report.
pub fn check(file: &ScenarioFile, outcome: &ScenarioOutcome, snapshot_dir: &Path) -> Result<(), String> {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(snapshot_dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_input_file(&file.path);
    settings.set_omit_expression(true);
    settings.set_description(file.scenario.description.clone());
    // Where a fault lost media, how many frames made it before the break
    // depends on the moment it struck, to a frame or two: those counts are
    // checked against the gaps instead (outcome::unmet), not snapshotted.
    let lossy = outcome
        .streams
        .iter()
        .any(|s| s.continuity.as_ref().is_some_and(|c| !c.gaps.is_empty()));
    if lossy {
        for key in [
            ".streams[].video_frames",
            ".streams[].audio_frames",
            ".streams[].audio_frames_total",
        ] {
            settings.add_redaction(key, "[checked against the gaps]");
        }
        settings.add_redaction(".streams[].continuity.gap_seconds", "[timing: see outcome.yaml]");
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
    })
}
