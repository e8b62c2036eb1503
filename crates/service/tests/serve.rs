//! The service against real parts: the embedded server (MediaMTX's
//! behaviour and Control API), ffmpeg publishers, the echo STS answering a
//! tone, and independent readers of every `live/<id>/out`.

#[path = "../../sts/tests/support/mod.rs"]
mod sts_peer;
mod support;

use std::time::Duration;

use support::*;

/// Every picture a reader of the output got from its first keyframe is
/// the input's, in order: as many as the input had from that time on.
fn assert_every_picture_from_the_reader_s_first_keyframe(
    out: &[media_tools::flv::FlvTag],
    pictures_in: usize,
) {
    let got = pictures(out);
    let first = got
        .iter()
        .position(|t| t.is_keyframe())
        .expect("the reader got a keyframe");
    let times: Vec<u32> = got[first..].iter().map(|t| t.timestamp).collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "pictures in order, none twice"
    );
    // At 30 fps, the pictures from the reader's first keyframe to the end.
    let span_ms = f64::from(times[times.len() - 1] - times[0]);
    let expected = (span_ms / (1000.0 / 30.0)).round() as usize + 1;
    assert_eq!(
        times.len(),
        expected,
        "no picture lost after the reader's first keyframe"
    );
    assert!(times.len() <= pictures_in);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_streams_get_one_worker_each_and_a_dubbed_output_each() {
    let peer = sts_peer::EchoPeer::start(&["--tone-hz", &DUB_HZ.to_string()]).await;
    let world = World::new();
    let media = fixture(&small_recipe("service-13s", 13.0)).await;
    let mut running = Running::start(world.config(Some(peer.url()))).await;
    let ids: Vec<String> = (0..3).map(|_| world.stream_id("svc")).collect();

    let readers: Vec<_> = ids
        .iter()
        .map(|id| world.read_out(format!("live/{id}/out")))
        .collect();
    let mut publishes = Vec::new();
    for id in &ids {
        publishes.push(world.publish_staged(&media, &format!("live/{id}/in")).await);
    }
    for (publish, id) in publishes.iter_mut().zip(&ids) {
        publish.finish_for(&running, id).await;
    }
    let mut outs = Vec::new();
    for reader in readers {
        outs.push(reader.await.expect("the reader ends with the output"));
    }

    let view = running.streams().await;
    for (id, out) in ids.iter().zip(&outs) {
        let records = manifest(&world.stream_dir(id));
        assert_eq!(segments(&records, "video"), [0, 1, 2], "{id}");
        assert_eq!(segments(&records, "audio"), [0, 1, 2], "{id}");
        let connections = records.iter().filter(|r| r["record"] == "connection").count();
        assert_eq!(connections, 1, "{id}: one worker, one connection");
        let stream = view.streams.iter().find(|s| &s.id == id).expect("listed");
        assert_eq!(stream.worker_starts, 1, "{id}: {stream:?}");
        assert_eq!(stream.output.as_deref(), Some(format!("live/{id}/out").as_str()));

        // Every span carried its dub: the tone, not the 440-Hz original.
        let spans: Vec<&serde_json::Value> = records.iter().filter(|r| r["record"] == "output").collect();
        assert_eq!(spans.len(), 3, "{id}: {spans:#?}");
        assert!(spans.iter().all(|s| s["audio"] == "dub"), "{id}: {spans:#?}");
        assert_every_picture_from_the_reader_s_first_keyframe(out, 390);
        let (dub, original) = tones(out, world.dir.path(), id).await;
        assert!(
            dub > 0.5 && original < 0.05,
            "{id}: the output carries the dub ({dub:.2}), not the original ({original:.2})"
        );
    }

    // Each worker stops once its stream has been gone for the grace.
    running
        .wait_for("every worker stopped", |v| {
            v.streams.iter().all(|s| s.state == "stopped")
        })
        .await;
    let (status, text) = running.get("/metrics").await;
    assert_eq!(status, 200);
    let exposition = openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("/metrics is not OpenMetrics text: {e:?}\n{text}"));
    assert!(
        exposition.families.contains_key("dubbing_worker_starts"),
        "{text}"
    );
    assert!(text.contains("dubbing_worker_starts_total 3\n"), "{text}");
    assert!(text.contains("dubbing_streams_discovered_total 3\n"), "{text}");
    assert!(text.contains("dubbing_streams_active 0\n"), "{text}");
    assert!(
        text.contains("dubbing_segments_total{track=\"video\"} 9\n"),
        "{text}"
    );
    assert!(
        text.contains("dubbing_output_spans_total{audio=\"dub\"} 9\n"),
        "{text}"
    );
    assert!(
        text.contains("dubbing_fragments_total{status=\"processed\"} 9\n"),
        "{text}"
    );

    running.stop().await;
    peer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_back_within_the_grace_keeps_its_worker_and_one_gone_longer_is_stopped() {
    let world = World::new();
    let media = fixture(&small_recipe("service-7s", 7.0)).await;
    let mut running = Running::start(world.config(None)).await;
    let id = world.stream_id("grace");
    let path = format!("live/{id}/in");

    let mut first = world.publish_staged(&media, &path).await;
    first.finish_for(&running, &id).await;
    running
        .wait_for("the worker waits for its stream within the grace", |v| {
            v.streams.iter().any(|s| s.id == id && s.state == "leaving")
        })
        .await;
    let mut second = world.publish_staged(&media, &path).await;
    second.finish_for(&running, &id).await;
    // Stopped after the grace.
    let stream = running.stopped(&id).await;
    assert_eq!(stream.worker_starts, 1, "the worker was kept: {stream:?}");
    assert_eq!(stream.connections, 2, "{stream:?}");
    let records = manifest(&world.stream_dir(&id));
    let video = segments(&records, "video");
    assert_numbered_from_zero(&video);
    assert_eq!(video.len(), 4, "two segments per publish: {video:?}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_never_starts_a_worker_and_a_bad_id_is_refused_with_its_reason() {
    let world = World::new();
    let media = fixture(&small_recipe("service-7s", 7.0)).await;
    let mut running = Running::start(world.config(None)).await;
    let good = world.stream_id("good");
    let bad_path = format!("live/{good}/sub/in");
    let out_path = format!("live/{}/out", world.stream_id("someone"));

    let mut outsider = world.publish_plain(&media, &out_path).await;
    let mut nested = world.publish_plain(&media, &bad_path).await;
    let view = running
        .wait_for("the nested path is refused", |v| {
            v.refused.iter().any(|r| r.path == bad_path)
        })
        .await;
    let refusal = view.refused.iter().find(|r| r.path == bad_path).expect("refused");
    assert!(
        refusal.reason.contains("'/'"),
        "the reason names the character: {}",
        refusal.reason
    );
    // The good stream is served as if nothing else were there.
    let mut publish = world.publish_staged(&media, &format!("live/{good}/in")).await;
    publish.finish_for(&running, &good).await;
    let view = running.streams().await;
    let ids: Vec<&str> = view.streams.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [good.as_str()], "only the input is served");
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("dubbing_streams_refused_total{reason=\"bad_id\"} 1\n"),
        "{metrics}"
    );
    outsider.kill().await;
    nested.kill().await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_streams_a_stream_is_refused_visibly_and_served_when_a_slot_frees() {
    let world = World::new();
    let media = fixture(&small_recipe("service-7s", 7.0)).await;
    let mut config = world.config(None);
    config.max_streams = 1;
    config.grace = Duration::from_millis(500);
    let mut running = Running::start(config).await;
    let (first, second) = (world.stream_id("first"), world.stream_id("second"));

    let mut one = world.publish_staged(&media, &format!("live/{first}/in")).await;
    // Long enough to outlast the first stream and its grace.
    let long = fixture(&small_recipe("service-30s", 30.0)).await;
    let mut waiting = world.publish_plain(&long, &format!("live/{second}/in")).await;
    let second_path = format!("live/{second}/in");
    let view = running
        .wait_for("the second stream is refused", |v| {
            v.refused.iter().any(|r| r.path == second_path)
        })
        .await;
    let refusal = view
        .refused
        .iter()
        .find(|r| r.path == second_path)
        .expect("refused");
    assert!(refusal.reason.contains("max_streams"), "{}", refusal.reason);
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("dubbing_streams_refused_total{reason=\"capacity\"} 1\n"),
        "{metrics}"
    );
    one.finish_for(&running, &first).await;
    // The first stream's worker stops after the grace; the second, still
    // publishing, gets the slot.
    running
        .wait_for("the second stream is served once the slot frees", |v| {
            v.streams.iter().any(|s| s.id == second && s.state == "running") && v.refused.is_empty()
        })
        .await;
    waiting.kill().await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_hooks_answer() {
    let world = World::new();
    let running = Running::start(world.config(None)).await;
    assert_eq!(running.get("/healthz").await.0, 200);
    // Ready once MediaMTX's API has answered.
    let (_, body) = running.wait_for_route("/readyz", |status, _| status == 200).await;
    assert_eq!(body, "ready\n");
    assert_eq!(running.post("/v1/hooks/ready?path=live/x/in").await.0, 202);
    assert_eq!(running.post("/v1/hooks/unavailable?path=live/x/in").await.0, 202);
    let (status, body) = running.post("/v1/hooks/published").await;
    assert_eq!(status, 404);
    assert!(body.contains("ready, not-ready"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_why_while_mediamtx_s_api_does_not_answer() {
    let world = World::new();
    let down = media_tools::RefusingPort::bind().expect("a refusing port");
    let mut config = world.config(None);
    config.api = down.http_url();
    let running = Running::start(config).await;
    let (status, body) = running
        .wait_for_route("/readyz", |_, body| body.contains("no answer from"))
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&down.http_url()),
        "the reason names the API: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_restarted_mid_stream_resumes_the_stream_and_continues_numbering() {
    let world = World::new();
    let media = fixture(&small_recipe("service-20s", 20.0)).await;
    let mut config = world.config(None);
    config.segment_duration = Duration::from_secs(2);
    let mut first = Running::start(config.clone()).await;
    let id = world.stream_id("restart");
    let mut publish = world.publish_staged(&media, &format!("live/{id}/in")).await;
    first
        .wait_for("two pairs written before the restart", |v| {
            v.streams.iter().any(|s| s.id == id && s.segments.video >= 2)
        })
        .await;
    // SIGTERM's stop: the worker flushes its partial segment and ends.
    first.stop().await;
    let second = Running::start(config).await;
    publish.finish_for(&second, &id).await;
    let stream = second.stopped(&id).await;
    assert_eq!(stream.worker_starts, 1, "{stream:?}");
    let records = manifest(&world.stream_dir(&id));
    let video = segments(&records, "video");
    assert_numbered_from_zero(&video);
    let connections = records.iter().filter(|r| r["record"] == "connection").count();
    assert_eq!(connections, 2, "one connection per service run");
    let partial = records
        .iter()
        .filter(|r| r["record"] == "segment" && r["partial"] == true)
        .count();
    assert!(partial >= 2, "the stop flushed a partial pair: {records:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_sts_down_the_output_carries_the_original_audio_and_never_stalls() {
    let world = World::new();
    let down = media_tools::RefusingPort::bind().expect("a refusing port");
    let media = fixture(&small_recipe("service-13s", 13.0)).await;
    let mut config = world.config(None);
    config.sts = Some(ingest::StsSettings {
        fragment_timeout: Duration::from_secs(1),
        end_timeout: Duration::from_secs(1),
        ..ingest::StsSettings::new(down.http_url())
    });
    let mut running = Running::start(config).await;
    let id = world.stream_id("sts-down");
    let reader = world.read_out(format!("live/{id}/out"));
    let mut publish = world.publish_staged(&media, &format!("live/{id}/in")).await;
    publish.finish_for(&running, &id).await;
    let out = reader.await.expect("the reader ends with the output");

    let records = manifest(&world.stream_dir(&id));
    let spans: Vec<&serde_json::Value> = records.iter().filter(|r| r["record"] == "output").collect();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    for span in &spans {
        assert_eq!(span["audio"], "original", "{span}");
        assert!(span["reason"].is_string(), "a fallback says why: {span}");
    }
    assert_every_picture_from_the_reader_s_first_keyframe(&out, 390);
    let (dub, original) = tones(&out, world.dir.path(), &id).await;
    assert!(
        original > 0.5 && dub < 0.05,
        "the original audio ({original:.2}), no dub ({dub:.2})"
    );
    let (_, metrics) = running.get("/metrics").await;
    assert!(
        metrics.contains("dubbing_output_spans_total{audio=\"original\"} 3\n"),
        "{metrics}"
    );
    running.stop().await;
}
