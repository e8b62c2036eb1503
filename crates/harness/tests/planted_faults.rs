//! The suite catches a broken ingest: with a fault planted in the real
//! ingest (keyframe alignment broken, or audio dropped), a scenario that
//! passes on the sound ingest fails. A test binary of its own, since a
//! planted fault applies to the whole process.

use harness::suite::Suite;
use harness::{MediaServer, RunSettings, ServerSettings, Stated, Unmet};
use ingest::planted::{Fault, plant};

async fn problems_with(fault: Option<Fault>) -> Vec<Unmet> {
    plant(fault);
    let suite = Suite::load().expect("suite loads");
    let file = suite
        .scenario("happy-path-fast")
        .expect("the suite has happy-path-fast");
    let run_dir = tempfile::tempdir().unwrap();
    let server = MediaServer::embedded(&run_dir.path().join("server.log"), &ServerSettings::default())
        .await
        .expect("embedded server");
    let result = harness::run_scenario(
        file,
        &suite.fixtures,
        &server,
        (run_dir.path(), &suite.snapshot_dir()),
        &RunSettings::default(),
        1,
    )
    .await
    .expect("the scenario runs");
    plant(None);
    // The snapshot differs too, of course; the facts are what matter here.
    result
        .unmet
        .into_iter()
        .filter(|u| !matches!(u, Unmet::Snapshot(_)))
        .collect()
}

/// Whether `unmet` holds a stated fact `what` that differs.
fn states(unmet: &[Unmet], what: Stated) -> bool {
    unmet
        .iter()
        .any(|u| matches!(u, Unmet::Stated { what: w, .. } if *w == what))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_faults_in_the_ingest_fail_a_scenario() {
    assert_eq!(problems_with(None).await, [], "the sound ingest passes");

    let misaligned = problems_with(Some(Fault::MisalignedCuts)).await;
    assert!(states(&misaligned, Stated::KeyframeAligned), "{misaligned:#?}");

    let no_audio = problems_with(Some(Fault::DropAudio)).await;
    assert!(states(&no_audio, Stated::AudioSegments), "{no_audio:#?}");
}
