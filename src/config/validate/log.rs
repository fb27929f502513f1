//! Validation of `log` targets, in HAProxy's spelling:
//! `<target> [len <n>] [format <f>] [<facility> [<level> [<minlevel>]]]`
//! where the target is `stdout`, `stderr`, `file /path`, a unix datagram
//! socket (`/dev/log`) or a UDP syslog address (`127.0.0.1:514`).

use super::*;

/// Every form a target can take, for error messages.
const TARGET_FORMS: &str = "expected `stdout`, `stderr`, `file /path/to/file`, a unix datagram socket such as `/dev/log`, or a UDP syslog address such as `127.0.0.1:514` or `udp@[::1]:514`, optionally followed by `len <n>`, `format <format>`, a facility and levels (`/dev/log local0 info`)";

/// The 24 syslog facilities, by number, as HAProxy names them.
const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Syslog levels, by number.
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The standard syslog port, when an address gives none.
const SYSLOG_PORT: u16 = 514;

/// HAProxy's default `len` for syslog messages.
const DEFAULT_SYSLOG_LEN: usize = 1024;

impl Validator<'_> {
    pub(super) fn log_targets(&mut self, v: &Value, path: &str) -> Vec<LogTarget> {
        let mut out = Vec::new();
        for (text, p) in self.strings(v, path) {
            match parse_log_target(&text) {
                Ok(t) => {
                    if !t.takes_connection_logs() {
                        self.warnings.push(format!(
                            "{p}: `{text}` sends only messages at level `{}` or more important; connection logs are `info`, so this target receives none",
                            LEVELS[usize::from(t.level)]
                        ));
                    }
                    out.push(t);
                }
                Err(e) => self.c.at(&p, e),
            }
        }
        out
    }
}

/// One `log` target, or a message naming the value and what was expected.
pub(crate) fn parse_log_target(text: &str) -> Result<LogTarget, String> {
    let mut words = text.split_whitespace();
    let dest = match words.next() {
        None => return Err(format!("an empty log target: {TARGET_FORMS}")),
        Some("stdout" | "fd@1") => LogDest::Stdout,
        Some("stderr" | "fd@2") => LogDest::Stderr,
        Some("file") => match words.next() {
            Some(p) => LogDest::File(PathBuf::from(p)),
            None => {
                return Err(format!(
                    "`{text}` names no file: expected `file /path/to/file`"
                ));
            }
        },
        Some(w) => socket_dest(w)
            .map_err(|why| format!("`{text}` is not a log target: {why}; {TARGET_FORMS}"))?,
    };
    let socket = matches!(dest, LogDest::Unix(_) | LogDest::Udp(_));
    let mut t = LogTarget {
        dest,
        format: if socket {
            LogFormat::Rfc3164
        } else {
            LogFormat::Raw
        },
        facility: 16,
        level: 7,
        min_level: 0,
        max_len: socket.then_some(DEFAULT_SYSLOG_LEN),
    };
    let mut positional = 0;
    while let Some(w) = words.next() {
        match w {
            "len" => {
                let n = words.next().unwrap_or("");
                match n.parse::<usize>() {
                    Ok(n) if (80..=65535).contains(&n) => t.max_len = Some(n),
                    _ => {
                        return Err(format!(
                            "`len {n}` in `{text}`: the longest message must be a number from 80 to 65535 (bytes, header included)"
                        ));
                    }
                }
            }
            "format" => {
                let f = words.next().unwrap_or("");
                t.format = LogFormat::NAMES
                    .iter()
                    .find(|(name, _)| *name == f)
                    .map(|(_, format)| *format)
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            LogFormat::NAMES.iter().map(|(name, _)| *name).collect();
                        format!(
                            "`format {f}` in `{text}` is not a log format (expected {})",
                            names.join(", ")
                        )
                    })?;
            }
            "sample" | "profile" => {
                return Err(format!(
                    "`{w}` in `{text}` is not supported: corral sends every connection log to every target"
                ));
            }
            _ => {
                match positional {
                    0 => t.facility = facility(w, text)?,
                    1 => t.level = level(w, text, "level")?,
                    2 => t.min_level = level(w, text, "minimum level")?,
                    _ => {
                        return Err(format!(
                            "unexpected `{w}` in `{text}`: a target takes at most a facility, a level and a minimum level, e.g. `127.0.0.1:514 local0 info`"
                        ));
                    }
                }
                positional += 1;
            }
        }
    }
    Ok(t)
}

fn facility(w: &str, text: &str) -> Result<u8, String> {
    if let Some(n) = FACILITIES.iter().position(|f| *f == w) {
        return Ok(n as u8);
    }
    let hint = if LEVELS.contains(&w) {
        format!(" (`{w}` is a level: it comes after the facility, e.g. `local0 {w}`)")
    } else {
        String::new()
    };
    Err(format!(
        "`{w}` in `{text}` is not a syslog facility{hint}: expected one of {}",
        FACILITIES.join(", ")
    ))
}

fn level(w: &str, text: &str, what: &str) -> Result<u8, String> {
    LEVELS
        .iter()
        .position(|l| *l == w)
        .map(|n| n as u8)
        .ok_or_else(|| {
            format!(
                "`{w}` in `{text}` is not a log {what}: expected one of {}",
                LEVELS.join(", ")
            )
        })
}

/// A syslog socket: a unix datagram path or a UDP address, with HAProxy's
/// prefixes (`uxdg@`, `udp@`, `udp4@`, `udp6@`, `ipv4@`, `ipv6@`).
fn socket_dest(w: &str) -> Result<LogDest, String> {
    if w.starts_with('/') {
        return unix_dest(w);
    }
    if let Some((prefix, rest)) = w.split_once('@') {
        return match prefix {
            "uxdg" => unix_dest(rest),
            "udp" => udp_dest(rest, None),
            "udp4" | "ipv4" => udp_dest(rest, Some(true)),
            "udp6" | "ipv6" => udp_dest(rest, Some(false)),
            "tcp" | "tcp4" | "tcp6" | "uxst" | "unix" | "abns" => Err(format!(
                "`{prefix}@` is a stream socket, and corral sends syslog over datagrams only (UDP or a unix datagram socket)"
            )),
            "fd" => Err("only `fd@1` (stdout) and `fd@2` (stderr) are supported".into()),
            _ => Err(format!(
                "`{prefix}@` is not a log target prefix corral knows"
            )),
        };
    }
    // A bare address: an IP, `[v6]:port` or `host:port` (a bare host name
    // needs `udp@` so that a misspelt keyword is not taken for one).
    if w.parse::<IpAddr>().is_ok() || w.starts_with('[') || w.contains(':') {
        return udp_dest(w, None);
    }
    Err(format!(
        "`{w}` is neither a keyword, an absolute path nor an address"
    ))
}

fn unix_dest(path: &str) -> Result<LogDest, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "`{path}` is not an absolute path to a unix datagram socket"
        ));
    }
    // `sun_path` holds 108 bytes with the terminating NUL.
    if path.len() > 107 {
        return Err(format!(
            "the socket path is {} bytes long, and a unix socket path can be at most 107",
            path.len()
        ));
    }
    Ok(LogDest::Unix(PathBuf::from(path)))
}

/// `ip`, `ip:port`, `[v6]`, `[v6]:port`, `host`, `host:port`; the port
/// defaults to 514. `v4`: Some(true) only IPv4, Some(false) only IPv6.
fn udp_dest(s: &str, v4: Option<bool>) -> Result<LogDest, String> {
    let (host, port) = if s.parse::<IpAddr>().is_ok() {
        (s, None)
    } else if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        (inner, None)
    } else if let Some((h, p)) = split_host_port(s) {
        (h, Some(p))
    } else {
        (s, None)
    };
    let port = match port {
        None => SYSLOG_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("`{p}` is not a port (1 to 65535)")),
        },
    };
    if host.is_empty() || host == "*" {
        return Err(format!("`{s}` has no host"));
    }
    let family_ok = |a: &SocketAddr| v4.is_none_or(|v4| a.is_ipv4() == v4);
    let addr = match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => {
            return Err(format!(
                "`{s}`: logs cannot be sent to the unspecified address {ip}"
            ));
        }
        Ok(ip) => Some(SocketAddr::new(ip, port)).filter(family_ok),
        Err(_) => match (host, port).to_socket_addrs() {
            Ok(mut addrs) => addrs.find(family_ok),
            Err(e) => {
                return Err(format!(
                    "cannot resolve host `{host}` ({e}): check its spelling, DNS or /etc/hosts, or write an IP address"
                ));
            }
        },
    };
    addr.map(LogDest::Udp).ok_or_else(|| {
        let family = if v4 == Some(true) { "IPv4" } else { "IPv6" };
        format!("`{s}` has no {family} address")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> LogTarget {
        parse_log_target(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        parse_log_target(text).expect_err(text)
    }

    #[test]
    fn haproxy_spellings_of_syslog_targets() {
        let t = ok("127.0.0.1:514 local0");
        assert_eq!(t.dest, LogDest::Udp("127.0.0.1:514".parse().unwrap()));
        assert_eq!(
            (t.format, t.facility, t.level, t.min_level, t.max_len),
            (LogFormat::Rfc3164, 16, 7, 0, Some(1024))
        );
        assert_eq!(t.connection_priority(), 134);
        let t = ok("udp@10.1.2.3 len 2048 format rfc5424 local7 info debug");
        assert_eq!(t.dest, LogDest::Udp("10.1.2.3:514".parse().unwrap()));
        assert_eq!(t.max_len, Some(2048));
        assert_eq!(t.format, LogFormat::Rfc5424);
        // info, raised to the minimum level debug: local7.debug.
        assert_eq!(t.connection_priority(), 23 * 8 + 7);
        assert_eq!(
            ok("[::1]:1514").dest,
            LogDest::Udp("[::1]:1514".parse().unwrap())
        );
        assert_eq!(ok("::1").dest, LogDest::Udp("[::1]:514".parse().unwrap()));
        assert_eq!(
            ok("udp6@[::1]").dest,
            LogDest::Udp("[::1]:514".parse().unwrap())
        );
        assert_eq!(
            ok("localhost:514 daemon").dest,
            LogDest::Udp("127.0.0.1:514".parse().unwrap())
        );
        let t = ok("/dev/log local3 notice");
        assert_eq!(t.dest, LogDest::Unix("/dev/log".into()));
        assert_eq!((t.facility, t.level), (19, 5));
        assert!(!t.takes_connection_logs());
        assert_eq!(
            ok("uxdg@/run/log.sock").dest,
            LogDest::Unix("/run/log.sock".into())
        );
        // Keywords may come after the facility too.
        assert_eq!(ok("/dev/log local0 format local").format, LogFormat::Local);
    }

    #[test]
    fn streams_default_to_raw_lines() {
        let t = ok("stdout");
        assert_eq!(
            (t.dest, t.format, t.max_len),
            (LogDest::Stdout, LogFormat::Raw, None)
        );
        assert_eq!(ok("stdout format raw").format, LogFormat::Raw);
        assert_eq!(ok("fd@2 format short daemon").dest, LogDest::Stderr);
        let t = ok("file /var/log/corral.log format rfc3164 local1");
        assert_eq!(t.dest, LogDest::File("/var/log/corral.log".into()));
        assert_eq!((t.format, t.facility), (LogFormat::Rfc3164, 17));
    }

    #[test]
    fn bad_targets_say_what_is_wrong_and_what_is_expected() {
        let e = err("syslog");
        assert!(
            e.contains("`syslog` is not a log target") && e.contains("`/dev/log`"),
            "{e}"
        );
        let e = err("127.0.0.1:514 local9");
        assert!(e.contains("`local9` in `127.0.0.1:514 local9` is not a syslog facility: expected one of kern, user"), "{e}");
        let e = err("/dev/log info");
        assert!(e.contains("`info` is a level"), "{e}");
        let e = err("/dev/log local0 loud");
        assert!(
            e.contains("`loud` in `/dev/log local0 loud` is not a log level"),
            "{e}"
        );
        let e = err("/dev/log local0 info debug extra");
        assert!(e.contains("unexpected `extra`"), "{e}");
        let e = err("/dev/log format json local0");
        assert!(e.contains("`format json`") && e.contains("rfc5424"), "{e}");
        let e = err("/dev/log len 10 local0");
        assert!(e.contains("80 to 65535"), "{e}");
        let e = err("tcp@127.0.0.1:514 local0");
        assert!(e.contains("datagrams only"), "{e}");
        let e = err("127.0.0.1:99999 local0");
        assert!(e.contains("`99999` is not a port"), "{e}");
        let e = err("udp4@[::1]:514");
        assert!(e.contains("no IPv4 address"), "{e}");
        let e = err("relative/log.sock");
        assert!(e.contains("not a log target"), "{e}");
        let e = err(&format!("/{}", "x".repeat(120)));
        assert!(e.contains("at most 107"), "{e}");
        assert!(err("file").contains("names no file"));
    }
}
