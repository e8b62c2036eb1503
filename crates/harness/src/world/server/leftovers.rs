//! Containers left behind by runs that did not end (killed with `kill -9`,
//! a crashed machine): every container the harness starts carries labels
//! naming its run and process, and each run first removes labelled
//! containers whose process is gone, saying what it removed. The Docker
//! CLI is enough for two commands; no client library is needed.

use crate::error::HarnessError;
use std::process::Command;

/// The label holding the process id of the run that started a container.
pub const PID_LABEL: &str = "rtmp-ingest.harness.pid";
/// The label naming that run (its artifacts folder).
pub const RUN_LABEL: &str = "rtmp-ingest.harness.run";

/// A container of a run whose process is gone, now removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub container: String,
    pub run: String,
    pub pid: u32,
}

/// Removes the labelled containers whose process no longer runs; what it
/// removed, or why it could not look.
pub fn remove_orphans() -> Result<Vec<Removed>, HarnessError> {
    let format = format!("{{{{.ID}}}} {{{{.Label \"{PID_LABEL}\"}}}} {{{{.Label \"{RUN_LABEL}\"}}}}");
    let output = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={PID_LABEL}"),
            "--format",
            &format,
        ])
        .output()
        .map_err(|e| HarnessError::NoDocker(format!("cannot run `docker ps`: {e}")))?;
    if !output.status.success() {
        return Err(HarnessError::NoDocker(format!(
            "`docker ps` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let mut removed = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut fields = line.split_whitespace();
        let (Some(container), Some(pid)) = (fields.next(), fields.next().and_then(|p| p.parse::<u32>().ok()))
        else {
            continue;
        };
        if process_runs(pid) {
            continue;
        }
        let status = Command::new("docker")
            .args(["rm", "-f", "-v", container])
            .output()
            .map_err(|e| HarnessError::NoDocker(format!("cannot run `docker rm`: {e}")))?;
        if status.status.success() {
            removed.push(Removed {
                container: container.to_owned(),
                run: fields.next().unwrap_or("?").to_owned(),
                pid,
            });
        }
    }
    Ok(removed)
}

/// Whether a process with this id exists on this machine (a container's
/// process may also be a different program that reused the id: then the
/// container is kept, which errs on the safe side).
fn process_runs(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_and_a_free_id_does_not() {
        assert!(process_runs(std::process::id()));
        // Above the kernel's largest pid (2^22).
        assert!(!process_runs(5_000_000));
    }
}
