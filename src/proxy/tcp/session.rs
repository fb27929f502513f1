//! A TCP (layer 4) connection, start to finish: pick and connect to a
//! server, relay both ways until both sides are done, log one line.

use crate::io::relay::{self, RelayEnd, RelayOutcome, Side, Timeouts};
use crate::io::stream::Stream;
use crate::observe::log::TcpLog;
use crate::observe::termination::{Cause, Phase, Termination};
use crate::proxy::tcp::rules::{ConnCtx, Refused};
use crate::proxy::upstream::persist::{self, Sticky};
use crate::proxy::upstream::{self, ConnectReport};
use crate::worker::Worker;
use futures_lite::io::AsyncWriteExt;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

/// Serves one accepted client connection of frontend `fe`.
pub(crate) async fn session(
    w: Rc<Worker>,
    fe: usize,
    mut client: Stream,
    peer: SocketAddr,
    tracks: &RefCell<crate::stick::Tracks>,
    sess: u32,
) {
    let accepted = SystemTime::now();
    let started = Instant::now();
    let fcfg = &w.config.frontends[fe];
    let _ = client.tcp().set_nodelay(true);
    let local = client.tcp().local_addr().unwrap_or(peer);
    let tls_in = client.is_tls();

    // Content inspection (`tcp-request inspect-delay`): the client's first
    // bytes are held in the relay buffers until the rules decide; they go
    // to the server first, untouched.
    let mut held: Option<Held> = None;
    let route = match fcfg.inspect_delay {
        None => Ok(crate::proxy::tcp::rules::route(
            &w,
            fe,
            tracks,
            (peer, local),
            client.tls_in(),
        )),
        Some(delay) => {
            let mut h = Held {
                up: w.bufs.take(),
                down: w.bufs.take(),
                len: 0,
            };
            let bufs = (&mut h.up[..], &mut h.down[..]);
            let verdict = crate::proxy::tcp::rules::inspect(
                &w,
                fe,
                &mut client,
                peer,
                local,
                tracks,
                delay,
                bufs,
            )
            .await;
            match verdict {
                Ok(passed) => {
                    h.len = passed.held;
                    held = Some(h);
                    Ok(passed.backend)
                }
                Err(refused) => {
                    h.give_back(&w);
                    Err(refused)
                }
            }
        }
    };
    let refused = match route {
        Ok(Some(backend)) => Ok(backend),
        // No `use_backend` matched and there is no default: as in
        // HAProxy, the frontend has no server for it.
        Ok(None) => Err((
            held.take().map_or(0, |h| h.give_back(&w)),
            Termination::new(Cause::Server, Phase::Connect),
        )),
        Err(refused) => {
            if let Refused::BadHello { reason, .. } = refused
                && let Some(left_out) = w.hello_warnings.allow()
            {
                crate::warning!(
                    "frontend {}: closing connection from {peer}: invalid TLS ClientHello: {reason}{}",
                    fcfg.name,
                    if left_out > 0 {
                        format!(" ({left_out} more since the last one not shown)")
                    } else {
                        String::new()
                    }
                );
            }
            Err((refused.held(), refused.termination()))
        }
    };
    let backend = match refused {
        Ok(backend) => backend,
        Err((n, termination)) => {
            let when = (accepted, started);
            return refuse(&w, fe, tracks, (peer, tls_in), when, n, termination);
        }
    };
    let bcfg = &w.config.backends[backend];
    let bst = &w.backends[backend];
    bst.conns.set(bst.conns.get() + 1);

    // Persistence: the server the client is stuck to.
    let ctx = ConnCtx {
        src: peer,
        dst: local,
        stick: None,
        payload: None,
        tls: client.tls_in(),
    };
    let mut sticky = if bcfg.stick.is_empty() {
        Sticky::default()
    } else {
        // Boxed: only backends with stick rules pay for its state.
        Box::pin(persist::before_connect(&w, backend, &ctx)).await
    };

    // Upstream: reach a server.
    let mut report = ConnectReport::default();
    let connected = upstream::connect(
        &w,
        backend,
        peer.ip(),
        &mut report,
        false,
        sticky.prefer,
        &|f, out| f.render(&ctx, out),
    )
    .await;
    if let Ok(up) = &connected {
        persist::after_connect(&w, &mut sticky, up.lease.server());
        w.sessions.route(sess, backend, up.lease.server());
    }
    // Counters: the backend's session, the server's or a failed connect.
    {
        use crate::observe::counters::Counters;
        let now = w.now_s();
        bst.stats.session(bst.conns.get(), now);
        bst.stats
            .retries
            .set(bst.stats.retries.get() + u64::from(report.retries));
        bst.stats.queued(bst.queued.get());
        match &connected {
            Ok(up) => {
                let ss = &bst.servers[up.lease.server()];
                ss.stats.session(ss.conns.get(), now);
            }
            Err(_) => {
                Counters::bump(&bst.stats.connect_errors);
                if let Some(s) = report.server {
                    Counters::bump(&bst.servers[s].stats.connect_errors);
                }
            }
        }
    }

    // Relay, after the bytes inspection held.
    let (termination, up_bytes, down_bytes, lease) = match connected {
        // The bytes inspection held were received, not forwarded.
        Err(failure) => {
            let received = held.as_ref().map_or(0, |h| h.len as u64);
            (failure.termination(), received, 0, None)
        }
        Ok(upstream::Upstream {
            stream: mut server,
            lease,
            ..
        }) => {
            let Held {
                mut up,
                mut down,
                len: prefix,
            } = held.take().unwrap_or_else(|| Held {
                up: w.bufs.take(),
                down: w.bufs.take(),
                len: 0,
            });
            let sent = send_held(&mut server, &up[..prefix], bcfg.timeout_server).await;
            let client = RefCell::new(client);
            let server = RefCell::new(server);
            let timeouts = Timeouts {
                client: fcfg.timeout_client,
                server: bcfg.timeout_server,
            };
            let out = match sent {
                Ok(()) => {
                    relay::relay(&client, &server, timeouts, (&mut up, &mut down), &w.clock).await
                }
                Err(end) => RelayOutcome {
                    end,
                    client_to_server: 0,
                    server_to_client: 0,
                },
            };
            w.bufs.give(up);
            w.bufs.give(down);
            let termination = match out.end {
                RelayEnd::Done => Termination::NORMAL,
                end => Termination::new(Cause::of_relay(end), Phase::Data),
            };
            let up_bytes = if sent.is_ok() { prefix as u64 } else { 0 };
            (
                termination,
                up_bytes + out.client_to_server,
                out.server_to_client,
                Some(lease),
            )
        }
    };
    if let Some(h) = held {
        h.give_back(&w); // the server could not be reached
    }

    count_bytes(&w, tracks, up_bytes, down_bytes);
    w.frontends[fe].stats.bytes(up_bytes, down_bytes);
    bst.stats.bytes(up_bytes, down_bytes);
    if lease.is_some()
        && let Some(s) = report.server
    {
        bst.servers[s].stats.bytes(up_bytes, down_bytes);
    }

    // Log.
    let fst = &w.frontends[fe];
    let silent = up_bytes == 0 && down_bytes == 0;
    let unlogged = fst.log.is_empty() || (fcfg.dontlognull && silent);
    if !unlogged {
        let server = report.server.filter(|_| lease.is_some());
        let rec = TcpLog {
            client: peer,
            accepted,
            frontend: &fcfg.name,
            backend: &bcfg.name,
            server: server.map(|s| bcfg.servers[s].name.as_str()),
            queue: report.queue,
            connect: report.connect,
            total: started.elapsed(),
            bytes_out: down_bytes,
            termination,
            actconn: w.conns.get(),
            feconn: fst.conns.get(),
            beconn: bst.conns.get(),
            srvconn: server.map_or(0, |s| bst.servers[s].conns.get()),
            retries: report.retries,
            srv_queue: 0,
            be_queue: bst.queued.get(),
            tls: tls_in,
        };
        w.logs.line(&fst.log, |out| rec.write(out));
    }
    drop(lease);
    bst.conns.set(bst.conns.get() - 1);
}

/// The relay buffers while content inspection holds the client's first
/// `len` bytes in `up`.
struct Held {
    up: Box<[u8]>,
    down: Box<[u8]>,
    len: usize,
}

impl Held {
    /// Returns the buffers to the pool; the number of bytes held.
    fn give_back(self, w: &Worker) -> usize {
        w.bufs.give(self.up);
        w.bufs.give(self.down);
        self.len
    }
}

/// Writes the bytes content inspection read from the client to the
/// server, before the relay starts.
async fn send_held(server: &mut Stream, held: &[u8], timeout: Duration) -> Result<(), RelayEnd> {
    if held.is_empty() {
        return Ok(());
    }
    let _ = server.tcp().set_write_timeout(Some(timeout));
    let sent = match server.write_all(held).await {
        Ok(()) => server.flush().await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(RelayEnd::Timeout(Side::Server)),
        Err(_) => Err(RelayEnd::Abort(Side::Server)),
    }
}

/// Adds the bytes a connection moved to the counters it tracks.
fn count_bytes(w: &Worker, tracks: &RefCell<crate::stick::Tracks>, up: u64, down: u64) {
    let t = tracks.borrow();
    if !t.is_empty() {
        let defs = &w.config.tables;
        t.count(&w.stick, defs, crate::model::table::Event::BytesIn, up);
        t.count(&w.stick, defs, crate::model::table::Event::BytesOut, down);
    }
}

/// Logs a connection closed before any backend took it (rejected by a
/// content rule, a bad hello, no backend) as HAProxy writes it,
/// `FRONTEND FRONTEND/<NOSRV>`, and counts the `held` bytes it had sent in
/// its tracked counters.
fn refuse(
    w: &Worker,
    fe: usize,
    tracks: &RefCell<crate::stick::Tracks>,
    (peer, tls): (SocketAddr, bool),
    (accepted, started): (SystemTime, Instant),
    held: usize,
    termination: Termination,
) {
    count_bytes(w, tracks, held as u64, 0);
    let fcfg = &w.config.frontends[fe];
    let fst = &w.frontends[fe];
    if fst.log.is_empty() || (fcfg.dontlognull && held == 0) {
        return;
    }
    let rec = TcpLog {
        client: peer,
        accepted,
        frontend: &fcfg.name,
        backend: &fcfg.name,
        server: None,
        queue: None,
        connect: None,
        total: started.elapsed(),
        bytes_out: 0,
        termination,
        actconn: w.conns.get(),
        feconn: fst.conns.get(),
        beconn: 0,
        srvconn: 0,
        retries: 0,
        srv_queue: 0,
        be_queue: 0,
        tls,
    };
    w.logs.line(&fst.log, |out| rec.write(out));
}
