//! The HTML report of a real run, opened in a real browser (Debian's
//! headless Chromium, which the README's commands install): every scenario
//! is there with its result, the page logs no error, and a screenshot of it
//! is kept beside the report, in the run's artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Chromium, as Debian installs it.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Runs Chromium headless on `page` with `args`; its stdout and stderr.
fn headless(browser: &str, page: &Path, args: &[&str]) -> (String, String) {
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_report_of_a_real_run_opens_in_a_browser_with_every_scenario() {
    let Some(browser) = chromium() else {
        // Never a silent pass: where the set-up could install it (CI), its
        // absence fails; elsewhere the skip is said.
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing: `cargo xtask deps` installs it"
        );
        eprintln!("SKIPPED: chromium is not installed (`cargo xtask deps` installs it as root)");
        return;
    };
    let names = ["invalid-url", "unsupported-codec", "happy-path-fast"];
    let output = Command::new(env!("CARGO_BIN_EXE_e2e"))
        .args(names)
        .arg("--keep-artifacts")
        .current_dir(workspace_root())
        .output()
        .expect("the e2e binary runs");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}");
    let index = out
        .lines()
        .find_map(|l| l.split("; report: ").nth(1))
        .map(PathBuf::from)
        .expect("the last line links the report");
    assert!(index.ends_with("index.html"), "{index:?}");

    let (dom, log) = headless(browser, &index, &["--dump-dom"]);
    for name in names {
        assert!(
            dom.contains(&format!("<span class=\"pass\">pass</span> {name} (")),
            "{name} is not shown as passed:\n{dom}"
        );
        assert!(
            dom.contains(&format!("href=\"#{name}\"")),
            "{name} is not in the table"
        );
    }
    assert!(dom.contains("<svg"), "no timeline drawn");
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Failed to load"))
        .collect();
    assert!(errors.is_empty(), "the page logged errors: {errors:#?}");

    let screenshot = index.with_file_name("report.png");
    headless(
        browser,
        &index,
        &[
            "--window-size=1000,1600",
            &format!("--screenshot={}", screenshot.display()),
        ],
    );
    let png = std::fs::read(&screenshot).expect("the screenshot is kept with the run");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
}
