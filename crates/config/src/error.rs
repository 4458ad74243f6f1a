//! The crate's error type.

/// What is wrong with a configuration, naming the file, the entry and (for TOML) the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML/JSON or does not fit the schema (unknown key, wrong type).
    #[error("{origin}: {message}")]
    Syntax {
        /// The file name or origin.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The entries fit the schema but not each other (unknown group, duplicate id, ...).
    #[error("{origin}{}: {entry}: {problem}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// The file name or origin.
        origin: String,
        /// The line of the offending entry (TOML only).
        line: Option<usize>,
        /// The entry, e.g. `agent "a9"` or `limits.max_frame_len`.
        entry: String,
        /// What is wrong and what would be right.
        problem: String,
    },
}
