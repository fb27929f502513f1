//! `corral import-haproxy`: converts a `haproxy.cfg` into corral's YAML.
//!
//! The file is read with HAProxy's own line rules (`lexer`), split into
//! sections (`sections`), and each directive is converted where corral has
//! the same behaviour (`global`, `proxy`, `server`, `bind`, `peers`).
//! Rules, conditions and ACLs are checked with corral's own parsers, so
//! what is written is what corral accepts. Anything corral cannot express
//! is never dropped silently: it is reported (file, line, directive,
//! reason) and left as a `# NOT CONVERTED (line N): ...` comment where it
//! stood. Comments of the file are kept beside what they described.
//!
//! Must not touch: any runtime module: it writes YAML and checks it with
//! `config`.

mod bind;
mod builder;
mod global;
pub(crate) mod lexer;
mod peers;
mod proxy;
mod sections;
mod server;
pub(crate) mod yaml;

use builder::Map;
use lexer::Line;
use sections::{Kind, Section};
use yaml::{Item, Node};

/// A directive that was not (or not entirely) converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unconverted {
    pub line: usize,
    pub directive: String,
    pub reason: String,
}

/// The YAML and what it lacks.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub yaml: String,
    pub unconverted: Vec<Unconverted>,
}

impl Outcome {
    /// The report, one line per unconverted directive:
    /// `haproxy.cfg:12: option tcpka: not converted: <reason>`.
    pub(crate) fn report(&self, file: &str) -> String {
        self.unconverted
            .iter()
            .map(|u| {
                format!(
                    "{file}:{}: {}: not converted: {}\n",
                    u.line, u.directive, u.reason
                )
            })
            .collect()
    }
}

/// A file HAProxy itself could not read (an unclosed quote...).
pub(crate) use lexer::LexError;

/// Converts the text of a `haproxy.cfg`.
pub(crate) fn convert(text: &str) -> Result<Outcome, LexError> {
    let lines = lexer::lex(text)?;
    let file = sections::split(lines);
    let mut c = Converter::new(&file.sections);
    let mut top = Map::default();
    for l in &file.orphans {
        if l.words.is_empty() {
            top.comment(l.comment.as_deref().unwrap_or(""));
        } else {
            c.skip(
                &mut top,
                l,
                "outside any section: HAProxy refuses it too (a `global` or `defaults` line above it is probably missing)",
            );
        }
    }
    let mut out = Output::default();
    // Peers first: which sections survive decides what stick tables say.
    for s in file.sections.iter().filter(|s| s.kind == Kind::Peers) {
        let (m, ok) = peers::convert(&mut c, s);
        if ok {
            c.peers_ok.push(s.name.clone());
            out.peers.push(entry(s, m));
        } else {
            out.peers_lost.extend(lead(s));
            out.peers_lost.extend(m.finish());
        }
    }
    let mut defaults_seen = false;
    for s in &file.sections {
        match s.kind {
            Kind::Peers => {}
            Kind::Global => {
                let m = global::convert(&mut c, s);
                out.global.extend(lead(s));
                out.global.extend(m.finish());
            }
            Kind::Defaults if !defaults_seen => {
                defaults_seen = true;
                let m = proxy::defaults(&mut c, s);
                out.defaults.extend(lead(s));
                out.defaults.extend(m.finish());
            }
            Kind::Defaults => {
                let mut m = Map::default();
                c.skip(
                    &mut m,
                    &s.header,
                    "a second `defaults` section: corral has one, for the whole file; its settings are not converted (write them in the sections that follow it)",
                );
                for l in &s.body {
                    c.line_comment_or_skip(
                        &mut m,
                        l,
                        "in the second `defaults` section (see above)",
                    );
                }
                out.defaults.extend(lead(s));
                out.defaults.extend(m.finish());
            }
            Kind::Frontend => {
                let (fe, _) = proxy::proxy(&mut c, s);
                out.frontends.push(entry(s, fe.expect("a frontend part")));
            }
            Kind::Backend => {
                let (_, be) = proxy::proxy(&mut c, s);
                out.backends.push(entry(s, be.expect("a backend part")));
            }
            Kind::Listen => {
                let (fe, be) = proxy::proxy(&mut c, s);
                out.frontends.push(entry(s, fe.expect("a frontend part")));
                if let Some(be) = be {
                    out.backends.push(Item::Entry {
                        key: Some(s.name.clone()),
                        value: Node::Map(be.finish()),
                        trailing: Some(format!(" the servers of `listen {}`", s.name)),
                    });
                }
            }
            Kind::Other => {
                let mut m = Map::default();
                let kw = s.header.word(0).to_string();
                c.skip(
                    &mut m,
                    &s.header,
                    format!("corral has no `{kw}` section; its directives are not converted"),
                );
                for l in &s.body {
                    c.line_comment_or_skip(&mut m, l, &format!("inside the `{kw}` section"));
                }
                out.stray.extend(lead(s));
                out.stray.extend(m.finish());
            }
        }
    }
    let mut items = top.finish();
    for (key, list) in [
        ("global", out.global),
        ("defaults", out.defaults),
        ("frontends", out.frontends),
        ("backends", out.backends),
        ("peers", out.peers),
    ] {
        if list.is_empty() {
            continue;
        }
        items.push(Item::Entry {
            key: Some(key.into()),
            value: Node::Map(list),
            trailing: None,
        });
    }
    // Sections with no place in corral's YAML: their notes close the file.
    items.append(&mut out.peers_lost);
    items.append(&mut out.stray);
    let mut yaml = String::new();
    yaml::write(&items, 0, &mut yaml);
    c.report.sort_by_key(|u| u.line);
    Ok(Outcome {
        yaml,
        unconverted: c.report,
    })
}

#[derive(Default)]
struct Output {
    global: Vec<Item>,
    defaults: Vec<Item>,
    frontends: Vec<Item>,
    backends: Vec<Item>,
    peers: Vec<Item>,
    peers_lost: Vec<Item>,
    /// Notes of sections that have no place in corral's YAML.
    stray: Vec<Item>,
}

/// The comment lines above a section header, and its own comment.
fn lead(s: &Section) -> Vec<Item> {
    let mut v: Vec<Item> = s
        .before
        .iter()
        .map(|l| Item::Comment(l.comment.clone().unwrap_or_default()))
        .collect();
    if let Some(c) = &s.header.comment {
        v.push(Item::Comment(c.clone()));
    }
    v
}

/// A named section as an entry of `frontends:`, `backends:` or `peers:`.
fn entry(s: &Section, m: Map) -> Item {
    // The comments above the header go inside, at the top: an entry has
    // one trailing comment only.
    let mut items: Vec<Item> = s
        .before
        .iter()
        .map(|l| Item::Comment(l.comment.clone().unwrap_or_default()))
        .collect();
    items.extend(m.finish());
    Item::Entry {
        key: Some(s.name.clone()),
        value: Node::Map(items),
        trailing: s.header.comment.clone(),
    }
}

/// What every converter shares: the report, and facts about the whole
/// file gathered before any section is converted.
pub(crate) struct Converter {
    pub report: Vec<Unconverted>,
    /// Names of the sections that declare a stick table.
    pub tables: Vec<String>,
    /// Peers sections that converted (with at least one peer).
    pub peers_ok: Vec<String>,
    /// `mode` of the first defaults section, if written.
    pub defaults_mode: Option<String>,
    /// `default-server` words of the first defaults section.
    pub defaults_server: Vec<String>,
    /// `option httpchk` / `http-check expect` of the defaults section.
    pub defaults_httpchk: Option<server::HttpCheck>,
    /// `ssl-default-bind-options no-tls-tickets` / `ssl-min-ver`.
    pub bind_no_tickets: bool,
    pub bind_min_ver: Option<String>,
}

impl Converter {
    fn new(sections: &[Section]) -> Converter {
        let mut tables = Vec::new();
        let mut defaults_mode = None;
        let mut seen_defaults = false;
        for s in sections {
            if s.kind == Kind::Defaults && !seen_defaults {
                seen_defaults = true;
                defaults_mode = s
                    .body
                    .iter()
                    .rfind(|l| l.word(0) == "mode")
                    .map(|l| l.word(1).to_string());
            }
            if matches!(s.kind, Kind::Frontend | Kind::Backend | Kind::Listen)
                && s.body.iter().any(|l| l.word(0) == "stick-table")
            {
                tables.push(s.name.clone());
            }
        }
        Converter {
            report: Vec::new(),
            tables,
            peers_ok: Vec::new(),
            defaults_mode,
            defaults_server: Vec::new(),
            defaults_httpchk: None,
            bind_no_tickets: false,
            bind_min_ver: None,
        }
    }

    /// Reports `line` as not converted and leaves a note where it stood.
    pub(crate) fn skip(&mut self, m: &mut Map, line: &Line, reason: impl Into<String>) {
        let reason = reason.into();
        let directive = line.directive().to_string();
        let own = line
            .comment
            .as_ref()
            .map(|c| format!("  #{c}"))
            .unwrap_or_default();
        m.note(format!(
            " NOT CONVERTED (line {}): {directive}: {reason}{own}",
            line.number
        ));
        self.report.push(Unconverted {
            line: line.number,
            directive,
            reason,
        });
    }

    /// Reports part of a converted line (an option corral lacks...).
    pub(crate) fn skip_part(&mut self, m: &mut Map, line: &Line, reason: impl Into<String>) {
        let reason = reason.into();
        let directive = line.directive().to_string();
        m.note(format!(
            " NOT CONVERTED (line {}): {directive}: {reason}",
            line.number
        ));
        self.report.push(Unconverted {
            line: line.number,
            directive,
            reason,
        });
    }

    /// A comment line is kept; a directive is reported with `why`.
    fn line_comment_or_skip(&mut self, m: &mut Map, l: &Line, why: &str) {
        if l.words.is_empty() {
            m.comment(l.comment.as_deref().unwrap_or(""));
        } else {
            self.skip(m, l, why);
        }
    }
}

/// Why a line using an environment variable is not converted.
pub(crate) fn env_reason(var: &str) -> String {
    format!(
        "uses the environment variable `{var}`, which HAProxy expands when it loads the file; corral's configuration does not expand variables: write the value"
    )
}

/// A line's own comment, for a YAML trailing comment.
pub(crate) fn trailing(l: &Line) -> Option<String> {
    l.comment.clone()
}

#[cfg(test)]
mod tests;
