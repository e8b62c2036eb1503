//! `e2e`: the friendly front end of the scenario suite (run it through
//! `cargo xtask e2e`). One server per run, scenarios concurrently
//! ([`execute`]), progress lines, then, once, the summary table, JUnit and
//! the HTML report ([`report`]); Ctrl-C stops publishers, ingests and
//! servers before exiting.

mod args;
mod execute;
mod report;
mod selected;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use harness::suite::Suite;

use args::Args;

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

async fn run(args: Args) -> Result<ExitCode> {
    if args.print_schema {
        print!("{}", harness::json_schema());
        return Ok(ExitCode::SUCCESS);
    }
    // Every scenario is parsed and checked against its fixture before
    // anything starts.
    let suite = std::sync::Arc::new(Suite::load()?);
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
    let selected = selected::Selected::from(&args, &suite);
    if let Some(listen) = &args.print_nginx_conf {
        let run_id = args
            .run_id
            .as_deref()
            .context("--print-nginx-conf needs --run-id")?;
        print!(
            "{}",
            harness::nginx_config(listen, &args.nginx_module, &selected.stream_ids(run_id))
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.list {
        selected.list();
        return Ok(ExitCode::SUCCESS);
    }
    if selected.is_empty() {
        anyhow::bail!("no scenario matches the selection");
    }
    if let Some(reason) = args.server.unavailable() {
        return report::all_skipped(&args, &selected, &reason);
    }
    let ran = execute::execute(&args, suite.clone(), &selected).await?;
    report::finish(&args, &suite, &selected, ran)
}
