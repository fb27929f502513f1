//! The accounting an open client connection carries for its whole life.

use crate::worker::Worker;
use std::net::SocketAddr;
use std::rc::Rc;

/// What an open client connection holds for its whole life, whichever
/// task serves it at the moment: its slots in the worker's and the
/// frontend's `maxconn` shares, its pass through the worker's gate (so a
/// stop waits for it), and its place in the connection counts.
pub(crate) struct ConnGuard {
    w: Rc<Worker>,
    fe: usize,
    /// Stick counters the connection tracks (`track-scN`); ended when it
    /// closes.
    pub tracks: std::cell::RefCell<crate::stick::Tracks>,
    /// Its slot in the worker's open connections (`show sess`).
    pub sess: u32,
    _pass: glommio::sync::Pass,
    _permits: (glommio::sync::StaticPermit, glommio::sync::StaticPermit),
}

impl ConnGuard {
    pub(crate) fn new(
        w: Rc<Worker>,
        fe: usize,
        peer: SocketAddr,
        pass: glommio::sync::Pass,
        permits: (glommio::sync::StaticPermit, glommio::sync::StaticPermit),
    ) -> ConnGuard {
        let fst = &w.frontends[fe];
        w.conns.set(w.conns.get() + 1);
        fst.conns.set(fst.conns.get() + 1);
        fst.stats.session(fst.conns.get(), w.now_s());
        let sess = w.sessions.open(fe, peer);
        ConnGuard {
            w,
            fe,
            tracks: Default::default(),
            sess,
            _pass: pass,
            _permits: permits,
        }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let tracks = self.tracks.get_mut();
        if !tracks.is_empty() {
            tracks.end(&self.w.stick, &self.w.config.tables, true);
        }
        self.w.sessions.close(self.sess);
        let fst = &self.w.frontends[self.fe];
        fst.conns.set(fst.conns.get() - 1);
        self.w.conns.set(self.w.conns.get() - 1);
    }
}
