//! `e2e`: the friendly front end of the scenario suite (run it through
//! `cargo xtask e2e`). One server per run, scenarios concurrently, progress
//! lines, a summary table, JUnit output; Ctrl-C stops publishers, ingests
//! and servers before exiting.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use harness::junit;
use harness::runner::{RunSettings, ScenarioResult};
use harness::selection::{Selection, Shard};
use harness::server::ServerSettings;
use harness::suite::{self, ServerChoice, Suite};
use harness::summary::{self, Row};
use ingest::SourceElement;
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
#[command(about = "Run the YAML scenarios against a real RTMP server, real ffmpeg and the real ingest")]
struct Args {
    /// Run only scenarios whose name contains one of these
    filters: Vec<String>,
    /// List the selected scenarios and exit
    #[arg(long)]
    list: bool,
    /// Run only scenarios with this tag (repeatable)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Skip scenarios with this tag (repeatable)
    #[arg(long = "skip-tag")]
    skip_tags: Vec<String>,
    /// Media server: embedded, mediamtx (Docker, via testcontainers), or
    /// external=rtmp://HOST:PORT[,api=http://HOST:PORT] (e.g. docker compose
    /// -f docker-compose.e2e.yml up -d, or nginx-rtmp)
    #[arg(long, default_value = "embedded")]
    server: ServerChoice,
    /// Image for --server mediamtx (default: the pinned bluenviron/mediamtx)
    #[arg(long, value_name = "NAME:TAG")]
    mediamtx_image: Option<String>,
    /// Override every scenario's source element: rtmpsrc or rtmp2src
    #[arg(long)]
    source: Option<SourceElement>,
    /// CPU-bound scenarios run at once (default: CPU count); realtime ones
    /// are paced by the clock and run alongside
    #[arg(long)]
    jobs: Option<usize>,
    /// Realtime scenarios run at once (default: 3 per CPU): each mostly
    /// waits on the clock, but a machine that runs too many at once is slow
    /// to reconnect, which moves where a fault's gap ends
    #[arg(long)]
    realtime_jobs: Option<usize>,
    /// Run shard K of N (1-based), e.g. 2/4
    #[arg(long)]
    shard: Option<Shard>,
    /// Write a JUnit XML report here
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Keep artifacts of passing scenarios too (failures always keep theirs)
    #[arg(long)]
    keep_artifacts: bool,
    /// Run a failing scenario up to N more times (each attempt with its own
    /// folder and stream ids)
    #[arg(long, default_value_t = 0)]
    retries: u32,
    /// Token in every stream id (default: the process id); fix it when the
    /// server must know the ids in advance (nginx-rtmp, see --print-nginx-conf)
    #[arg(long)]
    run_id: Option<String>,
    /// Accept changed or new outcome snapshots
    #[arg(long)]
    update_snapshots: bool,
    /// Print the JSON Schema of scenario files and exit
    #[arg(long)]
    print_schema: bool,
    /// Build every fixture recipe into the cache and exit
    #[arg(long)]
    build_fixtures: bool,
    /// Print an nginx-rtmp configuration serving the selected scenarios'
    /// streams on HOST:PORT (with --run-id, which fixes their ids) and exit
    #[arg(long, value_name = "HOST:PORT", requires = "run_id")]
    print_nginx_conf: Option<String>,
    /// nginx-rtmp's module, for --print-nginx-conf
    #[arg(long, default_value = "/usr/lib/nginx/modules/ngx_rtmp_module.so")]
    nginx_module: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.update_snapshots {
        // SAFETY: set before any thread exists; insta reads it on assertion.
        unsafe { std::env::set_var("INSTA_UPDATE", "always") };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

enum Finished {
    Ran(Box<ScenarioResult>, u32, Option<String>),
    /// A scenario that could not be run at all.
    Error {
        scenario: String,
        message: String,
    },
}

async fn run(args: Args) -> Result<ExitCode> {
    if args.print_schema {
        print!("{}", harness::scenario::json_schema());
        return Ok(ExitCode::SUCCESS);
    }
    // Every scenario is parsed and checked against its fixture before
    // anything starts.
    let suite = Arc::new(Suite::load()?);
    if args.build_fixtures {
        for recipe in &suite.fixtures.recipes {
            let path = recipe.ensure_built(&suite.fixtures.cache_dir()).await?;
            println!("{}: {}", recipe.name, path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let incompatible = suite.incompatible();
    if !incompatible.is_empty() {
        for e in &incompatible {
            eprintln!("error: {e}");
        }
        anyhow::bail!("{} scenario(s) cannot run", incompatible.len());
    }
    let selection = Selection {
        filters: args.filters.clone(),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        shard: args.shard,
    };
    let selected = selection.apply(&suite.scenarios);
    if let Some(listen) = &args.print_nginx_conf {
        let run_id = args.run_id.as_deref().expect("clap requires --run-id");
        let ids: Vec<String> = selected
            .iter()
            .flat_map(|&i| {
                let file = &suite.scenarios[i];
                (0..file.scenario.streams).flat_map(move |k| {
                    (1..=args.retries + 1)
                        .map(move |attempt| harness::runner::stream_id(&file.name, k, run_id, attempt))
                })
            })
            .collect();
        print!("{}", harness::nginx_config(listen, &args.nginx_module, &ids));
        return Ok(ExitCode::SUCCESS);
    }
    if args.list {
        for &i in &selected {
            let f = &suite.scenarios[i];
            println!(
                "{}  [{}]  {}",
                f.name,
                f.scenario.tags.join(", "),
                f.scenario.description
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if selected.is_empty() {
        anyhow::bail!("no scenario matches the selection");
    }
    if let Some(reason) = args.server.unavailable() {
        for &i in &selected {
            println!("skipped {}: {reason}", suite.scenarios[i].name);
        }
        if let Some(path) = &args.junit {
            let cases: Vec<junit::Case> = selected
                .iter()
                .map(|&i| junit::Case {
                    name: suite.scenarios[i].name.clone(),
                    time: Duration::ZERO,
                    failure: None,
                    skipped: Some(reason.clone()),
                })
                .collect();
            std::fs::write(path, junit::render("e2e", &cases))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        println!("0 passed, 0 failed, {} skipped", selected.len());
        return Ok(ExitCode::SUCCESS);
    }
    // Fixtures are built first, one at a time and before any server or
    // container exists: encoding is the CPU-heavy part, and scenarios then
    // start on equal terms.
    let mut needed: Vec<&str> = selected
        .iter()
        .filter_map(|&i| suite.scenarios[i].scenario.fixture.as_deref())
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
    // One Ctrl-C listener for the whole run, registered (on creation, unlike
    // `ctrl_c()`, which registers when first polled) before the server
    // starts, so an interrupt at any point still tears everything down.
    let mut interrupted = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("listening for Ctrl-C")?;
    let run_dir = harness::run_dir(&suite.root);
    let server = Arc::new(
        args.server
            .start(
                &run_dir,
                args.mediamtx_image.as_deref(),
                &ServerSettings::default(),
            )
            .await
            .context("starting the media server")?,
    );
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    eprintln!(
        "running {} scenario(s) on the {}, {jobs} at a time; artifacts in {}",
        selected.len(),
        server.describe(),
        run_dir.display()
    );
    let mut settings = RunSettings {
        source: args.source,
        keep_artifacts: args.keep_artifacts,
        ..RunSettings::default()
    };
    if let Some(run_id) = &args.run_id {
        settings.run_id = run_id.clone();
    }
    let suite_started = std::time::Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(jobs));
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let realtime_permits = Arc::new(tokio::sync::Semaphore::new(
        args.realtime_jobs.unwrap_or(3 * cpus).max(1),
    ));
    let mut tasks = JoinSet::new();
    for &i in &selected {
        let (suite, server, permits, realtime_permits, settings, run_dir) = (
            suite.clone(),
            server.clone(),
            permits.clone(),
            realtime_permits.clone(),
            settings.clone(),
            run_dir.clone(),
        );
        let retries = args.retries;
        tasks.spawn(async move {
            let file = &suite.scenarios[i];
            // Realtime scenarios are paced by the clock and mostly wait, so
            // they take a slot of their own pool, not a CPU-count one.
            let pool = if realtime(file) { realtime_permits } else { permits };
            let _permit = pool.acquire_owned().await.expect("the semaphore stays open");
            let mut attempt = 1;
            loop {
                match suite::check_scenario(&suite, file, &server, &run_dir, &settings, attempt).await {
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
                        eprintln!(
                            "retry  {} (attempt {attempt} failed: {})",
                            file.name,
                            first_line(&message)
                        );
                        attempt += 1;
                    }
                }
            }
        });
    }
    let total = selected.len();
    let mut done = Vec::new();
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Ok(finished)) => {
                    report_progress(&finished, done.len() + 1, total);
                    done.push(finished);
                }
                Some(Err(e)) => done.push(Finished::Error {
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
                if let Ok(server) = Arc::try_unwrap(server) {
                    server.shutdown().await;
                }
                return Ok(ExitCode::from(130));
            }
        }
    }
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
    let rows: Vec<Row<'_>> = done
        .iter()
        .map(|f| match f {
            Finished::Ran(result, attempts, _) => Row::Ran {
                result,
                attempts: *attempts,
            },
            Finished::Error { scenario, message } => Row::Error {
                name: scenario,
                message,
            },
        })
        .collect();
    print!("\n{}", summary::table(&rows));
    let cases: Vec<junit::Case> = done
        .iter()
        .map(|f| match f {
            Finished::Ran(result, _, failure) => junit::Case {
                name: result.name.clone(),
                time: result.wall_time,
                failure: failure.clone(),
                skipped: None,
            },
            Finished::Error {
                scenario: name,
                message,
            } => junit::Case {
                name: name.clone(),
                time: Duration::ZERO,
                failure: Some(message.clone()),
                skipped: None,
            },
        })
        .collect();
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::render("e2e", &cases))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let longest_realtime = done
        .iter()
        .filter_map(|f| match f {
            Finished::Ran(result, ..) if suite.scenario(&result.name).is_some_and(realtime) => {
                Some(result.wall_time)
            }
            _ => None,
        })
        .max();
    let wall = suite_started.elapsed();
    match longest_realtime {
        Some(longest) => println!(
            "suite {:.1} s after the build; longest realtime scenario {:.1} s ({:.2}x)",
            wall.as_secs_f64(),
            longest.as_secs_f64(),
            wall.as_secs_f64() / longest.as_secs_f64()
        ),
        None => println!("suite {:.1} s after the build", wall.as_secs_f64()),
    }
    let failed = cases.iter().filter(|c| c.failure.is_some()).count();
    println!("{} passed, {failed} failed", cases.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn realtime(file: &harness::scenario::ScenarioFile) -> bool {
    file.scenario.fixture.is_some() && file.scenario.publish.pace == media_tools::Pace::Realtime
}

fn first_line(text: &str) -> &str {
    text.lines().nth(1).unwrap_or(text).trim()
}

fn report_progress(finished: &Finished, n: usize, total: usize) {
    match finished {
        Finished::Ran(result, _, None) => {
            eprintln!(
                "[{n}/{total}] pass   {} ({:.1} s)",
                result.name,
                result.wall_time.as_secs_f64()
            )
        }
        Finished::Ran(_, _, Some(message)) | Finished::Error { message, .. } => {
            eprintln!("[{n}/{total}] FAIL   {message}")
        }
    }
}
