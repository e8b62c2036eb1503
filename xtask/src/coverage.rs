//! `cargo xtask coverage`: line coverage of every test nextest runs in the
//! workspace (unit and integration tests, the conformance checks and the
//! scenario suite on the embedded server), per crate, with an HTML report,
//! failing under a threshold for the ingest crate and for the workspace.
//!
//! Processes the tests spawn (the `ingest` binary) inherit cargo-llvm-cov's
//! `LLVM_PROFILE_FILE` and write their own profiles, so they count too.
//! xtask and the bench crate are listed but left out of the workspace
//! figure: their code runs when their commands run, never under a test.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use xshell::{Shell, cmd};

use crate::tools;

#[derive(Debug, Args)]
pub struct Coverage {
    /// Fail when the ingest crate's or the workspace's line coverage is
    /// below this percentage
    #[arg(long, default_value_t = 80.0, value_name = "PERCENT")]
    fail_under: f64,
    /// Extra arguments for nextest (after --), e.g. `-E 'package(ingest)'`
    #[arg(last = true)]
    args: Vec<String>,
}

/// The HTML report lands in `html/` below it, next to `lcov.info` and
/// `summary.txt`.
const REPORT_DIR: &str = "target/coverage";

/// Crates whose code runs only when their command runs: shown, but not part
/// of the workspace figure.
const OUTSIDE_WORKSPACE_FIGURE: [&str; 2] = ["xtask", "bench"];

/// The crate whose figure is checked on its own, besides the workspace's.
const CHECKED_CRATE: &str = "ingest";

impl Coverage {
    pub fn run(self, sh: &Shell) -> Result<()> {
        let llvm = tools::llvm(sh)?;
        tools::LLVM_COV.ensure(sh)?;
        let _llvm_env = llvm.env().map(|(key, path)| sh.push_env(key, path));
        // As in CI: a missing or changed snapshot fails, and is never written.
        let _insta = sh.push_env("INSTA_UPDATE", "no");
        let args = self.args;
        // Old profiles and instrumented workspace binaries would be merged
        // into this report; dependencies stay built.
        cmd!(sh, "cargo llvm-cov clean --workspace")
            .run()
            .context("cargo llvm-cov clean")?;
        cmd!(
            sh,
            "cargo llvm-cov nextest --workspace --locked --no-report --no-fail-fast {args...}"
        )
        .run()
        .context("the instrumented test run failed (see the nextest summary above)")?;
        let lcov_path = format!("{REPORT_DIR}/lcov.info");
        cmd!(sh, "cargo llvm-cov report --html --output-dir {REPORT_DIR}")
            .run()
            .context("writing the HTML coverage report")?;
        cmd!(sh, "cargo llvm-cov report --lcov --output-path {lcov_path}")
            .run()
            .context("writing the lcov coverage report")?;
        let lcov = sh
            .read_file(&lcov_path)
            .with_context(|| format!("reading {lcov_path}"))?;
        let files = parse_lcov(&lcov, &sh.current_dir())?;
        let summary = Summary::of(&files);
        let text = summary.render();
        print!("{text}");
        sh.write_file(format!("{REPORT_DIR}/summary.txt"), &text)?;
        println!("HTML report: {REPORT_DIR}/html/index.html");
        let failures = summary.failures(self.fail_under);
        if !failures.is_empty() {
            bail!(
                "line coverage under {}%:\n{}",
                self.fail_under,
                failures.join("\n")
            );
        }
        Ok(())
    }
}

/// Lines found and lines hit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Lines {
    found: u64,
    hit: u64,
}

impl Lines {
    fn add(&mut self, other: Lines) {
        self.found += other.found;
        self.hit += other.hit;
    }

    fn percent(self) -> f64 {
        if self.found == 0 {
            return 100.0;
        }
        100.0 * self.hit as f64 / self.found as f64
    }

    fn missed(self) -> u64 {
        self.found - self.hit
    }
}

/// One source file of the report, by its path relative to the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileLines {
    path: String,
    lines: Lines,
}

impl FileLines {
    /// `crates/<name>/...` belongs to `<name>`, `xtask/...` to xtask.
    fn krate(&self) -> &str {
        let mut parts = self.path.split('/');
        match parts.next() {
            Some("crates") => parts.next().unwrap_or("crates"),
            Some(first) => first,
            None => "",
        }
    }
}

/// The `SF:` (source file), `LF:` (lines found) and `LH:` (lines hit)
/// records of an lcov file, paths made relative to `root`.
fn parse_lcov(lcov: &str, root: &Path) -> Result<Vec<FileLines>> {
    let mut files = Vec::new();
    let mut current: Option<FileLines> = None;
    for (number, line) in lcov.lines().enumerate() {
        let number = number + 1;
        let count = |value: &str| -> Result<u64> {
            value
                .trim()
                .parse()
                .with_context(|| format!("lcov line {number}: {line:?} is not a count"))
        };
        if let Some(path) = line.strip_prefix("SF:") {
            let path = Path::new(path);
            let relative = path.strip_prefix(root).unwrap_or(path);
            current = Some(FileLines {
                path: relative.to_string_lossy().into_owned(),
                lines: Lines::default(),
            });
        } else if let Some(value) = line.strip_prefix("LF:") {
            let file = current
                .as_mut()
                .with_context(|| format!("lcov line {number}: LF before SF"))?;
            file.lines.found = count(value)?;
        } else if let Some(value) = line.strip_prefix("LH:") {
            let file = current
                .as_mut()
                .with_context(|| format!("lcov line {number}: LH before SF"))?;
            file.lines.hit = count(value)?;
        } else if line == "end_of_record" {
            files.extend(current.take());
        }
    }
    if files.is_empty() {
        bail!("the lcov report names no source file");
    }
    Ok(files)
}

struct Summary<'a> {
    crates: BTreeMap<&'a str, Lines>,
    workspace: Lines,
    files: &'a [FileLines],
}

impl<'a> Summary<'a> {
    fn of(files: &'a [FileLines]) -> Self {
        let mut crates: BTreeMap<&str, Lines> = BTreeMap::new();
        let mut workspace = Lines::default();
        for file in files {
            crates.entry(file.krate()).or_default().add(file.lines);
            if !OUTSIDE_WORKSPACE_FIGURE.contains(&file.krate()) {
                workspace.add(file.lines);
            }
        }
        Self {
            crates,
            workspace,
            files,
        }
    }

    fn render(&self) -> String {
        let mut out = String::from("\nline coverage\n");
        let row = |out: &mut String, name: &str, lines: Lines, note: &str| {
            let _ = writeln!(
                out,
                "  {name:<28} {:>6.1}%  {:>6} of {:>6} lines{note}",
                lines.percent(),
                lines.hit,
                lines.found
            );
        };
        for (name, lines) in &self.crates {
            let note = if OUTSIDE_WORKSPACE_FIGURE.contains(name) {
                "  (not in the workspace figure)"
            } else {
                ""
            };
            row(&mut out, name, *lines, note);
        }
        let label = format!("workspace (without {})", OUTSIDE_WORKSPACE_FIGURE.join(", "));
        row(&mut out, &label, self.workspace, "");
        out
    }

    /// What is under `threshold`, each with its weakest files.
    fn failures(&self, threshold: f64) -> Vec<String> {
        let mut failures = Vec::new();
        let checked = self.crates.get(CHECKED_CRATE).copied().unwrap_or_default();
        if checked.percent() < threshold {
            failures.push(format!(
                "  {CHECKED_CRATE}: {:.1}%; weakest files:\n{}",
                checked.percent(),
                self.weakest(|f| f.krate() == CHECKED_CRATE)
            ));
        }
        if self.workspace.percent() < threshold {
            failures.push(format!(
                "  workspace: {:.1}%; weakest files:\n{}",
                self.workspace.percent(),
                self.weakest(|f| !OUTSIDE_WORKSPACE_FIGURE.contains(&f.krate()))
            ));
        }
        failures
    }

    /// The files that miss the most lines.
    fn weakest(&self, keep: impl Fn(&FileLines) -> bool) -> String {
        let mut files: Vec<&FileLines> = self.files.iter().filter(|f| keep(f)).collect();
        files.sort_by_key(|f| std::cmp::Reverse(f.lines.missed()));
        files
            .iter()
            .take(8)
            .map(|f| {
                format!(
                    "    {:<52} {:>5.1}%  {} lines missed",
                    f.path,
                    f.lines.percent(),
                    f.lines.missed()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LCOV: &str = "\
SF:/w/crates/ingest/src/segmenter.rs
FN:1,f
DA:1,3
LF:10
LH:9
end_of_record
SF:/w/crates/ingest/src/pipeline.rs
LF:10
LH:5
end_of_record
SF:/w/xtask/src/main.rs
LF:100
LH:0
end_of_record
SF:/w/crates/rtmp-server/src/lib.rs
LF:20
LH:20
end_of_record
";

    #[test]
    fn sums_lines_per_crate_and_leaves_xtask_out_of_the_workspace() {
        let files = parse_lcov(LCOV, Path::new("/w")).unwrap();
        assert_eq!(files[0].path, "crates/ingest/src/segmenter.rs");
        assert_eq!(files[0].lines, Lines { found: 10, hit: 9 });
        let summary = Summary::of(&files);
        assert_eq!(summary.crates["ingest"], Lines { found: 20, hit: 14 });
        assert_eq!(summary.crates["xtask"], Lines { found: 100, hit: 0 });
        assert_eq!(summary.workspace, Lines { found: 40, hit: 34 });
        let rendered = summary.render();
        assert!(rendered.contains("ingest"), "{rendered}");
        assert!(rendered.contains("(not in the workspace figure)"), "{rendered}");
    }

    #[test]
    fn names_what_is_under_the_threshold_with_its_weakest_files() {
        let files = parse_lcov(LCOV, Path::new("/w")).unwrap();
        let summary = Summary::of(&files);
        // ingest 70%, workspace 85%.
        let failures = summary.failures(80.0);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].starts_with("  ingest: 70.0%"), "{failures:?}");
        let pipeline = failures[0].find("pipeline.rs").unwrap();
        let segmenter = failures[0].find("segmenter.rs").unwrap();
        assert!(pipeline < segmenter, "most missed lines first: {failures:?}");
        assert_eq!(summary.failures(90.0).len(), 2);
        assert!(summary.failures(70.0).is_empty());
    }

    #[test]
    fn refuses_a_report_without_files_or_with_bad_counts() {
        assert!(parse_lcov("", Path::new("/w")).is_err());
        let bad = "SF:/w/a.rs\nLF:x\nend_of_record\n";
        let message = format!("{:#}", parse_lcov(bad, Path::new("/w")).unwrap_err());
        assert!(message.contains("line 2"), "{message}");
    }
}
