//! nginx-rtmp, started by the harness (`--server nginx`): a second real
//! server, so that what the suite relies on is not MediaMTX's alone.
//!
//! nginx-rtmp serves only applications named in its configuration, so it is
//! started knowing the run's stream ids (`nginx_conf`), on a free
//! loopback port, in the foreground as a child of the harness (killed with
//! it), its error log in the run folder. It has no Control API and no
//! MediaMTX log lines: the harness then relies on what the ingest reports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::HarnessError;

/// Where Debian's libnginx-mod-rtmp puts the module.
pub(crate) const MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
/// nginx starts in milliseconds; this bounds a machine under load.
const STARTUP: Duration = Duration::from_secs(20);

pub(crate) struct NginxRtmp {
    child: tokio::process::Child,
    port: u16,
    error_log: PathBuf,
}

impl NginxRtmp {
    /// Starts nginx-rtmp in `dir` serving `live/<id>/in` for every id.
    pub(crate) async fn start(dir: &Path, stream_ids: &[String]) -> Result<Self, HarnessError> {
        let failed = |what: String| HarnessError::Server(format!("nginx-rtmp: {what}"));
        if !Path::new(MODULE).exists() {
            return Err(failed(format!(
                "{MODULE} is missing; install it with `apt-get install nginx libnginx-mod-rtmp` (`cargo xtask e2e --server nginx` does as root)"
            )));
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| HarnessError::Io { path, source }
        };
        std::fs::create_dir_all(dir.join("logs")).map_err(io(dir))?;
        let port = free_port().map_err(|e| failed(format!("no free port: {e}")))?;
        let error_log = dir.join("nginx-error.log");
        let conf = dir.join("nginx.conf");
        let text = super::nginx_conf::config(&format!("127.0.0.1:{port}"), MODULE, stream_ids)
            + &format!(
                "pid {};\nerror_log {} info;\n",
                dir.join("nginx.pid").display(),
                error_log.display()
            );
        std::fs::write(&conf, text).map_err(io(&conf))?;
        let child = tokio::process::Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off; master_process off;"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("cannot run nginx: {e}")))?;
        let mut server = Self {
            child,
            port,
            error_log,
        };
        server.listening().await?;
        Ok(server)
    }

    /// Waits until nginx accepts connections (or has exited, saying why).
    async fn listening(&mut self) -> Result<(), HarnessError> {
        let port = self.port;
        let accepts = async {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return;
                }
                // A port is only known open by trying it.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let why = tokio::select! {
            listening = tokio::time::timeout(STARTUP, accepts) => match listening {
                Ok(()) => return Ok(()),
                Err(_) => format!("did not listen within {STARTUP:?}"),
            },
            status = self.child.wait() => format!("exited ({})", status.map(|s| s.to_string()).unwrap_or_default()),
        };
        let log = std::fs::read_to_string(&self.error_log).unwrap_or_default();
        Err(HarnessError::Server(format!(
            "nginx-rtmp {why} before listening on 127.0.0.1:{port}: {}",
            log.lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ")
        )))
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A loopback port nobody listens on now (nginx binds it itself).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
