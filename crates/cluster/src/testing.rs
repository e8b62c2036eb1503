//! A real nats-server with JetStream for tests and the scenario harness
//! (the `testing` feature): its own store folder, a free port, ready once
//! it says so, killed when dropped. Tests of the cluster and of the
//! service's cluster mode use it, and so do the harness's cluster
//! scenarios, which stop it and start it again as a fault.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const READY_WITHIN: Duration = Duration::from_secs(20);

/// A nats-server child process.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts one; panics (this is test support) when it cannot.
    pub async fn start() -> Self {
        Self::try_start().await.expect("starting nats-server")
    }

    /// Starts one, or says why it could not.
    pub async fn try_start() -> io::Result<Self> {
        let store = tempfile::tempdir()?;
        let port = free_port()?;
        let child = spawn(port, store.path()).await?;
        Ok(Self {
            child: Some(child),
            port,
            store,
        })
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (as a crash would); its port and store are kept.
    pub async fn stop(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts it again on its port and store, after `stop`.
    pub async fn start_again(&mut self) -> io::Result<()> {
        self.stop().await?;
        self.child = Some(spawn(self.port, self.store.path()).await?);
        Ok(())
    }

    /// Stops it and starts it again on the same port and store.
    pub async fn restart(&mut self) {
        self.start_again().await.expect("restarting nats-server");
    }
}

fn program() -> io::Result<PathBuf> {
    // Debian installs it in /usr/sbin, which a user's PATH may not hold.
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "nats-server is missing: `cargo xtask deps` installs it",
            )
        })
}

async fn spawn(port: u16, store: &Path) -> io::Result<Child> {
    let mut child = Command::new(program()?)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| io::Error::other("no stderr"))?;
    let mut lines = BufReader::new(stderr).lines();
    let ready = async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("Server is ready") {
                return Ok(());
            }
        }
        Err(io::Error::other("nats-server exited before it was ready"))
    };
    tokio::time::timeout(READY_WITHIN, ready)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "nats-server did not say it was ready"))??;
    // Its later lines are drained so that it never blocks on them.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(child)
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
