//! Each YAML file under scenarios/ is one test, so `cargo test -- NAME`,
//! `--list` and nextest all work on scenarios. Steered by E2E_SERVER,
//! E2E_SOURCE, E2E_RUN_DIR and E2E_KEEP_ARTIFACTS (see `harness::suite`).

use std::sync::Arc;

use harness::ServerSettings;
use harness::suite::{self, Suite};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args = Arguments::from_args();
    let suite = match Suite::load() {
        Ok(suite) => Arc::new(suite),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let incompatible = suite.incompatible();
    if !incompatible.is_empty() {
        for e in incompatible {
            eprintln!("error: {e}");
        }
        std::process::exit(2);
    }
    // A server that cannot be had here (no Docker for `mediamtx`) makes every
    // scenario ignored, with the reason, never passed.
    let choice = suite::settings_from_env().ok().map(|(choice, _, _)| choice);
    let unavailable = choice.as_ref().and_then(suite::ServerChoice::unavailable);
    if let Some(reason) = &unavailable {
        eprintln!("scenarios skipped: {reason}");
    }
    let trials = (0..suite.scenarios.len())
        .map(|i| {
            let suite = suite.clone();
            let file = &suite.scenarios[i];
            let kind = file.scenario.tags.first().cloned().unwrap_or_default();
            // A scenario that needs what the server does not do is ignored,
            // with the reason.
            let cannot = choice.as_ref().and_then(|c| c.cannot_run(&file.scenario));
            if let Some(reason) = &cannot
                && unavailable.is_none()
            {
                eprintln!("{} skipped: {reason}", file.name);
            }
            Trial::test(file.name.clone(), move || run(&suite, i))
                .with_kind(kind)
                .with_ignored_flag(unavailable.is_some() || cannot.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn run(suite: &Suite, index: usize) -> Result<(), Failed> {
    let (choice, settings, run_dir) = suite::settings_from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let image = std::env::var(suite::ENV_MEDIAMTX_IMAGE).ok();
        let file = &suite.scenarios[index];
        // One server per trial (nextest runs each in its own process), so
        // each trial gets a run folder of its own holding its server.log.
        let trial_dir = run_dir.join(file.name.replace('/', "-"));
        // nextest retries a failed trial in a new process and numbers it.
        let attempt = std::env::var("NEXTEST_ATTEMPT")
            .ok()
            .and_then(|a| a.parse().ok())
            .unwrap_or(1);
        let ids: Vec<String> = (0..file.scenario.streams)
            .map(|k| harness::stream_id(&file.name, k, &settings.run_id, attempt))
            .collect();
        let server = choice
            .start_for(&trial_dir, image.as_deref(), &ServerSettings::default(), &ids)
            .await
            .map_err(|e| e.to_string())?;
        let checked = suite::check_scenario(suite, file, &server, &trial_dir, &settings, attempt).await;
        server.shutdown().await;
        checked
            .map(|_| ())
            .map_err(|failure| Failed::from(failure.message))
    })
}
