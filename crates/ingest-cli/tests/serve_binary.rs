//! `ingest serve` as a user runs it: flags, the HTTP address it prints,
//! a stream served, SIGTERM ending it with exit 0, bad settings refused.

#[path = "../../ingest/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use media_tools::PublishOptions;
use rtmp_server::ServerConfig;
use support::*;

fn ingest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ingest"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_the_server_serves_a_stream_and_stops_on_sigterm() {
    let world = World::with_server(ServerConfig::with_api());
    let fixture = fixture(&small_recipe("binary-8s", 8.0)).await;
    let out = world.dir.path().join("served");
    let mut child = ingest()
        .args(["serve", "--rtmp"])
        .arg(format!("rtmp://{}", world.server.local_addr()))
        .arg("--api")
        .arg(format!(
            "http://{}",
            world.server.api_addr().expect("the API is on")
        ))
        .arg("--out")
        .arg(&out)
        .args(["--listen", "127.0.0.1:0", "--poll", "100ms", "--grace", "1s"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut said = Vec::new();
    let mut next_line = async |said: &mut Vec<String>, wanted: &str| -> String {
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.recv().await {
                said.push(line.clone());
                if line.contains(wanted) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!("`ingest serve` never said {wanted:?}: {said:#?}"),
        }
    };
    let serving = next_line(&mut said, "serving on http://").await;
    let base = serving.split("serving on ").nth(1).unwrap().trim().to_owned();

    let id = world.stream_id("serve");
    let mut publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    next_line(&mut said, &format!("stream={id}")).await;
    publisher.publisher.finish_cleanly(DEADLINE).await.unwrap();
    publisher.relay.release();
    next_line(&mut said, "stopping the worker: its stream has gone").await;

    let streams: serde_json::Value = reqwest::get(format!("{base}/v1/streams"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(streams["streams"][0]["id"], id, "{streams}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("dubbing_worker_starts_total 1\n"), "{metrics}");

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    next_line(&mut said, "SIGTERM").await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{said:#?}");
    let manifest = std::fs::read_to_string(out.join(&id).join(ingest::MANIFEST_FILE)).unwrap();
    let written = manifest
        .lines()
        .filter(|l| l.contains("\"record\":\"segment\""))
        .count();
    assert_eq!(written, 4, "2 video + 2 audio segments: {manifest}");
}

#[test]
fn serve_refuses_what_cannot_run_naming_the_setting() {
    for (args, words) in [
        (vec!["--output", "live/{id}/in"], "serve its own output"),
        (vec!["--rtmp", "http://mediamtx:1935"], "rtmp://HOST:PORT"),
        (vec!["--max-streams", "0"], "max_streams"),
        (vec!["--input", "live/in"], "{id}"),
    ] {
        let output = ingest()
            .arg("serve")
            .args(&args)
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
