//! A load run's plan: the command line checked and turned into what the
//! threads need (resolved targets, ready-made request bytes, each thread's
//! share of the connections). Every refusal names the flag, the value and
//! what was expected.

use crate::cli::{LoadMode, RunArgs, TlsVersion};
use crate::tls::TlsPlan;
use rustls::pki_types::ServerName;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Requests larger than this are refused (they are kept in memory).
const MAX_REQUEST: u64 = 1 << 30;

/// One target and the bytes of the request sent to it.
pub(crate) struct Target {
    /// As written on the command line.
    pub text: String,
    /// Where it resolved to.
    pub addr: SocketAddr,
    /// The whole request (HTTP head and body, or the TCP payload), written
    /// with one write per request.
    pub request: Vec<u8>,
    /// With --tls: the server name of the handshake.
    pub server_name: Option<ServerName<'static>>,
}

/// Everything a load thread needs to know, shared read-only.
pub(crate) struct Plan {
    /// The protocol.
    pub mode: LoadMode,
    /// Targets; connection `g` uses `targets[g % len]`.
    pub targets: Vec<Target>,
    /// Connections in total.
    pub connections: usize,
    /// Threads (executors).
    pub threads: usize,
    /// CPUs to pin threads to (thread i on `cpus[i % len]`); empty: none.
    pub cpus: Vec<usize>,
    /// Measured time.
    pub duration: Duration,
    /// Time before measuring (zero in bulk mode).
    pub warmup: Duration,
    /// Per-request timeout (bulk: longest time without progress).
    pub timeout: Duration,
    /// Open loop: requests per second over all connections.
    pub rate: Option<f64>,
    /// The HTTP method is HEAD (responses have no body).
    pub head: bool,
    /// tcp mode: bytes per response.
    pub response_size: u64,
    /// bulk mode: bytes per connection.
    pub bulk_bytes: u64,
    /// The run's name, if given.
    pub label: Option<String>,
    /// `--tls`: the TLS client.
    pub tls: Option<TlsPlan>,
}

impl Plan {
    /// Checks the arguments and builds the plan.
    pub(crate) fn from_args(args: &RunArgs) -> Result<Plan, String> {
        if args.threads == 0 {
            return Err("--threads 0: expected at least 1 thread".into());
        }
        if args.connections == 0 {
            return Err("--connections 0: expected at least 1 connection".into());
        }
        if args.connections < args.threads {
            return Err(format!(
                "--connections {} is fewer than --threads {}: every thread needs at least one connection",
                args.connections, args.threads
            ));
        }
        let cpus = match &args.cpus {
            Some(list) => crate::executors::check_cpus(&list.0)?,
            None => Vec::new(),
        };
        if args.mode == LoadMode::Bulk && args.rate.is_some() {
            return Err(
                "--rate does not apply to --mode bulk (it streams as fast as it can)".into(),
            );
        }
        for (flag, v) in [
            ("--request-size", args.request_size),
            ("--response-size", args.response_size),
        ] {
            if v > MAX_REQUEST {
                return Err(format!(
                    "{flag} {v}: expected at most 1g (it is held in memory)"
                ));
            }
        }
        let http = matches!(args.mode, LoadMode::Http | LoadMode::HttpClose);
        if args.tls && !http {
            return Err(format!(
                "--tls applies to --mode http and http-close, not {}",
                args.mode.name()
            ));
        }
        let tls = if args.tls {
            Some(TlsPlan::new(
                args.sni.as_deref(),
                args.tls_version.unwrap_or(TlsVersion::V13),
                args.alpn.as_deref(),
                args.tls_suite.as_deref(),
                args.tls_provider,
            )?)
        } else {
            None
        };
        let body = match (&args.body, &args.body_file) {
            (Some(b), _) => b.clone().into_bytes(),
            (None, Some(path)) => std::fs::read(path)
                .map_err(|e| format!("--body-file {}: cannot read it: {e}", path.display()))?,
            (None, None) => Vec::new(),
        };
        if http {
            check_method(&args.method)?;
            check_path(&args.path)?;
            check_headers(&args.headers, args.mode)?;
        }
        let mut targets = Vec::new();
        for text in &args.targets {
            let addr = resolve(text)?;
            let request = match args.mode {
                LoadMode::Http | LoadMode::HttpClose => http_request(args, text, &body),
                LoadMode::Tcp => vec![b'x'; args.request_size as usize],
                LoadMode::Bulk => Vec::new(),
            };
            let server_name = match &tls {
                Some(t) => Some(t.server_name(text)?),
                None => None,
            };
            targets.push(Target {
                text: text.clone(),
                addr,
                request,
                server_name,
            });
        }
        Ok(Plan {
            mode: args.mode,
            targets,
            connections: args.connections,
            threads: args.threads,
            cpus,
            duration: args.duration,
            // A bulk transfer is measured whole, from its first byte.
            warmup: if args.mode == LoadMode::Bulk {
                Duration::ZERO
            } else {
                args.warmup
            },
            timeout: args.timeout,
            rate: args.rate,
            head: args.method.eq_ignore_ascii_case("HEAD"),
            response_size: args.response_size,
            bulk_bytes: args.bulk_bytes,
            label: args.label.clone(),
            tls,
        })
    }

    /// Thread `t`'s connections: (first global index, count). Counts
    /// differ by at most one.
    pub(crate) fn share(&self, t: usize) -> (usize, usize) {
        let base = self.connections / self.threads;
        let extra = self.connections % self.threads;
        let first = t * base + t.min(extra);
        (first, base + usize::from(t < extra))
    }

    /// The CPU thread `t` is pinned to, if any.
    pub(crate) fn cpu_of(&self, t: usize) -> Option<usize> {
        (!self.cpus.is_empty()).then(|| self.cpus[t % self.cpus.len()])
    }

    /// The targets as one string, comma-separated.
    pub(crate) fn target_text(&self) -> String {
        let names: Vec<&str> = self.targets.iter().map(|t| t.text.as_str()).collect();
        names.join(",")
    }
}

/// Resolves `host:port`.
fn resolve(text: &str) -> Result<SocketAddr, String> {
    if text.contains("://") {
        return Err(format!(
            "TARGET `{text}`: expected host:port without a scheme, such as 127.0.0.1:8080"
        ));
    }
    let mut addrs = text.to_socket_addrs().map_err(|e| {
        format!("TARGET `{text}`: expected host:port, such as 127.0.0.1:8080 ({e})")
    })?;
    addrs
        .next()
        .ok_or_else(|| format!("TARGET `{text}`: the name resolves to no address"))
}

fn check_method(m: &str) -> Result<(), String> {
    if m.is_empty()
        || !m
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.!".contains(c))
    {
        return Err(format!(
            "--method `{m}`: expected an HTTP method token such as GET or POST"
        ));
    }
    Ok(())
}

fn check_path(p: &str) -> Result<(), String> {
    let form_ok = p.starts_with('/') || p == "*" || p.starts_with("http://");
    if !form_ok
        || p.chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(format!(
            "--path `{p}`: expected a request target starting with / and without spaces, such as /index.html?x=1"
        ));
    }
    Ok(())
}

fn check_headers(headers: &[(String, String)], mode: LoadMode) -> Result<(), String> {
    for (name, value) in headers {
        let refused = if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            Some("corral-bench frames the body itself from --body/--body-file")
        } else if name.eq_ignore_ascii_case("connection") && mode == LoadMode::HttpClose {
            Some("--mode http-close sends `Connection: close` itself")
        } else {
            None
        };
        if let Some(why) = refused {
            return Err(format!("--header `{name}: {value}`: {why}"));
        }
    }
    Ok(())
}

/// The bytes of the HTTP request sent to `host`.
fn http_request(args: &RunArgs, host: &str, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(256 + body.len());
    r.extend_from_slice(format!("{} {} HTTP/1.1\r\n", args.method, args.path).as_bytes());
    if !args
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("host"))
    {
        r.extend_from_slice(format!("Host: {host}\r\n").as_bytes());
    }
    for (name, value) in &args.headers {
        r.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if args.mode == LoadMode::HttpClose {
        r.extend_from_slice(b"Connection: close\r\n");
    }
    let method_has_body = ["POST", "PUT", "PATCH"]
        .iter()
        .any(|m| args.method.eq_ignore_ascii_case(m));
    if !body.is_empty() || method_has_body {
        r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut v = vec!["corral-bench", "run"];
        v.extend_from_slice(args);
        let Command::Run(a) = Cli::try_parse_from(v).unwrap().command else {
            unreachable!()
        };
        Plan::from_args(&a)
    }

    fn refusal(args: &[&str]) -> String {
        match plan(args) {
            Ok(_) => panic!("{args:?} was accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn shares_cover_all_connections() {
        let p = plan(&["-c", "5", "-t", "2", "127.0.0.1:1"]).unwrap();
        assert_eq!(p.share(0), (0, 3));
        assert_eq!(p.share(1), (3, 2));
    }

    #[test]
    fn requests_and_refusals() {
        let p = plan(&[
            "--mode",
            "http-close",
            "--method",
            "POST",
            "--body",
            "abc",
            "-H",
            "X-A: 1",
            "127.0.0.1:1",
        ])
        .unwrap();
        let r = String::from_utf8(p.targets[0].request.clone()).unwrap();
        assert_eq!(
            r,
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-A: 1\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"
        );
        let e = refusal(&["-c", "1", "-t", "2", "127.0.0.1:1"]);
        assert!(
            e.contains("--connections 1") && e.contains("--threads 2"),
            "{e}"
        );
        let e = refusal(&["http://127.0.0.1:1"]);
        assert!(e.contains("without a scheme"), "{e}");
        let e = refusal(&["-H", "Content-Length: 3", "127.0.0.1:1"]);
        assert!(e.contains("--header"), "{e}");
        let e = refusal(&["--path", "x y", "127.0.0.1:1"]);
        assert!(e.contains("--path"), "{e}");
        let e = refusal(&["--mode", "tcp", "--tls", "127.0.0.1:1"]);
        assert!(e.contains("--tls applies to"), "{e}");
        let p = plan(&["--tls", "--sni", "bench.test", "localhost:1"]).unwrap();
        assert!(matches!(
            p.targets[0].server_name,
            Some(ServerName::DnsName(_))
        ));
        assert!(
            plan(&["127.0.0.1:1"]).unwrap().targets[0]
                .server_name
                .is_none()
        );
    }
}
