//! Faults against the real echo STS peer: a dropped connection, an STS
//! refusing at start, one down for the whole stream, session-level errors
//! and malformed messages. Each must end with every fragment accounted for
//! exactly once, on time, without a panic.

mod support;

use std::time::{Duration, Instant};

use sts::{ReconnectPolicy, StsClient, StsConfig, StsEvent, SubmitError, Timeouts};
use support::{EchoPeer, config, end_and_collect, failed, max_in_flight, processed, segments};

fn disconnects(events: &[StsEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            StsEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn sessions(events: &[StsEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, StsEvent::SessionReady { .. }))
        .count()
}

/// The fragment ids the peer received more than once, and whether every
/// sequence number kept one id.
fn resent(peer: &EchoPeer) -> Vec<u64> {
    let mut ids = std::collections::BTreeMap::<u64, Vec<String>>::new();
    for record in peer.received() {
        ids.entry(record["sequence_number"].as_u64().unwrap())
            .or_default()
            .push(record["fragment_id"].as_str().unwrap().to_owned());
    }
    for (seq, ids) in &ids {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "sequence {seq} was sent under two ids: {ids:?}"
        );
    }
    ids.into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(seq, _)| seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resends_the_unanswered_with_the_same_ids() {
    let peer = EchoPeer::start(&["--drop-after", "3", "--delay-ms", "100"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "drop", "w").unwrap();
    for fragment in segments(dir.path(), 6) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    let mut done = processed(&events);
    done.sort_unstable();
    assert_eq!(
        done,
        [0, 1, 2, 3, 4, 5],
        "nothing lost, nothing recorded twice: {events:#?}"
    );
    assert_eq!((summary.processed, summary.failed), (6, 0));
    assert_eq!(disconnects(&events).len(), 1);
    assert_eq!(sessions(&events), 2);
    assert!(max_in_flight(&events) <= 3);
    // The fragments in flight at the drop (0, 1 being processed, 2 the one
    // that triggered it) went again, under the same ids.
    assert_eq!(resent(&peer), [0, 1, 2]);
    let resends = events
        .iter()
        .filter(|e| matches!(e, StsEvent::FragmentSent { attempt: 2, .. }))
        .count();
    assert_eq!(resends, 3);
    for seq in 0..6 {
        assert!(dir.path().join(format!("dubbed_{seq:06}.aac")).exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sts_refusing_at_first_is_retried_with_backoff() {
    let peer = EchoPeer::start(&["--refuse-connections", "2"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "late", "w").unwrap();
    for fragment in segments(dir.path(), 3) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!(summary.processed, 3);
    let refusals: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StsEvent::ConnectFailed {
                attempt,
                reason,
                retry_in_ms,
            } => Some((*attempt, reason.clone(), *retry_in_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(refusals.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
    assert!(
        refusals[0].1.contains("refused by --refuse-connections"),
        "{}",
        refusals[0].1
    );
    // 20 ms then 40 ms, ±20 % jitter.
    assert!(
        (16..=24).contains(&refusals[0].2) && (32..=48).contains(&refusals[1].2),
        "{refusals:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sts_down_for_the_whole_stream_fails_everything_on_time() {
    // Held to the test's end: the STS stays down, and no other test takes the port.
    let down = media_tools::RefusingPort::bind().unwrap();
    let url = down.http_url();
    let dir = tempfile::tempdir().unwrap();
    let config = StsConfig {
        max_queue: 3,
        reconnect: ReconnectPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            ..StsConfig::default().reconnect
        },
        timeouts: Timeouts {
            fragment: Duration::from_secs(1),
            end: Duration::from_secs(3),
            ..Timeouts::default()
        },
        ..StsConfig::new(url)
    };
    let started = Instant::now();
    let (sts, events) = StsClient::start(config, "down", "w").unwrap();
    let results: Vec<_> = segments(dir.path(), 5)
        .into_iter()
        .map(|f| sts.submit(f))
        .collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(
        results[3..]
            .iter()
            .all(|r| *r == Err(SubmitError::QueueFull { max_queue: 3 }))
    );
    let (summary, events) = end_and_collect(sts, events).await;
    let took = started.elapsed();

    assert!(
        took < Duration::from_secs(3),
        "ended in {took:?}; the fragment timeout is 1 s"
    );
    assert_eq!(
        (
            summary.processed,
            summary.failed,
            summary.not_sent,
            summary.stream_end_sent
        ),
        (0, 3, 2, false)
    );
    let failures = failed(&events);
    assert_eq!(failures.iter().map(|f| f.0).collect::<Vec<_>>(), [0, 1, 2]);
    for (seq, reason) in &failures {
        assert!(
            reason.contains("never sent") && reason.contains("unreachable") && reason.contains("websocket"),
            "{seq}: {reason}"
        );
    }
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StsEvent::ConnectFailed { attempt, .. } if *attempt >= 3))
    );
    assert_eq!(sessions(&events), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_closes_the_session_and_the_fragment_goes_again() {
    let peer = EchoPeer::start(&["--malformed-on", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "bad", "w").unwrap();
    for fragment in segments(dir.path(), 4) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    let mut done = processed(&events);
    done.sort_unstable();
    assert_eq!(done, [0, 1, 2, 3]);
    assert_eq!(summary.failed, 0);
    let reasons = disconnects(&events);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("malformed message from the STS") && reasons[0].contains("fragment:processed"),
        "{}",
        reasons[0]
    );
    assert!(resent(&peer).contains(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_that_is_not_json_closes_the_session_and_the_fragment_goes_again() {
    let peer = EchoPeer::start(&["--garbage-on", "2"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "garbage", "w").unwrap();
    for fragment in segments(dir.path(), 4) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!(summary.processed, 4);
    let reasons = disconnects(&events);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].contains("malformed") && reasons[0].contains("Socket.IO event"),
        "{}",
        reasons[0]
    );
    assert!(resent(&peer).contains(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_level_error_reconnects() {
    let peer = EchoPeer::start(&["--session-error-on", "1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "serr", "w").unwrap();
    for fragment in segments(dir.path(), 3) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!(summary.processed, 3);
    let reasons = disconnects(&events);
    assert_eq!(reasons, ["STS error SESSION_FAILED: --session-error-on"]);
    assert_eq!(sessions(&events), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_handle_still_ends_the_stream() {
    let mut peer = EchoPeer::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, mut events) = StsClient::start(config(&peer.url()), "dropped", "w").unwrap();
    for fragment in segments(dir.path(), 2) {
        sts.submit(fragment).unwrap();
    }
    drop(sts);
    let mut last = None;
    while let Some(event) = tokio::time::timeout(support::DEADLINE, events.recv())
        .await
        .expect("events end")
    {
        last = Some(event);
    }
    let Some(StsEvent::StreamEnded(summary)) = last else {
        panic!("{last:?}")
    };
    assert_eq!(summary.processed, 2);
    assert!(summary.stream_end_sent);
    peer.wait_for("stream:end", |r| r["event"] == "stream_end").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sts_is_noticed_by_its_missing_heartbeat() {
    // Heartbeat 2 s (1 s ping interval + 1 s timeout); the STS hangs 3.5 s.
    let args = [
        "--ping-interval",
        "1",
        "--ping-timeout",
        "1",
        "--freeze-on",
        "1",
        "--freeze-ms",
        "3500",
    ];
    let peer = EchoPeer::start(&args).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "hung", "w").unwrap();
    for fragment in segments(dir.path(), 3) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!((summary.processed, summary.failed), (3, 0), "{events:#?}");
    let reasons = disconnects(&events);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("heartbeat"), "{}", reasons[0]);
    assert!(resent(&peer).contains(&1));
}
