//! HAProxy's termination state, the two characters of `%ts` in a tcplog
//! line and the first two of `%tsc` in an httplog line: what ended a
//! connection or request, and in which phase. The data path (tcp and http)
//! sets it; the log writes it. Only the codes corral sets are here;
//! HAProxy's others (causes `R`, `I`, `D`, `K`, phases `L`, `T`) join when
//! a feature sets them.

use crate::io::relay::{RelayEnd, Side};

/// The first character: who or what ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// `-`: it ended normally.
    Normal,
    /// `C`: the client aborted or reset (or sent nothing more).
    Client,
    /// `S`: the server aborted, refused or sent something invalid.
    Server,
    /// `P`: the proxy refused or stopped it (a rule, a protocol error).
    Proxy,
    /// `L`: the proxy answered locally (a rule, the stats page).
    Local,
    /// `c`: the client timeout struck.
    ClientTimeout,
    /// `s`: the server timeout struck.
    ServerTimeout,
}

/// The second character: the phase the session was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `-`: it ended normally.
    Normal,
    /// `R`: waiting for the client's request.
    Request,
    /// `Q`: waiting in a queue for a server slot.
    Queue,
    /// `C`: connecting to a server.
    Connect,
    /// `H`: waiting for, or passing on, the response headers.
    Headers,
    /// `D`: transferring data.
    Data,
}

/// A termination state: `Termination::new(Cause::Server, Phase::Headers)`
/// is logged `SH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Termination {
    pub side: Cause,
    pub phase: Phase,
}

impl Termination {
    /// `--`: nothing went wrong.
    pub(crate) const NORMAL: Termination = Termination::new(Cause::Normal, Phase::Normal);

    pub(crate) const fn new(side: Cause, phase: Phase) -> Termination {
        Termination { side, phase }
    }

    /// The two characters as logged.
    pub(crate) const fn code(self) -> [u8; 2] {
        let side = match self.side {
            Cause::Normal => b'-',
            Cause::Client => b'C',
            Cause::Server => b'S',
            Cause::Proxy => b'P',
            Cause::Local => b'L',
            Cause::ClientTimeout => b'c',
            Cause::ServerTimeout => b's',
        };
        let phase = match self.phase {
            Phase::Normal => b'-',
            Phase::Request => b'R',
            Phase::Queue => b'Q',
            Phase::Connect => b'C',
            Phase::Headers => b'H',
            Phase::Data => b'D',
        };
        [side, phase]
    }

    /// The server ended it (aborted or timed out): counted as the
    /// server's error.
    pub(crate) const fn server_side(self) -> bool {
        matches!(self.side, Cause::Server | Cause::ServerTimeout)
    }
}

impl Cause {
    /// Who ended a relay (a tcp connection, a tunnel).
    pub(crate) const fn of_relay(end: RelayEnd) -> Cause {
        match end {
            RelayEnd::Done => Cause::Normal,
            RelayEnd::Timeout(Side::Client) => Cause::ClientTimeout,
            RelayEnd::Timeout(Side::Server) => Cause::ServerTimeout,
            RelayEnd::Abort(Side::Client) => Cause::Client,
            RelayEnd::Abort(Side::Server) => Cause::Server,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_as_haproxy_writes_them() {
        let t = Termination::new;
        assert_eq!(&Termination::NORMAL.code(), b"--");
        assert_eq!(&t(Cause::Server, Phase::Headers).code(), b"SH");
        assert_eq!(&t(Cause::ServerTimeout, Phase::Queue).code(), b"sQ");
        assert_eq!(&t(Cause::ClientTimeout, Phase::Data).code(), b"cD");
        assert_eq!(&t(Cause::Proxy, Phase::Request).code(), b"PR");
        assert_eq!(&t(Cause::Local, Phase::Request).code(), b"LR");
        assert_eq!(&t(Cause::Client, Phase::Connect).code(), b"CC");
        for (end, code) in [
            (RelayEnd::Done, b"--"),
            (RelayEnd::Timeout(Side::Client), b"cD"),
            (RelayEnd::Timeout(Side::Server), b"sD"),
            (RelayEnd::Abort(Side::Client), b"CD"),
            (RelayEnd::Abort(Side::Server), b"SD"),
        ] {
            let phase = if end == RelayEnd::Done {
                Phase::Normal
            } else {
                Phase::Data
            };
            assert_eq!(&t(Cause::of_relay(end), phase).code(), code);
        }
        assert!(t(Cause::ServerTimeout, Phase::Headers).server_side());
        assert!(!t(Cause::Proxy, Phase::Headers).server_side());
    }
}
