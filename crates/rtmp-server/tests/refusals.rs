//! Real RTMP clients against MediaMTX's refusal: a reader of a path without
//! a stream is closed at once, without an answer, and each client fails
//! promptly rather than waiting for its own timeout. (The rest of MediaMTX's
//! path rules are checked by the conformance suite, `cargo xtask
//! conformance`, against this server and a real MediaMTX alike.)

mod common;

use common::*;
use rstest::rstest;

#[rstest]
#[case::librtmp("rtmpsrc")]
#[case::native("rtmp2src")]
#[tokio::test]
async fn gstreamer_reader_without_a_stream_fails_at_once(#[case] source: &str) {
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/nobody/in");
    // rtmpsrc would wait 120 s and rtmp2src 5 s on a silent server; a prompt
    // failure is the refusal, so only the exit status is asserted.
    let mut reader = gst_reader(source, &url).spawn().unwrap();
    let status = wait_exit(&mut reader).await;
    assert!(!status.success(), "{source} should fail");
    log.wait_for(&["closed: no stream is available on path 'live/nobody/in'"])
        .await;
}

#[tokio::test]
async fn ffmpeg_reader_without_a_stream_fails() {
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let (status, _) = run(&mut ffmpeg_decoder(&server.url("live/nobody/in"))).await;
    assert!(!status.success());
    log.wait_for(&["closed: no stream is available on path 'live/nobody/in'"])
        .await;
}
