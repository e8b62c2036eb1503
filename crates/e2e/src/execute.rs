//! Runs the selected scenarios on one server: fixtures built first (the
//! CPU-heavy part, before anything else starts), then scenarios at once, a
//! CPU-count pool for fast ones, a larger one for realtime ones (paced by
//! the clock) and a CPU-count one for service scenarios (a whole service,
//! its publishers, readers and outputs each), each retried as asked;
//! Ctrl-C tears everything down.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use harness::suite::{self, Suite};
use harness::{MediaServer, RunSettings, ScenarioFile, ScenarioResult, ServerSettings};
use tokio::task::JoinSet;

use crate::args::Args;
use crate::report::progress;
use crate::selected::Selected;

/// How a scenario ended.
pub(crate) enum Finished {
    /// It ran: its last attempt's result, the attempts taken, and the
    /// failure message when it failed.
    Ran(Box<ScenarioResult>, u32, Option<String>),
    /// It could not be run at all.
    Error { scenario: String, message: String },
}

/// What a run did.
pub(crate) struct Ran {
    pub finished: Vec<Finished>,
    pub run_dir: PathBuf,
    pub server: String,
    pub wall: std::time::Duration,
}

pub(crate) async fn execute(args: &Args, suite: Arc<Suite>, selected: &Selected<'_>) -> Result<Ran> {
    build_fixtures(&suite, selected).await?;
    // One Ctrl-C listener for the whole run, registered (on creation, unlike
    // `ctrl_c()`, which registers when first polled) before the server
    // starts, so an interrupt at any point still tears everything down.
    let mut interrupted = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listening for Ctrl-C")?;
    let run_dir = harness::run_dir(&suite.root);
    let mut settings = RunSettings {
        source: args.source,
        keep_artifacts: args.keep_artifacts,
        ..RunSettings::default()
    };
    if let Some(run_id) = &args.run_id {
        settings.run_id = run_id.clone();
    }
    let server = args
        .server
        .start_for(
            &run_dir,
            args.mediamtx_image.as_deref(),
            &ServerSettings::default(),
            &selected.stream_ids(&settings.run_id),
        )
        .await
        .context("starting the media server")?;
    let description = server.describe();
    let server = Arc::new(server);
    let jobs = args.jobs.unwrap_or_else(cpus).max(1);
    eprintln!(
        "running {} scenario(s) on the {description}, {jobs} at a time; artifacts in {}",
        selected.run.len(),
        run_dir.display()
    );
    for (name, reason) in &selected.skipped {
        println!("skipped {name}: {reason}");
    }
    let started = std::time::Instant::now();
    let pools = Pools {
        fast: Arc::new(tokio::sync::Semaphore::new(jobs)),
        realtime: Arc::new(tokio::sync::Semaphore::new(
            args.realtime_jobs.unwrap_or(3 * cpus()).max(1),
        )),
        service: Arc::new(tokio::sync::Semaphore::new(jobs)),
        service_slots: jobs,
    };
    let mut tasks = JoinSet::new();
    for &i in &selected.run {
        let context = (suite.clone(), server.clone(), settings.clone(), run_dir.clone());
        tasks.spawn(attempts(context, i, pools.clone(), args.retries));
    }
    let total = selected.run.len();
    let mut finished = Vec::new();
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(done)) => {
                    progress(&done, finished.len() + 1, total);
                    finished.push(done);
                }
                Some(Err(e)) => finished.push(Finished::Error {
                    scenario: "(task)".into(),
                    message: e.to_string(),
                }),
                None => break,
            },
            _ = interrupted.recv() => {
                eprintln!("interrupted: stopping publishers, ingests and the server");
                // Dropping each scenario's future kills its ffmpeg children
                // and stops its worker before we exit.
                tasks.shutdown().await;
                shut_down(server).await;
                std::process::exit(130);
            }
        }
    }
    shut_down(server).await;
    Ok(Ran {
        finished,
        run_dir,
        server: description,
        wall: started.elapsed(),
    })
}

#[derive(Clone)]
struct Pools {
    fast: Arc<tokio::sync::Semaphore>,
    realtime: Arc<tokio::sync::Semaphore>,
    service: Arc<tokio::sync::Semaphore>,
    /// The service pool's size (a semaphore does not tell it): a cluster
    /// never asks for more.
    service_slots: usize,
}

/// Past a scenario's own timeout, how long an attempt may still take (to
/// observe and record) before it is stopped: a wait without a deadline
/// fails that scenario instead of hanging the suite.
const HARD_STOP_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs scenario `i`, again on failure up to `retries` more times.
async fn attempts(
    (suite, server, settings, run_dir): (Arc<Suite>, Arc<MediaServer>, RunSettings, PathBuf),
    i: usize,
    pools: Pools,
    retries: u32,
) -> Finished {
    let file = &suite.scenarios[i];
    let service_slots = pools.service_slots;
    // Realtime scenarios are paced by the clock and mostly wait, so they
    // take a slot of their own pool, not a CPU-count one.
    let pool = if file.scenario.service.is_some() {
        pools.service
    } else if realtime(file) {
        pools.realtime
    } else {
        pools.fast
    };
    // A cluster scenario runs several services at once (one process per
    // instance): it takes a slot per instance, as many as the pool has.
    let slots = file
        .scenario
        .service
        .as_ref()
        .and_then(|s| s.cluster.as_ref())
        .map_or(1, |c| c.instances().min(service_slots));
    let _permit = pool
        .acquire_many_owned(slots as u32)
        .await
        .expect("the semaphore stays open");
    let mut attempt = 1;
    loop {
        let attempt_run = tokio::time::timeout(
            file.scenario.timeout + HARD_STOP_AFTER,
            suite::check_scenario(&suite, file, &server, &run_dir, &settings, attempt),
        );
        let attempted = match attempt_run.await {
            Ok(attempted) => attempted,
            // Dropping the attempt killed its children (kill_on_drop).
            Err(_) => Err(suite::ScenarioFailure {
                result: None,
                message: format!(
                    "{}\n  - did not end within its timeout ({:?}) plus {HARD_STOP_AFTER:?}: the harness waited on something without a deadline (a bug of the harness); stopped",
                    file.name, file.scenario.timeout
                ),
            }),
        };
        match attempted {
            Ok(result) => return Finished::Ran(Box::new(result), attempt, None),
            Err(suite::ScenarioFailure { result, message }) if attempt > retries => {
                return match result {
                    Some(result) => Finished::Ran(Box::new(result), attempt, Some(message)),
                    None => Finished::Error {
                        scenario: file.name.clone(),
                        message,
                    },
                };
            }
            Err(suite::ScenarioFailure { message, .. }) => {
                let first = message.lines().nth(1).unwrap_or(&message).trim().to_owned();
                eprintln!("retry  {} (attempt {attempt} failed: {first})", file.name);
                attempt += 1;
            }
        }
    }
}

/// Builds the fixtures the selection needs, one at a time, before any
/// server or container exists, so that scenarios start on equal terms.
async fn build_fixtures(suite: &Suite, selected: &Selected<'_>) -> Result<()> {
    let mut needed: Vec<&str> = selected
        .files()
        .filter_map(|f| f.scenario.fixture.as_deref())
        .collect();
    needed.sort_unstable();
    needed.dedup();
    for name in needed {
        let recipe = suite
            .fixtures
            .get(name)
            .expect("checked by the compatibility pass");
        recipe
            .ensure_built(&suite.fixtures.cache_dir())
            .await
            .with_context(|| format!("building fixture {name}"))?;
    }
    Ok(())
}

async fn shut_down(server: Arc<MediaServer>) {
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

pub(crate) fn realtime(file: &ScenarioFile) -> bool {
    file.scenario.fixture.is_some() && file.scenario.publish.pace == media_tools::Pace::Realtime
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
