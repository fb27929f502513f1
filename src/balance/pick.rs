//! Picking a server: `roundrobin` (smooth, weighted), `leastconn`,
//! `source` (consistent hash of the full client IP) and `first`.
//!
//! Candidates are the normal servers that are up, `ready` (not drained or
//! in maintenance on the runtime API) and have a weight; backup
//! servers only when no normal server is up (the first backup, or all of
//! them with `option allbackups`). Servers already tried for this
//! connection are skipped while another candidate remains.

use crate::balance::backend::BackendState;
use crate::base::hash;
use crate::config::{Backend, Balance};
use std::net::IpAddr;

/// What the balancer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Connect to this server (index in the backend).
    Server(usize),
    /// Servers are up but every eligible one is at its `maxconn`: queue.
    Full,
    /// No server is up.
    NoServer,
}

/// Picks a server for a connection from `client`, avoiding `tried`.
pub(crate) fn pick(cfg: &Backend, st: &BackendState, client: IpAddr, tried: &[usize]) -> Pick {
    let mut buf = [0usize; 64];
    let candidates = candidates(cfg, st, tried, &mut buf);
    if candidates.is_empty() {
        return Pick::NoServer;
    }
    match cfg.balance {
        Balance::RoundRobin => round_robin(st, candidates),
        Balance::LeastConn => least_conn(st, candidates),
        Balance::Source => source(st, candidates, client),
        Balance::First => candidates
            .iter()
            .copied()
            .find(|&i| st.servers[i].has_slot())
            .map_or(Pick::Full, Pick::Server),
    }
}

/// Fills `buf` with the eligible servers. Backends with more than 64
/// servers fall back to a heap list (rare, and never on the common path).
fn candidates<'b>(
    cfg: &Backend,
    st: &BackendState,
    tried: &[usize],
    buf: &'b mut [usize; 64],
) -> std::borrow::Cow<'b, [usize]> {
    let up = |i: usize| st.servers[i].balanced();
    let normal = |i: usize| !cfg.servers[i].backup;
    let any_normal_up = (0..cfg.servers.len()).any(|i| normal(i) && up(i));
    let mut list: Vec<usize> = Vec::new();
    let mut n = 0;
    let mut push = |i: usize| {
        if n < buf.len() {
            buf[n] = i;
        } else {
            if list.is_empty() {
                list.extend_from_slice(&buf[..]);
            }
            list.push(i);
        }
        n += 1;
    };
    let eligible = |i: usize| {
        if any_normal_up {
            normal(i) && up(i)
        } else {
            !normal(i) && up(i)
        }
    };
    let untried_exists = (0..cfg.servers.len()).any(|i| eligible(i) && !tried.contains(&i));
    for i in 0..cfg.servers.len() {
        if !eligible(i) || (untried_exists && tried.contains(&i)) {
            continue;
        }
        push(i);
        // Without `allbackups`, only the first usable backup serves.
        if !any_normal_up && !cfg.allbackups {
            break;
        }
    }
    if n > buf.len() {
        std::borrow::Cow::Owned(list)
    } else {
        std::borrow::Cow::Borrowed(&buf[..n])
    }
}

/// Smooth weighted round robin: every pick adds each candidate's weight
/// to its score and takes the highest, which then gives back the total.
/// Weights 1:1:2 give a, c, b, c, a, c, b, c...: the exact proportions in
/// every cycle, interleaved.
fn round_robin(st: &BackendState, candidates: std::borrow::Cow<[usize]>) -> Pick {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for &i in candidates.iter() {
        let s = &st.servers[i];
        if !s.has_slot() {
            continue;
        }
        let w = i64::from(s.weight.get());
        s.rr_current.set(s.rr_current.get() + w);
        total += w;
        if best.is_none_or(|b| s.rr_current.get() > st.servers[b].rr_current.get()) {
            best = Some(i);
        }
    }
    match best {
        Some(b) => {
            let s = &st.servers[b];
            s.rr_current.set(s.rr_current.get() - total);
            Pick::Server(b)
        }
        None => Pick::Full,
    }
}

/// Fewest connections relative to weight; ties go to the server after the
/// last one picked so equal servers take turns.
fn least_conn(st: &BackendState, candidates: std::borrow::Cow<[usize]>) -> Pick {
    let start = st.last_pick.get() + 1;
    let len = candidates.len();
    let mut best: Option<(u64, usize)> = None;
    for k in 0..len {
        let i = candidates[(start + k) % len];
        let s = &st.servers[i];
        if !s.has_slot() {
            continue;
        }
        // conns / weight compared without division.
        let load = (u64::from(s.conns.get()) + 1) * 1_000_000 / u64::from(s.weight.get().max(1));
        if best.is_none_or(|(l, _)| load < l) {
            best = Some((load, i));
        }
    }
    match best {
        Some((_, i)) => {
            st.last_pick
                .set(candidates.iter().position(|&c| c == i).unwrap_or(0));
            Pick::Server(i)
        }
        None => Pick::Full,
    }
}

/// Weighted rendezvous hashing on the full client IP: each candidate gets
/// a score from hash(client, server name) and its weight; the highest
/// wins. A server leaving moves only the clients it had; the scores are
/// the same on every worker and after a restart.
fn source(st: &BackendState, candidates: std::borrow::Cow<[usize]>, client: IpAddr) -> Pick {
    let h = hash::hash_ip(client);
    let mut best: Option<(f64, usize)> = None;
    for &i in candidates.iter() {
        let x = hash::combine(h, st.servers[i].name_hash);
        // A uniform value in (0, 1]; -w / ln(u) is weighted rendezvous.
        let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let score = -f64::from(st.servers[i].weight.get()) / u.ln();
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, i));
        }
    }
    match best {
        Some((_, i)) if st.servers[i].has_slot() => Pick::Server(i),
        Some(_) => Pick::Full,
        None => Pick::NoServer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn backend(balance: &str, servers: &str) -> (Config, std::rc::Rc<BackendState>) {
        let text = format!(
            "frontends:\n  f: {{ bind: \"127.0.0.1:0\", default_backend: b }}\nbackends:\n  b:\n    balance: {balance}\n    servers:\n{servers}"
        );
        let cfg = Config::parse(Path::new("t.yaml"), &text).unwrap();
        let st = BackendState::new(&cfg.backends[0], 0, 1);
        (cfg, st)
    }

    fn counts(cfg: &Config, st: &BackendState, n: usize) -> Vec<usize> {
        let mut c = vec![0; cfg.backends[0].servers.len()];
        for _ in 0..n {
            match pick(&cfg.backends[0], st, "10.0.0.1".parse().unwrap(), &[]) {
                Pick::Server(i) => c[i] += 1,
                other => panic!("{other:?}"),
            }
        }
        c
    }

    const THREE: &str = "      a: { address: \"127.0.0.1:1\", weight: 1 }\n      b: { address: \"127.0.0.1:2\", weight: 1 }\n      c: { address: \"127.0.0.1:3\", weight: 2 }\n";

    #[test]
    fn roundrobin_weights_are_exact_and_smooth() {
        let (cfg, st) = backend("roundrobin", THREE);
        assert_eq!(counts(&cfg, &st, 400), vec![100, 100, 200]);
        // Smooth: every run of 4 consecutive picks holds the exact ratio.
        let seq: Vec<usize> = (0..40)
            .map(
                |_| match pick(&cfg.backends[0], &st, "10.0.0.1".parse().unwrap(), &[]) {
                    Pick::Server(i) => i,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        for w in seq.windows(4) {
            let heavy = w.iter().filter(|&&i| i == 2).count();
            assert_eq!(heavy, 2, "{seq:?}");
        }
    }

    #[test]
    fn down_servers_and_backups() {
        let servers = "      a: { address: \"127.0.0.1:1\" }\n      b: { address: \"127.0.0.1:2\" }\n      spare1: { address: \"127.0.0.1:3\", backup: true }\n      spare2: { address: \"127.0.0.1:4\", backup: true }\n";
        let (cfg, st) = backend("roundrobin", servers);
        assert_eq!(counts(&cfg, &st, 10), vec![5, 5, 0, 0]);
        st.set_up(0, false);
        assert_eq!(counts(&cfg, &st, 10), vec![0, 10, 0, 0]);
        st.set_up(1, false);
        assert_eq!(
            counts(&cfg, &st, 10),
            vec![0, 0, 10, 0],
            "first backup only"
        );
        st.set_up(2, false);
        assert_eq!(counts(&cfg, &st, 10), vec![0, 0, 0, 10]);
        st.set_up(3, false);
        assert_eq!(
            pick(&cfg.backends[0], &st, "10.0.0.1".parse().unwrap(), &[]),
            Pick::NoServer
        );
    }

    #[test]
    fn tried_servers_are_skipped_while_others_remain() {
        let (cfg, st) = backend("source", THREE);
        let ip = "10.1.2.3".parse().unwrap();
        let Pick::Server(first) = pick(&cfg.backends[0], &st, ip, &[]) else {
            panic!()
        };
        let Pick::Server(second) = pick(&cfg.backends[0], &st, ip, &[first]) else {
            panic!()
        };
        assert_ne!(first, second);
        let Pick::Server(again) = pick(&cfg.backends[0], &st, ip, &[0, 1, 2]) else {
            panic!()
        };
        assert_eq!(again, first, "all tried: start over");
    }

    #[test]
    fn source_moves_only_the_clients_of_a_down_server() {
        let (cfg, st) = backend("source", THREE);
        let ips: Vec<IpAddr> = (0..=255)
            .map(|i| format!("127.0.1.{i}").parse().unwrap())
            .collect();
        let before: Vec<_> = ips
            .iter()
            .map(|ip| pick(&cfg.backends[0], &st, *ip, &[]))
            .collect();
        let mut per = [0; 3];
        for p in &before {
            if let Pick::Server(i) = p {
                per[*i] += 1;
            }
        }
        assert!(
            per.iter().all(|&n| n > 30),
            "every server gets clients: {per:?}"
        );
        st.set_up(1, false);
        for (ip, was) in ips.iter().zip(&before) {
            let now = pick(&cfg.backends[0], &st, *ip, &[]);
            if *was != Pick::Server(1) {
                assert_eq!(now, *was, "{ip} moved although its server stayed up");
            } else {
                assert_ne!(now, Pick::Server(1));
            }
        }
    }

    #[test]
    fn leastconn_and_first_respect_slots() {
        let servers = "      a: { address: \"127.0.0.1:1\", maxconn: 1 }\n      b: { address: \"127.0.0.1:2\", maxconn: 1 }\n";
        for balance in ["leastconn", "first"] {
            let (cfg, st) = backend(balance, servers);
            let ip = "10.0.0.1".parse().unwrap();
            let Pick::Server(x) = pick(&cfg.backends[0], &st, ip, &[]) else {
                panic!()
            };
            let _l1 = st.lease(x);
            let Pick::Server(y) = pick(&cfg.backends[0], &st, ip, &[]) else {
                panic!()
            };
            assert_ne!(x, y);
            let _l2 = st.lease(y);
            assert_eq!(
                pick(&cfg.backends[0], &st, ip, &[]),
                Pick::Full,
                "{balance}"
            );
        }
    }
}
