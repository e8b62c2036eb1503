//! The ingest against servers that misbehave: garbage instead of chunks, a
//! connection that goes quiet. The source guard must stop each with an
//! error that says what the server did, on both GStreamer sources, without
//! leaving a partial segment behind.

mod support;

use std::time::Duration;

use ingest::SourceElement;
use media_tools::{Script, ScriptedServer};
use rstest::rstest;
use support::*;

/// Runs one worker against `script` with a single connection attempt and
/// returns its error text.
async fn refused_by(
    script: Script,
    source: SourceElement,
    tune: impl FnOnce(&mut ingest::WorkerConfig),
) -> String {
    let world = World::new();
    let id = world.stream_id("hostile");
    let server = ScriptedServer::start(script).await.unwrap();
    let mut config = world.worker_config(&id, source);
    config.url = Some(ingest::RtmpUrl::parse(&server.url(&format!("live/{id}/in"))).unwrap());
    config.reconnect.max_attempts = Some(1);
    tune(&mut config);
    let mut worker = spawn_once(config);
    collect_events(&mut worker).await;
    let error = worker.wait().await.expect_err("a hostile server is an error");
    let files = segment_files(&world.stream_dir(&id));
    assert!(
        files.is_empty(),
        "no segment from a server that sent no media: {files:?}"
    );
    error.to_string()
}

/// Chunk headers announcing 16-MiB messages on ever new chunk streams: what
/// would make librtmp allocate without bound.
fn oversized_messages() -> Vec<u8> {
    let mut bytes = Vec::new();
    for csid in 3u8..60 {
        // Type 0 header: timestamp 0, length 0xFFFFFF, type 9, stream 1.
        bytes.extend_from_slice(&[csid, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
        bytes.extend_from_slice(&[0u8; 128]);
    }
    bytes
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_play_is_refused_by_its_limit(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let text = refused_by(Script::Raw(oversized_messages()), source, |_| {}).await;
    assert!(text.contains("refused what the server sent"), "{text}");
    assert!(
        text.contains("at most 8388608 is accepted"),
        "the error names the limit: {text}"
    );
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_quiet_is_left(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let text = refused_by(Script::Silence, source, |config| {
        config.idle_timeout = Duration::from_millis(800);
        config.track_timeout = Duration::from_secs(30);
    })
    .await;
    assert!(text.contains("the server sent nothing for 800ms"), "{text}");
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_play_without_tracks_is_refused_after_the_track_timeout(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    // The scripted server answers the play with NetStream.Play.Start, then
    // sends nothing; the track timeout is the shorter wait.
    let text = refused_by(Script::Silence, source, |config| {
        config.idle_timeout = Duration::from_secs(30);
        config.track_timeout = Duration::from_millis(700);
    })
    .await;
    assert!(
        text.contains("sent no audio or video track within 700ms"),
        "{text}"
    );
}

/// `VmRSS` or `VmHWM` (the peak) of this process, from the kernel.
fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .expect("the field is in /proc/self/status")
}

/// A server that completes the handshake and the play, then sends random
/// bytes for ever: the ingest must refuse it on every attempt, retry with
/// backoff, give up when told, and never hold more than 100 MB.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_are_refused_on_every_attempt_in_bounded_memory(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let mut rng = fastrand::Rng::with_seed(7);
    let noise: Vec<u8> = (0..256 * 1024).map(|_| rng.u8(..)).collect();
    let world = World::new();
    let id = world.stream_id("noise");
    let server = ScriptedServer::start(Script::Raw(noise)).await.unwrap();
    let mut config = world.worker_config(&id, source);
    config.url = Some(ingest::RtmpUrl::parse(&server.url(&format!("live/{id}/in"))).unwrap());
    config.reconnect.max_attempts = Some(3);
    let before = memory_kib("VmRSS");
    let mut worker = spawn_once(config);
    let events = collect_events(&mut worker).await;
    let error = worker.wait().await.expect_err("noise is never a stream");
    let peak = memory_kib("VmHWM");
    let retries = events
        .iter()
        .filter(|e| matches!(e, ingest::WorkerEvent::Reconnecting { .. }))
        .count();
    assert_eq!(retries, 2, "three attempts, two retries: {events:?}");
    let text = error.to_string();
    assert!(text.contains("gave up after 3 connection attempts"), "{text}");
    assert!(text.contains("refused what the server sent"), "{text}");
    let grown_mb = peak.saturating_sub(before) / 1024;
    assert!(grown_mb < 100, "the ingest grew by {grown_mb} MB on noise");
}
