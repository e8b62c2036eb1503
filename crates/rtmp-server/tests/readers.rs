//! Real clients (ffprobe, ffmpeg, GStreamer's two RTMP sources) read back
//! what a real client publishes.

mod common;

use common::*;
use rstest::rstest;
use rtmp_server::RtmpServer;

#[tokio::test]
async fn ffprobe_sees_h264_and_aac() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = start_server();
    let url = server.url("live/probe/in");
    let publisher = HeldPublisher::start(&file, &url).await;
    server.wait_for_stream("live/probe/in", DEADLINE).await.unwrap();
    // ffprobe reads until it has seen enough stream time, so the body is
    // released once it is attached.
    let probe = tokio::spawn(probe_codecs(url.clone()));
    wait_for_readers(&server, "live/probe/in", 1).await;
    assert!(publisher.release().await.success());
    assert_eq!(probe.await.unwrap(), vec!["h264", "aac"]);
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

    let publisher = HeldPublisher::start(&file, &url).await;
    server.wait_for_stream("live/gst/in", DEADLINE).await.unwrap();
    let mut reader = gst_reader(source, &url).spawn().unwrap();
    wait_for_readers(&server, "live/gst/in", 1).await;

    assert!(publisher.release().await.success());
    let status = wait_exit(&mut reader).await;
    assert!(status.success(), "{source} did not end cleanly: {status}");
    log.wait_for(&["closed: terminated"]).await;
}

#[tokio::test]
async fn several_readers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = start_server();
    let url = server.url("live/many/in");

    let publisher = HeldPublisher::start(&file, &url).await;
    server.wait_for_stream("live/many/in", DEADLINE).await.unwrap();
    let decoders = [
        ffmpeg_decoder(&url).spawn().unwrap(),
        ffmpeg_decoder(&url).spawn().unwrap(),
    ];
    let mut gst = [
        gst_reader("rtmp2src", &url).spawn().unwrap(),
        gst_reader("rtmpsrc", &url).spawn().unwrap(),
    ];
    wait_for_readers(&server, "live/many/in", 4).await;
    assert!(publisher.release().await.success());
    for decoder in decoders {
        read_cleanly(decoder).await.unwrap();
    }
    for reader in &mut gst {
        assert!(wait_exit(reader).await.success());
    }
}

#[tokio::test]
async fn sixteen_paths_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 2, 30).await;
    let server = start_server();
    let _log = LogWatch::new(&server);

    let paths: Vec<String> = (0..16).map(|i| format!("live/cam{i}/in")).collect();
    let mut publishers = Vec::new();
    for path in &paths {
        publishers.push(HeldPublisher::start(&file, &server.url(path)).await);
    }
    let mut readers = Vec::new();
    for path in &paths {
        server.wait_for_stream(path, DEADLINE).await.unwrap();
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
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        readers.push(reader.spawn().unwrap());
    }
    for path in &paths {
        wait_for_readers(&server, path, 1).await;
    }
    assert_eq!(server.paths().len(), 16);
    for publisher in publishers {
        assert!(publisher.release().await.success());
    }
    for reader in readers {
        read_cleanly(reader).await.unwrap();
    }
    server
        .wait_for_state(|s| s.paths().is_empty(), DEADLINE)
        .await
        .unwrap();
}

/// Captures what a reader joining `server`'s path gets while `file` is
/// released, then the first video packet's flag and DTS.
async fn capture_first_video(
    server: &RtmpServer,
    file: &std::path::Path,
    dir: &std::path::Path,
) -> (bool, i64, usize) {
    let url = server.url("live/late/in");
    let publisher = HeldPublisher::start(file, &url).await;
    server.wait_for_stream("live/late/in", DEADLINE).await.unwrap();
    let captured = dir.join(format!("late-{}.flv", server.local_addr().port()));
    let capture = tokio::process::Command::new("ffmpeg")
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
        .arg(&captured)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_readers(server, "live/late/in", 1).await;
    assert!(publisher.release().await.success());
    read_cleanly(capture).await.unwrap();
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
    let rows: Vec<(i64, String)> = String::from_utf8_lossy(&packets.stdout)
        .lines()
        .filter_map(|l| l.split_once(','))
        .map(|(dts, flags)| (dts.parse().unwrap(), flags.to_owned()))
        .collect();
    assert!(
        rows.windows(2).all(|w| w[0].0 <= w[1].0),
        "video timestamps went backwards"
    );
    (rows[0].1.starts_with('K'), rows[0].0, rows.len())
}

/// What the feed's lead-in delivered before the hold is never given to a
/// reader: MediaMTX keeps no GOP, so the reader starts at the fixture's
/// first keyframe, after the lead-in, and decodes without errors.
#[tokio::test]
async fn a_reader_starts_at_the_next_keyframe_and_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 4, 30).await;
    let server = start_server();
    let (keyframe, dts, pictures) = capture_first_video(&server, &file, dir.path()).await;
    assert!(keyframe, "the first video packet is a keyframe");
    assert!(
        dts >= i64::from(media_tools::LEAD_IN_MS),
        "started at {dts} ms, inside the lead-in"
    );
    assert_eq!(
        pictures, 120,
        "every picture of the 4-s fixture, none of the lead-in"
    );
}
