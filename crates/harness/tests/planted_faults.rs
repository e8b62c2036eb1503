//! The suite catches a broken ingest: with a fault planted in the real
//! ingest (keyframe alignment broken, or audio dropped), a scenario that
//! passes on the sound ingest fails. A test binary of its own, since a
//! planted fault applies to the whole process.

use harness::runner::{self, RunSettings};
use harness::server::{MediaServer, ServerSettings};
use harness::suite::Suite;
use ingest::planted::{Fault, plant};

async fn problems_with(fault: Option<Fault>) -> Vec<String> {
    plant(fault);
    let suite = Suite::load().expect("suite loads");
    let file = suite
        .scenario("happy-path-fast")
        .expect("the suite has happy-path-fast");
    let run_dir = tempfile::tempdir().unwrap();
    let server = MediaServer::embedded(&run_dir.path().join("server.log"), &ServerSettings::default())
        .await
        .expect("embedded server");
    let result = runner::run_scenario(
        file,
        &suite.fixtures,
        &server,
        run_dir.path(),
        &RunSettings::default(),
        1,
    )
    .await
    .expect("the scenario runs");
    plant(None);
    result.problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_faults_in_the_ingest_fail_a_scenario() {
    assert_eq!(
        problems_with(None).await,
        Vec::<String>::new(),
        "the sound ingest passes"
    );

    let misaligned = problems_with(Some(Fault::MisalignedCuts)).await;
    assert!(
        misaligned.iter().any(|p| p.contains("keyframe aligned")),
        "{misaligned:#?}"
    );

    let no_audio = problems_with(Some(Fault::DropAudio)).await;
    assert!(
        no_audio.iter().any(|p| p.contains("audio segments")),
        "{no_audio:#?}"
    );
}
