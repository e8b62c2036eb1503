//! Real clients (ffprobe, ffmpeg, GStreamer's two RTMP sources) read back
//! what a real client publishes.

mod common;

use common::*;
use media_tools::flv;
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
/// released, then the first video packet's flag and DTS, and the pictures.
///
/// The publisher goes through a relay that holds its close until the reader
/// has the last picture: the server, like MediaMTX, closes its readers the
/// moment the publisher leaves and drops what it had queued for them.
async fn capture_first_video(
    server: &RtmpServer,
    file: &std::path::Path,
    dir: &std::path::Path,
) -> (bool, i64, usize) {
    let path = "live/late/in";
    let relay = media_tools::LingeringRelay::start(&server.local_addr().to_string())
        .await
        .unwrap();
    let publisher = HeldPublisher::start(file, &format!("rtmp://{}/{path}", relay.authority())).await;
    server.wait_for_stream(path, DEADLINE).await.unwrap();
    let fixture = flv::read_tags(&std::fs::read(file).unwrap()).unwrap();
    let pictures = fixture
        .iter()
        .filter(|t| t.kind == flv::VIDEO && t.is_frame())
        .count();
    let mut player = media_tools::RtmpPlayer::play(&server.local_addr().to_string(), path)
        .await
        .unwrap();
    wait_for_readers(server, path, 1).await;
    let (published, received) = tokio::join!(publisher.release(), async {
        let mut tags = Vec::new();
        let mut seen = 0;
        // Every picture, then the rest until the server closes.
        while let Ok(Some(message)) = player.next_within(DEADLINE).await {
            if let media_tools::Received::Tag(tag) = message {
                seen += usize::from(tag.kind == flv::VIDEO && tag.is_frame());
                tags.push(tag);
            }
            if seen == pictures {
                relay.release();
            }
        }
        tags
    });
    assert!(published.success());
    let captured = dir.join(format!("late-{}.flv", server.local_addr().port()));
    let mut bytes = flv::header();
    for tag in &received {
        flv::write_tag(&mut bytes, tag);
    }
    std::fs::write(&captured, bytes).unwrap();
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

/// When its publisher leaves, a reader is closed at once, as MediaMTX
/// closes it: `closed: terminated` right away (not after writing what was
/// queued for it, which would block on a reader that does not read), the
/// queued frames never come, and nothing announces the end.
#[tokio::test]
async fn a_publisher_leaving_closes_its_readers_at_once_dropping_their_queues() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path(), 12, 60).await;
    let tags = flv::read_tags(&std::fs::read(&file).unwrap()).unwrap();
    let server = start_server();
    let mut log = LogWatch::new(&server);
    let authority = server.local_addr().to_string();
    let path = "live/stalled/in";
    let mut publisher = media_tools::RtmpPublisher::publish(&authority, path)
        .await
        .unwrap();
    let config: Vec<&flv::FlvTag> = tags.iter().filter(|t| !t.is_frame()).collect();
    publisher.send_all(config.iter().copied()).await.unwrap();
    let frames: Vec<flv::FlvTag> = tags.iter().filter(|t| t.is_frame()).cloned().collect();
    publisher.send_all(&frames).await.unwrap();
    server.wait_for_stream(path, DEADLINE).await.unwrap();
    let mut reader = media_tools::RtmpPlayer::play(&authority, path).await.unwrap();
    wait_for_readers(&server, path, 1).await;
    let reading = log.wait_for(&["is reading from path", path]).await;
    let conn = reading
        .split("[conn ")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap()
        .to_owned();
    // The reader reads no more while a minute of media is sent: the
    // sockets fill, the rest waits in its queue (or overflows it).
    let mut last_sent = 0;
    for round in 1..=5u32 {
        let more: Vec<flv::FlvTag> = frames
            .iter()
            .map(|t| flv::FlvTag {
                timestamp: t.timestamp + 12_000 * round,
                ..t.clone()
            })
            .collect();
        last_sent = more.iter().map(|t| t.timestamp).max().unwrap();
        publisher.send_all(&more).await.unwrap();
    }
    publisher.finish().await.unwrap();
    let closed = log.wait_for(&[&format!("[conn {conn}] closed:")]).await;
    assert!(closed.ends_with("closed: terminated"), "{closed}");
    let mut last_got = 0;
    while let Ok(Some(message)) = reader.next_within(DEADLINE).await {
        match message {
            media_tools::Received::Tag(tag) => last_got = last_got.max(tag.timestamp),
            media_tools::Received::Status { code, .. } => assert!(
                !code.contains("Unpublish") && !code.contains("Stop") && !code.contains("Complete"),
                "the end was announced: {code}"
            ),
            media_tools::Received::Control(event) => {
                assert_ne!(event, "stream EOF", "the end was announced")
            }
            media_tools::Received::Command(_) => {}
        }
    }
    assert!(
        last_got < last_sent,
        "the reader got media up to {last_got} ms of {last_sent}: its queue was written after all"
    );
}
