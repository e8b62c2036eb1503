//! Rules of the codebase that no compiler checks, kept by a test (run with
//! `cargo xtask test`, as every test is):
//! - a library carries no dependency only binaries use (clap, anyhow,
//!   tracing-subscriber): those live in the `*-cli` crates and `e2e`;
//! - the product libraries (ingest, service, cluster, rtmp-server, sts, rtmp-chunks,
//!   reconnect) show no internal module: their API is re-exported at the
//!   crate root, and a public module only exists behind a feature (the
//!   planted faults);
//! - `cargo xtask deps` checks for exactly the GStreamer elements the
//!   ingest builds its pipelines from;
//! - the harness and media-tools: every file opens with a module doc,
//!   no public internals (`unreachable_pub` is on, so every `pub` item is
//!   API re-exported at the root; a public module only where it is a
//!   namespace of the API, listed here), and no `Result<_, String>`: their
//!   errors are typed;
//! - no file in the harness over 400 lines: one job per file, so that a
//!   stage reads as a walk, not a search.
//!
//! The sources are read as text: xtask must build on a machine without
//! GStreamer, so it cannot link the ingest to ask it.

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    const BIN_ONLY: [&str; 3] = ["clap", "anyhow", "tracing-subscriber"];
    const PRODUCT_LIBRARIES: [&str; 7] = [
        "cluster",
        "ingest",
        "rtmp-server",
        "service",
        "sts",
        "rtmp-chunks",
        "reconnect",
    ];

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn read(path: &str) -> String {
        std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every workspace member that has a library target.
    fn libraries() -> Vec<(String, toml::Table)> {
        let workspace: toml::Table = read("Cargo.toml").parse().unwrap();
        let members = workspace["workspace"]["members"].as_array().unwrap();
        members
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .filter(|m| root().join(m).join("src/lib.rs").exists())
            .map(|m| {
                let manifest: toml::Table = read(&format!("{m}/Cargo.toml")).parse().unwrap();
                (m, manifest)
            })
            .collect()
    }

    #[test]
    fn no_library_depends_on_what_only_binaries_use() {
        let mut offenders = Vec::new();
        for (member, manifest) in libraries() {
            let Some(deps) = manifest.get("dependencies").and_then(|d| d.as_table()) else {
                continue;
            };
            for dep in BIN_ONLY.iter().filter(|d| deps.contains_key(**d)) {
                offenders.push(format!("{member} depends on {dep}"));
            }
        }
        assert!(
            offenders.is_empty(),
            "move these to the crate's binary crate: {offenders:?}"
        );
    }

    #[test]
    fn product_libraries_show_no_internal_module() {
        let mut offenders = Vec::new();
        for name in PRODUCT_LIBRARIES {
            let path = format!("crates/{name}/src/lib.rs");
            let text = read(&path);
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                let gated = i > 0 && lines[i - 1].trim_start().starts_with("#[cfg(feature");
                if line.starts_with("pub mod ") && !gated {
                    offenders.push(format!("{path}:{}: {line}", i + 1));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "make these private and re-export their API at the root: {offenders:?}"
        );
    }

    /// The harness and media-tools, with the modules they may show as
    /// namespaces of their API.
    const TOOL_LIBRARIES: [(&str, &[&str]); 2] =
        [("harness", &["conformance", "suite"]), ("media-tools", &["flv"])];

    /// Every `.rs` file under `dir`, relative to the workspace root.
    fn sources(dir: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![root().join(dir)];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push(path.strip_prefix(root()).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        found
    }

    const HARNESS_FILE_LINES: usize = 400;

    #[test]
    fn no_harness_file_is_longer_than_400_lines() {
        let long: Vec<String> = sources("crates/harness/src")
            .into_iter()
            .map(|path| (read(&path).lines().count(), path))
            .filter(|(lines, _)| *lines > HARNESS_FILE_LINES)
            .map(|(lines, path)| format!("{path}: {lines} lines"))
            .collect();
        assert!(
            long.is_empty(),
            "split these by job (at most {HARNESS_FILE_LINES} lines each): {long:#?}"
        );
    }

    #[test]
    fn tool_libraries_document_every_file_and_type_their_errors() {
        let mut offenders = Vec::new();
        for (name, _) in TOOL_LIBRARIES {
            for path in sources(&format!("crates/{name}/src")) {
                let text = read(&path);
                if !text.starts_with("//!") {
                    offenders.push(format!("{path}: no module doc (`//!`) at the top"));
                }
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if code.contains("Result<") && code.replace(' ', "").contains(",String>") {
                        offenders.push(format!("{path}:{}: an untyped error: {}", i + 1, line.trim()));
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "{offenders:#?}");
    }

    #[test]
    fn tool_libraries_show_no_public_internals() {
        let mut offenders = Vec::new();
        for (name, namespaces) in TOOL_LIBRARIES {
            let path = format!("crates/{name}/src/lib.rs");
            let text = read(&path);
            if !text.contains("#![warn(unreachable_pub)]") {
                offenders.push(format!("{path}: `#![warn(unreachable_pub)]` is missing"));
            }
            for line in text.lines() {
                if let Some(module) = line.strip_prefix("pub mod ")
                    && !namespaces.contains(&module.trim_end_matches(';'))
                {
                    offenders.push(format!("{path}: {line} (not a listed namespace)"));
                }
            }
        }
        assert!(offenders.is_empty(), "{offenders:#?}");
    }

    /// The quoted names in the array constant `name` of `source`.
    fn quoted_in_const(source: &str, name: &str) -> BTreeSet<String> {
        let start = source
            .find(&format!("const {name}"))
            .unwrap_or_else(|| panic!("no const {name}"));
        let body = &source[start..];
        let body = &body[body.find('=').unwrap()..body.find("];").unwrap()];
        body.split('"').skip(1).step_by(2).map(str::to_owned).collect()
    }

    #[test]
    fn deps_checks_exactly_the_elements_the_ingest_uses() {
        let mut used = quoted_in_const(&read("crates/ingest/src/pipeline.rs"), "REQUIRED_ELEMENTS");
        let decoder = read("crates/ingest/src/dubbing/decoder.rs");
        used.extend(quoted_in_const(&decoder, "ELEMENTS"));
        // One AAC decoder is enough; deps installs the one Debian has.
        let decoders = quoted_in_const(&decoder, "AAC_DECODERS");
        let checked: BTreeSet<String> = crate::deps::REQUIREMENTS
            .iter()
            .filter_map(|r| match r.check {
                crate::deps::Check::Element(e) => Some(e.to_owned()),
                _ => None,
            })
            .collect();
        let decoders_checked: Vec<&String> = checked.intersection(&decoders).collect();
        assert_eq!(
            decoders_checked.len(),
            1,
            "deps checks one AAC decoder of {decoders:?}"
        );
        let checked: BTreeSet<String> = checked.difference(&decoders).cloned().collect();
        assert_eq!(
            checked, used,
            "cargo xtask deps and the ingest's pipelines disagree"
        );
    }
}
