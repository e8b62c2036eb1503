//! The worker with STS delivery on: the embedded RTMP server, an ffmpeg
//! publisher, and the real echo STS peer (`tools/sts-echo/echo.py`, started
//! by the sts crate's own test support) or no STS at all.

mod support;
// The sts crate's peer support: the echo peer as a child process on a free
// port and its venv; shared rather than copied.
#[path = "../../sts/tests/support/mod.rs"]
mod sts_peer;

use std::time::{Duration, Instant};

use ingest::{
    FragmentRecord, FragmentStatus, ManifestEntry, MediaKind, SegmentRecord, SourceElement, StsAudioFormat,
    StsSettings, WorkerEvent,
};
use ingest::{MANIFEST_FILE, Manifest};
use media_tools::{PublishOptions, probe};
use support::*;

fn audio_segments(events: &[WorkerEvent]) -> Vec<SegmentRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::SegmentWritten(s) if s.kind == MediaKind::Audio => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The manifest's fragment records, and each one's line number.
fn fragment_records(entries: &[ManifestEntry]) -> Vec<(usize, FragmentRecord)> {
    entries
        .iter()
        .enumerate()
        .filter_map(|(line, e)| match e {
            ManifestEntry::Fragment(f) => Some((line, f.clone())),
            _ => None,
        })
        .collect()
}

fn final_records(entries: &[ManifestEntry]) -> Vec<FragmentRecord> {
    fragment_records(entries)
        .into_iter()
        .map(|(_, f)| f)
        .filter(|f| f.status.is_final())
        .collect()
}

fn events_named(events: &[WorkerEvent], name: &str) -> usize {
    events
        .iter()
        .filter(|e| serde_json::to_value(e).unwrap()["event"] == name)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audio_segment_comes_back_dubbed_and_recorded_once() {
    let mut peer = sts_peer::EchoPeer::start(&[]).await;
    let world = World::new();
    let id = world.stream_id("dub");
    let fixture = fixture(&small_recipe("sts-18s", 18.0)).await;
    let mut config = world.worker_config(&id, SourceElement::Rtmpsrc);
    config.sts = Some(StsSettings {
        target_language: "fr".into(),
        ..StsSettings::new(peer.url())
    });
    let events = world.ingest_whole(config, &fixture, &id).await;

    let dir = world.stream_dir(&id);
    let audio = audio_segments(&events);
    assert_eq!(audio.len(), 3, "{audio:#?}");
    let processed: Vec<FragmentRecord> = events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::FragmentProcessed(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    let indices: Vec<u64> = processed.iter().map(|f| f.index).collect();
    assert_eq!(
        indices,
        audio.iter().map(|s| s.index).collect::<Vec<_>>(),
        "{events:#?}"
    );
    assert_eq!(events_named(&events, "fragment_sent"), audio.len());
    assert_eq!(events_named(&events, "fragment_acked"), audio.len());
    assert_eq!(events_named(&events, "fragment_failed"), 0);
    for fragment in &processed {
        let dubbed = fragment.dubbed_file.as_deref().expect("a dubbed file");
        assert_eq!(dubbed, format!("dubbed_{:06}.aac", fragment.index));
        let report = probe(&dir.join(dubbed)).await.expect("ffprobe opens the dub");
        let stream = report.stream("audio").expect("the dub holds audio");
        assert_eq!(stream.codec_name, "aac", "{dubbed}");
        assert!(report.duration_s.is_some_and(|d| d > 5.0), "{dubbed}: {report:?}");
    }
    // The STS stream ends before the worker reports it finished.
    let ended = events
        .iter()
        .position(|e| {
            matches!(
                e,
                WorkerEvent::StsEnded {
                    processed: 3,
                    failed: 0,
                    not_sent: 0,
                    stream_end_sent: true
                }
            )
        })
        .unwrap_or_else(|| panic!("no sts_ended with 3 processed: {events:#?}"));
    assert!(matches!(events.last(), Some(WorkerEvent::Finished { .. })));
    assert_eq!(ended, events.len() - 2, "sts_ended comes just before finished");

    let entries = Manifest::read(&dir.join(MANIFEST_FILE)).unwrap();
    let finals = final_records(&entries);
    assert_eq!(
        finals.len(),
        audio.len(),
        "one final record per fragment: {finals:#?}"
    );
    for (record, segment) in finals.iter().zip(&audio) {
        assert_eq!(record.index, segment.index);
        assert_eq!(record.status, FragmentStatus::Processed);
        assert!(record.round_trip_ms.is_some_and(|ms| ms > 0.0), "{record:?}");
        assert!(
            record.fragment_id.as_deref().is_some_and(|f| f.starts_with(&id)),
            "{record:?}"
        );
    }
    // Every fragment record comes after its segment's record.
    for (line, record) in fragment_records(&entries) {
        let segment_line = entries
            .iter()
            .position(|e| matches!(e, ManifestEntry::Segment(s) if s.kind == MediaKind::Audio && s.index == record.index))
            .expect("the fragment's segment is in the manifest");
        assert!(segment_line < line, "{record:?} before its segment");
    }

    let init = peer
        .wait_for("stream:init", |r| r["event"] == "stream_init")
        .await;
    assert_eq!(init["stream_id"], id.as_str());
    assert_eq!(init["config"]["target_language"], "fr");
    assert_eq!(init["config"]["format"], "aac");
    assert_eq!(init["config"]["chunk_duration_ms"], 6000);
    let end = peer.wait_for("stream:end", |r| r["event"] == "stream_end").await;
    assert_eq!(end["stream_id"], id.as_str());
    let received: Vec<u64> = peer
        .received()
        .iter()
        .map(|r| r["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(received, [0, 1, 2], "one fragment:data per segment, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcm_segments_are_decoded_and_come_back_as_wav_at_the_requested_format() {
    let mut peer = sts_peer::EchoPeer::start(&[]).await;
    let world = World::new();
    let id = world.stream_id("dubpcm");
    let fixture = fixture(&small_recipe("sts-18s", 18.0)).await;
    let mut config = world.worker_config(&id, SourceElement::Rtmpsrc);
    // Not the defaults (16 kHz mono), so the figures are seen to travel.
    config.sts = Some(StsSettings {
        format: StsAudioFormat::PcmS16le,
        sample_rate: 24_000,
        channels: 2,
        ..StsSettings::new(peer.url())
    });
    let events = world.ingest_whole(config, &fixture, &id).await;

    let dir = world.stream_dir(&id);
    let audio = audio_segments(&events);
    assert_eq!(audio.len(), 3, "{audio:#?}");
    assert_eq!(events_named(&events, "fragment_failed"), 0, "{events:#?}");
    let processed: Vec<FragmentRecord> = events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::FragmentProcessed(f) => Some(f.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        processed.iter().map(|f| f.index).collect::<Vec<_>>(),
        audio.iter().map(|s| s.index).collect::<Vec<_>>(),
        "every audio segment is processed: {events:#?}"
    );
    for (fragment, segment) in processed.iter().zip(&audio) {
        let dubbed = fragment.dubbed_file.as_deref().expect("a dubbed file");
        assert_eq!(dubbed, format!("dubbed_{:06}.wav", fragment.index));
        let report = probe(&dir.join(dubbed)).await.expect("ffprobe opens the dub");
        assert_eq!(report.format_name, "wav", "{dubbed}: {report:?}");
        let stream = report.stream("audio").expect("the dub holds audio");
        assert_eq!(stream.codec_name, "pcm_s16le", "{dubbed}");
        assert_eq!(stream.sample_rate, Some(24_000), "{dubbed}");
        assert_eq!(stream.channels, Some(2), "{dubbed}");
        let duration = report.duration_s.or(stream.duration_s).expect("a duration");
        assert!(
            (duration - segment.duration_s).abs() < 0.1,
            "{dubbed}: {duration} s for a {} s segment",
            segment.duration_s
        );
    }
    let entries = Manifest::read(&dir.join(MANIFEST_FILE)).unwrap();
    let finals = final_records(&entries);
    assert_eq!(finals.len(), audio.len(), "{finals:#?}");
    assert!(
        finals.iter().all(|f| f.status == FragmentStatus::Processed
            && f.dubbed_file.as_deref().is_some_and(|d| d.ends_with(".wav"))),
        "{finals:#?}"
    );

    let init = peer
        .wait_for("stream:init", |r| r["event"] == "stream_init")
        .await;
    assert_eq!(init["config"]["format"], "pcm_s16le");
    assert_eq!(init["config"]["sample_rate_hz"], 24_000);
    assert_eq!(init["config"]["channels"], 2);
    let received = peer.received();
    assert_eq!(received.len(), audio.len(), "{received:#?}");
    for (record, segment) in received.iter().zip(&audio) {
        assert_eq!(record["format"], "pcm_s16le", "{record}");
        assert_eq!(
            (record["sample_rate_hz"].as_u64(), record["channels"].as_u64()),
            (Some(24_000), Some(2))
        );
        // base64 of 24 kHz stereo 16-bit: 128 000 characters a second.
        let seconds = record["bytes"].as_f64().unwrap() / 128_000.0;
        assert!(
            (seconds - segment.duration_s).abs() < 0.1,
            "{record} for {segment:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_sts_down_segmenting_goes_on_and_fragments_fail_in_bounded_time() {
    let world = World::new();
    let id = world.stream_id("nosts");
    let fixture = fixture(&small_recipe("sts-12s", 12.0)).await;
    let mut config = world.worker_config(&id, SourceElement::Rtmpsrc);
    // Held to the test's end: the STS stays down, and no other test takes the port.
    let down = media_tools::RefusingPort::bind().unwrap();
    config.sts = Some(StsSettings {
        fragment_timeout: Duration::from_secs(2),
        end_timeout: Duration::from_secs(2),
        ..StsSettings::new(down.http_url())
    });
    let mut worker = spawn_once(config);
    let mut publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    publisher.finish_for(&worker).await;
    let published = Instant::now();
    let events = collect_events(&mut worker).await;
    worker.wait().await.expect("the worker finishes cleanly");
    // The end waits 2 s for answers, a write at most 5 s, plus 5 s of margin.
    let finishing = published.elapsed();
    assert!(
        finishing < Duration::from_secs(15),
        "finished {finishing:?} after the stream"
    );

    let dir = world.stream_dir(&id);
    let audio = audio_segments(&events);
    assert_eq!(audio.len(), 2, "every audio segment is written: {audio:#?}");
    let video = events
        .iter()
        .filter(|e| matches!(e, WorkerEvent::SegmentWritten(s) if s.kind == MediaKind::Video))
        .count();
    assert_eq!(video, 2);
    for segment in &audio {
        assert!(segment.write_latency_ms < 1000.0, "{segment:?}");
        assert!(dir.join(&segment.file).exists());
    }
    assert!(events_named(&events, "sts_connect_failed") > 0, "{events:#?}");
    assert_eq!(events_named(&events, "fragment_sent"), 0);

    let entries = Manifest::read(&dir.join(MANIFEST_FILE)).unwrap();
    let finals = final_records(&entries);
    assert_eq!(
        finals.iter().map(|f| f.index).collect::<Vec<_>>(),
        audio.iter().map(|s| s.index).collect::<Vec<_>>(),
        "{finals:#?}"
    );
    for record in &finals {
        assert_eq!(record.status, FragmentStatus::Failed, "{record:?}");
        let reason = record.reason.as_deref().unwrap_or_default();
        assert!(!reason.is_empty(), "{record:?}");
        assert!(record.round_trip_ms.is_none() && record.dubbed_file.is_none());
    }
    assert_eq!(events_named(&events, "fragment_failed"), audio.len());
    assert!(
        events.iter().any(|e| matches!(
            e,
            WorkerEvent::StsEnded {
                processed: 0,
                failed: 2,
                stream_end_sent: false,
                ..
            }
        )),
        "{events:#?}"
    );
    assert!(
        !std::fs::read_dir(&dir)
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().starts_with("dubbed_") })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_ends_the_sts_stream() {
    let mut peer = sts_peer::EchoPeer::start(&[]).await;
    let world = World::new();
    let id = world.stream_id("dubstop");
    let fixture = fixture(&small_recipe("stop-30s", 30.0)).await;
    let mut config = world.worker_config(&id, SourceElement::Rtmpsrc);
    config.sts = Some(StsSettings::new(peer.url()));
    // Not `once`: only the stop request ends it.
    let mut worker = ingest::WorkerRunner::new(config).spawn().expect("worker thread");
    let _publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    let mut events = Vec::new();
    while !events
        .iter()
        .any(|e| matches!(e, WorkerEvent::FragmentProcessed(_)))
    {
        let event = tokio::time::timeout(DEADLINE, worker.next_event())
            .await
            .expect("a first dub before the deadline")
            .expect("the worker keeps running");
        events.push(event);
    }
    worker.stop();
    events.extend(collect_events(&mut worker).await);
    worker.wait().await.expect("a stopped worker finishes cleanly");

    let audio = audio_segments(&events);
    // The partial segment flushed at the stop is delivered too.
    assert!(audio.len() >= 2 && audio.last().unwrap().partial, "{audio:#?}");
    assert_eq!(
        events_named(&events, "fragment_processed"),
        audio.len(),
        "{events:#?}"
    );
    let end = peer.wait_for("stream:end", |r| r["event"] == "stream_end").await;
    assert_eq!(end["stream_id"], id.as_str());
}
