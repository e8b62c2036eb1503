//! The harness must catch a broken ingest. A real scenario runs against the
//! embedded server; then faults are planted in what the ingest produced
//! (audio segments gone, a video segment that no longer starts on a
//! keyframe) and the same assessment must fail, while the untouched run
//! passes.

use harness::suite::Suite;
use harness::{MediaServer, Observed, Plan, RunSettings, ServerSettings, Stated, Unmet};
use ingest::{MediaKind, WorkerEvent};

const PACKET: usize = 188;
const VIDEO_PID: u16 = 0x0100;

/// The happy path's plan, and what its world left, observed.
async fn observe_happy_path<'a>(suite: &'a Suite, run_dir: &std::path::Path) -> (Plan<'a>, Observed) {
    let file = suite
        .scenario("happy-path-fast")
        .expect("the suite has happy-path-fast");
    let server = MediaServer::embedded(&run_dir.join("server.log"), &ServerSettings::default())
        .await
        .expect("embedded server");
    let plan = Plan::make(file, &suite.fixtures, run_dir, &RunSettings::default(), 1)
        .await
        .expect("the scenario plans");
    let world = harness::run_world(&plan, &server)
        .await
        .expect("the scenario runs");
    let observed = harness::observe(&plan, world).await;
    (plan, observed)
}

fn problems(plan: &Plan<'_>, observed: &Observed) -> Vec<Unmet> {
    harness::assess(plan, observed).unmet
}

/// Whether `unmet` holds a stated fact `what` that differs.
fn states(unmet: &[Unmet], what: Stated) -> bool {
    unmet
        .iter()
        .any(|u| matches!(u, Unmet::Stated { what: w, .. } if *w == what))
}

/// Removes the first video access unit (the keyframe) from an MPEG-TS file,
/// keeping PAT/PMT, so the file starts on a predicted picture.
fn drop_first_video_access_unit(ts: &[u8]) -> Vec<u8> {
    let packets: Vec<&[u8]> = ts.chunks(PACKET).collect();
    let is_video_start = |p: &&[u8]| {
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        pid == VIDEO_PID && p[1] & 0x40 != 0
    };
    let starts: Vec<usize> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| is_video_start(p))
        .map(|(i, _)| i)
        .collect();
    let (first, second) = (starts[0], starts[1]);
    packets
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < first || *i >= second)
        .flat_map(|(_, p)| p.iter().copied())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_faults_make_the_suite_fail() {
    let suite = Suite::load().expect("suite loads");
    let run_dir = tempfile::tempdir().unwrap();
    let (plan, observed) = observe_happy_path(&suite, run_dir.path()).await;
    assert_eq!(problems(&plan, &observed), [], "the untouched run passes");

    // Fault 1: audio dropped.
    let mut no_audio = observed.clone();
    for stream in &mut no_audio.streams {
        stream
            .world
            .events
            .retain(|(_, e)| !matches!(e, WorkerEvent::SegmentWritten(s) if s.kind == MediaKind::Audio));
        stream.segments.retain(|s| s.record.kind == MediaKind::Video);
    }
    let found = problems(&plan, &no_audio);
    assert!(states(&found, Stated::AudioSegments), "{found:#?}");

    // Fault 2: a video segment no longer starts on a keyframe.
    let stream = &observed.streams[0];
    let target = stream
        .segments
        .iter()
        .find(|s| s.record.kind == MediaKind::Video && s.record.index == 1)
        .expect("a second video segment");
    let broken = drop_first_video_access_unit(&std::fs::read(&target.path).unwrap());
    std::fs::write(&target.path, broken).unwrap();
    let mut misaligned = observed.clone();
    misaligned.streams[0].segments = harness::probe_segments(&stream.world).await;
    let found = problems(&plan, &misaligned);
    assert!(states(&found, Stated::KeyframeAligned), "{found:#?}");
}
