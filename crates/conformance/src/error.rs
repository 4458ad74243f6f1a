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

/// A transport failed: a socket error, a timeout, a server that would not start. Says what
/// happened, in words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl From<String> for TransportError {
    fn from(what: String) -> Self {
        Self(what)
    }
}

impl From<&str> for TransportError {
    fn from(what: &str) -> Self {
        Self(what.to_owned())
    }
}

/// An expectation that did not hold, or a `${name}` that is not bound: which path, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

impl From<String> for Mismatch {
    fn from(why: String) -> Self {
        Self(why)
    }
}

/// Why a scenario failed: the step (or the end of the scenario) and what arrived instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {why}")]
pub struct Failure {
    /// Where: `step 3 (desk expect)`, `end (desk)`, `start`.
    pub at: String,
    /// What did not hold.
    pub why: String,
}
