//! What a run reports, once it is over: a progress line per scenario as it
//! ends, then the summary table, the JUnit file, the HTML report
//! (`index.html` in the run folder, linked from the last line) and the
//! counts; the exit code says whether every scenario passed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use harness::suite::Suite;
use harness::{JunitCase, RunPage, SummaryRow};

use crate::args::Args;
use crate::execute::{Finished, Ran, realtime};
use crate::selected::Selected;

pub(crate) fn progress(finished: &Finished, n: usize, total: usize) {
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

/// No scenario can run on this machine (the server cannot be had): each is
/// reported skipped with the reason, never passed.
pub(crate) fn all_skipped(args: &Args, selected: &Selected<'_>, reason: &str) -> Result<ExitCode> {
    let names: Vec<String> = selected
        .files()
        .map(|f| f.name.clone())
        .chain(selected.skipped.iter().map(|(name, _)| name.clone()))
        .collect();
    for name in &names {
        println!("skipped {name}: {reason}");
    }
    let cases: Vec<JunitCase> = names.iter().map(|name| skipped_case(name, reason)).collect();
    write_junit(args, &cases)?;
    println!("0 passed, 0 failed, {} skipped", names.len());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn finish(args: &Args, suite: &Suite, selected: &Selected<'_>, ran: Ran) -> Result<ExitCode> {
    let rows: Vec<SummaryRow<'_>> = ran
        .finished
        .iter()
        .map(|f| match f {
            Finished::Ran(result, attempts, _) => SummaryRow::Ran {
                result,
                attempts: *attempts,
            },
            Finished::Error { scenario, message } => SummaryRow::Error {
                name: scenario,
                message,
            },
        })
        .collect();
    print!("\n{}", harness::summary_table(&rows));
    let cases: Vec<JunitCase> = ran
        .finished
        .iter()
        .map(|f| match f {
            Finished::Ran(result, _, failure) => JunitCase {
                name: result.name.clone(),
                time: result.wall_time,
                failure: failure.clone(),
                skipped: None,
            },
            Finished::Error { scenario, message } => JunitCase {
                name: scenario.clone(),
                time: Duration::ZERO,
                failure: Some(message.clone()),
                skipped: None,
            },
        })
        .chain(
            selected
                .skipped
                .iter()
                .map(|(name, reason)| skipped_case(name, reason)),
        )
        .collect();
    write_junit(args, &cases)?;
    let index = write_html(&ran, selected)?;
    wall_line(&ran, suite);
    let failed = cases.iter().filter(|c| c.failure.is_some()).count();
    let passed = cases.len() - failed - selected.skipped.len();
    match selected.skipped.len() {
        0 => println!("{passed} passed, {failed} failed; report: {}", index.display()),
        n => println!(
            "{passed} passed, {failed} failed, {n} skipped (this server cannot play them); report: {}",
            index.display()
        ),
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn skipped_case(name: &str, reason: &str) -> JunitCase {
    JunitCase {
        name: name.to_owned(),
        time: Duration::ZERO,
        failure: None,
        skipped: Some(reason.to_owned()),
    }
}

fn write_junit(args: &Args, cases: &[JunitCase]) -> Result<()> {
    let Some(path) = &args.junit else {
        return Ok(());
    };
    std::fs::write(path, harness::junit_report("e2e", cases))
        .with_context(|| format!("writing {}", path.display()))
}

/// `index.html` in the run folder.
fn write_html(ran: &Ran, selected: &Selected<'_>) -> Result<std::path::PathBuf> {
    let page = RunPage {
        run: ran
            .run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        server: ran.server.clone(),
        wall_s: ran.wall.as_secs_f64(),
        results: ran
            .finished
            .iter()
            .filter_map(|f| match f {
                Finished::Ran(result, attempts, _) => Some((result.as_ref(), *attempts)),
                Finished::Error { .. } => None,
            })
            .collect(),
        skipped: selected.skipped.clone(),
        errors: ran
            .finished
            .iter()
            .filter_map(|f| match f {
                Finished::Error { scenario, message } => Some((scenario.clone(), message.clone())),
                Finished::Ran(..) => None,
            })
            .collect(),
    };
    std::fs::create_dir_all(&ran.run_dir).with_context(|| format!("creating {}", ran.run_dir.display()))?;
    let index = ran.run_dir.join("index.html");
    std::fs::write(&index, harness::html_page(&page))
        .with_context(|| format!("writing {}", index.display()))?;
    Ok(index)
}

/// The suite's wall time next to its longest realtime scenario.
fn wall_line(ran: &Ran, suite: &Suite) {
    let longest_realtime = ran
        .finished
        .iter()
        .filter_map(|f| match f {
            Finished::Ran(result, ..) if suite.scenario(&result.name).is_some_and(realtime) => {
                Some(result.wall_time)
            }
            _ => None,
        })
        .max();
    let wall = ran.wall.as_secs_f64();
    match longest_realtime {
        Some(longest) => println!(
            "suite {wall:.1} s after the build; longest realtime scenario {:.1} s ({:.2}x)",
            longest.as_secs_f64(),
            wall / longest.as_secs_f64()
        ),
        None => println!("suite {wall:.1} s after the build"),
    }
}
