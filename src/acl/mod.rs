//! HAProxy's ACL condition language: sample fetches, converters, matchers,
//! named and anonymous ACLs, `if`/`unless` conditions and log-format
//! templates.
//!
//! Everything is parsed and compiled once, at configuration time
//! ([`AclSet::define`], [`Condition::parse`], [`Fetch::parse`],
//! [`LogFormat::parse`]); the per-request side ([`Condition::eval`],
//! [`Fetch::eval`], [`LogFormat::render`]) reads the request through the
//! [`Context`] trait and avoids heap allocation wherever the data allows
//! (see the notes on [`Fetch::eval`]).
//!
//! The files, one concept each:
//! - `words.rs`: HAProxy word splitting, [`split_words`], [`split_condition`];
//! - `value.rs`: borrowed sample values, stack scratch buffers, casts;
//! - `convert.rs`: converters (`,lower`, `,upper`, `,length`);
//! - `fetch.rs`: [`Fetch`], the sample fetch expressions;
//! - `matcher.rs`: match methods (`-m str`, `-m beg`, ...) and patterns;
//! - `rule.rs`: one ACL definition, `criterion [flags] [operator] patterns`;
//! - `set.rs`: [`AclSet`] and the predefined ACLs;
//! - `expr.rs`: [`Condition`];
//! - `logformat.rs`: [`LogFormat`].
//!
//! Must not touch: the configuration and every runtime module; it imports
//! only `model` and `base` (callers hand it a [`Context`]).

mod convert;
mod expr;
mod fetch;
mod logformat;
mod matcher;
mod rule;
mod set;
mod value;
mod words;

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod mock;

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub(crate) use expr::Condition;
pub(crate) use fetch::Fetch;
pub(crate) use logformat::LogFormat;
pub(crate) use set::AclSet;
pub(crate) use words::{split_condition, split_words};

/// Everything a fetch can read about the current request (and, in
/// http-response rules, its response). Implemented by the HTTP engine.
pub(crate) trait Context {
    /// The client's address.
    fn src(&self) -> SocketAddr;
    /// The address the client connected to.
    fn dst(&self) -> SocketAddr;
    /// The request method as received, e.g. `GET`.
    fn method(&self) -> &[u8];
    /// The request target as received: `/a/b?x=1` or `http://h/a?x`.
    fn url(&self) -> &[u8];
    /// The path only, without the query (`/a/b`); for an absolute-form
    /// target, its path part.
    fn path(&self) -> &[u8];
    /// The query string without the `?`; `None` when the target has no `?`.
    fn query(&self) -> Option<&[u8]>;
    /// The HTTP version, `1.1` or `1.0`.
    fn version(&self) -> &[u8];
    /// Calls `f` with the full value of each occurrence of request header
    /// `name` (case-insensitive name), in order. Values are not split.
    fn req_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8]));
    /// Same for response headers (http-response rules); no calls for a request.
    fn res_header(&self, name: &[u8], f: &mut dyn FnMut(&[u8]));
    /// The response status; `None` while processing a request.
    fn status(&self) -> Option<u16>;
    /// The TLS session of the client connection, when corral terminated
    /// TLS on it (`ssl_fc*` fetches).
    fn tls(&self) -> Option<&rustls::ServerConnection> {
        None
    }
    /// Whether the connection arrived over TLS.
    fn ssl_fc(&self) -> bool {
        self.tls().is_some()
    }
    /// This request's unique id.
    fn unique_id(&self) -> &[u8];
    /// Calls `f(name, value)` for every request header line, in order.
    ///
    /// Only `hdr_cnt`/`req.hdr_cnt`/`req.fhdr_cnt` without a header name use
    /// it (they count every header). The default reports no headers, so an
    /// engine that wants those fetches to count must override it.
    fn req_headers(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        let _ = f;
    }

    /// The value of a stick counter (`sc0_conn_cur`, `src_http_req_rate`);
    /// `None` when nothing is tracked, the key is not in the table or the
    /// table does not store that type (the fetch then finds no value).
    fn stick_counter(&self, q: &crate::model::table::Query) -> Option<u64> {
        let _ = q;
        None
    }

    /// The client's first bytes held by a tcp frontend's content
    /// inspection (`tcp-request inspect-delay`); `None` anywhere else, so
    /// `req.len` and the `req.ssl_*` fetches find no value there.
    fn payload(&self) -> Option<Payload<'_>> {
        None
    }
}

/// What content inspection read from a client before choosing a backend.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Payload<'a> {
    /// Bytes buffered (`req.len`).
    pub len: usize,
    /// The first TLS handshake message, when those bytes hold a complete
    /// and well-formed one, with the reassembled message its positions
    /// refer to.
    pub hello: Option<(crate::base::client_hello::Hello, &'a [u8])>,
}

/// A parse error: `offset` is the byte offset of the offending token in the
/// text that was parsed, `token` that token, `message` what is wrong and
/// what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// Byte offset of `token` in the text given to the parse function.
    pub offset: usize,
    /// The offending word (empty when the problem is a missing word at the
    /// end of the text).
    pub token: String,
    /// What is wrong and what was expected; names the token.
    pub message: String,
}

impl ParseError {
    /// Builds an error at `offset` about `token`.
    pub(crate) fn new(
        offset: usize,
        token: impl Into<String>,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError {
            offset,
            token: token.into(),
            message: message.into(),
        }
    }

    /// The same error with `delta` added to its offset, for an error found
    /// in a piece of a larger text.
    pub(crate) fn shifted(mut self, delta: usize) -> ParseError {
        self.offset += delta;
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

/// A value produced by a sample fetch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sample<'a> {
    /// A string (bytes; HTTP data need not be UTF-8).
    Str(Cow<'a, [u8]>),
    /// An integer (ports, status, counts, lengths).
    Int(i64),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A boolean (`ssl_fc`, `always_true`).
    Bool(bool),
}

impl Sample<'_> {
    /// Appends the sample's text form to `out`: strings as they are,
    /// integers in decimal, addresses in their usual notation, booleans as
    /// `1`/`0` (as HAProxy prints them).
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        value::write_val(self.as_val(), out);
    }

    /// Converts the sample to an owned one (no borrow of the context).
    #[cfg(test)]
    pub(crate) fn into_owned(self) -> Sample<'static> {
        match self {
            Sample::Str(s) => Sample::Str(Cow::Owned(s.into_owned())),
            Sample::Int(i) => Sample::Int(i),
            Sample::Ip(ip) => Sample::Ip(ip),
            Sample::Bool(b) => Sample::Bool(b),
        }
    }

    fn as_val(&self) -> value::Val<'_> {
        match self {
            Sample::Str(s) => value::Val::Str(s),
            Sample::Int(i) => value::Val::Int(*i),
            Sample::Ip(ip) => value::Val::Ip(*ip),
            Sample::Bool(b) => value::Val::Bool(*b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_values_can_move_between_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + fmt::Debug>() {}
        assert_send_sync::<Condition>();
        assert_send_sync::<AclSet>();
        assert_send_sync::<Fetch>();
        assert_send_sync::<LogFormat>();
        assert_send_sync::<ParseError>();
    }

    #[test]
    fn sample_helpers() {
        let mut out = Vec::new();
        Sample::Str(Cow::Borrowed(b"a")).write_to(&mut out);
        Sample::Int(-2).write_to(&mut out);
        Sample::Ip("10.0.0.1".parse().unwrap()).write_to(&mut out);
        Sample::Bool(true).write_to(&mut out);
        assert_eq!(out, b"a-210.0.0.11");
        let owned = {
            let text = String::from("x");
            Sample::Str(Cow::Borrowed(text.as_bytes())).into_owned()
        };
        assert_eq!(owned, Sample::Str(Cow::Owned(b"x".to_vec())));
    }

    #[test]
    fn parse_error_display() {
        let e = ParseError::new(4, "-q", "unknown flag `-q`");
        assert_eq!(e.to_string(), "unknown flag `-q` (at byte 4)");
        assert_eq!(e.clone().shifted(3).offset, 7);
    }
}
