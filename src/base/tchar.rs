//! HTTP token characters (RFC 9110 §5.6.2), shared by the head parser and
//! the configuration's header-name checks.

/// RFC 9110 token characters.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
