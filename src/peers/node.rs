//! This node's side of a `peers` section: HAProxy's peers protocol (2.1)
//! between corral nodes, or between corral and HAProxy, on worker 0.
//!
//! Worker 0 holds a full replica of every table (owners commit every
//! change to every worker), so it can teach a peer the whole table and
//! push every change. What a peer sends goes to every worker
//! (`StickMsg::Learned`, acknowledged): each key's owner takes it as the
//! truth, the others as replica data; entries learned from a peer are not
//! pushed back to peers. A resync is reported done once every worker has
//! its entries.
//!
//! Sessions: the node listens on its own `peer` address (connections only
//! from the section's other peers' addresses) and connects to every other
//! peer it has no session with, retrying with backoff (0.5 s doubling to
//! 5 s). When two sessions with one peer exist at once (both connected at
//! the same moment), the one initiated by the peer whose name sorts first
//! is kept; HAProxy keeps the newest incoming one, which is the same
//! session when corral's name sorts first. Each session asks for a full
//! resync when it starts (a restarted node learns the table back) and
//! sends every entry it has (changes made while disconnected), answers
//! resync requests with every entry and `resync finished`, acknowledges
//! updates, sends a heartbeat after 2 s of silence and closes after 10 s
//! without hearing anything. Malformed frames are answered with HAProxy's
//! error message, logged, and close the session; the table is untouched.

use super::wire::{self, Decoded, Decoder, Encoder, Message, TableDef, Update, Value};
use crate::config::{Config, PeersSection, StickTable};
use crate::mesh::MeshMsg;
use crate::model::table::{Data, EVENT_LIST, FreqCtr};
use crate::stick::store::{Commit, now_ms};
use crate::stick::{DataType, Key, KeyType, StickMsg};
use crate::worker::Worker;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use glommio::timer::Timer;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

const HEARTBEAT_AFTER: Duration = Duration::from_secs(2);
const SILENT_FOR: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const HANDSHAKE_TIME: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The name this node has in `section` (`local`, else the host name).
pub(crate) fn local_name(section: &PeersSection) -> String {
    section.local.clone().unwrap_or_else(host_name)
}

/// The machine's host name (empty if it cannot be read): a node's
/// default peer name, and `show info`'s `node`.
pub(crate) fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    }
}

/// Checks, before any worker starts, that this node is one of the peers
/// of every section a table uses.
pub(crate) fn check(config: &Config) -> Result<(), String> {
    for (i, s) in config.peers.iter().enumerate() {
        if !config.tables.iter().any(|t| t.peers == Some(i)) {
            continue;
        }
        let me = local_name(s);
        if !s.peers.iter().any(|p| p.name == me) {
            let names: Vec<&str> = s.peers.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "peers.{}: this node is `{me}`, which is not one of the section's peers ({}): set `local:` in the section or run with --peer-name",
                s.name,
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// One remote peer: which sessions with it are alive, and what they must
/// still push.
struct Remote {
    name: String,
    addr: SocketAddr,
    incoming: Cell<u32>,
    outgoing: Cell<u32>,
    /// Entries to push, per live session (id, queue).
    queues: RefCell<Vec<(u64, Queue)>>,
}

/// Entries waiting to be pushed on one session.
type Queue = Rc<RefCell<Vec<Commit>>>;

/// A `peers` section as this node runs it.
struct Node {
    w: Rc<Worker>,
    section: usize,
    me: String,
    remotes: Vec<Rc<Remote>>,
    /// This section's tables (indexes into `Config::tables`).
    tables: Vec<usize>,
    next_session: Cell<u64>,
}

/// Starts every section's sessions on this worker (worker 0).
pub(crate) fn spawn(w: &Rc<Worker>) {
    let config = w.config.clone();
    for (i, s) in config.peers.iter().enumerate() {
        let tables: Vec<usize> = (0..config.tables.len())
            .filter(|&t| config.tables[t].peers == Some(i))
            .collect();
        if tables.is_empty() {
            continue;
        }
        let me = local_name(s);
        let Some(local) = s.peers.iter().find(|p| p.name == me) else {
            continue; // `check` refused to start
        };
        let node = Rc::new(Node {
            w: w.clone(),
            section: i,
            me: me.clone(),
            remotes: s
                .peers
                .iter()
                .filter(|p| p.name != me)
                .map(|p| {
                    Rc::new(Remote {
                        name: p.name.clone(),
                        addr: p.addr,
                        incoming: Cell::new(0),
                        outgoing: Cell::new(0),
                        queues: RefCell::new(Vec::new()),
                    })
                })
                .collect(),
            tables,
            next_session: Cell::new(1),
        });
        match TcpListener::bind(local.addr) {
            Ok(l) => {
                glommio::spawn_local(accept_loop(node.clone(), l)).detach();
            }
            Err(e) => crate::warning!(
                "peers.{}: cannot listen on {} for peer `{me}`: {e}; only outgoing sessions will run",
                s.name,
                local.text
            ),
        }
        for r in &node.remotes {
            glommio::spawn_local(connect_loop(node.clone(), r.clone())).detach();
        }
        glommio::spawn_local(distribute(node.clone())).detach();
    }
}

/// Hands worker 0's committed entries of this section's tables to every
/// live session.
async fn distribute(node: Rc<Node>) {
    while !node.w.life.stopping.is_set() {
        Timer::new(POLL).await;
        let items: Vec<Commit> = std::mem::take(&mut *node.w.stick.to_peers.borrow_mut());
        let items: Vec<Commit> = items
            .into_iter()
            .filter(|c| node.tables.contains(&(c.table as usize)))
            .collect();
        if items.is_empty() {
            continue;
        }
        for r in &node.remotes {
            for (_, q) in r.queues.borrow().iter() {
                q.borrow_mut().extend(items.iter().cloned());
            }
        }
    }
}

async fn accept_loop(node: Rc<Node>, listener: TcpListener) {
    while !node.w.life.stopping.is_set() {
        let Ok(stream) = listener.accept().await else {
            continue;
        };
        let Ok(from) = stream.peer_addr() else {
            continue;
        };
        let node = node.clone();
        glommio::spawn_local(async move {
            if let Err(e) = incoming(&node, stream, from).await {
                crate::warning!(
                    "peers.{}: session from {from}: {e}",
                    node.w.config.peers[node.section].name
                );
            }
        })
        .detach();
    }
}

/// An incoming session: only from a listed peer's address, with a valid
/// hello naming us and that peer.
async fn incoming(node: &Rc<Node>, mut stream: TcpStream, from: SocketAddr) -> Result<(), String> {
    if !node.remotes.iter().any(|r| r.addr.ip() == from.ip()) {
        return Err(format!(
            "refused: {} is not the address of a peer of this section",
            from.ip()
        ));
    }
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIME));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIME));
    let parser = wire::HelloParser::new();
    let mut buf = Vec::new();
    let (hello, used) = loop {
        let mut chunk = [0u8; 512];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("no hello: {e}"))?;
        if n == 0 {
            return Err("closed before its hello".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match parser.parse(&buf) {
            Ok(wire::Parse::Incomplete) => {}
            Ok(wire::Parse::Done { value, consumed }) => break (value, consumed),
            Err(e) => {
                let _ = stream.write_all(&e.status().line()).await;
                return Err(format!("bad hello: {e:?}"));
            }
        }
    };
    let known = |n: &str| {
        node.remotes
            .iter()
            .any(|r| r.name == n && r.addr.ip() == from.ip())
    };
    let status = hello.check(&node.me, known);
    stream
        .write_all(&status.line())
        .await
        .map_err(|e| format!("cannot answer its hello: {e}"))?;
    if status != wire::Status::Success {
        return Err(format!(
            "refused peer `{}` with status {}",
            hello.peer_name,
            status.code()
        ));
    }
    let remote = node
        .remotes
        .iter()
        .find(|r| r.name == hello.peer_name)
        .expect("checked above")
        .clone();
    let id = node.new_session();
    remote.incoming.set(remote.incoming.get() + 1);
    crate::notice!(
        "peers.{}: peer `{}` connected from {from}",
        node.w.config.peers[node.section].name,
        remote.name
    );
    let out = session(node, &remote, stream, buf[used..].to_vec(), id, false).await;
    remote.incoming.set(remote.incoming.get() - 1);
    out
}

/// Keeps an outgoing session to `remote` while no incoming one exists.
async fn connect_loop(node: Rc<Node>, remote: Rc<Remote>) {
    let mut backoff = BACKOFF_MIN;
    let section = node.w.config.peers[node.section].name.clone();
    while !node.w.life.stopping.is_set() {
        if remote.incoming.get() > 0 {
            Timer::new(POLL * 10).await;
            continue;
        }
        match outgoing(&node, &remote).await {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => {
                crate::warning!(
                    "peers.{section}: peer `{}` at {}: {e}; retrying in {:?}",
                    remote.name,
                    remote.addr,
                    backoff
                );
                Timer::new(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn outgoing(node: &Rc<Node>, remote: &Rc<Remote>) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(remote.addr, HANDSHAKE_TIME)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIME));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIME));
    let hello = wire::hello(&remote.name, &node.me, std::process::id(), 1);
    stream
        .write_all(&hello)
        .await
        .map_err(|e| format!("cannot send the hello: {e}"))?;
    let mut buf = Vec::new();
    let (status, used) = loop {
        let mut chunk = [0u8; 512];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("no answer to the hello: {e}"))?;
        if n == 0 {
            return Err("closed before answering the hello".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        match wire::parse_status(&buf) {
            Ok(wire::Parse::Incomplete) if buf.len() < 64 => {}
            Ok(wire::Parse::Done { value, consumed }) => break (value, consumed),
            _ => return Err("malformed status line".into()),
        }
    };
    if status != wire::Status::Success {
        return Err(format!("refused with status {}", status.code()));
    }
    let id = node.new_session();
    remote.outgoing.set(remote.outgoing.get() + 1);
    crate::notice!(
        "peers.{}: connected to peer `{}` at {}",
        node.w.config.peers[node.section].name,
        remote.name,
        remote.addr
    );
    let out = session(node, remote, stream, buf[used..].to_vec(), id, true).await;
    remote.outgoing.set(remote.outgoing.get() - 1);
    out
}

impl Node {
    fn new_session(&self) -> u64 {
        let id = self.next_session.get();
        self.next_session.set(id + 1);
        id
    }

    /// The wire definition of table `t` (its id on our side is its index
    /// plus one).
    fn definition(&self, t: usize) -> TableDef {
        table_definition(&self.w.config.tables[t], t)
    }

    /// Our table for a peer's definition: same name, same key type.
    fn table_for(&self, def: &TableDef) -> Option<usize> {
        self.tables.iter().copied().find(|&t| {
            let ours = self.definition(t);
            ours.name == def.name && ours.key_type == def.key_type
        })
    }
}

/// The wire definition of table `def`, number `t` of its configuration
/// (its id on our side is `t` plus one).
fn table_definition(def: &StickTable, t: usize) -> TableDef {
    let key_type = match def.key_type {
        KeyType::Ip => wire::KeyType::Ipv4,
        KeyType::Ipv6 => wire::KeyType::Ipv6,
        KeyType::Integer => wire::KeyType::Integer,
        KeyType::String { len } => wire::KeyType::String {
            key_size: len as u32 + 1,
        },
    };
    let expire = def.expire.as_millis().min(u128::from(u32::MAX)) as u32;
    let mut out = TableDef::new(t as u32 + 1, def.name.clone(), key_type, expire);
    for (dt, name) in crate::model::table::ALL {
        if !def.layout.has(*dt) {
            continue;
        }
        let Some(wdt) = wire_type(name) else { continue };
        out = match dt.rate_of() {
            Some(ev) => out.with_period(wdt, def.layout.periods[ev as usize] as u32),
            None => out.with(wdt),
        };
    }
    out
}

/// Table `t`'s entries on this worker as commits, each with its remaining
/// lifetime in ms at `now` (what a full resync and a state hand-over
/// send), in the store's order.
fn entries_with_lifetime(w: &Worker, t: usize, now: u64) -> Vec<(Commit, u32)> {
    let expire = w.config.tables[t].expire.as_millis() as u64;
    let mut entries = Vec::new();
    w.stick.each(t, |key, data, touched| {
        entries.push((
            Commit {
                table: t as u16,
                key: key.clone(),
                data: *data,
                touched,
                remote: false,
            },
            (touched + expire)
                .saturating_sub(now)
                .min(u64::from(u32::MAX)) as u32,
        ));
    });
    entries
}

/// Every entry of every stick table this worker holds (worker 0 holds a
/// full replica), in the peers protocol: each table's definition, then
/// its entries with their remaining lifetime. A retiring generation hands
/// this to the next one (`process/generation/carry.rs`), which reads it with
/// [`decode_tables`]: tables are matched by name and key type, and only
/// the data types the new definition stores are kept, exactly as between
/// two peers.
pub(crate) fn encode_tables(w: &Worker) -> Result<Vec<u8>, String> {
    let mut encoder = Encoder::new();
    let mut out = Vec::new();
    let now = now_ms();
    for (t, table) in w.config.tables.iter().enumerate() {
        let def = table_definition(table, t);
        encode(&mut encoder, &Message::Define(def.clone()), &mut out)?;
        let entries = entries_with_lifetime(w, t, now);
        for (id, (c, left)) in entries.iter().rev().enumerate() {
            if let Some(u) = to_update(&def, def.id, id as u32 + 1, c, Some(*left)) {
                encode(&mut encoder, &Message::Update(u), &mut out)?;
            }
        }
    }
    Ok(out)
}

/// The entries of an [`encode_tables`] dump that fit `tables`: (table,
/// key, data, last touched in ms, so the entry keeps its remaining
/// lifetime).
pub(crate) fn decode_tables(
    tables: &[StickTable],
    bytes: &[u8],
) -> Result<Vec<(u16, Key, Data, u64)>, String> {
    let ours: Vec<TableDef> = tables
        .iter()
        .enumerate()
        .map(|(t, def)| table_definition(def, t))
        .collect();
    let now = now_ms();
    let mut decoder = Decoder::new();
    let mut used = 0;
    let mut out = Vec::new();
    while used < bytes.len() {
        match decoder.decode(&bytes[used..]) {
            Ok(Decoded::Incomplete) => {
                return Err("the state dump ends in the middle of a message".into());
            }
            Ok(Decoded::Message { msg, consumed }) => {
                used += consumed;
                let Message::Update(u) = msg else { continue };
                let Some(def) = decoder.table(u.table_id) else {
                    continue;
                };
                let Some(t) = ours
                    .iter()
                    .position(|o| o.name == def.name && o.key_type == def.key_type)
                else {
                    continue;
                };
                if let Some((key, data)) = from_update(&tables[t], &u) {
                    let expire = tables[t].expire.as_millis() as u64;
                    let left = u.expire_ms.map_or(expire, u64::from).min(expire);
                    let touched = (now + left).saturating_sub(expire).max(1);
                    out.push((t as u16, key, data, touched));
                }
            }
            Err(e) => return Err(format!("a malformed state dump: {e:?}")),
        }
    }
    Ok(out)
}

fn wire_type(name: &str) -> Option<wire::DataType> {
    wire::DataType::ALL.into_iter().find(|d| d.name() == name)
}

/// An entry as an update message.
fn to_update(
    def: &TableDef,
    table_id: u32,
    update_id: u32,
    c: &Commit,
    expire: Option<u32>,
) -> Option<Update> {
    let key = match &c.key {
        Key::V4(a) => wire::Key::Ipv4((*a).into()),
        Key::V6(a) => wire::Key::Ipv6((*a).into()),
        Key::Int(i) => wire::Key::Integer(*i),
        Key::Str(s) => wire::Key::String(s.to_vec()),
    };
    let now = now_ms();
    let values = def
        .stored()
        .filter_map(|wdt| {
            let dt = DataType::by_name(wdt.name())?;
            let d = &c.data;
            let v = match dt {
                DataType::ServerId => Value::SInt(d.server_id as i32),
                DataType::ConnCur => Value::UInt(d.conn_cur),
                _ => {
                    let ev = dt.event()?;
                    if dt.is_rate() {
                        let r = d.rates[ev as usize];
                        Value::Freq(wire::FreqCtr {
                            age_ms: now.saturating_sub(r.curr_tick).min(u64::from(u32::MAX)) as u32,
                            curr_ctr: r.curr,
                            prev_ctr: r.prev,
                        })
                    } else if matches!(wdt.std_type(), wire::StdType::ULongLong) {
                        Value::ULongLong(d.counts[ev as usize])
                    } else {
                        Value::UInt(d.counts[ev as usize].min(u64::from(u32::MAX)) as u32)
                    }
                }
            };
            Some((wdt, v))
        })
        .collect();
    Some(Update {
        table_id,
        update_id,
        incremental: false,
        expire_ms: expire,
        key,
        values,
        skipped_types: 0,
    })
}

/// A peer's update as our key and data.
fn from_update(t: &StickTable, u: &Update) -> Option<(Key, Data)> {
    let key = match (&u.key, t.key_type) {
        (wire::Key::Ipv4(a), KeyType::Ip) => Key::V4(a.octets()),
        (wire::Key::Ipv6(a), KeyType::Ipv6) => Key::V6(a.octets()),
        (wire::Key::Integer(i), KeyType::Integer) => Key::Int(*i),
        (wire::Key::String(s), KeyType::String { len }) => {
            Key::Str(s[..s.len().min(len)].to_vec().into_boxed_slice())
        }
        _ => return None,
    };
    let now = now_ms();
    let mut data = Data::default();
    for (wdt, v) in &u.values {
        let Some(dt) = DataType::by_name(wdt.name()) else {
            continue;
        };
        if !t.layout.has(dt) {
            continue;
        }
        match (dt, v) {
            (DataType::ServerId, Value::SInt(id)) => data.server_id = (*id).max(0) as u32,
            (DataType::ConnCur, _) => {} // local to each node, as in HAProxy
            (_, Value::Freq(f)) => {
                if let Some(ev) = dt.rate_of() {
                    data.rates[ev as usize] = FreqCtr {
                        curr_tick: now.saturating_sub(u64::from(f.age_ms)).max(1),
                        curr: f.curr_ctr,
                        prev: f.prev_ctr,
                    };
                }
            }
            (_, Value::UInt(n)) => {
                if let Some(ev) = dt.event() {
                    data.counts[ev as usize] = u64::from(*n);
                }
            }
            (_, Value::ULongLong(n)) => {
                if let Some(ev) = dt.event() {
                    data.counts[ev as usize] = *n;
                }
            }
            _ => {}
        }
    }
    let _ = EVENT_LIST;
    Some((key, data))
}

/// One established session, until it fails, goes silent, or yields to
/// the other session with the same peer.
async fn session(
    node: &Rc<Node>,
    remote: &Rc<Remote>,
    mut stream: TcpStream,
    mut inbuf: Vec<u8>,
    id: u64,
    initiated: bool,
) -> Result<(), String> {
    let w = &node.w;
    let queue: Queue = Rc::new(RefCell::new(Vec::new()));
    remote.queues.borrow_mut().push((id, queue.clone()));
    let _unregister = Unregister(remote.clone(), id);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIME));
    let mut decoder = Decoder::new();
    let mut encoder = Encoder::new();
    let mut out = Vec::new();
    let mut defined = vec![false; w.config.tables.len()];
    let mut update_ids = vec![0u32; w.config.tables.len()];
    // Acks owed: (their table id, last update id).
    let mut acks: Vec<(u32, u32)> = Vec::new();
    let (mut last_recv, mut last_sent) = (Instant::now(), Instant::now());
    // Entries received since the session began (reported when the
    // peer's answer to our resync request ends).
    let mut received: std::collections::HashSet<(usize, Key)> = Default::default();
    let mut resync_done: Option<usize> = None;
    let section = &w.config.peers[node.section].name;
    // Ask for everything the peer knows (a restarted node learns back),
    // and teach it everything we know: changes made while no session was
    // up reach it too.
    encode(&mut encoder, &Message::ResyncRequest, &mut out)?;
    teach(node, &mut encoder, &mut defined, &mut update_ids, &mut out)?;
    loop {
        if w.life.stopping.is_set() {
            return Ok(());
        }
        // Two sessions with one peer: keep the one the first name started.
        let keep_initiated_by_us = node.me < remote.name;
        let other_alive = if initiated {
            remote.incoming.get() > 0
        } else {
            remote.outgoing.get() > 0
        };
        if other_alive && initiated != keep_initiated_by_us {
            return Ok(());
        }
        // Push what changed.
        let items = std::mem::take(&mut *queue.borrow_mut());
        for c in &items {
            push(
                node,
                &mut encoder,
                &mut defined,
                &mut update_ids,
                c,
                None,
                &mut out,
            )?;
        }
        for (table_id, update_id) in acks.drain(..) {
            encode(
                &mut encoder,
                &Message::Ack {
                    table_id,
                    update_id,
                },
                &mut out,
            )?;
        }
        if out.is_empty() && last_sent.elapsed() >= HEARTBEAT_AFTER {
            encode(&mut encoder, &Message::Heartbeat, &mut out)?;
        }
        if !out.is_empty() {
            stream
                .write_all(&out)
                .await
                .map_err(|e| format!("cannot write: {e}"))?;
            out.clear();
            last_sent = Instant::now();
        }
        // Read what came (a short read timeout paces the loop).
        let mut chunk = [0u8; 16384];
        match stream.read(&mut chunk).await {
            Ok(0) => return Ok(()),
            Ok(n) => {
                inbuf.extend_from_slice(&chunk[..n]);
                last_recv = Instant::now();
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::TimedOut
                    || e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
        if last_recv.elapsed() > SILENT_FOR {
            return Err(format!("silent for {SILENT_FOR:?}: closing"));
        }
        // Handle every complete message.
        let mut used = 0;
        let mut learned: Vec<(usize, Key, Data)> = Vec::new();
        loop {
            match decoder.decode(&inbuf[used..]) {
                Ok(Decoded::Incomplete) => break,
                Ok(Decoded::Message { msg, consumed }) => {
                    used += consumed;
                    match msg {
                        Message::ResyncRequest => {
                            teach(node, &mut encoder, &mut defined, &mut update_ids, &mut out)?;
                            encode(&mut encoder, &Message::ResyncFinished, &mut out)?;
                        }
                        Message::ResyncFinished | Message::ResyncPartial => {
                            // Reported once every worker has the entries.
                            resync_done = Some(received.len());
                            encode(&mut encoder, &Message::ResyncConfirm, &mut out)?;
                        }
                        Message::Update(u) => {
                            let Some(def) = decoder.table(u.table_id) else {
                                continue;
                            };
                            if let Some(t) = node.table_for(def)
                                && let Some((key, data)) = from_update(&w.config.tables[t], &u)
                            {
                                received.insert((t, key.clone()));
                                learned.push((t, key, data));
                            }
                            match acks.iter_mut().find(|(tid, _)| *tid == u.table_id) {
                                Some(a) => a.1 = u.update_id,
                                None => acks.push((u.table_id, u.update_id)),
                            }
                        }
                        Message::ProtocolError | Message::SizeLimitError => {
                            return Err("the peer reported an error and closes".into());
                        }
                        _ => {}
                    }
                }
                Err(e) => {
                    let _ = encode(&mut encoder, &e.reply(), &mut out);
                    let _ = stream.write_all(&out).await;
                    return Err(format!("malformed message from the peer: {e:?}; closing"));
                }
            }
        }
        inbuf.drain(..used);
        if !learned.is_empty() {
            // Every worker applies them before the session goes on.
            let now = now_ms();
            let items = learned
                .into_iter()
                .map(|(t, key, data)| (t as u16, key, data, now))
                .collect();
            let seq = w.mesh.seq();
            w.mesh
                .broadcast(MeshMsg::Stick(StickMsg::Learned { items, seq }), seq)
                .await;
        }
        if let Some(peer_done) = resync_done.take() {
            crate::notice!(
                "peers.{section}: full resync from peer `{}` done: {} entries learned",
                remote.name,
                peer_done
            );
        }
    }
}

/// Removes a session's queue when it ends.
struct Unregister(Rc<Remote>, u64);

impl Drop for Unregister {
    fn drop(&mut self) {
        self.0.queues.borrow_mut().retain(|(id, _)| *id != self.1);
    }
}

fn encode(e: &mut Encoder, m: &Message, out: &mut Vec<u8>) -> Result<(), String> {
    e.encode(m, out)
        .map_err(|err| format!("cannot encode {m:?}: {err:?}"))
}

/// Sends one entry (its table's definition first, once per session).
fn push(
    node: &Node,
    encoder: &mut Encoder,
    defined: &mut [bool],
    update_ids: &mut [u32],
    c: &Commit,
    expire: Option<u32>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let t = c.table as usize;
    let def = node.definition(t);
    if !defined[t] || encoder.current_table().map(|d| d.id) != Some(def.id) {
        encode(encoder, &Message::Define(def.clone()), out)?;
        defined[t] = true;
    }
    update_ids[t] = update_ids[t].wrapping_add(1);
    if let Some(u) = to_update(&def, def.id, update_ids[t], c, expire) {
        encode(encoder, &Message::Update(u), out)?;
    }
    Ok(())
}

/// Sends every entry of the section's tables (a full resync), with each
/// entry's remaining lifetime.
fn teach(
    node: &Node,
    encoder: &mut Encoder,
    defined: &mut [bool],
    update_ids: &mut [u32],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let now = now_ms();
    for &t in &node.tables {
        let entries = entries_with_lifetime(&node.w, t, now);
        for (c, left) in entries.iter().rev() {
            push(node, encoder, defined, update_ids, c, Some(*left), out)?;
        }
    }
    Ok(())
}
