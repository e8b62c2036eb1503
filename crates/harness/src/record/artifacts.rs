//! Files a scenario leaves under `target/e2e/<run>/<scenario>/` for a human
//! to read after a failure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::HarnessError;
use crate::observe::segments::ProbedSegment;
use crate::world::StreamObservation;

/// `target/e2e/<run id>`: one folder per run, named by its start time.
pub fn run_dir(root: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    root.join("target")
        .join("e2e")
        .join(format!("{stamp}-{}", std::process::id()))
}

fn write(path: PathBuf, contents: impl AsRef<[u8]>) -> Result<(), HarnessError> {
    std::fs::write(&path, contents).map_err(|source| HarnessError::Io { path, source })
}

/// Events as JSON lines, the latency CSV and ffprobe reports of one stream.
pub(crate) fn write_stream(
    dir: &Path,
    observation: &StreamObservation,
    segments: &[ProbedSegment],
) -> Result<(), HarnessError> {
    let id = &observation.stream_id;
    let mut events = String::new();
    for (at, event) in &observation.events {
        let mut value = serde_json::to_value(event).expect("events serialise");
        value["at_ms"] = serde_json::json!(at.as_secs_f64() * 1e3);
        events.push_str(&value.to_string());
        events.push('\n');
    }
    write(dir.join(format!("events-{id}.jsonl")), events)?;
    let mut csv = String::from("kind,index,file,duration_s,frames,bytes,write_latency_ms\n");
    for s in segments {
        let r = &s.record;
        let _ = writeln!(
            csv,
            "{},{},{},{:.6},{},{},{:.3}",
            r.kind, r.index, r.file, r.duration_s, r.frames, r.bytes, r.write_latency_ms
        );
    }
    write(dir.join(format!("latency-{id}.csv")), csv)?;
    let probes = serde_json::to_string_pretty(segments).expect("probe reports serialise");
    write(dir.join(format!("ffprobe-{id}.json")), probes)?;
    if !observation.faults.is_empty() {
        let lines: String = observation
            .faults
            .iter()
            .map(|f| serde_json::to_string(f).expect("fault records serialise") + "\n")
            .collect();
        write(dir.join(format!("faults-{id}.jsonl")), lines)?;
    }
    if !observation.server_facts.is_empty() {
        write_json(
            dir.join(format!("server-path-{id}.json")),
            &observation.server_facts,
        )?;
    }
    Ok(())
}

pub(crate) fn write_yaml(path: PathBuf, value: &impl serde::Serialize) -> Result<(), HarnessError> {
    write(path, serde_yaml::to_string(value).expect("outcomes serialise"))
}

pub(crate) fn write_text(path: PathBuf, text: &str) -> Result<(), HarnessError> {
    write(path, text)
}

pub(crate) fn write_json(path: PathBuf, value: &impl serde::Serialize) -> Result<(), HarnessError> {
    write(
        path,
        serde_json::to_string_pretty(value).expect("reports serialise"),
    )
}

/// The lines of the run's server log that concern these streams (the run
/// shares one server, so its log interleaves every scenario).
pub(crate) fn excerpt_server_log(
    run_log: &Path,
    stream_ids: &[&str],
    out: &Path,
) -> Result<(), HarnessError> {
    let Ok(text) = std::fs::read_to_string(run_log) else {
        return Ok(());
    };
    let lines: String = text
        .lines()
        .filter(|l| stream_ids.iter().any(|id| l.contains(id)))
        .map(|l| format!("{l}\n"))
        .collect();
    write(out.to_owned(), lines)
}
