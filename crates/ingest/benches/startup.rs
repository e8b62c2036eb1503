//! Startup and write latency of the ingest against the embedded server
//! (MediaMTX's behaviour): the worker starts first (refused, retrying with
//! backoff), the publisher arrives after a varying delay, and we measure
//! from the stream becoming available (its analysis done) to the ingest
//! reading it (attach) and to its first video and audio buffers (the
//! publisher holds its fixture until the ingest reads); then the write
//! latency of every segment of the run.
//! Targets: attach within 0.5 s (aim 0.25 s); first buffers within 2 s (aim
//! 0.5 s); write latency p99 < 300 ms (aim 20 ms). Run with
//! `cargo bench -p ingest --bench startup`.

use std::path::Path;
use std::time::{Duration, Instant};

use ingest::{WorkerConfig, WorkerEvent, WorkerRunner};
use media_tools::{Feed, FixtureRecipe, PublishOptions, Publisher, Window};
use rtmp_server::{RtmpServer, ServerConfig};

const TRIALS: u32 = 12;
const DEADLINE: Duration = Duration::from_secs(60);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    media_tools::percentile(sorted, p).expect("samples were taken")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    let recipe = FixtureRecipe {
        duration_s: 8.0,
        ..FixtureRecipe::seed("bench-startup-8s")
    };
    let fixture = recipe.ensure_built(&cache).await.expect("fixture");
    let tags = media_tools::flv::read_tags(&std::fs::read(&fixture).expect("fixture")).expect("FLV");
    let server = RtmpServer::start(ServerConfig::default()).expect("server");
    let out = tempfile::tempdir().expect("temp dir");
    let mut attach_ms = Vec::new();
    let mut startup_ms = Vec::new();
    let mut write_ms = Vec::new();
    for trial in 0..TRIALS {
        let path = format!("live/startup{trial}/in");
        let mut config = WorkerConfig::for_url(&server.url(&path)).expect("url");
        config.output_dir = out.path().to_owned();
        let mut worker = WorkerRunner::new(config)
            .stop_when_stream_ends(true)
            .spawn()
            .expect("worker thread");
        // Publishers arrive at different points of the retry schedule.
        let delay = Duration::from_millis(250 * u64::from(trial));
        let started = Instant::now();
        while started.elapsed() < delay {
            let _ = tokio::time::timeout(delay - started.elapsed(), worker.next_event()).await;
        }
        let log = out.path().join(format!("ffmpeg-{trial}.log"));
        let feed = Feed::new(&tags, Window::WHOLE);
        let mut publisher =
            Publisher::start(feed, &server.url(&path), &PublishOptions::default(), &log).expect("ffmpeg");
        server
            .wait_for_stream(&path, DEADLINE)
            .await
            .expect("stream available");
        let online = Instant::now();
        server
            .wait_for_state(|s| s.path(&path).is_some_and(|p| !p.readers.is_empty()), DEADLINE)
            .await
            .expect("the ingest reads");
        attach_ms.push(online.elapsed().as_secs_f64() * 1e3);
        publisher.release();
        while let Some(event) = tokio::time::timeout(DEADLINE, worker.next_event())
            .await
            .expect("events")
        {
            match event {
                WorkerEvent::TracksValidated(_) => startup_ms.push(online.elapsed().as_secs_f64() * 1e3),
                WorkerEvent::SegmentWritten(s) => write_ms.push(s.write_latency_ms),
                _ => {}
            }
        }
        worker.wait().await.expect("worker finishes");
        publisher.finish_cleanly(DEADLINE).await.expect("ffmpeg finishes");
    }
    attach_ms.sort_by(f64::total_cmp);
    startup_ms.sort_by(f64::total_cmp);
    write_ms.sort_by(f64::total_cmp);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let attach_p99 = percentile(&attach_ms, 99.0);
    println!(
        "reading after the stream became available, {TRIALS} trials: p50 {:.0} ms, p99 {attach_p99:.0} ms, max {:.0} ms; target < 500 ms: {}",
        percentile(&attach_ms, 50.0),
        attach_ms.last().unwrap(),
        verdict(attach_p99 < 500.0)
    );
    let startup_p99 = percentile(&startup_ms, 99.0);
    println!(
        "first video+audio after the stream became available, {TRIALS} trials: p50 {:.0} ms, p99 {startup_p99:.0} ms, max {:.0} ms; target < 2000 ms: {}",
        percentile(&startup_ms, 50.0),
        startup_ms.last().unwrap(),
        verdict(startup_p99 < 2000.0)
    );
    let write_p99 = percentile(&write_ms, 99.0);
    println!(
        "segment write latency, {} segments: p50 {:.2} ms, p99 {write_p99:.2} ms, max {:.2} ms; target p99 < 300 ms: {}",
        write_ms.len(),
        percentile(&write_ms, 50.0),
        write_ms.last().unwrap(),
        verdict(write_p99 < 300.0)
    );
    server.shutdown();
}
