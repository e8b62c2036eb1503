//! Delivery latency through the echo STS peer on loopback: 64 streams in
//! one process, each with its own client and session (max_inflight 3),
//! submitting real 6-s AAC segments at a steady cadence with the streams'
//! phases spread over the interval, as independent live streams are.
//!
//! Figures (nearest-rank percentiles over every fragment):
//! - sent: segment submitted -> `fragment:data` written to the websocket
//!   (reading the segment, lifting the ADTS frames, base64, the write);
//! - round trip: submitted -> `fragment:processed` handled and the dubbed
//!   file renamed into place (so it includes the Python peer's own time).
//!
//! Targets: sent p99 < 10 ms, round trip p99 < 50 ms; a miss exits 1.
//! Run with `cargo bench -p sts --bench delivery`; `STS_BENCH_STREAMS`,
//! `STS_BENCH_FRAGMENTS` and `STS_BENCH_INTERVAL_MS` change the load (the
//! cadence is 6x real time by default: a segment a second per stream).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use sts::{StsClient, StsConfig, StsEvent};
use support::{EchoPeer, end_and_collect, segments};

const SENT_P99_TARGET_MS: f64 = 10.0;
const ROUND_TRIP_P99_TARGET_MS: f64 = 50.0;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    media_tools::percentile(sorted, p).expect("samples were taken")
}

fn line(name: &str, mut values: Vec<f64>, target: Option<f64>) -> bool {
    values.sort_by(f64::total_cmp);
    let p99 = percentile(&values, 99.0);
    let verdict = match target {
        Some(t) if p99 < t => format!("target < {t} ms: met"),
        Some(t) => format!("target < {t} ms: MISSED"),
        None => String::new(),
    };
    println!(
        "{name:<11} n={:<5} p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  {verdict}",
        values.len(),
        percentile(&values, 50.0),
        percentile(&values, 90.0),
        p99,
        values[values.len() - 1],
    );
    target.is_none_or(|t| p99 < t)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let streams = setting("STS_BENCH_STREAMS", 64);
    let fragments = setting("STS_BENCH_FRAGMENTS", 8);
    let interval = Duration::from_millis(setting("STS_BENCH_INTERVAL_MS", 1000));
    let peer = EchoPeer::start(&["--max-inflight", "3"]).await;
    let dir = tempfile::tempdir().expect("bench dir");
    println!(
        "{streams} streams x {fragments} segments of 6 s AAC, one every {interval:?} per stream, \
         max_inflight 3, echo peer on {}",
        peer.url()
    );

    let started = Instant::now();
    let mut runs = Vec::new();
    for stream in 0..streams {
        let stream_dir = dir.path().join(format!("s{stream}"));
        std::fs::create_dir_all(&stream_dir).expect("stream dir");
        let segments = segments(&stream_dir, fragments);
        let config = StsConfig::new(peer.url());
        let (sts, mut events) = StsClient::start(config, format!("bench{stream}"), "bench").expect("start");
        let phase = interval.mul_f64(stream as f64 / streams as f64);
        runs.push(tokio::spawn(async move {
            // A live worker's session is up long before its first segment
            // is written: connecting is not part of the figures.
            let ready = tokio::time::timeout(support::DEADLINE, events.recv()).await;
            assert!(
                matches!(ready, Ok(Some(StsEvent::SessionReady { .. }))),
                "stream {stream}: {ready:?}"
            );
            tokio::time::sleep(phase).await;
            let mut cadence = tokio::time::interval(interval);
            for segment in segments {
                cadence.tick().await;
                sts.submit(segment).expect("submit");
            }
            end_and_collect(sts, events).await
        }));
    }

    let mut sent = Vec::new();
    let mut round_trip = Vec::new();
    let mut lost = 0;
    for run in runs {
        let (summary, events) = run.await.expect("stream task");
        lost += summary.failed + summary.not_sent;
        for event in events {
            match event {
                StsEvent::FragmentSent {
                    attempt: 1,
                    queued_ms,
                    ..
                } => sent.push(queued_ms),
                StsEvent::FragmentProcessed { round_trip_ms, .. } => round_trip.push(round_trip_ms),
                StsEvent::Disconnected { reason, .. } => println!("disconnected: {reason}"),
                _ => {}
            }
        }
    }
    println!(
        "{} fragments in {:.1} s, {lost} failed or not sent",
        round_trip.len(),
        started.elapsed().as_secs_f64()
    );
    let sent_ok = line("sent", sent, Some(SENT_P99_TARGET_MS));
    let rtt_ok = line("round trip", round_trip, Some(ROUND_TRIP_P99_TARGET_MS));
    peer.stop().await;
    if !(sent_ok && rtt_ok) || lost > 0 {
        std::process::exit(1);
    }
}
