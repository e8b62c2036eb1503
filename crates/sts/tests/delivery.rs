//! Delivery against the real echo STS peer (python-socketio): the happy
//! path, flow control (max_inflight, backpressure, the bounded queue) and
//! fragment-level errors.

mod support;

use std::sync::Arc;
use sts::{AudioFormat, ConfigError, StsClient, StsConfig, StsError, StsEvent, SubmitError};

use support::{
    EchoPeer, FfmpegDecoder, audio_of, config, end_and_collect, failed, max_in_flight, processed, segments,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_segments_come_back_dubbed_in_order() {
    let mut peer = EchoPeer::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let fragments = segments(dir.path(), 5);
    let (sts, events) = StsClient::start(config(&peer.url()), "cam1", "worker-1").unwrap();
    for fragment in &fragments {
        sts.submit(fragment.clone()).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!(processed(&events), [0, 1, 2, 3, 4], "{events:#?}");
    assert_eq!((summary.processed, summary.failed, summary.not_sent), (5, 0, 0));
    assert!(summary.stream_end_sent);
    for fragment in &fragments {
        let dubbed = dir
            .path()
            .join(format!("dubbed_{:06}.aac", fragment.sequence_number));
        let audio = audio_of(&dubbed).await;
        assert_eq!(audio.codec_name, "aac", "{}", dubbed.display());
        // The echo returns the segment's own frames: every one of them.
        let sent = audio_of(&fragment.path)
            .await
            .frames
            .expect("the segment's packet count");
        assert_eq!(audio.frames, Some(sent), "{}", dubbed.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let first = events
        .iter()
        .find_map(|e| match e {
            StsEvent::FragmentProcessed {
                transcript,
                translated_text,
                round_trip_ms,
                dubbed_file,
                ..
            } => Some((
                transcript.clone(),
                translated_text.clone(),
                *round_trip_ms,
                dubbed_file.clone(),
            )),
            _ => None,
        })
        .unwrap();
    assert_eq!(first.0.as_deref(), Some("echo transcript 0"));
    assert_eq!(first.1.as_deref(), Some("echo translation 0"));
    assert!(first.2 > 0.0);
    assert_eq!(first.3, dir.path().join("dubbed_000000.aac"));
    let acked = events
        .iter()
        .filter(|e| matches!(e, StsEvent::FragmentAcked { .. }))
        .count();
    assert_eq!(acked, 5);
    assert!(
        matches!(
            events[0],
            StsEvent::SessionReady {
                max_inflight: 3,
                connection: 1,
                ..
            }
        ),
        "{:?}",
        events[0]
    );

    let init = peer
        .wait_for("stream:init", |r| r["event"] == "stream_init")
        .await;
    assert_eq!(init["stream_id"], "cam1");
    assert_eq!(init["config"]["format"], "aac");
    assert_eq!(init["config"]["chunk_duration_ms"], 6000);
    assert_eq!(init["config"]["target_language"], "es");
    let end = peer.wait_for("stream:end", |r| r["event"] == "stream_end").await;
    assert_eq!(end["stream_id"], "cam1");
    let received = peer.received();
    assert_eq!(received.len(), 5, "each fragment sent once");
    assert!(
        received.iter().all(|r| r["bytes"].as_u64().unwrap() > 100_000),
        "a 6-s segment's worth of base64"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sts_with_max_inflight_one_gets_one_fragment_at_a_time() {
    let peer = EchoPeer::start(&["--max-inflight", "1", "--delay-ms", "150"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "slow", "w").unwrap();
    for fragment in segments(dir.path(), 4) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!(processed(&events), [0, 1, 2, 3]);
    assert_eq!(summary.processed, 4);
    assert_eq!(max_in_flight(&events), 1, "{events:#?}");
    let received = peer.received();
    assert_eq!(received.len(), 4);
    for record in &received {
        assert_eq!(
            record["inflight"], 1,
            "the STS saw more than one unanswered: {record}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_delays_the_next_send() {
    let peer = EchoPeer::start(&[
        "--max-inflight",
        "1",
        "--backpressure-every",
        "2",
        "--backpressure-delay-ms",
        "300",
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "bp", "w").unwrap();
    for fragment in segments(dir.path(), 5) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;
    assert_eq!(summary.processed, 5);

    let pressures: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StsEvent::Backpressure {
                recommended_delay_ms,
                applied_delay_ms,
                ..
            } => Some((*recommended_delay_ms, *applied_delay_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(pressures, [(300, 300), (300, 300)]);
    // On the STS's clock: nothing arrives within the delay after it asked.
    let records = peer.log_records();
    let mut checked = 0;
    for (i, record) in records.iter().enumerate() {
        if record["event"] != "backpressure" {
            continue;
        }
        let asked = record["t"].as_f64().unwrap();
        let next = records[i..]
            .iter()
            .find(|r| r["event"] == "fragment")
            .expect("a fragment after each backpressure");
        let gap = next["t"].as_f64().unwrap() - asked;
        assert!(
            gap >= 0.3,
            "fragment {} came {gap:.3}s after backpressure",
            next["sequence_number"]
        );
        checked += 1;
    }
    assert_eq!(checked, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_on_one_fragment_fails_it_after_one_retry() {
    let peer = EchoPeer::start(&["--error-on", "2"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "err", "w").unwrap();
    for fragment in segments(dir.path(), 5) {
        sts.submit(fragment).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!(processed(&events), [0, 1, 3, 4]);
    let failures = failed(&events);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, 2);
    assert!(
        failures[0].1.contains("PROCESSING_FAILED") && failures[0].1.contains("--error-on 2"),
        "{}",
        failures[0].1
    );
    assert!(failures[0].1.contains("after 2 sends"), "{}", failures[0].1);
    assert_eq!((summary.processed, summary.failed), (4, 1));
    assert!(!dir.path().join("dubbed_000002.aac").exists());
    let sends_of_2: Vec<_> = peer
        .received()
        .into_iter()
        .filter(|r| r["sequence_number"] == 2)
        .collect();
    assert_eq!(sends_of_2.len(), 2, "one retry");
    assert_eq!(sends_of_2[0]["fragment_id"], sends_of_2[1]["fragment_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_and_keeps_the_segment() {
    let peer = EchoPeer::start(&["--max-inflight", "1", "--delay-ms", "300"]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = StsConfig {
        max_queue: 2,
        ..config(&peer.url())
    };
    let (sts, events) = StsClient::start(config, "full", "w").unwrap();
    let fragments = segments(dir.path(), 5);
    let results: Vec<_> = fragments.iter().map(|f| sts.submit(f.clone())).collect();
    assert_eq!(results[..2], [Ok(()), Ok(())]);
    for result in &results[2..] {
        assert_eq!(*result, Err(SubmitError::QueueFull { max_queue: 2 }));
    }
    let (summary, events) = end_and_collect(sts, events).await;

    assert_eq!(processed(&events), [0, 1]);
    assert_eq!((summary.processed, summary.not_sent), (2, 3));
    let not_sent: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StsEvent::FragmentNotSent {
                sequence_number,
                file,
                reason,
            } => Some((*sequence_number, file.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(not_sent.iter().map(|n| n.0).collect::<Vec<_>>(), [2, 3, 4]);
    for (seq, file, reason) in not_sent {
        assert!(reason.contains("queue full"), "{reason}");
        assert!(file.exists(), "segment {seq} stays on disk");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_sequence_number_twice_is_refused() {
    let peer = EchoPeer::start(&["--delay-ms", "200"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (sts, events) = StsClient::start(config(&peer.url()), "dup", "w").unwrap();
    let fragment = segments(dir.path(), 1).remove(0);
    sts.submit(fragment.clone()).unwrap();
    sts.submit(fragment).unwrap();
    let (summary, events) = end_and_collect(sts, events).await;
    assert_eq!(processed(&events), [0]);
    assert_eq!((summary.processed, summary.not_sent), (1, 1));
    assert!(events.iter().any(
        |e| matches!(e, StsEvent::FragmentNotSent { reason, .. } if reason.contains("already waiting or in flight"))
    ));
}

#[tokio::test]
async fn pcm_without_a_decoder_is_refused_at_start() {
    let config = StsConfig {
        format: AudioFormat::PcmS16le {
            sample_rate_hz: 16_000,
            channels: 1,
        },
        ..StsConfig::new("http://127.0.0.1:9")
    };
    let err = StsClient::start(config, "s", "w").unwrap_err();
    assert!(
        matches!(err, StsError::Config(ConfigError::Unsupported { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("start_with_decoder"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcm_goes_out_decoded_and_comes_back_as_wav() {
    let mut peer = EchoPeer::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let fragments = segments(dir.path(), 2);
    let config = StsConfig {
        format: AudioFormat::PcmS16le {
            sample_rate_hz: 16_000,
            channels: 1,
        },
        ..config(&peer.url())
    };
    let (sts, events) = StsClient::start_with_decoder(config, "pcm", "w", Arc::new(FfmpegDecoder)).unwrap();
    for fragment in &fragments {
        sts.submit(fragment.clone()).unwrap();
    }
    let (summary, events) = end_and_collect(sts, events).await;
    assert_eq!(processed(&events), [0, 1], "{events:#?}");
    assert_eq!((summary.processed, summary.failed), (2, 0));
    for fragment in &fragments {
        let dubbed = dir
            .path()
            .join(format!("dubbed_{:06}.wav", fragment.sequence_number));
        let audio = audio_of(&dubbed).await;
        assert_eq!(
            (audio.codec_name.as_str(), audio.sample_rate, audio.channels),
            ("pcm_s16le", Some(16_000), Some(1)),
            "{}",
            dubbed.display()
        );
        let duration = audio.duration_s.expect("a WAV states its duration");
        assert!((duration - 6.0).abs() < 0.1, "{}: {duration} s", dubbed.display());
    }

    let init = peer
        .wait_for("stream:init", |r| r["event"] == "stream_init")
        .await;
    assert_eq!(init["config"]["format"], "pcm_s16le");
    assert_eq!(init["config"]["sample_rate_hz"], 16_000);
    assert_eq!(init["config"]["channels"], 1);
    for record in peer.received() {
        assert_eq!(record["format"], "pcm_s16le", "{record}");
        // 6 s of 16 kHz mono is 192 000 bytes, 256 000 in base64.
        let bytes = record["bytes"].as_u64().unwrap();
        assert!((250_000..262_000).contains(&bytes), "{record}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_be_decoded_fails_with_the_reason() {
    let peer = EchoPeer::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut fragments = segments(dir.path(), 2);
    std::fs::write(&fragments[0].path, b"not an MPEG-TS segment").unwrap();
    let config = StsConfig {
        format: AudioFormat::PcmS16le {
            sample_rate_hz: 8_000,
            channels: 2,
        },
        ..config(&peer.url())
    };
    let (sts, events) = StsClient::start_with_decoder(config, "bad", "w", Arc::new(FfmpegDecoder)).unwrap();
    for fragment in fragments.drain(..) {
        sts.submit(fragment).unwrap();
    }
    let (_, events) = end_and_collect(sts, events).await;
    let failures = failed(&events);
    assert_eq!(failures.len(), 1, "{events:#?}");
    assert_eq!(failures[0].0, 0);
    assert!(
        failures[0].1.contains("audio_000000.ts") && failures[0].1.contains("cannot decode to pcm_s16le"),
        "{failures:?}"
    );
    assert_eq!(processed(&events), [1], "the next segment is not held up");
    assert!(!dir.path().join("dubbed_000000.wav").exists());
}

#[test]
fn start_needs_a_runtime() {
    let err = StsClient::start(StsConfig::new("http://127.0.0.1:9"), "s", "w").unwrap_err();
    assert!(matches!(err, StsError::NoRuntime), "{err}");
}
