//! What the `show` commands print, in HAProxy's formats: `show info`
//! (`Name: value` lines), `show stat` (its CSV), `show servers state`
//! (version 1 of the server-state file), `show table` and `show sess`.
//!
//! Numbering, as HAProxy's proxy ids: frontends are 1..F in configuration
//! order, backends F+1..F+B; a server's id is its 1-based position in its
//! backend (the `server_id` stick tables store).

use super::snapshot::{Counters, WorkerSnapshot};
use crate::balance::backend::{AdminState, ServerState};
use crate::config::{CheckKind, StickTable};
use crate::model::table::ALL;
use crate::stick::store::now_ms;
use crate::stick::{DataType, Key, KeyType};
use crate::worker::Worker;
use std::fmt::Write;
use std::net::IpAddr;

/// `show info`: the process, its limits and its connection totals over
/// every worker.
pub(super) fn info(w: &Worker, snap: &WorkerSnapshot) -> String {
    let g = &w.config.global;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let up = now.saturating_sub(w.started_unix);
    let mut nofile = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile) };
    let mut out = String::new();
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = writeln!(out, "{k}: {v}");
    };
    line("Name", &"corral");
    line("Version", &env!("CARGO_PKG_VERSION"));
    line("Nbthread", &w.workers);
    line("Nbproc", &1);
    line("Process_num", &1);
    line("Pid", &std::process::id());
    line(
        "Uptime",
        &format!(
            "{}d {}h{:02}m{:02}s",
            up / 86400,
            (up / 3600) % 24,
            (up / 60) % 60,
            up % 60
        ),
    );
    line("Uptime_sec", &up);
    line("Ulimit-n", &nofile.rlim_cur);
    line("Maxconn", &g.maxconn);
    line("Hard_maxconn", &g.maxconn);
    line("CurrConns", &snap.conns);
    line("CumConns", &snap.accepted);
    line("Stopping", &u8::from(w.life.stopping.is_set()));
    line("Jobs", &snap.conns);
    line("node", &crate::peers::node::host_name());
    line("description", &"");
    out
}

/// HAProxy's `show stat` CSV columns, in order (the static fields).
pub(super) const STAT_FIELDS: &[&str] = &[
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
    "agg_server_check_status",
    "agg_server_status",
    "agg_check_status",
    "srid",
    "sess_other",
    "h1sess",
    "h2sess",
    "h3sess",
    "req_other",
    "h1req",
    "h2req",
    "h3req",
    "proto",
    "priv_idle_cur",
    "reqbin",
    "reqbout",
    "resbin",
    "resbout",
    "cache_hint_hits",
];

/// One CSV line being filled: fields by name, the rest empty.
struct Row(Vec<String>);

impl Row {
    fn new() -> Row {
        Row(vec![String::new(); STAT_FIELDS.len()])
    }

    fn set(&mut self, field: &str, v: impl std::fmt::Display) -> &mut Row {
        let i = STAT_FIELDS
            .iter()
            .position(|f| *f == field)
            .expect("a known field");
        self.0[i] = csv(&v.to_string());
        self
    }

    fn opt(&mut self, field: &str, v: Option<u64>) -> &mut Row {
        if let Some(v) = v {
            self.set(field, v);
        }
        self
    }

    fn counters(&mut self, c: &Counters) -> &mut Row {
        self.set("scur", c.scur)
            .set("stot", c.stot)
            .opt("bin", c.bin)
            .opt("bout", c.bout)
            .opt("req_tot", c.req_tot)
    }

    fn write(&self, out: &mut String) {
        for f in &self.0 {
            out.push_str(f);
            out.push(',');
        }
        out.push('\n');
    }
}

/// A CSV value, quoted when it holds a comma or a quote.
fn csv(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

/// A server's `status` column.
fn server_status(st: &ServerState, checked: bool) -> &'static str {
    match st.admin.get() {
        AdminState::Maint => "MAINT",
        AdminState::Drain if st.up.get() => "DRAIN",
        _ if !st.up.get() => "DOWN",
        _ if !checked => "no check",
        _ => "UP",
    }
}

/// The last check's status as HAProxy names it; worker 0 knows whether
/// the server passes its checks, not why the last one failed.
fn check_status(kind: &CheckKind, up: bool) -> &'static str {
    match (kind, up) {
        (CheckKind::Tcp, true) => "L4OK",
        (CheckKind::Tcp, false) => "L4CON",
        (CheckKind::Http { .. }, true) => "L7OK",
        (CheckKind::Http { .. }, false) => "L7STS",
    }
}

/// `show stat`: the CSV header, one line per frontend, then each
/// backend's servers and the backend itself. Counters come from `snap`
/// (summed over workers); states and weights from worker 0.
pub(super) fn stat(w: &Worker, snap: &WorkerSnapshot) -> String {
    let mut out = String::from("# ");
    out.push_str(&STAT_FIELDS.join(","));
    out.push_str(",\n");
    let cfg = &w.config;
    let none = Counters::default();
    for (f, fe) in cfg.frontends.iter().enumerate() {
        let c = snap.frontends.get(f).unwrap_or(&none);
        Row::new()
            .set("pxname", &fe.name)
            .set("svname", "FRONTEND")
            .set("slim", fe.maxconn)
            .counters(c)
            .set(
                "status",
                if w.life.stopping.is_set() {
                    "STOP"
                } else {
                    "OPEN"
                },
            )
            .set("pid", 1)
            .set("iid", f + 1)
            .set("sid", 0)
            .set("type", 0)
            .set("mode", fe.mode.name())
            .set("conn_tot", c.stot)
            .write(&mut out);
    }
    for (b, be) in cfg.backends.iter().enumerate() {
        let iid = cfg.frontends.len() + b + 1;
        let st = &w.backends[b];
        for (s, srv) in be.servers.iter().enumerate() {
            let sst = &st.servers[s];
            let c = snap.servers.get(b).and_then(|v| v.get(s)).unwrap_or(&none);
            let mut row = Row::new();
            row.set("pxname", &be.name)
                .set("svname", &srv.name)
                .counters(c)
                .set("status", server_status(sst, srv.check.is_some()))
                .set("weight", sst.weight.get())
                .set("act", u8::from(!srv.backup))
                .set("bck", u8::from(srv.backup))
                .set("lastchg", sst.last_change.get().elapsed().as_secs())
                .set("pid", 1)
                .set("iid", iid)
                .set("sid", s + 1)
                .set("lbtot", c.stot)
                .set("type", 2)
                .set("addr", sst.addr.get())
                .set("mode", be.mode.name())
                .set("uweight", sst.weight.get())
                .set("srid", 1);
            if let Some(m) = srv.maxconn {
                row.set("slim", m);
            }
            if let Some(ch) = &srv.check {
                row.set("check_status", check_status(&ch.kind, sst.up.get()))
                    .set("check_rise", ch.rise)
                    .set("check_fall", ch.fall)
                    .set(
                        "check_health",
                        if sst.up.get() {
                            ch.rise + ch.fall - 1
                        } else {
                            0
                        },
                    );
            }
            row.write(&mut out);
        }
        let c = snap.backends.get(b).unwrap_or(&none);
        let usable: Vec<usize> = (0..be.servers.len())
            .filter(|&s| st.servers[s].balanced())
            .collect();
        let active = usable.iter().filter(|&&s| !be.servers[s].backup).count();
        let backup = usable.len() - active;
        let weights = |backup: bool| -> u32 {
            usable
                .iter()
                .filter(|&&s| be.servers[s].backup == backup)
                .map(|&s| st.servers[s].weight.get())
                .sum()
        };
        let weight = if active > 0 {
            weights(false)
        } else {
            weights(true)
        };
        let alive = be
            .servers
            .iter()
            .enumerate()
            .any(|(s, _)| st.servers[s].takes_persistent());
        Row::new()
            .set("pxname", &be.name)
            .set("svname", "BACKEND")
            .set("qcur", c.qcur)
            .counters(c)
            .set("status", if alive { "UP" } else { "DOWN" })
            .set("weight", weight)
            .set("act", active)
            .set("bck", backup)
            .set("pid", 1)
            .set("iid", iid)
            .set("sid", 0)
            .set("lbtot", c.stot)
            .set("type", 1)
            .set("mode", be.mode.name())
            .set("algo", be.balance.name())
            .write(&mut out);
    }
    out
}

/// `show servers state [backend]`: version 1 of HAProxy's format.
pub(super) fn servers_state(w: &Worker, only: Option<usize>) -> String {
    let mut out = String::from(
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n",
    );
    for (b, be) in w.config.backends.iter().enumerate() {
        if only.is_some_and(|o| o != b) {
            continue;
        }
        let be_id = w.config.frontends.len() + b + 1;
        for (s, srv) in be.servers.iter().enumerate() {
            let st = &w.backends[b].servers[s];
            let addr = st.addr.get();
            let admin = st.admin.get();
            // SRV_ST_RUNNING (2) or SRV_ST_STOPPED (0); maintenance stops it.
            let op = if st.up.get() && admin != AdminState::Maint {
                2
            } else {
                0
            };
            // SRV_ADMF_FMAINT (0x01), SRV_ADMF_FDRAIN (0x08).
            let admin_mask = match admin {
                AdminState::Ready => 0,
                AdminState::Maint => 0x01,
                AdminState::Drain => 0x08,
            };
            // HCHK_STATUS_INI (1) without checks; L4OK (6) / L7OKD (15)
            // passing, L4CON (8) / L7STS (17) failing; CHK_RES_PASSED (3)
            // or FAILED (2); CHK_ST_CONFIGURED|ENABLED (6).
            let (status, result, health, check_state, check_port) = match &srv.check {
                None => (1, 0, 1, 0, 0),
                Some(ch) => {
                    let http = matches!(ch.kind, CheckKind::Http { .. });
                    let up = st.up.get();
                    let status = match (http, up) {
                        (false, true) => 6,
                        (false, false) => 8,
                        (true, true) => 15,
                        (true, false) => 17,
                    };
                    let health = if up { ch.rise + ch.fall - 1 } else { 0 };
                    let port = if ch.addr.port() != srv.addr.port() {
                        ch.addr.port()
                    } else {
                        0
                    };
                    (status, if up { 3 } else { 2 }, health, 6, port)
                }
            };
            let _ = writeln!(
                out,
                "{be_id} {} {} {} {} {op} {admin_mask} {} {} {} {status} {result} {health} {check_state} 0 0 0 - {} - {} {check_port} - - 0",
                be.name,
                s + 1,
                srv.name,
                addr.ip(),
                st.weight.get(),
                srv.weight,
                st.last_change.get().elapsed().as_secs(),
                addr.port(),
                u8::from(srv.tls.is_some()),
            );
        }
    }
    out
}

/// `# table: NAME, type: ip, size:N, used:M` (worker 0's replica).
pub(super) fn table_header(w: &Worker, t: usize, out: &mut String) {
    let def = &w.config.tables[t];
    let _ = writeln!(
        out,
        "# table: {}, type: {}, size:{}, used:{}",
        def.name,
        def.key_type.name(),
        def.size,
        w.stick.len(t)
    );
}

/// A `data.<type> <op> <value>` filter.
pub(super) struct DataFilter {
    t: DataType,
    op: &'static str,
    value: u64,
}

impl DataFilter {
    pub(super) fn parse(
        def: &StickTable,
        name: &str,
        op: &str,
        value: &str,
    ) -> Result<Self, String> {
        let Some(t) = name.strip_prefix("data.") else {
            return Err("Optional argument only supports \"data.<store_data_type>\" <operator> <value> or key <key>\n".into());
        };
        let t = DataType::by_name(t).ok_or("Unknown data type\n")?;
        if !def.layout.has(t) {
            return Err("Data type not stored in this table\n".into());
        }
        let op = ["eq", "ne", "le", "ge", "lt", "gt"]
            .into_iter()
            .find(|o| *o == op)
            .ok_or("Require an operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n")?;
        let value = value
            .parse()
            .map_err(|_| "Require a valid integer value to compare against\n".to_string())?;
        Ok(DataFilter { t, op, value })
    }

    fn matches(&self, v: u64) -> bool {
        match self.op {
            "eq" => v == self.value,
            "ne" => v != self.value,
            "le" => v <= self.value,
            "ge" => v >= self.value,
            "lt" => v < self.value,
            _ => v > self.value,
        }
    }
}

/// A key typed on the command line, for a table of type `kt`.
pub(super) fn parse_key(kt: KeyType, text: &str) -> Option<Key> {
    match kt {
        KeyType::Ip | KeyType::Ipv6 => Key::from_ip(kt, text.parse::<IpAddr>().ok()?),
        KeyType::Integer => text.parse().ok().map(Key::Int),
        KeyType::String { len } => {
            let b = &text.as_bytes()[..text.len().min(len)];
            Some(Key::Str(b.into()))
        }
    }
}

fn write_key(k: &Key, out: &mut String) {
    let _ = match k {
        Key::V4(b) => write!(out, "{}", std::net::Ipv4Addr::from(*b)),
        Key::V6(b) => write!(out, "{}", std::net::Ipv6Addr::from(*b)),
        Key::Int(i) => write!(out, "{i}"),
        Key::Str(s) => write!(out, "{}", String::from_utf8_lossy(s)),
    };
}

/// A stable handle for an entry (HAProxy prints the entry's address).
fn entry_id(k: &Key) -> u64 {
    let mut h = crate::base::hash::hash_bytes(&[]);
    let mut add = |b: &[u8]| h = crate::base::hash::combine(h, crate::base::hash::hash_bytes(b));
    match k {
        Key::V4(b) => add(b),
        Key::V6(b) => add(b),
        Key::Int(i) => add(&i.to_be_bytes()),
        Key::Str(s) => add(s),
    }
    h & 0xffff_ffff_ffff
}

/// `show table NAME [filters]`: the header, then each entry (most recently
/// used first) as `0x...: key=K use=N exp=MS type=value...`.
pub(super) fn table(
    w: &Worker,
    t: usize,
    key: Option<&Key>,
    filters: &[DataFilter],
    out: &mut String,
) {
    table_header(w, t, out);
    let layout = &w.config.tables[t].layout;
    let now = now_ms();
    w.stick.each_slot(t, |s, exp| {
        if key.is_some_and(|k| *k != s.key) {
            return;
        }
        let value = |ty: DataType| layout.read(ty, &s.data, &s.pending, now);
        if !filters
            .iter()
            .all(|f| value(f.t).is_some_and(|v| f.matches(v)))
        {
            return;
        }
        let _ = write!(out, "0x{:x}: key=", entry_id(&s.key));
        write_key(&s.key, out);
        let in_use = value(DataType::ConnCur).unwrap_or(0);
        let _ = write!(out, " use={in_use} exp={exp}");
        for &(ty, name) in ALL {
            let Some(v) = value(ty) else { continue };
            match ty.rate_of() {
                Some(ev) => {
                    let _ = write!(out, " {name}({})={v}", layout.periods[ev as usize]);
                }
                None => {
                    let _ = write!(out, " {name}={v}");
                }
            }
        }
        out.push('\n');
    });
}

/// Whether `key`'s entry is tracked by a connection (None: no entry).
pub(super) fn entry_in_use(w: &Worker, t: usize, key: &Key) -> Option<bool> {
    let mut found = None;
    w.stick.each_slot(t, |s, _| {
        if s.key == *key {
            found = Some(i64::from(s.data.conn_cur) + i64::from(s.pending.conn_cur) > 0);
        }
    });
    found
}

/// The keys whose entries match every filter.
pub(super) fn matching_keys(w: &Worker, t: usize, filters: &[DataFilter]) -> Vec<Key> {
    let layout = &w.config.tables[t].layout;
    let now = now_ms();
    let mut keys = Vec::new();
    w.stick.each_slot(t, |s, _| {
        if filters.iter().all(|f| {
            layout
                .read(f.t, &s.data, &s.pending, now)
                .is_some_and(|v| f.matches(v))
        }) {
            keys.push(s.key.clone());
        }
    });
    keys
}

/// `show sess`: every worker's open connections, one a line:
/// `0x<worker><id>: proto=tcpv4 src=IP:PORT fe=F be=B srv=S age=Ns tid=W`.
pub(super) fn sess(w: &Worker, snap: &WorkerSnapshot) -> String {
    let mut out = String::new();
    let cfg = &w.config;
    for s in &snap.sessions {
        let proto = if s.client.is_ipv4() { "tcpv4" } else { "tcpv6" };
        let fe = cfg
            .frontends
            .get(s.frontend)
            .map_or("?", |f| f.name.as_str());
        let be = s
            .backend
            .and_then(|b| cfg.backends.get(b))
            .map_or("<NONE>", |b| b.name.as_str());
        let srv = s
            .backend
            .zip(s.server)
            .and_then(|(b, i)| cfg.backends.get(b)?.servers.get(i))
            .map_or("<none>", |x| x.name.as_str());
        let _ = writeln!(
            out,
            "0x{:x}: proto={proto} src={} fe={fe} be={be} srv={srv} age={}s tid={}",
            ((s.worker as u64) << 40) | s.id,
            s.client,
            s.age_secs,
            s.worker
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_haproxy_columns_and_quotes() {
        assert_eq!(STAT_FIELDS.len(), 119);
        assert_eq!(STAT_FIELDS[17], "status");
        assert_eq!(STAT_FIELDS[73], "addr");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("plain"), "plain");
    }

    #[test]
    fn keys_parse_by_table_type() {
        assert_eq!(
            parse_key(KeyType::Ip, "10.0.0.1"),
            Some(Key::V4([10, 0, 0, 1]))
        );
        assert_eq!(parse_key(KeyType::Ip, "nope"), None);
        assert_eq!(parse_key(KeyType::Integer, "42"), Some(Key::Int(42)));
        assert_eq!(
            parse_key(KeyType::String { len: 3 }, "abcdef"),
            Some(Key::Str(b"abc".to_vec().into_boxed_slice()))
        );
    }
}
