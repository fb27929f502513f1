//! Stick tables: per-key memory of the server a client sticks to and of
//! counters (connections, requests, errors, bytes, `gpc0`) with rates, for
//! `stick on src` persistence and `track-sc0` rate limiting.
//!
//! The files, one concept each:
//! - `key.rs`: table key types and keys, and which worker owns a key;
//! - `data.rs`: the stored data types, rates, deltas and a table's layout;
//! - `table.rs`: one worker's copy of one table (LRU, expiry);
//! - `store.rs`: a worker's tables, owners, replication between workers,
//!   and a connection's tracked entries;
//! - `rules.rs`: `track-scN`/`sc-inc-gpc0` actions and backend `stick`
//!   rules, parsed at load.

pub mod data;
pub mod key;
pub mod rules;
pub mod store;
pub mod table;

pub use data::{DataType, Event, Layout};
pub use key::{Key, KeyType};
pub use store::{StickMsg, Store, Tracks};

/// Whose counters a fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The entry tracked by `track-scN` (`sc0_*`, `sc_*(N)`).
    Sc(u8),
    /// The entry of the client's address (`src_*`), without tracking it.
    Src,
}

/// What a counter fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Type(DataType),
    /// `kbytes_in`/`kbytes_out`: the byte counts in kilobytes.
    KBytesIn,
    KBytesOut,
    /// `scN_tracked`: whether the counter is tracked (a boolean).
    Tracked,
}

/// A stick-counter fetch, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub scope: Scope,
    pub data: Counter,
    /// `table` argument: another table than the tracked one / the
    /// section's own.
    pub table: Option<Box<str>>,
}

/// Counter names after the `sc0_`/`sc_`/`src_` prefix.
const COUNTERS: &[(&str, Counter)] = &[
    ("conn_cnt", Counter::Type(DataType::ConnCnt)),
    ("conn_cur", Counter::Type(DataType::ConnCur)),
    ("conn_rate", Counter::Type(DataType::ConnRate)),
    ("sess_cnt", Counter::Type(DataType::SessCnt)),
    ("sess_rate", Counter::Type(DataType::SessRate)),
    ("http_req_cnt", Counter::Type(DataType::HttpReqCnt)),
    ("http_req_rate", Counter::Type(DataType::HttpReqRate)),
    ("http_err_cnt", Counter::Type(DataType::HttpErrCnt)),
    ("http_err_rate", Counter::Type(DataType::HttpErrRate)),
    ("bytes_in_cnt", Counter::Type(DataType::BytesInCnt)),
    ("bytes_in_rate", Counter::Type(DataType::BytesInRate)),
    ("bytes_out_cnt", Counter::Type(DataType::BytesOutCnt)),
    ("bytes_out_rate", Counter::Type(DataType::BytesOutRate)),
    ("kbytes_in", Counter::KBytesIn),
    ("kbytes_out", Counter::KBytesOut),
    ("get_gpc0", Counter::Type(DataType::Gpc0)),
    ("gpc0_rate", Counter::Type(DataType::Gpc0Rate)),
    ("server_id", Counter::Type(DataType::ServerId)),
    ("tracked", Counter::Tracked),
];

impl Query {
    /// Recognises a counter fetch name. `sc_*` comes back as
    /// `Scope::Sc(u8::MAX)`: its counter number is its first argument.
    pub fn parse_name(name: &str) -> Option<(Scope, Counter)> {
        let (scope, rest) = if let Some(r) = name.strip_prefix("src_") {
            (Scope::Src, r)
        } else if let Some(r) = name.strip_prefix("sc_") {
            (Scope::Sc(u8::MAX), r)
        } else {
            let r = name.strip_prefix("sc")?;
            let n = r.as_bytes().first().filter(|c| (b'0'..=b'2').contains(c))?;
            (Scope::Sc(n - b'0'), r[1..].strip_prefix('_')?)
        };
        let (_, counter) = COUNTERS.iter().find(|(n, _)| *n == rest)?;
        if scope == Scope::Src && *counter == Counter::Tracked {
            return None;
        }
        Some((scope, *counter))
    }

    /// The data type a counter reads.
    pub fn data_type(&self) -> Option<DataType> {
        match self.data {
            Counter::Type(t) => Some(t),
            Counter::KBytesIn => Some(DataType::BytesInCnt),
            Counter::KBytesOut => Some(DataType::BytesOutCnt),
            Counter::Tracked => None,
        }
    }
}

/// What stick-counter fetches and actions need from the engine: the
/// worker's tables and the connection's tracked entries.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub store: &'a Store,
    pub defs: &'a [crate::config::StickTable],
    pub tracks: &'a std::cell::RefCell<Tracks>,
    /// The table `src_*` reads without a `table` argument: the section's
    /// own.
    pub own: Option<usize>,
}

impl Env<'_> {
    /// The same, for another section's rules.
    pub fn with_own(self, own: Option<usize>) -> Self {
        Env { own, ..self }
    }

    /// Answers a counter fetch for client `src` (see
    /// `acl::Context::stick_counter`).
    pub fn read(&self, q: &Query, src: std::net::IpAddr) -> Option<u64> {
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
    pub fn act(
        &self,
        action: &rules::StickAction,
        ctx: &dyn crate::acl::Context,
        conn_level: bool,
    ) {
        match action {
            rules::StickAction::Track { sc, fetch, table } => {
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
            rules::StickAction::IncGpc0 { sc } => {
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
