//! Stick-table actions and rules, parsed once at load:
//! - `track-sc0|1|2 <fetch> [table <name>]` and `sc-inc-gpc0(<n>)`, usable
//!   in `tcp-request connection` and `http-request` rules;
//! - backend `stick` rules: `on|match|store-request <fetch> [table <name>]
//!   [if|unless <condition>]`.

use crate::acl::{self, AclSet, Condition, Fetch};

/// A table name and its index, for resolving `table <name>`.
pub(crate) struct TableRefs<'a> {
    /// Every table's name, in `Config::tables` order.
    pub names: &'a [String],
    /// The section's own table (`stick-table:` in the same section).
    pub own: Option<usize>,
}

impl TableRefs<'_> {
    #[cfg(test)]
    pub(crate) const NONE: TableRefs<'static> = TableRefs {
        names: &[],
        own: None,
    };
}

/// A stick-counter action.
#[derive(Debug, Clone)]
pub(crate) enum StickAction {
    /// Track the entry of `fetch`'s value in `table` as counter `sc`.
    Track {
        sc: usize,
        fetch: Fetch,
        table: usize,
    },
    /// Increment `gpc0` of the entry tracked as counter `sc`.
    IncGpc0 { sc: usize },
}

/// A problem at a byte offset of the rule text.
pub(crate) type Problem = (usize, String);

/// Parses a stick action from the action's words (with their offsets);
/// `Ok(None)` when the first word is not a stick action.
pub(crate) fn parse_action(
    words: &[(String, usize)],
    end: usize,
    tables: &TableRefs,
) -> Result<Option<StickAction>, Problem> {
    let Some((name, at)) = words.first() else {
        return Ok(None);
    };
    if let Some(n) = name.strip_prefix("track-sc") {
        let sc = counter_number(n, name, *at)?;
        let Some((fetch_text, fetch_at)) = words.get(1) else {
            return Err((end, format!("`{name}` needs a key, e.g. `{name} src`")));
        };
        let fetch = Fetch::parse(fetch_text).map_err(|e| (fetch_at + e.offset, e.message))?;
        let table = table_option(&words[2..], end, tables, name)?;
        return Ok(Some(StickAction::Track { sc, fetch, table }));
    }
    if let Some(rest) = name.strip_prefix("sc-inc-gpc0") {
        let n = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(if rest.is_empty() { "0" } else { rest });
        let sc = counter_number(n, name, *at)?;
        if let Some((extra, extra_at)) = words.get(1) {
            return Err((
                *extra_at,
                format!(
                    "unexpected `{extra}` after `{name}` (a condition starts with `if` or `unless`)"
                ),
            ));
        }
        return Ok(Some(StickAction::IncGpc0 { sc }));
    }
    Ok(None)
}

fn counter_number(n: &str, name: &str, at: usize) -> Result<usize, Problem> {
    match n.parse::<usize>() {
        Ok(sc) if sc <= 2 => Ok(sc),
        _ => Err((
            at,
            format!(
                "`{name}`: stick counters are numbered 0, 1 and 2 (e.g. `track-sc0`, `sc-inc-gpc0(0)`)"
            ),
        )),
    }
}

/// `[table <name>]` at the end of an action or rule; without it, the
/// section's own table.
fn table_option(
    rest: &[(String, usize)],
    end: usize,
    tables: &TableRefs,
    what: &str,
) -> Result<usize, Problem> {
    match rest {
        [] => tables.own.ok_or_else(|| {
            (
                end,
                format!(
                    "`{what}` needs a stick table: add `stick-table:` to this section or name one with `table <name>`"
                ),
            )
        }),
        [(kw, _), (name, name_at)] if kw == "table" => {
            tables.names.iter().position(|n| n == name).ok_or_else(|| {
                (
                    *name_at,
                    format!(
                        "no stick table named `{name}` (tables are named after the section that declares them: {})",
                        if tables.names.is_empty() {
                            "none is declared".to_string()
                        } else {
                            tables.names.join(", ")
                        }
                    ),
                )
            })
        }
        [(kw, kw_at), ..] if kw != "table" => Err((
            *kw_at,
            format!("unexpected `{kw}`: expected `table <name>` or a condition (`if`/`unless`)"),
        )),
        [(_, at)] => Err((*at, "`table` needs a table name".to_string())),
        [_, _, (extra, at), ..] => Err((*at, format!("unexpected `{extra}` after the table name"))),
        _ => Err((end, "malformed table option".to_string())),
    }
}

/// A rule line split into its action words (with their offsets in the
/// line), where the action ends, and its compiled `if`/`unless` condition.
pub(crate) struct RuleParts {
    pub words: Vec<(String, usize)>,
    pub end: usize,
    pub cond: Option<Condition>,
}

impl RuleParts {
    pub(crate) fn split(line: &str, acls: &AclSet) -> Result<RuleParts, Problem> {
        let (head, cond_text) = acl::split_condition(line);
        let cond = match cond_text {
            Some((text, at)) => {
                Some(Condition::parse(text, acls).map_err(|e| (at + e.offset, e.message))?)
            }
            None => None,
        };
        let lead = line.len() - line.trim_start().len();
        let words = acl::split_words(head).map_err(|e| (lead + e.offset, e.message))?;
        let words = words.into_iter().map(|(w, o)| (w, o + lead)).collect();
        Ok(RuleParts {
            words,
            end: head.trim_end().len(),
            cond,
        })
    }
}

/// When a backend `stick` rule acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StickKind {
    /// `match`: a client whose key is in the table goes to its server.
    Match,
    /// `on`: match, and store the chosen server for new keys.
    On,
    /// `store-request`: store the server the request went to.
    StoreRequest,
}

/// A backend `stick` rule.
#[derive(Debug, Clone)]
pub(crate) struct StickRule {
    pub kind: StickKind,
    pub fetch: Fetch,
    pub table: usize,
    pub cond: Option<Condition>,
}

/// Parses `on|match|store-request <fetch> [table <name>] [if|unless ...]`.
pub(crate) fn parse_rule(
    line: &str,
    acls: &AclSet,
    tables: &TableRefs,
) -> Result<StickRule, Problem> {
    let RuleParts { words, end, cond } = RuleParts::split(line, acls)?;
    let Some((kind_word, kind_at)) = words.first() else {
        return Err((
            0,
            "expected `on`, `match` or `store-request` and a key, e.g. `on src`".into(),
        ));
    };
    let kind = match kind_word.as_str() {
        "on" => StickKind::On,
        "match" => StickKind::Match,
        "store-request" => StickKind::StoreRequest,
        "store-response" => {
            return Err((
                *kind_at,
                "`store-response` is not supported yet (use `on` or `store-request`)".into(),
            ));
        }
        other => {
            return Err((
                *kind_at,
                format!("unknown stick rule `{other}` (expected on, match or store-request)"),
            ));
        }
    };
    let Some((fetch_text, fetch_at)) = words.get(1) else {
        return Err((
            end,
            format!("`{kind_word}` needs a key, e.g. `{kind_word} src`"),
        ));
    };
    let fetch = Fetch::parse(fetch_text).map_err(|e| (fetch_at + e.offset, e.message))?;
    let table = table_option(&words[2..], end, tables, &format!("stick {kind_word}"))?;
    Ok(StickRule {
        kind,
        fetch,
        table,
        cond,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<(String, usize)> {
        acl::split_words(s).unwrap()
    }

    #[test]
    fn actions_parse_with_their_tables() {
        let names = vec!["web".to_string(), "other".to_string()];
        let refs = TableRefs {
            names: &names,
            own: Some(0),
        };
        let a = parse_action(&words("track-sc1 src table other"), 25, &refs).unwrap();
        assert!(matches!(
            a,
            Some(StickAction::Track {
                sc: 1,
                table: 1,
                ..
            })
        ));
        let a = parse_action(&words("track-sc0 hdr(x-user)"), 21, &refs).unwrap();
        assert!(matches!(
            a,
            Some(StickAction::Track {
                sc: 0,
                table: 0,
                ..
            })
        ));
        let a = parse_action(&words("sc-inc-gpc0(2)"), 14, &refs).unwrap();
        assert!(matches!(a, Some(StickAction::IncGpc0 { sc: 2 })));
        assert!(parse_action(&words("deny"), 4, &refs).unwrap().is_none());
        let e = parse_action(&words("track-sc3 src"), 13, &refs).unwrap_err();
        assert_eq!(e.0, 0);
        let e = parse_action(&words("track-sc0 src table nope"), 24, &refs).unwrap_err();
        assert_eq!(e.0, 20);
        assert!(e.1.contains("web, other"), "{}", e.1);
        let e = parse_action(&words("track-sc0 src"), 13, &TableRefs::NONE).unwrap_err();
        assert!(e.1.contains("stick-table"), "{}", e.1);
    }

    #[test]
    fn stick_rules_parse() {
        let names = vec!["app".to_string()];
        let refs = TableRefs {
            names: &names,
            own: Some(0),
        };
        let acls = AclSet::new();
        let r = parse_rule("on src", &acls, &refs).unwrap();
        assert_eq!(r.kind, StickKind::On);
        let r = parse_rule("match src table app if { src 10.0.0.0/8 }", &acls, &refs).unwrap();
        assert_eq!(r.kind, StickKind::Match);
        assert!(r.cond.is_some());
        let e = parse_rule("onn src", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 0);
        let e = parse_rule("on", &acls, &refs).unwrap_err();
        assert!(e.1.contains("needs a key"));
        let e = parse_rule("on nosuchfetch", &acls, &refs).unwrap_err();
        assert_eq!(e.0, 3);
    }
}
