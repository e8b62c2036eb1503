//! Real clients read back what a real client publishes.

mod common;

use common::*;
use rstest::rstest;

#[rstest]
#[case::realtime(true)]
#[case::as_fast_as_possible(false)]
#[tokio::test]
async fn ffprobe_sees_h264_and_aac(#[case] realtime: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = start_server();
    let url = server.url("live/probe/in");

    let mut log = LogWatch::new(&server);
    let codecs = if realtime {
        let mut publisher = publish_realtime(&file, &url);
        server
            .wait_for_publisher("live/probe/in", DEADLINE)
            .await
            .unwrap();
        let codecs = probe_codecs(url.clone()).await;
        assert!(wait_exit(&mut publisher).await.success());
        codecs
    } else {
        // ffprobe reads until it has seen enough stream time, so the gate
        // opens once it is attached and the burst arrives while it probes.
        let publisher = GatedPublisher::start(&file, &url).await;
        server
            .wait_for_publisher("live/probe/in", DEADLINE)
            .await
            .unwrap();
        let probe = tokio::spawn(probe_codecs(url.clone()));
        log.wait_for(&["is reading from path 'live/probe/in'"]).await;
        assert!(publisher.release().await.success());
        probe.await.unwrap()
    };
    assert_eq!(codecs, vec!["h264", "aac"]);
}

async fn probe_codecs(url: String) -> Vec<String> {
    let output = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name",
                "-of",
                "csv=p=0",
                &url,
            ])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ffprobe finishes")
    .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[rstest]
#[case::librtmp("rtmpsrc")]
#[case::native("rtmp2src")]
#[tokio::test]
async fn gstreamer_reads_to_eos_when_publisher_finishes(#[case] source: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/gst/in");

    let publisher = GatedPublisher::start(&file, &url).await;
    server.wait_for_publisher("live/gst/in", DEADLINE).await.unwrap();
    let mut reader = gst_reader(source, &url).spawn().unwrap();
    log.wait_for(&["is reading from path 'live/gst/in'"]).await;

    assert!(publisher.release().await.success());
    let status = wait_exit(&mut reader).await;
    assert!(status.success(), "{source} did not end cleanly: {status}");
    log.wait_for(&["closed: stream on path 'live/gst/in' is offline"])
        .await;
}

#[tokio::test]
async fn several_readers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let url = server.url("live/many/in");

    let publisher = GatedPublisher::start(&file, &url).await;
    server.wait_for_publisher("live/many/in", DEADLINE).await.unwrap();
    let mut readers = vec![
        ffmpeg_decoder(&url).spawn().unwrap(),
        ffmpeg_decoder(&url).spawn().unwrap(),
        gst_reader("rtmp2src", &url).spawn().unwrap(),
        gst_reader("rtmpsrc", &url).spawn().unwrap(),
    ];
    log.wait_for_count(&["is reading from path 'live/many/in'"], readers.len())
        .await;
    assert_eq!(server.paths()[0].readers.len(), readers.len());

    assert!(publisher.release().await.success());
    for reader in &mut readers {
        assert!(wait_exit(reader).await.success());
    }
}

#[tokio::test]
async fn sixteen_paths_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 2, 30).await;
    let server = start_server();
    let mut log = LogWatch::new(&server);

    let paths: Vec<String> = (0..16).map(|i| format!("live/cam{i}/in")).collect();
    let mut publishers = Vec::new();
    for path in &paths {
        publishers.push(GatedPublisher::start(&file, &server.url(path)).await);
    }
    let mut readers = Vec::new();
    for path in &paths {
        server.wait_for_publisher(path, DEADLINE).await.unwrap();
        // Copy, not decode: 32 ffmpeg processes share two cores.
        let mut reader = tokio::process::Command::new("ffmpeg");
        reader
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-i",
                &server.url(path),
                "-c",
                "copy",
                "-f",
                "null",
                "-",
            ])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        readers.push(reader.spawn().unwrap());
    }
    log.wait_for_count(&["is reading from path"], paths.len()).await;
    assert_eq!(server.paths().len(), 16);

    for publisher in publishers {
        assert!(publisher.release().await.success());
    }
    for reader in &mut readers {
        assert!(wait_exit(reader).await.success());
    }
    server
        .wait_for_state(|s| s.paths().is_empty(), DEADLINE)
        .await
        .unwrap();
}

/// A reader joining mid-stream gets metadata and sequence headers first,
/// starts at a keyframe, decodes without errors and sees monotonic time.
#[tokio::test]
async fn late_joiner_starts_at_keyframe_and_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 5, 30).await;
    let file_len = std::fs::metadata(&file).unwrap().len();
    let server = start_server();
    let _log = LogWatch::new(&server);
    let url = server.url("live/late/in");

    let mut publisher = publish_realtime(&file, &url);
    server.wait_for_publisher("live/late/in", DEADLINE).await.unwrap();
    // Mid-stream: well past the first GOP (1 s) and not at a GOP boundary.
    wait_until(|| {
        server
            .paths()
            .first()
            .is_some_and(|p| p.inbound_bytes > file_len * 2 / 5)
    })
    .await;

    let captured = dir.path().join("late.flv");
    let (status, stderr) = run(tokio::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-copyts",
            "-i",
            &url,
            "-c",
            "copy",
            "-f",
            "flv",
        ])
        .arg(&captured))
    .await;
    assert!(status.success(), "capture failed: {stderr}");
    assert!(wait_exit(&mut publisher).await.success());

    let (status, stderr) = run(tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-xerror", "-i"])
        .arg(&captured)
        .args(["-f", "null", "-"]))
    .await;
    assert!(
        status.success() && stderr.trim().is_empty(),
        "decode errors: {stderr}"
    );

    let packets = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-show_entries",
            "packet=dts,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(&captured)
        .output()
        .await
        .unwrap();
    let packets = String::from_utf8_lossy(&packets.stdout);
    let rows: Vec<(i64, String)> = packets
        .lines()
        .filter_map(|l| l.split_once(','))
        .map(|(dts, flags)| (dts.parse().unwrap(), flags.to_owned()))
        .collect();
    assert!(rows.len() > 30, "too little video: {}", rows.len());
    assert!(
        rows[0].1.starts_with('K'),
        "first video packet is not a keyframe: {:?}",
        rows[0]
    );
    assert!(
        rows.windows(2).all(|w| w[0].0 <= w[1].0),
        "video timestamps went backwards"
    );
    // It really joined late: the first GOP (timestamps < 1 s) was not sent.
    assert!(
        rows[0].0 >= 900,
        "reader started at {} ms, not mid-stream",
        rows[0].0
    );
}
