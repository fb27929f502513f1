//! Sample fetches: `path`, `hdr(host)`, `src`, ... with their converters.

use std::borrow::Cow;

use super::convert::{self, Conv};
use super::matcher::Method;
use super::value::{SType, Scratch, Val, str_to_int, str_to_ip, strip_host_port, trim};
use super::{Context, ParseError, Sample};

/// How many values a fetch reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Iter {
    /// ACL matching: every value (each comma-separated value of each header
    /// occurrence, each occurrence of a query parameter) until one matches.
    All,
    /// Sample use (log-format, set-header): one value, the last for
    /// headers, the first for query parameters.
    Sample,
}

/// What a header fetch turns each value into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HdrOut {
    Str,
    /// `hdr_val`: values that are integers; others are skipped.
    Int,
    /// `hdr_ip`: values that are addresses; others are skipped.
    Ip,
}

#[derive(Debug, Clone)]
enum Kind {
    Path,
    Url,
    Query,
    Method,
    Base,
    ReqVer,
    UniqueId,
    UrlParam {
        name: Box<[u8]>,
        delim: u8,
    },
    Hdr {
        /// Response headers (`res.hdr`, `shdr`) rather than request ones.
        res: bool,
        name: Box<[u8]>,
        /// 0: all values (ACL) or the last (sample); > 0: the n-th from the
        /// first; < 0: the n-th from the last.
        occ: i64,
        /// `fhdr`: whole lines, not split at commas.
        full: bool,
        out: HdrOut,
    },
    HdrCnt {
        res: bool,
        /// `None` counts every header.
        name: Option<Box<[u8]>>,
        full: bool,
    },
    Src,
    Dst,
    SrcPort,
    DstPort,
    SslFc,
    /// `ssl_fc_sni`, `ssl_fc_protocol`, `ssl_fc_cipher`, `ssl_fc_alpn`,
    /// `ssl_fc_is_resumed`: the client connection's TLS session.
    Tls(TlsField),
    Status,
    AlwaysTrue,
    AlwaysFalse,
    /// `req.len`: bytes held by content inspection.
    ReqLen,
    /// `req.ssl_hello_type`: the first handshake message's type.
    SslHelloType,
    /// `req.ssl_sni`: the ClientHello's server name.
    SslSni,
    /// `req.ssl_ver`: the ClientHello's version, major * 65536 + minor.
    SslVer,
    /// `req.ssl_alpn`: each ALPN protocol the ClientHello offers.
    SslAlpn,
    /// A stick counter: `sc0_conn_cur`, `sc_http_req_rate(1)`,
    /// `src_get_gpc0(table)`.
    Stick(crate::model::table::Query),
}

/// What a `ssl_fc_*` fetch reads from the TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsField {
    Sni,
    Protocol,
    Cipher,
    Alpn,
    Resumed,
}

impl TlsField {
    /// The value for session `s`; `None` when it has none (no SNI sent,
    /// no ALPN agreed).
    fn read(self, s: &rustls::ServerConnection) -> Option<Val<'_>> {
        match self {
            TlsField::Sni => s.server_name().map(|n| Val::Str(n.as_bytes())),
            TlsField::Protocol => s
                .protocol_version()
                .map(|v| Val::Str(crate::base::tls_names::protocol(v).as_bytes())),
            TlsField::Cipher => s
                .negotiated_cipher_suite()
                .map(|c| Val::Str(crate::base::tls_names::cipher(c.suite()).as_bytes())),
            TlsField::Alpn => s.alpn_protocol().map(Val::Str),
            TlsField::Resumed => Some(Val::Bool(
                s.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            )),
        }
    }
}

/// Every fetch name `Fetch::parse` knows.
const FETCHES: &[&str] = &[
    "path",
    "url",
    "query",
    "method",
    "base",
    "req.ver",
    "req_ver",
    "unique-id",
    "url_param",
    "urlp",
    "hdr",
    "req.hdr",
    "req.fhdr",
    "res.hdr",
    "res.fhdr",
    "shdr",
    "hdr_val",
    "req.hdr_val",
    "res.hdr_val",
    "shdr_val",
    "hdr_ip",
    "req.hdr_ip",
    "res.hdr_ip",
    "shdr_ip",
    "hdr_cnt",
    "req.hdr_cnt",
    "req.fhdr_cnt",
    "res.hdr_cnt",
    "res.fhdr_cnt",
    "shdr_cnt",
    "src",
    "dst",
    "src_port",
    "dst_port",
    "ssl_fc",
    "ssl_fc_sni",
    "ssl_fc_protocol",
    "ssl_fc_cipher",
    "ssl_fc_alpn",
    "ssl_fc_is_resumed",
    "status",
    "always_true",
    "always_false",
    "req.len",
    "req_len",
    "req.ssl_hello_type",
    "req_ssl_hello_type",
    "req.ssl_sni",
    "req_ssl_sni",
    "req.ssl_ver",
    "req_ssl_ver",
    "req.ssl_alpn",
];

/// Fetches that have ACL derivatives `<fetch>_<suffix>` (`path_beg`, ...).
const DERIVABLE: &[&str] = &["path", "url", "base", "hdr", "shdr", "urlp", "url_param"];

/// ACL derivative suffixes and the match method each selects.
const SUFFIXES: &[(&str, Method)] = &[
    ("beg", Method::Beg),
    ("end", Method::End),
    ("sub", Method::Sub),
    ("reg", Method::Reg),
    ("dir", Method::Dir),
    ("dom", Method::Dom),
    ("len", Method::Len),
];

/// A fetch argument and where it starts.
struct Arg<'a> {
    text: &'a str,
    offset: usize,
}

/// A sample fetch expression with optional converters, e.g. `src`,
/// `hdr(x-user)`, `req.hdr(host,1)`, `url_param(id)`, `path,lower`.
#[derive(Debug, Clone)]
pub(crate) struct Fetch {
    #[cfg(test)]
    name: String,
    kind: Kind,
    convs: Vec<Conv>,
}

impl Fetch {
    /// Parses a fetch expression: a fetch name, optional arguments in
    /// parentheses, then `,converter`s. Surrounding spaces are ignored.
    /// Offsets in errors are byte offsets into `text`.
    pub(crate) fn parse(text: &str) -> Result<Fetch, ParseError> {
        let start = text.len() - text.trim_start().len();
        let trimmed = text.trim();
        parse_expr(trimmed, start, false).map(|(fetch, _)| fetch)
    }

    /// As a sample (log-format, set-header, later stick tables): for header
    /// fetches, the LAST occurrence (HAProxy's default occurrence -1); None
    /// when absent.
    ///
    /// Request-line fetches (`path`, `url`, `query`, `method`, `url_param`,
    /// ...) borrow from the context. Header values come through
    /// [`Context::req_header`]'s callback, whose slices cannot outlive the
    /// call, so header fetches (and `base`) return an owned copy; rendering
    /// a [`LogFormat`](super::LogFormat) does not need that copy.
    pub(crate) fn eval<'c>(&self, ctx: &'c dyn Context) -> Option<Sample<'c>> {
        let raw = self.kind.eval(ctx)?;
        Some(convert::apply_sample(&self.convs, raw))
    }

    /// The fetch's name as written, for messages ("hdr").
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether ACL patterns are versions written `MAJOR.MINOR` (`req.ssl_ver
    /// 3.1`), as HAProxy reads them for this fetch.
    pub(crate) fn dotted_version(&self) -> bool {
        matches!(self.kind, Kind::SslVer) && self.convs.is_empty()
    }

    /// The type of the values the fetch produces after its converters.
    pub(crate) fn out_type(&self) -> SType {
        self.convs.last().map_or(self.kind.out(), |c| c.output())
    }

    /// Calls `f` with each value (`Iter::All`) or the single sample value
    /// (`Iter::Sample`), converted, until `f` returns true; returns whether
    /// it did. Values are borrowed for the call only: nothing is allocated
    /// except for strings over the stack buffers' size.
    pub(crate) fn each(
        &self,
        ctx: &dyn Context,
        iter: Iter,
        f: &mut dyn FnMut(Val<'_>) -> bool,
    ) -> bool {
        if self.convs.is_empty() {
            self.kind.each(ctx, iter, f)
        } else {
            self.kind
                .each(ctx, iter, &mut |v| convert::apply(&self.convs, v, &mut *f))
        }
    }
}

/// Parses fetch expression `text` (found at `base` in the caller's text).
/// With `acl`, ACL derivative names (`path_beg`, `hdr_dom(host)`) are
/// accepted too, and the method they select is returned.
pub(crate) fn parse_expr(
    text: &str,
    base: usize,
    acl: bool,
) -> Result<(Fetch, Option<Method>), ParseError> {
    let b = text.as_bytes();
    let name_end = b
        .iter()
        .position(|&c| c == b'(' || c == b',')
        .unwrap_or(b.len());
    let name = &text[..name_end];
    if name.is_empty() {
        let token = if text.is_empty() { "" } else { text };
        return Err(ParseError::new(
            base,
            token,
            format!("expected a fetch name such as `path` or `hdr(host)`, found `{token}`"),
        ));
    }
    let mut pos = name_end;
    let mut args = Vec::new();
    if b.get(pos) == Some(&b'(') {
        let close = find_close(text, pos, base)?;
        args = split_args(&text[pos + 1..close], base + pos + 1);
        pos = close + 1;
    }

    let (kind, method) = match build(name, name, &args, base)? {
        Some(kind) => (kind, None),
        None => match derivative(name).filter(|_| acl) {
            Some((fetch, method)) => match build(fetch, name, &args, base)? {
                Some(kind) => (kind, Some(method)),
                None => return Err(unknown_fetch(name, base, acl)),
            },
            None => return Err(unknown_fetch(name, base, acl)),
        },
    };

    let mut convs = Vec::new();
    let mut ty = kind.out();
    while pos < b.len() {
        if b[pos] != b',' {
            let rest = &text[pos..];
            return Err(ParseError::new(
                base + pos,
                rest,
                format!(
                    "unexpected `{rest}` after `{}`; expected `,` and a converter",
                    &text[..pos]
                ),
            ));
        }
        pos += 1;
        let start = pos;
        let end = b[pos..]
            .iter()
            .position(|&c| c == b'(' || c == b',')
            .map_or(b.len(), |e| pos + e);
        let conv_name = &text[start..end];
        pos = end;
        let mut has_args = false;
        if b.get(pos) == Some(&b'(') {
            let close = find_close(text, pos, base)?;
            has_args = !text[pos + 1..close].trim().is_empty();
            pos = close + 1;
        }
        let conv = Conv::parse(conv_name, has_args, base + start, ty, name)?;
        ty = conv.output();
        convs.push(conv);
    }
    Ok((
        Fetch {
            #[cfg(test)]
            name: name.to_string(),
            kind,
            convs,
        },
        method,
    ))
}

/// The index of the `)` closing the `(` at `open`.
fn find_close(text: &str, open: usize, base: usize) -> Result<usize, ParseError> {
    match text[open..].find(')') {
        Some(len) => Ok(open + len),
        None => Err(ParseError::new(
            base + open,
            &text[open..],
            format!("missing `)` to close `{}`", &text[open..]),
        )),
    }
}

/// Splits an argument list at commas, trimming spaces.
fn split_args(inner: &str, base: usize) -> Vec<Arg<'_>> {
    if inner.trim().is_empty() {
        return Vec::new();
    }
    let mut args = Vec::new();
    let mut start = 0;
    for part in inner.split(',') {
        let lead = part.len() - part.trim_start().len();
        args.push(Arg {
            text: part.trim(),
            offset: base + start + lead,
        });
        start += part.len() + 1;
    }
    args
}

/// Whether `expr` starts with the name of a fetch or ACL derivative
/// (arguments and converters aside), for hints in messages.
pub(crate) fn is_known_name(expr: &str) -> bool {
    let name = expr.split(['(', ',']).next().unwrap_or(expr);
    FETCHES.contains(&name)
        || derivative(name).is_some()
        || crate::model::table::Query::parse_name(name).is_some()
}

/// Splits an ACL derivative name (`hdr_beg`) into its fetch and method.
fn derivative(name: &str) -> Option<(&str, Method)> {
    let (fetch, suffix) = name.rsplit_once('_')?;
    let fetch = DERIVABLE.iter().find(|&&f| f == fetch)?;
    let (_, method) = SUFFIXES.iter().find(|(s, _)| *s == suffix)?;
    Some((fetch, *method))
}

fn no_args(name: &str, args: &[Arg<'_>]) -> Result<(), ParseError> {
    match args.first() {
        None => Ok(()),
        Some(a) => Err(ParseError::new(
            a.offset,
            a.text,
            format!("fetch `{name}` takes no arguments, found `{}`", a.text),
        )),
    }
}

fn max_args(name: &str, args: &[Arg<'_>], max: usize, usage: &str) -> Result<(), ParseError> {
    match args.get(max) {
        None => Ok(()),
        Some(a) => Err(ParseError::new(
            a.offset,
            a.text,
            format!(
                "too many arguments to `{name}`: `{}`; expected {usage}",
                a.text
            ),
        )),
    }
}

fn required_name(
    name: &str,
    args: &[Arg<'_>],
    base: usize,
    what: &str,
) -> Result<Box<[u8]>, ParseError> {
    match args.first() {
        Some(a) if !a.text.is_empty() => Ok(a.text.as_bytes().into()),
        _ => Err(ParseError::new(
            base,
            name,
            format!("fetch `{name}` needs {what} in parentheses, e.g. `{name}(x)`"),
        )),
    }
}

/// Builds fetch `fetch` (written `name` at `base`, which differs for ACL
/// derivatives such as `hdr_beg`) from its arguments; `None` if `fetch` is
/// not a fetch.
fn build(
    fetch: &str,
    name: &str,
    args: &[Arg<'_>],
    base: usize,
) -> Result<Option<Kind>, ParseError> {
    let plain = |kind: Kind| no_args(name, args).map(|()| Some(kind));
    let header = |res: bool, full: bool, out: HdrOut| -> Result<Option<Kind>, ParseError> {
        max_args(name, args, 2, "a header name and an occurrence")?;
        let hdr = required_name(name, args, base, "a header name")?;
        let occ = match args.get(1) {
            None => 0,
            Some(a) => a.text.parse::<i64>().map_err(|_| {
                ParseError::new(
                    a.offset,
                    a.text,
                    format!(
                        "occurrence `{}` of `{name}` is not an integer; expected e.g. 1 (first) or -1 (last)",
                        a.text
                    ),
                )
            })?,
        };
        Ok(Some(Kind::Hdr {
            res,
            name: hdr,
            occ,
            full,
            out,
        }))
    };
    let count = |res: bool, full: bool| -> Result<Option<Kind>, ParseError> {
        max_args(name, args, 1, "a header name")?;
        let hdr = args.first().filter(|a| !a.text.is_empty());
        if res && hdr.is_none() {
            return Err(ParseError::new(
                base,
                name,
                format!("fetch `{name}` needs a header name in parentheses, e.g. `{name}(x)`"),
            ));
        }
        Ok(Some(Kind::HdrCnt {
            res,
            name: hdr.map(|a| a.text.as_bytes().into()),
            full,
        }))
    };
    match fetch {
        "path" => plain(Kind::Path),
        "url" => plain(Kind::Url),
        "query" => plain(Kind::Query),
        "method" => plain(Kind::Method),
        "base" => plain(Kind::Base),
        "req.ver" | "req_ver" => plain(Kind::ReqVer),
        "unique-id" => plain(Kind::UniqueId),
        "src" => plain(Kind::Src),
        "dst" => plain(Kind::Dst),
        "src_port" => plain(Kind::SrcPort),
        "dst_port" => plain(Kind::DstPort),
        "ssl_fc" => plain(Kind::SslFc),
        "ssl_fc_sni" => plain(Kind::Tls(TlsField::Sni)),
        "ssl_fc_protocol" => plain(Kind::Tls(TlsField::Protocol)),
        "ssl_fc_cipher" => plain(Kind::Tls(TlsField::Cipher)),
        "ssl_fc_alpn" => plain(Kind::Tls(TlsField::Alpn)),
        "ssl_fc_is_resumed" => plain(Kind::Tls(TlsField::Resumed)),
        "status" => plain(Kind::Status),
        "always_true" => plain(Kind::AlwaysTrue),
        "always_false" => plain(Kind::AlwaysFalse),
        "req.len" | "req_len" => plain(Kind::ReqLen),
        "req.ssl_hello_type" | "req_ssl_hello_type" => plain(Kind::SslHelloType),
        "req.ssl_sni" | "req_ssl_sni" => plain(Kind::SslSni),
        "req.ssl_ver" | "req_ssl_ver" => plain(Kind::SslVer),
        "req.ssl_alpn" => plain(Kind::SslAlpn),
        "url_param" | "urlp" => {
            max_args(name, args, 2, "a parameter name and a delimiter")?;
            let param = required_name(name, args, base, "a parameter name")?;
            let delim = match args.get(1) {
                None => b'&',
                Some(a) if a.text.len() == 1 => a.text.as_bytes()[0],
                Some(a) => {
                    return Err(ParseError::new(
                        a.offset,
                        a.text,
                        format!("delimiter `{}` of `{name}` must be one character", a.text),
                    ));
                }
            };
            Ok(Some(Kind::UrlParam { name: param, delim }))
        }
        "hdr" | "req.hdr" => header(false, false, HdrOut::Str),
        "req.fhdr" => header(false, true, HdrOut::Str),
        "res.hdr" | "shdr" => header(true, false, HdrOut::Str),
        "res.fhdr" => header(true, true, HdrOut::Str),
        "hdr_val" | "req.hdr_val" => header(false, false, HdrOut::Int),
        "res.hdr_val" | "shdr_val" => header(true, false, HdrOut::Int),
        "hdr_ip" | "req.hdr_ip" => header(false, false, HdrOut::Ip),
        "res.hdr_ip" | "shdr_ip" => header(true, false, HdrOut::Ip),
        "hdr_cnt" | "req.hdr_cnt" => count(false, false),
        "req.fhdr_cnt" => count(false, true),
        "res.hdr_cnt" | "shdr_cnt" => count(true, false),
        "res.fhdr_cnt" => count(true, true),
        _ => match crate::model::table::Query::parse_name(fetch) {
            None => Ok(None),
            Some((scope, data)) => stick_query(name, scope, data, args, base).map(Some),
        },
    }
}

/// `sc0_X`, `sc_X(n[,table])`, `src_X([table])`.
fn stick_query(
    name: &str,
    scope: crate::model::table::Scope,
    data: crate::model::table::Counter,
    args: &[Arg<'_>],
    base: usize,
) -> Result<Kind, ParseError> {
    use crate::model::table::{Query, Scope};
    let mut scope = scope;
    let mut table_arg = args.first();
    if scope == Scope::Sc(u8::MAX) {
        // `sc_*`: the counter number comes first.
        let Some(a) = args.first() else {
            return Err(ParseError::new(
                base,
                name,
                format!("fetch `{name}` needs a stick counter number, e.g. `{name}(0)`"),
            ));
        };
        match a.text.parse::<u8>() {
            Ok(n) if n <= 2 => scope = Scope::Sc(n),
            _ => {
                return Err(ParseError::new(
                    a.offset,
                    a.text,
                    format!("`{}` is not a stick counter number (0, 1 or 2)", a.text),
                ));
            }
        }
        table_arg = args.get(1);
        max_args(name, args, 2, "a counter number and a table name")?;
    } else {
        max_args(name, args, 1, "a table name")?;
    }
    Ok(Kind::Stick(Query {
        scope,
        data,
        table: table_arg
            .filter(|a| !a.text.is_empty())
            .map(|a| a.text.into()),
    }))
}

/// The error for an unknown fetch, with close names if there are any.
fn unknown_fetch(name: &str, base: usize, acl: bool) -> ParseError {
    let mut known: Vec<String> = FETCHES.iter().map(|s| s.to_string()).collect();
    if acl {
        for fetch in DERIVABLE {
            for (suffix, _) in SUFFIXES {
                known.push(format!("{fetch}_{suffix}"));
            }
        }
    }
    let limit = if name.len() <= 4 { 1 } else { 2 };
    let mut close: Vec<(usize, String)> = known
        .into_iter()
        .map(|k| (edit_distance(name, &k), k))
        .filter(|(d, _)| *d <= limit)
        .collect();
    close.sort();
    close.truncate(3);
    let mut message = format!("unknown fetch `{name}`");
    if !close.is_empty() {
        let names: Vec<String> = close.iter().map(|(_, k)| format!("`{k}`")).collect();
        message.push_str(&format!("; did you mean {}?", names.join(" or ")));
    }
    ParseError::new(base, name, message)
}

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Calls `f` with each line of header `name`, request or response.
fn header_lines(ctx: &dyn Context, res: bool, name: &[u8], f: &mut dyn FnMut(&[u8])) {
    if res {
        ctx.res_header(name, f);
    } else {
        ctx.req_header(name, f);
    }
}

/// Calls `f` with the line trimmed (`full`) or each trimmed comma-separated
/// value. Quoted commas are not honoured, as the contract allows.
fn for_each_value(line: &[u8], full: bool, f: &mut impl FnMut(&[u8])) {
    if full {
        f(trim(line));
    } else {
        for part in line.split(|&c| c == b',') {
            f(trim(part));
        }
    }
}

/// Passes header value `v` to `f` as the fetch's output type; a value that
/// is not of that type (a non-integer for `hdr_val`) is skipped.
fn deliver(out: HdrOut, strip: bool, v: &[u8], f: &mut dyn FnMut(Val<'_>) -> bool) -> bool {
    match out {
        HdrOut::Str => f(Val::Str(if strip { strip_host_port(v) } else { v })),
        HdrOut::Int => str_to_int(v).is_some_and(|i| f(Val::Int(i))),
        HdrOut::Ip => str_to_ip(v).is_some_and(|ip| f(Val::Ip(ip))),
    }
}

/// The value of parameter `name` if `segment` is `name=value`.
fn param_value<'a>(segment: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = segment.strip_prefix(name)?;
    rest.strip_prefix(b"=")
}

fn owned(v: Val<'_>) -> Sample<'static> {
    match v {
        Val::Str(s) => Sample::Str(Cow::Owned(s.to_vec())),
        Val::Int(i) => Sample::Int(i),
        Val::Ip(ip) => Sample::Ip(ip),
        Val::Bool(b) => Sample::Bool(b),
    }
}

impl Kind {
    fn out(&self) -> SType {
        match self {
            Kind::Path
            | Kind::Url
            | Kind::Query
            | Kind::Method
            | Kind::Base
            | Kind::ReqVer
            | Kind::UniqueId
            | Kind::UrlParam { .. }
            | Kind::SslSni
            | Kind::SslAlpn => SType::Str,
            Kind::Hdr { out, .. } => match out {
                HdrOut::Str => SType::Str,
                HdrOut::Int => SType::Int,
                HdrOut::Ip => SType::Ip,
            },
            Kind::HdrCnt { .. }
            | Kind::SrcPort
            | Kind::DstPort
            | Kind::Status
            | Kind::ReqLen
            | Kind::SslHelloType
            | Kind::SslVer => SType::Int,
            Kind::Src | Kind::Dst => SType::Ip,
            Kind::SslFc | Kind::AlwaysTrue | Kind::AlwaysFalse => SType::Bool,
            Kind::Tls(TlsField::Resumed) => SType::Bool,
            Kind::Tls(_) => SType::Str,
            Kind::Stick(q) => {
                if q.data == crate::model::table::Counter::Tracked {
                    SType::Bool
                } else {
                    SType::Int
                }
            }
        }
    }

    fn eval<'c>(&self, ctx: &'c dyn Context) -> Option<Sample<'c>> {
        let borrowed = |s: &'c [u8]| Sample::Str(Cow::Borrowed(s));
        match self {
            Kind::Path => Some(borrowed(ctx.path())),
            Kind::Url => Some(borrowed(ctx.url())),
            Kind::Query => ctx.query().map(borrowed),
            Kind::Method => Some(borrowed(ctx.method())),
            Kind::ReqVer => Some(borrowed(ctx.version())),
            Kind::UniqueId => Some(borrowed(ctx.unique_id())),
            Kind::UrlParam { name, delim } => ctx
                .query()?
                .split(|c| c == delim)
                .find_map(|seg| param_value(seg, name))
                .map(borrowed),
            Kind::Tls(field) => match field.read(ctx.tls()?)? {
                Val::Str(s) => Some(borrowed(s)),
                other => Some(owned(other)),
            },
            Kind::SslSni => {
                let (hello, msg) = ctx.payload()?.hello?;
                hello.sni(msg).map(borrowed)
            }
            Kind::SslAlpn => {
                let (hello, msg) = ctx.payload()?.hello?;
                hello.alpn(msg).next().map(borrowed)
            }
            _ => {
                let mut out = None;
                self.each(ctx, Iter::Sample, &mut |v| {
                    out = Some(owned(v));
                    true
                });
                out
            }
        }
    }

    fn each(&self, ctx: &dyn Context, iter: Iter, f: &mut dyn FnMut(Val<'_>) -> bool) -> bool {
        match self {
            Kind::Path => f(Val::Str(ctx.path())),
            Kind::Url => f(Val::Str(ctx.url())),
            Kind::Query => ctx.query().is_some_and(|q| f(Val::Str(q))),
            Kind::Method => f(Val::Str(ctx.method())),
            Kind::ReqVer => f(Val::Str(ctx.version())),
            Kind::UniqueId => f(Val::Str(ctx.unique_id())),
            Kind::Base => {
                let mut buf = Scratch::<512>::new();
                let mut first = true;
                ctx.req_header(b"host", &mut |v| {
                    if first {
                        first = false;
                        buf.push_slice(strip_host_port(trim(v)));
                    }
                });
                // Like HAProxy, without a Host the base is the path alone.
                if buf.as_slice().is_empty() {
                    return f(Val::Str(ctx.path()));
                }
                buf.push_slice(ctx.path());
                f(Val::Str(buf.as_slice()))
            }
            Kind::UrlParam { name, delim } => {
                let Some(q) = ctx.query() else { return false };
                for seg in q.split(|c| c == delim) {
                    if let Some(v) = param_value(seg, name) {
                        if f(Val::Str(v)) {
                            return true;
                        }
                        if iter == Iter::Sample {
                            return false;
                        }
                    }
                }
                false
            }
            Kind::Hdr {
                res,
                name,
                occ,
                full,
                out,
            } => {
                let (res, full, out) = (*res, *full, *out);
                let occ = if *occ == 0 && iter == Iter::Sample {
                    -1
                } else {
                    *occ
                };
                // The Host header is matched without its port, so that
                // `hdr(host) -i a.example` also matches `a.example:8080`.
                // Only when matching: as a sample the value stays whole.
                let strip = iter == Iter::All
                    && !res
                    && out == HdrOut::Str
                    && name.eq_ignore_ascii_case(b"host");
                if occ == 0 {
                    let mut done = false;
                    header_lines(ctx, res, name, &mut |line| {
                        if !done {
                            for_each_value(line, full, &mut |v| {
                                if !done && deliver(out, strip, v, &mut *f) {
                                    done = true;
                                }
                            });
                        }
                    });
                    return done;
                }
                let target = if occ > 0 {
                    occ
                } else {
                    let mut total = 0i64;
                    header_lines(ctx, res, name, &mut |line| {
                        for_each_value(line, full, &mut |_| total += 1);
                    });
                    total + occ + 1
                };
                if target < 1 {
                    return false;
                }
                let mut index = 0i64;
                let mut hit = false;
                header_lines(ctx, res, name, &mut |line| {
                    for_each_value(line, full, &mut |v| {
                        index += 1;
                        if index == target {
                            hit = deliver(out, strip, v, &mut *f);
                        }
                    });
                });
                hit
            }
            Kind::HdrCnt { res, name, full } => {
                let full = *full;
                let mut n = 0i64;
                match name {
                    Some(name) => header_lines(ctx, *res, name, &mut |line| {
                        for_each_value(line, full, &mut |_| n += 1);
                    }),
                    None => ctx.req_headers(&mut |_, line| {
                        for_each_value(line, full, &mut |_| n += 1);
                    }),
                }
                f(Val::Int(n))
            }
            Kind::Src => f(Val::Ip(ctx.src().ip())),
            Kind::Dst => f(Val::Ip(ctx.dst().ip())),
            Kind::SrcPort => f(Val::Int(ctx.src().port().into())),
            Kind::DstPort => f(Val::Int(ctx.dst().port().into())),
            Kind::SslFc => f(Val::Bool(ctx.ssl_fc())),
            Kind::Tls(field) => ctx.tls().and_then(|s| field.read(s)).is_some_and(f),
            Kind::Stick(q) => match ctx.stick_counter(q) {
                Some(v) if q.data == crate::model::table::Counter::Tracked => f(Val::Bool(v != 0)),
                Some(v) => f(Val::Int(v.min(i64::MAX as u64) as i64)),
                None => false,
            },
            Kind::Status => ctx.status().is_some_and(|s| f(Val::Int(s.into()))),
            Kind::AlwaysTrue => f(Val::Bool(true)),
            Kind::AlwaysFalse => f(Val::Bool(false)),
            Kind::ReqLen => ctx
                .payload()
                .is_some_and(|p| f(Val::Int(p.len.min(i64::MAX as usize) as i64))),
            Kind::SslHelloType => ctx
                .payload()
                .and_then(|p| p.hello)
                .is_some_and(|(h, _)| f(Val::Int(h.hello_type.into()))),
            Kind::SslSni => ctx
                .payload()
                .and_then(|p| p.hello)
                .and_then(|(h, msg)| h.sni(msg))
                .is_some_and(|name| f(Val::Str(name))),
            // As HAProxy: the ClientHello's own version, not the record's
            // nor supported_versions' (a TLS 1.3 client says 3.3 here).
            Kind::SslVer => ctx
                .payload()
                .and_then(|p| p.hello)
                .filter(|(h, _)| h.hello_type == crate::base::client_hello::CLIENT_HELLO)
                .is_some_and(|(h, _)| {
                    let v = i64::from(h.legacy_version);
                    f(Val::Int((v >> 8) << 16 | (v & 0xff)))
                }),
            Kind::SslAlpn => {
                let Some((h, msg)) = ctx.payload().and_then(|p| p.hello) else {
                    return false;
                };
                for name in h.alpn(msg) {
                    if f(Val::Str(name)) {
                        return true;
                    }
                    if iter == Iter::Sample {
                        return false;
                    }
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::mock::{MinimalContext, MockContext};

    fn eval(expr: &str, ctx: &dyn Context) -> Option<Sample<'static>> {
        Fetch::parse(expr)
            .unwrap()
            .eval(ctx)
            .map(Sample::into_owned)
    }

    fn s(text: &str) -> Option<Sample<'static>> {
        Some(Sample::Str(Cow::Owned(text.as_bytes().to_vec())))
    }

    fn err(expr: &str) -> ParseError {
        Fetch::parse(expr).unwrap_err()
    }

    fn ctx() -> MockContext {
        MockContext::get("/a/b.png?id=7&x=&id=8&flag")
            .header("Host", "Site1.example.com:8080")
            .header("X-Multi", "a, b")
            .header("x-multi", " c ,d ")
            .header("Content-Length", "12")
            .header("X-Forwarded-For", "10.1.2.3, 172.16.0.9")
    }

    #[test]
    fn request_line_fetches() {
        let c = ctx();
        assert_eq!(eval("path", &c), s("/a/b.png"));
        assert_eq!(eval("url", &c), s("/a/b.png?id=7&x=&id=8&flag"));
        assert_eq!(eval("query", &c), s("id=7&x=&id=8&flag"));
        assert_eq!(eval("method", &c), s("GET"));
        assert_eq!(eval("req.ver", &c), s("1.1"));
        assert_eq!(eval("req_ver", &c), s("1.1"));
        assert_eq!(eval("unique-id", &c), s("uid-1"));
        let abs = MockContext::get("http://h.example/p/q?z=1");
        assert_eq!(eval("path", &abs), s("/p/q"));
        assert_eq!(eval("url", &abs), s("http://h.example/p/q?z=1"));
    }

    #[test]
    fn query_presence() {
        assert_eq!(eval("query", &MockContext::get("/p")), None);
        assert_eq!(eval("query", &MockContext::get("/p?")), s(""));
    }

    #[test]
    fn url_param_first_value() {
        let c = ctx();
        assert_eq!(eval("url_param(id)", &c), s("7"));
        assert_eq!(eval("urlp(id)", &c), s("7"));
        assert_eq!(eval("url_param(x)", &c), s(""));
        // A parameter without `=` has no value; prefixes do not count.
        assert_eq!(eval("url_param(flag)", &c), None);
        assert_eq!(eval("url_param(i)", &c), None);
        assert_eq!(eval("url_param(id)", &MockContext::get("/p")), None);
        let semi = MockContext::get("/p?a=1;b=2");
        assert_eq!(eval("url_param(b,;)", &semi), s("2"));
        assert_eq!(eval("url_param(b)", &semi), None);
    }

    #[test]
    fn sample_borrows_request_line() {
        let c = ctx();
        let f = Fetch::parse("path").unwrap();
        assert!(matches!(f.eval(&c), Some(Sample::Str(Cow::Borrowed(_)))));
        let f = Fetch::parse("url_param(id)").unwrap();
        assert!(matches!(f.eval(&c), Some(Sample::Str(Cow::Borrowed(_)))));
        let f = Fetch::parse("path,upper").unwrap();
        assert_eq!(f.eval(&c), s("/A/B.PNG"));
    }

    #[test]
    fn header_sample_is_last_value() {
        let c = ctx();
        assert_eq!(eval("hdr(x-multi)", &c), s("d"));
        assert_eq!(eval("req.hdr(X-MULTI)", &c), s("d"));
        assert_eq!(eval("req.fhdr(x-multi)", &c), s("c ,d"));
        assert_eq!(eval("req.hdr(x-multi,1)", &c), s("a"));
        assert_eq!(eval("req.hdr(x-multi,3)", &c), s("c"));
        assert_eq!(eval("req.hdr(x-multi,-1)", &c), s("d"));
        assert_eq!(eval("req.hdr(x-multi,-4)", &c), s("a"));
        assert_eq!(eval("req.hdr(x-multi,5)", &c), None);
        assert_eq!(eval("req.hdr(x-multi,-5)", &c), None);
        assert_eq!(eval("req.fhdr(x-multi,1)", &c), s("a, b"));
        assert_eq!(eval("req.hdr(x-multi,0)", &c), s("d"));
        assert_eq!(eval("hdr(absent)", &c), None);
        // As a sample the Host keeps its port (only matching ignores it).
        assert_eq!(eval("hdr(host)", &c), s("Site1.example.com:8080"));
        assert_eq!(eval("hdr(host),lower", &c), s("site1.example.com:8080"));
    }

    #[test]
    fn header_counts() {
        let c = ctx();
        assert_eq!(eval("hdr_cnt(x-multi)", &c), Some(Sample::Int(4)));
        assert_eq!(eval("req.hdr_cnt(x-multi)", &c), Some(Sample::Int(4)));
        assert_eq!(eval("req.fhdr_cnt(x-multi)", &c), Some(Sample::Int(2)));
        assert_eq!(eval("hdr_cnt(absent)", &c), Some(Sample::Int(0)));
        // Without a name: every value of every header.
        assert_eq!(eval("hdr_cnt", &c), Some(Sample::Int(8)));
        assert_eq!(eval("hdr_cnt()", &c), Some(Sample::Int(8)));
        assert_eq!(eval("req.fhdr_cnt", &c), Some(Sample::Int(5)));
        // A context without `req_headers` reports none.
        assert_eq!(
            eval("hdr_cnt", &MinimalContext(ctx())),
            Some(Sample::Int(0))
        );
        assert_eq!(
            eval("hdr_cnt(x-multi)", &MinimalContext(ctx())),
            Some(Sample::Int(4))
        );
    }

    #[test]
    fn header_values_as_numbers_and_addresses() {
        let c = ctx();
        assert_eq!(eval("hdr_val(content-length)", &c), Some(Sample::Int(12)));
        assert_eq!(eval("req.hdr_val(x-multi)", &c), None);
        assert_eq!(
            eval("hdr_ip(x-forwarded-for)", &c),
            Some(Sample::Ip("172.16.0.9".parse().unwrap()))
        );
        assert_eq!(
            eval("req.hdr_ip(x-forwarded-for,1)", &c),
            Some(Sample::Ip("10.1.2.3".parse().unwrap()))
        );
    }

    #[test]
    fn base_strips_port() {
        let c = ctx();
        assert_eq!(eval("base", &c), s("Site1.example.com/a/b.png"));
        assert_eq!(eval("base", &MockContext::get("/x?y")), s("/x"));
        let long = format!("/{}", "p".repeat(600));
        let c = MockContext::get(&long).header("host", "h");
        assert_eq!(eval("base", &c), s(&format!("h{long}")));
    }

    #[test]
    fn response_fetches() {
        let c = MockContext::get("/")
            .status(302)
            .res_header("Set-Cookie", "a=1")
            .res_header("Set-Cookie", "b=2, c=3")
            .res_header("Location", "/next");
        assert_eq!(eval("status", &c), Some(Sample::Int(302)));
        assert_eq!(eval("status", &MockContext::get("/")), None);
        assert_eq!(eval("res.hdr(set-cookie)", &c), s("c=3"));
        assert_eq!(eval("shdr(set-cookie)", &c), s("c=3"));
        assert_eq!(eval("res.fhdr(set-cookie)", &c), s("b=2, c=3"));
        assert_eq!(eval("res.hdr(set-cookie,1)", &c), s("a=1"));
        assert_eq!(eval("res.hdr_cnt(set-cookie)", &c), Some(Sample::Int(3)));
        assert_eq!(eval("shdr_cnt(set-cookie)", &c), Some(Sample::Int(3)));
        assert_eq!(eval("res.fhdr_cnt(set-cookie)", &c), Some(Sample::Int(2)));
        assert_eq!(eval("res.hdr(location)", &c), s("/next"));
        // Request headers are not response headers.
        assert_eq!(eval("res.hdr(host)", &ctx()), None);
        assert_eq!(eval("hdr(location)", &c), None);
    }

    #[test]
    fn connection_fetches() {
        let c = MockContext::get("/")
            .src("[2001:db8::7]:5555")
            .dst("192.0.2.1:8443")
            .ssl();
        assert_eq!(
            eval("src", &c),
            Some(Sample::Ip("2001:db8::7".parse().unwrap()))
        );
        assert_eq!(
            eval("dst", &c),
            Some(Sample::Ip("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(eval("src_port", &c), Some(Sample::Int(5555)));
        assert_eq!(eval("dst_port", &c), Some(Sample::Int(8443)));
        assert_eq!(eval("ssl_fc", &c), Some(Sample::Bool(true)));
        assert_eq!(eval("ssl_fc", &ctx()), Some(Sample::Bool(false)));
        assert_eq!(eval("always_true", &c), Some(Sample::Bool(true)));
        assert_eq!(eval("always_false", &c), Some(Sample::Bool(false)));
    }

    #[test]
    fn client_hello_fetches() {
        let raw = crate::base::client_hello::tests::rustls_hello(
            "Api.Example.com",
            &[b"h2", b"http/1.1"],
        );
        let c = MockContext::get("/").payload(&raw);
        assert_eq!(eval("req.len", &c), Some(Sample::Int(raw.len() as i64)));
        assert_eq!(eval("req_len", &c), Some(Sample::Int(raw.len() as i64)));
        assert_eq!(eval("req.ssl_hello_type", &c), Some(Sample::Int(1)));
        assert_eq!(eval("req_ssl_hello_type", &c), Some(Sample::Int(1)));
        // As sent: rustls lowercases nothing, nor does corral.
        assert_eq!(eval("req.ssl_sni", &c), s("Api.Example.com"));
        assert_eq!(eval("req_ssl_sni", &c), s("Api.Example.com"));
        assert_eq!(eval("req.ssl_sni,lower", &c), s("api.example.com"));
        // TLS 1.2's version number, 3.3, for a TLS 1.3 client too.
        assert_eq!(eval("req.ssl_ver", &c), Some(Sample::Int(0x0003_0003)));
        assert_eq!(eval("req_ssl_ver", &c), Some(Sample::Int(0x0003_0003)));
        assert_eq!(eval("req.ssl_alpn", &c), s("h2"));
        let f = Fetch::parse("req.ssl_sni").unwrap();
        assert!(matches!(f.eval(&c), Some(Sample::Str(Cow::Borrowed(_)))));
        // Part of a hello: its length, nothing else.
        let part = MockContext::get("/").payload(&raw[..20]);
        assert_eq!(eval("req.len", &part), Some(Sample::Int(20)));
        for f in [
            "req.ssl_hello_type",
            "req.ssl_sni",
            "req.ssl_ver",
            "req.ssl_alpn",
        ] {
            assert_eq!(eval(f, &part), None, "{f}");
        }
        // Outside content inspection (an HTTP request): no value at all.
        for f in [
            "req.len",
            "req.ssl_hello_type",
            "req.ssl_sni",
            "req.ssl_ver",
        ] {
            assert_eq!(eval(f, &ctx()), None, "{f}");
        }
        assert_eq!(Fetch::parse("req.ssl_sni").unwrap().out_type(), SType::Str);
        assert_eq!(Fetch::parse("req.ssl_ver").unwrap().out_type(), SType::Int);
        assert!(err("req.ssl_sni(x)").message.contains("takes no arguments"));
    }

    #[test]
    fn converters() {
        let c = ctx();
        assert_eq!(eval("hdr(x-multi),upper", &c), s("D"));
        assert_eq!(eval("path,length", &c), Some(Sample::Int(8)));
        assert_eq!(eval("path,upper,lower", &c), s("/a/b.png"));
        assert_eq!(eval("hdr(host),length", &c), Some(Sample::Int(22)));
        assert_eq!(eval(" path ", &c), s("/a/b.png"));
    }

    #[test]
    fn names_and_types() {
        assert_eq!(Fetch::parse("hdr(host)").unwrap().name(), "hdr");
        assert_eq!(
            Fetch::parse("req.hdr(host,1),lower").unwrap().name(),
            "req.hdr"
        );
        assert_eq!(Fetch::parse("src").unwrap().out_type(), SType::Ip);
        assert_eq!(Fetch::parse("path,length").unwrap().out_type(), SType::Int);
        assert_eq!(Fetch::parse("hdr_cnt(x)").unwrap().out_type(), SType::Int);
        assert_eq!(Fetch::parse("ssl_fc").unwrap().out_type(), SType::Bool);
    }

    #[test]
    fn unknown_fetches() {
        let e = err("pth");
        assert_eq!((e.offset, e.token.as_str()), (0, "pth"));
        assert_eq!(e.message, "unknown fetch `pth`; did you mean `path`?");
        let e = err("zzzzzz");
        assert_eq!(e.message, "unknown fetch `zzzzzz`");
        // ACL derivatives are not sample fetches.
        let e = err("path_beg");
        assert_eq!(e.token, "path_beg");
        assert!(e.message.starts_with("unknown fetch `path_beg`"));
        let e = parse_expr("hdr_bge(host)", 10, true).unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (10, "hdr_bge"));
        assert!(e.message.contains("`hdr_beg`"), "{}", e.message);
        assert!(parse_expr("query_beg", 0, true).is_err());
        let e = err("  ");
        assert!(e.message.contains("expected a fetch name"));
        let e = err("(x)");
        assert_eq!((e.offset, e.token.as_str()), (0, "(x)"));
    }

    #[test]
    fn derivatives_select_methods() {
        let (f, m) = parse_expr("hdr_dom(host)", 0, true).unwrap();
        assert_eq!((f.name(), m), ("hdr_dom", Some(Method::Dom)));
        let (_, m) = parse_expr("path_len", 0, true).unwrap();
        assert_eq!(m, Some(Method::Len));
        let (_, m) = parse_expr("urlp_reg(x)", 0, true).unwrap();
        assert_eq!(m, Some(Method::Reg));
        let (_, m) = parse_expr("hdr_cnt(x)", 0, true).unwrap();
        assert_eq!(m, None);
    }

    #[test]
    fn argument_errors() {
        let e = err("hdr(host");
        assert_eq!((e.offset, e.token.as_str()), (3, "(host"));
        assert!(e.message.contains("missing `)`"));
        let e = err("path(x)");
        assert_eq!((e.offset, e.token.as_str()), (5, "x"));
        assert!(e.message.contains("`path` takes no arguments"));
        let e = err("hdr");
        assert_eq!((e.offset, e.token.as_str()), (0, "hdr"));
        assert!(e.message.contains("needs a header name"));
        let e = err("hdr()");
        assert!(e.message.contains("needs a header name"));
        let e = err("req.hdr(host, x)");
        assert_eq!((e.offset, e.token.as_str()), (14, "x"));
        assert!(e.message.contains("occurrence `x`"));
        let e = err("req.hdr(a,1,2)");
        assert_eq!((e.offset, e.token.as_str()), (12, "2"));
        assert!(e.message.contains("too many arguments"));
        let e = err("url_param");
        assert!(e.message.contains("needs a parameter name"));
        let e = err("url_param(a,xy)");
        assert!(e.message.contains("one character"));
        let e = err("res.hdr_cnt");
        assert!(e.message.contains("needs a header name"));
        let e = parse_expr("hdr_beg", 4, true).unwrap_err();
        assert_eq!((e.offset, e.token.as_str()), (4, "hdr_beg"));
        assert!(
            e.message.contains("`hdr_beg` needs a header name"),
            "{}",
            e.message
        );
    }

    #[test]
    fn converter_errors() {
        let e = err("path,lowr");
        assert_eq!((e.offset, e.token.as_str()), (5, "lowr"));
        let e = err("path,");
        assert_eq!(e.offset, 5);
        assert!(e.message.contains("expected a converter name"));
        let e = err("src,lower");
        assert_eq!((e.offset, e.token.as_str()), (4, "lower"));
        assert!(e.message.contains("`src` gives an address"));
        let e = err("path,length,lower");
        assert_eq!(e.offset, 12);
        let e = err("hdr(x)y");
        assert_eq!((e.offset, e.token.as_str()), (6, "y"));
        assert!(e.message.contains("expected `,` and a converter"));
        let e = err("path,lower(1)");
        assert!(e.message.contains("takes no arguments"));
        let e = err("path,lower(");
        assert!(e.message.contains("missing `)`"));
    }

    #[test]
    fn known_names() {
        assert!(is_known_name("path_beg"));
        assert!(is_known_name("hdr_beg(host)"));
        assert!(is_known_name("req.hdr(host),lower"));
        assert!(!is_known_name("is_static"));
        assert!(!is_known_name("query_beg"));
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("path", "path"), 0);
        assert_eq!(edit_distance("pth", "path"), 1);
        assert_eq!(edit_distance("hdr_bge", "hdr_beg"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
