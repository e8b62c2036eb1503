//! Project automation: `cargo xtask <command>`.
//!
//! xtask never links GStreamer: it must build on a fresh machine so that it
//! can install what the rest of the workspace needs (`deps`) before driving
//! cargo. Every command except `deps` checks the prerequisites first.

mod bench;
mod ci;
mod conformance;
mod containers;
mod coverage;
mod demo;
mod deps;
mod e2e;
mod image;
mod mutants;
mod sts_peer;
mod test;
mod tidy;
mod tools;

use anyhow::Result;
use clap::{Parser, Subcommand};
use xshell::Shell;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, test and run the RTMP ingest and its scenario harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check system prerequisites (GStreamer dev files and elements, ffmpeg)
    /// and install missing ones with apt when running as root.
    Deps(deps::Deps),
    /// Run every test: unit, integration and the scenario suite.
    Test(test::Test),
    /// Run the scenario suite (default: every scenario, embedded server).
    E2e(e2e::E2e),
    /// Check a media server against MediaMTX 1.20.1's behaviour (default:
    /// the embedded server).
    Conformance(conformance::Conformance),
    /// Regenerate scenarios/scenario.schema.json from the scenario format.
    Schema(e2e::Schema),
    /// Build every fixture recipe of fixtures/fixtures.yaml into fixtures/.cache.
    Fixtures(e2e::Fixtures),
    /// Build the local stand-in media server image (FROM scratch, static binary).
    Image(image::Image),
    /// Run locally what one cell of the e2e CI matrix runs.
    Ci(ci::Ci),
    /// Measure ingest cost, scale and latency against ffmpeg and splitmuxsink.
    Bench(bench::Bench),
    /// Line coverage of the workspace's tests (nextest, scenarios included):
    /// per-crate summary, HTML report in target/coverage/, failing under 80%
    /// for the ingest crate or the workspace.
    Coverage(coverage::Coverage),
    /// See the service work: the embedded server, the echo STS, `ingest
    /// serve` and a live encoder, with the URLs to watch and scrape.
    Demo(demo::Demo),
    /// Mutation testing of the ingest's pure logic (cargo-mutants, unit
    /// tests), failing when under 90% of the viable mutants are caught.
    Mutants(mutants::Mutants),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let sh = Shell::new()?;
    sh.change_dir(workspace_root());
    if !matches!(cli.command, Command::Deps(_)) {
        deps::ensure(&sh)?;
    }
    // What the tests talk to beyond system packages: the echo STS peer (a
    // venv), so a fresh clone's first `cargo xtask e2e` or `test` needs no
    // other command before it.
    if matches!(
        cli.command,
        Command::Test(_) | Command::E2e(_) | Command::Ci(_) | Command::Coverage(_) | Command::Bench(_)
    ) {
        sts_peer::ensure_echo_peer(&sh)?;
    }
    match cli.command {
        Command::Deps(cmd) => cmd.run(&sh),
        Command::Test(cmd) => cmd.run(&sh),
        Command::E2e(cmd) => cmd.run(&sh),
        Command::Conformance(cmd) => cmd.run(&sh),
        Command::Schema(cmd) => cmd.run(&sh),
        Command::Fixtures(cmd) => cmd.run(&sh),
        Command::Image(cmd) => cmd.run(&sh),
        Command::Bench(cmd) => cmd.run(&sh),
        Command::Ci(cmd) => cmd.run(&sh),
        Command::Coverage(cmd) => cmd.run(&sh),
        Command::Mutants(cmd) => cmd.run(&sh),
        Command::Demo(cmd) => cmd.run(&sh),
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}
