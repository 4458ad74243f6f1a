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
    /// Several entries are wrong: every one found, in the order of the checks (each an
    /// [`ConfigError::Invalid`]).
    #[error("{}", several(.0))]
    Several(Vec<Self>),
}

/// The first line names the file and how many problems; then one line per problem.
fn several(errors: &[ConfigError]) -> String {
    let origin = match errors.first() {
        Some(ConfigError::Invalid { origin, .. } | ConfigError::Syntax { origin, .. }) => {
            origin.as_str()
        }
        _ => "the configuration",
    };
    let mut text = format!("{origin}: {} problems:", errors.len());
    for e in errors {
        text.push_str("\n  ");
        text.push_str(&e.to_string());
    }
    text
}
