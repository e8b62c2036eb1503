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
}
