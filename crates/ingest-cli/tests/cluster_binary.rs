//! Two `ingest serve` processes sharing their streams through a real
//! nats-server: the owner of a stream is killed with SIGKILL mid-stream and
//! the other takes the stream over once the lease expires, numbering on
//! (past the segment the killed owner was writing), no segment written
//! twice.

#[path = "../../ingest/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster::testing::NatsServer;
use media_tools::PublishOptions;
use rtmp_server::ServerConfig;
use support::*;

/// One `ingest serve` in the cluster, and the HTTP base it said.
struct Instance {
    child: Child,
    base: String,
}

fn start(world: &World, nats: &NatsServer, name: &str) -> Instance {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .args(["serve", "--rtmp"])
        .arg(format!("rtmp://{}", world.server.local_addr()))
        .arg("--api")
        .arg(format!(
            "http://{}",
            world.server.api_addr().expect("the API is on")
        ))
        .arg("--out")
        .arg(world.dir.path().join(format!("out-{name}")))
        .args(["--listen", "127.0.0.1:0", "--poll", "100ms", "--output", ""])
        .args(["--nats", &nats.url(), "--instance", name, "--lease-ttl", "2s"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines().map_while(Result::ok);
    let serving = lines
        .by_ref()
        .find(|l| l.contains("serving on http://"))
        .expect("`ingest serve` says where it serves");
    // The rest is drained so that the child never blocks on its stderr.
    std::thread::spawn(move || lines.for_each(drop));
    let base = serving.split("serving on ").nth(1).unwrap().trim().to_owned();
    Instance { child, base }
}

async fn stream_state(base: &str, id: &str) -> Option<(String, u64)> {
    let view: serde_json::Value = reqwest::get(format!("{base}/v1/streams"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let stream = view["streams"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == id)?
        .clone();
    Some((
        stream["state"].as_str()?.to_owned(),
        stream["segments"]["video"].as_u64().unwrap_or(0),
    ))
}

/// Asks `base` until its stream `id` is running with `segments` written.
async fn wait_serving(base: &str, id: &str, segments: u64) {
    tokio::time::timeout(DEADLINE, async {
        let mut ask = tokio::time::interval(Duration::from_millis(50));
        loop {
            ask.tick().await;
            if let Some((state, written)) = stream_state(base, id).await
                && state == "running"
                && written >= segments
            {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{base} never served {id} with {segments} segments"));
}

fn video_segments(world: &World, name: &str, id: &str) -> Vec<u64> {
    let path = world
        .dir
        .path()
        .join(format!("out-{name}"))
        .join(id)
        .join(ingest::MANIFEST_FILE);
    ingest::Manifest::read(&path)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e {
            ingest::ManifestEntry::Segment(s) if s.kind == ingest::MediaKind::Video => Some(s.index),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owner_s_stream_is_taken_over_and_numbered_on() {
    let nats = NatsServer::start().await;
    let world = World::with_server(ServerConfig::with_api());
    let fixture = fixture(&small_recipe("cluster-kill-30s", 30.0)).await;
    let mut instances = [start(&world, &nats, "a"), start(&world, &nats, "b")];
    let id = world.stream_id("kill");
    let mut publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;

    let mut owner = None;
    tokio::time::timeout(DEADLINE, async {
        let mut ask = tokio::time::interval(Duration::from_millis(50));
        while owner.is_none() {
            ask.tick().await;
            for (k, instance) in instances.iter().enumerate() {
                if stream_state(&instance.base, &id)
                    .await
                    .is_some_and(|(s, _)| s == "running")
                {
                    owner = Some(k);
                }
            }
        }
    })
    .await
    .expect("an instance serves the stream");
    let owner = owner.unwrap();
    let other = 1 - owner;
    let names = ["a", "b"];
    wait_serving(&instances[owner].base, &id, 1).await;

    instances[owner].child.kill().unwrap();
    instances[owner].child.wait().unwrap();
    wait_serving(&instances[other].base, &id, 1).await;

    // The whole assignment, as an operator asks for it.
    let status = Command::new(env!("CARGO_BIN_EXE_ingest"))
        .args(["cluster", "status", "--json", "--nats", &nats.url()])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let line = String::from_utf8_lossy(&status.stdout)
        .lines()
        .find(|l| l.contains(&id))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .expect("the stream is listed");
    assert_eq!(line["served_by"], names[other], "{line}");
    assert_eq!(line["previous_owner"], names[owner], "{line}");
    assert_eq!(line["epoch"], 2, "{line}");

    publisher.publisher.finish_cleanly(DEADLINE).await.unwrap();
    publisher.relay.release();
    let pid = instances[other].child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(instances[other].child.wait().unwrap().success());

    let first = video_segments(&world, names[owner], &id);
    let second = video_segments(&world, names[other], &id);
    assert!(
        !first.is_empty() && !second.is_empty(),
        "{first:?} then {second:?}"
    );
    // The killed owner had reserved the segment it was writing when it
    // died: the new owner numbers on past it, never over it.
    let last = *first.last().unwrap();
    assert!(
        second[0] == last + 1 || second[0] == last + 2,
        "{first:?} then {second:?}: numbering goes on past the killed owner's last segment, skipping at most the one it was writing"
    );
    let both: BTreeSet<&u64> = first
        .iter()
        .collect::<BTreeSet<_>>()
        .intersection(&second.iter().collect())
        .copied()
        .collect();
    assert!(both.is_empty(), "segments written by both owners: {both:?}");
}
