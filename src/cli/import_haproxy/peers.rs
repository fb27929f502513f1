//! `peers` sections: `peer NAME ADDR:PORT` lines become `peer:` entries.
//! A section left with no usable peer is not written at all (corral needs
//! one), and stick tables that name it lose their `peers`.

use super::builder::Map;
use super::sections::Section;
use super::server::placeholder;
use super::yaml::Node;
use super::{Converter, trailing};

/// The section's map, and whether it has at least one peer.
pub(super) fn convert(c: &mut Converter, s: &Section) -> (Map, bool) {
    let mut m = Map::default();
    let mut peers = 0;
    for l in &s.body {
        if l.words.is_empty() {
            m.comment(l.comment.as_deref().unwrap_or(""));
            continue;
        }
        if let Some(var) = &l.env {
            c.skip(&mut m, l, super::env_reason(var));
            continue;
        }
        match l.word(0) {
            "peer" | "server" if l.words.len() == 3 => {
                let name = l.word(1);
                let addr = l.word(2);
                let addr = addr
                    .strip_prefix("ipv4@")
                    .or_else(|| addr.strip_prefix("ipv6@"))
                    .unwrap_or(addr);
                if placeholder(l) {
                    c.skip(&mut m, l, "a placeholder from a write-up, not a name and an address: fill in the peer's name and `ip:port`");
                } else if !addr.contains(':') || addr.contains('@') {
                    c.skip(&mut m, l, format!("`{addr}`: a peer needs `ip:port` (or `host:port`)"));
                } else {
                    m.put("peer", name, Node::str(addr), trailing(l));
                    peers += 1;
                }
            }
            "peer" | "server" if l.words.len() > 3 && !placeholder(l) => c.skip(
                &mut m,
                l,
                "peer options (`ssl`, `shard`...) are not supported: corral's peers speak plain TCP",
            ),
            "peer" | "server" if placeholder(l) => c.skip(
                &mut m,
                l,
                "a placeholder from a write-up, not a name and an address: fill in the peer's name and `ip:port`",
            ),
            "disabled" => c.skip(&mut m, l, "corral has no disabled peers section: remove the section"),
            kw => c.skip(
                &mut m,
                l,
                format!("corral's peers sections have only `peer NAME ADDR:PORT` lines, no `{kw}`"),
            ),
        }
    }
    if peers == 0 {
        // The note on the section comes first, then its lines' notes.
        let mut head = Map::default();
        c.skip(
            &mut head,
            &s.header,
            "no peer could be converted, and corral needs at least one: the section is left out, and stick tables naming it are not shared",
        );
        head.items.extend(m.finish());
        return (head, false);
    }
    (m, true)
}
