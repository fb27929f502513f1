//! Persistence: a backend's `stick` rules send a client back to the server
//! its key is stuck to, and remember the server new clients get.
//!
//! Before connecting, `before_connect` reads each applicable rule's key in
//! the local replica: a hit on a server that is up is the preferred
//! server. A miss on an `on` rule is decided by the key's owner (a claim
//! with this worker's balance choice as candidate: first claim wins), so
//! two workers never send one client to two servers. After connecting,
//! `after_connect` stores the server for `store-request` rules and for
//! keys whose server was down or full (the entry is rewritten on the new
//! choice, as HAProxy does).

use crate::acl::Context;
use crate::balance::pick::{self, Pick};
use crate::rules::stick::StickKind;
use crate::stick::Key;
use crate::worker::Worker;

/// At most this many keys are remembered for storing after the connect
/// (more `stick` rules than that are unusual; extra ones are skipped).
const MAX_STORES: usize = 4;

/// What the stick rules decided for one connection or request.
#[derive(Default)]
pub(crate) struct Sticky {
    /// The server (index in the backend) the client is stuck to.
    pub prefer: Option<usize>,
    /// Keys to store the chosen server under: (table, key).
    stores: [Option<(usize, Key)>; MAX_STORES],
}

impl Sticky {
    fn remember(&mut self, table: usize, key: Key) {
        if let Some(slot) = self.stores.iter_mut().find(|s| s.is_none()) {
            *slot = Some((table, key));
        }
    }
}

/// Runs backend `backend`'s stick rules for a client, before the server is
/// chosen.
pub(crate) async fn before_connect(w: &Worker, backend: usize, ctx: &dyn Context) -> Sticky {
    let mut out = Sticky::default();
    let cfg = &w.config.backends[backend];
    if cfg.stick.is_empty() {
        return out;
    }
    let defs = &w.config.tables;
    let st = &w.backends[backend];
    for rule in &cfg.stick {
        if rule.cond.as_ref().is_some_and(|c| !c.eval(ctx)) {
            continue;
        }
        let Some(sample) = rule.fetch.eval(ctx) else {
            continue;
        };
        let Some(key) = Key::from_sample(defs[rule.table].key_type, &sample) else {
            continue;
        };
        if rule.kind == StickKind::StoreRequest || out.prefer.is_some() {
            out.remember(rule.table, key);
            continue;
        }
        w.stick.note_lookup(&key);
        let usable = |id: u32| {
            let i = (id as usize).checked_sub(1)?;
            (i < cfg.servers.len() && st.servers[i].takes_persistent()).then_some(i)
        };
        match w.stick.server_of(defs, rule.table, &key) {
            Some(id) => match usable(id) {
                Some(i) => out.prefer = Some(i),
                // Stuck to a server that is down: rewritten on the new choice.
                None if rule.kind == StickKind::On => out.remember(rule.table, key),
                None => {}
            },
            None if rule.kind == StickKind::On => {
                // A new client: the key's owner decides, with this worker's
                // choice as the candidate.
                let candidate = match pick::pick(cfg, st, ctx.src().ip(), &[]) {
                    Pick::Server(i) => i,
                    _ => {
                        out.remember(rule.table, key);
                        continue;
                    }
                };
                let id = w
                    .mesh
                    .stick_claim(
                        &w.stick,
                        &w.config.tables,
                        rule.table,
                        &key,
                        candidate as u32 + 1,
                    )
                    .await;
                match usable(id) {
                    Some(i) => out.prefer = Some(i),
                    None => out.remember(rule.table, key),
                }
            }
            None => {}
        }
    }
    out
}

/// Stores the server a connection went to under the keys that need it.
pub(crate) fn after_connect(w: &Worker, sticky: &mut Sticky, server: usize) {
    let defs = &w.config.tables;
    for (table, key) in sticky.stores.iter_mut().filter_map(Option::take) {
        w.stick
            .change(defs, table, &key, |d| d.server_id = Some(server as u32 + 1));
    }
}
