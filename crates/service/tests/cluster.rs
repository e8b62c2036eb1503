//! Two services sharing their streams through a real nats-server, in front
//! of the embedded server with a real ffmpeg publisher: one serves each
//! stream, the other waits; a drained owner hands the stream over and the
//! numbering continues on the other instance.

mod support;

use std::time::Duration;

use cluster::testing::NatsServer;
use service::{ClusterSettings, ServiceConfig, StreamsView};
use support::*;

const TTL: Duration = Duration::from_secs(2);

fn instance(world: &World, nats: &NatsServer, name: &str) -> ServiceConfig {
    let mut config = world.config(None);
    // Each instance writes to its own disk, as on its own machine.
    config.out = world.dir.path().join(format!("out-{name}"));
    config.output = String::new();
    config.cluster = Some(ClusterSettings {
        nats: nats.url(),
        instance: name.to_owned(),
        lease_ttl: TTL,
    });
    config
}

fn state_of<'a>(view: &'a StreamsView, id: &str) -> Option<&'a str> {
    view.streams.iter().find(|s| s.id == id).map(|s| s.state.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_serves_a_stream_and_a_drained_one_hands_it_over_with_its_numbering() {
    let nats = NatsServer::start().await;
    let world = World::new();
    let media = fixture(&small_recipe("cluster-24s", 24.0)).await;
    let mut a = Running::start(instance(&world, &nats, "a")).await;
    let mut b = Running::start(instance(&world, &nats, "b")).await;
    let id = world.stream_id("clu");
    let _publisher = world.publish_plain(&media, &format!("live/{id}/in")).await;

    // One runs it, the other says who does.
    let running = |v: &StreamsView| state_of(v, &id) == Some("running");
    let elsewhere = |v: &StreamsView| state_of(v, &id) == Some("elsewhere");
    let decided = tokio::time::timeout(DEADLINE, async {
        let mut ask = tokio::time::interval(Duration::from_millis(50));
        loop {
            ask.tick().await;
            let (va, vb) = (a.streams().await, b.streams().await);
            assert!(!(running(&va) && running(&vb)), "both serve {id}");
            if running(&va) && elsewhere(&vb) {
                return "a";
            }
            if running(&vb) && elsewhere(&va) {
                return "b";
            }
        }
    })
    .await
    .expect("one instance serves the stream and the other knows it");
    let (owner, other, owner_name, other_name) = match decided {
        "a" => (&mut a, &mut b, "a", "b"),
        _ => (&mut b, &mut a, "b", "a"),
    };
    let waiting = other.stream(&id).await.expect("listed");
    assert_eq!(waiting.served_by.as_deref(), Some(owner_name));
    owner
        .wait_for("the owner's first segment", |v| {
            v.streams.iter().any(|s| s.id == id && s.segments.video >= 1)
        })
        .await;

    // Drained (SIGTERM): the other takes the stream and goes on numbering.
    owner.stop().await;
    other.wait_for("the other instance serving it", running).await;
    other
        .wait_for("the other instance's first segment", |v| {
            v.streams.iter().any(|s| s.id == id && s.segments.video >= 1)
        })
        .await;
    other.stop().await;

    let before = manifest(&world.dir.path().join(format!("out-{owner_name}")).join(&id));
    let after = manifest(&world.dir.path().join(format!("out-{other_name}")).join(&id));
    let first = segments(&before, "video");
    let second = segments(&after, "video");
    assert!(
        !first.is_empty() && !second.is_empty(),
        "{first:?} then {second:?}"
    );
    assert_eq!(
        second[0],
        first.last().unwrap() + 1,
        "numbering continues: {first:?} then {second:?}"
    );

    // The new owner's manifest says whose stream it took, and what it could
    // not receive: from where the last segment written before ended.
    let takeover = after
        .iter()
        .find(|r| r["record"] == "takeover")
        .expect("a takeover record");
    assert_eq!(takeover["from"], owner_name, "{takeover}");
    assert_eq!(takeover["first_segment"], second[0], "{takeover}");
    let last = before
        .iter()
        .rev()
        .find(|r| r["record"] == "segment" && r["kind"] == "video")
        .expect("a segment before");
    let written_until =
        (last["pts_ns"].as_u64().unwrap() as f64 + last["duration_s"].as_f64().unwrap() * 1e9) / 1e9;
    let join = after
        .iter()
        .find(|r| r["record"] == "connection")
        .expect("a connection record");
    let from = join["not_received"]["from_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("a gap stated: {join} after {last}"));
    assert!((from - written_until).abs() < 0.001, "{join} vs {written_until}");
}

/// Streams that appear together wait in each instance's queue of claims,
/// one claim out at a time, each behind a bid; a stream served elsewhere
/// is claimed again every tenth of the TTL. While a stream waits for its
/// claim it runs only on its owner: `/v1/streams` says `claiming` then,
/// never `running` on two instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_being_claimed_again_is_never_shown_running_on_two_instances() {
    const STREAMS: usize = 4;
    let nats = NatsServer::start().await;
    let world = World::new();
    let media = fixture(&small_recipe("cluster-24s", 24.0)).await;
    let mut a = Running::start(instance(&world, &nats, "a")).await;
    let mut b = Running::start(instance(&world, &nats, "b")).await;
    let ids: Vec<String> = (0..STREAMS).map(|_| world.stream_id("reclaim")).collect();
    let mut publishers = Vec::new();
    for id in &ids {
        publishers.push(world.publish_plain(&media, &format!("live/{id}/in")).await);
    }
    let running_on = |v: &StreamsView, id: &str| state_of(v, id) == Some("running");

    // Watched over twenty rounds of claiming again, from when every stream
    // runs on one of the two; both instances serve streams, so each waits
    // before its bids.
    let watch = (TTL / 10) * 20;
    let mut claiming_seen = 0;
    let mut decided_at = None;
    let mut ask = tokio::time::interval(Duration::from_millis(20));
    tokio::time::timeout(DEADLINE, async {
        while decided_at.is_none_or(|at: std::time::Instant| at.elapsed() < watch) {
            ask.tick().await;
            let (va, vb) = (a.streams().await, b.streams().await);
            for id in &ids {
                assert!(
                    !(running_on(&va, id) && running_on(&vb, id)),
                    "both show {id} running"
                );
                claiming_seen += [&va, &vb]
                    .iter()
                    .filter(|v| state_of(v, id) == Some("claiming"))
                    .count();
            }
            if decided_at.is_none() && ids.iter().all(|id| running_on(&va, id) || running_on(&vb, id)) {
                decided_at = Some(std::time::Instant::now());
            }
        }
    })
    .await
    .expect("every stream runs on one instance");
    assert!(claiming_seen > 0, "a claim again was seen as it happened");
    drop(publishers);
    a.stop().await;
    b.stop().await;
}
