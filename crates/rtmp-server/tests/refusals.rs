//! MediaMTX's path rules: readers need a publisher, one publisher per path,
//! readers end with their publisher.

mod common;

use common::*;
use rstest::rstest;
use tokio::process::Command;

#[rstest]
#[case::librtmp("rtmpsrc")]
#[case::native("rtmp2src")]
#[tokio::test]
async fn gstreamer_reader_without_publisher_fails_at_once(#[case] source: &str) {
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
async fn ffmpeg_reader_without_publisher_fails() {
    let server = start_server();
    let (status, _) = run(&mut ffmpeg_decoder(&server.url("live/nobody/in"))).await;
    assert!(!status.success());
    assert!(server.connections().is_empty() || server.connections().iter().all(|c| c.path.is_empty()));
}

#[tokio::test]
async fn second_publisher_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 2, 30).await;
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/busy/in");

    let first = GatedPublisher::start(&file, &url).await;
    server.wait_for_publisher("live/busy/in", DEADLINE).await.unwrap();
    let (status, _) = run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&file)
        .args(["-c", "copy", "-f", "flv", &url]))
    .await;
    assert!(!status.success(), "second publisher must be refused");
    log.wait_for(&["closed: someone is already publishing to path 'live/busy/in'"])
        .await;

    let first_id = server.paths()[0].source.id.clone();
    assert!(first.release().await.success());
    assert!(
        server
            .connections()
            .iter()
            .all(|c| c.id != first_id || c.path.is_empty())
    );
}

#[rstest]
#[case::publisher_process_killed(false)]
#[case::publisher_kicked(true)]
#[tokio::test]
async fn publisher_leaving_closes_readers(#[case] kick: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/leave/in");

    let mut publisher = GatedPublisher::start(&file, &url).await;
    server
        .wait_for_publisher("live/leave/in", DEADLINE)
        .await
        .unwrap();
    let mut readers = vec![
        gst_reader("rtmp2src", &url).spawn().unwrap(),
        gst_reader("rtmpsrc", &url).spawn().unwrap(),
        ffmpeg_decoder(&url).spawn().unwrap(),
    ];
    log.wait_for_count(&["is reading from path 'live/leave/in'"], readers.len())
        .await;

    if kick {
        assert!(server.kick_publisher("live/leave/in"));
        log.wait_for(&["closed: terminated"]).await;
    } else {
        publisher.child.start_kill().unwrap();
    }
    log.wait_for(&["[path live/leave/in] stream is offline"]).await;
    for reader in &mut readers {
        wait_exit(reader).await;
    }
    log.wait_for_count(
        &["closed: stream on path 'live/leave/in' is offline"],
        readers.len(),
    )
    .await;
    assert!(server.paths().is_empty());
    assert!(!server.kick_publisher("live/leave/in"));
}
