//! AWS's HTTP Desync Guardian corpus through corral.
//!
//! The `http_desync_guardian` crate ships 159 request cases (`tests/*.yaml`
//! in its package), each rated Compliant, Acceptable, Ambiguous or Severe,
//! and an analyzer that rates a raw request the same way. Every case is
//! sent through a real corral (mode http) to a recording server, and:
//!
//! - every case is either **rejected** (corral answers 4xx/5xx itself and
//!   closes, and the server accepts no connection for it) or **forwarded**
//!   with a head that the crate's analyzer rates at most Acceptable: nothing
//!   Ambiguous or Severe ever reaches a server;
//! - every Compliant case is forwarded, unless it breaks a rule corral
//!   documents as stricter than the corpus (below), in which case it must
//!   be refused with 400; a forwarded Compliant case stays Compliant.
//!
//! Why "at most Acceptable" for a forwarded head: the analyzer's Acceptable
//! tier means "not RFC compliant, no known security risk" — the one way
//! corral produces it is forwarding a GET or HEAD with `Content-Length: 0`
//! verbatim, which every reading frames the same (no body). Ambiguous and
//! Severe are what desync attacks are made of, so neither may cross.
//!
//! The corpus is run twice. Most of its HTTP/1.1 cases carry no Host field,
//! which RFC 9112 §3.2 obliges corral to refuse, so sent verbatim they are
//! all refused for that reason alone and say nothing about framing. The
//! first pass therefore adds `Host: corpus.example` (after the case's own
//! fields) to cases that have none and are not HTTP/1.0; the second pass
//! sends every case exactly as the corpus gives it.

mod common;
use common::http::Recorded;
use common::*;
use http_desync_guardian::RequestSafetyTier;
use http_desync_guardian::request_analyzer::HttpRequestData;
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one case may take to be answered or to reach the server.
const CASE_WAIT: Duration = Duration::from_secs(4);

// ---- the corpus ------------------------------------------------------------

struct CorpusCase {
    file: String,
    name: String,
    method: String,
    uri: String,
    version: String,
    headers: Vec<(String, String)>,
    tier: RequestSafetyTier,
}

/// The crate's package directory: the version Cargo.lock pins, under
/// `$CARGO_HOME/registry/src/*/` (CARGO_HOME defaults to ~/.cargo).
fn corpus_dir() -> PathBuf {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock).expect("read Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"http_desync_guardian\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .expect("http_desync_guardian is not in Cargo.lock");
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let registry = home.join("registry").join("src");
    let wanted = format!("http_desync_guardian-{version}");
    let found = std::fs::read_dir(&registry)
        .into_iter()
        .flatten()
        .flatten()
        .map(|index| index.path().join(&wanted).join("tests"))
        .find(|p| p.is_dir());
    found.unwrap_or_else(|| {
        panic!(
            "the http_desync_guardian corpus was not found: no {}/*/{wanted}/tests directory \
             (run `cargo fetch`, or set CARGO_HOME to the cargo home that holds the registry sources)",
            registry.display()
        )
    })
}

/// A YAML scalar as text (the corpus writes some values as numbers).
fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Null => Some(String::new()),
        _ => None,
    }
}

/// The corpus's own escape convention, as its test harness applies it to
/// every field after YAML parsing (single-quoted YAML keeps `\t`, `\x01`
/// literally; the harness turns them into the characters).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let b = u8::from_str_radix(&hex, 16)
                    .unwrap_or_else(|_| panic!("bad \\x escape in {s:?}"));
                out.push(char::from(b));
            }
            Some('b') => out.push('\x08'),
            Some('f') => out.push('\x0c'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => panic!("escape at the end of {s:?}"),
        }
    }
    out
}

fn load_corpus(dir: &Path) -> Vec<CorpusCase> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the corpus directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    let mut cases = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("read a corpus file");
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
        let list = doc
            .as_sequence()
            .unwrap_or_else(|| panic!("{file}: not a list of cases"));
        for c in list {
            let name = c["name"].as_str().expect("a case name").to_string();
            let field = |key: &str| {
                scalar(&c[key])
                    .map(|s| unescape(&s))
                    .unwrap_or_else(|| panic!("{file}: case {name:?} has no {key}"))
            };
            let headers = c["headers"]
                .as_sequence()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            let get = |k: &str| {
                                scalar(&h[k]).map(|s| unescape(&s)).unwrap_or_else(|| {
                                    panic!("{file}: case {name:?}: header without {k}")
                                })
                            };
                            (get("name"), get("value"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let tier = match c["expected"]["tier"].as_str() {
                Some("Compliant") => RequestSafetyTier::Compliant,
                Some("Acceptable") => RequestSafetyTier::Acceptable,
                Some("Ambiguous") => RequestSafetyTier::Ambiguous,
                Some("Severe") => RequestSafetyTier::Severe,
                other => panic!("{file}: case {name:?}: expected tier {other:?}"),
            };
            cases.push(CorpusCase {
                method: field("method"),
                uri: field("uri"),
                version: field("version"),
                headers,
                tier,
                file: file.clone(),
                name,
            });
        }
    }
    cases
}

impl CorpusCase {
    fn has_host(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    }

    /// The raw request: `METHOD SP URI SP VERSION CRLF` (no version and no
    /// space before it for HTTP/0.9), each field `name: value` CRLF as
    /// given, then CRLF. Text becomes bytes as UTF-8, as in the corpus's
    /// own harness, so the analyzer rates these bytes as the corpus says.
    fn raw(&self, add_host: bool) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(self.method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(self.uri.as_bytes());
        if !self.version.is_empty() {
            r.push(b' ');
            r.extend_from_slice(self.version.as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        for (n, v) in &self.headers {
            r.extend_from_slice(n.as_bytes());
            r.extend_from_slice(b": ");
            r.extend_from_slice(v.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        if add_host && self.needs_host() {
            r.extend_from_slice(b"Host: corpus.example\r\n");
        }
        r.extend_from_slice(b"\r\n");
        r
    }

    fn needs_host(&self) -> bool {
        !self.has_host() && self.version != "HTTP/1.0"
    }

    /// Rules corral documents as stricter than the corpus's Compliant tier;
    /// a case that breaks one must be refused with 400. `None`: must be
    /// forwarded.
    fn stricter_rule(&self, host_added: bool) -> Option<&'static str> {
        // RFC 9112 §3.2: an HTTP/1.1 request without Host gets 400.
        if self.version == "HTTP/1.1" && !self.has_host() && !host_added {
            return Some("HTTP/1.1 without Host");
        }
        // RFC 9112 §3.2: a request target is required; corral passes
        // visible ASCII and raw non-ASCII bytes, never space, controls or DEL.
        let uri_char = |b: u8| (0x21..=0x7e).contains(&b) || b >= 0x80;
        if self.uri.is_empty() || !self.uri.bytes().all(uri_char) {
            return Some("empty request target, or space/control bytes in it");
        }
        None
    }
}

// ---- the recording server --------------------------------------------------

/// Records each head the moment it is complete (the harness's HttpServer
/// records a request only after its body, and never one whose chunked
/// body does not end; the corpus sends heads without bodies), answers 200
/// with `Connection: close`, then drains until corral closes.
struct Recorder {
    server: Server,
    heads: Arc<Mutex<Vec<Recorded>>>,
    bytes: Arc<AtomicU64>,
}

impl Recorder {
    fn start() -> Recorder {
        let heads: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let bytes = Arc::new(AtomicU64::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let (h, b) = (heads.clone(), bytes.clone());
        let server = Server::start(Arc::new(move |mut s: TcpStream| {
            let conn = conns.fetch_add(1, Ordering::SeqCst);
            let _ = s.set_read_timeout(Some(WAIT));
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            let mut answered = false;
            loop {
                let n = match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                b.fetch_add(n as u64, Ordering::SeqCst);
                if answered {
                    continue;
                }
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    h.lock().unwrap().push(parse_head(&got[..end + 4], conn));
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                    answered = true;
                } else if got.len() > 1 << 20 {
                    break;
                }
            }
        }));
        Recorder {
            server,
            heads,
            bytes,
        }
    }

    fn count(&self) -> usize {
        self.heads.lock().unwrap().len()
    }

    fn state(&self) -> (usize, usize, u64) {
        (
            self.server.accepted(),
            self.count(),
            self.bytes.load(Ordering::SeqCst),
        )
    }
}

fn parse_head(raw: &[u8], conn: usize) -> Recorded {
    let mut storage = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut storage);
    let mut rec = Recorded {
        raw_head: raw.to_vec(),
        conn,
        ..Default::default()
    };
    if let Ok(httparse::Status::Complete(_)) = req.parse(raw) {
        rec.method = req.method.unwrap_or("").into();
        rec.target = req.path.unwrap_or("").into();
        rec.minor = req.version.unwrap_or(1);
        rec.headers = req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
    }
    rec
}

// ---- one case ----------------------------------------------------------------

use Outcome::*;

enum Outcome {
    /// corral answered with this status and closed; the server saw nothing.
    Rejected(u16),
    /// This head reached the server.
    Forwarded(Recorded),
    /// Neither, or both, or something else.
    Unclear(String),
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn run_case(addr: SocketAddr, rec: &Recorder, raw: &[u8]) -> Outcome {
    let before = rec.state();
    let mut s = connect(addr);
    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    // corral may refuse and close before reading everything; what it
    // answers is read below either way.
    let _ = s.write_all(raw);
    let deadline = Instant::now() + CASE_WAIT;
    let mut answer = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 4096];
    // Whichever comes first: the head at the server, or corral's answer
    // and close.
    while rec.count() == before.1 && !closed && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => {
                return Unclear(format!(
                    "read failed ({e}) after {:?}",
                    String::from_utf8_lossy(&answer)
                ));
            }
        }
    }
    drop(s);
    let after = rec.state();
    if after.1 > before.1 {
        let heads = rec.heads.lock().unwrap();
        if after.1 != before.1 + 1 {
            return Unclear(format!("{} heads reached the server", after.1 - before.1));
        }
        return Forwarded(heads[before.1].clone());
    }
    if !closed {
        return Unclear(format!(
            "within {CASE_WAIT:?}: not closed, nothing at the server; answer {:?}",
            String::from_utf8_lossy(&answer)
        ));
    }
    if after != before {
        return Unclear(format!(
            "refused, but the server saw it: (connections, heads, bytes) {before:?} -> {after:?}"
        ));
    }
    match status_of(&answer) {
        Some(st) if st >= 400 => Rejected(st),
        _ => Unclear(format!(
            "closed with answer {:?} and nothing at the server",
            String::from_utf8_lossy(&answer)
        )),
    }
}

// ---- tally -------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Row {
    total: usize,
    rejected: usize,
    /// Of `rejected`: Compliant cases refused by a rule of corral's that is
    /// stricter than the corpus.
    strict: usize,
    /// The analyzer rates the bytes sent as the corpus expects (a check on
    /// how requests are built here, not on corral; only reported). The
    /// exceptions are raw-parsing reasons the crate's own harness exempts
    /// from its raw-request comparison: MultilineHeader, MissingHeaderColon,
    /// SpaceInUri, AmbiguousUri, NonCrLfLineTermination.
    sent_as_expected: usize,
    fwd_compliant: usize,
    fwd_acceptable: usize,
    fwd_unsafe: usize,
    unclear: usize,
}

fn tally_table(title: &str, rows: &BTreeMap<u8, Row>) -> String {
    let tiers = ["Compliant", "Acceptable", "Ambiguous", "Severe"];
    let mut out = format!(
        "{title}\n  {:<11} {:>5} {:>8} {:>14} {:>15} {:>17}   {}\n",
        "expected",
        "total",
        "rejected",
        "fwd-compliant",
        "fwd-other(acc)",
        "fwd-other(unsafe)",
        "notes"
    );
    let mut sum = Row::default();
    for (i, t) in tiers.iter().enumerate() {
        let r = rows.get(&(i as u8)).copied().unwrap_or_default();
        out.push_str(&format!(
            "  {:<11} {:>5} {:>8} {:>14} {:>15} {:>17}   {}\n",
            t,
            r.total,
            r.rejected,
            r.fwd_compliant,
            r.fwd_acceptable,
            r.fwd_unsafe,
            notes(&r)
        ));
        sum.strict += r.strict;
        sum.sent_as_expected += r.sent_as_expected;
        sum.total += r.total;
        sum.rejected += r.rejected;
        sum.fwd_compliant += r.fwd_compliant;
        sum.fwd_acceptable += r.fwd_acceptable;
        sum.fwd_unsafe += r.fwd_unsafe;
        sum.unclear += r.unclear;
    }
    out.push_str(&format!(
        "  {:<11} {:>5} {:>8} {:>14} {:>15} {:>17}   {}\n",
        "all",
        sum.total,
        sum.rejected,
        sum.fwd_compliant,
        sum.fwd_acceptable,
        sum.fwd_unsafe,
        notes(&sum)
    ));
    out
}

fn notes(r: &Row) -> String {
    let mut n = format!("sent bytes rated as expected: {}", r.sent_as_expected);
    if r.strict > 0 {
        n.push_str(&format!(
            "; refused by a stricter corral rule: {}",
            r.strict
        ));
    }
    if r.unclear > 0 {
        n.push_str(&format!("; unclear: {}", r.unclear));
    }
    n
}

fn shown(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(400) {
        s.extend(std::ascii::escape_default(b).map(char::from));
    }
    s
}

/// Runs every case (with or without the added Host); returns the tally and
/// the failures.
fn run_pass(
    addr: SocketAddr,
    rec: &Recorder,
    cases: &[CorpusCase],
    add_host: bool,
) -> (BTreeMap<u8, Row>, Vec<String>, usize) {
    let mut rows: BTreeMap<u8, Row> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut forwarded = 0;
    for c in cases {
        let raw = c.raw(add_host);
        let host_added = add_host && c.needs_host();
        let row = rows.entry(c.tier as u8).or_default();
        row.total += 1;
        if HttpRequestData::analyze_raw_request(&raw).tier == c.tier {
            row.sent_as_expected += 1;
        }
        let mut fail = |why: String| {
            failures.push(format!(
                "[{}] {} ({:?})\n    sent: {}\n    {why}",
                c.file,
                c.name,
                c.tier,
                shown(&raw)
            ))
        };
        let outcome = run_case(addr, rec, &raw);
        let must_refuse = if c.tier == RequestSafetyTier::Compliant {
            c.stricter_rule(host_added)
        } else {
            None
        };
        match outcome {
            Rejected(status) => {
                row.rejected += 1;
                if c.tier == RequestSafetyTier::Compliant {
                    match must_refuse {
                        None => fail(format!("a Compliant request was refused with {status}")),
                        Some(rule) if status != 400 => {
                            fail(format!("refused ({rule}) with {status} instead of 400"))
                        }
                        Some(_) => row.strict += 1,
                    }
                }
            }
            Forwarded(head) => {
                forwarded += 1;
                let verdict = HttpRequestData::analyze_raw_request(&head.raw_head);
                match verdict.tier {
                    RequestSafetyTier::Compliant => row.fwd_compliant += 1,
                    RequestSafetyTier::Acceptable => row.fwd_acceptable += 1,
                    _ => row.fwd_unsafe += 1,
                }
                let detail = || {
                    format!(
                        "reached the server as {:?} ({:?}: {}):\n    {}",
                        verdict.tier,
                        verdict.reason,
                        verdict.message.clone().unwrap_or_default(),
                        shown(&head.raw_head)
                    )
                };
                if verdict.tier > RequestSafetyTier::Acceptable {
                    fail(detail());
                } else if let Some(rule) = must_refuse {
                    fail(format!("forwarded despite `{rule}`: {}", detail()));
                } else if c.tier == RequestSafetyTier::Compliant
                    && verdict.tier != RequestSafetyTier::Compliant
                {
                    fail(format!("a Compliant request {}", detail()));
                }
            }
            Unclear(why) => {
                row.unclear += 1;
                fail(why);
            }
        }
    }
    (rows, failures, forwarded)
}

/// A valid request after a pass: corral still proxies, and the server
/// has seen exactly the forwarded cases and this one.
fn still_proxies(addr: SocketAddr, rec: &Recorder, forwarded_before: usize) -> Option<String> {
    let before = rec.state();
    match run_case(
        addr,
        rec,
        b"GET /after-the-corpus HTTP/1.1\r\nHost: corpus.example\r\n\r\n",
    ) {
        Forwarded(h) if h.target == "/after-the-corpus" => {}
        Forwarded(h) => return Some(format!("the valid request arrived as {:?}", h.raw_head)),
        Rejected(st) => return Some(format!("the valid request got {st}")),
        Unclear(why) => return Some(format!("the valid request: {why}")),
    }
    let after = rec.state();
    if after.0 != forwarded_before + 1 || after.1 != forwarded_before + 1 {
        return Some(format!(
            "the server accepted {} connections and recorded {} heads for {} forwarded cases and one valid request (before it: {before:?})",
            after.0, after.1, forwarded_before
        ));
    }
    None
}

#[test]
fn no_ambiguous_or_severe_corpus_request_reaches_the_server() {
    let dir = corpus_dir();
    let cases = load_corpus(&dir);
    assert!(
        cases.len() >= 150,
        "only {} cases in {}",
        cases.len(),
        dir.display()
    );

    let mut failures = Vec::new();
    let mut tables = String::new();
    for (title, add_host) in [
        (
            "with Host added where the case has none (not HTTP/1.0)",
            true,
        ),
        ("verbatim", false),
    ] {
        // A fresh corral and server per pass: each pass's accounting starts
        // from zero.
        let rec = Recorder::start();
        let corral = Corral::start(&format!(
            "global: {{ workers: 1 }}\n\
             defaults:\n  mode: http\n  timeout: {{ connect: 1s, client: 5s, server: 5s }}\n\
             frontends:\n  web:\n    bind: \"127.0.0.1:0\"\n    default_backend: app\n    timeout: {{ http-request: 2s }}\n\
             backends:\n  app:\n    servers:\n      s1: {{ address: \"{}\", pool-max-conn: 0 }}\n",
            rec.server.addr
        ));
        let addr = corral.addr("web");
        let (rows, mut f, forwarded) = run_pass(addr, &rec, &cases, add_host);
        if let Some(e) = still_proxies(addr, &rec, forwarded) {
            f.push(format!("after the pass: {e}"));
        }
        tables.push_str(&tally_table(
            &format!(
                "corpus pass {title}: {} cases from {}",
                cases.len(),
                dir.display()
            ),
            &rows,
        ));
        failures.extend(f.into_iter().map(|e| format!("({title}) {e}")));
    }
    eprintln!("{tables}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}\n\n{tables}",
        failures.len(),
        failures.join("\n")
    );
}
