//! The dubbed output against a real server: the worker publishes the input's
//! video with the dubbed audio to `live/<id>/out`, where an independent
//! reader reads it back; a span whose dub does not come in time carries the
//! fallback, and the output never stalls.

#[path = "../../sts/tests/support/mod.rs"]
mod sts_peer;
mod support;

use std::time::Duration;

use ingest::{OutputSettings, RtmpUrl, SourceElement, SpanAudio, StsSettings, WorkerEvent};
use media_tools::PublishOptions;
use media_tools::flv::{self, FlvTag};
use support::output_reader::read_out;
use support::*;

fn output_spans(events: &[WorkerEvent]) -> Vec<ingest::OutputRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::OutputSpan(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// Pictures the reader got from its first keyframe are the input's from
/// one of its keyframes to its end: none lost, none repeated, none added.
/// (Counted, not timed: the output's clock starts where the ingest's does.)
fn assert_every_picture_from_the_first_keyframe(out: &[FlvTag], fixture: &[FlvTag]) {
    let pictures: Vec<&FlvTag> = out
        .iter()
        .filter(|t| t.kind == flv::VIDEO && t.is_frame())
        .collect();
    let first = pictures
        .iter()
        .position(|t| t.is_keyframe())
        .expect("the reader got a keyframe");
    let input: Vec<&FlvTag> = fixture
        .iter()
        .filter(|t| t.kind == flv::VIDEO && t.is_frame())
        .collect();
    let got = pictures.len() - first;
    let keyframes: Vec<usize> = (0..input.len()).filter(|&i| input[i].is_keyframe()).collect();
    assert!(
        got <= input.len() && keyframes.contains(&(input.len() - got)),
        "{got} pictures from the reader's first keyframe are not the input's from one of its keyframes ({keyframes:?} of {})",
        input.len()
    );
    let times: Vec<u32> = pictures[first..].iter().map(|t| t.timestamp).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dubbed_stream_goes_out_with_every_picture_and_each_span_s_dub() {
    let peer = sts_peer::EchoPeer::start(&[]).await;
    let world = World::new();
    let id = world.stream_id("out");
    let fixture = fixture(&small_recipe("out-14s", 14.0)).await;
    let tags = flv::read_tags(&std::fs::read(&fixture).unwrap()).unwrap();
    let mut config = world.worker_config(&id, SourceElement::Rtmpsrc);
    config.sts = Some(StsSettings::new(peer.url()));
    let out_path = format!("live/{id}/out");
    config.output = Some(OutputSettings::new(
        RtmpUrl::parse(&world.server.url(&out_path)).unwrap(),
    ));
    let reader = read_out(&world.server, out_path, DEADLINE);
    let events = world.ingest_whole(config, &fixture, &id).await;
    let out = reader.await.unwrap();

    let spans = output_spans(&events);
    assert_eq!(spans.len(), 3, "one per audio segment: {spans:#?}");
    assert!(spans.iter().all(|s| s.audio == SpanAudio::Dub), "{spans:#?}");
    let ended: Vec<&Option<String>> = events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::OutputEnded { failure, .. } => Some(failure),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [&None], "one publish, ended cleanly");
    assert_every_picture_from_the_first_keyframe(&out, &tags);
    assert!(
        out.iter().any(|t| t.kind == flv::AUDIO && t.is_frame()),
        "audio goes out"
    );
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dub_in_time_the_fallback_fills_each_span_and_nothing_stalls() {
    let down = media_tools::RefusingPort::bind().unwrap();
    let world = World::new();
    let id = world.stream_id("fallback");
    let fixture = fixture(&small_recipe("fallback-8s", 8.0)).await;
    let tags = flv::read_tags(&std::fs::read(&fixture).unwrap()).unwrap();
    let mut config = world.worker_config(&id, SourceElement::Rtmpsrc);
    config.sts = Some(StsSettings {
        fragment_timeout: Duration::from_secs(1),
        end_timeout: Duration::from_secs(1),
        ..StsSettings::new(down.http_url())
    });
    let out_path = format!("live/{id}/out");
    config.output = Some(OutputSettings::new(
        RtmpUrl::parse(&world.server.url(&out_path)).unwrap(),
    ));
    let reader = read_out(&world.server, out_path, DEADLINE);
    let mut worker = spawn_once(config);
    let mut publisher = world.publish(&fixture, &id, &PublishOptions::default()).await;
    publisher.finish_for(&worker).await;
    let events = collect_events(&mut worker).await;
    worker.wait().await.expect("the worker finishes cleanly");
    let out = reader.await.unwrap();

    let spans = output_spans(&events);
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for span in &spans {
        assert_eq!(span.audio, SpanAudio::Original, "{span:?}");
        assert!(span.reason.is_some(), "a fallback says why: {span:?}");
    }
    assert_every_picture_from_the_first_keyframe(&out, &tags);
}
