//! The master's listening sockets: for every bind address, one
//! SO_REUSEPORT group of sockets, socket `k` accepted by worker
//! `k mod workers` of the serving generation.
//!
//! The master creates and keeps every listening socket; each generation
//! gets them over its channel (SCM_RIGHTS). A socket therefore outlives
//! the generations that accept on it, and the connections waiting in its
//! accept queue are simply accepted by the next generation: nothing is
//! closed during a reload, so nothing queued is lost.
//!
//! A reload matches each bind of the new configuration to a group:
//! same address (or, for a port-0 bind, same frontend, address and
//! position, so an ephemeral port survives reloads); unmatched binds get
//! a new group. A group never shrinks while the master lives: a
//! generation with fewer workers than sockets has some workers accept on
//! several sockets (closing one would drop its queue and, with `steer`,
//! reorder the group). A group with fewer sockets than workers grows: the
//! new sockets are bound here but only `listen()`ed by the new generation
//! once its workers run, in order, so a failed reload leaves no socket
//! that nobody accepts on. Groups no configuration uses any more are
//! closed once the new generation serves.

use crate::config::Config;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

/// One listening socket of a group.
pub(crate) struct Sock {
    /// Unique for the master's life: names the socket in the hand-over
    /// messages.
    pub id: u64,
    pub socket: Socket,
    /// `listen()` was called (by a generation that became ready).
    pub listening: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Addr(SocketAddr),
    /// A port-0 bind: the `nth` bind of frontend `frontend` on `ip` with
    /// port 0.
    Ephemeral {
        frontend: String,
        ip: IpAddr,
        nth: usize,
    },
}

pub(crate) struct Group {
    key: Key,
    /// The address with its port resolved.
    pub addr: SocketAddr,
    pub socks: Vec<Sock>,
}

/// Every group the master holds.
#[derive(Default)]
pub(crate) struct Groups {
    groups: Vec<Group>,
    next_id: u64,
}

/// What a configuration needs: the group of each bind, and what was
/// created for it (undone by `abort`).
pub(crate) struct Plan {
    /// `[frontend][bind]` → index into the groups.
    pub binds: Vec<Vec<usize>>,
    /// Groups before the plan (the ones at and after are new).
    kept: usize,
    /// Existing groups that grew: (group, sockets before).
    grown: Vec<(usize, usize)>,
}

/// The sockets of one bind as a generation receives them.
pub(crate) struct BindSockets<'a> {
    pub frontend: usize,
    pub bind: usize,
    pub socks: &'a [Sock],
}

impl Groups {
    /// Finds or creates the group of every bind of `config` (writing the
    /// resolved port of port-0 binds into it) and makes every group at
    /// least `workers` sockets large. An error is the message for the
    /// first bind that cannot be had; nothing is kept then.
    pub(crate) fn plan(&mut self, config: &mut Config) -> Result<Plan, String> {
        let kept = self.groups.len();
        let mut plan = Plan {
            binds: Vec::new(),
            kept,
            grown: Vec::new(),
        };
        let workers = config.global.workers;
        let mut used = vec![false; kept];
        let result = (|| {
            for fe in config.frontends.iter_mut() {
                let keys: Vec<Key> = (0..fe.binds.len())
                    .map(|i| {
                        let addr = fe.binds[i].addr;
                        if addr.port() != 0 {
                            return Key::Addr(addr);
                        }
                        let nth = fe.binds[..i]
                            .iter()
                            .filter(|b| b.addr.port() == 0 && b.addr.ip() == addr.ip())
                            .count();
                        Key::Ephemeral {
                            frontend: fe.name.clone(),
                            ip: addr.ip(),
                            nth,
                        }
                    })
                    .collect();
                let mut list = Vec::new();
                for (i, (bind, key)) in fe.binds.iter_mut().zip(keys).enumerate() {
                    let path = format!("frontends.{}.bind[{i}]", fe.name);
                    let found = (0..kept).find(|&g| !used[g] && self.groups[g].key == key);
                    let g = match found {
                        Some(g) => {
                            used[g] = true;
                            g
                        }
                        None => {
                            let addr = reserve(bind.addr).map_err(|e| {
                                crate::process::startup::bind_error(&e, &path, &bind.text)
                            })?;
                            self.groups.push(Group {
                                key,
                                addr,
                                socks: Vec::new(),
                            });
                            self.groups.len() - 1
                        }
                    };
                    let group = &mut self.groups[g];
                    bind.addr = group.addr;
                    let before = group.socks.len();
                    while group.socks.len() < workers {
                        let socket = new_socket(group.addr)
                            .and_then(|s| s.bind(&group.addr.into()).map(|_| s))
                            .map_err(|e| {
                                crate::process::startup::bind_error(&e, &path, &bind.text)
                            })?;
                        self.next_id += 1;
                        group.socks.push(Sock {
                            id: self.next_id,
                            socket,
                            listening: false,
                        });
                    }
                    if before < group.socks.len() && g < kept {
                        plan.grown.push((g, before));
                    }
                    list.push(g);
                }
                plan.binds.push(list);
            }
            Ok(())
        })();
        match result {
            Ok(()) => Ok(plan),
            Err(e) => {
                self.abort(plan);
                Err(e)
            }
        }
    }

    /// The sockets of every bind of a plan, in configuration order.
    pub(crate) fn sockets<'a>(&'a self, plan: &Plan) -> Vec<BindSockets<'a>> {
        let mut out = Vec::new();
        for (f, binds) in plan.binds.iter().enumerate() {
            for (b, &g) in binds.iter().enumerate() {
                out.push(BindSockets {
                    frontend: f,
                    bind: b,
                    socks: &self.groups[g].socks,
                });
            }
        }
        out
    }

    /// The plan's generation serves: its sockets listen, and groups it
    /// does not use are closed (the master's copies; a retiring
    /// generation closes its own when it stops accepting).
    pub(crate) fn commit(&mut self, plan: Plan) -> Vec<SocketAddr> {
        let mut used = vec![false; self.groups.len()];
        for binds in &plan.binds {
            for &g in binds {
                used[g] = true;
            }
        }
        let mut closed = Vec::new();
        let mut i = 0;
        self.groups.retain_mut(|g| {
            let keep = used[i];
            i += 1;
            if keep {
                for s in &mut g.socks {
                    s.listening = true;
                }
            } else {
                closed.push(g.addr);
            }
            keep
        });
        closed
    }

    /// The plan's generation did not start: what it created goes.
    pub(crate) fn abort(&mut self, plan: Plan) {
        self.groups.truncate(plan.kept);
        for (g, before) in plan.grown {
            // The new sockets are the last ones and never listened: the
            // group's order is untouched.
            self.groups[g].socks.truncate(before);
        }
    }

    /// Closes every socket (SIGTERM: new connections are refused from
    /// now on, once the generations have closed theirs too).
    pub(crate) fn close_all(&mut self) {
        self.groups.clear();
    }

    pub(crate) fn fds(socks: &[Sock]) -> Vec<RawFd> {
        socks.iter().map(|s| s.socket.as_raw_fd()).collect()
    }
}

/// A new listening socket's options (SO_REUSEADDR, SO_REUSEPORT, v6-only
/// for IPv6, non-blocking, close-on-exec).
fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Checks that nobody holds `addr` (a probe without SO_REUSEPORT fails
/// even against another process's SO_REUSEPORT listener) and resolves
/// port 0 to the port the kernel picks.
fn reserve(addr: SocketAddr) -> io::Result<SocketAddr> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    if addr.is_ipv6() {
        probe.set_only_v6(true)?;
    }
    probe.bind(&addr.into())?;
    let mut addr = addr;
    if addr.port() == 0 {
        let local = probe
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("could not read the port picked"))?;
        addr.set_port(local.port());
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(std::path::Path::new("t.yaml"), text).unwrap()
    }

    fn yaml(workers: usize, binds: &str) -> String {
        format!(
            "global: {{ workers: {workers} }}\nfrontends:\n  fe: {{ bind: {binds}, default_backend: be }}\nbackends:\n  be: {{ servers: {{ s: {{ address: \"127.0.0.1:9\" }} }} }}\n"
        )
    }

    #[test]
    fn port_zero_binds_keep_their_port_and_groups_grow_but_never_shrink() {
        let mut groups = Groups::default();
        let mut c1 = config(&yaml(2, "[\"127.0.0.1:0\", \"127.0.0.1:0\"]"));
        let p1 = groups.plan(&mut c1).unwrap();
        let (a, b) = (c1.frontends[0].binds[0].addr, c1.frontends[0].binds[1].addr);
        assert_ne!(a.port(), 0);
        assert_ne!(a, b);
        assert_eq!(groups.sockets(&p1)[0].socks.len(), 2);
        let ids: Vec<u64> = groups.sockets(&p1)[0].socks.iter().map(|s| s.id).collect();
        assert!(groups.commit(p1).is_empty());

        // More workers, one bind fewer: the first bind keeps its port and
        // its sockets, and grows; the second group closes.
        let mut c2 = config(&yaml(3, "\"127.0.0.1:0\""));
        let p2 = groups.plan(&mut c2).unwrap();
        assert_eq!(c2.frontends[0].binds[0].addr, a);
        let socks = groups.sockets(&p2)[0].socks;
        assert_eq!(socks.len(), 3);
        assert_eq!(socks[..2].iter().map(|s| s.id).collect::<Vec<_>>(), ids);
        assert!(!socks[2].listening);
        assert_eq!(groups.commit(p2), vec![b]);

        // Fewer workers: the group keeps its three sockets.
        let mut c3 = config(&yaml(1, "\"127.0.0.1:0\""));
        let p3 = groups.plan(&mut c3).unwrap();
        assert_eq!(groups.sockets(&p3)[0].socks.len(), 3);
        groups.commit(p3);
    }

    #[test]
    fn a_failed_plan_leaves_the_groups_as_they_were() {
        let mut groups = Groups::default();
        let mut c1 = config(&yaml(1, "\"127.0.0.1:0\""));
        let p1 = groups.plan(&mut c1).unwrap();
        groups.commit(p1);
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = taken.local_addr().unwrap();
        let mut c2 = config(&yaml(2, &format!("[\"127.0.0.1:0\", \"{busy}\"]")));
        let err = groups.plan(&mut c2).err().expect("the port is taken");
        assert!(err.contains("already in use"), "{err}");
        assert_eq!(groups.groups.len(), 1);
        assert_eq!(groups.groups[0].socks.len(), 1);
    }
}
