//! Configuration: YAML whose key names follow HAProxy's directives.
//!
//! Loading goes raw → typed in one pass: `raw` mirrors the file and denies
//! unknown keys, `validate` turns it into the types below and collects
//! every error with its file, line, column and key path. A process never
//! starts on a configuration that did not fully validate.
//!
//! The doc comment of each field is the configuration reference: its key,
//! what it does and its default.
//!
//! Must not touch: any runtime module. Validation prints nothing and
//! starts nothing; the types it needs come from `rules`, `tls`, `acl`, `model`
//! and `base`.

mod error;
pub(crate) mod position;
mod raw;
mod validate;

pub(crate) use error::ConfigErrors;
/// Also used by `import-haproxy` to check `log` lines before writing them.
pub(crate) use validate::parse_log_target;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fully validated configuration.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The file it came from (for messages).
    pub file: PathBuf,
    pub global: Global,
    pub frontends: Vec<Frontend>,
    pub backends: Vec<Backend>,
    /// Every `stick-table:`, named after its section.
    pub tables: Vec<StickTable>,
    /// `peers:` sections.
    pub peers: Vec<PeersSection>,
    /// The master's number for the generation running this configuration
    /// (0: no master, 1: the first). Not from the file: the engine sets it
    /// at start-up. A later generation takes over sockets the one it
    /// replaces still holds (the runtime API's).
    pub generation: u64,
    /// What validation found valid but likely not meant (e.g. a target
    /// that receives no connection logs). Validation prints nothing:
    /// whoever loads the configuration reports these.
    pub warnings: Vec<String>,
}

/// A stick table.
#[derive(Debug, Clone)]
pub(crate) struct StickTable {
    /// The section's name: what `table <name>` and peers call it.
    pub name: String,
    /// `type`: `ip` (default), `ipv6`, `integer`, `string` (`len`, default 32).
    pub key_type: crate::model::table::KeyType,
    /// `size`: the most entries (k/m suffixes); the least recently used
    /// entry makes room for a new one.
    pub size: usize,
    /// `expire`: an entry not touched for this long is removed (default:
    /// never, i.e. 100 years).
    pub expire: Duration,
    /// `store`: the data types kept (`server_id` is added when `stick`
    /// rules use the table).
    pub layout: crate::model::table::Layout,
    /// `peers`: index into `Config::peers` of the section that replicates it.
    pub peers: Option<usize>,
}

/// `peers.NAME:` nodes replicating stick tables with each other.
#[derive(Debug, Clone)]
pub(crate) struct PeersSection {
    pub name: String,
    /// `local`: this node's name in `peer` (default: the host name;
    /// `corral run --peer-name` overrides).
    pub local: Option<String>,
    /// `peer: { name: "address:port" }`, including this node.
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub name: String,
    /// As written, for messages.
    pub text: String,
    pub addr: SocketAddr,
}

/// `global:` process-wide settings.
#[derive(Debug, Clone)]
pub(crate) struct Global {
    /// `workers: auto | N`: one glommio executor per worker, each pinned to
    /// its own core. `auto` (default) is one per core this process may use.
    pub workers: usize,
    /// `maxconn`: the most client connections open at once across all
    /// workers (default 50000, lowered to what the open-files limit allows
    /// when not written). Each worker takes an equal share; beyond it a
    /// worker stops accepting and connections wait in the kernel backlog.
    pub maxconn: u32,
    /// Whether `maxconn` was written (a written value is never lowered).
    pub maxconn_written: bool,
    /// `io-memory`: memory each executor registers with io_uring (default
    /// `1m`). It is locked memory: it must fit `ulimit -l`.
    pub io_memory: usize,
    /// `hard-stop-after`: on SIGTERM/SIGINT, or on the previous generation
    /// after a reload, how long open connections may take to finish before
    /// they are closed (default 30s).
    pub hard_stop_after: Duration,
    /// `tune.bufsize`: size of each relay buffer (default 16k, as HAProxy).
    pub bufsize: usize,
    /// `log`: where connection logs go, one target or a list: `stdout`,
    /// `stderr`, `file /path/to/file`, a unix datagram socket (`/dev/log`)
    /// or a UDP syslog server (`127.0.0.1:514`), each optionally with
    /// `len`, `format`, a facility and levels as in HAProxy (default:
    /// nowhere).
    pub log: Vec<LogTarget>,
    /// `steer: source`: a BPF program on each listening port sends a
    /// client's connections to the worker that owns its address's
    /// stick-table entries (default `none`: the kernel spreads them).
    pub steer: bool,
    /// `stats-socket`: where the runtime API listens, one string or a list
    /// (`"/run/corral/admin.sock mode 600 level admin"`,
    /// `"127.0.0.1:9999 level operator"`). Default: nowhere.
    pub stats_sockets: Vec<StatsSocket>,
    /// `control-socket`: where `corral run` listens for `corral reload`
    /// (a path, relative to this file if relative). `--control` overrides
    /// it; the default is `$RUNTIME_DIRECTORY/corral.sock` under systemd,
    /// `/run/corral/corral.sock` for root, `$XDG_RUNTIME_DIR/corral.sock`
    /// otherwise.
    pub control_socket: Option<PathBuf>,
}

/// One `global.stats-socket` line: `ADDRESS [mode OCTAL] [user NAME|ID]
/// [group NAME|ID] [level user|operator|admin]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatsSocket {
    /// As written, for messages.
    pub text: String,
    pub addr: ApiAddr,
    /// `mode`: permissions of a unix socket (default 600).
    pub mode: u32,
    /// `user`/`group`: owner of a unix socket (default: the process's).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `level`: what commands may do (default `operator`, as HAProxy).
    pub level: ApiLevel,
}

/// Where a runtime API socket listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiAddr {
    /// A unix socket path (`/run/corral.sock`, `unix@/run/corral.sock`).
    Unix(PathBuf),
    /// A TCP address on loopback only (`127.0.0.1:9999`, `ipv4@...`,
    /// `[::1]:9999`); port 0 picks a free port (printed at start).
    Tcp(SocketAddr),
}

impl std::fmt::Display for ApiAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            ApiAddr::Unix(p) => write!(f, "{}", p.display()),
            ApiAddr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// `level` of a runtime API socket, as in HAProxy: each level may do what
/// the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ApiLevel {
    /// Reads (`show ...`, `help`); no change.
    User,
    /// Adds `show sess`, `clear table`, `enable/disable server` and `set
    /// server ... state|weight`.
    Operator,
    /// Adds `set server ... addr`.
    Admin,
}

impl ApiLevel {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ApiLevel::User => "user",
            ApiLevel::Operator => "operator",
            ApiLevel::Admin => "admin",
        }
    }
}

/// A place connection logs are written to, and how
/// (`127.0.0.1:514 len 2048 format rfc5424 local0 info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogTarget {
    pub dest: LogDest,
    /// `format`: the header before each line (default `raw` for stdout,
    /// stderr and files, `rfc3164` for syslog sockets).
    pub format: LogFormat,
    /// The syslog facility's number (`kern` 0 ... `local7` 23; default
    /// `local0`, 16).
    pub facility: u8,
    /// The least important level sent (0 `emerg` ... 7 `debug`; default
    /// 7): connection logs are `info` (6), so a target at `notice` or
    /// above receives none.
    pub level: u8,
    /// Messages more important than this level are sent at it (default
    /// 0 `emerg`: unchanged).
    pub min_level: u8,
    /// `len`: longest message sent, header and newline included (80 to
    /// 65535; default 1024 for syslog sockets, unlimited otherwise).
    pub max_len: Option<usize>,
}

impl LogTarget {
    /// The syslog level of connection logs, as in HAProxy.
    pub(crate) const CONNECTION_LEVEL: u8 = 6;

    /// Whether connection logs (`info`) pass this target's level.
    pub(crate) fn takes_connection_logs(&self) -> bool {
        self.level >= Self::CONNECTION_LEVEL
    }

    /// `<PRI>` of a connection log: facility × 8 + level (`info`, or the
    /// target's minimum level when that is less important).
    #[cfg(test)]
    pub(crate) fn connection_priority(&self) -> u8 {
        self.facility * 8 + self.connection_severity()
    }

    /// The level alone, for the `short` format.
    pub(crate) fn connection_severity(&self) -> u8 {
        Self::CONNECTION_LEVEL.max(self.min_level)
    }
}

/// Where a log target writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogDest {
    Stdout,
    Stderr,
    File(PathBuf),
    /// A unix datagram socket (`/dev/log`): one datagram per line.
    Unix(PathBuf),
    /// A UDP syslog server: one datagram per line.
    Udp(SocketAddr),
}

impl std::fmt::Display for LogDest {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            LogDest::Stdout => f.write_str("stdout"),
            LogDest::Stderr => f.write_str("stderr"),
            LogDest::File(p) => write!(f, "file {}", p.display()),
            LogDest::Unix(p) => write!(f, "{}", p.display()),
            LogDest::Udp(a) => write!(f, "{a}"),
        }
    }
}

/// The header a log target puts before each line (HAProxy's `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// The line alone.
    Raw,
    /// `<PRI>Nov 22 00:16:25 host corral[123]: line`
    Rfc3164,
    /// `<PRI>Nov 22 00:16:25 corral[123]: line` (RFC 3164 without the host).
    Local,
    /// `<PRI>1 2026-11-22T00:16:25.401Z host corral 123 - - line`
    Rfc5424,
    /// `<PRI>line`
    Priority,
    /// `<LEVEL>line` (what systemd reads on stdout).
    Short,
}

impl LogFormat {
    pub(crate) const NAMES: [(&str, LogFormat); 6] = [
        ("raw", LogFormat::Raw),
        ("rfc3164", LogFormat::Rfc3164),
        ("local", LogFormat::Local),
        ("rfc5424", LogFormat::Rfc5424),
        ("priority", LogFormat::Priority),
        ("short", LogFormat::Short),
    ];
}

/// `mode:` how a frontend or backend reads its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Layer 4: bytes are relayed as they are.
    Tcp,
    /// Layer 7: HTTP/1.1 requests are parsed and routed.
    Http,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Http => "http",
        }
    }
}

/// `frontends.NAME:` where clients connect.
#[derive(Debug, Clone)]
pub(crate) struct Frontend {
    pub name: String,
    /// `bind`: one address or a list (`"0.0.0.0:80"`, `"*:80"`, `":80"`,
    /// `"[::]:443"`). Port 0 picks a free port at start (printed when ready).
    pub binds: Vec<Bind>,
    /// `mode`: `tcp` or `http` (default from `defaults.mode`, else `tcp`).
    pub mode: Mode,
    /// `maxconn`: most connections open at once on this frontend (default
    /// `defaults.maxconn`, else `global.maxconn`).
    pub maxconn: u32,
    /// `default_backend`: index into `Config::backends` (required in tcp
    /// mode without `use_backend`; connections no `use_backend` matches
    /// are then closed (tcp) or get a 503 (http)).
    pub default_backend: Option<usize>,
    /// `use_backend: [ "name if condition" ]`, first match wins.
    pub use_backend: Vec<UseBackend>,
    /// `timeout.client`: inactivity timeout on the client side (default 50s).
    pub timeout_client: Duration,
    /// Where this frontend's connection logs go (`log`, else `global.log`).
    pub log: Vec<LogTarget>,
    /// `option dontlognull`: no log line for connections that carried no data.
    pub dontlognull: bool,
    /// HTTP settings (`mode: http`).
    pub http: Option<HttpFrontend>,
    /// `tcp-request: [ "connection ..." ]` rules, in order.
    pub tcp_rules: Vec<crate::rules::tcp::TcpRule>,
    /// `tcp-request: [ "inspect-delay 5s" ]` (tcp mode): content rules wait
    /// up to this long for the client's first bytes (a TLS ClientHello)
    /// before they run. None: they run at accept, on no data.
    pub inspect_delay: Option<Duration>,
    /// `stick-table:` of this frontend: index into `Config::tables`.
    pub table: Option<usize>,
    /// `tls:` certificates and settings for the binds that terminate TLS.
    pub tls: Option<crate::tls::FrontendTls>,
    /// `option httpslog`: the httplog line with HAProxy's TLS fields.
    pub httpslog: bool,
}

impl Frontend {
    /// The backend for a connection or request: the first `use_backend`
    /// whose condition holds, else `default_backend`.
    pub(crate) fn route(&self, ctx: &dyn crate::acl::Context) -> Option<usize> {
        self.use_backend
            .iter()
            .find(|u| u.cond.as_ref().is_none_or(|c| c.eval(ctx)))
            .map(|u| u.backend)
            .or(self.default_backend)
    }
}

/// How connections are kept between requests (`option http-keep-alive`,
/// `http-server-close`, `httpclose`; the strongest of the frontend's and
/// the backend's applies, as in HAProxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ConnMode {
    /// Both sides kept alive; server connections pooled (the default).
    KeepAlive,
    /// The client side kept alive; the server connection closed after
    /// each response.
    ServerClose,
    /// Both sides closed after each response.
    Close,
}

/// `option forwardfor [except NET] [header NAME] [if-none]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForwardFor {
    /// The header to add (default `X-Forwarded-For`).
    pub header: String,
    /// Clients in this network get no header.
    pub except: Option<(std::net::IpAddr, u8)>,
    /// Only add the header when the request has none.
    pub if_none: bool,
}

/// `capture: [ "request header NAME len N" ]`: a header value logged in
/// the httplog line (truncated to `len`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Capture {
    pub name: String,
    pub len: usize,
}

/// One `use_backend` line: the backend and the condition that selects it.
#[derive(Debug, Clone)]
pub(crate) struct UseBackend {
    pub backend: usize,
    pub cond: Option<crate::acl::Condition>,
}

/// HTTP settings of a frontend.
#[derive(Debug, Clone)]
pub(crate) struct HttpFrontend {
    /// `acl: { name: "criterion [flags] patterns" | [ ... ] }`.
    pub acls: crate::acl::AclSet,
    /// `http-request: [ "action ... [if|unless condition]" ]`.
    pub request_rules: Vec<crate::rules::http::Rule>,
    /// `http-response: [ ... ]`.
    pub response_rules: Vec<crate::rules::http::Rule>,
    /// `errorfiles: { 503: /path/503.http }` (and inherited from defaults).
    pub errors: crate::model::errors::ErrorPages,
    /// `timeout.http-request`: the whole request head must arrive within
    /// it, else 408 (default: `timeout.client`).
    pub timeout_request: std::time::Duration,
    /// `timeout.http-keep-alive`: idle time allowed between two requests
    /// (default: `timeout.http-request`).
    pub timeout_keep_alive: std::time::Duration,
    pub forwardfor: Option<ForwardFor>,
    pub conn_mode: ConnMode,
    /// `capture` of request and response headers for the log.
    pub capture_request: Vec<Capture>,
    pub capture_response: Vec<Capture>,
    /// `unique-id-format`: how a request's unique id is built (default: a
    /// per-worker counter with the worker and start time).
    pub unique_id_format: Option<crate::acl::LogFormat>,
    /// `unique-id-header`: the request header that carries the id.
    pub unique_id_header: Option<String>,
    /// `stats:` the statistics page (and `/metrics`) served here.
    pub stats: Option<StatsPage>,
}

/// `stats: { uri, refresh, hide-version, auth, admin, prometheus }`.
#[derive(Debug, Clone)]
pub(crate) struct StatsPage {
    /// `uri`: where the page is (default `/stats`); `;csv` and `;json`
    /// after it give the numbers.
    pub uri: String,
    /// `refresh`: how often the page updates itself (default 5s).
    pub refresh: Duration,
    /// `hide-version`: the page does not show corral's version.
    pub hide_version: bool,
    /// `auth: [ "user:password" ]` (a password may be written
    /// `{{ file /path }}`: read from that file at load). Empty: no auth.
    pub auth: Vec<(String, String)>,
    /// `admin`: buttons to drain/disable/enable servers (needs `auth`).
    pub admin: bool,
    /// `prometheus`: `/metrics` in the Prometheus text format.
    pub prometheus: bool,
}

/// HTTP settings of a backend.
#[derive(Debug, Clone)]
pub(crate) struct HttpBackend {
    pub acls: crate::acl::AclSet,
    pub request_rules: Vec<crate::rules::http::Rule>,
    pub response_rules: Vec<crate::rules::http::Rule>,
    pub errors: crate::model::errors::ErrorPages,
    pub forwardfor: Option<ForwardFor>,
    pub conn_mode: ConnMode,
    /// `timeout.tunnel`: inactivity timeout of a WebSocket (or other
    /// upgraded) connection (default: `timeout.server`).
    pub timeout_tunnel: std::time::Duration,
}

/// One listening address of a frontend.
#[derive(Debug, Clone)]
pub(crate) struct Bind {
    /// As written, for messages.
    pub text: String,
    pub addr: SocketAddr,
    /// Terminates TLS (`"0.0.0.0:443 ssl"`, or every bind of a frontend
    /// with `tls:` when none says `ssl`).
    pub tls: bool,
}

/// `balance:` how a backend picks a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Balance {
    /// Each server in turn, in proportion to its weight (smooth).
    RoundRobin,
    /// The server with the fewest connections from this worker.
    LeastConn,
    /// A consistent hash of the full client IP: the same client always
    /// reaches the same server while it is up, on every worker and across
    /// restarts.
    Source,
    /// The first server (in file order) that has a free connection slot.
    First,
}

impl Balance {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConn => "leastconn",
            Balance::Source => "source",
            Balance::First => "first",
        }
    }
}

/// `backends.NAME:` a pool of servers.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub name: String,
    pub mode: Mode,
    /// `balance`: default `roundrobin`.
    pub balance: Balance,
    /// `retries`: how many more connection attempts after a failed one
    /// (default 3). Each retry goes to another server when there is one.
    pub retries: u32,
    /// `option allbackups`: use all backup servers at once, not only the first.
    pub allbackups: bool,
    /// `timeout.connect`: how long a connection to a server may take (default 5s).
    pub timeout_connect: Duration,
    /// `timeout.server`: inactivity timeout on the server side (default 50s).
    pub timeout_server: Duration,
    /// `timeout.queue`: how long a connection may wait for a free server
    /// slot when every server is at its `maxconn` (default: `timeout.connect`).
    pub timeout_queue: Duration,
    pub servers: Vec<Server>,
    /// HTTP settings (`mode: http`).
    pub http: Option<HttpBackend>,
    /// `stick-table:` of this backend: index into `Config::tables`.
    pub table: Option<usize>,
    /// `stick: [ "on src", ... ]` rules, in order.
    pub stick: Vec<crate::rules::stick::StickRule>,
}

/// `backends.NAME.servers.NAME:` one server.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    pub name: String,
    /// `address` as written (`10.0.0.11:3306`, `db2.internal:3306`).
    pub address: String,
    /// The address resolved when the configuration was loaded.
    pub addr: SocketAddr,
    /// `weight`: 0..=256, default 1. Weight 0 takes no new traffic.
    pub weight: u32,
    /// `maxconn`: most connections open at once to this server (default:
    /// no limit). Beyond it, connections queue in the backend.
    pub maxconn: Option<u32>,
    /// `backup`: takes traffic only when no normal server is up.
    pub backup: bool,
    /// `check`: health checking, if enabled.
    pub check: Option<Check>,
    /// `pool-max-conn`: idle keep-alive connections to this server each
    /// worker keeps for reuse in http mode (default 64; 0 disables reuse).
    pub pool_max_conn: usize,
    /// `pool-purge-delay`: how long an idle connection is kept (default
    /// 4s, under common server keep-alive timeouts such as Apache's 5s).
    pub pool_purge_delay: Duration,
    /// `tls:` connect to this server over TLS (health checks too).
    pub tls: Option<crate::tls::ServerTls>,
}

/// `check: true` or `check: { port, inter, rise, fall, http }`.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// Where checks connect (`check.port` changes the port only).
    pub addr: SocketAddr,
    /// `inter`: time between two checks (default 2s).
    pub inter: Duration,
    /// `rise`: consecutive successes to mark a DOWN server UP (default 2).
    pub rise: u32,
    /// `fall`: consecutive failures to mark an UP server DOWN (default 3).
    pub fall: u32,
    /// How long one check may take: `timeout.check`, else `inter`.
    pub timeout: Duration,
    pub kind: CheckKind,
}

#[derive(Debug, Clone)]
pub(crate) enum CheckKind {
    /// A TCP connect that succeeds.
    Tcp,
    /// An HTTP request whose response status is in `expect`.
    Http {
        method: String,
        path: String,
        host: Option<String>,
        expect: StatusMatch,
    },
}

/// A set of HTTP statuses: `200`, `"200-399"`, `"2xx"`, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StatusMatch(pub Vec<(u16, u16)>);

impl StatusMatch {
    pub(crate) fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= status && status <= hi)
    }
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub(crate) fn load(file: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            ConfigErrors::single(
                file,
                "",
                None,
                format!("cannot read the configuration: {e}"),
            )
        })?;
        Config::parse(file, &text)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub(crate) fn parse(file: &Path, text: &str) -> Result<Config, ConfigErrors> {
        validate::parse(file, text)
    }

    pub(crate) fn backend(&self, name: &str) -> Option<usize> {
        self.backends.iter().position(|b| b.name == name)
    }
}
