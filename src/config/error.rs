//! Configuration errors: each names the file, line and column, the key
//! path, and what was expected.

use super::position::{Pos, PositionIndex};
use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// Key path of the offending node, e.g. `backends.db.servers.db2.address`.
    pub path: String,
    /// Where it is in the file, when known.
    pub pos: Option<Pos>,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Every error found in one file, in file order.
#[derive(Debug, Clone)]
pub(crate) struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn single(
        file: &Path,
        path: &str,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> Self {
        ConfigErrors {
            file: file.to_path_buf(),
            errors: vec![ConfigError {
                path: path.to_string(),
                pos,
                message: message.into(),
            }],
        }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(p) = e.pos {
                write!(f, ":{}:{}", p.line, p.col)?;
            }
            if e.path.is_empty() {
                write!(f, ": {}", e.message)?;
            } else {
                write!(f, ": {}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors during validation, resolving positions as it goes.
pub(super) struct Collector<'a> {
    index: &'a PositionIndex,
    /// The file's text, to place errors inside string values.
    source: &'a str,
    pub errors: Vec<ConfigError>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(index: &'a PositionIndex, source: &'a str) -> Self {
        Collector {
            index,
            source,
            errors: Vec::new(),
        }
    }

    /// An error at byte `offset` inside the string value `value` at
    /// `path` (a token in a condition or rule).
    pub(super) fn at_offset(
        &mut self,
        path: &str,
        value: &str,
        offset: usize,
        message: impl Into<String>,
    ) {
        let pos = self.index.value(path).map(|p| {
            let line = self
                .source
                .lines()
                .nth(p.line.saturating_sub(1))
                .unwrap_or("");
            let quoted = matches!(line.chars().nth(p.col.saturating_sub(1)), Some('"' | '\''));
            let within = value
                .get(..offset.min(value.len()))
                .map_or(0, |s| s.chars().count());
            Pos {
                line: p.line,
                col: p.col + within + usize::from(quoted),
            }
        });
        self.push(path, pos, message.into());
    }

    /// An error about the value at `path`.
    pub(super) fn at(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.index.value(path);
        self.push(path, pos, message.into());
    }

    /// An error about the key at `path` (an unknown or misplaced key).
    pub(super) fn at_key(&mut self, path: &str, message: impl Into<String>) {
        let pos = self.index.key(path);
        self.push(path, pos, message.into());
    }

    fn push(&mut self, path: &str, pos: Option<Pos>, message: String) {
        self.errors.push(ConfigError {
            path: path.to_string(),
            pos,
            message,
        });
    }

    /// Errors sorted by position so they read top to bottom.
    pub(super) fn finish(mut self) -> Vec<ConfigError> {
        self.errors
            .sort_by_key(|e| e.pos.map(|p| (p.line, p.col)).unwrap_or((usize::MAX, 0)));
        self.errors
    }
}
