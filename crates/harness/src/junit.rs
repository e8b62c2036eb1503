//! JUnit XML, the report format CI systems display.

use std::fmt::Write as _;
use std::time::Duration;

pub struct Case {
    pub name: String,
    pub time: Duration,
    /// `None` passed, `Some(message)` failed.
    pub failure: Option<String>,
    /// Not run, with the reason (e.g. no Docker engine).
    pub skipped: Option<String>,
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c if c.is_control() && c != '\n' && c != '\t' => String::new(),
            c => c.to_string(),
        })
        .collect()
}

pub fn render(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let total: f64 = cases.iter().map(|c| c.time.as_secs_f64()).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{total:.3}\">",
        escape(suite),
        cases.len()
    );
    for case in cases {
        let _ = write!(
            xml,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(suite),
            escape(&case.name),
            case.time.as_secs_f64()
        );
        match (&case.failure, &case.skipped) {
            (None, Some(reason)) => {
                let _ = writeln!(xml, "><skipped message=\"{}\"/></testcase>", escape(reason));
            }
            (None, None) => xml.push_str("/>\n"),
            (Some(message), _) => {
                let first = message.lines().next().unwrap_or_default();
                let _ = writeln!(
                    xml,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    escape(first),
                    escape(message)
                );
            }
        }
    }
    xml.push_str("</testsuite></testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_passes_and_escaped_failures() {
        let xml = render(
            "e2e",
            &[
                Case {
                    name: "ok".into(),
                    time: Duration::from_millis(1500),
                    failure: None,
                    skipped: None,
                },
                Case {
                    name: "bad".into(),
                    time: Duration::ZERO,
                    failure: Some("expected <5> & got \"3\"".into()),
                    skipped: None,
                },
                Case {
                    name: "later".into(),
                    time: Duration::ZERO,
                    failure: None,
                    skipped: Some("no Docker engine".into()),
                },
            ],
        );
        assert!(xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""), "{xml}");
        assert!(xml.contains("<skipped message=\"no Docker engine\"/>"), "{xml}");
        assert!(xml.contains("name=\"ok\" time=\"1.500\"/>"), "{xml}");
        assert!(
            xml.contains("expected &lt;5&gt; &amp; got &quot;3&quot;"),
            "{xml}"
        );
    }
}
