//! The `ingest` binary as a user runs it: exit codes, event lines, Ctrl-C.

#[path = "../../ingest/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use media_tools::PublishOptions;
use support::*;

fn ingest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ingest"))
}

#[test]
fn a_bad_url_exits_non_zero_with_the_reason() {
    let out = tempfile::tempdir().unwrap();
    let output = ingest()
        .args(["--url", "rtsp://user:secret@cam:8554/live/x", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("requires RTMP"), "{stderr}");
    assert!(!stderr.contains("secret"), "credentials leaked: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Reads the binary's JSON event lines until one satisfies `until`.
fn read_until(
    lines: &mut impl Iterator<Item = String>,
    until: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let done = until(&event);
        seen.push(event);
        if done {
            break;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_zero_when_the_stream_ends_and_ctrl_c_flushes() {
    let world = World::new();
    let fixture = fixture(&small_recipe("binary-8s", 8.0)).await;

    // --once: runs to the end of the stream and exits 0.
    let id = world.stream_id("once");
    let mut child = ingest()
        .args(["--json", "--once", "--url", &world.url(&id), "--out"])
        .arg(world.dir.path().join("once"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    // The ingest runs in its own process, so its reception cannot be
    // watched: the end goes through once ffmpeg is done (only segment
    // counts are checked, which the last frames do not change).
    publisher.publisher.finish_cleanly(DEADLINE).await.unwrap();
    publisher.relay.release();
    let stdout = child.stdout.take().unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let lines: Vec<String> = BufReader::new(stdout).lines().map_while(Result::ok).collect();
        (child.wait().unwrap(), lines)
    })
    .await
    .unwrap();
    assert!(status.0.success(), "{:?}", status.1);
    let written = status
        .1
        .iter()
        .filter(|l| l.contains("\"segment_written\""))
        .count();
    assert_eq!(written, 4, "2 video + 2 audio segments: {:#?}", status.1);

    // Ctrl-C: flushes the partial segment and exits 0.
    let id = world.stream_id("sigint");
    let mut child = ingest()
        .args(["--json", "--url", &world.url(&id), "--out"])
        .arg(world.dir.path().join("sigint"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let _publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    let pid = child.id().to_string();
    let stdout = child.stdout.take().unwrap();
    let (status, events) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        // Once a first pair is written, so both tracks have media in the
        // pair the stop cuts short.
        let mut events = read_until(&mut lines, |e| e["event"] == "segment_written");
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        events.extend(read_until(&mut lines, |e| e["event"] == "finished"));
        (child.wait().unwrap(), events)
    })
    .await
    .unwrap();
    assert!(status.success(), "{events:#?}");
    let partial: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "segment_written" && e["partial"] == true)
        .collect();
    assert_eq!(partial.len(), 2, "a partial video and audio segment: {events:#?}");
}

/// Every way a stream can be named reaches the same rule: a URL whose path
/// is not `APP/ID/STREAM` with a safe id, a bad `INGEST_STREAM_ID`, a
/// config file whose id and URL disagree. Each is refused before anything
/// connects, with a message naming what was wrong.
#[test]
fn bad_stream_names_are_refused_at_every_entry_point() {
    let out = tempfile::tempdir().unwrap();
    let refused = |command: &mut Command, expected: &str| {
        let output = command.arg("--out").arg(out.path()).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "accepted: {stderr}");
        assert!(stderr.contains(expected), "{stderr:?} should name {expected:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    let long = "x".repeat(300);
    for (url, expected) in [
        ("rtmp://127.0.0.1:1/live/../escape/in", "'..'"),
        ("rtmp://127.0.0.1:1/live/a/b/in", "4 part(s)"),
        ("rtmp://127.0.0.1:1/live//in", "empty stream id"),
        ("rtmp://127.0.0.1:1/live/a%00/in", "'%'"),
        ("rtmp://127.0.0.1:1/live/a b/in", "' '"),
        (&format!("rtmp://127.0.0.1:1/live/{long}/in"), "longer than"),
        ("rtmp://127.0.0.1:0/live/a/in", "port 0"),
    ] {
        refused(ingest().args(["--url", url]), expected);
    }
    for id in ["../escape", "a/b", "", " ", "a%00", long.as_str()] {
        refused(ingest().env("INGEST_STREAM_ID", id), "stream id");
    }
    let file = out.path().join("ingest.yaml");
    std::fs::write(&file, "stream_id: ok\nurl: rtmp://127.0.0.1:1/live/escape/in\n").unwrap();
    refused(ingest().arg("--config").arg(&file), "disagree");
    std::fs::write(&file, "stream_id: a\nmax_buffers: many\n").unwrap();
    refused(ingest().arg("--config").arg(&file), ":2:");
    refused(
        ingest()
            .env("INGEST_STREAM_ID", "a")
            .env("INGEST_RECONNECT_INITIAL_DELAY", "0s"),
        "initial_delay",
    );
}

/// `ingest ... | head -1`: the reader of the events goes away; the binary
/// stops the worker and ends without a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_the_binary_cleanly() {
    let world = World::new();
    let id = world.stream_id("pipe");
    let mut child = ingest()
        .args(["--url", &world.url(&id), "--out"])
        .arg(world.dir.path().join("pipe"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the first line (the connecting event), then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("connecting"), "{first}");
    drop(stdout);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
