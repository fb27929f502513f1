//! The one-screen summary `corral check` prints for a valid configuration.

use crate::base::units::format_duration;
use crate::config::{CheckKind, Config};
use std::fmt::Write;

pub(crate) fn summary(c: &Config) -> String {
    let mut out = String::new();
    let g = &c.global;
    let _ = writeln!(out, "{}: configuration is valid", c.file.display());
    let _ = writeln!(
        out,
        "global: {} worker{}, maxconn {}, hard-stop-after {}",
        g.workers,
        if g.workers == 1 { "" } else { "s" },
        g.maxconn,
        format_duration(g.hard_stop_after)
    );
    for s in &g.stats_sockets {
        let mode = match s.addr {
            crate::config::ApiAddr::Unix(_) => format!(", mode {:o}", s.mode),
            crate::config::ApiAddr::Tcp(_) => String::new(),
        };
        let _ = writeln!(
            out,
            "runtime API on {} (level {}{mode})",
            s.addr,
            s.level.name()
        );
    }
    for f in &c.frontends {
        let binds: Vec<String> = f.binds.iter().map(|b| b.addr.to_string()).collect();
        let backend = f
            .default_backend
            .map_or("-", |b| c.backends[b].name.as_str());
        let _ = writeln!(
            out,
            "frontend {} ({}) on {} -> {}   maxconn {}, timeout client {}",
            f.name,
            f.mode.name(),
            binds.join(", "),
            backend,
            f.maxconn,
            format_duration(f.timeout_client)
        );
        if let Some(h) = &f.http {
            let _ = writeln!(
                out,
                "  http: {} http-request, {} http-response rules; {} use_backend; timeout http-request {}, http-keep-alive {}",
                h.request_rules.len(),
                h.response_rules.len(),
                f.use_backend.len(),
                format_duration(h.timeout_request),
                format_duration(h.timeout_keep_alive)
            );
        } else if !f.use_backend.is_empty() || f.inspect_delay.is_some() {
            let _ = writeln!(
                out,
                "  tcp: {} use_backend; inspect-delay {}",
                f.use_backend.len(),
                f.inspect_delay.map_or("none".into(), format_duration)
            );
        }
    }
    for b in &c.backends {
        let _ = writeln!(
            out,
            "backend {} ({}, balance {}, retries {}): {} server{}   timeout connect {}, server {}, queue {}",
            b.name,
            b.mode.name(),
            b.balance.name(),
            b.retries,
            b.servers.len(),
            if b.servers.len() == 1 { "" } else { "s" },
            format_duration(b.timeout_connect),
            format_duration(b.timeout_server),
            format_duration(b.timeout_queue)
        );
        for s in &b.servers {
            let mut line = format!("  {} {} ({})", s.name, s.address, s.addr);
            let _ = write!(line, " weight {}", s.weight);
            if let Some(m) = s.maxconn {
                let _ = write!(line, " maxconn {m}");
            }
            if s.backup {
                line.push_str(" backup");
            }
            if let Some(ch) = &s.check {
                let kind = match &ch.kind {
                    CheckKind::Tcp => "tcp".to_string(),
                    CheckKind::Http { method, path, .. } => format!("http {method} {path}"),
                };
                let _ = write!(
                    line,
                    " check {kind} on {} every {} rise {} fall {}",
                    ch.addr,
                    format_duration(ch.inter),
                    ch.rise,
                    ch.fall
                );
            }
            let _ = writeln!(out, "{line}");
        }
    }
    for t in &c.tables {
        let stored: Vec<&str> = crate::model::table::ALL
            .iter()
            .filter(|(d, _)| t.layout.has(*d))
            .map(|(_, n)| *n)
            .collect();
        let _ = writeln!(
            out,
            "stick-table {} (type {}, size {}, expire {}){}: {}",
            t.name,
            t.key_type.name(),
            t.size,
            crate::base::units::format_duration(t.expire),
            t.peers
                .map(|p| format!(" shared with peers {}", c.peers[p].name))
                .unwrap_or_default(),
            if stored.is_empty() {
                "nothing stored".to_string()
            } else {
                stored.join(", ")
            }
        );
    }
    for p in &c.peers {
        let list: Vec<String> = p
            .peers
            .iter()
            .map(|x| format!("{} {}", x.name, x.text))
            .collect();
        let _ = writeln!(
            out,
            "peers {}: {} (this node: {})",
            p.name,
            list.join(", "),
            p.local
                .as_deref()
                .unwrap_or("the host name, or --peer-name")
        );
    }
    out
}
