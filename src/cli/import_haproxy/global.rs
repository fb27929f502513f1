//! The `global` section.

use super::builder::Map;
use super::sections::Section;
use super::yaml::Node;
use super::{Converter, trailing};

/// Why a global directive has no counterpart, for the common ones.
fn reason(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "chroot" => {
            "corral does not chroot itself: confine it with the service manager (systemd `RootDirectory=`, a container)"
        }
        "pidfile" => "corral writes no pid file: the service manager tracks its process",
        "user" | "group" | "uid" | "gid" => {
            "corral does not change its user: start it as the user it should run as (systemd `User=`/`Group=`)"
        }
        "daemon" => "corral stays in the foreground, as a service manager expects",
        "master-worker" | "nbproc" => {
            "corral is one process with a worker per core (`global.workers`)"
        }
        "cpu-map" => "corral pins one worker to each usable core by itself",
        "ulimit-n" => {
            "corral does not raise its own file limit: set `LimitNOFILE=` (corral fits `maxconn` to it)"
        }
        "ca-base" | "crt-base" => {
            "corral reads relative paths from the configuration file's directory; write full paths"
        }
        "tune.ssl.default-dh-param" => {
            "rustls negotiates no finite-field Diffie-Hellman, so there is no DH parameter to size"
        }
        "ssl-default-bind-ciphers"
        | "ssl-default-bind-ciphersuites"
        | "ssl-default-server-ciphers"
        | "ssl-default-server-ciphersuites" => {
            "rustls offers only its own modern cipher suites; they cannot be chosen"
        }
        "stats" => "corral's runtime API has no idle timeout setting",
        "spread-checks" => "corral does not spread checks by a percentage",
        "node" | "description" => "corral's stats page has no node name or description",
        "lua-load" | "lua-prepend-path" => "corral runs no Lua",
        "setenv" | "presetenv" | "resetenv" | "unsetenv" => {
            "corral's configuration does not expand environment variables"
        }
        "server-state-file" | "server-state-base" => "corral keeps no server-state file",
        "localpeer" => {
            "write the node name as `local:` in the peers section, or pass `corral run --peer-name`"
        }
        _ => return None,
    })
}

pub(super) fn convert(c: &mut Converter, s: &Section) -> Map {
    let mut m = Map::default();
    for l in &s.body {
        if l.words.is_empty() {
            m.comment(l.comment.as_deref().unwrap_or(""));
            continue;
        }
        if let Some(var) = &l.env {
            c.skip(&mut m, l, super::env_reason(var));
            continue;
        }
        let kw = l.word(0);
        let arg = l.word(1);
        let t = trailing(l);
        match kw {
            "maxconn" if l.words.len() == 2 => m.set("maxconn", Node::plain(arg), t),
            "nbthread" if l.words.len() == 2 => m.set("workers", Node::plain(arg), t),
            "hard-stop-after" if l.words.len() == 2 => {
                m.set("hard-stop-after", Node::plain(arg), t)
            }
            "tune.bufsize" if l.words.len() == 2 => m.set("tune.bufsize", Node::plain(arg), t),
            "log" if arg == "global" => {
                c.skip(&mut m, l, "`log global` means nothing inside `global`")
            }
            "log" => match crate::config::parse_log_target(l.rest(1)) {
                Ok(_) => m.push("log", Node::str(l.rest(1)), t),
                Err(e) => c.skip(&mut m, l, format!("corral cannot send logs there: {e}")),
            },
            "stats" if arg == "socket" => socket(c, &mut m, l),
            "ssl-default-bind-options" => bind_options(c, &mut m, l),
            "ssl-server-verify" if arg == "required" => m.note(format!(
                " {}: corral verifies servers' certificates unless a server says `verify: none`",
                l.directive()
            )),
            _ => {
                let why = reason(kw)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("corral has no equivalent of `{kw}` in `global`"));
                c.skip(&mut m, l, why)
            }
        }
    }
    m
}

/// `stats socket ADDR [options]` becomes a `stats-socket` line with the
/// options corral has (`mode`, `user`, `group`, `level`).
fn socket(c: &mut Converter, m: &mut Map, l: &super::lexer::Line) {
    let w = l.texts();
    let Some(addr) = w.get(2) else {
        return c.skip(m, l, "no address");
    };
    let loopback = |a: &str| {
        let a = a
            .strip_prefix("ipv4@")
            .or_else(|| a.strip_prefix("ipv6@"))
            .unwrap_or(a);
        a.starts_with("127.") || a.starts_with("[::1]") || a.starts_with("localhost:")
    };
    let unix = addr.contains('/') || addr.starts_with("unix@");
    if !unix && !loopback(addr) {
        return c.skip(
            m,
            l,
            "corral's runtime API listens only on a unix socket or on loopback: it has no authentication",
        );
    }
    let mut kept = vec![addr.to_string()];
    let mut dropped = Vec::new();
    let mut i = 3;
    while i < w.len() {
        let opt = w[i];
        let val = w.get(i + 1).copied().unwrap_or("");
        match opt {
            "mode" | "user" | "group" | "level" if unix || opt == "level" => {
                kept.push(format!("{opt} {val}"));
                i += 2;
            }
            "expose-fd" | "uid" | "gid" | "name" | "process" | "thread" | "maxconn"
            | "severity-output" | "mode" | "user" | "group" => {
                dropped.push(format!("{opt} {val}"));
                i += 2;
            }
            other => {
                dropped.push(other.to_string());
                i += 1;
            }
        }
    }
    m.push("stats-socket", Node::str(&kept.join(" ")), trailing(l));
    if !dropped.is_empty() {
        c.skip_part(
            m,
            l,
            format!(
                "`{}`: corral's socket has none of these (the socket itself is converted)",
                dropped.join(" ")
            ),
        );
    }
}

/// `ssl-default-bind-options`: the protocol floors corral always has, and
/// `no-tls-tickets` / `ssl-min-ver`, applied to every TLS frontend.
fn bind_options(c: &mut Converter, m: &mut Map, l: &super::lexer::Line) {
    let w = l.texts();
    let mut dropped = Vec::new();
    let mut i = 1;
    while i < w.len() {
        match w[i] {
            "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
            "no-tls-tickets" => c.bind_no_tickets = true,
            "ssl-min-ver" if matches!(w.get(i + 1), Some(&"TLSv1.2") | Some(&"TLSv1.3")) => {
                c.bind_min_ver = Some(w[i + 1].trim_start_matches("TLSv").to_string());
                i += 1;
            }
            other => dropped.push(other.to_string()),
        }
        i += 1;
    }
    m.note(format!(
        " {}: applied to each TLS frontend's `tls:` (SSLv3, TLS 1.0 and 1.1 are always refused)",
        l.directive()
    ));
    if !dropped.is_empty() {
        c.skip_part(
            m,
            l,
            format!("`{}`: corral's TLS has no such setting", dropped.join(" ")),
        );
    }
}
