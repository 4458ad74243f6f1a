//! What can stop a run.

/// What can stop a run (as opposed to a scenario failing).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A scenario file is not in the documented format.
    #[error("{file}: {problem}")]
    Scenario {
        /// The file.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// A scenario's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ixn_config::ConfigError),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Report(std::io::Error),
}
