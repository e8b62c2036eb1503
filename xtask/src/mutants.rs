//! `cargo xtask mutants`: mutation testing of the ingest's pure logic and
//! its reconnect policy with cargo-mutants. Each mutant (an operator
//! swapped, a function body replaced, a condition negated) is built and the
//! unit tests of the ingest and of `reconnect` run against it; a mutant the tests still pass is behaviour nothing pins.
//!
//! Only the files free of I/O and GStreamer are mutated, and only the unit
//! tests (`--lib`) judge them: a mutant costs a build and a second of tests,
//! where the integration tests would cost minutes of real streaming.
//! Mutants known to be equivalent are excluded in `.cargo/mutants.toml`,
//! each with the reason.

use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;
use xshell::Shell;

use crate::tools;

#[derive(Debug, Args)]
pub struct Mutants {
    /// Fail when fewer than this percentage of the viable mutants are caught
    #[arg(long, default_value_t = 90.0, value_name = "PERCENT")]
    fail_under: f64,
    /// Mutants built and tested at once, each in its own copy of the tree
    #[arg(long, short, default_value_t = 1)]
    jobs: u32,
    /// Further cargo-mutants options (after --), e.g. `-F segmenter` to
    /// test only the mutants whose name matches
    #[arg(last = true)]
    args: Vec<String>,
}

/// The packages whose unit tests judge the mutants.
const PACKAGES: [&str; 2] = ["ingest", "reconnect"];

/// The ingest's pure logic, and the reconnect policy it runs by.
pub const FILES: [&str; 6] = [
    "crates/ingest/src/segmenter.rs",
    "crates/ingest/src/timeline.rs",
    "crates/ingest/src/tracks.rs",
    "crates/ingest/src/rtmp_url.rs",
    "crates/ingest/src/stream_id.rs",
    "crates/reconnect/src/policy.rs",
];

/// cargo-mutants writes `mutants.out/` here.
const OUTPUT_DIR: &str = "target/mutants";

impl Mutants {
    pub fn run(self, sh: &Shell) -> Result<()> {
        tools::MUTANTS.ensure(sh)?;
        let files = FILES.iter().flat_map(|f| ["--file", f]);
        let packages = PACKAGES.iter().flat_map(|p| ["--package", p]);
        let status = Command::new("cargo")
            .arg("mutants")
            .args(packages)
            .args(["--output", OUTPUT_DIR])
            .args(["--jobs", &self.jobs.to_string()])
            .args(files)
            // `--lib` for the build as well as the test run (what follows
            // `--` reaches only the test run): a mutant then costs one test
            // binary to link, not every integration test's.
            .arg("--cargo-arg=--lib")
            .args(&self.args)
            // Each mutant is linked anew; without debug info that is several
            // times faster, and nothing here needs a debugger.
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .env("CARGO_PROFILE_TEST_DEBUG", "0")
            .current_dir(sh.current_dir())
            .status()
            .context("running cargo mutants")?;
        // 2: some mutants were missed, 3: some timed out; both are counted
        // below. Anything else (1: bad usage, 4: the unmutated tree fails its
        // tests) means there are no figures to count.
        match status.code() {
            Some(0 | 2 | 3) => {}
            _ => bail!("cargo mutants failed ({status}); see {OUTPUT_DIR}/mutants.out/debug.log"),
        }
        let out = sh.current_dir().join(OUTPUT_DIR).join("mutants.out");
        let count = |outcome: &str| -> Result<u64> {
            let path = out.join(format!("{outcome}.txt"));
            let listed = sh
                .read_file(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok(listed.lines().filter(|l| !l.trim().is_empty()).count() as u64)
        };
        let tally = Tally {
            caught: count("caught")?,
            missed: count("missed")?,
            timeout: count("timeout")?,
            unviable: count("unviable")?,
        };
        println!("{}", tally.render());
        if !self.args.is_empty() {
            println!("(a subset of the mutants: {})", self.args.join(" "));
        }
        if tally.caught_percent() < self.fail_under {
            let missed = out.join("missed.txt");
            bail!(
                "{:.1}% of the viable mutants caught, under {}%; the missed ones are in {}",
                tally.caught_percent(),
                self.fail_under,
                missed.display()
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    caught: u64,
    missed: u64,
    timeout: u64,
    unviable: u64,
}

impl Tally {
    /// Caught among the mutants that built. A timeout counts as caught: the
    /// mutant made the tests hang (a loop that never ends), and the tests
    /// noticed it differs.
    fn caught_percent(self) -> f64 {
        let viable = self.caught + self.missed + self.timeout;
        if viable == 0 {
            return 100.0;
        }
        100.0 * (self.caught + self.timeout) as f64 / viable as f64
    }

    fn render(self) -> String {
        let Self {
            caught,
            missed,
            timeout,
            unviable,
        } = self;
        format!(
            "mutants: {caught} caught, {missed} missed, {timeout} timed out, {unviable} unviable; \
             {:.1}% of the viable mutants caught (timeouts count as caught)",
            self.caught_percent()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_share_counts_viable_mutants_only() {
        let tally = Tally {
            caught: 134,
            missed: 54,
            timeout: 2,
            unviable: 18,
        };
        assert!(
            (tally.caught_percent() - 71.58).abs() < 0.01,
            "{}",
            tally.render()
        );
        let none = Tally {
            caught: 0,
            missed: 0,
            timeout: 0,
            unviable: 3,
        };
        assert_eq!(none.caught_percent(), 100.0);
    }

    #[test]
    fn the_mutated_files_exist() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for file in FILES {
            assert!(root.join(file).is_file(), "{file}");
        }
    }
}
