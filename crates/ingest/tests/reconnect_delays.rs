//! How soon the worker asks again: a server that cannot be reached is
//! retried ever more slowly (up to seconds), a server that answers but has
//! no stream yet is asked again within a quarter second, because the stream
//! may appear at any moment.

mod support;

use ingest::{DEFAULT_RECONNECT, DEFAULT_UNREACHABLE, WorkerConfig, WorkerEvent, WorkerRunner};
use support::{DEADLINE, World};

/// The delays of the worker's first `n` reconnects, and their reasons.
async fn first_reconnects(config: WorkerConfig, n: usize) -> Vec<(u64, String)> {
    let mut worker = WorkerRunner::new(config).spawn().expect("worker thread");
    let mut seen = Vec::new();
    let read = async {
        while seen.len() < n {
            match worker.next_event().await {
                Some(WorkerEvent::Reconnecting { delay_ms, reason, .. }) => seen.push((delay_ms, reason)),
                Some(WorkerEvent::Failed { error, .. }) => panic!("the worker gave up: {error}"),
                Some(_) => {}
                None => panic!("the worker ended"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("reconnects within the deadline");
    worker.stop();
    worker.wait().await.expect("a stopped worker finishes cleanly");
    seen
}

/// The nominal delay of attempt `k` (1-based) and the jitter's bounds.
fn within_policy(delay_ms: u64, policy: &reconnect::ReconnectPolicy, k: u32) -> bool {
    let nominal = (policy.initial_delay.as_secs_f64() * policy.multiplier.powi(k as i32 - 1))
        .min(policy.max_delay.as_secs_f64())
        * 1e3;
    let ms = delay_ms as f64;
    ms >= nominal * (1.0 - policy.jitter) - 1.0 && ms <= nominal * (1.0 + policy.jitter) + 1.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_retried_ever_more_slowly() {
    let refusing = media_tools::RefusingPort::bind().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        WorkerConfig::for_url(&format!("rtmp://127.0.0.1:{}/live/down/in", refusing.port())).unwrap();
    config.output_dir = dir.path().to_owned();
    let reconnects = first_reconnects(config, 4).await;
    for (k, (delay_ms, reason)) in reconnects.iter().enumerate() {
        assert!(reason.contains("cannot connect"), "{reason}");
        assert!(
            within_policy(*delay_ms, &DEFAULT_UNREACHABLE, k as u32 + 1),
            "attempt {}: {delay_ms} ms is not the unreachable policy's delay ({reconnects:?})",
            k + 1
        );
    }
    assert!(reconnects[3].0 >= 1_600, "grows to seconds: {reconnects:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_stream_is_asked_for_again_within_a_quarter_second() {
    let world = World::new();
    let id = world.stream_id("missing");
    let config = world.worker_config(&id, ingest::SourceElement::Rtmpsrc);
    let reconnects = first_reconnects(config, 6).await;
    for (k, (delay_ms, reason)) in reconnects.iter().enumerate() {
        assert!(!reason.contains("cannot connect"), "the server answers: {reason}");
        assert!(
            within_policy(*delay_ms, &DEFAULT_RECONNECT, k as u32 + 1),
            "attempt {}: {delay_ms} ms is not the stream policy's delay ({reconnects:?})",
            k + 1
        );
        assert!(*delay_ms <= 250, "{reconnects:?}");
    }
}
