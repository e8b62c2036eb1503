use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HarnessError {
    #[error("{}:{line}:{column}: {message}", path.display())]
    Scenario {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Incompatible { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Tool(#[from] media_tools::ToolError),
    #[error("media server: {0}")]
    Server(String),
    #[error("{}: not an FLV file", path.display())]
    NotFlv { path: PathBuf },
    #[error("echo STS peer: {0}")]
    StsPeer(String),
}

impl HarnessError {
    /// A YAML error in `path`, with the line and column serde_yaml found.
    pub fn yaml(path: &std::path::Path, e: &serde_yaml::Error) -> Self {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        Self::Scenario {
            path: path.to_owned(),
            line,
            column,
            message: e.to_string(),
        }
    }
}
