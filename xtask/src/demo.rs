//! `cargo xtask demo`: the service working, in one command. It starts the
//! embedded server (MediaMTX's behaviour and API, on free ports), the echo
//! STS answering a tone in place of the speech, `ingest serve`, and a live
//! encoder (ffmpeg from a test pattern with a 440-Hz tone) publishing
//! `live/demo/in`, then prints where to watch the dubbed stream and the
//! metrics. Ctrl-C (or `--for`) stops them all, the service gracefully.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use xshell::{Shell, cmd};

/// Each part says where it listens within this.
const STARTUP: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct Demo {
    /// Stop after this long (e.g. 60s) instead of waiting for Ctrl-C
    #[arg(long, value_parser = parse_seconds)]
    r#for: Option<Duration>,
    /// The stream id published
    #[arg(long, default_value = "demo")]
    id: String,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.trim_end_matches('s')
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("'{text}' is not a number of seconds (e.g. 60s): {e}"))
}

/// A child whose output lines arrive on a channel.
struct Part {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Part {
    fn start(name: &'static str, command: &mut Command, log: &Path) -> Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        let (tx, lines) = mpsc::channel();
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        for pipe in [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            let mut log = log.try_clone()?;
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    use std::io::Write;
                    let _ = writeln!(log, "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        Ok(Self { name, child, lines })
    }

    /// The part of the first line containing `marker` that follows it.
    fn wait_for(&self, marker: &str) -> Result<String> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once(marker) {
                        return Ok(rest.trim().to_owned());
                    }
                }
                Err(_) => bail!("the {} did not say `{marker}` within {STARTUP:?}", self.name),
            }
        }
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `:PORT` or `HOST:PORT` as MediaMTX prints a listener, as a port.
fn port_of(listener: &str) -> Result<u16> {
    let address = listener.split_whitespace().next().unwrap_or_default();
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in `{listener}`"))
}

impl Demo {
    pub fn run(self, sh: &Shell) -> Result<()> {
        cmd!(sh, "cargo build --quiet -p rtmp-server-cli -p ingest-cli")
            .run()
            .context("building the server and the service")?;
        let python = crate::sts_peer::ensure_echo_peer(sh)?;
        let root = sh.current_dir();
        // Each demo starts afresh: a new stream, numbered from 0.
        let dir = root.join("target/demo");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)?;
        // Ctrl-C reaches every part (one process group); this one waits
        // for them to finish instead of dying first.
        crate::e2e::wait_through_ctrl_c();

        let server = Part::start(
            "embedded server",
            Command::new(root.join("target/debug/rtmp-server"))
                .args(["--listen", "127.0.0.1:0"])
                .env("MTX_API", "yes")
                .env("MTX_APIADDRESS", "127.0.0.1:0"),
            &dir.join("server.log"),
        )?;
        let rtmp = port_of(&server.wait_for("[RTMP] started with listener on ")?)?;
        let api = port_of(&server.wait_for("[API] started with listener on ")?)?;
        let sts = Part::start(
            "echo STS",
            Command::new(&python)
                .arg(root.join("tools/sts-echo/echo.py"))
                .args(["--tone-hz", "1000"]),
            &dir.join("sts.log"),
        )?;
        let sts_port = sts.wait_for("listening on 127.0.0.1:")?;
        let service = Part::start(
            "service",
            Command::new(root.join("target/debug/ingest"))
                .arg("serve")
                .arg("--rtmp")
                .arg(format!("rtmp://127.0.0.1:{rtmp}"))
                .arg("--api")
                .arg(format!("http://127.0.0.1:{api}"))
                .arg("--out")
                .arg(dir.join("segments"))
                .args(["--listen", "127.0.0.1:0", "--sts-url"])
                .arg(format!("http://127.0.0.1:{sts_port}")),
            &dir.join("service.log"),
        )?;
        let http = service.wait_for("serving on ")?;
        let input = format!("rtmp://127.0.0.1:{rtmp}/live/{}/in", self.id);
        let _encoder = Part::start(
            "encoder",
            Command::new("ffmpeg").args([
                "-v",
                "error",
                "-nostdin",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-tune",
                "zerolatency",
                "-g",
                "60",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-f",
                "flv",
                &input,
            ]),
            &dir.join("encoder.log"),
        )?;
        println!(
            "\nThe live-dubbing service is running:\n\
             \x20 input (ffmpeg, a test pattern and a 440-Hz tone): {input}\n\
             \x20 dubbed output, a tone of 1000 Hz in place of the 440-Hz one, {} s behind:\n\
             \x20   ffplay rtmp://127.0.0.1:{rtmp}/live/{}/out\n\
             \x20 metrics: {http}/metrics\n\
             \x20 streams: {http}/v1/streams\n\
             \x20 segments and manifest: {}\n\
             \x20 logs: {}\n\
             Ctrl-C stops it.",
            9,
            self.id,
            dir.join("segments").join(&self.id).display(),
            dir.display()
        );
        self.wait_then_stop(service)
    }

    /// Waits for Ctrl-C (which the service gets too) or `--for`, then
    /// waits for the service's graceful stop.
    fn wait_then_stop(&self, mut service: Part) -> Result<()> {
        if let Some(duration) = self.r#for {
            let end = Instant::now() + duration;
            while Instant::now() < end {
                if service.child.try_wait()?.is_some() {
                    break;
                }
                // A bounded run, not a wait for an event: the user asked
                // for this long.
                std::thread::sleep(Duration::from_millis(200));
            }
            let pid = service.child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
        let status = service.child.wait()?;
        println!("the service stopped ({status}); its log is target/demo/service.log");
        Ok(())
    }
}
