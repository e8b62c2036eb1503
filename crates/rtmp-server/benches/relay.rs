//! Relay overhead per message, end to end over loopback: an rml_rtmp client
//! publishes one video message, another rml_rtmp client reads it back, and
//! the time between the write and the reader decoding it is recorded.
//! Target: p99 < 1 ms. Run with `cargo bench -p rtmp-server --bench relay`.

mod client;

use std::time::{Duration, Instant};

use client::{ANALYSIS_MS, Client, sequence_of, video};
use rml_rtmp::sessions::ClientSessionEvent;
use rtmp_server::{RtmpServer, ServerConfig};

const WARMUP: usize = 500;
const MESSAGES: usize = 5_000;
/// A typical inter frame at ~1.5 Mbit/s and 30 fps.
const FRAME_BYTES: usize = 6_000;

fn main() {
    let server = RtmpServer::start(ServerConfig::default()).expect("server");

    let mut publisher = Client::publisher(&server, "live/bench", "in");
    let mut reader = Client::reader(&server, "live/bench", "in");

    let mut latencies = Vec::with_capacity(MESSAGES);
    for sequence in 1..=(WARMUP + MESSAGES) as u64 {
        let sent = Instant::now();
        // The reader's video starts at an IDR (as with MediaMTX): the first
        // frame after it joined is one.
        publisher.publish_video(
            video(sequence, sequence % 60 == 1, FRAME_BYTES),
            ANALYSIS_MS + sequence as u32 * 33,
        );
        reader.wait_for(|e| matches!(e, ClientSessionEvent::VideoDataReceived { data, .. } if sequence_of(data) == sequence));
        if sequence as usize > WARMUP {
            latencies.push(sent.elapsed());
        }
    }

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "relay latency over {MESSAGES} messages of {FRAME_BYTES} B (publish write -> reader decoded): \
         p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    let p99 = pct(0.99);
    println!(
        "target p99 < 1 ms: {}",
        if p99 < Duration::from_millis(1) {
            "met"
        } else {
            "MISSED"
        }
    );
    server.shutdown();
}
