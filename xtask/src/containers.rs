//! The container paths of the suite, run where a Docker engine answers:
//! the smoke scenarios through testcontainers with the local stand-in
//! image, and the docker-compose stack checked, started, used and removed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::image;

const COMPOSE_FILE: &str = "docker-compose.e2e.yml";
/// MediaMTX's RTMP listener line; the stand-in prints the same.
const READY_LINE: &str = "INF [RTMP] ";
const READY_DEADLINE: Duration = Duration::from_secs(60);

pub fn docker_answers(sh: &Shell) -> bool {
    let format = "{{.Server.Version}}";
    cmd!(sh, "docker version --format {format}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// Smoke scenarios and the conformance checks against the stand-in image
/// through testcontainers.
pub fn testcontainers_smoke(sh: &Shell) -> Result<()> {
    image::build(sh, image::DEFAULT_TAG)?;
    let tag = image::DEFAULT_TAG;
    cmd!(
        sh,
        "cargo run --quiet --locked -p e2e -- --server mediamtx --mediamtx-image {tag} --tag smoke"
    )
    .run()
    .context("smoke scenarios through testcontainers")?;
    crate::conformance::run(sh, "mediamtx", Some(tag), &[])?;
    crash_leaves_nothing_behind(sh, tag)?;
    let leaked = cmd!(sh, "docker ps -aq --filter ancestor={tag}").quiet().read()?;
    if !leaked.trim().is_empty() {
        let ids = leaked.split_whitespace().collect::<Vec<_>>().join(" ");
        bail!("containers of {tag} were left behind; remove them with: docker rm -f {ids}");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `docker-compose config`, then up with the stand-in image on free ports,
/// a smoke scenario against it as an external server, and down. Skipped,
/// saying so, where the Compose tool is not installed.
pub fn compose_smoke(sh: &Shell) -> Result<()> {
    let has_compose = cmd!(sh, "docker-compose version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok();
    if !has_compose {
        eprintln!(
            "skipped: compose smoke test (docker-compose is not installed; apt-get install docker-compose)"
        );
        return Ok(());
    }
    cmd!(sh, "docker-compose -f {COMPOSE_FILE} config -q")
        .run()
        .context("docker-compose.e2e.yml does not validate")?;
    let project = format!("ingest-e2e-{}", std::process::id());
    let rtmp_port = free_port()?.to_string();
    let _env = [
        sh.push_env("MEDIAMTX_IMAGE", image::DEFAULT_TAG),
        sh.push_env("MEDIAMTX_RTMP_PORT", &rtmp_port),
        sh.push_env("MEDIAMTX_API_PORT", free_port()?.to_string()),
        sh.push_env("MEDIAMTX_METRICS_PORT", free_port()?.to_string()),
    ];
    let result = (|| {
        cmd!(sh, "docker-compose -f {COMPOSE_FILE} -p {project} up -d").run()?;
        wait_for_listener(sh, &project)?;
        let server = format!("external=rtmp://127.0.0.1:{rtmp_port}");
        cmd!(
            sh,
            "cargo run --quiet --locked -p e2e -- --server {server} happy-path-fast"
        )
        .run()
        .context("smoke scenario against the compose stack")
    })();
    let down = cmd!(sh, "docker-compose -f {COMPOSE_FILE} -p {project} down --volumes").run();
    result.and(down.map_err(Into::into))
}

/// Follows the stack's logs until the RTMP listener line appears.
fn wait_for_listener(sh: &Shell, project: &str) -> Result<()> {
    let mut logs = Command::new("docker-compose")
        .args(["-f", COMPOSE_FILE, "-p", project, "logs", "-f", "--no-color"])
        .current_dir(sh.current_dir())
        .envs(sh_env(sh))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("following docker-compose logs")?;
    let stdout = logs.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(READY_LINE) {
                let _ = tx.send(());
                return;
            }
        }
    });
    let ready = rx.recv_timeout(READY_DEADLINE);
    let _ = logs.kill();
    let _ = logs.wait();
    ready.map_err(|_| {
        anyhow::anyhow!("the compose stack printed no RTMP listener line within {READY_DEADLINE:?}")
    })
}

fn sh_env(sh: &Shell) -> Vec<(String, String)> {
    [
        "MEDIAMTX_IMAGE",
        "MEDIAMTX_RTMP_PORT",
        "MEDIAMTX_API_PORT",
        "MEDIAMTX_METRICS_PORT",
    ]
    .iter()
    .filter_map(|k| sh.var(k).ok().map(|v| (k.to_string(), v)))
    .collect()
}

/// The label the harness puts on its containers (harness::server::leftovers).
const PID_LABEL: &str = "rtmp-ingest.harness.pid";

/// Follows Docker's event stream for the first start of a container with
/// `label`; `wait` then gives its short id (within [`READY_DEADLINE`]).
struct FirstStart {
    events: std::process::Child,
    started: std::sync::mpsc::Receiver<String>,
}

impl FirstStart {
    fn wait(mut self) -> Result<String> {
        let started = self.started.recv_timeout(READY_DEADLINE);
        let _ = self.events.kill();
        let _ = self.events.wait();
        let id = started
            .map_err(|_| anyhow::anyhow!("no labelled container started within {READY_DEADLINE:?}"))?;
        Ok(id.chars().take(12).collect())
    }
}

fn first_start_of(sh: &Shell, label: &str) -> Result<FirstStart> {
    let mut events = Command::new("docker")
        .args([
            "events",
            "--filter",
            &format!("label={label}"),
            "--filter",
            "event=start",
        ])
        .args(["--format", "{{.ID}}"])
        .current_dir(sh.current_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("following docker events")?;
    let stdout = events.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(Ok(line)) = BufReader::new(stdout).lines().next() {
            let _ = tx.send(line);
        }
    });
    Ok(FirstStart { events, started: rx })
}

/// `kill -9` of a container-backed run, then another run: it must remove
/// the container the killed one left and say so.
fn crash_leaves_nothing_behind(sh: &Shell, tag: &str) -> Result<()> {
    let e2e = "target/debug/e2e";
    cmd!(sh, "cargo build --quiet --locked -p e2e").run()?;
    // Listening before the run starts, so its container's start is heard.
    let first_start = first_start_of(sh, PID_LABEL)?;
    let mut victim = Command::new(e2e)
        .args([
            "--server",
            "mediamtx",
            "--mediamtx-image",
            tag,
            "happy-path-realtime",
        ])
        .current_dir(sh.current_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the run to be killed")?;
    let pid = victim.id();
    let container = match first_start.wait() {
        Ok(id) => id,
        Err(e) => {
            let _ = victim.kill();
            return Err(e);
        }
    };
    victim.kill().context("kill -9 of the run")?;
    let _ = victim.wait();
    let output = Command::new(e2e)
        .args(["--server", "mediamtx", "--mediamtx-image", tag, "invalid-url"])
        .current_dir(sh.current_dir())
        .output()
        .context("the run after the crash")?;
    let said = String::from_utf8_lossy(&output.stderr);
    let left = cmd!(sh, "docker ps -aq --filter id={container}").quiet().read()?;
    if !left.trim().is_empty() || !said.contains(&format!("removed container {container}")) {
        let _ = cmd!(sh, "docker rm -f {container}").quiet().run();
        bail!("the run after a kill -9 did not remove container {container} and say so; it said: {said}");
    }
    eprintln!("crash clean-up: the next run removed container {container} of killed run {pid}");
    Ok(())
}
