//! Named ACLs of a section, and HAProxy's predefined ACLs.

use std::collections::HashMap;

use super::ParseError;
use super::rule::{Acl, AclExpr};
use super::words::lex;

/// Named ACLs of one section (frontend or backend).
#[derive(Debug, Default, Clone)]
pub(crate) struct AclSet {
    acls: HashMap<String, Acl>,
}

/// HAProxy's predefined ACLs and their definitions.
const PREDEFINED: &[(&str, &str)] = &[
    ("TRUE", "always_true"),
    ("FALSE", "always_false"),
    ("HTTP", "always_true"),
    ("LOCALHOST", "src 127.0.0.1/8 ::1"),
    ("HTTP_1.0", "req.ver 1.0"),
    ("HTTP_1.1", "req.ver 1.1"),
    ("HTTP_2.0", "req.ver 2.0"),
    ("METH_GET", "method GET HEAD"),
    ("METH_HEAD", "method HEAD"),
    ("METH_POST", "method POST"),
    ("METH_PUT", "method PUT"),
    ("METH_DELETE", "method DELETE"),
    ("METH_OPTIONS", "method OPTIONS"),
    ("METH_CONNECT", "method CONNECT"),
    ("METH_TRACE", "method TRACE"),
    ("HTTP_URL_ABS", "url_reg ^[^/:]*://"),
    ("HTTP_URL_SLASH", "url_beg /"),
    ("HTTP_URL_STAR", "url *"),
    ("HTTP_CONTENT", "hdr_val(content-length) gt 0"),
];

/// The predefined ACL `name` (`TRUE`, `LOCALHOST`, `METH_GET`, ...).
pub(crate) fn predefined(name: &str) -> Option<Acl> {
    let (_, text) = PREDEFINED.iter().find(|(n, _)| *n == name)?;
    let words = lex(text).ok()?;
    AclExpr::parse(&words).ok().map(Acl::single)
}

/// Whether `name` is usable as an ACL name: HAProxy allows letters,
/// digits, `-`, `_`, `.` and `:`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

impl AclSet {
    /// An empty set.
    pub(crate) fn new() -> AclSet {
        AclSet::default()
    }

    /// Defines (or, if `name` already exists, ORs another definition into)
    /// the ACL `name` from HAProxy text after the name, e.g.
    /// "path_beg /static /images", "hdr(host) -i site1.example.com",
    /// "src 10.0.0.0/8 192.168.0.0/16". Errors point into `text`.
    ///
    /// An invalid `name` (allowed: letters, digits, `-_.:`) is reported at
    /// offset 0 with the name as token, since the name is not in `text`.
    /// A user ACL may shadow a predefined one of the same name.
    pub(crate) fn define(&mut self, name: &str, text: &str) -> Result<(), ParseError> {
        if !valid_name(name) {
            return Err(ParseError::new(
                0,
                name,
                format!(
                    "invalid ACL name `{name}`; expected letters, digits, '-', '_', '.' or ':'"
                ),
            ));
        }
        let words = lex(text)?;
        if words.is_empty() {
            return Err(ParseError::new(
                text.len(),
                "",
                format!("ACL `{name}` needs a fetch and patterns, e.g. `path_beg /static`"),
            ));
        }
        let expr = AclExpr::parse(&words)?;
        self.acls.entry(name.to_string()).or_default().push(expr);
        Ok(())
    }

    /// Whether `name` was defined in this set (predefined ACLs are not
    /// listed here, though conditions can use them).
    #[cfg(test)]
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.acls.contains_key(name)
    }

    /// The number of named ACLs defined.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.acls.len()
    }

    /// Whether no ACL is defined.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.acls.is_empty()
    }

    /// The ACL `name`: this set's, else the predefined one.
    pub(crate) fn resolve(&self, name: &str) -> Option<Acl> {
        self.acls.get(name).cloned().or_else(|| predefined(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_predefined_acl_parses() {
        for (name, _) in PREDEFINED {
            assert!(predefined(name).is_some(), "{name}");
        }
        assert!(predefined("NOPE").is_none());
    }

    #[test]
    fn names_are_checked() {
        let mut set = AclSet::new();
        assert!(set.is_empty());
        set.define("is-static_1.x:y", "path_beg /s").unwrap();
        assert!(set.contains("is-static_1.x:y"));
        assert_eq!(set.len(), 1);
        let e = set.define("bad name", "path_beg /s").unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (0, "bad name"));
        assert!(e.message.contains("invalid ACL name `bad name`"));
        assert!(set.define("", "path_beg /s").is_err());
        assert!(set.define("{", "path_beg /s").is_err());
    }

    #[test]
    fn empty_definition_is_an_error() {
        let mut set = AclSet::new();
        let e = set.define("x", "   ").unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (3, ""));
        assert!(e.message.contains("ACL `x` needs a fetch"));
        assert!(!set.contains("x"));
    }

    #[test]
    fn failed_definition_leaves_set_unchanged() {
        let mut set = AclSet::new();
        assert!(set.define("x", "path_beg -q /a").is_err());
        assert!(!set.contains("x"));
    }
}
