//! The write fence and the first segment index, as a cluster's lease uses
//! them, against a real RTMP server and a real publish.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ingest::{ErrorKind, SourceElement, WorkerEvent, WorkerRunner, WriteFence};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_worker_stops_within_a_frame_and_writes_no_later_segment() {
    let world = World::new();
    let id = world.stream_id("fence");
    let fixture = fixture(&small_recipe("fence-14s", 14.0)).await;
    let open = Arc::new(AtomicBool::new(true));
    let gate = Arc::clone(&open);
    let fence = WriteFence::new(move || {
        if gate.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err("the lease of the stream was lost".to_owned())
        }
    });
    let mut worker = WorkerRunner::new(world.worker_config(&id, SourceElement::Rtmpsrc))
        .stop_when_stream_ends(true)
        .fenced(fence)
        .spawn()
        .expect("worker thread");
    let _publisher = world.publish(&fixture, &id, &Default::default()).await;
    // The fence closes once the first segment is written.
    let mut events = Vec::new();
    while let Some(event) = worker.next_event().await {
        let first = matches!(&event, WorkerEvent::SegmentWritten(s) if s.index == 0);
        events.push(event);
        if first {
            open.store(false, Ordering::SeqCst);
            break;
        }
    }
    events.extend(collect_events(&mut worker).await);
    let failure = worker.wait().await.expect_err("a fenced worker fails");
    assert_eq!(failure.kind(), ErrorKind::Fenced);
    assert!(
        failure.to_string().contains("the lease of the stream was lost"),
        "{failure}"
    );
    // It failed while the stream was still coming, not at its end.
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, WorkerEvent::Disconnected { .. } | WorkerEvent::Finished { .. })),
        "{events:#?}"
    );
    let files = segment_files(&world.stream_dir(&id));
    assert!(
        files.iter().all(|f| f.ends_with("_000000.ts")),
        "nothing after segment 0: {files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_told_where_numbering_stands_continues_it() {
    let world = World::new();
    let id = world.stream_id("numbering");
    let fixture = fixture(&small_recipe("numbering-8s", 8.0)).await;
    let worker = WorkerRunner::new(world.worker_config(&id, SourceElement::Rtmpsrc))
        .stop_when_stream_ends(true)
        .first_segment(7)
        .spawn()
        .expect("worker thread");
    let events = world.publish_whole_to(worker, &fixture, &id).await;
    let indexes: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::SegmentWritten(s) if s.kind == ingest::MediaKind::Video => Some(s.index),
            _ => None,
        })
        .collect();
    assert_eq!(indexes, [7, 8]);
}
