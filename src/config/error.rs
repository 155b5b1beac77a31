//! Configuration errors that point at the file, line and key.
//!
//! Parse errors carry the byte span the TOML parser reports; validation errors name a
//! dotted key path (`flows.max_flows`) that [`locate`] finds in the source text. Either way
//! the operator sees `path:line:column: key: message`.

use std::fmt;
use std::path::{Path, PathBuf};

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

    /// Turns a TOML parse/deserialize error into a located error.
    pub fn from_toml(path: &Path, source: &str, err: &toml::de::Error) -> ConfigError {
        let (line, column, key) = match err.span() {
            Some(span) => {
                let (line, column) = line_col(source, span.start);
                (Some(line), Some(column), key_at(source, span.start))
            }
            None => (None, None, None),
        };
        ConfigError {
            path: path.to_owned(),
            line,
            column,
            key,
            message: err.message().trim().to_owned(),
        }
    }

    /// A validation error for the dotted key `key`, located in `source` when it is written there.
    pub fn at_key(path: &Path, source: &str, key: &str, message: impl Into<String>) -> ConfigError {
        let line = locate(source, key);
        ConfigError {
            path: path.to_owned(),
            line,
            column: line.map(|_| 1),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

/// 1-based line and column of byte offset `at`.
fn line_col(source: &str, at: usize) -> (usize, usize) {
    let before = source.get(..at).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The dotted key whose line contains byte offset `at`: the enclosing `[table]` header plus
/// the `key =` on that line (or the header itself when the error is on a header line).
fn key_at(source: &str, at: usize) -> Option<String> {
    let (line_no, _) = line_col(source, at);
    let mut table = String::new();
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = table_header(line) {
            table = header;
        }
        if i + 1 == line_no {
            let key = line
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches('"').to_owned());
            return match key {
                Some(k) if !k.is_empty() && !k.starts_with('[') => Some(join(&table, &k)),
                _ if !table.is_empty() => Some(table),
                _ => None,
            };
        }
    }
    None
}

/// `[a.b]` or `[[a]]` → `a.b` / `a`.
fn table_header(line: &str) -> Option<String> {
    let inner = line
        .strip_prefix("[[")
        .and_then(|l| l.split("]]").next())
        .or_else(|| line.strip_prefix('[').and_then(|l| l.split(']').next()))?;
    Some(inner.trim().to_owned())
}

fn join(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    }
}

/// The 1-based line where dotted key `key` (`flows.timeouts.udp`, or a table such as
/// `networks`) is written, if it is.
pub(crate) fn locate(source: &str, key: &str) -> Option<usize> {
    let mut table = String::new();
    for (i, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some(header) = table_header(line) {
            table = header;
            if table == key {
                return Some(i + 1);
            }
            continue;
        }
        if let Some((k, _)) = line.split_once('=')
            && join(&table, k.trim().trim_matches('"')) == key
        {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str =
        "[log]\nlevel = \"info\"\n\n[flows.timeouts]\nudp = \"1m\"\n[[networks]]\nname = \"x\"\n";

    #[test]
    fn locate_finds_keys_under_their_tables() {
        assert_eq!(locate(SRC, "log.level"), Some(2));
        assert_eq!(locate(SRC, "flows.timeouts.udp"), Some(5));
        assert_eq!(locate(SRC, "networks"), Some(6));
        assert_eq!(locate(SRC, "networks.name"), Some(7));
        assert_eq!(locate(SRC, "log.format"), None);
    }

    #[test]
    fn key_at_names_the_key_of_the_offending_line() {
        let at = SRC.find("\"1m\"").unwrap();
        assert_eq!(key_at(SRC, at).as_deref(), Some("flows.timeouts.udp"));
        assert_eq!(line_col(SRC, at), (5, 7));
    }

    #[test]
    fn display_reads_like_a_compiler_message() {
        let e = ConfigError::at_key(Path::new("/etc/nw.toml"), SRC, "log.level", "bad level");
        assert_eq!(
            e.to_string(),
            "/etc/nw.toml:2:1: key `log.level`: bad level"
        );
    }
}
