//! Configuration errors that name the file, line, column and key.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, e.g. `port[1].device` (empty when the file does not parse at all).
    pub key: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong, and what would be right.
    pub message: String,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("{}", render(path, problems))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfError {
    /// The problems, empty for an I/O error.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfError::Io { .. } => &[],
            ConfError::Invalid { problems, .. } => problems,
        }
    }
}

fn render(path: &Path, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&p.to_string_in(path));
    }
    out
}

impl Problem {
    fn to_string_in(&self, path: &Path) -> String {
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!(" `{}`:", self.key)
        };
        if self.line == 0 {
            // A missing key has no place in the file.
            return format!("{}:{} {}", path.display(), key, self.message);
        }
        format!(
            "{}:{}:{}:{} {}",
            path.display(),
            self.line,
            self.column,
            key,
            self.message
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: `{}`: {}",
            self.line, self.column, self.key, self.message
        )
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

/// A segment of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            segs.push(Seg::Key(name.to_owned()));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                segs.push(Seg::Index(i));
            }
        }
    }
    segs
}

/// A place in the parsed document while walking a key path.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a toml_edit::Item),
    Table(&'a toml_edit::Table),
    Value(&'a toml_edit::Value),
}

impl<'a> Node<'a> {
    fn table_like(self) -> Option<&'a dyn toml_edit::TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Table(t) => Some(t),
            Node::Value(toml_edit::Value::InlineTable(t)) => Some(t),
            Node::Value(_) => None,
        }
    }

    fn index(self, i: usize) -> Option<Node<'a>> {
        match self {
            Node::Item(toml_edit::Item::ArrayOfTables(a)) => a.get(i).map(Node::Table),
            Node::Item(toml_edit::Item::Value(toml_edit::Value::Array(a)))
            | Node::Value(toml_edit::Value::Array(a)) => a.get(i).map(Node::Value),
            _ => None,
        }
    }

    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
    }
}

/// Finds the byte span of the value at `path` in the document, else of the deepest key or
/// table on the way to it that is there.
pub(crate) fn span_of(doc: &toml_edit::ImDocument<&str>, path: &str) -> Option<Range<usize>> {
    let mut node = Node::Item(doc.as_item());
    let mut best = None;
    for seg in parse_path(path) {
        let next = match seg {
            Seg::Key(k) => node.table_like().and_then(|t| {
                t.get_key_value(&k).map(|(key, item)| {
                    best = key.span().or(best.clone());
                    Node::Item(item)
                })
            }),
            Seg::Index(i) => node.index(i),
        };
        match next {
            Some(n) => {
                best = n.span().or(best);
                node = n;
            }
            None => break,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 11), (2, 6));
    }

    #[test]
    fn span_follows_tables_arrays_and_inline_tables() {
        let t = "[eal]\nlcores = [0, 1]\n\n[[port]]\nname = \"a\"\n\n[[port]]\nname = \"b\"\nx = { y = 3 }\n";
        let doc = toml_edit::ImDocument::parse(t).expect("parse");
        let at = |p: &str| span_of(&doc, p).map(|s| line_col(t, s.start));
        assert_eq!(at("eal.lcores"), Some((2, 10)));
        assert_eq!(at("eal.lcores[1]"), Some((2, 14)));
        assert_eq!(at("port[1].name"), Some((8, 8)));
        assert_eq!(at("port[1].x.y"), Some((9, 11)));
        // Missing key: the deepest thing that exists.
        assert_eq!(at("port[0].device").map(|p| p.0), Some(4));
    }
}
