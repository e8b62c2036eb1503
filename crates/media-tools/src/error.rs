//! Errors of running the real tools: which program, and what it said.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ToolError {
    #[error("cannot run {program}: {source} (is it installed? `cargo xtask deps` installs it)")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{program} printed output that could not be read: {reason}")]
    Output { program: &'static str, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Timeout(String),
    #[error("fixture '{name}': {problem}")]
    InvalidRecipe { name: String, problem: String },
    /// A publish that ended otherwise than planned (the first failure
    /// only; later asks say the same).
    #[error("the publish failed: {0}")]
    Publish(String),
}

/// The last lines of a tool's stderr: enough to explain a failure.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a tool to completion (killed if the caller gives up), failing with
/// the tail of its stderr, prefixed by `context`, when it exits non-zero.
pub(crate) async fn run_tool(
    program: &'static str,
    command: &mut tokio::process::Command,
    context: &str,
) -> Result<std::process::Output, ToolError> {
    let output = command
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ToolError::Spawn { program, source })?;
    if output.status.success() {
        return Ok(output);
    }
    Err(ToolError::Failed {
        program,
        status: output.status.to_string(),
        stderr: format!("{context}{}", tail(&String::from_utf8_lossy(&output.stderr), 15)),
    })
}
