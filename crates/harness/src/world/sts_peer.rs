//! The echo STS peer (`tools/sts-echo/echo.py`) as a child process: started
//! on a free loopback port with a scenario's knobs, waited for on its
//! `listening on HOST:PORT` line, and restarted on the same port. What it
//! received and answered goes to its log file in the artifacts; the facts
//! come from the ingest's side (events, manifest, files).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::error::HarnessError;

/// The venv `cargo xtask deps` makes, under the target directory.
const VENV_PYTHON: &str = "sts-echo-venv/bin/python";
const SCRIPT: &str = "tools/sts-echo/echo.py";
/// Python, socketio and aiohttp start in well under a second; the rest is
/// room for a loaded machine.
const STARTUP: Duration = Duration::from_secs(30);

pub(crate) struct StsPeer {
    child: Child,
    port: u16,
    args: Vec<String>,
    log: PathBuf,
}

impl StsPeer {
    /// Starts the peer with `args` (its knobs), appending its records to
    /// `log`.
    pub(crate) async fn start(args: Vec<String>, log: &Path) -> Result<Self, HarnessError> {
        let (child, port) = spawn(&args, None, log).await?;
        Ok(Self {
            child,
            port,
            args,
            log: log.to_owned(),
        })
    }

    /// `http://127.0.0.1:PORT`, for the ingest's `sts.url`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the peer (its sessions end without a word, as a crashed STS's
    /// would) and starts it again on the same port, with a fresh state.
    pub(crate) async fn restart(&mut self) -> Result<(), HarnessError> {
        let _ = self.child.kill().await;
        let (child, _) = spawn(&self.args, Some(self.port), &self.log).await?;
        self.child = child;
        Ok(())
    }

    pub(crate) async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// The target directory the venv is in: `CARGO_TARGET_DIR` or `target/`.
fn python() -> Result<PathBuf, HarnessError> {
    let root = crate::plan::catalog::workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    };
    let python = target.join(VENV_PYTHON);
    if python.exists() {
        Ok(python)
    } else {
        Err(HarnessError::StsPeer(format!(
            "{} is missing; `cargo xtask deps` makes it (python-socketio in a venv)",
            python.display()
        )))
    }
}

async fn spawn(args: &[String], port: Option<u16>, log: &Path) -> Result<(Child, u16), HarnessError> {
    let script = crate::plan::catalog::workspace_root().join(SCRIPT);
    let python = python()?;
    let mut command = media_tools::command(&python.to_string_lossy());
    command
        .arg(&script)
        .args(args)
        .args([
            "--port",
            &port.unwrap_or(0).to_string(),
            "--exit-with-stdin",
            "--log",
        ])
        .arg(log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| HarnessError::StsPeer(format!("starting {}: {e}", python.display())))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(STARTUP, lines.next_line()).await;
    let port = match first {
        Ok(Ok(Some(line))) => listening_port(&line).ok_or_else(|| {
            HarnessError::StsPeer(format!("expected 'listening on HOST:PORT', got {line:?}"))
        })?,
        Ok(_) => return Err(HarnessError::StsPeer("exited before listening".to_owned())),
        Err(_) => return Err(HarnessError::StsPeer(format!("not listening within {STARTUP:?}"))),
    };
    // Its records go to the --log file too; stdout is drained so that a
    // full pipe never blocks the peer.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, port))
}

fn listening_port(line: &str) -> Option<u16> {
    line.strip_prefix("listening on ")?
        .rsplit(':')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_line() {
        assert_eq!(listening_port("listening on 127.0.0.1:40123"), Some(40123));
        assert_eq!(listening_port("Traceback (most recent call last):"), None);
    }

    /// The real peer: started, restarted on the same port, its records kept.
    #[tokio::test]
    async fn starts_and_restarts_on_the_same_port() {
        let dir = tempfile::tempdir().unwrap();
        let Ok(mut peer) = StsPeer::start(
            vec!["--max-inflight".into(), "1".into()],
            &dir.path().join("peer.jsonl"),
        )
        .await
        else {
            panic!("the echo peer starts (run `cargo xtask deps` first)");
        };
        let url = peer.url();
        assert!(std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok());
        peer.restart().await.unwrap();
        assert_eq!(peer.url(), url, "a restarted peer keeps its port");
        assert!(std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok());
        peer.stop().await;
    }
}
