//! The harness's errors: each names the file, tool or server it concerns.

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
    #[error("invalid {var}: {reason}")]
    Setting { var: &'static str, reason: String },
    #[error("no Docker engine: {0}")]
    NoDocker(String),
    #[error("{0}")]
    Publisher(String),
    #[error("the service: {0}")]
    Service(#[from] service::ServiceError),
    #[error("cluster instance {instance}: {problem}")]
    Instance { instance: String, problem: String },
    #[error("nats-server: {0}")]
    Nats(#[source] std::io::Error),
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
