//! What the sts tests and benchmark share: the echo STS peer
//! (`tools/sts-echo/echo.py`) as a child process, its Python environment,
//! test segments made by ffmpeg, a PCM decoder on ffmpeg, and event
//! collection with deadlines.
//!
//! Nothing here sleeps to wait: the peer is ready when it prints its port,
//! a peer record is awaited as it is printed, and client events are read
//! until `stream_ended`, each wait bounded by a deadline.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use sts::{
    DecodeError, EndSummary, Fragment, PcmDecoder, PcmRequest, ReconnectPolicy, StsConfig, StsEvent, Timeouts,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

const STARTUP_DEADLINE: Duration = Duration::from_secs(60);
pub const DEADLINE: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// `target/`, wherever cargo put it (`CARGO_TARGET_TMPDIR` is `target/tmp`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .to_owned()
}

/// The venv's python, made on first use: `cargo xtask` makes the same one
/// (`xtask/src/sts_peer.rs`, same folder, same stamp), whichever comes first.
pub fn peer_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(ensure_venv).clone()
}

fn ensure_venv() -> PathBuf {
    let requirements_path = workspace_root().join("tools/sts-echo/requirements.txt");
    let requirements = std::fs::read_to_string(&requirements_path).expect("tools/sts-echo/requirements.txt");
    let target = target_dir();
    let venv = target.join("sts-echo-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements.txt");
    let ready = || python.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == requirements);
    if ready() {
        return python;
    }
    // Test binaries run in parallel: one builds, the others wait on the lock.
    std::fs::create_dir_all(&target).expect("target dir");
    let lock = File::create(target.join("sts-echo-venv.lock")).expect("lock file");
    lock.lock().expect("lock the venv");
    if !ready() {
        eprintln!("creating {} (python3 -m venv, pip install)", venv.display());
        run(
            std::process::Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg("--clear")
                .arg(&venv),
            "python3 -m venv (on Debian: apt-get install python3-venv)",
        );
        run(
            std::process::Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements_path),
            "pip install -r tools/sts-echo/requirements.txt",
        );
        std::fs::write(&stamp, &requirements).expect("venv stamp");
    }
    python
}

fn run(command: &mut std::process::Command, what: &str) {
    let status = command.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// A running echo peer; killed when dropped (and it exits by itself if this
/// process dies, through `--exit-with-stdin`).
pub struct EchoPeer {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    records: Arc<Mutex<Vec<Value>>>,
    changed: watch::Receiver<usize>,
    _dir: tempfile::TempDir,
}

impl EchoPeer {
    pub async fn start(args: &[&str]) -> EchoPeer {
        let python = peer_python();
        let dir = tempfile::tempdir().expect("peer dir");
        let log = dir.path().join("peer.log");
        let stderr = File::create(dir.path().join("peer.stderr")).expect("peer stderr");
        let mut child = Command::new(python)
            .arg(workspace_root().join("tools/sts-echo/echo.py"))
            .args(args)
            .arg("--exit-with-stdin")
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the echo peer");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = tokio::time::timeout(STARTUP_DEADLINE, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("the echo peer printed nothing within {STARTUP_DEADLINE:?}"))
            .expect("read the echo peer's stdout")
            .unwrap_or_else(|| {
                let err = std::fs::read_to_string(dir.path().join("peer.stderr")).unwrap_or_default();
                panic!("the echo peer exited before listening:\n{err}")
            });
        let port = first
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the echo peer: {first:?}"));
        let records = Arc::new(Mutex::new(Vec::new()));
        let (tx, changed) = watch::channel(0);
        let sink = records.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let record: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer line {line:?}: {e}"));
                let count = {
                    let mut records = sink.lock().unwrap();
                    records.push(record);
                    records.len()
                };
                let _ = tx.send(count);
            }
        });
        EchoPeer {
            child,
            port,
            log,
            records,
            changed,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for the first record matching `wanted`.
    pub async fn wait_for(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(record) = self.records.lock().unwrap().iter().find(|r| wanted(r)) {
                    return record.clone();
                }
                self.changed
                    .changed()
                    .await
                    .expect("the echo peer's stdout closed");
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("the echo peer never recorded {what} within {DEADLINE:?}"))
    }

    /// Every record of the `--log` file, as the peer wrote them.
    pub fn log_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
    }

    /// The `fragment` records (one per fragment:data received).
    pub fn received(&self) -> Vec<Value> {
        self.log_records()
            .into_iter()
            .filter(|r| r["event"] == "fragment")
            .collect()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The tests' configuration: quick backoff, generous deadlines.
pub fn config(url: &str) -> StsConfig {
    StsConfig {
        reconnect: ReconnectPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..StsConfig::default().reconnect
        },
        timeouts: Timeouts {
            fragment: Duration::from_secs(30),
            end: Duration::from_secs(30),
            ..Timeouts::default()
        },
        ..StsConfig::new(url)
    }
}

/// A 6-s AAC-in-MPEG-TS segment as the ingest writes them, made by ffmpeg
/// once per `variant` (a different tone each) and cached under target/tmp.
pub fn fixture(variant: u32) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sts-fixtures");
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let path = dir.join(format!("sine-{variant}-6s.ts"));
    if path.exists() {
        return path;
    }
    // Unique per process and call: parallel tests may make the same variant.
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".sine-{variant}-{}-{n}.ts", std::process::id()));
    let source = format!(
        "sine=frequency={}:duration=6:sample_rate=48000",
        300 + 100 * variant
    );
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &source,
        ])
        .args(["-ac", "2", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts"])
        .arg(&temp)
        .status()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed to make {}", path.display());
    // Renamed into place so a parallel test never reads half a file.
    std::fs::rename(&temp, &path).expect("rename fixture");
    path
}

/// `count` segments `audio_NNNNNN.ts` in `dir`, each a distinct fixture.
pub fn segments(dir: &Path, count: u64) -> Vec<Fragment> {
    (0..count)
        .map(|seq| {
            let path = dir.join(format!("audio_{seq:06}.ts"));
            std::fs::copy(fixture((seq % 8) as u32), &path).expect("copy fixture");
            Fragment {
                sequence_number: seq,
                path,
                start: Duration::from_secs(6 * seq),
                duration: Duration::from_secs(6),
                pts_ns: 6_000_000_000 * seq,
            }
        })
        .collect()
}

/// Ends the stream within the deadline and returns every event it emitted.
pub async fn end_and_collect(
    handle: sts::StsHandle,
    mut events: UnboundedReceiver<StsEvent>,
) -> (EndSummary, Vec<StsEvent>) {
    let summary = tokio::time::timeout(DEADLINE, handle.end())
        .await
        .unwrap_or_else(|_| panic!("end() did not return within {DEADLINE:?}"));
    let mut all = Vec::new();
    while let Some(event) = events.recv().await {
        all.push(event);
    }
    assert!(
        matches!(all.last(), Some(StsEvent::StreamEnded(_))),
        "the last event is stream_ended: {all:#?}"
    );
    (summary, all)
}

pub fn processed(events: &[StsEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            StsEvent::FragmentProcessed { sequence_number, .. } => Some(*sequence_number),
            _ => None,
        })
        .collect()
}

pub fn failed(events: &[StsEvent]) -> Vec<(u64, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            StsEvent::FragmentFailed {
                sequence_number,
                reason,
                ..
            } => Some((*sequence_number, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Most fragments sent and not yet settled at any point, from the events.
pub fn max_in_flight(events: &[StsEvent]) -> usize {
    let mut in_flight = std::collections::BTreeSet::new();
    let mut max = 0;
    for event in events {
        match event {
            StsEvent::FragmentSent { sequence_number, .. } => {
                in_flight.insert(*sequence_number);
            }
            StsEvent::FragmentProcessed { sequence_number, .. }
            | StsEvent::FragmentFailed { sequence_number, .. } => {
                in_flight.remove(sequence_number);
            }
            StsEvent::Disconnected { .. } => in_flight.clear(),
            _ => {}
        }
        max = max.max(in_flight.len());
    }
    max
}

/// What ffprobe says of the first audio stream of `path`.
pub async fn audio_of(path: &Path) -> media_tools::StreamReport {
    let report = media_tools::probe(path)
        .await
        .unwrap_or_else(|e| panic!("ffprobe {}: {e}", path.display()));
    report
        .stream("audio")
        .unwrap_or_else(|| panic!("no audio stream in {}: {report:?}", path.display()))
        .clone()
}

/// The tests' [`PcmDecoder`]: ffmpeg, segment on stdin, PCM on stdout. The
/// sts crate links no media framework, so its PCM path is tested with this
/// one; the ingest's GStreamer decoder is tested in the ingest.
pub struct FfmpegDecoder;

impl PcmDecoder for FfmpegDecoder {
    fn decode(&self, segment: Vec<u8>, request: PcmRequest) -> Result<Vec<u8>, DecodeError> {
        use std::io::Write;
        let mut child = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-f", "mpegts", "-i", "pipe:0"])
            .args(["-f", "s16le", "-c:a", "pcm_s16le"])
            .args(["-ar", &request.sample_rate_hz.to_string()])
            .args(["-ac", &request.channels.to_string(), "pipe:1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        // Written from another thread: ffmpeg's stdout must be read meanwhile.
        let feeder = std::thread::spawn(move || stdin.write_all(&segment));
        let output = child.wait_with_output()?;
        let _ = feeder.join();
        if !output.status.success() {
            return Err(format!("ffmpeg: {}", String::from_utf8_lossy(&output.stderr).trim()).into());
        }
        Ok(output.stdout)
    }
}
