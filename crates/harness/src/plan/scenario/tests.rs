//! The scenario format's rules, and the committed schema kept in step with it.

use super::*;

const MINIMAL: &str = "description: d\nfixture: seed\nexpect:\n  outcome: completed\n";

#[test]
fn minimal_scenario_takes_defaults() {
    let s = Scenario::parse(MINIMAL, Path::new("s.yaml")).unwrap();
    assert_eq!(s.streams, 1);
    assert_eq!(s.publish.pace, Pace::Realtime);
    assert_eq!(s.expect.outcome, ExpectedOutcome::Completed);
}

#[test]
fn unknown_keys_are_refused_with_position_and_allowed_keys() {
    let text = "description: d\nfixture: seed\npublish:\n  pase: fast\nexpect:\n  outcome: completed\n";
    let message = Scenario::parse(text, Path::new("scenarios/x.yaml"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("scenarios/x.yaml:4:"), "{message}");
    assert!(message.contains("pase"), "{message}");
    assert!(message.contains("pace"), "the allowed keys are listed: {message}");
}

#[test]
fn failed_outcome_names_kind_and_message() {
    let text = "description: d\nexpect:\n  outcome: failed\n  error: {kind: invalid_url, message: RTMP}\n";
    let s = Scenario::parse(text, Path::new("s.yaml")).unwrap();
    assert_eq!(s.expect.outcome, ExpectedOutcome::Failed);
    assert_eq!(s.expect.error.unwrap().kind, ingest::ErrorKind::InvalidUrl);
    let missing = "description: d\nexpect:\n  outcome: failed\n";
    let message = Scenario::parse(missing, Path::new("s.yaml"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("expect.error is missing"), "{message}");
}

#[test]
fn bad_values_say_what_is_allowed() {
    let text = "description: d\npublish: {pace: slow}\nexpect: {outcome: completed}\n";
    let message = Scenario::parse(text, Path::new("s.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("slow") && message.contains("realtime"),
        "{message}"
    );
}

#[test]
fn a_misspelt_error_kind_is_refused_when_read() {
    let text = "description: d\nexpect:\n  outcome: failed\n  error: {kind: missing_trak, message: x}\n";
    let message = Scenario::parse(text, Path::new("s.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("missing_trak") && message.contains("missing_track"),
        "the known kinds are listed: {message}"
    );
}

#[test]
fn the_schema_knows_every_error_kind_and_no_other() {
    let schema: serde_json::Value = serde_json::to_value(schemars::schema_for!(ExpectedError)).unwrap();
    let names: Vec<&str> = schema["properties"]["kind"]["enum"]
        .as_array()
        .expect("an enum of names")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // What the file's reader accepts: the kinds' serde names.
    let kinds: Vec<String> = ingest::ErrorKind::ALL
        .iter()
        .map(|k| serde_json::to_value(k).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, kinds);
}

#[test]
fn schema_lists_the_top_level_keys() {
    let schema = json_schema();
    for key in ["fixture", "publish", "ingest", "expect", "timeout", "streams"] {
        assert!(schema.contains(&format!("\"{key}\"")), "{key} missing");
    }
}

mod committed_schema {
    #[test]
    fn scenarios_schema_file_is_current() {
        let path = crate::plan::catalog::workspace_root().join("scenarios/scenario.schema.json");
        let committed = std::fs::read_to_string(&path).expect("the schema is committed");
        assert_eq!(
            committed.trim_end(),
            super::json_schema().trim_end(),
            "{} is stale: run `cargo xtask schema`",
            path.display()
        );
    }
}
