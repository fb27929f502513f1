//! `bind` lines: each address becomes a `bind:` entry (`ssl` kept), and
//! the TLS options (`crt`, `alpn`, `ssl-min-ver`...) move to the
//! frontend's `tls:` block, which is where corral reads them.

use super::lexer::Line;

const ONE_ARG: &[&str] = &[
    "crt",
    "crt-list",
    "alpn",
    "npn",
    "ssl-min-ver",
    "ssl-max-ver",
    "ciphers",
    "ciphersuites",
    "curves",
    "ecdhe",
    "ca-file",
    "ca-ignore-err",
    "ca-sign-file",
    "ca-sign-pass",
    "crt-ignore-err",
    "crl-file",
    "verify",
    "name",
    "id",
    "process",
    "thread",
    "mode",
    "uid",
    "gid",
    "user",
    "group",
    "maxconn",
    "backlog",
    "interface",
    "namespace",
    "mss",
    "tcp-ut",
    "level",
    "severity-output",
    "nice",
    "proto",
    "sigalgs",
    "client-sigalgs",
    "tls-ticket-keys",
    "label",
    "guid-prefix",
    "idle-ping",
    "quic-cc-algo",
    "shards",
];

/// What the bind lines of a frontend add up to.
#[derive(Debug, Default)]
pub(super) struct Tls {
    pub certs: Vec<String>,
    pub alpn: Vec<String>,
    pub min: Option<String>,
    pub max: Option<String>,
    pub no_tickets: bool,
    /// The first line with an `ssl` bind, if any.
    pub ssl_line: Option<usize>,
}

/// One line: its addresses (as corral's `bind` strings) and the options
/// it could not convert (each with its reason).
pub(super) fn convert(l: &Line, tls: &mut Tls) -> Result<(Vec<String>, Vec<String>), String> {
    let w = l.texts();
    let Some(addrs) = w.get(1) else {
        return Err("no address".into());
    };
    let mut out = Vec::new();
    for a in addrs.split(',') {
        let a = a
            .strip_prefix("ipv4@")
            .or_else(|| a.strip_prefix("ipv6@"))
            .unwrap_or(a);
        if a.contains('@') || a.starts_with('/') {
            return Err(format!("`{a}`: corral listens on TCP addresses only"));
        }
        let Some((host, port)) = a.rsplit_once(':') else {
            return Err(format!("`{a}` has no port"));
        };
        if port.parse::<u16>().is_err() {
            return Err(format!(
                "`{a}`: corral binds one port per address (no ranges such as `8000-8010`)"
            ));
        }
        // HAProxy's `:::80` is every IPv6 address.
        let host = match host {
            "::" => "[::]",
            h => h,
        };
        out.push(format!("{host}:{port}"));
    }
    let mut ssl = false;
    let mut dropped = Vec::new();
    let mut i = 2;
    while i < w.len() {
        let o = w[i];
        let v = w.get(i + 1).copied().unwrap_or("");
        match o {
            "ssl" => ssl = true,
            "crt" => {
                if !tls.certs.iter().any(|c| c == v) {
                    tls.certs.push(v.to_string());
                }
            }
            "alpn" => {
                for p in v.split(',') {
                    if p == "h2" {
                        dropped.push(
                            "`alpn h2` (corral speaks HTTP/1.1: `h2` is not offered)".to_string(),
                        );
                    } else if !tls.alpn.iter().any(|x| x == p) {
                        tls.alpn.push(p.to_string());
                    }
                }
            }
            "ssl-min-ver" | "ssl-max-ver" => match v {
                "TLSv1.2" | "TLSv1.3" => {
                    let ver = v.trim_start_matches("TLSv").to_string();
                    if o == "ssl-min-ver" {
                        tls.min = Some(ver);
                    } else {
                        tls.max = Some(ver);
                    }
                }
                _ => dropped.push(format!("`{o} {v}` (corral speaks TLS 1.2 and 1.3 only)")),
            },
            "no-tls-tickets" => tls.no_tickets = true,
            "no-sslv3" | "no-tlsv10" | "no-tlsv11" | "force-tlsv12" => {}
            "v4v6"
            | "v6only"
            | "transparent"
            | "accept-proxy"
            | "defer-accept"
            | "tfo"
            | "strict-sni"
            | "prefer-client-ciphers"
            | "allow-0rtt"
            | "quic-force-retry" => dropped.push(format!("`{o}` (corral has no such bind option)")),
            other if ONE_ARG.contains(&other) => {
                let why = match other {
                    "crt-list" => "list the certificates in `tls.certs`; SNI picks among them",
                    "ciphers" | "ciphersuites" | "curves" | "ecdhe" => {
                        "rustls offers its own modern suites and groups"
                    }
                    "ca-file" | "verify" | "crl-file" => {
                        "corral does not ask clients for certificates"
                    }
                    "maxconn" => "set `maxconn` on the frontend",
                    "name" | "id" => "corral names listeners by frontend",
                    "process" | "thread" => "every corral worker listens on every bind",
                    _ => "corral has no such bind option",
                };
                dropped.push(format!("`{other} {v}` ({why})"));
                i += 1;
            }
            other => dropped.push(format!("`{other}` (corral has no such bind option)")),
        }
        i += if ["crt", "alpn", "ssl-min-ver", "ssl-max-ver"].contains(&o) {
            2
        } else {
            1
        };
    }
    if ssl {
        tls.ssl_line.get_or_insert(l.number);
        for a in &mut out {
            a.push_str(" ssl");
        }
    }
    Ok((out, dropped))
}
