//! Match methods (`-m str`, `-m beg`, ...) and their compiled patterns.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use regex::bytes::{Regex, RegexBuilder};

use super::value::{SType, Val, str_to_int, str_to_ip, with_bytes};

/// A match method, as named after `-m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Str,
    Beg,
    End,
    Sub,
    Reg,
    Found,
    Len,
    Dir,
    Dom,
    Int,
    Ip,
    Bool,
}

const METHODS: &[(&str, Method)] = &[
    ("str", Method::Str),
    ("beg", Method::Beg),
    ("end", Method::End),
    ("sub", Method::Sub),
    ("reg", Method::Reg),
    ("found", Method::Found),
    ("len", Method::Len),
    ("dir", Method::Dir),
    ("dom", Method::Dom),
    ("int", Method::Int),
    ("ip", Method::Ip),
    ("bool", Method::Bool),
];

/// The method names, for messages.
pub(crate) const METHOD_NAMES: &str =
    "str, beg, end, sub, reg, found, len, dir, dom, int, ip, bool";

impl Method {
    pub(crate) fn from_name(name: &str) -> Option<Method> {
        METHODS.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    pub(crate) fn name(self) -> &'static str {
        METHODS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    /// The method an ACL uses when neither its keyword nor `-m` picks one.
    pub(crate) fn default_for(ty: SType) -> Method {
        match ty {
            SType::Str => Method::Str,
            SType::Int => Method::Int,
            SType::Ip => Method::Ip,
            SType::Bool => Method::Bool,
        }
    }

    /// Whether the method compares against patterns (`found` and `bool`
    /// only look at the sample).
    pub(crate) fn takes_patterns(self) -> bool {
        !matches!(self, Method::Found | Method::Bool)
    }

    /// Whether patterns are integers, so `eq ge gt le lt` apply.
    pub(crate) fn takes_operators(self) -> bool {
        matches!(self, Method::Int | Method::Len)
    }

    /// Whether the method can test samples of type `ty`. Strings, integers
    /// and addresses convert to text for string methods and strings parse
    /// as integers or addresses, as HAProxy casts them; an address is never
    /// an integer nor a boolean.
    pub(crate) fn accepts(self, ty: SType) -> bool {
        match self {
            Method::Bool => matches!(ty, SType::Bool | SType::Int),
            Method::Int => ty != SType::Ip,
            Method::Ip => matches!(ty, SType::Ip | SType::Str),
            _ => true,
        }
    }
}

/// An integer comparison operator written before an integer pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntOp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

impl IntOp {
    pub(crate) fn from_word(word: &str) -> Option<IntOp> {
        match word {
            "eq" => Some(IntOp::Eq),
            "ge" => Some(IntOp::Ge),
            "gt" => Some(IntOp::Gt),
            "le" => Some(IntOp::Le),
            "lt" => Some(IntOp::Lt),
            _ => None,
        }
    }
}

/// An inclusive integer range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntRange {
    min: i64,
    max: i64,
}

impl IntRange {
    fn contains(self, v: i64) -> bool {
        self.min <= v && v <= self.max
    }
}

fn parse_i64(text: &str, pattern: &str) -> Result<i64, String> {
    text.parse().map_err(|_| {
        format!("`{pattern}` is not an integer pattern; expected N, N:M, N:, :M or an operator (eq ge gt le lt) and N")
    })
}

/// Parses an integer pattern `N`, `N:M`, `N:` or `:M`, or, after operator
/// `op`, a single `N`.
pub(crate) fn parse_int_pattern(text: &str, op: Option<IntOp>) -> Result<IntRange, String> {
    if let Some(op) = op {
        if text.contains(':') {
            return Err(format!(
                "an operator takes a single integer, not the range `{text}`"
            ));
        }
        let n = parse_i64(text, text)?;
        let never = || format!("`{text}` with this operator can never match");
        let (min, max) = match op {
            IntOp::Eq => (n, n),
            IntOp::Ge => (n, i64::MAX),
            IntOp::Gt => (n.checked_add(1).ok_or_else(never)?, i64::MAX),
            IntOp::Le => (i64::MIN, n),
            IntOp::Lt => (i64::MIN, n.checked_sub(1).ok_or_else(never)?),
        };
        return Ok(IntRange { min, max });
    }
    match text.split_once(':') {
        None => {
            let n = parse_i64(text, text)?;
            Ok(IntRange { min: n, max: n })
        }
        Some(("", "")) => Err(format!(
            "range `{text}` needs at least one bound, e.g. 1:5, 1: or :5"
        )),
        Some((lo, hi)) => {
            let min = if lo.is_empty() {
                i64::MIN
            } else {
                parse_i64(lo, text)?
            };
            let max = if hi.is_empty() {
                i64::MAX
            } else {
                parse_i64(hi, text)?
            };
            if min > max {
                return Err(format!(
                    "range `{text}` is empty; expected the lower bound first"
                ));
            }
            Ok(IntRange { min, max })
        }
    }
}

/// Parses a version pattern for `req.ssl_ver`, as HAProxy does: `3.1`
/// (major * 65536 + minor), a bare major (`3` is 3.0), ranges `3.1:3.3`,
/// `3.1-3.3`, `3.1:`, `:3.2`, or one version after an operator.
pub(crate) fn parse_dotted_pattern(text: &str, op: Option<IntOp>) -> Result<IntRange, String> {
    let bad = || {
        format!(
            "`{text}` is not a version pattern; expected MAJOR.MINOR such as 3.3 (TLS 1.2), a range such as 3.1:3.3, or an operator and a version"
        )
    };
    let one = |part: &str| -> Result<i64, String> {
        let (major, minor) = part.split_once('.').unwrap_or((part, "0"));
        let num = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
        };
        match (num(major), num(minor)) {
            (Some(a), Some(b)) => Ok(i64::from(a) << 16 | i64::from(b)),
            _ => Err(bad()),
        }
    };
    let (lo, hi) = match text.split_once([':', '-']) {
        Some(_) if op.is_some() => {
            return Err(format!(
                "an operator takes a single version, not the range `{text}`"
            ));
        }
        Some(("", "")) => return Err(bad()),
        Some((lo, hi)) => (lo, Some(hi)),
        None => (text, None),
    };
    let as_int = |part: &str| -> Result<String, String> {
        if part.is_empty() {
            Ok(String::new())
        } else {
            one(part).map(|n| n.to_string())
        }
    };
    let normalized = match hi {
        None => as_int(lo)?,
        Some(hi) => format!("{}:{}", as_int(lo)?, as_int(hi)?),
    };
    parse_int_pattern(&normalized, op).map_err(|_| bad())
}

/// An address network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Net {
    V4 { addr: u32, mask: u32 },
    V6 { addr: u128, mask: u128 },
}

impl Net {
    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`, as a dual-stack socket reports IPv4 clients)
    /// matches IPv4 networks, and an IPv4 address matches IPv6 networks in
    /// its mapped form.
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Net::V4 { addr, mask }, IpAddr::V4(a)) => u32::from(a) & mask == addr,
            (Net::V4 { addr, mask }, IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| u32::from(a) & mask == addr),
            (Net::V6 { addr, mask }, IpAddr::V6(a)) => u128::from(a) & mask == addr,
            (Net::V6 { addr, mask }, IpAddr::V4(a)) => {
                u128::from(a.to_ipv6_mapped()) & mask == addr
            }
        }
    }
}

/// Parses `addr`, `addr/prefix` or (IPv4) `addr/dotted.mask`.
pub(crate) fn parse_net(text: &str) -> Result<Net, String> {
    let bad = || {
        format!(
            "`{text}` is not an address or network; expected e.g. 192.168.1.1, 10.0.0.0/8, ::1 or 2001:db8::/32"
        )
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let bad_prefix =
        |max: u32| format!("`{text}` has an invalid prefix length; expected 0 to {max}");
    match addr.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(a) => {
            let mask = match prefix {
                None => u32::MAX,
                Some(p) if p.contains('.') => u32::from(p.parse::<Ipv4Addr>().map_err(|_| bad())?),
                Some(p) => {
                    let n: u32 = p
                        .parse()
                        .ok()
                        .filter(|n| *n <= 32)
                        .ok_or_else(|| bad_prefix(32))?;
                    u32::MAX.checked_shl(32 - n).unwrap_or(0)
                }
            };
            Ok(Net::V4 {
                addr: u32::from(a) & mask,
                mask,
            })
        }
        IpAddr::V6(a) => {
            let mask = match prefix {
                None => u128::MAX,
                Some(p) => {
                    let n: u32 = p
                        .parse()
                        .ok()
                        .filter(|n| *n <= 128)
                        .ok_or_else(|| bad_prefix(128))?;
                    u128::MAX.checked_shl(128 - n).unwrap_or(0)
                }
            };
            Ok(Net::V6 {
                addr: u128::from(a) & mask,
                mask,
            })
        }
    }
}

/// String patterns with their case sensitivity.
#[derive(Debug, Clone)]
pub(crate) struct StrPats {
    pats: Vec<Box<[u8]>>,
    icase: bool,
    /// For exact matching against many patterns (typically from `-f`): the
    /// patterns, lowercased under `-i`.
    set: Option<HashSet<Box<[u8]>>>,
}

/// From this many exact patterns on, lookups go through a hash set.
const SET_THRESHOLD: usize = 8;
/// Longest sample lowercased on the stack for a case-insensitive set
/// lookup; longer ones are compared pattern by pattern.
const SET_LOWER_MAX: usize = 256;

fn eq(a: &[u8], b: &[u8], icase: bool) -> bool {
    if icase {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

impl StrPats {
    fn exact(&self, s: &[u8]) -> bool {
        if let Some(set) = &self.set {
            if !self.icase {
                return set.contains(s);
            }
            if s.len() <= SET_LOWER_MAX {
                let mut buf = [0u8; SET_LOWER_MAX];
                let lower = &mut buf[..s.len()];
                lower.copy_from_slice(s);
                lower.make_ascii_lowercase();
                return set.contains(&*lower);
            }
        }
        self.pats.iter().any(|p| eq(s, p, self.icase))
    }

    fn beg(&self, s: &[u8]) -> bool {
        self.pats
            .iter()
            .any(|p| s.len() >= p.len() && eq(&s[..p.len()], p, self.icase))
    }

    fn end(&self, s: &[u8]) -> bool {
        self.pats
            .iter()
            .any(|p| s.len() >= p.len() && eq(&s[s.len() - p.len()..], p, self.icase))
    }

    fn sub(&self, s: &[u8]) -> bool {
        self.pats.iter().any(|p| {
            p.is_empty() || (s.len() >= p.len() && s.windows(p.len()).any(|w| eq(w, p, self.icase)))
        })
    }

    fn word(&self, s: &[u8], delim: fn(u8) -> bool) -> bool {
        self.pats
            .iter()
            .any(|p| match_word(s, p, self.icase, delim))
    }
}

fn dir_delim(c: u8) -> bool {
    c == b'/' || c == b'?'
}

fn dom_delim(c: u8) -> bool {
    matches!(c, b'/' | b'?' | b'.' | b':')
}

/// Whether `pat` (already stripped of delimiters at its ends) occurs in `s`
/// with a delimiter or an end of `s` on each side: `path_dir img` matches
/// `/img/a.png` and `/x/img`, not `/images`; `hdr_dom(host) example.com`
/// matches `www.example.com` and `example.com:80`, not `myexample.com`.
fn match_word(s: &[u8], pat: &[u8], icase: bool, delim: fn(u8) -> bool) -> bool {
    let pl = pat.len();
    if pl == 0 || pl > s.len() {
        return false;
    }
    let mut at_boundary = true;
    for start in 0..=s.len() - pl {
        if delim(s[start]) {
            at_boundary = true;
            continue;
        }
        if !at_boundary {
            continue;
        }
        at_boundary = false;
        if eq(&s[start..start + pl], pat, icase) && (start + pl == s.len() || delim(s[start + pl]))
        {
            return true;
        }
    }
    false
}

/// A compiled match: a method with its patterns.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    Found,
    Bool,
    Str(StrPats),
    Beg(StrPats),
    End(StrPats),
    Sub(StrPats),
    Dir(StrPats),
    Dom(StrPats),
    Reg(Vec<Regex>),
    Int(Vec<IntRange>),
    Len(Vec<IntRange>),
    Ip(Vec<Net>),
}

fn int_of(v: Val<'_>) -> Option<i64> {
    match v {
        Val::Int(i) => Some(i),
        Val::Bool(b) => Some(b.into()),
        Val::Str(s) => str_to_int(s),
        Val::Ip(_) => None,
    }
}

fn ip_of(v: Val<'_>) -> Option<IpAddr> {
    match v {
        Val::Ip(ip) => Some(ip),
        Val::Str(s) => str_to_ip(s),
        Val::Int(_) | Val::Bool(_) => None,
    }
}

impl Matcher {
    /// Whether sample value `v` matches any pattern.
    pub(crate) fn matches(&self, v: Val<'_>) -> bool {
        match self {
            Matcher::Found => true,
            Matcher::Bool => match v {
                Val::Bool(b) => b,
                Val::Int(i) => i != 0,
                Val::Str(_) | Val::Ip(_) => false,
            },
            Matcher::Str(p) => with_bytes(v, |s| p.exact(s)),
            Matcher::Beg(p) => with_bytes(v, |s| p.beg(s)),
            Matcher::End(p) => with_bytes(v, |s| p.end(s)),
            Matcher::Sub(p) => with_bytes(v, |s| p.sub(s)),
            Matcher::Dir(p) => with_bytes(v, |s| p.word(s, dir_delim)),
            Matcher::Dom(p) => with_bytes(v, |s| p.word(s, dom_delim)),
            Matcher::Reg(res) => with_bytes(v, |s| res.iter().any(|r| r.is_match(s))),
            Matcher::Int(ranges) => int_of(v).is_some_and(|i| ranges.iter().any(|r| r.contains(i))),
            Matcher::Len(ranges) => with_bytes(v, |s| {
                let len = s.len() as i64;
                ranges.iter().any(|r| r.contains(len))
            }),
            Matcher::Ip(nets) => ip_of(v).is_some_and(|ip| nets.iter().any(|n| n.contains(ip))),
        }
    }
}

/// Collects and compiles the patterns of one ACL.
pub(crate) struct Builder {
    method: Method,
    icase: bool,
    /// Integer patterns are versions written `MAJOR.MINOR`.
    dotted: bool,
    strs: Vec<Box<[u8]>>,
    regs: Vec<Regex>,
    ints: Vec<IntRange>,
    nets: Vec<Net>,
}

impl Builder {
    pub(crate) fn new(method: Method, icase: bool) -> Builder {
        Builder {
            method,
            icase,
            dotted: false,
            strs: Vec::new(),
            regs: Vec::new(),
            ints: Vec::new(),
            nets: Vec::new(),
        }
    }

    /// Reads integer patterns as `MAJOR.MINOR` versions (`req.ssl_ver`).
    pub(crate) fn dotted(mut self) -> Builder {
        self.dotted = true;
        self
    }

    /// Compiles one pattern (with the operator before it, for integer
    /// methods); the error message names the pattern.
    pub(crate) fn add(&mut self, pattern: &str, op: Option<IntOp>) -> Result<(), String> {
        match self.method {
            Method::Found | Method::Bool => Err(format!(
                "`-m {}` takes no patterns, found `{pattern}`",
                self.method.name()
            )),
            Method::Str | Method::Beg | Method::End | Method::Sub => {
                self.strs.push(pattern.as_bytes().into());
                Ok(())
            }
            Method::Dir | Method::Dom => {
                let delim = if self.method == Method::Dir {
                    dir_delim
                } else {
                    dom_delim
                };
                let b = pattern.as_bytes();
                let start = b.iter().position(|&c| !delim(c)).unwrap_or(b.len());
                let end = b.iter().rposition(|&c| !delim(c)).map_or(start, |e| e + 1);
                // A pattern of delimiters only (`path_dir /`) never matches,
                // as in HAProxy.
                self.strs.push(b[start..end].into());
                Ok(())
            }
            Method::Reg => {
                let re = RegexBuilder::new(pattern)
                    .case_insensitive(self.icase)
                    .build()
                    .map_err(|e| {
                        format!(
                            "invalid regular expression `{pattern}`: {}",
                            regex_reason(&e)
                        )
                    })?;
                self.regs.push(re);
                Ok(())
            }
            Method::Int if self.dotted => {
                self.ints.push(parse_dotted_pattern(pattern, op)?);
                Ok(())
            }
            Method::Int | Method::Len => {
                self.ints.push(parse_int_pattern(pattern, op)?);
                Ok(())
            }
            Method::Ip => {
                self.nets.push(parse_net(pattern)?);
                Ok(())
            }
        }
    }

    pub(crate) fn finish(self) -> Matcher {
        let pats = |strs: Vec<Box<[u8]>>, exact: bool| {
            let set = (exact && strs.len() >= SET_THRESHOLD).then(|| {
                strs.iter()
                    .map(|p| {
                        let mut p = p.clone();
                        if self.icase {
                            p.make_ascii_lowercase();
                        }
                        p
                    })
                    .collect()
            });
            StrPats {
                pats: strs,
                icase: self.icase,
                set,
            }
        };
        match self.method {
            Method::Found => Matcher::Found,
            Method::Bool => Matcher::Bool,
            Method::Str => Matcher::Str(pats(self.strs, true)),
            Method::Beg => Matcher::Beg(pats(self.strs, false)),
            Method::End => Matcher::End(pats(self.strs, false)),
            Method::Sub => Matcher::Sub(pats(self.strs, false)),
            Method::Dir => Matcher::Dir(pats(self.strs, false)),
            Method::Dom => Matcher::Dom(pats(self.strs, false)),
            Method::Reg => Matcher::Reg(self.regs),
            Method::Int => Matcher::Int(self.ints),
            Method::Len => Matcher::Len(self.ints),
            Method::Ip => Matcher::Ip(self.nets),
        }
    }
}

/// The one-line reason of a regex error (the crate's message spans several
/// lines with a caret diagram).
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or("invalid"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(method: Method, icase: bool, pats: &[&str]) -> Matcher {
        let mut b = Builder::new(method, icase);
        for p in pats {
            b.add(p, None).unwrap();
        }
        b.finish()
    }

    fn m(matcher: &Matcher, s: &str) -> bool {
        matcher.matches(Val::Str(s.as_bytes()))
    }

    #[test]
    fn method_names_round_trip() {
        for (name, method) in METHODS {
            assert_eq!(Method::from_name(name), Some(*method));
            assert_eq!(method.name(), *name);
            assert!(METHOD_NAMES.contains(name));
        }
        assert_eq!(Method::from_name("regex"), None);
    }

    #[test]
    fn exact_prefix_suffix_substring() {
        let s = build(Method::Str, false, &["/a", "/b"]);
        assert!(m(&s, "/a") && m(&s, "/b"));
        assert!(!m(&s, "/A") && !m(&s, "/ab") && !m(&s, ""));
        let s = build(Method::Str, true, &["/a"]);
        assert!(m(&s, "/A"));

        let b = build(Method::Beg, false, &["/static"]);
        assert!(m(&b, "/static/x") && m(&b, "/static"));
        assert!(!m(&b, "/Static/x") && !m(&b, "/stat"));
        assert!(m(&build(Method::Beg, true, &["/static"]), "/STATIC/x"));

        let e = build(Method::End, false, &[".png", ".css"]);
        assert!(m(&e, "/a.png") && m(&e, "x.css"));
        assert!(!m(&e, "/a.PNG") && !m(&e, "png"));
        assert!(m(&build(Method::End, true, &[".png"]), "/A.PNG"));

        let sub = build(Method::Sub, false, &["adm"]);
        assert!(m(&sub, "/x/admin") && m(&sub, "adm"));
        assert!(!m(&sub, "/ADMIN") && !m(&sub, "ad"));
        assert!(m(&build(Method::Sub, true, &["adm"]), "/ADMIN"));
        assert!(m(&build(Method::Sub, false, &[""]), "anything"));
    }

    #[test]
    fn exact_with_hash_set() {
        let pats: Vec<String> = (0..20).map(|i| format!("Host{i}.example")).collect();
        let refs: Vec<&str> = pats.iter().map(String::as_str).collect();
        let cs = build(Method::Str, false, &refs);
        assert!(matches!(&cs, Matcher::Str(p) if p.set.is_some()));
        assert!(m(&cs, "Host7.example"));
        assert!(!m(&cs, "host7.example"));
        let ci = build(Method::Str, true, &refs);
        assert!(m(&ci, "HOST7.EXAMPLE") && m(&ci, "host19.example"));
        assert!(!m(&ci, "host20.example"));
        // Longer than the stack buffer: falls back to the linear scan.
        let long = "a".repeat(300);
        let mut refs2 = refs.clone();
        refs2.push(&long);
        let ci = build(Method::Str, true, &refs2);
        assert!(m(&ci, &"A".repeat(300)));
    }

    #[test]
    fn dir_and_dom() {
        let d = build(Method::Dir, false, &["img"]);
        assert!(m(&d, "/img/a.png") && m(&d, "/x/img") && m(&d, "/x/img/y") && m(&d, "img"));
        assert!(m(&d, "/img?x=1"));
        assert!(!m(&d, "/images/a") && !m(&d, "/ximg/") && !m(&d, "/x/IMG"));
        assert!(m(&build(Method::Dir, true, &["img"]), "/x/IMG"));
        // Delimiters at the pattern's ends are ignored; inner ones must match.
        let d = build(Method::Dir, false, &["/a/b/"]);
        assert!(m(&d, "/x/a/b/c") && m(&d, "/a/b"));
        assert!(!m(&d, "/a/bc") && !m(&d, "/xa/b"));
        assert!(!m(&build(Method::Dir, false, &["/"]), "/"));

        let d = build(Method::Dom, false, &["example.com"]);
        assert!(m(&d, "www.example.com") && m(&d, "example.com") && m(&d, "example.com:80"));
        assert!(m(&d, "a.example.com.b"));
        assert!(!m(&d, "myexample.com") && !m(&d, "example.co") && !m(&d, "example.community"));
        assert!(m(
            &build(Method::Dom, true, &["EXAMPLE.com"]),
            "www.example.COM"
        ));
    }

    #[test]
    fn regex_and_case() {
        let r = build(Method::Reg, false, &[r"^/api/v[0-9]+/"]);
        assert!(m(&r, "/api/v2/users"));
        assert!(!m(&r, "/API/v2/users") && !m(&r, "/api/vx/"));
        let r = build(Method::Reg, true, &[r"^/api/v[0-9]+/"]);
        assert!(m(&r, "/API/V2/users"));
        let mut b = Builder::new(Method::Reg, false);
        let e = b.add("a(b", None).unwrap_err();
        assert!(e.starts_with("invalid regular expression `a(b`: "), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn int_patterns() {
        let r = |t: &str| parse_int_pattern(t, None).map(|r| (r.min, r.max));
        assert_eq!(r("5"), Ok((5, 5)));
        assert_eq!(r("-5"), Ok((-5, -5)));
        assert_eq!(r("1:5"), Ok((1, 5)));
        assert_eq!(r("3:"), Ok((3, i64::MAX)));
        assert_eq!(r(":3"), Ok((i64::MIN, 3)));
        assert!(r(":").unwrap_err().contains("needs at least one bound"));
        assert!(r("5:1").unwrap_err().contains("`5:1` is empty"));
        assert!(r("x").unwrap_err().contains("`x` is not an integer"));
        assert!(r("1:y").unwrap_err().contains("`1:y` is not an integer"));
        let o = |op, t: &str| parse_int_pattern(t, Some(op)).map(|r| (r.min, r.max));
        assert_eq!(o(IntOp::Eq, "4"), Ok((4, 4)));
        assert_eq!(o(IntOp::Ge, "4"), Ok((4, i64::MAX)));
        assert_eq!(o(IntOp::Gt, "4"), Ok((5, i64::MAX)));
        assert_eq!(o(IntOp::Le, "4"), Ok((i64::MIN, 4)));
        assert_eq!(o(IntOp::Lt, "4"), Ok((i64::MIN, 3)));
        assert!(o(IntOp::Gt, "1:3").unwrap_err().contains("single integer"));
        assert!(
            o(IntOp::Gt, &i64::MAX.to_string())
                .unwrap_err()
                .contains("never match")
        );
        assert_eq!(IntOp::from_word("lt"), Some(IntOp::Lt));
        assert_eq!(IntOp::from_word("ne"), None);
    }

    #[test]
    fn int_matching_and_casts() {
        let mi = build(Method::Int, false, &["200", "300:399"]);
        assert!(mi.matches(Val::Int(200)) && mi.matches(Val::Int(302)));
        assert!(!mi.matches(Val::Int(201)) && !mi.matches(Val::Int(400)));
        assert!(mi.matches(Val::Str(b"301")));
        assert!(!mi.matches(Val::Str(b"abc")));
        let one = build(Method::Int, false, &["1"]);
        assert!(one.matches(Val::Bool(true)) && !one.matches(Val::Bool(false)));
        assert!(!one.matches(Val::Ip("0.0.0.1".parse().unwrap())));
        let len = build(Method::Len, false, &["3", "10:"]);
        assert!(m(&len, "abc") && m(&len, "0123456789") && !m(&len, "ab"));
        assert!(len.matches(Val::Int(123)));
    }

    #[test]
    fn string_methods_cast_other_types() {
        let s = build(Method::Str, false, &["10.0.0.1"]);
        assert!(s.matches(Val::Ip("10.0.0.1".parse().unwrap())));
        let s = build(Method::Beg, false, &["20"]);
        assert!(s.matches(Val::Int(204)));
        let s = build(Method::Str, false, &["1"]);
        assert!(s.matches(Val::Bool(true)));
    }

    #[test]
    fn found_and_bool() {
        assert!(Matcher::Found.matches(Val::Str(b"")));
        assert!(Matcher::Bool.matches(Val::Bool(true)));
        assert!(!Matcher::Bool.matches(Val::Bool(false)));
        assert!(Matcher::Bool.matches(Val::Int(3)) && !Matcher::Bool.matches(Val::Int(0)));
        let e = Builder::new(Method::Found, false)
            .add("x", None)
            .unwrap_err();
        assert_eq!(e, "`-m found` takes no patterns, found `x`");
    }

    #[test]
    fn networks() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let nets = build(
            Method::Ip,
            false,
            &["10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "::1"],
        );
        assert!(nets.matches(Val::Ip(ip("10.1.2.3"))));
        assert!(nets.matches(Val::Ip(ip("192.168.1.1"))));
        assert!(!nets.matches(Val::Ip(ip("192.168.1.2"))));
        assert!(!nets.matches(Val::Ip(ip("11.0.0.1"))));
        assert!(nets.matches(Val::Ip(ip("2001:db8:1::5"))));
        assert!(!nets.matches(Val::Ip(ip("2001:db9::5"))));
        assert!(nets.matches(Val::Ip(ip("::1"))));
        // IPv4-mapped IPv6 samples match IPv4 patterns.
        assert!(nets.matches(Val::Ip(ip("::ffff:10.9.9.9"))));
        assert!(!nets.matches(Val::Ip(ip("::ffff:11.9.9.9"))));
        // Strings parse as addresses.
        assert!(nets.matches(Val::Str(b"10.0.0.7")));
        assert!(!nets.matches(Val::Str(b"not-an-ip")));
        assert!(!nets.matches(Val::Int(1)));
        // IPv4 samples match IPv6 patterns through their mapped form.
        let mapped = build(Method::Ip, false, &["::ffff:10.0.0.0/104"]);
        assert!(mapped.matches(Val::Ip(ip("10.2.3.4"))));
        // Host bits of the pattern are ignored; dotted masks work.
        let n = build(Method::Ip, false, &["10.1.2.3/8", "172.16.0.0/255.240.0.0"]);
        assert!(n.matches(Val::Ip(ip("10.200.0.1"))));
        assert!(n.matches(Val::Ip(ip("172.31.255.255"))));
        assert!(!n.matches(Val::Ip(ip("172.32.0.0"))));
        let all = build(Method::Ip, false, &["0.0.0.0/0", "::/0"]);
        assert!(all.matches(Val::Ip(ip("8.8.8.8"))) && all.matches(Val::Ip(ip("2a00::1"))));
    }

    #[test]
    fn bad_networks() {
        assert!(
            parse_net("10.0.0.0/33")
                .unwrap_err()
                .contains("prefix length; expected 0 to 32")
        );
        assert!(parse_net("::/129").unwrap_err().contains("0 to 128"));
        assert!(
            parse_net("10.0.0/8")
                .unwrap_err()
                .contains("`10.0.0/8` is not an address")
        );
        assert!(parse_net("localhost").is_err());
        assert!(parse_net("10.0.0.0/x").is_err());
    }

    #[test]
    fn method_type_compatibility() {
        assert!(Method::Bool.accepts(SType::Int) && !Method::Bool.accepts(SType::Str));
        assert!(!Method::Int.accepts(SType::Ip) && Method::Int.accepts(SType::Str));
        assert!(Method::Ip.accepts(SType::Str) && !Method::Ip.accepts(SType::Int));
        assert!(Method::Str.accepts(SType::Ip) && Method::Found.accepts(SType::Bool));
        assert_eq!(Method::default_for(SType::Ip), Method::Ip);
    }
}
