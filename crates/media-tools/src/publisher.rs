//! An ffmpeg child process publishing a fixture over RTMP, codec copy, the
//! way a real encoder would. Killed when dropped, so no test or Ctrl-C leaves
//! one behind; its stderr goes to a log file kept with the run's artifacts.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use crate::error::ToolError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pace {
    /// `-re`: frames leave at their timestamps, like a live encoder.
    #[default]
    Realtime,
    /// As fast as the server accepts them.
    Fast,
}

#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub pace: Pace,
    /// Start this far into the fixture (`-ss`).
    pub seek: Option<Duration>,
    /// Publish only this much media (`-t`).
    pub limit: Option<Duration>,
}

pub struct Publisher {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Publisher {
    /// Starts `ffmpeg [-re] -i FIXTURE -c copy -f flv URL`.
    pub fn start(fixture: &Path, url: &str, options: &PublishOptions, log: &Path) -> Result<Self, ToolError> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|source| ToolError::Io {
                path: log.to_owned(),
                source,
            })?;
        let mut command = tokio::process::Command::new("ffmpeg");
        command.args(["-hide_banner", "-nostdin", "-loglevel", "info"]);
        if options.pace == Pace::Realtime {
            command.arg("-re");
        }
        if let Some(seek) = options.seek {
            command.args(["-ss", &format!("{:.3}", seek.as_secs_f64())]);
        }
        command.arg("-i").arg(fixture);
        if let Some(limit) = options.limit {
            command.args(["-t", &format!("{:.3}", limit.as_secs_f64())]);
        }
        command
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let child = command.spawn().map_err(|source| ToolError::Spawn {
            program: "ffmpeg",
            source,
        })?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits for ffmpeg to exit, killing it after `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, ToolError> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.map_err(|source| ToolError::Spawn {
                program: "ffmpeg",
                source,
            }),
            Err(_) => {
                self.kill().await;
                Err(ToolError::Timeout(format!(
                    "ffmpeg publisher still running after {timeout:?}; see {}",
                    self.log.display()
                )))
            }
        }
    }

    /// Waits for a clean exit, with the log's tail as the error otherwise.
    pub async fn finish(&mut self, timeout: Duration) -> Result<(), ToolError> {
        let status = self.wait(timeout).await?;
        if status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        Err(ToolError::Failed {
            program: "ffmpeg",
            status: status.to_string(),
            stderr: crate::error::tail(&log, 15),
        })
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}
