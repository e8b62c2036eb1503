//! One instance of a cluster scenario: the real `ingest serve` binary as a
//! child process, so that a fault can SIGKILL, SIGSTOP or SIGTERM it as an
//! orchestrator would. Its log goes to a file of the run; it is ready once
//! it says where it serves.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::error::HarnessError;

/// How long an instance may take to say where it serves.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The `ingest serve` command line of one instance, but its NATS address.
pub(crate) struct InstanceArgs {
    pub name: String,
    /// Everything `ingest serve` is given but `--nats` and `--instance`.
    pub serve: Vec<String>,
    pub log: PathBuf,
}

pub(crate) struct Instance {
    pub name: String,
    pub base: String,
    child: Child,
}

impl Instance {
    /// Starts it against NATS at `nats`, and waits until it serves.
    pub(crate) async fn start(args: &InstanceArgs, nats: &str) -> Result<Self, HarnessError> {
        let fail = |problem: String| HarnessError::Instance {
            instance: args.name.clone(),
            problem,
        };
        let mut child = Command::new(ingest_binary()?)
            .arg("serve")
            .args(&args.serve)
            .args(["--nats", nats, "--instance", &args.name])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("cannot start `ingest serve`: {e}")))?;
        let stderr = child.stderr.take().ok_or_else(|| fail("no stderr".to_owned()))?;
        let mut log = tokio::fs::File::create(&args.log)
            .await
            .map_err(|e| fail(format!("cannot write {}: {e}", args.log.display())))?;
        let (base_tx, base_rx) = tokio::sync::oneshot::channel();
        // Every line goes to the log, the whole run long, so that the
        // child never blocks on its stderr.
        tokio::spawn(async move {
            let mut base_tx = Some(base_tx);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(base) = line.strip_prefix("serving on ")
                    && let Some(tx) = base_tx.take()
                {
                    let _ = tx.send(base.trim().to_owned());
                }
                let _ = log.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        let base = tokio::time::timeout(READY_WITHIN, base_rx)
            .await
            .map_err(|_| fail(format!("did not say where it serves within {READY_WITHIN:?}")))?
            .map_err(|_| fail(format!("exited before serving; see {}", args.log.display())))?;
        Ok(Self {
            name: args.name.clone(),
            base,
            child,
        })
    }

    /// Sends `signal` (SIGKILL, SIGSTOP, SIGCONT, SIGTERM).
    pub(crate) fn signal(&self, signal: libc::c_int) -> Result<(), HarnessError> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| self.problem("it has exited".to_owned()))?;
        // SAFETY: kill(2) on our own child's pid, which has not been reaped
        // (the Child still holds it), so it names no other process.
        let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
        if sent == 0 {
            Ok(())
        } else {
            Err(self.problem(format!("signal {signal}: {}", std::io::Error::last_os_error())))
        }
    }

    fn problem(&self, problem: String) -> HarnessError {
        HarnessError::Instance {
            instance: self.name.clone(),
            problem,
        }
    }

    /// Waits for it to exit: `None` for exit code 0, else what it ended with.
    pub(crate) async fn wait(&mut self) -> Option<String> {
        match self.child.wait().await {
            Ok(status) if status.success() => None,
            Ok(status) => Some(format!("instance {} ended with {status}", self.name)),
            Err(e) => Some(format!("instance {}: {e}", self.name)),
        }
    }
}

/// The `ingest` binary: `INGEST_BIN`, or the one cargo built beside the
/// running program (`target/<profile>/`, or its parent for a test binary
/// in `deps/`).
pub(crate) fn ingest_binary() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("INGEST_BIN") {
        return Ok(PathBuf::from(path));
    }
    let missing = |problem: String| HarnessError::Instance {
        instance: "(any)".to_owned(),
        problem,
    };
    let exe = std::env::current_exe().map_err(|e| missing(format!("locating the running program: {e}")))?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("ingest"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            missing(format!(
                "the ingest binary is not beside {}: `cargo build -p ingest-cli` builds it (cargo xtask e2e does), or set INGEST_BIN",
                exe.display()
            ))
        })
}

/// Where instance `name` keeps its segments: a folder of its own, as a
/// machine of its own would.
pub(crate) fn out_dir(segments: &Path, name: &str) -> PathBuf {
    segments.join(name)
}
