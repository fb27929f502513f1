//! Parsing a command line and running its commands, with HAProxy's
//! spellings, messages and levels.

use super::{show, snapshot};
use crate::balance::backend::{AdminChange, AdminState};
use crate::config::ApiLevel;
use crate::mesh::MeshMsg;
use crate::worker::Worker;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

/// How a client wants messages marked (`set severity-output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Severity {
    /// No mark (the default).
    None,
    /// `[3]: ` before a message (syslog severity number).
    Number,
    /// `[err]: ` before a message.
    String,
}

/// One client connection's settings.
pub(super) struct State {
    pub level: ApiLevel,
    pub severity: Severity,
    /// Further lines are read (`prompt`).
    pub interactive: bool,
    /// `> ` after each answer (`prompt`).
    pub prompt: bool,
    /// The client asked to leave (`quit`) or broke the protocol.
    pub quit: bool,
}

impl State {
    pub(super) fn new(level: ApiLevel) -> State {
        State {
            level,
            severity: Severity::None,
            interactive: false,
            prompt: false,
            quit: false,
        }
    }
}

/// The answer to one command: data, or messages with a severity.
pub(super) struct Reply {
    out: String,
    severity: Severity,
}

/// syslog's severity names, by number.
const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

const ERR: u8 = 3;
const WARNING: u8 = 4;
const NOTICE: u8 = 5;

impl Reply {
    pub(super) fn new(severity: Severity) -> Reply {
        Reply {
            out: String::new(),
            severity,
        }
    }

    /// Data, as it is.
    pub(super) fn data(&mut self, text: &str) {
        self.out.push_str(text);
    }

    /// A message of syslog severity `sev`, marked as the client asked.
    pub(super) fn msg(&mut self, sev: u8, text: &str) {
        match self.severity {
            Severity::None => {}
            Severity::Number => {
                let _ = write!(self.out, "[{sev}]: ");
            }
            Severity::String => {
                let _ = write!(self.out, "[{}]: ", SEVERITIES[sev.min(7) as usize]);
            }
        }
        self.out.push_str(text);
        if !text.ends_with('\n') {
            self.out.push('\n');
        }
    }

    pub(super) fn err(&mut self, text: &str) {
        self.msg(ERR, text);
    }

    /// The answer with the empty line that ends every command's output.
    pub(super) fn finish(mut self) -> String {
        self.out.push('\n');
        self.out
    }
}

/// A command: the words that name it, its usage, what it does and the
/// level it needs.
struct Cmd {
    words: &'static [&'static str],
    usage: &'static str,
    help: &'static str,
    level: ApiLevel,
}

const fn cmd(
    words: &'static [&'static str],
    usage: &'static str,
    help: &'static str,
    level: ApiLevel,
) -> Cmd {
    Cmd {
        words,
        usage,
        help,
        level,
    }
}

use ApiLevel::{Operator, User};

/// Every command, in `help` order.
const COMMANDS: &[Cmd] = &[
    cmd(
        &["help"],
        "help [<command>]",
        "list matching or all commands",
        User,
    ),
    cmd(
        &["prompt"],
        "prompt [n|i|p]",
        "toggle interactive mode with prompt",
        User,
    ),
    cmd(&["quit"], "quit", "disconnect", User),
    cmd(
        &["set", "severity-output"],
        "set severity-output [none|number|string]",
        "set presence of severity level in feedback information",
        User,
    ),
    cmd(
        &["show", "info"],
        "show info",
        "report information about the running process",
        User,
    ),
    cmd(
        &["show", "stat"],
        "show stat",
        "report counters for each proxy and server (CSV)",
        User,
    ),
    cmd(
        &["show", "servers", "state"],
        "show servers state [<backend>]",
        "dump volatile server information for all known backends",
        User,
    ),
    cmd(
        &["show", "table"],
        "show table [<table> [data.<type> <op> <value>]* | [key <key>]]",
        "report table usage stats or dump this table's contents",
        User,
    ),
    cmd(
        &["get", "weight"],
        "get weight <bk>/<srv>",
        "report a server's current weight",
        User,
    ),
    cmd(
        &["show", "sess"],
        "show sess",
        "report the list of current sessions (all workers)",
        Operator,
    ),
    cmd(
        &["clear", "table"],
        "clear table <table> [data.<type> <op> <value>]* | [key <key>]",
        "remove entries from a table (all those not in use, a key, or those matching)",
        Operator,
    ),
    cmd(
        &["disable", "server"],
        "disable server <bk>/<srv>",
        "put a server in maintenance",
        Operator,
    ),
    cmd(
        &["enable", "server"],
        "enable server <bk>/<srv>",
        "take a server out of maintenance",
        Operator,
    ),
    cmd(
        &["set", "server"],
        "set server <bk>/<srv> state ready|drain|maint | weight <w>[%] | addr <ip> [port <p>]",
        "change a server's state, weight (operator) or address (admin)",
        Operator,
    ),
    cmd(
        &["set", "weight"],
        "set weight <bk>/<srv> <w>[%]",
        "change a server's weight",
        Operator,
    ),
];

/// Splits a line into commands on `;` and each into words on blanks; a
/// backslash makes the next character literal (`\;`, `\\`).
pub(super) fn split(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                commands.push(std::mem::take(&mut words));
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    commands.push(words);
    commands.retain(|c| !c.is_empty());
    commands
}

/// Runs every command of a line; returns the answers, in order.
pub(super) async fn run_line(w: &Rc<Worker>, state: &mut State, line: &str) -> String {
    let mut out = String::new();
    let commands = split(line);
    if commands.is_empty() && state.interactive {
        // An empty line in interactive mode: just the prompt again.
        out.push('\n');
    }
    for words in commands {
        let mut r = Reply::new(state.severity);
        run(w, state, &words, &mut r).await;
        out.push_str(&r.finish());
        if state.quit {
            break;
        }
    }
    out
}

/// Runs one command.
async fn run(w: &Rc<Worker>, state: &mut State, words: &[String], r: &mut Reply) {
    let ws: Vec<&str> = words.iter().map(String::as_str).collect();
    let Some(c) = COMMANDS
        .iter()
        .find(|c| ws.len() >= c.words.len() && ws[..c.words.len()] == *c.words)
    else {
        let mut text = format!("Unknown command: '{}'\n\n", words.join(" "));
        help_text(state.level, None, &mut text);
        r.err(&text);
        return;
    };
    if c.level > state.level {
        return denied(r, &c.words.join(" "), c.level, state.level);
    }
    let args = &ws[c.words.len()..];
    match c.words {
        ["help"] => {
            let mut text = String::new();
            help_text(state.level, args.first().copied(), &mut text);
            r.data(&text);
        }
        ["prompt"] => prompt(state, args, r),
        ["quit"] => state.quit = true,
        ["set", "severity-output"] => match args {
            ["none"] => state.severity = Severity::None,
            ["number"] => state.severity = Severity::Number,
            ["string"] => state.severity = Severity::String,
            _ => r.err("one of 'none', 'number', 'string' is required\n"),
        },
        ["show", "info"] => match snapshot::gather(w, false).await {
            Ok(snap) => r.data(&show::info(w, &snap)),
            Err(e) => r.err(&format!("cannot gather the workers' numbers: {e}\n")),
        },
        ["show", "stat"] => match snapshot::gather(w, false).await {
            Ok(snap) => r.data(&show::stat(w, &snap)),
            Err(e) => r.err(&format!("cannot gather the workers' numbers: {e}\n")),
        },
        ["show", "servers", "state"] => {
            let only = match args.first() {
                None => None,
                Some(name) => match find_backend(w, name) {
                    Some(b) => Some(b),
                    None => return r.err("Can't find backend.\n"),
                },
            };
            r.data(&show::servers_state(w, only));
        }
        ["show", "table"] => show_table(w, args, r),
        ["get", "weight"] => match args.first().map(|a| find_server(w, a)) {
            Some(Ok((b, s))) => {
                let st = &w.backends[b].servers[s];
                let initial = w.config.backends[b].servers[s].weight;
                r.data(&format!("{} (initial {initial})\n", st.weight.get()));
            }
            Some(Err(e)) => r.err(e),
            None => r.err("Require 'backend/server'.\n"),
        },
        ["show", "sess"] => match snapshot::gather(w, true).await {
            Ok(snap) => r.data(&show::sess(w, &snap)),
            Err(e) => r.err(&format!("cannot gather the workers' sessions: {e}\n")),
        },
        ["clear", "table"] => clear_table(w, args, r).await,
        ["disable", "server"] => {
            with_server(w, args, r, AdminChange::State(AdminState::Maint), API).await
        }
        ["enable", "server"] => {
            with_server(w, args, r, AdminChange::State(AdminState::Ready), API).await
        }
        ["set", "weight"] => match args {
            [server, weight] => match weight_change(w, server, weight) {
                Ok(change) => with_server(w, &[server], r, change, API).await,
                Err(e) => r.err(&e),
            },
            _ => r.err("Require 'backend/server' and 'weight' or 'weight%'.\n"),
        },
        ["set", "server"] => set_server(w, state.level, args, r).await,
        _ => r.err("Unknown command.\n"),
    }
}

/// The permission error: what the command needs and what the socket has.
fn denied(r: &mut Reply, what: &str, needs: ApiLevel, has: ApiLevel) {
    r.err(&format!(
        "Permission denied: '{what}' needs level {} or higher; this socket is level {}\n",
        needs.name(),
        has.name()
    ));
}

fn help_text(level: ApiLevel, only: Option<&str>, out: &mut String) {
    out.push_str("The following commands are valid at this level:\n");
    for c in COMMANDS.iter().filter(|c| c.level <= level) {
        if only.is_some_and(|o| c.words[0] != o) {
            continue;
        }
        let _ = writeln!(out, "  {:<40} : {}", c.usage, c.help);
    }
}

fn prompt(state: &mut State, args: &[&str], r: &mut Reply) {
    match args {
        [] => {
            let on = !(state.interactive && state.prompt);
            state.interactive = on;
            state.prompt = on;
        }
        ["n"] => {
            state.interactive = false;
            state.prompt = false;
        }
        ["i"] => {
            state.interactive = true;
            state.prompt = false;
        }
        ["p"] => {
            state.interactive = true;
            state.prompt = true;
        }
        _ => r.err("'prompt' takes n, i or p.\n"),
    }
}

fn find_backend(w: &Worker, name: &str) -> Option<usize> {
    if let Some(id) = name.strip_prefix('#') {
        // The ids `show stat` and `show servers state` print.
        let id: usize = id.parse().ok()?;
        let first = w.config.frontends.len() + 1;
        return id
            .checked_sub(first)
            .filter(|&b| b < w.config.backends.len());
    }
    w.config.backend(name)
}

/// `backend/server` (names or `#id`s) → indexes.
pub(super) fn find_server(w: &Worker, text: &str) -> Result<(usize, usize), &'static str> {
    let (b, s) = text.split_once('/').ok_or("Require 'backend/server'.\n")?;
    let b = find_backend(w, b).ok_or("No such backend.\n")?;
    let servers = &w.config.backends[b].servers;
    let s = match s.strip_prefix('#') {
        Some(id) => id
            .parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .filter(|&i| i < servers.len()),
        None => servers.iter().position(|x| x.name == s),
    }
    .ok_or("No such server.\n")?;
    Ok((b, s))
}

/// `weight`: 0 to 256, or a percentage of the configured weight.
fn weight_change(w: &Worker, server: &str, text: &str) -> Result<AdminChange, String> {
    let (b, s) = find_server(w, server)?;
    let initial = w.config.backends[b].servers[s].weight;
    let weight = match text.strip_suffix('%') {
        Some(p) => {
            let p: u64 = p
                .parse()
                .map_err(|_| "Relative weight must be positive.\n".to_string())?;
            (u64::from(initial) * p / 100).min(256) as u32
        }
        None => match text.parse::<u32>() {
            Ok(n) if n <= 256 => n,
            _ => return Err("Absolute weight can only be between 0 and 256 inclusive.\n".into()),
        },
    };
    Ok(AdminChange::Weight(weight))
}

async fn set_server(w: &Rc<Worker>, level: ApiLevel, args: &[&str], r: &mut Reply) {
    let Some((&server, rest)) = args.split_first() else {
        return r.err("Require 'backend/server'.\n");
    };
    if let Err(e) = find_server(w, server) {
        return r.err(e);
    }
    let change = match rest {
        ["state", "ready"] => AdminChange::State(AdminState::Ready),
        ["state", "drain"] => AdminChange::State(AdminState::Drain),
        ["state", "maint"] => AdminChange::State(AdminState::Maint),
        ["state", ..] => {
            return r.err("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n");
        }
        ["weight", weight] => match weight_change(w, server, weight) {
            Ok(c) => c,
            Err(e) => return r.err(&e),
        },
        ["weight", ..] => return r.err("Require 'backend/server' and 'weight' or 'weight%'.\n"),
        ["addr", ..] if level < ApiLevel::Admin => {
            return denied(r, "set server addr", ApiLevel::Admin, level);
        }
        ["addr", ip, tail @ ..] => {
            let Ok(ip) = ip.parse::<IpAddr>() else {
                return r.err(&format!("Invalid addr '{ip}'\n"));
            };
            let (b, s) = find_server(w, server).unwrap_or_default();
            let old = w.backends[b].servers[s].addr.get();
            let port = match tail {
                [] => old.port(),
                ["port", p] => match p.parse::<u16>() {
                    Ok(p) if p > 0 => p,
                    _ => return r.err(&format!("problem converting port '{p}' to an int\n")),
                },
                _ => {
                    return r.err(
                        "set server <b>/<s> addr requires an address and optionally a port.\n",
                    );
                }
            };
            AdminChange::Addr(SocketAddr::new(ip, port))
        }
        ["addr"] => {
            return r.err("set server <b>/<s> addr requires an address and optionally a port.\n");
        }
        _ => {
            return r.err(
                "'set server <srv>' only supports 'state', 'weight' and 'addr' in this version.\n",
            );
        }
    };
    with_server(w, &[server], r, change, API).await
}

/// Who changed a server, for the log.
const API: &str = "runtime API";

/// A server's administrative state set from the stats page's admin
/// buttons (`server` is `backend/server`): the same change, log line and
/// answer as `set server B/S state ...`.
pub(crate) async fn set_state_from_page(
    w: &Worker,
    server: &str,
    state: AdminState,
) -> Result<String, &'static str> {
    find_server(w, server)?;
    let mut r = Reply::new(Severity::None);
    with_server(
        w,
        &[server],
        &mut r,
        AdminChange::State(state),
        "stats page",
    )
    .await;
    Ok(r.out)
}

/// Applies a change to the server named in `args[0]` on every worker;
/// `origin` says who asked, in the log.
async fn with_server(w: &Worker, args: &[&str], r: &mut Reply, change: AdminChange, origin: &str) {
    let (b, s) = match args.first().map(|a| find_server(w, a)) {
        Some(Ok(x)) => x,
        Some(Err(e)) => return r.err(e),
        None => return r.err("Require 'backend/server'.\n"),
    };
    let st = &w.backends[b].servers[s];
    let (old_state, old_addr) = (st.admin.get(), st.addr.get());
    let acked = w
        .mesh
        .broadcast_new(|seq| MeshMsg::ServerAdmin {
            backend: b as u32,
            server: s as u32,
            change,
            seq,
        })
        .await;
    let name = format!(
        "{}/{}",
        w.config.backends[b].name, w.config.backends[b].servers[s].name
    );
    match change {
        AdminChange::State(new) if new != old_state => {
            let (active, backup) = w.backends[b].usable_counts(&w.config.backends[b]);
            match new {
                AdminState::Maint => crate::warning!(
                    "Server {name} is going DOWN for maintenance ({origin}). {active} active and {backup} backup servers left."
                ),
                AdminState::Drain => crate::notice!(
                    "Server {name} enters drain state ({origin}): no new connections but persistent ones."
                ),
                AdminState::Ready => crate::notice!(
                    "Server {name} is ready again ({origin}, was {}). {active} active and {backup} backup servers online.",
                    old_state.name()
                ),
            }
        }
        AdminChange::Weight(n) => crate::notice!("Server {name} weight set to {n} ({origin})."),
        AdminChange::Addr(new) => {
            let mut parts = Vec::new();
            if new.ip() != old_addr.ip() {
                parts.push(format!(
                    "IP changed from '{}' to '{}'",
                    old_addr.ip(),
                    new.ip()
                ));
            }
            if new.port() != old_addr.port() {
                parts.push(format!(
                    "port changed from '{}' to '{}'",
                    old_addr.port(),
                    new.port()
                ));
            }
            if parts.is_empty() {
                r.msg(NOTICE, "no need to change the addr\n");
            } else {
                let text = format!("{} by 'stats socket command'", parts.join(", "));
                crate::notice!("Server {name}: {text}.");
                r.msg(WARNING, &text);
            }
        }
        AdminChange::State(_) => {}
    }
    if !acked {
        r.msg(
            WARNING,
            "not every worker acknowledged the change within 1s; it applies as each receives it\n",
        );
    }
}

/// `key K` and `data.T OP V` arguments of `show table` / `clear table`.
struct Filter {
    key: Option<crate::stick::Key>,
    data: Vec<show::DataFilter>,
}

fn table_filter(w: &Worker, table: usize, args: &[&str]) -> Result<Filter, String> {
    let def = &w.config.tables[table];
    let mut f = Filter {
        key: None,
        data: Vec::new(),
    };
    match args {
        [] => {}
        ["key", k] => {
            f.key = Some(show::parse_key(def.key_type, k).ok_or("Invalid key\n")?);
        }
        ["key"] => return Err("Key value expected\n".into()),
        _ => {
            let mut rest = args;
            while !rest.is_empty() {
                let [name, op, value, more @ ..] = rest else {
                    return Err(
                        "\"data.<type>\" followed by an operator and a value expected\n".into(),
                    );
                };
                if f.data.len() == 4 {
                    return Err("at most 4 data filters\n".into());
                }
                f.data.push(show::DataFilter::parse(def, name, op, value)?);
                rest = more;
            }
        }
    }
    Ok(f)
}

fn find_table(w: &Worker, name: &str) -> Option<usize> {
    w.config.tables.iter().position(|t| t.name == name)
}

fn show_table(w: &Worker, args: &[&str], r: &mut Reply) {
    let Some((&name, rest)) = args.split_first() else {
        let mut out = String::new();
        for t in 0..w.config.tables.len() {
            show::table_header(w, t, &mut out);
        }
        return r.data(&out);
    };
    let Some(t) = find_table(w, name) else {
        return r.err("No such table\n");
    };
    match table_filter(w, t, rest) {
        Ok(f) => {
            let mut out = String::new();
            show::table(w, t, f.key.as_ref(), &f.data, &mut out);
            r.data(&out);
        }
        Err(e) => r.err(&e),
    }
}

async fn clear_table(w: &Rc<Worker>, args: &[&str], r: &mut Reply) {
    let Some((&name, rest)) = args.split_first() else {
        return r.err("Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n");
    };
    let Some(t) = find_table(w, name) else {
        return r.err("No such table\n");
    };
    let f = match table_filter(w, t, rest) {
        Ok(f) => f,
        Err(e) => return r.err(&e),
    };
    // Decided on this worker's full replica: which keys go.
    let keys = if let Some(k) = f.key {
        match show::entry_in_use(w, t, &k) {
            None => return, // no such entry: nothing to do, as HAProxy
            Some(true) => return r.err("Entry currently in use, cannot remove\n"),
            Some(false) => Some(vec![k]),
        }
    } else if !f.data.is_empty() {
        Some(show::matching_keys(w, t, &f.data))
    } else {
        None
    };
    let seq = w.mesh.seq();
    let msg = MeshMsg::ClearTable {
        table: t as u16,
        keys,
        seq,
    };
    if !w.mesh.broadcast(msg, seq).await {
        r.msg(
            WARNING,
            "not every worker acknowledged within 1s; the entries go as each receives it\n",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_commands_and_words() {
        assert_eq!(
            split("show info;show  stat ; show table t"),
            vec![
                vec!["show", "info"],
                vec!["show", "stat"],
                vec!["show", "table", "t"]
            ]
        );
        assert_eq!(split(r"set x a\;b;;"), vec![vec!["set", "x", "a;b"]]);
        assert_eq!(split(r"key a\\b"), vec![vec!["key", r"a\b"]]);
        assert!(split("  ").is_empty());
    }

    #[test]
    fn messages_carry_the_asked_severity() {
        let mut r = Reply::new(Severity::Number);
        r.err("No such server.\n");
        assert_eq!(r.finish(), "[3]: No such server.\n\n");
        let mut r = Reply::new(Severity::String);
        r.msg(WARNING, "IP changed");
        assert_eq!(r.finish(), "[warning]: IP changed\n\n");
        let mut r = Reply::new(Severity::Number);
        r.data("Name: corral\n");
        assert_eq!(r.finish(), "Name: corral\n\n", "data is never marked");
    }

    #[test]
    fn every_level_sees_its_commands_in_help() {
        let mut user = String::new();
        help_text(ApiLevel::User, None, &mut user);
        assert!(user.contains("show info") && !user.contains("disable server"));
        let mut admin = String::new();
        help_text(ApiLevel::Admin, None, &mut admin);
        assert!(admin.contains("disable server") && admin.contains("set server"));
    }
}
