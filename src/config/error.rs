//! Configuration errors that point at the file, line and key.
//!
//! Parse errors carry the byte span the TOML parser reports; validation errors name a
//! dotted key path (`flows.max_flows`, and for a rule or host group the element of its
//! array) that `super::locate` finds in the parser's spanned document. Either way the
//! operator sees `path:line:column: key `name`: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::locate::{find, line_col, path_at};

/// One problem in one configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in (`<built-in>` for the embedded default).
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted key path (`capture.workers_per_interface`), when known.
    pub key: Option<String>,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// All the problems found in one load, reported together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigError {
    /// An error that is not tied to a place in a file (e.g. the file cannot be read).
    pub fn whole_file(path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.to_owned(),
            line: None,
            column: None,
            key: None,
            message: message.into(),
        }
    }

    /// Turns a TOML parse/deserialize error into a located error, naming the key written
    /// where it points.
    pub fn from_toml(path: &Path, source: &str, err: &toml::de::Error) -> ConfigError {
        let key = err.span().and_then(|span| path_at(source, span.start));
        ConfigError::at_span(path, source, err.span(), key, err.message().trim())
    }

    /// A validation error for the dotted key `key`, located in `source` when it is
    /// written there.
    pub fn at_key(path: &Path, source: &str, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::at_element(path, source, key, None, message)
    }

    /// A validation error for the dotted key `key` (`rules.threshold`) in element `index`
    /// of the first array of tables on its path (the third `[[rules]]`). A key left at
    /// its default is reported at its table's header.
    pub fn at_element(
        path: &Path,
        source: &str,
        key: &str,
        index: Option<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        let span = find(source, key, index);
        ConfigError::at_span(path, source, span, Some(key.to_owned()), message)
    }

    /// An error at byte span `span` of `source` (unplaced without one).
    pub fn at_span(
        path: &Path,
        source: &str,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = span.map(|s| line_col(source, s.start)).unzip();
        ConfigError {
            path: path.to_owned(),
            line,
            column,
            key,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[log]\nlevel = \"info\"\n\n[flows.timeouts]\nudp = \"1m\"\n";

    #[test]
    fn display_reads_like_a_compiler_message() {
        let e = ConfigError::at_key(Path::new("/etc/nw.toml"), SRC, "log.level", "bad level");
        assert_eq!(
            e.to_string(),
            "/etc/nw.toml:2:1: key `log.level`: bad level"
        );
        let e = ConfigError::whole_file(Path::new("/etc/nw.toml"), "cannot read");
        assert_eq!(e.to_string(), "/etc/nw.toml: cannot read");
    }
}
