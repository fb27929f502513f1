//! A small YAML tree that keeps comments, and its writer. serde_yaml drops
//! comments, so the importer builds this instead and prints it itself.
//! Block maps and sequences carry comment lines and trailing comments;
//! flow maps and sequences (`{ a: b }`, `[a, b]`) hold short values such as
//! a server line.

#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// A scalar already in its YAML spelling (see `str` and `plain`).
    Scalar(String),
    Map(Vec<Item>),
    Seq(Vec<Item>),
    FlowMap(Vec<(String, Node)>),
    FlowSeq(Vec<Node>),
}

#[derive(Debug, Clone)]
pub(crate) enum Item {
    /// A comment line (the text after `#`).
    Comment(String),
    /// A map entry (`key: value`) or a sequence item (no key).
    Entry {
        key: Option<String>,
        value: Node,
        trailing: Option<String>,
    },
}

impl Node {
    /// A string value: quoted whenever YAML would read it as anything but
    /// this exact string.
    pub(crate) fn str(s: &str) -> Node {
        Node::Scalar(quote(s, true))
    }

    /// A number or a duration (`5000`, `5s`): plain when YAML allows, so a
    /// bare number stays a number.
    pub(crate) fn plain(s: &str) -> Node {
        Node::Scalar(quote(s, false))
    }

    pub(crate) fn bool(b: bool) -> Node {
        Node::Scalar(if b { "true" } else { "false" }.into())
    }
}

/// Whether `s` can be written without quotes and read back as the same
/// text. Conservative: anything unusual is quoted.
fn plain_ok(s: &str, must_stay_string: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s || "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    if s.chars()
        .any(|c| c.is_control() || !c.is_ascii() || ",[]{}\"'\\".contains(c))
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~",
    ]
    .contains(&lower.as_str())
    {
        return false;
    }
    let numeric = s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
        || lower.starts_with(".inf")
        || lower.starts_with(".nan")
        || lower.starts_with("+.")
        || lower.starts_with("-.");
    !(must_stay_string && numeric)
}

/// `s` as a YAML scalar.
pub(crate) fn quote(s: &str, must_stay_string: bool) -> String {
    if plain_ok(s, must_stay_string) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A map key: quoted unless it is a plain string.
fn key(k: &str) -> String {
    quote(k, true)
}

fn trailing(t: &Option<String>) -> String {
    match t {
        Some(c) => format!("  #{c}"),
        None => String::new(),
    }
}

fn flow(n: &Node) -> String {
    match n {
        Node::Scalar(s) => s.clone(),
        Node::FlowMap(m) if m.is_empty() => "{}".into(),
        Node::FlowMap(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", key(k), flow(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        Node::FlowSeq(s) if s.is_empty() => "[]".into(),
        Node::FlowSeq(s) => {
            let parts: Vec<String> = s.iter().map(flow).collect();
            format!("[ {} ]", parts.join(", "))
        }
        // Block nodes are never nested inside flow ones by the importer;
        // an empty one is still written correctly.
        Node::Map(_) => "{}".into(),
        Node::Seq(_) => "[]".into(),
    }
}

/// Writes `items` as a block map (or sequence, for items without keys) at
/// `indent` spaces.
pub(crate) fn write(items: &[Item], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Item::Comment(c) => {
                out.push_str(&pad);
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Item::Entry {
                key: k,
                value,
                trailing: t,
            } => {
                let lead = match k {
                    Some(k) => format!("{pad}{}:", key(k)),
                    None => format!("{pad}-"),
                };
                match value {
                    Node::Map(children) | Node::Seq(children)
                        if children.iter().any(|c| matches!(c, Item::Entry { .. })) =>
                    {
                        out.push_str(&lead);
                        out.push_str(&trailing(t));
                        out.push('\n');
                        write(children, indent + 2, out);
                    }
                    Node::Map(children) | Node::Seq(children) => {
                        // Only comments: an empty collection, comments after.
                        let empty = if matches!(value, Node::Map(_)) {
                            "{}"
                        } else {
                            "[]"
                        };
                        out.push_str(&format!("{lead} {empty}{}\n", trailing(t)));
                        write(children, indent + 2, out);
                    }
                    other => {
                        out.push_str(&format!("{lead} {}{}\n", flow(other), trailing(t)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back(s: &str) -> String {
        let v: serde_yaml::Value = serde_yaml::from_str(&format!("k: {s}")).unwrap();
        v["k"]
            .as_str()
            .unwrap_or_else(|| panic!("{s} is not a string"))
            .to_string()
    }

    #[test]
    fn strings_read_back_as_themselves() {
        for s in [
            "*:80",
            ":80",
            "path_beg /static",
            "%[src]",
            "set-header X-Client-IP %[src]",
            "deny if { path -i -m beg /admin }",
            "subdomain1 if web_host1",
            "redirect scheme https if !{ ssl_fc }",
            "yes",
            "5000",
            "1.5",
            "0x10",
            "",
            " lead",
            "a: b",
            "a #b",
            "quote\"and\\back",
            "tab\there",
            "/haproxy?stats",
            "admin:{{ file /x }}",
            "- dash",
            "ünï",
        ] {
            assert_eq!(back(&quote(s, true)), s, "{}", quote(s, true));
        }
        assert_eq!(quote("path_beg /static", true), "path_beg /static");
        assert_eq!(quote("5000", false), "5000");
        assert_eq!(quote("5000", true), "\"5000\"");
    }

    #[test]
    fn blocks_flows_and_comments() {
        let items = vec![
            Item::Comment(" top".into()),
            Item::Entry {
                key: Some("a".into()),
                value: Node::Map(vec![Item::Entry {
                    key: Some("b".into()),
                    value: Node::FlowMap(vec![
                        ("x".into(), Node::plain("1")),
                        ("z".into(), Node::FlowSeq(vec![Node::str("p q")])),
                    ]),
                    trailing: Some("c".into()),
                }]),
                trailing: None,
            },
            Item::Entry {
                key: Some("s".into()),
                value: Node::Seq(vec![
                    Item::Comment(" one".into()),
                    Item::Entry {
                        key: None,
                        value: Node::str("v"),
                        trailing: None,
                    },
                ]),
                trailing: None,
            },
            Item::Entry {
                key: Some("e".into()),
                value: Node::Map(vec![Item::Comment(" nothing".into())]),
                trailing: None,
            },
        ];
        let mut out = String::new();
        write(&items, 0, &mut out);
        assert_eq!(
            out,
            "# top\na:\n  b: { x: 1, z: [ p q ] }  #c\ns:\n  # one\n  - v\ne: {}\n  # nothing\n"
        );
        let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["a"]["b"]["z"][0].as_str(), Some("p q"));
        assert_eq!(v["s"][0].as_str(), Some("v"));
    }
}
