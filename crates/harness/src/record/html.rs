//! The run's HTML report, `target/e2e/<run>/index.html`: the suite table,
//! then per scenario (failed ones first, open) its failed expectations and
//! snapshot difference, its streams' timelines, its latencies, and links
//! to every artifact. One self-contained file: no script, no font, no CDN,
//! so it opens offline and from a CI artifact.

use std::fmt::Write as _;
use std::path::Path;

use super::ScenarioResult;
use super::svg::{self, escape};

/// What the page shows of a run.
pub struct RunPage<'a> {
    /// The run folder's name.
    pub run: String,
    /// The server it ran on, in words.
    pub server: String,
    pub wall_s: f64,
    /// Each scenario that ran, with how many attempts it took.
    pub results: Vec<(&'a ScenarioResult, u32)>,
    /// Scenarios not run: (name, reason).
    pub skipped: Vec<(String, String)>,
    /// Scenarios that could not be run at all: (name, message).
    pub errors: Vec<(String, String)>,
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse}td,th{padding:.2em .7em;border-bottom:1px solid #ddd;text-align:left}\
.pass{color:#1a7f37}.fail{color:#cf222e;font-weight:bold}.skip{color:#777}\
pre{background:#f6f8fa;padding:.6em;overflow:auto;max-height:30em}\
details{margin:1em 0;border:1px solid #ddd;border-radius:6px;padding:.4em .8em}\
summary{cursor:pointer;font-weight:bold}ul.unmet li{color:#cf222e}\
.lane,.tick,.label{font:11px sans-serif}.label{fill:#fff}.tick{fill:#555}\
.seg{fill:#2f81f7}.seg.partial{fill:#9ec5fe}.seg.bad,.gap,.frag.bad{fill:#cf222e}\
.notreceived{fill:#bbb}.conn{fill:#8250df}.frag.ok{fill:#1a7f37}.frag.open{fill:#d4a72c}\
.fault{stroke:#cf222e;stroke-width:2}.reconnect{stroke:#d4a72c;stroke-width:2}.write{stroke:#555}\
.grid{stroke:#eee}.dot{fill:#2f81f7}.budget{stroke:#cf222e;stroke-dasharray:4}";

/// The page.
pub fn page(run: &RunPage<'_>) -> String {
    let failed = run.results.iter().filter(|(r, _)| !r.passed()).count() + run.errors.len();
    let passed = run.results.len() + run.errors.len() - failed;
    let mut out = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>e2e {}</title><style>{STYLE}</style></head><body>",
        escape(&run.run)
    );
    let _ = write!(
        out,
        "<h1>Scenarios: <span class=\"{}\">{passed} passed, {failed} failed</span>, {} skipped</h1><p>{} · run {} · {:.1} s</p>",
        if failed == 0 { "pass" } else { "fail" },
        run.skipped.len(),
        escape(&run.server),
        escape(&run.run),
        run.wall_s
    );
    suite_table(&mut out, run);
    for (name, message) in &run.errors {
        let _ = write!(
            out,
            "<details open id=\"{0}\"><summary class=\"fail\">{0}: could not run</summary><pre>{1}</pre></details>",
            escape(name),
            escape(message)
        );
    }
    let mut ordered: Vec<&(&ScenarioResult, u32)> = run.results.iter().collect();
    ordered.sort_by_key(|(r, _)| (r.passed(), r.name.clone()));
    for (result, attempts) in ordered {
        scenario(&mut out, result, *attempts);
    }
    out.push_str("</body></html>\n");
    out
}

fn suite_table(out: &mut String, run: &RunPage<'_>) {
    out.push_str(
        "<table><tr><th>scenario</th><th>result</th><th>wall time</th><th>segments</th><th>budgets</th></tr>",
    );
    for (result, attempts) in &run.results {
        let verdict = match (result.passed(), attempts) {
            (true, 1) => "<span class=\"pass\">pass</span>".to_owned(),
            (true, n) => format!("<span class=\"pass\">pass (attempt {n})</span>"),
            (false, _) => "<span class=\"fail\">FAIL</span>".to_owned(),
        };
        let budgets: Vec<String> = result
            .report
            .budgets
            .iter()
            .map(|(name, check)| {
                let measured = check.measured_ms.map_or("-".to_owned(), |ms| format!("{ms:.0}"));
                let class = if check.met { "pass" } else { "fail" };
                format!(
                    "<span class=\"{class}\">{name} {measured}/{:.0} ms</span>",
                    check.budget_ms
                )
            })
            .collect();
        let _ = write!(
            out,
            "<tr><td><a href=\"#{0}\">{0}</a></td><td>{verdict}</td><td>{1:.1} s</td><td>{2}</td><td>{3}</td></tr>",
            escape(&result.name),
            result.wall_time.as_secs_f64(),
            result.segments(),
            budgets.join(" ")
        );
    }
    for (name, message) in &run.errors {
        let _ = write!(
            out,
            "<tr><td><a href=\"#{0}\">{0}</a></td><td class=\"fail\">FAIL</td><td colspan=\"3\">{1}</td></tr>",
            escape(name),
            escape(message.lines().next().unwrap_or_default())
        );
    }
    for (name, reason) in &run.skipped {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"skip\">skipped</td><td colspan=\"3\">{}</td></tr>",
            escape(name),
            escape(reason)
        );
    }
    out.push_str("</table>");
}

fn scenario(out: &mut String, result: &ScenarioResult, attempts: u32) {
    let (open, class, word) = if result.passed() {
        ("", "pass", "pass")
    } else {
        (" open", "fail", "FAIL")
    };
    let _ = write!(
        out,
        "<details{open} id=\"{0}\"><summary><span class=\"{class}\">{word}</span> {0} ({1:.1} s{2})</summary><p>{3}</p>",
        escape(&result.name),
        result.wall_time.as_secs_f64(),
        if attempts > 1 {
            format!(", attempt {attempts}")
        } else {
            String::new()
        },
        escape(&result.description)
    );
    if !result.passed() {
        out.push_str("<h3>Failed expectations</h3><ul class=\"unmet\">");
        for unmet in &result.unmet {
            let text = unmet.to_string();
            if text.contains('\n') {
                let _ = write!(out, "<li><pre>{}</pre></li>", escape(&text));
            } else {
                let _ = write!(out, "<li>{}</li>", escape(&text));
            }
        }
        out.push_str("</ul>");
    }
    for timeline in &result.timelines {
        let _ = write!(
            out,
            "<h3>Stream {}</h3>{}{}",
            escape(&timeline.stream_id),
            svg::media(timeline),
            svg::wall(timeline)
        );
    }
    if !result.report.write_latency_ms.is_empty() {
        let budget = result
            .report
            .budgets
            .get("segment_write_p99")
            .map(|b| b.budget_ms);
        out.push_str(&svg::latencies(&result.report.write_latency_ms, budget));
    }
    artifacts(out, &result.dir);
    out.push_str("</details>");
}

/// Links to every file the scenario left (none when its folder was tidied
/// away after a pass).
fn artifacts(out: &mut String, dir: &Path) {
    let Some(folder) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    out.push_str("<h3>Artifacts</h3><ul>");
    for name in names {
        let _ = write!(
            out,
            "<li><a href=\"{}/{}\">{}</a></li>",
            escape(&folder),
            escape(&name),
            escape(&name)
        );
    }
    out.push_str("</ul>");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::assess::outcome::{RunResult, ScenarioOutcome};
    use crate::assess::report::Report;
    use crate::assess::unmet::{Stated, Unmet};
    use crate::record::timeline::{SegmentBar, Span, Timeline};

    fn result(name: &str, unmet: Vec<Unmet>) -> ScenarioResult {
        ScenarioResult {
            name: name.to_owned(),
            description: format!("{name} <described>"),
            unmet,
            outcome: ScenarioOutcome {
                result: RunResult::Completed,
                streams: Vec::new(),
                service: None,
            },
            report: Report {
                write_latency_ms: vec![1.0, 2.5],
                ..Report::default()
            },
            wall_time: Duration::from_secs(3),
            dir: PathBuf::from("/nonexistent"),
            timelines: vec![Timeline {
                stream_id: format!("{name}-0"),
                segments: vec![SegmentBar {
                    kind: ingest::MediaKind::Video,
                    index: 0,
                    start_s: 3.0,
                    duration_s: 6.0,
                    keyframe: false,
                    partial: false,
                }],
                gaps: vec![Span {
                    from_s: 9.0,
                    to_s: 12.0,
                }],
                not_received: None,
                faults: Vec::new(),
                connections: vec![Span {
                    from_s: 0.1,
                    to_s: 8.0,
                }],
                reconnects: Vec::new(),
                writes: Vec::new(),
                fragments: Vec::new(),
            }],
        }
    }

    #[test]
    fn a_failed_scenario_comes_first_open_with_its_expectations_and_timeline() {
        let passed = result("a-passes", Vec::new());
        let failed = result(
            "b-fails",
            vec![
                Unmet::Stated {
                    stream: 0,
                    what: Stated::KeyframeAligned,
                    expected: "true".into(),
                    got: "false".into(),
                },
                Unmet::Snapshot("-old\n+new".into()),
            ],
        );
        let html = page(&RunPage {
            run: "run-1".into(),
            server: "embedded".into(),
            wall_s: 3.0,
            results: vec![(&passed, 1), (&failed, 2)],
            skipped: vec![("c-skipped".into(), "no API <here>".into())],
            errors: Vec::new(),
        });
        assert!(html.contains("1 passed, 1 failed"), "{html}");
        let failed_at = html
            .find("<details open id=\"b-fails\">")
            .expect("the failure is open");
        let passed_at = html
            .find("<details id=\"a-passes\">")
            .expect("the pass is folded");
        assert!(failed_at < passed_at, "failures come first");
        assert!(html.contains("stream 0: keyframe aligned: expected true, got false"));
        assert!(
            html.contains("<pre>snapshot: -old\n+new</pre>"),
            "a diff keeps its lines"
        );
        assert!(
            html.contains("does not start with a keyframe"),
            "the bad segment is drawn"
        );
        assert!(html.contains("gap 9.000-12.000 s"));
        assert!(html.contains("no API &lt;here&gt;"), "text is escaped");
        assert!(html.contains("pass (attempt 2)") || html.contains("FAIL"));
        assert!(!html.contains("<script"), "no script");
    }
}
