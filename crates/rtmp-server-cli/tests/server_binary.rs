//! The `rtmp-server` binary, as the stand-in image runs it: configuration
//! from `mediamtx.yml` and `MTX_*` (the environment winning, `--listen`
//! winning over both), MediaMTX's log lines on stdout (which the compose
//! smoke test and the harness read), the Control API, a real ffmpeg
//! publisher, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Generous: the machine may run many tests at once on two cores.
const DEADLINE: Duration = Duration::from_secs(60);

/// The binary's stdout, line by line, as it comes.
struct RunningServer {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl RunningServer {
    fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the rtmp-server binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line (from the start) containing `text`.
    fn wait_for(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?} within {DEADLINE:?}; got {:#?}", self.seen),
            }
        }
    }

    /// The address a `[<proto>] started with listener on ADDR (...)` line names.
    fn listener(&mut self, proto: &str) -> SocketAddr {
        let line = self.wait_for(&format!("INF [{proto}] started with listener on "));
        let address = line
            .split("listener on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        address.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }

    /// SIGTERM, as `docker stop` sends it; the exit status.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.try_iter());
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn server_in(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rtmp-server"));
    // The environment is inherited: under `cargo xtask coverage` it tells
    // the binary where to write its profile.
    command.current_dir(dir);
    command
}

/// A bare HTTP/1.1 GET; the status line and the body.
fn get(api: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(api).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// `2024/05/01 12:00:00 INF ...`: MediaMTX's timestamp, then the level.
fn has_mediamtx_prefix(line: &str) -> bool {
    let bytes = line.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|i| bytes[i].is_ascii_digit());
    line.len() > 24
        && digits(0..4)
        && &line[4..5] == "/"
        && digits(5..7)
        && &line[7..8] == "/"
        && digits(8..10)
        && &line[10..11] == " "
        && digits(11..13)
        && &line[13..14] == ":"
        && digits(14..16)
        && &line[16..17] == ":"
        && digits(17..19)
        && &line[19..24] == " INF "
}

#[test]
fn serves_publishers_and_its_api_as_configured_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Read from the working directory, as MediaMTX does; the environment
    // then moves the RTMP listener off the file's port.
    std::fs::write(
        dir.path().join("mediamtx.yml"),
        "rtmpAddress: \":1\"\napi: yes\napiAddress: 127.0.0.1:0\n",
    )
    .unwrap();
    let mut server = RunningServer::start(server_in(dir.path()).env("MTX_RTMPADDRESS", "127.0.0.1:0"));
    let banner = server.wait_for("a stand-in for MediaMTX 1.20.1");
    assert!(has_mediamtx_prefix(&banner), "{banner:?}");
    server.wait_for("configuration loaded from mediamtx.yml");
    let rtmp = server.listener("RTMP");
    assert_eq!(rtmp.ip().to_string(), "127.0.0.1");
    assert_ne!(
        rtmp.port(),
        0,
        "the line names the port bound, not the one asked for"
    );
    let api = server.listener("API");

    let (status, body) = get(api, "/v3/paths/list");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.contains("\"itemCount\":0"), "{body}");

    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", "20", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30"])
        .args(["-c:a", "aac", "-f", "flv"])
        .arg(format!("rtmp://{rtmp}/live/cov/in"))
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
    // The line the harness waits for before it starts a reader.
    let publishing = server.wait_for("is publishing to path 'live/cov/in'");
    assert!(has_mediamtx_prefix(&publishing), "{publishing:?}");
    let (status, body) = get(api, "/v3/paths/get/live/cov/in");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.contains("\"ready\":true"), "{body}");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();

    let (status, lines) = server.terminate();
    assert!(status.success(), "{status}: {lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("shutting down gracefully")),
        "{lines:#?}"
    );
}

#[test]
fn the_listen_flag_wins_over_the_environment_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("other.yml");
    std::fs::write(&config, "rtmpAddress: \":1\"\napi: yes\n").unwrap();
    let mut server = RunningServer::start(
        server_in(dir.path())
            .args(["--listen", "127.0.0.1:0"])
            .arg(&config)
            .env("MTX_RTMPADDRESS", ":2")
            .env("MTX_API", "no"),
    );
    server.wait_for(&format!("configuration loaded from {}", config.display()));
    let rtmp = server.listener("RTMP");
    assert_eq!(rtmp.ip().to_string(), "127.0.0.1");
    TcpStream::connect(rtmp).expect("the listener named accepts connections");
    let (status, lines) = server.terminate();
    assert!(status.success(), "{status}");
    assert!(
        !lines.iter().any(|l| l.contains("[API]")),
        "MTX_API=no turns the file's API off: {lines:#?}"
    );
}

#[test]
fn a_bad_setting_stops_it_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = server_in(dir.path())
        .env("MTX_READTIMEOUT", "soon")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid readTimeout 'soon'"), "{stderr}");
}
