//! Validation of stick tables, `stick` rules, `tcp-request` rules and
//! `peers` sections.

use super::*;
use crate::config::raw::{RawPeers, RawStickTable};
use crate::model::table::{DataType, KeyType, Layout};
use crate::rules::stick::{StickRule, TableRefs};
use crate::rules::tcp::TcpRule;

/// "Never": HAProxy's tables without `expire` keep entries until evicted.
const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Where a stick table was declared.
pub(super) struct TableSite {
    pub backend: bool,
    pub section: String,
}

impl Validator<'_> {
    /// `peers:` sections.
    pub(super) fn peers_sections(&mut self, raw: &OrderedMap<RawPeers>) -> Vec<PeersSection> {
        let mut out = Vec::new();
        for (name, p) in &raw.0 {
            let base = child("peers", name);
            self.name(name, &base);
            let mut peers = Vec::new();
            if p.peer.0.is_empty() {
                self.c.at_key(
                    &base,
                    "missing `peer`: list every node of the section, this one included, e.g. `peer: { lb1: \"10.0.0.1:1024\", lb2: \"10.0.0.2:1024\" }`",
                );
            }
            for (pname, v) in &p.peer.0 {
                let path = child(&child(&base, "peer"), pname);
                let Some(text) = self.string(v, &path, "an address such as `10.0.0.1:1024`") else {
                    continue;
                };
                match resolve_server(&text) {
                    Ok(addr) => peers.push(Peer {
                        name: pname.clone(),
                        text,
                        addr,
                    }),
                    Err(msg) => self.c.at(&path, msg),
                }
            }
            let local = p.local.as_ref().and_then(|v| {
                let path = child(&base, "local");
                let l = self.string(v, &path, "the name of this node in `peer`")?;
                if !p.peer.0.iter().any(|(n, _)| *n == l) {
                    let names: Vec<&str> = p.peer.0.iter().map(|(n, _)| n.as_str()).collect();
                    self.c.at(
                        &path,
                        format!(
                            "`{l}` is not one of this section's peers ({}): `local` names this node's own entry in `peer`",
                            names.join(", ")
                        ),
                    );
                }
                Some(l)
            });
            out.push(PeersSection {
                name: name.clone(),
                local,
                peers,
            });
        }
        out
    }

    /// Every `stick-table:` of the file: backends first, then frontends,
    /// each named after its section.
    pub(super) fn stick_tables(
        &mut self,
        raw: &RawConfig,
        peers: &[PeersSection],
    ) -> (Vec<StickTable>, Vec<TableSite>) {
        let mut tables = Vec::new();
        let mut sites: Vec<TableSite> = Vec::new();
        let backends = raw
            .backends
            .0
            .iter()
            .map(|(n, b)| (true, n, &b.stick_table));
        let frontends = raw
            .frontends
            .0
            .iter()
            .map(|(n, f)| (false, n, &f.stick_table));
        for (backend, name, t) in backends.chain(frontends) {
            let Some(t) = t else { continue };
            let section = if backend { "backends" } else { "frontends" };
            let path = child(&child(section, name), "stick-table");
            if let Some(other) = sites.iter().find(|s| s.section == *name) {
                self.c.at_key(
                    &path,
                    format!(
                        "a stick table named `{name}` already exists (in {} `{name}`): tables are named after their section, so a frontend and a backend with the same name cannot both have one",
                        if other.backend { "backend" } else { "frontend" }
                    ),
                );
                continue;
            }
            tables.push(self.stick_table(name, t, &path, peers));
            sites.push(TableSite {
                backend,
                section: name.clone(),
            });
        }
        (tables, sites)
    }

    fn stick_table(
        &mut self,
        name: &str,
        t: &RawStickTable,
        path: &str,
        peers: &[PeersSection],
    ) -> StickTable {
        let p = |k: &str| child(path, k);
        let len = opt(&t.len, |v| {
            self.uint(v, &p("len"), 1, 65_535, "a key length in bytes")
        })
        .unwrap_or(32) as usize;
        let key_type = match &t.key_type {
            None => KeyType::Ip,
            Some(v) => match self.choice(v, &p("type"), &["ip", "ipv6", "integer", "string"]) {
                Some("ipv6") => KeyType::Ipv6,
                Some("integer") => KeyType::Integer,
                Some("string") => KeyType::String { len },
                _ => KeyType::Ip,
            },
        };
        if t.len.is_some() && !matches!(key_type, KeyType::String { .. }) {
            self.c
                .at_key(&p("len"), "`len` applies to `type: string` tables only");
        }
        let size = match &t.size {
            None => {
                self.c.at_key(
                    path,
                    "missing `size`: the most entries the table holds, e.g. `size: 100k`",
                );
                1
            }
            Some(v) => self.size(v, &p("size"), 1, 1 << 30).unwrap_or(1) as usize,
        };
        let expire = match &t.expire {
            None => NEVER,
            Some(v) => self.duration(v, &p("expire")).unwrap_or(NEVER),
        };
        let peers = t.peers.as_ref().and_then(|v| {
            let path = p("peers");
            let n = self.string(v, &path, "the name of a peers section")?;
            let found = peers.iter().position(|s| s.name == n);
            if found.is_none() {
                let names: Vec<&str> = peers.iter().map(|s| s.name.as_str()).collect();
                self.c.at(
                    &path,
                    format!(
                        "no peers section named `{n}` ({})",
                        if names.is_empty() {
                            "none is defined: add `peers: { NAME: { peer: {...} } }` at the top level".to_string()
                        } else {
                            format!("defined: {}", names.join(", "))
                        }
                    ),
                );
            }
            found
        });
        let mut layout = Layout::default();
        if let Some(v) = &t.store {
            for (text, ipath) in self.strings(v, &p("store")) {
                self.store_item(&text, &ipath, &mut layout);
            }
        }
        StickTable {
            name: name.to_string(),
            key_type,
            size,
            expire,
            layout,
            peers,
        }
    }

    /// One `store` item: `conn_cur`, `http_req_rate(10s)`.
    fn store_item(&mut self, text: &str, path: &str, layout: &mut Layout) {
        let (name, period) = match text.split_once('(') {
            Some((n, rest)) => match rest.strip_suffix(')') {
                Some(p) => (n.trim(), Some(p.trim())),
                None => {
                    self.c
                        .at(path, format!("`{text}`: missing `)` after the period"));
                    return;
                }
            },
            None => (text.trim(), None),
        };
        let Some(t) = DataType::by_name(name) else {
            let names: Vec<&str> = crate::model::table::ALL.iter().map(|(_, n)| *n).collect();
            self.c.at(
                path,
                format!("unknown data type `{name}` (valid: {})", names.join(", ")),
            );
            return;
        };
        match (t.rate_of(), period) {
            (Some(ev), Some(p)) => match parse_duration(p) {
                Ok(d) if !d.is_zero() => layout.periods[ev as usize] = d.as_millis() as u64,
                Ok(_) => {
                    self.c
                        .at(path, format!("`{text}`: the period must be more than 0"));
                    return;
                }
                Err(msg) => {
                    self.c.at(path, format!("`{text}`: {msg}"));
                    return;
                }
            },
            (Some(_), None) => {
                self.c
                    .at(path, format!("`{name}` needs a period, e.g. `{name}(10s)`"));
                return;
            }
            (None, Some(_)) => {
                self.c
                    .at(path, format!("`{name}` takes no period (only rates do)"));
                return;
            }
            (None, None) => {}
        }
        layout.stored |= t.bit();
    }

    /// `stick: [ "on src", ... ]` of a backend.
    pub(super) fn stick_rules(
        &mut self,
        v: Option<&Value>,
        path: &str,
        acls: &crate::acl::AclSet,
        refs: &TableRefs,
    ) -> Vec<StickRule> {
        let Some(v) = v else { return Vec::new() };
        let mut out = Vec::new();
        for (text, p) in self.strings(v, path) {
            match crate::rules::stick::parse_rule(&text, acls, refs) {
                Ok(r) => out.push(r),
                Err((at, msg)) => self.c.at_offset(&p, &text, at, msg),
            }
        }
        out
    }

    /// `tcp-request: [ "connection reject if ...", ... ]` of a frontend.
    /// `tcp-request:` lines: the rules, and `inspect-delay` with its path.
    pub(super) fn tcp_rules(
        &mut self,
        v: Option<&Value>,
        path: &str,
        acls: &crate::acl::AclSet,
        refs: &TableRefs,
    ) -> (Vec<TcpRule>, Option<(Duration, String)>) {
        let Some(v) = v else {
            return (Vec::new(), None);
        };
        let mut out = Vec::new();
        let mut delay: Option<(Duration, String)> = None;
        for (text, p) in self.strings(v, path) {
            match crate::rules::tcp::parse(&text, acls, refs) {
                Ok(crate::rules::tcp::TcpRequest::Rule(r)) => out.push(r),
                Ok(crate::rules::tcp::TcpRequest::InspectDelay(d)) => {
                    if let Some((_, first)) = &delay {
                        self.c.at(
                            &p,
                            format!("`inspect-delay` is already set by {first}: write it once"),
                        );
                    } else {
                        delay = Some((d, p));
                    }
                }
                Err((at, msg)) => self.c.at_offset(&p, &text, at, msg),
            }
        }
        (out, delay)
    }

    /// The index of the table declared in a section, if any.
    pub(super) fn own_table(&self, backend: bool, name: &str) -> Option<usize> {
        self.table_sites
            .iter()
            .position(|s| s.backend == backend && s.section == name)
    }
}

/// Tables used by `stick` rules store the server (as HAProxy adds
/// `server_id` to them); a key type a rule's fetch cannot fill is reported.
pub(super) fn complete_tables(tables: &mut [StickTable], backends: &[Backend]) {
    for b in backends {
        for r in &b.stick {
            if let Some(t) = tables.get_mut(r.table) {
                t.layout.stored |= DataType::ServerId.bit();
            }
        }
    }
}
