//! The table printed at the end of a run.

use std::fmt::Write as _;

use crate::record::ScenarioResult;

pub enum Row<'a> {
    Ran {
        result: &'a ScenarioResult,
        attempts: u32,
    },
    Error {
        name: &'a str,
        message: &'a str,
    },
}

pub fn table(rows: &[Row<'_>]) -> String {
    let mut lines = vec![[
        "scenario".to_owned(),
        "result".to_owned(),
        "wall time".to_owned(),
        "segments".to_owned(),
        "p99 write".to_owned(),
    ]];
    for row in rows {
        lines.push(match row {
            Row::Ran { result, attempts } => [
                result.name.clone(),
                match (result.passed(), attempts) {
                    (true, 1) => "pass".to_owned(),
                    (true, n) => format!("pass (attempt {n})"),
                    (false, _) => "FAIL".to_owned(),
                },
                format!("{:.1} s", result.wall_time.as_secs_f64()),
                result.segments().to_string(),
                result
                    .report
                    .write_latency_p99_ms
                    .map_or("-".to_owned(), |ms| format!("{ms:.1} ms")),
            ],
            Row::Error { name, message } => [
                (*name).to_owned(),
                format!("ERROR: {message}"),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
        });
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        if i == 0 {
            let _ = writeln!(
                out,
                "{}",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
    out
}
