//! A TCP (layer 4) connection, start to finish: pick and connect to a
//! server, relay both ways until both sides are done, log one line.

use crate::engine::worker::Worker;
use crate::log::TcpLog;
use crate::persist::{self, Sticky};
use crate::relay::{self, RelayEnd, Timeouts};
use crate::stream::Stream;
use crate::tcp_rules::ConnCtx;
use crate::upstream::{self, ConnectReport};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

/// Serves one accepted client connection of frontend `fe`.
pub async fn session(
    w: Rc<Worker>,
    fe: usize,
    client: Stream,
    peer: SocketAddr,
    tracks: &RefCell<crate::stick::Tracks>,
) {
    let accepted = SystemTime::now();
    let started = Instant::now();
    let fcfg = &w.config.frontends[fe];
    let Some(backend) = fcfg.default_backend else {
        return; // validation guarantees one; nothing to do without it
    };
    let bcfg = &w.config.backends[backend];
    let bst = &w.backends[backend];
    bst.conns.set(bst.conns.get() + 1);
    let _ = client.tcp().set_nodelay(true);
    let tls_in = client.is_tls();

    // Persistence: the server the client is stuck to.
    let mut sticky = if bcfg.stick.is_empty() {
        Sticky::default()
    } else {
        let ctx = ConnCtx {
            src: peer,
            dst: client.tcp().local_addr().unwrap_or(peer),
            stick: None,
            tls: client.tls_in(),
        };
        // Boxed: only backends with stick rules pay for its state.
        Box::pin(persist::before_connect(&w, backend, &ctx)).await
    };

    // Upstream: reach a server.
    let mut report = ConnectReport::default();
    let local = client.tcp().local_addr().unwrap_or(peer);
    let sni_ctx = ConnCtx {
        src: peer,
        dst: local,
        stick: None,
        tls: client.tls_in(),
    };
    let connected = upstream::connect(
        &w,
        backend,
        peer.ip(),
        &mut report,
        false,
        sticky.prefer,
        &|f, out| f.render(&sni_ctx, out),
    )
    .await;
    if let Ok(up) = &connected {
        persist::after_connect(&w, &mut sticky, up.lease.server());
    }

    // Relay.
    let (termination, up_bytes, down_bytes, lease) = match connected {
        Err(failure) => (failure.termination(), 0, 0, None),
        Ok(upstream::Upstream {
            stream: server,
            lease,
            ..
        }) => {
            let (mut up, mut down) = (w.bufs.take(), w.bufs.take());
            let client = RefCell::new(client);
            let server = RefCell::new(server);
            let timeouts = Timeouts {
                client: fcfg.timeout_client,
                server: bcfg.timeout_server,
            };
            let out = relay::relay(&client, &server, timeouts, (&mut up, &mut down)).await;
            w.bufs.give(up);
            w.bufs.give(down);
            let termination = match out.end {
                RelayEnd::Done => *b"--",
                end => [end.cause(), b'D'],
            };
            (
                termination,
                out.client_to_server,
                out.server_to_client,
                Some(lease),
            )
        }
    };

    // Counters of tracked entries.
    {
        let t = tracks.borrow();
        if !t.is_empty() {
            let defs = &w.config.tables;
            t.count(&w.stick, defs, crate::stick::Event::BytesIn, up_bytes);
            t.count(&w.stick, defs, crate::stick::Event::BytesOut, down_bytes);
        }
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
