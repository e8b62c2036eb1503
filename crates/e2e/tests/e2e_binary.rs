//! The `e2e` binary, the front end `cargo xtask e2e` and the CI cells run:
//! its selection (`--list`, filters, `--tag`), a real run of two quick
//! scenarios on the embedded server with its summary and JUnit report, and
//! the refusal of a selection that matches nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn e2e(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_e2e"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("the e2e binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn lists_every_scenario_file_and_filters_by_tag() {
    let output = e2e(&["--list"]);
    assert!(output.status.success(), "{output:?}");
    let listed: BTreeSet<String> = stdout(&output)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let files: BTreeSet<String> = std::fs::read_dir(workspace_root().join("scenarios"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".yaml").map(str::to_owned)
        })
        .collect();
    assert_eq!(listed, files);

    let smoke = e2e(&["--list", "--tag", "smoke"]);
    let lines = stdout(&smoke);
    assert!(lines.lines().any(|l| l.starts_with("invalid-url  [")), "{lines}");
    for line in lines.lines() {
        let tags = line.split('[').nth(1).and_then(|t| t.split(']').next()).unwrap();
        assert!(tags.split(", ").any(|t| t == "smoke"), "{line}");
    }
    assert!(lines.lines().count() < files.len(), "{lines}");
}

#[test]
fn runs_the_selected_scenarios_and_reports_them_in_junit() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let output = e2e(&[
        "invalid-url",
        "unsupported-codec",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let out = stdout(&output);
    assert!(
        output.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        out.lines().any(|l| l.starts_with("2 passed, 0 failed; report: ")),
        "{out}"
    );
    assert!(
        out.contains("invalid-url") && out.contains("unsupported-codec"),
        "the summary table names both: {out}"
    );
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains(r#"tests="2" failures="0""#), "{report}");
    for name in ["invalid-url", "unsupported-codec"] {
        assert!(report.contains(&format!(r#"name="{name}""#)), "{report}");
    }
}

#[test]
fn a_selection_that_matches_nothing_is_an_error() {
    let output = e2e(&["no-scenario-has-this-name"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no scenario matches the selection"), "{stderr}");
}
