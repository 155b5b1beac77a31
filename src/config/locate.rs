//! Where a key is written: positions from the TOML parser's spanned document.
//!
//! Owns [`find`] (the span of a dotted key, in a given element of an array of tables),
//! [`path_at`] (the dotted key written at a byte offset) and [`line_col`]. Both read the
//! document the parser builds ([`DeTable`], every key and value with its byte span),
//! parsed with recovery so a file with a syntax error still locates what it can. They
//! run only when there is an error to report, so parsing the text again costs nothing
//! on a valid config.
//!
//! Does not own: the error type (`super::error`) or what the keys mean.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// The span of dotted key `dotted` (`rules.threshold`, `flows.timeouts.udp`, or a table
/// such as `networks`) in `source`. The first array of tables on the way is entered at
/// element `index` (at its first element without one), later ones at their first. A key
/// not written there gives the span of the deepest table that is: a rule's `[[rules]]`
/// header for a problem with a key it leaves at its default. `None` when not even the
/// first key is written.
pub(super) fn find(source: &str, dotted: &str, index: Option<usize>) -> Option<Range<usize>> {
    let (doc, _) = DeTable::parse_recoverable(source);
    let mut table = doc.get_ref();
    let mut index = index;
    let mut found = None;
    for part in dotted.split('.') {
        let Some((key, value)) = table.get_key_value(part) else {
            return found;
        };
        found = Some(key.span());
        match value.get_ref() {
            DeValue::Table(t) => {
                if is_header(source, value.span()) {
                    found = Some(value.span());
                }
                table = t;
            }
            DeValue::Array(a) => {
                let Some(element) = a.get(index.take().unwrap_or(0)) else {
                    return found;
                };
                let DeValue::Table(t) = element.get_ref() else {
                    return found;
                };
                found = Some(element.span());
                table = t;
            }
            _ => return found,
        }
    }
    found
}

/// Whether `span` is a table header (`[flows]`, `[[rules]]`) rather than an inline table.
fn is_header(source: &str, span: Range<usize>) -> bool {
    source.get(span).is_some_and(|s| s.starts_with('['))
}

/// The dotted key (array indices left out) whose key or value is written at byte
/// `offset` of `source`: the deepest one, so an error inside an inline table names the
/// key inside it; a table header names the table.
pub(super) fn path_at(source: &str, offset: usize) -> Option<String> {
    let (doc, _) = DeTable::parse_recoverable(source);
    walk(doc.get_ref(), "", offset)
}

fn walk(table: &DeTable<'_>, prefix: &str, offset: usize) -> Option<String> {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if key.span().contains(&offset) {
            return Some(path);
        }
        let inner = match value.get_ref() {
            DeValue::Table(t) => walk(t, &path, offset),
            DeValue::Array(a) => a.iter().find_map(|e| match e.get_ref() {
                DeValue::Table(t) => walk(t, &path, offset)
                    .or_else(|| e.span().contains(&offset).then(|| path.clone())),
                _ => None,
            }),
            _ => None,
        };
        if inner.is_some() {
            return inner;
        }
        if value.span().contains(&offset) {
            return Some(path);
        }
    }
    None
}

/// 1-based line and column of byte offset `at`.
pub(super) fn line_col(source: &str, at: usize) -> (usize, usize) {
    let before = source.get(..at).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "[log]\nlevel = \"info\"\n\n[flows.timeouts]\nudp = \"1m\"\n\
                       [[networks]]\nname = \"x\"\n[[networks]]\nname = \"y\"\n\
                       [[rules]]\nname = \"a\"\nlabels = { team = \"noc\" }\n";

    fn line(dotted: &str, index: Option<usize>) -> Option<(usize, usize)> {
        find(SRC, dotted, index).map(|s| line_col(SRC, s.start))
    }

    #[test]
    fn find_locates_keys_under_their_tables_and_elements() {
        assert_eq!(line("log.level", None), Some((2, 1)));
        assert_eq!(line("flows.timeouts.udp", None), Some((5, 1)));
        assert_eq!(line("networks", None), Some((6, 1)));
        assert_eq!(line("networks.name", None), Some((7, 1)));
        assert_eq!(line("networks.name", Some(1)), Some((9, 1)));
        assert_eq!(line("rules.labels.team", None), Some((12, 12)));
        assert_eq!(
            line("log.format", None),
            Some((1, 1)),
            "the table, not written key"
        );
        assert_eq!(
            line("networks.cidrs", Some(1)),
            Some((8, 1)),
            "the element's header"
        );
        assert_eq!(line("metrics.listen", None), None);
    }

    #[test]
    fn path_at_names_the_key_written_at_an_offset() {
        let at = SRC.find("\"1m\"").unwrap();
        assert_eq!(path_at(SRC, at).as_deref(), Some("flows.timeouts.udp"));
        assert_eq!(line_col(SRC, at), (5, 7));
        let at = SRC.find("\"y\"").unwrap();
        assert_eq!(path_at(SRC, at).as_deref(), Some("networks.name"));
        let at = SRC.find("\"noc\"").unwrap();
        assert_eq!(path_at(SRC, at).as_deref(), Some("rules.labels.team"));
        let at = SRC.find("[flows").unwrap();
        assert_eq!(path_at(SRC, at).as_deref(), Some("flows.timeouts"));
    }
}
