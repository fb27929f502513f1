//! Where each key path of a YAML document sits in its file.
//!
//! serde tells us *what* is wrong and at which key path; this index tells us
//! *where*: for every path (`backends.db.servers.db2.address`,
//! `frontends.web.bind[1]`) the line and column of its key and of its value.
//! It is built from yaml-rust2's marked event stream, so it covers every
//! node of the document, including the ones serde never looks at.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_marker(m: &Marker) -> Pos {
        // yaml-rust2 counts lines from 1 and columns from 0.
        Pos {
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Where the key of a mapping entry starts (None for sequence items).
    key: Option<Pos>,
    /// Where the value starts.
    value: Pos,
}

/// The positions of every node, by key path.
#[derive(Debug, Default)]
pub(crate) struct PositionIndex {
    entries: HashMap<String, Entry>,
}

impl PositionIndex {
    /// Indexes a document. A document the scanner rejects yields an empty
    /// index (serde reports the syntax error with its own position).
    pub(crate) fn build(text: &str) -> PositionIndex {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut builder, false);
        PositionIndex {
            entries: builder.entries,
        }
    }

    /// Position of the value at `path`, or of its closest indexed ancestor.
    pub(crate) fn value(&self, path: &str) -> Option<Pos> {
        self.lookup(path).map(|e| e.value)
    }

    /// Position of the key at `path` (falls back to the value, then to the
    /// closest indexed ancestor).
    pub(crate) fn key(&self, path: &str) -> Option<Pos> {
        self.lookup(path).map(|e| e.key.unwrap_or(e.value))
    }

    /// The entry at `path` or its closest ancestor; never the document
    /// root (a missing top-level key has no place to point at).
    fn lookup(&self, path: &str) -> Option<&Entry> {
        let mut p = path;
        while !p.is_empty() {
            if let Some(e) = self.entries.get(p) {
                return Some(e);
            }
            p = parent(p)?;
        }
        None
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → None.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins a mapping key onto a path.
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Joins a sequence index onto a path.
pub(crate) fn item(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

enum Frame {
    Map {
        path: String,
        /// The key just read, waiting for its value.
        pending_key: Option<(String, Pos)>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    entries: HashMap<String, Entry>,
}

impl Builder {
    /// Handles the start of a node (scalar, alias, mapping or sequence):
    /// either it is a mapping key, or a value whose path we now know.
    /// Returns the node's path when it is a value.
    fn node(&mut self, scalar: Option<&str>, at: Pos) -> Option<String> {
        let (path, key) = match self.stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Seq { path, next }) => {
                let p = item(path, *next);
                *next += 1;
                (p, None)
            }
            Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                None => {
                    // This node is a key. Complex keys are rare in a
                    // config; they index as `?`.
                    *pending_key = Some((scalar.unwrap_or("?").to_string(), at));
                    return None;
                }
                Some((k, key_pos)) => (child(path, &k), Some(key_pos)),
            },
        };
        self.entries.insert(path.clone(), Entry { key, value: at });
        Some(path)
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = Pos::from_marker(&mark);
        match ev {
            Event::Scalar(ref v, ..) => {
                self.node(Some(v), at);
            }
            Event::Alias(_) => {
                self.node(None, at);
            }
            Event::MappingStart(..) => {
                // A mapping used as a key is skipped as a whole.
                if let Some(path) = self.node(None, at) {
                    self.stack.push(Frame::Map {
                        path,
                        pending_key: None,
                    });
                } else {
                    self.stack.push(Frame::Map {
                        path: "?".into(),
                        pending_key: None,
                    });
                }
            }
            Event::SequenceStart(..) => {
                let path = self.node(None, at).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
global:
  workers: auto
backends:
  db:
    servers:
      db1: { address: 10.0.0.11:3306, check: true }
      db2:
        address: \"db2.internal:3306\"
frontends:
  web:
    bind: [\"0.0.0.0:80\", \"0.0.0.0:81\"]
";

    #[test]
    fn finds_nested_keys_and_values() {
        let idx = PositionIndex::build(DOC);
        assert_eq!(idx.value("global.workers"), Some(Pos { line: 2, col: 12 }));
        assert_eq!(idx.key("global.workers"), Some(Pos { line: 2, col: 3 }));
        assert_eq!(
            idx.value("backends.db.servers.db1.address"),
            Some(Pos { line: 6, col: 23 })
        );
        assert_eq!(
            idx.key("backends.db.servers.db2.address"),
            Some(Pos { line: 8, col: 9 })
        );
        assert_eq!(
            idx.value("frontends.web.bind[1]"),
            Some(Pos { line: 11, col: 26 })
        );
    }

    #[test]
    fn unknown_paths_fall_back_to_the_closest_ancestor() {
        let idx = PositionIndex::build(DOC);
        assert_eq!(
            idx.key("backends.db.servers.db2.nope"),
            Some(Pos { line: 7, col: 7 })
        );
        assert_eq!(parent("a.b[2]"), Some("a.b"));
        assert_eq!(parent("a"), Some(""));
    }
}
