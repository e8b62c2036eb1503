//! The `ingest` binary with STS delivery on: its fragment events as JSON
//! lines against the real echo STS peer, and its refusal of bad `sts`
//! settings by name.

// The ingest's and the sts crate's test support, shared rather than copied.
#[path = "../../sts/tests/support/mod.rs"]
mod sts_peer;
#[path = "../../ingest/tests/support/mod.rs"]
mod support;

use media_tools::PublishOptions;
use support::*;

fn ingest_binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_ingest"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_the_fragment_events() {
    let peer = sts_peer::EchoPeer::start(&[]).await;
    let world = World::new();
    let id = world.stream_id("dubbin");
    let fixture = fixture(&small_recipe("binary-8s", 8.0)).await;
    let mut child = ingest_binary()
        .args([
            "--json",
            "--once",
            "--url",
            &world.url(&id),
            "--sts-url",
            &peer.url(),
        ])
        .args(["--sts-target-language", "de", "--out"])
        .arg(world.dir.path().join("out"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    // The ingest runs in its own process, so its reception cannot be
    // watched: the end goes through once ffmpeg is done (only segment
    // counts are checked, which the last frames do not change).
    publisher.publisher.finish_cleanly(DEADLINE).await.unwrap();
    publisher.relay.release();
    let stdout = child.stdout.take().unwrap();
    let (status, lines) = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let lines: Vec<serde_json::Value> = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (child.wait().unwrap(), lines)
    })
    .await
    .unwrap();
    assert!(status.success(), "{lines:#?}");
    let named = |name: &str| lines.iter().filter(|e| e["event"] == name).count();
    let audio = lines
        .iter()
        .filter(|e| e["event"] == "segment_written" && e["kind"] == "audio")
        .count();
    assert_eq!(audio, 2, "{lines:#?}");
    for (name, count) in [
        ("sts_ready", 1),
        ("fragment_sent", audio),
        ("fragment_acked", audio),
        ("fragment_processed", audio),
        ("sts_ended", 1),
    ] {
        assert_eq!(named(name), count, "{name}: {lines:#?}");
    }
    let processed = lines.iter().find(|e| e["event"] == "fragment_processed").unwrap();
    assert_eq!(processed["dubbed_file"], "dubbed_000000.aac");
    assert!(processed["round_trip_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    assert_eq!(lines.last().unwrap()["event"], "finished");
}

/// The `sts` settings are checked before anything connects, naming the
/// setting.
#[test]
fn the_binary_refuses_bad_sts_settings_by_name() {
    let out = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], expected: &[&str]| {
        let output = ingest_binary()
            .args(["--url", "rtmp://127.0.0.1:1/live/a/in", "--out"])
            .arg(out.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "accepted: {stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{stderr:?} should say {text:?}");
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    refused(
        &["--sts-url", "http://127.0.0.1:1", "--sts-format", "opus"],
        &["sts.format", "'aac' or 'pcm_s16le'"],
    );
    refused(&["--sts-target-language", "fr"], &["sts.url"]);
    refused(&["--sts-url", "https://sts:5000"], &["sts.url", "TLS"]);
    // The PCM figures come from the file or INGEST_STS_* (no flags of their own).
    let output = ingest_binary()
        .args(["--url", "rtmp://127.0.0.1:1/live/a/in", "--out"])
        .arg(out.path())
        .env("INGEST_STS_URL", "http://127.0.0.1:1")
        .env("INGEST_STS_FORMAT", "pcm_s16le")
        .env("INGEST_STS_SAMPLE_RATE", "1000000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "accepted: {stderr}");
    assert!(stderr.contains("sts.sample_rate"), "{stderr}");
}
