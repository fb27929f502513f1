//! `server` lines (with `default-server` options before their own) and
//! the HTTP health check of `option httpchk` / `http-check expect`.

use super::lexer::Line;
use super::yaml::Node;

/// Server keywords that take one argument (so an option corral lacks is
/// reported with its value, and the value is not read as a keyword).
const ONE_ARG: &[&str] = &[
    "addr",
    "agent-addr",
    "agent-inter",
    "agent-port",
    "agent-send",
    "alpn",
    "ca-file",
    "check-alpn",
    "check-proto",
    "check-sni",
    "ciphers",
    "ciphersuites",
    "cookie",
    "crl-file",
    "crt",
    "curves",
    "downinter",
    "error-limit",
    "fall",
    "fastinter",
    "guid",
    "hash-key",
    "id",
    "init-addr",
    "init-state",
    "inter",
    "log-bufsize",
    "log-proto",
    "max-reuse",
    "maxconn",
    "maxqueue",
    "minconn",
    "namespace",
    "npn",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "pool-conn-name",
    "pool-low-conn",
    "pool-max-conn",
    "pool-purge-delay",
    "port",
    "proto",
    "proxy-v2-options",
    "redir",
    "resolve-net",
    "resolve-opts",
    "resolve-prefer",
    "resolvers",
    "rise",
    "set-proxy-v2-tlv-fmt",
    "shard",
    "sigalgs",
    "slowstart",
    "sni",
    "source",
    "ssl-max-ver",
    "ssl-min-ver",
    "tcp-ut",
    "track",
    "verify",
    "verifyhost",
    "weight",
    "ws",
];

/// Why a server option has no counterpart, for the common ones.
fn reason(opt: &str) -> &'static str {
    match opt {
        "cookie" => "corral has no cookie persistence; a stick table keeps clients on a server",
        "slowstart" => "corral has no slow start",
        "fastinter" | "downinter" => "corral checks at one interval, `inter`",
        "send-proxy" | "send-proxy-v2" | "send-proxy-v2-ssl" | "send-proxy-v2-ssl-cn" => {
            "corral does not send the PROXY protocol"
        }
        "resolvers" | "resolve-prefer" | "resolve-net" | "init-addr" => {
            "corral resolves server names once, at load"
        }
        "agent-check" | "agent-port" | "agent-inter" | "agent-send" | "agent-addr" => {
            "corral has no agent checks"
        }
        "disabled" => {
            "corral has no servers that start in maintenance: use `corral ctl disable server` after start"
        }
        "check-ssl" | "check-sni" | "check-alpn" => {
            "a check of a `tls` server runs over TLS by itself; there is no separate check TLS setting"
        }
        "verifyhost" => {
            "corral checks the server's name against the SNI it sends (`tls.sni`), not a fixed name"
        }
        "crt" => "corral presents no client certificate to servers",
        "track" => "corral has no tracked checks",
        "id" => "corral numbers servers in file order",
        "maxqueue" => "corral's queue is bounded by `timeout.queue`, not a length",
        "on-marked-down" | "on-marked-up" | "observe" | "on-error" | "error-limit" => {
            "corral has no check reactions"
        }
        _ => "corral has no such server option",
    }
}

/// `option httpchk` and `http-check expect status`.
#[derive(Debug, Clone, Default)]
pub(crate) struct HttpCheck {
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub expect: Option<String>,
}

impl HttpCheck {
    fn node(&self) -> Node {
        let mut m = Vec::new();
        if let Some(v) = &self.method {
            m.push(("method".to_string(), Node::str(v)));
        }
        if let Some(v) = &self.path {
            m.push(("path".to_string(), Node::str(v)));
        }
        if let Some(v) = &self.host {
            m.push(("host".to_string(), Node::str(v)));
        }
        if let Some(v) = &self.expect {
            m.push(("expect".to_string(), Node::str(v)));
        }
        Node::FlowMap(m)
    }
}

/// Whether a line is a write-up's `<placeholder>` rather than a value.
pub(super) fn placeholder(l: &Line) -> bool {
    l.words
        .iter()
        .skip(1)
        .any(|w| w.text.starts_with('<') || w.text.ends_with('>'))
}

/// A converted server: its name and flow map, and what could not be said.
pub(super) struct Server {
    pub name: String,
    pub node: Node,
    pub dropped: Vec<String>,
}

/// Converts `server NAME ADDR [options]` with `defaults` (the
/// `default-server` options in force) read first. Err: why the whole line
/// cannot be converted.
pub(super) fn convert(
    l: &Line,
    defaults: &[String],
    httpchk: Option<&HttpCheck>,
) -> Result<Server, String> {
    if placeholder(l) {
        return Err("a placeholder from a write-up, not a name and an address: fill in the server's name and `ip:port`".into());
    }
    let w = l.texts();
    let (Some(name), Some(addr)) = (w.get(1), w.get(2)) else {
        return Err("expected `server NAME ADDRESS [options]`".into());
    };
    if ONE_ARG.contains(addr) || ["check", "backup", "ssl", "disabled"].contains(addr) {
        return Err(format!(
            "no address: `{addr}` is an option; HAProxy refuses this line too (write `server {name} HOST:PORT {}`)",
            w[2..].join(" ")
        ));
    }
    let addr = addr
        .strip_prefix("ipv4@")
        .or_else(|| addr.strip_prefix("ipv6@"))
        .unwrap_or(addr);
    if addr.contains('@') || addr.starts_with('/') {
        return Err(format!(
            "`{addr}`: corral connects to servers over TCP only (`host:port`)"
        ));
    }
    let port_ok = match addr.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && (!host.contains(':') || host.starts_with('['))
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    };
    if !port_ok {
        return Err(format!(
            "`{addr}`: corral needs the server's port (`host:port`); HAProxy without one, or with `+N`/`-N`, uses the port the client connected to"
        ));
    }
    let opts: Vec<String> = defaults
        .iter()
        .cloned()
        .chain(w[3..].iter().map(|s| s.to_string()))
        .collect();
    let mut check = false;
    let mut check_map: Vec<(String, Node)> = Vec::new();
    let mut fields: Vec<(String, Node)> = vec![("address".into(), Node::str(addr))];
    let set = |fields: &mut Vec<(String, Node)>, k: &str, v: Node| match fields
        .iter_mut()
        .find(|(key, _)| key == k)
    {
        Some(e) => e.1 = v,
        None => fields.push((k.to_string(), v)),
    };
    let mut ssl = false;
    let mut tls: Vec<(String, Node)> = Vec::new();
    let mut dropped = Vec::new();
    let mut i = 0;
    while i < opts.len() {
        let o = opts[i].as_str();
        let v = opts.get(i + 1).map(String::as_str).unwrap_or("");
        let takes = ONE_ARG.contains(&o);
        match o {
            "check" => check = true,
            "no-check" => check = false,
            "port" | "inter" | "rise" | "fall" => {
                match check_map.iter_mut().find(|(k, _)| k == o) {
                    Some(e) => e.1 = Node::plain(v),
                    None => check_map.push((o.to_string(), Node::plain(v))),
                }
            }
            "weight" | "maxconn" | "pool-max-conn" | "pool-purge-delay" => {
                set(&mut fields, o, Node::plain(v))
            }
            "backup" => set(&mut fields, "backup", Node::bool(true)),
            "no-backup" => fields.retain(|(k, _)| k != "backup"),
            "ssl" => ssl = true,
            "no-ssl" => ssl = false,
            "verify" if v == "none" || v == "required" => tls.push(("verify".into(), Node::str(v))),
            "ca-file" => tls.push(("ca".into(), Node::str(v))),
            "sni" => tls.push(("sni".into(), Node::str(&format!("%[{v}]")))),
            "alpn" => tls.push((
                "alpn".into(),
                Node::FlowSeq(v.split(',').map(Node::str).collect()),
            )),
            "enabled" => {}
            other => dropped.push(if takes {
                format!("{other} {v}")
            } else {
                other.to_string()
            }),
        }
        i += if takes { 2 } else { 1 };
    }
    if check {
        if let Some(h) = httpchk {
            check_map.push(("http".into(), h.node()));
        }
        let node = if check_map.is_empty() {
            Node::bool(true)
        } else {
            Node::FlowMap(check_map)
        };
        fields.push(("check".into(), node));
    } else if !check_map.is_empty() {
        let keys: Vec<&str> = check_map.iter().map(|(k, _)| k.as_str()).collect();
        dropped.push(format!(
            "{} (without `check` they do nothing, in HAProxy too)",
            keys.join(", ")
        ));
    }
    if ssl {
        fields.push((
            "tls".into(),
            if tls.is_empty() {
                Node::bool(true)
            } else {
                Node::FlowMap(tls)
            },
        ));
    } else if !tls.is_empty() {
        dropped.push("verify/ca-file/sni/alpn (without `ssl` they do nothing)".into());
    }
    let dropped = dropped
        .into_iter()
        .map(|d| {
            let opt = d.split_whitespace().next().unwrap_or("").to_string();
            if d.contains("do nothing") {
                d
            } else {
                format!("`{d}` ({})", reason(&opt))
            }
        })
        .collect();
    Ok(Server {
        name: name.to_string(),
        node: Node::FlowMap(fields),
        dropped,
    })
}

/// `option httpchk [METHOD] [URI] [VERSION [HOST-HEADER...]]`.
pub(super) fn httpchk(words: &[&str]) -> Result<HttpCheck, String> {
    let mut h = HttpCheck::default();
    match words {
        [] => {}
        [uri] => h.path = Some(uri.to_string()),
        [method, uri] => {
            h.method = Some(method.to_string());
            h.path = Some(uri.to_string());
        }
        [method, uri, version] => {
            // HAProxy's old spelling puts headers after the version:
            // `HTTP/1.1\r\nHost:\ www`.
            let mut parts = version.split("\r\n");
            let _ = parts.next();
            for header in parts {
                match header.split_once(':') {
                    Some((n, v)) if n.eq_ignore_ascii_case("host") => {
                        h.host = Some(v.trim().to_string())
                    }
                    _ if header.is_empty() => {}
                    _ => {
                        return Err(format!(
                            "the check header `{header}`: corral's HTTP check sends only a Host header"
                        ));
                    }
                }
            }
            h.method = Some(method.to_string());
            h.path = Some(uri.to_string());
        }
        _ => return Err("expected `option httpchk [METHOD] URI [VERSION]`".into()),
    }
    Ok(h)
}
