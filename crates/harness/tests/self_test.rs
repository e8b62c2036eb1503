//! The harness must catch a broken ingest. A real scenario runs against the
//! embedded server; then faults are planted in what the ingest produced
//! (audio segments gone, a video segment that no longer starts on a
//! keyframe) and the same assessment must fail, while the untouched run
//! passes.

use harness::runner::{self, Observed, RunSettings};
use harness::server::{MediaServer, ServerSettings};
use harness::suite::Suite;
use ingest::{MediaKind, WorkerEvent};

const PACKET: usize = 188;
const VIDEO_PID: u16 = 0x0100;

async fn observe_happy_path(suite: &Suite, run_dir: &std::path::Path) -> Observed {
    let file = suite
        .scenario("happy-path-fast")
        .expect("the suite has happy-path-fast");
    let server = MediaServer::embedded(&run_dir.join("server.log"), &ServerSettings::default())
        .await
        .expect("embedded server");
    runner::observe(
        file,
        &suite.fixtures,
        &server,
        run_dir,
        &RunSettings::default(),
        1,
    )
    .await
    .expect("the scenario runs")
}

fn problems(suite: &Suite, observed: &Observed) -> Vec<String> {
    let file = suite
        .scenario("happy-path-fast")
        .expect("the suite has happy-path-fast");
    runner::assess(file, runner::recipe_of(file, &suite.fixtures), observed).2
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
    let observed = observe_happy_path(&suite, run_dir.path()).await;
    assert_eq!(
        problems(&suite, &observed),
        Vec::<String>::new(),
        "the untouched run passes"
    );

    // Fault 1: audio dropped.
    let mut no_audio = Observed {
        dir: observed.dir.clone(),
        streams: Vec::new(),
    };
    for (observation, segments) in &observed.streams {
        let mut observation_copy = observation.clone();
        observation_copy
            .events
            .retain(|(_, e)| !matches!(e, WorkerEvent::SegmentWritten(s) if s.kind == MediaKind::Audio));
        let video_only = segments
            .iter()
            .filter(|s| s.record.kind == MediaKind::Video)
            .cloned()
            .collect();
        no_audio.streams.push((observation_copy, video_only));
    }
    let found = problems(&suite, &no_audio);
    assert!(found.iter().any(|p| p.contains("audio segments")), "{found:#?}");

    // Fault 2: a video segment no longer starts on a keyframe.
    let (observation, segments) = &observed.streams[0];
    let target = segments
        .iter()
        .find(|s| s.record.kind == MediaKind::Video && s.record.index == 1)
        .expect("a second video segment");
    let broken = drop_first_video_access_unit(&std::fs::read(&target.path).unwrap());
    std::fs::write(&target.path, broken).unwrap();
    let reprobed = harness::probe_segments(observation).await;
    let misaligned = Observed {
        dir: observed.dir.clone(),
        streams: vec![(observation.clone(), reprobed)],
    };
    let found = problems(&suite, &misaligned);
    assert!(found.iter().any(|p| p.contains("keyframe aligned")), "{found:#?}");
}
