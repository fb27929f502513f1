//! One validation pass from the raw file types into the typed `Config`.
//! Every problem is collected (not just the first), each with its key path
//! and position, and says what was expected.
//!
//! Warnings go to `Config::warnings`; nothing here prints.

use super::error::{Collector, ConfigErrors};
use super::position::{PositionIndex, child, item};
use super::raw::{OrderedMap, RawBackend, RawConfig, RawFrontend, RawServer, RawTimeouts};
use super::*;
use crate::base::units::{parse_duration, parse_size};
use serde_yaml::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

mod api;
mod http;
mod log;
mod stick;
mod tls;

pub(crate) use log::parse_log_target;

const FRONTEND_OPTIONS: &[&str] = &[
    "tcplog",
    "httplog",
    "dontlognull",
    "forwardfor",
    "http-server-close",
    "httpclose",
    "http-keep-alive",
    "httpslog",
];
/// `redispatch` is accepted for HAProxy compatibility: corral always moves
/// a retried connection to another server when one is available.
const BACKEND_OPTIONS: &[&str] = &[
    "redispatch",
    "allbackups",
    "forwardfor",
    "http-server-close",
    "httpclose",
    "http-keep-alive",
];
/// Options that take arguments after their name.
const OPTIONS_WITH_ARGS: &[&str] = &["forwardfor"];

/// The name of an option written with its arguments (`forwardfor except ...`).
fn option_name(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or("")
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let index = PositionIndex::build(text);
    if text.trim().is_empty() {
        return Err(ConfigErrors::single(
            file,
            "",
            None,
            "the configuration is empty: it needs at least `frontends` and `backends`",
        ));
    }
    let de = serde_yaml::Deserializer::from_str(text);
    let raw: RawConfig = match serde_path_to_error::deserialize(de) {
        Ok(raw) => raw,
        Err(e) => return Err(serde_error(file, &index, e)),
    };
    let mut v = Validator {
        c: Collector::new(&index, text),
        base_dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
        table_sites: Vec::new(),
        table_names: Vec::new(),
        known_tables: None,
        provider: crate::tls::Provider::AwsLcRs,
        warnings: Vec::new(),
    };
    let config = v.config(file, raw);
    let errors = v.c.finish();
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors {
            file: file.to_path_buf(),
            errors,
        })
    }
}

/// Turns a serde error (syntax, unknown key, wrong shape) into one with a
/// key path and, for unknown keys, the position of the key itself.
fn serde_error(
    file: &Path,
    index: &PositionIndex,
    e: serde_path_to_error::Error<serde_yaml::Error>,
) -> ConfigErrors {
    let mut path = e.path().to_string();
    if path == "." {
        path.clear();
    }
    let inner = e.into_inner();
    let message = strip_locations(&inner.to_string());
    // serde_yaml prefixes its message with the (parent) path; we print the
    // path ourselves.
    let message = match message.split_once(": ") {
        Some((prefix, rest)) if path.starts_with(prefix) => rest.to_string(),
        _ => message,
    };
    let mut pos = inner.location().map(|l| position::Pos {
        line: l.line(),
        col: l.column(),
    });
    // Unknown and duplicate keys are reported at the key itself.
    let key = message
        .strip_prefix("unknown field `")
        .or_else(|| {
            message
                .strip_prefix('`')
                .filter(|_| message.contains("` is defined twice"))
        })
        .and_then(|rest| rest.split('`').next());
    if let Some(name) = key {
        let last_segment = path.rsplit(['.', '[']).next().unwrap_or("");
        let key_path = if last_segment == name {
            path.clone()
        } else {
            child(&path, name)
        };
        if let Some(p) = index.key(&key_path) {
            pos = Some(p);
        }
        path = key_path;
    }
    let message = if message.starts_with("unknown field") {
        format!("{message} (remove it or fix its spelling)")
    } else {
        message
    };
    ConfigErrors::single(file, &path, pos, message)
}

/// Removes serde_yaml's " at line L column C" notes.
fn strip_locations(msg: &str) -> String {
    let mut out = msg.to_string();
    while let Some(start) = out.find(" at line ") {
        let rest = &out[start + " at line ".len()..];
        let Some(col) = rest.find(" column ") else {
            break;
        };
        let digits = rest[col + " column ".len()..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let end = start + " at line ".len() + col + " column ".len() + digits;
        out.replace_range(start..end, "");
    }
    out
}

struct Validator<'a> {
    c: Collector<'a>,
    /// Directory of the configuration file: relative errorfile paths are
    /// read from there.
    base_dir: PathBuf,
    /// Where each stick table was declared, in `Config::tables` order.
    table_sites: Vec<stick::TableSite>,
    /// Each stick table's name, for `table <name>` references.
    table_names: Vec<String>,
    /// The same, once every table is known (for checking fetch arguments).
    known_tables: Option<Vec<String>>,
    /// `global.ssl-provider`, for loading keys and building TLS settings.
    provider: crate::tls::Provider,
    /// What is valid but likely not meant, in the order found: handed to
    /// whoever loads the configuration (`Config::warnings`) to report.
    warnings: Vec<String>,
}

/// Settings from `defaults:` that sections inherit.
struct Defaults {
    errors: crate::model::errors::ErrorPages,
    mode: Mode,
    retries: u32,
    maxconn: Option<u32>,
    balance: Balance,
    timeouts: RawTimeouts,
    options: Vec<(String, String)>,
}

impl<'a> Validator<'a> {
    fn config(&mut self, file: &Path, raw: RawConfig) -> Config {
        let mut global = self.global(&raw.global);
        // A relative control socket path is relative to the file.
        if let Some(p) = global.control_socket.as_mut()
            && p.is_relative()
            && let Some(dir) = file.parent()
        {
            *p = dir.join(&*p);
        }
        let defaults = self.defaults(&raw.defaults);
        let peers = self.peers_sections(&raw.peers);
        let (mut tables, sites) = self.stick_tables(&raw, &peers);
        self.table_names = tables.iter().map(|t| t.name.clone()).collect();
        self.known_tables = Some(self.table_names.clone());
        self.table_sites = sites;
        let backends: Vec<Backend> = raw
            .backends
            .0
            .iter()
            .map(|(name, b)| self.backend(name, b, &defaults))
            .collect();
        if raw.frontends.0.is_empty() {
            self.c.at_key(
                "frontends",
                "no frontends: corral needs at least one frontend to listen on",
            );
        }
        let frontends = raw
            .frontends
            .0
            .iter()
            .map(|(name, f)| self.frontend(name, f, &defaults, &global, &backends))
            .collect::<Vec<_>>();
        self.duplicate_binds(&frontends);
        stick::complete_tables(&mut tables, &backends);
        if global.steer && tables.is_empty() {
            self.warnings.push(
                "global.steer is `source` but no section has a stick-table: steering only helps stick tables"
                    .to_string(),
            );
        }
        Config {
            file: file.to_path_buf(),
            global,
            frontends,
            backends,
            tables,
            peers,
            generation: 0,
            warnings: std::mem::take(&mut self.warnings),
        }
    }

    // ---- sections -------------------------------------------------------

    fn global(&mut self, g: &raw::RawGlobal) -> Global {
        let workers = match &g.workers {
            None => available_cores(),
            Some(Value::String(s)) if s == "auto" => available_cores(),
            Some(v) => self
                .uint(
                    v,
                    "global.workers",
                    1,
                    1024,
                    "`auto` or a number of workers",
                )
                .unwrap_or(1) as usize,
        };
        let maxconn = opt(&g.maxconn, |v| {
            self.uint(v, "global.maxconn", 1, 10_000_000, "a connection count")
        })
        .unwrap_or(50_000) as u32;
        let io_memory = opt(&g.io_memory, |v| {
            self.size(v, "global.io-memory", 64 << 10, 1 << 30)
        })
        .unwrap_or(1 << 20) as usize;
        let hard_stop_after = opt(&g.hard_stop_after, |v| {
            self.duration(v, "global.hard-stop-after")
        })
        .unwrap_or(Duration::from_secs(30));
        let bufsize = opt(&g.bufsize, |v| {
            self.size(v, "global.tune.bufsize", 1 << 10, 1 << 20)
        })
        .unwrap_or(16 << 10) as usize;
        let log = match &g.log {
            Some(v) => self.log_targets(v, "global.log"),
            None => Vec::new(),
        };
        let steer = opt(&g.steer, |v| {
            self.choice(v, "global.steer", &["source", "none"])
        }) == Some("source");
        // `ssl-provider` (aws-lc-rs by default, or ring) is used while
        // validating: it loads the keys and builds the TLS settings.
        if let Some(v) = &g.ssl_provider {
            self.provider = self.ssl_provider(v);
        }
        let stats_sockets = match &g.stats_socket {
            Some(v) => self.stats_sockets(v, "global.stats-socket"),
            None => Vec::new(),
        };
        let control_socket = opt(&g.control_socket, |v| {
            self.string(v, "global.control-socket", "a path for the control socket")
        })
        .and_then(|p| {
            if p.is_empty() || p.contains('\n') {
                self.c.at(
                    "global.control-socket",
                    "an empty path or one with a line break cannot name the control socket",
                );
                return None;
            }
            Some(PathBuf::from(p))
        });
        Global {
            control_socket,
            workers,
            maxconn,
            maxconn_written: g.maxconn.is_some(),
            io_memory,
            hard_stop_after,
            bufsize,
            log,
            steer,
            stats_sockets,
        }
    }

    fn defaults(&mut self, d: &raw::RawDefaults) -> Defaults {
        let mode = opt(&d.mode, |v| self.mode(v, "defaults.mode")).unwrap_or(Mode::Tcp);
        let retries = opt(&d.retries, |v| {
            self.uint(v, "defaults.retries", 0, 1_000_000, "a number of retries")
        })
        .unwrap_or(3) as u32;
        let maxconn = opt(&d.maxconn, |v| {
            self.uint(v, "defaults.maxconn", 1, 10_000_000, "a connection count")
        })
        .map(|n| n as u32);
        let balance =
            opt(&d.balance, |v| self.balance(v, "defaults.balance")).unwrap_or(Balance::RoundRobin);
        let timeouts = d.timeout.clone().unwrap_or_default();
        // Timeouts in defaults are checked where they are used, but a bad
        // value must be reported even if no section uses it.
        self.timeouts_parse(&timeouts, "defaults.timeout");
        let mut all = FRONTEND_OPTIONS.to_vec();
        all.extend_from_slice(BACKEND_OPTIONS);
        let options = match &d.option {
            Some(v) => self.options(v, "defaults.option", &all, "defaults"),
            None => Vec::new(),
        };
        let errors = match &d.errorfiles {
            Some(v) => self.errorfiles(v, "defaults.errorfiles"),
            None => Default::default(),
        };
        Defaults {
            errors,
            mode,
            retries,
            maxconn,
            balance,
            timeouts,
            options,
        }
    }

    fn frontend(
        &mut self,
        name: &str,
        f: &RawFrontend,
        d: &Defaults,
        global: &Global,
        backends: &[Backend],
    ) -> Frontend {
        let base = child("frontends", name);
        let p = |k: &str| child(&base, k);
        self.name(name, &base);
        let binds = match &f.bind {
            None => {
                self.c.at_key(
                    &base,
                    "missing `bind`: a frontend needs at least one address to listen on, e.g. `bind: [\"0.0.0.0:80\"]`",
                );
                Vec::new()
            }
            Some(v) => self
                .strings(v, &p("bind"))
                .into_iter()
                .filter_map(|(text, path)| {
                    match tls::bind_words(&text)
                        .and_then(|(a, ssl)| parse_bind(a).map(|addr| (addr, ssl)))
                    {
                        Ok((addr, tls)) => Some(Bind { text, addr, tls }),
                        Err(msg) => {
                            self.c.at(&path, msg);
                            None
                        }
                    }
                })
                .collect(),
        };
        if matches!(&f.bind, Some(Value::Sequence(s)) if s.is_empty()) {
            self.c.at(
                &p("bind"),
                "empty list: a frontend needs at least one address",
            );
        }
        let mode = opt(&f.mode, |v| self.mode(v, &p("mode"))).unwrap_or(d.mode);
        let tls = opt(&f.tls, |v| self.frontend_tls(v, &p("tls"), self.provider));
        let mut binds = binds;
        self.tls_binds(&base, &mut binds, f.tls.is_some());
        let maxconn = opt(&f.maxconn, |v| {
            self.uint(v, &p("maxconn"), 1, 10_000_000, "a connection count")
        })
        .map(|n| n as u32)
        .or(d.maxconn)
        .unwrap_or(global.maxconn);
        let default_backend = match &f.default_backend {
            None => {
                if mode == Mode::Tcp && f.use_backend.is_none() {
                    self.c.at_key(
                        &base,
                        "missing `default_backend`: name the backend this frontend sends its connections to (or route them with `use_backend`)",
                    );
                }
                None
            }
            Some(v) => self
                .string(v, &p("default_backend"), "a backend name")
                .and_then(|bname| self.backend_ref(&bname, &p("default_backend"), backends)),
        };
        if let Some(b) = default_backend.map(|i| &backends[i])
            && b.mode != mode
        {
            self.c.at(
                    &p("default_backend"),
                    format!(
                        "frontend `{name}` is mode {} but backend `{}` is mode {}: modes must match (set `mode` on one of them)",
                        mode.name(),
                        b.name,
                        b.mode.name()
                    ),
                );
        }
        if let Some(t) = &f.timeout {
            for (key, val) in [
                ("connect", &t.connect),
                ("server", &t.server),
                ("queue", &t.queue),
                ("check", &t.check),
                ("tunnel", &t.tunnel),
            ] {
                if val.is_some() {
                    self.c.at_key(
                        &child(&p("timeout"), key),
                        format!(
                            "`timeout.{key}` applies to servers: set it in a backend or in defaults"
                        ),
                    );
                }
            }
        }
        let timeout_client = self
            .timeout(f.timeout.as_ref(), &d.timeouts, &base, "client")
            .unwrap_or(Duration::from_secs(50));
        let mut options = d.options.clone();
        if let Some(v) = &f.option {
            options.extend(self.options(v, &p("option"), FRONTEND_OPTIONS, "frontend"));
        }
        let log = match &f.log {
            Some(v) => self.log_targets(v, &p("log")),
            None => global.log.clone(),
        };
        let table = self.own_table(false, name);
        let http = match mode {
            Mode::Http => Some(self.http_frontend(&base, f, d, &options, timeout_client, table)),
            Mode::Tcp => {
                self.http_keys_need_http_mode(&base, &http::frontend_keys(f));
                None
            }
        };
        let tcp_acls = match &http {
            Some(h) => h.acls.clone(),
            None => self.acls(f.acl.as_ref(), &p("acl")),
        };
        let names = std::mem::take(&mut self.table_names);
        let refs = crate::rules::stick::TableRefs {
            names: &names,
            own: table,
        };
        let (tcp_rules, inspect_delay) =
            self.tcp_rules(f.tcp_request.as_ref(), &p("tcp-request"), &tcp_acls, &refs);
        self.table_names = names;
        if let Some((_, path)) = inspect_delay.as_ref().filter(|_| mode == Mode::Http) {
            self.c.at(
                path,
                "`tcp-request inspect-delay` applies to mode tcp frontends: in http mode content rules run at accept and the request head is awaited by `timeout.http-request` (remove it, or use `http-request` rules)",
            );
        }
        let use_backend = self.use_backends(
            f.use_backend.as_ref(),
            &p("use_backend"),
            &tcp_acls,
            backends,
            mode,
        );
        if mode == Mode::Tcp
            && inspect_delay.is_none()
            && [&f.use_backend, &f.tcp_request, &f.acl]
                .into_iter()
                .any(|v| v.as_ref().is_some_and(reads_payload))
        {
            self.warnings.push(format!(
                "{base}: `req.len` and `req.ssl_*` read the client's first bytes, which only `tcp-request inspect-delay` waits for: without it they have no value (add e.g. `inspect-delay 5s` to `tcp-request`)"
            ));
        }
        Frontend {
            name: name.to_string(),
            binds,
            mode,
            maxconn,
            default_backend,
            use_backend,
            timeout_client,
            log,
            dontlognull: options.iter().any(|(o, _)| option_name(o) == "dontlognull"),
            http,
            tcp_rules,
            // A zero delay waits for nothing: the same as none.
            inspect_delay: inspect_delay.map(|(d, _)| d).filter(|d| !d.is_zero()),
            table,
            httpslog: options.iter().any(|(o, _)| option_name(o) == "httpslog"),
            tls,
        }
    }

    /// `use_backend: [ "name if condition" ]`: each names a backend of the
    /// frontend's mode.
    fn use_backends(
        &mut self,
        v: Option<&Value>,
        path: &str,
        acls: &crate::acl::AclSet,
        backends: &[Backend],
        mode: Mode,
    ) -> Vec<UseBackend> {
        let Some(v) = v else { return Vec::new() };
        let mut out = Vec::new();
        for (text, p) in self.strings(v, path) {
            let (name_part, cond_part) = crate::acl::split_condition(&text);
            let words: Vec<&str> = name_part.split_whitespace().collect();
            let name_at = text.len() - text.trim_start().len();
            let [name] = words.as_slice() else {
                self.c.at_offset(
                    &p,
                    &text,
                    name_at,
                    "expected `BACKEND [if|unless CONDITION]`",
                );
                continue;
            };
            let cond = match cond_part {
                None => None,
                Some((cond_text, at)) => match crate::acl::Condition::parse(cond_text, acls) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        self.c.at_offset(&p, &text, at + e.offset, e.message);
                        continue;
                    }
                },
            };
            match backends.iter().position(|b| b.name == *name) {
                None => {
                    let known: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
                    self.c.at_offset(
                        &p,
                        &text,
                        name_at,
                        format!(
                            "no backend named `{name}` (defined backends: {})",
                            known.join(", ")
                        ),
                    );
                }
                Some(i) if backends[i].mode != mode => self.c.at_offset(
                    &p,
                    &text,
                    name_at,
                    format!(
                        "backend `{name}` is mode {}: a {} frontend can only use {} backends (set `mode` on one of them)",
                        backends[i].mode.name(),
                        mode.name(),
                        mode.name()
                    ),
                ),
                Some(i) => out.push(UseBackend { backend: i, cond }),
            }
        }
        out
    }

    fn backend(&mut self, name: &str, b: &RawBackend, d: &Defaults) -> Backend {
        let base = child("backends", name);
        let p = |k: &str| child(&base, k);
        self.name(name, &base);
        let mode = opt(&b.mode, |v| self.mode(v, &p("mode"))).unwrap_or(d.mode);
        let balance = opt(&b.balance, |v| self.balance(v, &p("balance"))).unwrap_or(d.balance);
        let retries = opt(&b.retries, |v| {
            self.uint(v, &p("retries"), 0, 1_000_000, "a number of retries")
        })
        .map(|n| n as u32)
        .unwrap_or(d.retries);
        let mut options = d.options.clone();
        if let Some(v) = &b.option {
            options.extend(self.options(v, &p("option"), BACKEND_OPTIONS, "backend"));
        }
        if let Some(t) = &b.timeout {
            for (key, val) in [
                ("client", &t.client),
                ("http-request", &t.http_request),
                ("http-keep-alive", &t.http_keep_alive),
            ] {
                if val.is_some() {
                    self.c.at_key(
                        &p(&format!("timeout.{key}")),
                        format!("`timeout.{key}` applies to clients: set it in a frontend or in defaults"),
                    );
                }
            }
        }
        let own = b.timeout.as_ref();
        let timeout_connect = self
            .timeout(own, &d.timeouts, &base, "connect")
            .unwrap_or(Duration::from_secs(5));
        let timeout_server = self
            .timeout(own, &d.timeouts, &base, "server")
            .unwrap_or(Duration::from_secs(50));
        let timeout_queue = self
            .timeout(own, &d.timeouts, &base, "queue")
            .unwrap_or(timeout_connect);
        let timeout_check = self.timeout(own, &d.timeouts, &base, "check");
        let servers = b
            .servers
            .0
            .iter()
            .map(|(sname, s)| self.server(sname, s, &p("servers"), timeout_check))
            .collect();
        let table = self.own_table(true, name);
        let http = match mode {
            Mode::Http => Some(self.http_backend(&base, b, d, &options, timeout_server, table)),
            Mode::Tcp => {
                self.http_keys_need_http_mode(&base, &http::backend_keys(b));
                None
            }
        };
        let acls = match &http {
            Some(h) => h.acls.clone(),
            None => self.acls(b.acl.as_ref(), &p("acl")),
        };
        let names = std::mem::take(&mut self.table_names);
        let refs = crate::rules::stick::TableRefs {
            names: &names,
            own: table,
        };
        let stick = self.stick_rules(b.stick.as_ref(), &p("stick"), &acls, &refs);
        self.table_names = names;
        Backend {
            name: name.to_string(),
            mode,
            balance,
            retries,
            allbackups: options.iter().any(|(o, _)| option_name(o) == "allbackups"),
            timeout_connect,
            timeout_server,
            timeout_queue,
            servers,
            http,
            table,
            stick,
        }
    }

    fn server(
        &mut self,
        name: &str,
        s: &RawServer,
        servers_path: &str,
        timeout_check: Option<Duration>,
    ) -> Server {
        let base = child(servers_path, name);
        let p = |k: &str| child(&base, k);
        self.name(name, &base);
        let placeholder = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let (address, addr) = match &s.address {
            None => {
                self.c.at_key(
                    &base,
                    "missing `address`: write the server's `host:port`, e.g. `10.0.0.11:3306`",
                );
                (String::new(), placeholder)
            }
            Some(v) => match self.string(v, &p("address"), "`host:port`") {
                None => (String::new(), placeholder),
                Some(text) => match resolve_server(&text) {
                    Ok(a) => (text, a),
                    Err(msg) => {
                        self.c.at(&p("address"), msg);
                        (text, placeholder)
                    }
                },
            },
        };
        let weight = opt(&s.weight, |v| {
            self.uint(v, &p("weight"), 0, 256, "a weight")
        })
        .unwrap_or(1) as u32;
        let maxconn = opt(&s.maxconn, |v| {
            self.uint(
                v,
                &p("maxconn"),
                0,
                10_000_000,
                "a connection count (0: no limit)",
            )
        })
        .and_then(|n| (n > 0).then_some(n as u32));
        let backup = opt(&s.backup, |v| self.boolean(v, &p("backup"))).unwrap_or(false);
        let check = match &s.check {
            None => None,
            Some(v) => self.check(v, &p("check"), addr, timeout_check),
        };
        let pool_max_conn = opt(&s.pool_max_conn, |v| {
            self.uint(v, &p("pool-max-conn"), 0, 100_000, "a connection count")
        })
        .unwrap_or(64) as usize;
        let pool_purge_delay = opt(&s.pool_purge_delay, |v| {
            self.duration(v, &p("pool-purge-delay"))
        })
        .unwrap_or(Duration::from_secs(4));
        let tls = opt(&s.tls, |v| self.server_tls(v, &p("tls"), self.provider));
        Server {
            name: name.to_string(),
            address,
            addr,
            weight,
            maxconn,
            backup,
            check,
            pool_max_conn,
            pool_purge_delay,
            tls,
        }
    }

    fn check(
        &mut self,
        v: &Value,
        path: &str,
        server: SocketAddr,
        timeout_check: Option<Duration>,
    ) -> Option<Check> {
        let mut check = Check {
            addr: server,
            inter: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            timeout: Duration::ZERO,
            kind: CheckKind::Tcp,
        };
        match v {
            Value::Bool(false) => return None,
            Value::Bool(true) => {}
            Value::Mapping(m) => {
                let p = |k: &str| child(path, k);
                for (k, val) in m {
                    let key = k.as_str().unwrap_or("?");
                    match key {
                        "port" => {
                            if let Some(port) = self.uint(val, &p("port"), 1, 65535, "a port") {
                                check.addr.set_port(port as u16);
                            }
                        }
                        "inter" => {
                            if let Some(d) = self.duration(val, &p("inter")) {
                                check.inter = d;
                            }
                        }
                        "rise" => {
                            if let Some(n) = self.uint(val, &p("rise"), 1, 1000, "a count") {
                                check.rise = n as u32;
                            }
                        }
                        "fall" => {
                            if let Some(n) = self.uint(val, &p("fall"), 1, 1000, "a count") {
                                check.fall = n as u32;
                            }
                        }
                        "http" => check.kind = self.http_check(val, &p("http")),
                        other => self.c.at_key(
                            &p(other),
                            format!(
                                "unknown key `{other}` (valid keys: port, inter, rise, fall, http)"
                            ),
                        ),
                    }
                }
            }
            _ => {
                self.c.at(
                    path,
                    "expected `true`, `false` or a map such as `{ port: 8080, inter: 2s, rise: 2, fall: 3 }`",
                );
                return None;
            }
        }
        if check.inter.is_zero() {
            self.c.at(&child(path, "inter"), "must be greater than 0");
        }
        check.timeout = timeout_check.unwrap_or(check.inter);
        if check.timeout.is_zero() {
            check.timeout = Duration::from_secs(2);
        }
        Some(check)
    }

    fn http_check(&mut self, v: &Value, path: &str) -> CheckKind {
        let mut method = "GET".to_string();
        let mut hpath = "/".to_string();
        let mut host = None;
        let mut expect = StatusMatch(vec![(200, 399)]);
        match v {
            Value::Bool(true) => {}
            Value::Mapping(m) => {
                for (k, val) in m {
                    let key = k.as_str().unwrap_or("?");
                    let kp = child(path, key);
                    match key {
                        "method" => {
                            if let Some(s) = self.string(val, &kp, "an HTTP method such as GET") {
                                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_uppercase()) {
                                    self.c.at(&kp, format!("`{s}` is not an HTTP method (expected e.g. GET, HEAD, OPTIONS)"));
                                }
                                method = s;
                            }
                        }
                        "path" => {
                            if let Some(s) = self.string(val, &kp, "a path starting with /") {
                                if !s.starts_with('/') || s.bytes().any(|b| b <= b' ') {
                                    self.c.at(
                                        &kp,
                                        format!(
                                            "`{s}` is not a request path (expected e.g. /health)"
                                        ),
                                    );
                                }
                                hpath = s;
                            }
                        }
                        "host" => host = self.string(val, &kp, "a Host header value"),
                        "expect" => {
                            if let Some(e) = self.status_match(val, &kp) {
                                expect = e;
                            }
                        }
                        other => self.c.at_key(
                            &kp,
                            format!(
                                "unknown key `{other}` (valid keys: method, path, host, expect)"
                            ),
                        ),
                    }
                }
            }
            _ => self.c.at(
                path,
                "expected a map such as `{ method: GET, path: /health, expect: 200 }`",
            ),
        }
        CheckKind::Http {
            method,
            path: hpath,
            host,
            expect,
        }
    }

    fn status_match(&mut self, v: &Value, path: &str) -> Option<StatusMatch> {
        let items: Vec<(Value, String)> = match v {
            Value::Sequence(s) => s
                .iter()
                .enumerate()
                .map(|(i, x)| (x.clone(), item(path, i)))
                .collect(),
            other => vec![(other.clone(), path.to_string())],
        };
        let mut ranges = Vec::new();
        for (x, p) in items {
            let text = match &x {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => String::new(),
            };
            match parse_status_range(&text) {
                Some(r) => ranges.push(r),
                None => self.c.at(
                    &p,
                    format!("`{text}` is not a status: expected a status (200), a range (\"200-399\"), a class (\"2xx\") or a list of them"),
                ),
            }
        }
        (!ranges.is_empty()).then_some(StatusMatch(ranges))
    }

    // ---- cross-references -------------------------------------------------

    fn backend_ref(&mut self, name: &str, path: &str, backends: &[Backend]) -> Option<usize> {
        let found = backends.iter().position(|b| b.name == name);
        if found.is_none() {
            let known: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
            let list = if known.is_empty() {
                "no backends are defined".to_string()
            } else {
                format!("defined backends: {}", known.join(", "))
            };
            self.c
                .at(path, format!("no backend named `{name}` ({list})"));
        }
        found
    }

    fn duplicate_binds(&mut self, frontends: &[Frontend]) {
        let mut seen: Vec<(SocketAddr, String)> = Vec::new();
        for f in frontends {
            for (i, b) in f.binds.iter().enumerate() {
                let path = item(&child(&child("frontends", &f.name), "bind"), i);
                if b.addr.port() != 0
                    && let Some((_, other)) = seen.iter().find(|(a, _)| binds_overlap(*a, b.addr))
                {
                    self.c.at(
                            &path,
                            format!("`{}` is already bound by {other}: each address and port may be bound once", b.text),
                        );
                    continue;
                }
                seen.push((b.addr, path));
            }
        }
    }

    // ---- scalar helpers ---------------------------------------------------

    fn name(&mut self, name: &str, path: &str) {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !ok {
            self.c.at_key(
                path,
                format!("`{name}` is not a valid name: use letters, digits, `-`, `_`, `.` and `:`"),
            );
        }
    }

    fn mode(&mut self, v: &Value, path: &str) -> Option<Mode> {
        match self.choice(v, path, &["tcp", "http"])? {
            "tcp" => Some(Mode::Tcp),
            _ => Some(Mode::Http),
        }
    }

    fn balance(&mut self, v: &Value, path: &str) -> Option<Balance> {
        Some(
            match self.choice(v, path, &["roundrobin", "leastconn", "source", "first"])? {
                "roundrobin" => Balance::RoundRobin,
                "leastconn" => Balance::LeastConn,
                "source" => Balance::Source,
                _ => Balance::First,
            },
        )
    }

    fn choice<'c>(&mut self, v: &Value, path: &str, choices: &[&'c str]) -> Option<&'c str> {
        let valid = choices.join(", ");
        let s = self.string(v, path, &format!("one of {valid}"))?;
        let found = choices.iter().find(|c| **c == s).copied();
        if found.is_none() {
            self.c.at(
                path,
                format!("`{s}` is not valid here (expected one of: {valid})"),
            );
        }
        found
    }

    /// `option` lists: each entry is an option name, possibly followed by
    /// its arguments. Returns (text, path) of the valid ones.
    fn options(
        &mut self,
        v: &Value,
        path: &str,
        valid: &[&str],
        section: &str,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (text, p) in self.strings(v, path) {
            let name = option_name(&text);
            let has_args = text.split_whitespace().nth(1).is_some();
            if valid.contains(&name) {
                if has_args && !OPTIONS_WITH_ARGS.contains(&name) {
                    self.c.at(&p, format!("option `{name}` takes no arguments"));
                } else {
                    out.push((text.clone(), p));
                }
            } else if FRONTEND_OPTIONS.contains(&name) || BACKEND_OPTIONS.contains(&name) {
                let belongs = if FRONTEND_OPTIONS.contains(&name) {
                    "a frontend"
                } else {
                    "a backend"
                };
                self.c.at(
                    &p,
                    format!("option `{name}` does not apply to a {section}: set it in {belongs} or in defaults"),
                );
            } else {
                self.c.at(
                    &p,
                    format!("unknown option `{name}` (valid here: {})", valid.join(", ")),
                );
            }
        }
        out
    }

    /// A timeout from a section's own `timeout` map or, failing that, from
    /// `defaults.timeout`. A bad value written in the section is reported
    /// here; a bad default was already reported once by `timeouts_parse`.
    fn timeout(
        &mut self,
        own: Option<&RawTimeouts>,
        defaults: &RawTimeouts,
        section: &str,
        key: &str,
    ) -> Option<Duration> {
        if let Some(v) = own.and_then(|t| timeout_field(t, key)) {
            return self.duration(v, &child(&child(section, "timeout"), key));
        }
        timeout_field(defaults, key).and_then(|v| duration_value(v).ok())
    }

    fn timeouts_parse(&mut self, t: &RawTimeouts, path: &str) {
        for key in [
            "connect",
            "client",
            "server",
            "queue",
            "check",
            "http-request",
            "http-keep-alive",
            "tunnel",
        ] {
            if let Some(v) = timeout_field(t, key) {
                self.duration(v, &child(path, key));
            }
        }
    }

    fn duration(&mut self, v: &Value, path: &str) -> Option<Duration> {
        duration_value(v).map_err(|msg| self.c.at(path, msg)).ok()
    }

    fn uint(&mut self, v: &Value, path: &str, min: u64, max: u64, what: &str) -> Option<u64> {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.c.at(
                    path,
                    format!("{n} is out of range: expected {what} from {min} to {max}"),
                );
                None
            }
            None => {
                self.c
                    .at(path, format!("`{}` is not valid: expected {what}", show(v)));
                None
            }
        }
    }

    fn size(&mut self, v: &Value, path: &str, min: u64, max: u64) -> Option<u64> {
        let parsed = match v {
            Value::Number(n) => n.as_u64().ok_or_else(|| "expected a size".to_string()),
            Value::String(s) => parse_size(s),
            _ => Err("expected a size such as `16k` or `1m`".to_string()),
        };
        match parsed {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.c.at(
                    path,
                    format!("{n} bytes is out of range: expected from {min} to {max} bytes"),
                );
                None
            }
            Err(msg) => {
                self.c.at(path, msg);
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.c.at(
                    path,
                    format!("`{}` is not valid: expected true or false", show(v)),
                );
                None
            }
        }
    }

    fn string(&mut self, v: &Value, path: &str, what: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                self.c
                    .at(path, format!("`{}` is not valid: expected {what}", show(v)));
                None
            }
        }
    }

    /// One string or a list of strings, each with its own path. Stick
    /// counter fetches in them (`sc_conn_cur(0,NAME)`, `src_*(NAME)`) must
    /// name a table that exists.
    fn strings(&mut self, v: &Value, path: &str) -> Vec<(String, String)> {
        let out = self.strings_only(v, path);
        for (text, p) in &out {
            self.check_table_args(text, p);
        }
        out
    }

    /// Reports a stick-counter fetch whose `table` argument names no table.
    fn check_table_args(&mut self, text: &str, path: &str) {
        static FETCH: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let Some(known) = &self.known_tables else {
            return; // tables themselves are being read
        };
        let re = FETCH.get_or_init(|| {
            regex::Regex::new(r"\b((?:sc[0-2]?|src)_[a-z0-9_]+)\(([^)]*)\)").expect("valid regex")
        });
        let mut problems = Vec::new();
        for cap in re.captures_iter(text) {
            let Some((scope, _)) = crate::model::table::Query::parse_name(&cap[1]) else {
                continue;
            };
            let args = cap.get(2).expect("group 2 always matches");
            let index = usize::from(scope == crate::model::table::Scope::Sc(u8::MAX));
            let mut at = args.start();
            for (i, arg) in args.as_str().split(',').enumerate() {
                let name = arg.trim();
                if i == index && !name.is_empty() && !known.iter().any(|k| k == name) {
                    let lead = arg.len() - arg.trim_start().len();
                    problems.push((
                        at + lead,
                        format!(
                            "no stick table named `{name}` in `{}` ({})",
                            &cap[0],
                            if known.is_empty() {
                                "no section declares a stick-table".to_string()
                            } else {
                                format!("tables: {}", known.join(", "))
                            }
                        ),
                    ));
                }
                at += arg.len() + 1;
            }
        }
        for (at, msg) in problems {
            self.c.at_offset(path, text, at, msg);
        }
    }

    fn strings_only(&mut self, v: &Value, path: &str) -> Vec<(String, String)> {
        match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, x)| {
                    let p = item(path, i);
                    self.string(x, &p, "a string").map(|s| (s, p))
                })
                .collect(),
            other => self
                .string(other, path, "a string or a list of strings")
                .map(|s| vec![(s, path.to_string())])
                .unwrap_or_default(),
        }
    }
}

fn duration_value(v: &Value) -> Result<Duration, String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(Duration::from_millis)
            .ok_or_else(|| format!("`{n}` is not a duration: expected e.g. `5s` or `500ms`")),
        Value::String(s) => parse_duration(s),
        other => Err(format!(
            "`{}` is not a duration: expected e.g. `5s` or `500ms`",
            show(other)
        )),
    }
}

/// Whether a value (a rule, a list of them, ACL definitions) names a fetch
/// of the client's first bytes.
fn reads_payload(v: &Value) -> bool {
    static PAYLOAD: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = PAYLOAD.get_or_init(|| {
        regex::Regex::new(r"\breq[._](?:len|ssl_(?:hello_type|sni|ver|alpn))\b")
            .expect("valid regex")
    });
    match v {
        Value::String(s) => re.is_match(s),
        Value::Sequence(items) => items.iter().any(reads_payload),
        Value::Mapping(m) => m.values().any(reads_payload),
        _ => false,
    }
}

fn timeout_field<'t>(t: &'t RawTimeouts, key: &str) -> Option<&'t Value> {
    match key {
        "connect" => t.connect.as_ref(),
        "client" => t.client.as_ref(),
        "server" => t.server.as_ref(),
        "queue" => t.queue.as_ref(),
        "check" => t.check.as_ref(),
        "http-request" => t.http_request.as_ref(),
        "http-keep-alive" => t.http_keep_alive.as_ref(),
        "tunnel" => t.tunnel.as_ref(),
        _ => None,
    }
}

fn opt<T>(v: &Option<Value>, f: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
    v.as_ref().and_then(f)
}

/// A short rendering of a YAML value for messages.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        Value::Tagged(t) => format!("!{}", t.tag),
    }
}

fn available_cores() -> usize {
    core_affinity::get_core_ids()
        .map(|c| c.len())
        .unwrap_or(1)
        .max(1)
}

/// `200`, `"200-399"`, `"2xx"`.
fn parse_status_range(text: &str) -> Option<(u16, u16)> {
    let valid = |n: u16| (100..=599).contains(&n);
    let t = text.trim();
    if let Some(class) = t.strip_suffix("xx") {
        let c: u16 = class.parse().ok()?;
        return (1..=5).contains(&c).then_some((c * 100, c * 100 + 99));
    }
    if let Some((a, b)) = t.split_once('-') {
        let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        return (valid(a) && valid(b) && a <= b).then_some((a, b));
    }
    let n: u16 = t.parse().ok()?;
    valid(n).then_some((n, n))
}

/// A listening address: `ip:port`, `*:port`, `:port`, `[v6]:port`, or a
/// host name that resolves.
pub(super) fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let hint = "expected `ip:port`, e.g. `0.0.0.0:80`, `*:80`, `127.0.0.1:8080` or `[::]:443`";
    let (host, port) = split_host_port(t).ok_or_else(|| format!("`{text}` has no port: {hint}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port (0 to 65535) in `{text}`: {hint}"))?;
    let ip = match host {
        "" | "*" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "::" => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        h => match h.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => (h, port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| a.ip())
                .ok_or_else(|| format!("cannot resolve `{h}` in `{text}`: {hint}"))?,
        },
    };
    Ok(SocketAddr::new(ip, port))
}

/// A server address: `ip:port` or `host:port`, resolved now.
fn resolve_server(text: &str) -> Result<SocketAddr, String> {
    let hint = "expected `host:port`, e.g. `10.0.0.11:3306` or `db2.internal:3306`";
    let (host, port) =
        split_host_port(text.trim()).ok_or_else(|| format!("`{text}` has no port: {hint}"))?;
    let port: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(format!(
                "`{port}` is not a port (1 to 65535) in `{text}`: {hint}"
            ));
        }
    };
    if host.is_empty() || host == "*" {
        return Err(format!("`{text}` has no host: {hint}"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if ip.is_unspecified() {
            return Err(format!(
                "`{text}`: a server cannot be at the unspecified address {ip}: {hint}"
            ));
        }
        return Ok(SocketAddr::new(ip, port));
    }
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("host `{host}` resolved to no address")),
        Err(e) => Err(format!(
            "cannot resolve host `{host}` ({e}): check its spelling, DNS or /etc/hosts, or write an IP address"
        )),
    }
}

/// Splits `host:port`, `[v6]:port`.
fn split_host_port(t: &str) -> Option<(&str, &str)> {
    if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = t.rsplit_once(':')?;
    if host.contains(':') {
        return None; // a bare IPv6 address needs brackets
    }
    Some((host, port))
}

/// Whether two listening addresses would collide.
fn binds_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_spellings() {
        assert_eq!(parse_bind("*:80").unwrap(), "0.0.0.0:80".parse().unwrap());
        assert_eq!(parse_bind(":80").unwrap(), "0.0.0.0:80".parse().unwrap());
        assert_eq!(parse_bind("[::]:443").unwrap(), "[::]:443".parse().unwrap());
        assert_eq!(
            parse_bind("127.0.0.1:0").unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        assert!(parse_bind("80").unwrap_err().contains("has no port"));
        assert!(
            parse_bind("1.2.3.4:99999")
                .unwrap_err()
                .contains("is not a port")
        );
    }

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status_range("200"), Some((200, 200)));
        assert_eq!(parse_status_range("200-399"), Some((200, 399)));
        assert_eq!(parse_status_range("2xx"), Some((200, 299)));
        assert_eq!(parse_status_range("99"), None);
        assert_eq!(parse_status_range("300-200"), None);
    }

    #[test]
    fn overlapping_binds() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(binds_overlap(a("0.0.0.0:80"), a("127.0.0.1:80")));
        assert!(!binds_overlap(a("127.0.0.2:80"), a("127.0.0.1:80")));
        assert!(!binds_overlap(a("0.0.0.0:80"), a("0.0.0.0:81")));
    }
}
