//! Reaching a server of a backend: pick (balance), wait in the queue when
//! every eligible server is at its `maxconn`, connect within `timeout
//! connect`, and on failure retry on another server (`retries`).

pub(crate) mod persist;

use crate::acl::LogFormat;
use crate::balance::backend::Lease;
use crate::balance::pick::{self, Pick};
use crate::io::conn::{Deadline, until};
use crate::io::stream::Stream;
use crate::observe::termination::{Cause, Phase, Termination};
use crate::worker::Worker;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What happened on the way to a server, for the log line.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectReport {
    /// The server of the last attempt.
    pub server: Option<usize>,
    /// Attempts after the first.
    pub retries: u32,
    /// Time spent queued (Tw).
    pub queue: Option<Duration>,
    /// Time the successful connect took (Tc).
    pub connect: Option<Duration>,
}

/// Why no server connection could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    /// No server of the backend is up.
    NoServer,
    /// Waited `timeout queue` for a free slot.
    QueueTimeout,
    /// Every attempt failed; the last one was refused or reset.
    Refused,
    /// Every attempt failed; the last one timed out.
    TimedOut,
}

impl ConnectFailure {
    /// HAProxy's termination state: `SC`, `sQ` or `sC`.
    pub(crate) fn termination(self) -> Termination {
        match self {
            ConnectFailure::NoServer | ConnectFailure::Refused => {
                Termination::new(Cause::Server, Phase::Connect)
            }
            ConnectFailure::QueueTimeout => Termination::new(Cause::ServerTimeout, Phase::Queue),
            ConnectFailure::TimedOut => Termination::new(Cause::ServerTimeout, Phase::Connect),
        }
    }
}

/// A connection to a server, with its slot.
pub(crate) struct Upstream {
    pub stream: Stream,
    pub lease: Lease,
    /// Taken from the idle pool rather than newly connected.
    pub reused: bool,
}

/// Connects to a server of `backend` for a client at `client_ip`. With
/// `reuse`, an idle pooled connection to the chosen server is taken first.
/// `prefer` (from stick rules) is tried first while it is up and has a
/// free slot; otherwise, and for retries, the balance algorithm picks.
/// For a server with `tls:`, the TLS handshake is part of connecting (and
/// of `timeout connect`); `sni` renders the server's `sni` setting in the
/// caller's context.
#[allow(clippy::too_many_arguments)] // one per decision input
pub(crate) async fn connect(
    w: &Worker,
    backend: usize,
    client_ip: IpAddr,
    report: &mut ConnectReport,
    reuse: bool,
    prefer: Option<usize>,
    sni: &dyn Fn(&LogFormat, &mut Vec<u8>),
) -> Result<Upstream, ConnectFailure> {
    let cfg = &w.config.backends[backend];
    let st = &w.backends[backend];
    // Servers whose connection failed; allocates only after a failure.
    let mut tried: Vec<usize> = Vec::new();
    let mut queued_since: Option<Instant> = None;
    loop {
        let preferred = prefer.filter(|&i| {
            tried.is_empty() && st.servers[i].takes_persistent() && st.servers[i].has_slot()
        });
        let pick = match preferred {
            Some(i) => Pick::Server(i),
            None => pick::pick(cfg, st, client_ip, &tried),
        };
        let server = match pick {
            Pick::NoServer => return Err(ConnectFailure::NoServer),
            Pick::Full => {
                let since = *queued_since.get_or_insert_with(Instant::now);
                let Some(left) = cfg.timeout_queue.checked_sub(since.elapsed()) else {
                    report.queue = Some(since.elapsed());
                    return Err(ConnectFailure::QueueTimeout);
                };
                st.queued.set(st.queued.get() + 1);
                // Queueing and connecting are boxed: they are the slow
                // paths, and kept inline they would enlarge every HTTP
                // session's future (held by every idle connection).
                let woken = Box::pin(futures_lite::future::or(
                    async {
                        st.queue.wait().await;
                        true
                    },
                    async {
                        Timer::new(left).await;
                        false
                    },
                ))
                .await;
                st.queued.set(st.queued.get() - 1);
                if !woken {
                    report.queue = Some(since.elapsed());
                    return Err(ConnectFailure::QueueTimeout);
                }
                continue;
            }
            Pick::Server(i) => i,
        };
        report.queue = Some(queued_since.map_or(Duration::ZERO, |t| t.elapsed()));
        report.server = Some(server);
        let lease = st.lease(server);
        let poolable = cfg.servers[server].tls.as_ref().is_none_or(|t| t.sni_fixed);
        if reuse
            && poolable
            && let Some(stream) = st.servers[server].take_idle()
        {
            report.connect = Some(Duration::ZERO);
            return Ok(Upstream {
                stream,
                lease,
                reused: true,
            });
        }
        if tried.contains(&server) {
            // No other server to move to: give the server a moment before
            // trying it again, as HAProxy does.
            Box::pin(Timer::new(cfg.timeout_connect.min(Duration::from_secs(1)))).await;
        }
        let started = Instant::now();
        let addr = st.servers[server].addr.get();
        let attempt = async {
            let tcp = TcpStream::connect_timeout(addr, cfg.timeout_connect)
                .await
                .map_err(io::Error::from)?;
            let _ = tcp.set_nodelay(true);
            match (&cfg.servers[server].tls, &w.tls_out[backend][server]) {
                (Some(tls), Some(client)) => {
                    let mut name = Vec::new();
                    if let Some(f) = &tls.sni {
                        sni(f, &mut name);
                    }
                    let name = std::str::from_utf8(&name).ok().filter(|n| !n.is_empty());
                    let left = cfg.timeout_connect.saturating_sub(started.elapsed());
                    let handshake =
                        crate::tls::connect::connect(client.clone(), tcp, name, addr.ip());
                    match until(Deadline::After(left), handshake).await {
                        Ok(r) => r,
                        Err(_) => Err(io::Error::from(io::ErrorKind::TimedOut)),
                    }
                }
                _ => Ok(Stream::Plain(tcp)),
            }
        };
        match Box::pin(attempt).await {
            Ok(stream) => {
                report.connect = Some(started.elapsed());
                return Ok(Upstream {
                    stream,
                    lease,
                    reused: false,
                });
            }
            Err(e) => {
                drop(lease);
                let failure = if e.kind() == io::ErrorKind::TimedOut {
                    ConnectFailure::TimedOut
                } else {
                    ConnectFailure::Refused
                };
                if report.retries >= cfg.retries {
                    return Err(failure);
                }
                report.retries += 1;
                if !tried.contains(&server) {
                    tried.push(server);
                }
            }
        }
    }
}
