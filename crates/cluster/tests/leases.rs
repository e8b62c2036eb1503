//! Leases against a real nats-server with JetStream.

use std::time::Duration;

use cluster::testing::NatsServer;
use cluster::{Acquired, ClusterConfig, ClusterError, Lease, LeaseLost, Leases, Renewal};
use tokio::time::Instant;

const SHORT_TTL: Duration = Duration::from_secs(1);

async fn instance(nats: &NatsServer, name: &str, ttl: Duration) -> Leases {
    let mut config = ClusterConfig::new(nats.url(), name);
    config.ttl = ttl;
    Leases::open(config).await.unwrap()
}

fn taken(acquired: Acquired) -> Lease {
    match acquired {
        Acquired::Taken(lease) => lease,
        Acquired::HeldBy(holder) => panic!("held by {}", holder.owner),
    }
}

/// Tries to take `stream` until it is taken, within `deadline`.
async fn take_within(leases: &Leases, stream: &str, deadline: Duration) -> (Lease, Duration) {
    let began = Instant::now();
    let mut ask = tokio::time::interval(Duration::from_millis(50));
    loop {
        ask.tick().await;
        if let Acquired::Taken(lease) = leases.try_acquire(stream).await.unwrap() {
            return (lease, began.elapsed());
        }
        assert!(
            began.elapsed() < deadline,
            "{stream} not taken within {deadline:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_instances_racing_for_a_stream_exactly_one_takes_it() {
    let nats = NatsServer::start().await;
    let a = instance(&nats, "a", SHORT_TTL * 5).await;
    let b = instance(&nats, "b", SHORT_TTL * 5).await;
    for k in 0..10 {
        let stream = format!("race.{k}");
        let (x, y) = tokio::join!(a.try_acquire(&stream), b.try_acquire(&stream));
        let outcomes = [x.unwrap(), y.unwrap()];
        let winners: Vec<&Lease> = outcomes
            .iter()
            .filter_map(|o| match o {
                Acquired::Taken(lease) => Some(lease),
                Acquired::HeldBy(_) => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "{stream}: {outcomes:?}");
        let holder = a.holder(&stream).await.unwrap().unwrap();
        let loser = outcomes.iter().find_map(|o| match o {
            Acquired::HeldBy(h) => Some(h),
            Acquired::Taken(_) => None,
        });
        assert_eq!(loser, Some(&holder), "the loser is told who holds it");
        assert_eq!(winners[0].state().owner, holder.owner);
        assert_eq!(winners[0].state().epoch, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_outlives_its_ttl_and_an_abandoned_one_is_taken_after_it() {
    let nats = NatsServer::start().await;
    let a = instance(&nats, "a", SHORT_TTL).await;
    let b = instance(&nats, "b", SHORT_TTL).await;
    let mut lease = taken(a.try_acquire("cam1").await.unwrap());
    // Renewed for three TTLs: nobody else gets it.
    let until = Instant::now() + SHORT_TTL * 3;
    let mut renew = tokio::time::interval(SHORT_TTL / 5);
    while Instant::now() < until {
        renew.tick().await;
        assert_eq!(lease.renew(&a).await, Ok(Renewal::Renewed));
        assert!(matches!(b.try_acquire("cam1").await.unwrap(), Acquired::HeldBy(h) if h.owner == "a"));
    }
    // Abandoned: b takes it within the TTL (plus its polling), and a,
    // coming back, finds it lost before writing anything.
    let (taken_by_b, waited) = take_within(&b, "cam1", SHORT_TTL * 5).await;
    assert!(
        waited >= SHORT_TTL * 4 / 5 - Duration::from_millis(300),
        "{waited:?}"
    );
    assert!(!lease.is_held());
    assert!(matches!(lease.renew(&a).await, Err(LeaseLost::Expired { .. })));
    assert!(matches!(
        lease.advance(&a, 9, None).await,
        Err(LeaseLost::Expired { .. })
    ));
    let state = taken_by_b.state();
    assert_eq!((state.epoch, state.owner.as_str()), (2, "b"));
    assert_eq!(state.previous_owner.as_deref(), Some("a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_continues_from_the_bucket_and_a_release_frees_the_stream_at_once() {
    let nats = NatsServer::start().await;
    let a = instance(&nats, "a", SHORT_TTL * 5).await;
    let b = instance(&nats, "b", SHORT_TTL * 5).await;
    let mut lease = taken(a.try_acquire("cam.2").await.unwrap());
    lease.advance(&a, 3, Some(18_000_000_000)).await.unwrap();
    lease.advance(&a, 5, Some(30_000_000_000)).await.unwrap();
    lease.release(&a).await.unwrap();
    let next = taken(b.try_acquire("cam.2").await.unwrap());
    assert_eq!(next.state().next_segment, 5);
    assert_eq!(next.state().written_until_ns, Some(30_000_000_000));
    assert_eq!(next.state().epoch, 2);
    assert_eq!(
        b.held().await.unwrap(),
        [("cam.2".to_owned(), b.holder("cam.2").await.unwrap().unwrap())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_owner_s_state_write_is_refused_after_a_takeover() {
    let nats = NatsServer::start().await;
    // A long TTL keeps the stale owner inside its fence: only the
    // compare-and-set can stop it.
    let a = instance(&nats, "a", SHORT_TTL * 30).await;
    let b = instance(&nats, "b", SHORT_TTL * 30).await;
    let mut stale = taken(a.try_acquire("cam3").await.unwrap());
    // The lease is freed behind a's back (as an operator would purge it).
    let holder = a.holder("cam3").await.unwrap();
    assert!(holder.is_some());
    let mut fresh_a = taken_after_purge(&a, &b, "cam3").await;
    fresh_a.advance(&b, 7, None).await.unwrap();
    assert!(stale.is_held());
    assert!(matches!(
        stale.advance(&a, 4, None).await,
        Err(LeaseLost::TakenOver { owner, .. }) if owner == "b"
    ));
    assert!(matches!(stale.renew(&a).await, Err(LeaseLost::TakenOver { .. })));
    assert_eq!(b.state("cam3").await.unwrap().unwrap().next_segment, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_landed_after_it_timed_out_is_not_read_as_a_takeover() {
    let nats = NatsServer::start().await;
    let a = instance(&nats, "a", SHORT_TTL * 30).await;
    let mut lease = taken(a.try_acquire("cam5").await.unwrap());
    lease.advance(&a, 2, None).await.unwrap();
    // What a renewal and a state update that timed out at `a` but reached
    // NATS leave behind: the same records at a newer revision.
    let js = async_nats::jetstream::new(async_nats::connect(a.url()).await.unwrap());
    let leases = js.get_key_value("ingest-leases").await.unwrap();
    leases.put("cam5", r#"{"owner":"a"}"#.into()).await.unwrap();
    let states = js.get_key_value("ingest-leases-state").await.unwrap();
    let landed = states.get("cam5").await.unwrap().unwrap();
    states.put("cam5", landed).await.unwrap();

    assert!(matches!(lease.renew(&a).await, Ok(Renewal::Missed(_))));
    assert_eq!(lease.renew(&a).await, Ok(Renewal::Renewed));
    lease.advance(&a, 3, None).await.unwrap();
    assert_eq!(a.state("cam5").await.unwrap().unwrap().next_segment, 3);

    // Another epoch's state is a takeover still.
    let mut other = a.state("cam5").await.unwrap().unwrap();
    other.epoch += 1;
    states
        .put("cam5", serde_json::to_vec(&other).unwrap().into())
        .await
        .unwrap();
    assert!(matches!(
        lease.advance(&a, 4, None).await,
        Err(LeaseLost::TakenOver { .. })
    ));
}

/// b takes `stream` once its lease key is purged.
async fn taken_after_purge(owner: &Leases, b: &Leases, stream: &str) -> Lease {
    let nats_url = owner_url(owner);
    let client = async_nats::connect(nats_url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let kv = js.get_key_value("ingest-leases").await.unwrap();
    kv.purge(stream).await.unwrap();
    taken(b.try_acquire(stream).await.unwrap())
}

fn owner_url(leases: &Leases) -> String {
    leases.url().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_and_states_survive_a_nats_restart() {
    let mut nats = NatsServer::start().await;
    let a = instance(&nats, "a", SHORT_TTL * 10).await;
    let mut lease = taken(a.try_acquire("cam4").await.unwrap());
    lease.advance(&a, 2, None).await.unwrap();
    nats.restart().await;
    // The client reconnects on its own; the lease is still a's.
    let began = Instant::now();
    loop {
        match lease.renew(&a).await {
            Ok(Renewal::Renewed) => break,
            Ok(Renewal::Missed(_)) => {}
            Err(lost) => panic!("lost over a restart: {lost}"),
        }
        assert!(began.elapsed() < SHORT_TTL * 8, "not renewed after the restart");
    }
    assert_eq!(a.holder("cam4").await.unwrap().unwrap().owner, "a");
    assert_eq!(a.state("cam4").await.unwrap().unwrap().next_segment, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_with_what_was_wrong() {
    let unreachable = ClusterConfig::new("nats://127.0.0.1:1", "a");
    let error = Leases::open(unreachable).await.unwrap_err();
    assert!(
        matches!(&error, ClusterError::Connect { url, .. } if url == "nats://127.0.0.1:1"),
        "{error}"
    );
    let nats = NatsServer::start().await;
    let error = Leases::open(ClusterConfig::new(nats.url(), "a b"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("'a b'"), "{error}");
}
