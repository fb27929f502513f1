//! Groups lines into HAProxy's sections. A section starts at a line whose
//! first word is a section keyword and runs to the next one; comment lines
//! at the end of a section (after its last directive) belong to the
//! section that follows, which is what they usually describe.

use super::lexer::Line;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Global,
    Defaults,
    Frontend,
    Backend,
    Listen,
    Peers,
    /// A section corral has nothing for (`userlist`, `resolvers`,
    /// `http-errors`, `cache`, `mailers`, `program`, `ring`...).
    Other,
}

pub(super) const OTHER_SECTIONS: &[&str] = &[
    "userlist",
    "resolvers",
    "http-errors",
    "cache",
    "mailers",
    "program",
    "ring",
    "log-forward",
    "fcgi-app",
    "crt-store",
    "traces",
];

fn kind(word: &str) -> Option<Kind> {
    Some(match word {
        "global" => Kind::Global,
        "defaults" => Kind::Defaults,
        "frontend" => Kind::Frontend,
        "backend" => Kind::Backend,
        "listen" => Kind::Listen,
        "peers" => Kind::Peers,
        w if OTHER_SECTIONS.contains(&w) => Kind::Other,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub(super) struct Section {
    pub kind: Kind,
    pub name: String,
    /// The header line.
    pub header: Line,
    /// Comment lines just above the header.
    pub before: Vec<Line>,
    /// Directives and comment lines, in file order (blank lines left out).
    pub body: Vec<Line>,
}

/// The file split into sections. `orphans` are the lines before the first
/// section header (comments there are the file's header comment).
pub(super) struct File {
    pub orphans: Vec<Line>,
    pub sections: Vec<Section>,
}

pub(super) fn split(lines: Vec<Line>) -> File {
    let mut orphans = Vec::new();
    let mut sections: Vec<Section> = Vec::new();
    for line in lines {
        if line.words.is_empty() && line.comment.is_none() {
            continue;
        }
        if let Some(k) = line.words.first().and_then(|w| kind(&w.text)) {
            // Trailing comment lines of the previous part move down.
            let body = match sections.last_mut() {
                Some(s) => &mut s.body,
                None => &mut orphans,
            };
            let keep = body
                .iter()
                .rposition(|l| !l.words.is_empty())
                .map_or(0, |i| i + 1);
            let before = body.split_off(keep);
            sections.push(Section {
                kind: k,
                name: line.word(1).to_string(),
                header: line,
                before,
                body: Vec::new(),
            });
            continue;
        }
        match sections.last_mut() {
            Some(s) => s.body.push(line),
            None => orphans.push(line),
        }
    }
    File { orphans, sections }
}
