//! Stick tables: per-key memory of the server a client sticks to and of
//! counters (connections, requests, errors, bytes, `gpc0`) with rates, for
//! `stick on src` persistence and `track-sc0` rate limiting.
//!
//! The files, one concept each:
//! - `key.rs`: keys, and which worker owns a key (the key types, the
//!   stored data types, rates, deltas and a table's layout are plain data
//!   in `model::table`);
//! - `table.rs`: one worker's copy of one table (LRU, expiry);
//! - `store.rs`: a worker's tables, owners, replication between workers,
//!   and a connection's tracked entries;
//! - `rules::stick` (a layer below) parses `track-scN`/`sc-inc-gpc0`
//!   actions and backend `stick` rules at load.
//!
//! Must not touch: workers, the mesh or sessions: a [`Store`] returns what
//! must be sent (`StickMsg`) and the caller sends it.

pub(crate) mod key;
pub(crate) mod store;
pub(crate) mod table;

pub(crate) use crate::model::table::{Counter, DataType, Event, KeyType, Query, Scope};
pub(crate) use key::Key;
pub(crate) use store::{StickMsg, Store, Tracks};

/// What stick-counter fetches and actions need from the engine: the
/// worker's tables and the connection's tracked entries.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    pub store: &'a Store,
    pub defs: &'a [crate::config::StickTable],
    pub tracks: &'a std::cell::RefCell<Tracks>,
    /// The table `src_*` reads without a `table` argument: the section's
    /// own.
    pub own: Option<usize>,
}

impl Env<'_> {
    /// Answers a counter fetch for client `src` (see
    /// `acl::Context::stick_counter`).
    pub(crate) fn read(&self, q: &Query, src: std::net::IpAddr) -> Option<u64> {
        let named = match &q.table {
            Some(name) => Some(self.defs.iter().position(|t| *t.name == **name)?),
            None => None,
        };
        let (table, key) = match q.scope {
            Scope::Sc(n) => {
                let tracks = self.tracks.borrow();
                let t = tracks.get(n as usize);
                if q.data == Counter::Tracked {
                    return Some(u64::from(t.is_some()));
                }
                let t = t?;
                (named.unwrap_or(t.table), t.key.clone())
            }
            Scope::Src => {
                let table = named.or(self.own)?;
                (table, Key::from_ip(self.defs[table].key_type, src)?)
            }
        };
        let t = q.data_type()?;
        let v = self
            .store
            .read(self.defs, table, &key, t)
            // A key not in the table yet reads as zero.
            .or_else(|| self.defs[table].layout.has(t).then_some(0))?;
        Some(match q.data {
            Counter::KBytesIn | Counter::KBytesOut => v / 1024,
            _ => v,
        })
    }

    /// Runs a stick action. `conn_level`: from a `tcp-request connection`
    /// rule (the tracking lasts as long as the connection).
    pub(crate) fn act(
        &self,
        action: &crate::rules::stick::StickAction,
        ctx: &dyn crate::acl::Context,
        conn_level: bool,
    ) {
        match action {
            crate::rules::stick::StickAction::Track { sc, fetch, table } => {
                if self.tracks.borrow().get(*sc).is_some() {
                    return;
                }
                let Some(sample) = fetch.eval(ctx) else {
                    return;
                };
                let Some(key) = Key::from_sample(self.defs[*table].key_type, &sample) else {
                    return;
                };
                self.tracks
                    .borrow_mut()
                    .track(self.store, self.defs, *sc, *table, key, conn_level);
            }
            crate::rules::stick::StickAction::IncGpc0 { sc } => {
                let tracks = self.tracks.borrow();
                if let Some(t) = tracks.get(*sc) {
                    self.store
                        .count(self.defs, t.table, &t.key, Event::Gpc0, 1, true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_fetch_names() {
        assert_eq!(
            Query::parse_name("sc0_http_req_rate"),
            Some((Scope::Sc(0), Counter::Type(DataType::HttpReqRate)))
        );
        assert_eq!(
            Query::parse_name("sc_conn_cur"),
            Some((Scope::Sc(u8::MAX), Counter::Type(DataType::ConnCur)))
        );
        assert_eq!(
            Query::parse_name("src_get_gpc0"),
            Some((Scope::Src, Counter::Type(DataType::Gpc0)))
        );
        assert_eq!(
            Query::parse_name("sc2_tracked"),
            Some((Scope::Sc(2), Counter::Tracked))
        );
        assert_eq!(Query::parse_name("sc3_conn_cur"), None);
        assert_eq!(Query::parse_name("src_tracked"), None);
        assert_eq!(Query::parse_name("sc0_nope"), None);
        assert_eq!(Query::parse_name("src"), None);
    }
}
