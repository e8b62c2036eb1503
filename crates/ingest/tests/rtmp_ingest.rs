//! The ingest against a real RTMP server, real ffmpeg publishers and real
//! GStreamer sources; every segment checked with ffprobe.

mod support;

use std::time::{Duration, Instant};

use ingest::{MANIFEST_FILE, Manifest};
use ingest::{ManifestEntry, MediaKind, SegmentRecord, SourceElement, WorkerEvent};
use media_tools::{AudioCodec, PublishOptions, decode_errors, probe};
use rstest::rstest;
use support::*;

fn segments(events: &[WorkerEvent], kind: MediaKind) -> Vec<SegmentRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::SegmentWritten(s) if s.kind == kind => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn failure(events: &[WorkerEvent]) -> Option<(ingest::ErrorKind, String)> {
    events.iter().find_map(|e| match e {
        WorkerEvent::Failed { kind, error } => Some((*kind, error.clone())),
        _ => None,
    })
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_second_stream_becomes_five_checked_pairs(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let world = World::new();
    let id = world.stream_id("happy");
    let fixture = fixture(&small_recipe("happy-30s", 30.0)).await;
    let events = world
        .ingest_whole(world.worker_config(&id, source), &fixture, &id)
        .await;

    let dir = world.stream_dir(&id);
    for (kind, frame_s, codec) in [
        (MediaKind::Video, 1.0 / 30.0, "h264"),
        (MediaKind::Audio, 1024.0 / 48_000.0, "aac"),
    ] {
        let written = segments(&events, kind);
        assert_eq!(written.len(), 5, "{kind} segments: {written:#?}");
        for (i, segment) in written.iter().enumerate() {
            assert_eq!(segment.index, i as u64);
            assert!((segment.duration_s - 6.0).abs() <= frame_s + 1e-3, "{segment:?}");
            let report = probe(&dir.join(&segment.file))
                .await
                .expect("ffprobe opens the segment");
            assert_eq!(report.format_name, "mpegts");
            let stream = report.stream(kind.as_str()).expect("the segment holds its track");
            assert_eq!(stream.codec_name, codec);
            let probed = report.duration_s.expect("ffprobe knows the duration");
            assert!(
                (probed - 6.0).abs() <= 2.0 * frame_s + 1e-3,
                "{}: ffprobe says {probed}",
                segment.file
            );
            if kind == MediaKind::Video {
                assert_eq!(report.first_video_frame_is_key, Some(true), "{}", segment.file);
                assert_eq!(stream.frames, Some(segment.frames), "{}", segment.file);
                let errors = decode_errors(&dir.join(&segment.file)).await.unwrap();
                assert!(
                    errors.is_empty(),
                    "{} does not decode alone: {errors}",
                    segment.file
                );
            }
        }
    }
    let manifest = Manifest::read(&dir.join(MANIFEST_FILE)).unwrap();
    let in_manifest = manifest
        .iter()
        .filter(|e| matches!(e, ManifestEntry::Segment(_)))
        .count();
    assert_eq!(in_manifest, 10);
    assert!(
        manifest
            .iter()
            .any(|e| matches!(e, ManifestEntry::Connection(c) if c.first_video_ms > 0.0))
    );
    assert!(segment_files(&dir).iter().all(|n| !n.ends_with(".part")));
}

#[rstest]
#[case::video_only(false, true, "audio track required")]
#[case::audio_only(true, false, "video track required")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_missing_a_track_is_refused_without_segments(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
    #[case] audio: bool,
    #[case] video: bool,
    #[case] message: &str,
) {
    let world = World::new();
    let id = world.stream_id("onetrack");
    let recipe = media_tools::FixtureRecipe {
        audio,
        video,
        ..small_recipe(&format!("tracks-{audio}-{video}"), 10.0)
    };
    let fixture = fixture(&recipe).await;
    let mut worker = spawn_once(world.worker_config(&id, source));
    let _publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    let events = collect_events(&mut worker).await;
    let error = worker.wait().await.expect_err("the stream is refused");
    assert_eq!(error.kind(), ingest::ErrorKind::MissingTrack, "{error}");
    let (kind, text) = failure(&events).expect("a failed event");
    assert_eq!(kind, ingest::ErrorKind::MissingTrack);
    assert!(text.contains(message), "{text}");
    assert!(text.contains("2s"), "the error names the timeout: {text}");
    assert!(segment_files(&world.stream_dir(&id)).is_empty());
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_codec_is_refused_by_name(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let world = World::new();
    let id = world.stream_id("mp3");
    let recipe = media_tools::FixtureRecipe {
        audio_codec: AudioCodec::Mp3,
        sample_rate: 44_100,
        ..small_recipe("mp3-audio", 10.0)
    };
    let fixture = fixture(&recipe).await;
    let mut worker = spawn_once(world.worker_config(&id, source));
    let _publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    let events = collect_events(&mut worker).await;
    assert!(worker.wait().await.is_err());
    let (kind, text) = failure(&events).expect("a failed event");
    assert_eq!(kind, ingest::ErrorKind::UnsupportedCodec);
    assert!(text.contains("found MP3") && text.contains("AAC"), "{text}");
    assert!(segment_files(&world.stream_dir(&id)).is_empty());
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_late_is_picked_up(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let world = World::new();
    let id = world.stream_id("late");
    let fixture = fixture(&small_recipe("late-8s", 8.0)).await;
    let started = Instant::now();
    let mut worker = spawn_once(world.worker_config(&id, source));
    // The worker is refused while nobody publishes; publish once it has been
    // retrying for 3 s, judged from its own reconnect events.
    let mut early = Vec::new();
    while started.elapsed() < Duration::from_secs(3) {
        let event = tokio::time::timeout(DEADLINE, worker.next_event())
            .await
            .expect("the worker keeps reporting")
            .expect("the worker keeps running");
        early.push(event);
    }
    assert!(
        early
            .iter()
            .any(|e| matches!(e, WorkerEvent::Reconnecting { .. })),
        "{early:#?}"
    );
    assert!(!early.iter().any(|e| matches!(e, WorkerEvent::Connected { .. })));
    let events = world.publish_whole_to(worker, &fixture, &id).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WorkerEvent::TracksValidated(_)))
    );
    let video = segments(&events, MediaKind::Video);
    let audio = segments(&events, MediaKind::Audio);
    assert_eq!(video.len(), 2, "{video:#?}");
    assert_eq!(audio.len(), video.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_request_flushes_the_partial_segment() {
    let world = World::new();
    let id = world.stream_id("stop");
    let fixture = fixture(&small_recipe("stop-30s", 30.0)).await;
    // Not `once`: the worker would wait for the stream to come back; only the
    // stop request ends it.
    let mut worker = ingest::WorkerRunner::new(world.worker_config(&id, SourceElement::Rtmpsrc))
        .spawn()
        .expect("worker thread");
    let _publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    let mut events = Vec::new();
    while !events
        .iter()
        .any(|e| matches!(e, WorkerEvent::SegmentWritten(s) if s.kind == MediaKind::Video))
    {
        let event = tokio::time::timeout(DEADLINE, worker.next_event())
            .await
            .expect("a first segment before the deadline")
            .expect("the worker keeps running");
        events.push(event);
    }
    worker.stop();
    events.extend(collect_events(&mut worker).await);
    worker.wait().await.expect("a stopped worker finishes cleanly");
    let video = segments(&events, MediaKind::Video);
    let audio = segments(&events, MediaKind::Audio);
    assert_eq!(video.len(), 2, "{video:#?}");
    assert_eq!(audio.len(), video.len());
    let last = video.last().unwrap();
    assert!(last.partial && last.duration_s < 6.0, "{last:?}");
    assert!(
        matches!(events.last(), Some(WorkerEvent::Finished { .. })),
        "{:?}",
        events.last()
    );
    assert!(
        segment_files(&world.stream_dir(&id))
            .iter()
            .all(|n| !n.ends_with(".part"))
    );
}

/// Video and AAC audio until `switch_ms`, MP3 audio after: a stream no
/// encoder makes on purpose, sent tag by tag.
async fn audio_switching_stream(switch_ms: u32) -> Vec<media_tools::flv::FlvTag> {
    use media_tools::flv::read_tags;
    let aac = std::fs::read(fixture(&small_recipe("switch-aac-8s", 8.0)).await).unwrap();
    let mp3_recipe = media_tools::FixtureRecipe {
        audio_codec: AudioCodec::Mp3,
        sample_rate: 44_100,
        ..small_recipe("switch-mp3-8s", 8.0)
    };
    let mp3 = std::fs::read(fixture(&mp3_recipe).await).unwrap();
    let (video, audio) = (9, 8);
    let mut tags: Vec<_> = read_tags(&aac)
        .unwrap()
        .into_iter()
        .filter(|t| t.kind == video || (t.kind == audio && t.timestamp < switch_ms))
        .collect();
    tags.extend(
        read_tags(&mp3)
            .unwrap()
            .into_iter()
            .filter(|t| t.kind == audio && t.timestamp >= switch_ms),
    );
    // Stable: sequence headers stay ahead of the frames sharing their time.
    tags.sort_by_key(|t| t.timestamp);
    tags
}

/// A codec switch never gets past MediaMTX (it closes such a publisher), so
/// a scripted server plays it to the ingest, as a server that relays
/// whatever it gets would.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_codec_switch_mid_stream_is_an_error(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let world = World::new();
    let id = world.stream_id("switch");
    let tags = audio_switching_stream(4000).await;
    let server = media_tools::ScriptedServer::start(media_tools::Script::Tags { tags, speed: 20 })
        .await
        .unwrap();
    let mut config = world.worker_config(&id, source);
    config.url = Some(ingest::RtmpUrl::parse(&server.url(&format!("live/{id}/in"))).unwrap());
    let mut worker = spawn_once(config);
    collect_events(&mut worker).await;
    let error = worker.wait().await.expect_err("the switch is an error");
    assert_eq!(error.kind(), ingest::ErrorKind::CodecChanged, "{error}");
    let text = error.to_string();
    assert!(text.contains("from AAC to MP3"), "{text}");
    // What came before the switch was flushed as whole files, nothing half-written.
    let files = segment_files(&world.stream_dir(&id));
    assert!(files.iter().all(|n| !n.ends_with(".part")), "{files:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_jump_does_not_stretch_a_segment() {
    let world = World::new();
    let id = world.stream_id("jump");
    let flv = std::fs::read(fixture(&small_recipe("jump-14s", 14.0)).await).unwrap();
    // The publisher's clock leaps 100 s forward at 7 s, on both tracks.
    let tags: Vec<_> = media_tools::flv::read_tags(&flv)
        .unwrap()
        .into_iter()
        .map(|mut t| {
            if t.timestamp >= 7000 {
                t.timestamp += 100_000;
            }
            t
        })
        .collect();
    let publish = publish_tags(&world, &id, tags);
    let mut worker = spawn_once(world.worker_config(&id, SourceElement::Rtmpsrc));
    world.wait_for_reader(&id).await;
    publish.go.send(()).unwrap();
    publish.last.received_by(&worker).await;
    publish.end.send(()).unwrap();
    let events = collect_events(&mut worker).await;
    publish.task.await.unwrap();
    worker.wait().await.expect("the worker finishes cleanly");
    let video = segments(&events, MediaKind::Video);
    let durations: Vec<f64> = video
        .iter()
        .map(|s| (s.duration_s * 10.0).round() / 10.0)
        .collect();
    assert_eq!(durations, [6.0, 6.0, 2.0], "{video:#?}");
    assert_eq!(segments(&events, MediaKind::Audio).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_into_the_same_folder_continues_the_numbering() {
    let world = World::new();
    let id = world.stream_id("rerun");
    let fixture = fixture(&small_recipe("rerun-8s", 8.0)).await;
    let mut indices = Vec::new();
    for _ in 0..2 {
        let events = world
            .ingest_whole(world.worker_config(&id, SourceElement::Rtmpsrc), &fixture, &id)
            .await;
        indices.extend(segments(&events, MediaKind::Video).iter().map(|s| s.index));
    }
    assert_eq!(
        indices,
        [0, 1, 2, 3],
        "no segment of the first run is overwritten"
    );
    let manifest = Manifest::read(&world.stream_dir(&id).join(MANIFEST_FILE)).unwrap();
    let recorded = manifest
        .iter()
        .filter(|e| matches!(e, ManifestEntry::Segment(_)))
        .count();
    assert_eq!(recorded, 8);
}

/// Production's order: an encoder (plain `ffmpeg -re`) is there first with
/// a 10-s GOP, and a worker joins the running stream. The server sends it
/// the sequence headers and audio at once, but video only from the next
/// keyframe, up to 10 s later: the tracks are present (announced) at once,
/// so nothing is refused, the segments start at that keyframe, the manifest
/// says what the worker could not receive, and every picture after it is
/// written.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_joining_a_running_long_gop_stream_starts_at_its_next_keyframe(
    #[values(SourceElement::Rtmpsrc, SourceElement::Rtmp2src)] source: SourceElement,
) {
    let recipe = media_tools::FixtureRecipe {
        gop_s: 10.0,
        ..small_recipe("join-gop10-16s", 16.0)
    };
    let fixture = fixture(&recipe).await;
    let tags = media_tools::flv::read_tags(&std::fs::read(&fixture).unwrap()).unwrap();
    let world = World::new();
    let id = world.stream_id("join");
    let relay = media_tools::LingeringRelay::start(&world.server.local_addr().to_string())
        .await
        .unwrap();
    let mut encoder = tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(&fixture)
        .args(["-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://{}/live/{id}/in", relay.authority()))
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg starts");
    let path = format!("live/{id}/in");
    world.server.wait_for_stream(&path, DEADLINE).await.unwrap();
    let mut worker = spawn_once(world.worker_config(&id, source));
    let status = tokio::time::timeout(DEADLINE, encoder.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "ffmpeg publishes the whole file");
    let last = media_tools::Feed::live(&tags);
    LastFrames::of(&last).received_by(&worker).await;
    relay.release();
    let events = collect_events(&mut worker).await;
    worker.wait().await.expect("nothing is refused");

    let record = events
        .iter()
        .find_map(|e| match e {
            WorkerEvent::TracksValidated(record) => Some(record.clone()),
            _ => None,
        })
        .expect("the tracks are validated");
    let first_picture = record.join.video_from_s.expect("a first picture");
    let keyframes: Vec<u32> = tags.iter().filter(|t| t.is_keyframe()).map(|t| t.pts()).collect();
    assert!(
        keyframes[1..]
            .iter()
            .any(|k| (f64::from(*k) - first_picture * 1e3).abs() <= 2.0),
        "joined after the first keyframe, so starts at a later one: {first_picture} s, keyframes {keyframes:?}"
    );
    let span = record.join.not_received.expect("what was not received is stated");
    assert_eq!((span.from_s, span.to_s), (0.0, first_picture));
    let video = segments(&events, MediaKind::Video);
    assert!(
        (video[0].pts_ns as f64 / 1e9 - first_picture).abs() < 0.002,
        "{video:#?}"
    );
    let pictures: u64 = video.iter().map(|s| s.frames).sum();
    let after = tags
        .iter()
        .filter(|t| t.kind == media_tools::flv::VIDEO && t.is_frame())
        .filter(|t| f64::from(t.pts()) >= first_picture * 1e3 - 1.5)
        .count() as u64;
    assert_eq!(pictures, after, "every picture from the first keyframe on");
    for segment in &video {
        let report = probe(&world.stream_dir(&id).join(&segment.file)).await.unwrap();
        assert_eq!(report.first_video_frame_is_key, Some(true), "{}", segment.file);
    }
}
