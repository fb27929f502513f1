//! What a stick-table entry stores: the server a key sticks to, and
//! counters with their rates (`store: [ conn_cur, "http_req_rate(10s)" ]`).
//!
//! Every counted thing is an [`Event`]: a cumulative count (`http_req_cnt`)
//! and a rate over a period (`http_req_rate(10s)`) go together, so an entry
//! holds one count and one [`FreqCtr`] per event kind, plus `server_id`
//! and `conn_cur`. A table only reads and writes the types it stores.

/// One thing a table can store, with HAProxy's name. The discriminant is
/// the bit in a table's `stored` mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DataType {
    ServerId,
    Gpc0,
    Gpc0Rate,
    ConnCnt,
    ConnRate,
    ConnCur,
    SessCnt,
    SessRate,
    HttpReqCnt,
    HttpReqRate,
    HttpErrCnt,
    HttpErrRate,
    BytesInCnt,
    BytesInRate,
    BytesOutCnt,
    BytesOutRate,
}

/// Every type with its `store` name, in HAProxy's order.
pub(crate) const ALL: &[(DataType, &str)] = &[
    (DataType::ServerId, "server_id"),
    (DataType::Gpc0, "gpc0"),
    (DataType::Gpc0Rate, "gpc0_rate"),
    (DataType::ConnCnt, "conn_cnt"),
    (DataType::ConnRate, "conn_rate"),
    (DataType::ConnCur, "conn_cur"),
    (DataType::SessCnt, "sess_cnt"),
    (DataType::SessRate, "sess_rate"),
    (DataType::HttpReqCnt, "http_req_cnt"),
    (DataType::HttpReqRate, "http_req_rate"),
    (DataType::HttpErrCnt, "http_err_cnt"),
    (DataType::HttpErrRate, "http_err_rate"),
    (DataType::BytesInCnt, "bytes_in_cnt"),
    (DataType::BytesInRate, "bytes_in_rate"),
    (DataType::BytesOutCnt, "bytes_out_cnt"),
    (DataType::BytesOutRate, "bytes_out_rate"),
];

impl DataType {
    /// The bit of this type in a table's `stored` mask.
    pub(crate) fn bit(self) -> u32 {
        1 << self as u32
    }

    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        ALL.iter().find(|(t, _)| *t == self).map_or("?", |(_, n)| n)
    }

    pub(crate) fn by_name(name: &str) -> Option<DataType> {
        ALL.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
    }

    /// Rates take a period in parentheses: `http_req_rate(10s)`.
    pub(crate) fn is_rate(self) -> bool {
        self.rate_of().is_some()
    }

    /// The event a count or rate type follows (`None` for `server_id`
    /// and `conn_cur`).
    pub(crate) fn event(self) -> Option<Event> {
        use DataType::*;
        Some(match self {
            Gpc0 | Gpc0Rate => Event::Gpc0,
            ConnCnt | ConnRate => Event::Conn,
            SessCnt | SessRate => Event::Sess,
            HttpReqCnt | HttpReqRate => Event::HttpReq,
            HttpErrCnt | HttpErrRate => Event::HttpErr,
            BytesInCnt | BytesInRate => Event::BytesIn,
            BytesOutCnt | BytesOutRate => Event::BytesOut,
            ServerId | ConnCur => return None,
        })
    }

    /// For a rate type, the event whose rate it is.
    pub(crate) fn rate_of(self) -> Option<Event> {
        use DataType::*;
        match self {
            Gpc0Rate | ConnRate | SessRate | HttpReqRate | HttpErrRate | BytesInRate
            | BytesOutRate => self.event(),
            _ => None,
        }
    }
}

/// Something counted: each has a cumulative count and a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Gpc0 = 0,
    Conn = 1,
    Sess = 2,
    HttpReq = 3,
    HttpErr = 4,
    BytesIn = 5,
    BytesOut = 6,
}

/// How many event kinds there are.
pub(crate) const EVENTS: usize = 7;

impl Event {
    pub(crate) fn count_type(self) -> DataType {
        [
            DataType::Gpc0,
            DataType::ConnCnt,
            DataType::SessCnt,
            DataType::HttpReqCnt,
            DataType::HttpErrCnt,
            DataType::BytesInCnt,
            DataType::BytesOutCnt,
        ][self as usize]
    }

    pub(crate) fn rate_type(self) -> DataType {
        [
            DataType::Gpc0Rate,
            DataType::ConnRate,
            DataType::SessRate,
            DataType::HttpReqRate,
            DataType::HttpErrRate,
            DataType::BytesInRate,
            DataType::BytesOutRate,
        ][self as usize]
    }
}

/// Events over a sliding period, as HAProxy counts them: the count of the
/// current period and of the previous one; the rate at a moment is the
/// current count plus the previous one weighted by how much of the
/// previous period still lies inside the sliding window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FreqCtr {
    /// Start of the current period (milliseconds on the process clock).
    pub curr_tick: u64,
    pub curr: u32,
    pub prev: u32,
}

impl FreqCtr {
    /// Moves the periods forward to `now`.
    fn rotate(&mut self, now: u64, period: u64) {
        let period = period.max(1);
        if now < self.curr_tick + period {
            return;
        }
        let elapsed = now - self.curr_tick;
        self.prev = if elapsed < 2 * period { self.curr } else { 0 };
        self.curr = 0;
        self.curr_tick = now - elapsed % period;
    }

    /// Counts `n` events at `now`.
    pub(crate) fn add(&mut self, now: u64, period: u64, n: u64) {
        if self.curr_tick == 0 && self.curr == 0 && self.prev == 0 {
            self.curr_tick = now;
        }
        self.rotate(now, period);
        self.curr = self.curr.saturating_add(n.min(u64::from(u32::MAX)) as u32);
    }

    /// Events in the sliding window of `period` ending at `now`.
    pub(crate) fn rate(&self, now: u64, period: u64) -> u64 {
        let mut c = *self;
        c.rotate(now, period);
        let period = period.max(1);
        let into = now.saturating_sub(c.curr_tick).min(period);
        u64::from(c.curr) + u64::from(c.prev) * (period - into) / period
    }
}

/// Everything an entry holds. Types the table does not store stay zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Data {
    /// The server the key sticks to: its 1-based position in the backend
    /// (HAProxy's default server ids), 0 for none.
    pub server_id: u32,
    /// Connections currently tracking the entry.
    pub conn_cur: u32,
    /// Cumulative counts, one per [`Event`].
    pub counts: [u64; EVENTS],
    /// Rates, one per [`Event`].
    pub rates: [FreqCtr; EVENTS],
}

/// Changes a worker made to an entry it does not own, waiting to be
/// folded into the owner's copy (see `store.rs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Delta {
    /// Events counted, one amount per [`Event`].
    pub events: [u64; EVENTS],
    /// Connections that began (+) or ended (-) tracking the entry.
    pub conn_cur: i32,
    /// A `stick store` wrote this server id (last writer wins).
    pub server_id: Option<u32>,
    /// The entry was used (refreshes its expiry on the owner).
    pub touched: bool,
}

impl Delta {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Delta::default()
    }
}

/// A table's data layout: which types it stores and each rate's period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bits of [`DataType::bit`].
    pub stored: u32,
    /// Period of each event's rate, in milliseconds (0 when not stored).
    pub periods: [u64; EVENTS],
}

impl Layout {
    pub(crate) fn has(&self, t: DataType) -> bool {
        self.stored & t.bit() != 0
    }

    /// Folds `d` into `data` at `now`.
    pub(crate) fn apply(&self, data: &mut Data, d: &Delta, now: u64) {
        for (i, &n) in d.events.iter().enumerate() {
            if n > 0 {
                self.count(data, EVENT_LIST[i], n, now);
            }
        }
        if self.has(DataType::ConnCur) {
            data.conn_cur = data.conn_cur.saturating_add_signed(d.conn_cur);
        }
        if let Some(id) = d.server_id
            && self.has(DataType::ServerId)
        {
            data.server_id = id;
        }
    }

    /// Counts `n` of `ev` in `data` at `now`.
    pub(crate) fn count(&self, data: &mut Data, ev: Event, n: u64, now: u64) {
        let i = ev as usize;
        if self.has(ev.count_type()) {
            data.counts[i] = data.counts[i].saturating_add(n);
        }
        if self.has(ev.rate_type()) {
            data.rates[i].add(now, self.periods[i], n);
        }
    }

    /// The value of `t` in `data` plus a delta not yet folded in, at
    /// `now`; `None` when the table does not store `t`.
    pub(crate) fn read(&self, t: DataType, data: &Data, pending: &Delta, now: u64) -> Option<u64> {
        if !self.has(t) {
            return None;
        }
        Some(match t {
            DataType::ServerId => u64::from(pending.server_id.unwrap_or(data.server_id)),
            DataType::ConnCur => {
                (i64::from(data.conn_cur) + i64::from(pending.conn_cur)).max(0) as u64
            }
            _ => {
                let ev = t.event().expect("every other type follows an event");
                let i = ev as usize;
                let base = if t.is_rate() {
                    data.rates[i].rate(now, self.periods[i])
                } else {
                    data.counts[i]
                };
                base + pending.events[i]
            }
        })
    }
}

/// The events in discriminant order.
pub(crate) const EVENT_LIST: [Event; EVENTS] = [
    Event::Gpc0,
    Event::Conn,
    Event::Sess,
    Event::HttpReq,
    Event::HttpErr,
    Event::BytesIn,
    Event::BytesOut,
];

/// `stick-table.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    /// IPv4 addresses (an IPv4-mapped IPv6 client becomes its IPv4 form).
    Ip,
    /// IPv6 addresses (IPv4 clients are stored mapped, `::ffff:a.b.c.d`).
    Ipv6,
    /// 32-bit unsigned integers.
    Integer,
    /// Byte strings, truncated to `len` (default 32).
    String { len: usize },
}

impl KeyType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyType::Ip => "ip",
            KeyType::Ipv6 => "ipv6",
            KeyType::Integer => "integer",
            KeyType::String { .. } => "string",
        }
    }
}

/// Whose counters a fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The entry tracked by `track-scN` (`sc0_*`, `sc_*(N)`).
    Sc(u8),
    /// The entry of the client's address (`src_*`), without tracking it.
    Src,
}

/// What a counter fetch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Type(DataType),
    /// `kbytes_in`/`kbytes_out`: the byte counts in kilobytes.
    KBytesIn,
    KBytesOut,
    /// `scN_tracked`: whether the counter is tracked (a boolean).
    Tracked,
}

/// A stick-counter fetch, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Query {
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
    pub(crate) fn parse_name(name: &str) -> Option<(Scope, Counter)> {
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
    pub(crate) fn data_type(&self) -> Option<DataType> {
        match self.data {
            Counter::Type(t) => Some(t),
            Counter::KBytesIn => Some(DataType::BytesInCnt),
            Counter::KBytesOut => Some(DataType::BytesOutCnt),
            Counter::Tracked => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_events_pair_up() {
        for (t, n) in ALL {
            assert_eq!(DataType::by_name(n), Some(*t));
            assert_eq!(t.name(), *n);
            if let Some(ev) = t.event() {
                assert!(ev.count_type() == *t || ev.rate_type() == *t);
            }
        }
        assert_eq!(DataType::by_name("nope"), None);
    }

    #[test]
    fn rate_slides_over_the_period() {
        let mut f = FreqCtr::default();
        let p = 10_000;
        f.add(1_000, p, 100);
        assert_eq!(f.rate(1_000, p), 100);
        assert_eq!(f.rate(10_999, p), 100);
        // Half-way through the next period, half of the previous counts.
        assert_eq!(f.rate(16_000, p), 50);
        f.add(16_000, p, 10);
        assert_eq!(f.rate(16_000, p), 60);
        // Two periods later, nothing is left.
        assert_eq!(f.rate(40_000, p), 0);
    }

    #[test]
    fn layout_reads_only_what_it_stores() {
        let mut l = Layout {
            stored: DataType::HttpReqRate.bit() | DataType::ConnCur.bit(),
            ..Layout::default()
        };
        l.periods[Event::HttpReq as usize] = 10_000;
        let mut d = Data::default();
        l.count(&mut d, Event::HttpReq, 3, 5);
        l.count(&mut d, Event::Conn, 3, 5);
        let none = Delta::default();
        assert_eq!(l.read(DataType::HttpReqRate, &d, &none, 6), Some(3));
        assert_eq!(l.read(DataType::HttpReqCnt, &d, &none, 6), None);
        assert_eq!(d.counts[Event::Conn as usize], 0);
        let pending = Delta {
            conn_cur: 2,
            events: [0, 0, 0, 4, 0, 0, 0],
            ..Delta::default()
        };
        assert_eq!(l.read(DataType::ConnCur, &d, &pending, 6), Some(2));
        assert_eq!(l.read(DataType::HttpReqRate, &d, &pending, 6), Some(7));
        l.apply(&mut d, &pending, 7);
        assert_eq!(d.conn_cur, 2);
        assert_eq!(l.read(DataType::HttpReqRate, &d, &none, 7), Some(7));
    }
}
