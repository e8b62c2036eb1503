//! JUnit XML, the report format CI systems display, through nextest's own
//! `quick-junit`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

pub struct Case {
    pub name: String,
    pub time: Duration,
    /// `None` passed, `Some(message)` failed.
    pub failure: Option<String>,
    /// Not run, with the reason (e.g. no Docker engine).
    pub skipped: Option<String>,
}

pub fn render(suite: &str, cases: &[Case]) -> String {
    let mut tests = TestSuite::new(suite);
    for case in cases {
        let status = match (&case.failure, &case.skipped) {
            (Some(message), _) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(message.lines().next().unwrap_or_default());
                status.set_description(message.as_str());
                status
            }
            (None, Some(reason)) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.as_str());
                status
            }
            (None, None) => TestCaseStatus::success(),
        };
        let mut test = TestCase::new(case.name.as_str(), status);
        test.set_classname(suite).set_time(case.time);
        tests.add_test_case(test);
    }
    let mut report = Report::new(suite);
    report.add_test_suite(tests);
    report
        .to_string()
        .expect("a report of strings and durations serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_passes_failures_and_skips() {
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
        assert!(xml.contains("tests=\"3\""), "{xml}");
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("disabled=\"1\""), "{xml}");
        assert!(xml.contains("<skipped message=\"no Docker engine\"/>"), "{xml}");
        assert!(xml.contains("name=\"ok\""), "{xml}");
        assert!(xml.contains("time=\"1.500\""), "{xml}");
        assert!(
            xml.contains("expected &lt;5&gt; &amp; got &quot;3&quot;"),
            "{xml}"
        );
    }
}
