//! `tcp-request` rules as the configuration holds them: decisions on a
//! connection before any data is read (`tcp-request connection
//! accept|reject|track-scN|sc-inc-gpc0 [if|unless cond]`), on its first
//! bytes (`tcp-request content ...`), and `tcp-request inspect-delay`.
//! `proxy::tcp::rules` runs them.

use crate::acl::{AclSet, Condition};
use crate::rules::stick::{Problem, RuleParts, StickAction, TableRefs, parse_action};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Connection,
    Content,
}

#[derive(Debug, Clone)]
pub(crate) enum TcpAction {
    /// Stop evaluating rules of this phase; keep the connection.
    Accept,
    /// Close the connection at once (nothing is logged, as HAProxy's
    /// `tcp-request connection reject`).
    Reject,
    Stick(StickAction),
}

#[derive(Debug, Clone)]
pub(crate) struct TcpRule {
    pub phase: Phase,
    pub action: TcpAction,
    pub cond: Option<Condition>,
}

/// One `tcp-request` line.
#[derive(Debug, Clone)]
pub(crate) enum TcpRequest {
    Rule(TcpRule),
    /// `inspect-delay <duration>`.
    InspectDelay(Duration),
}

/// Parses `connection|content <action> [if|unless <condition>]` or
/// `inspect-delay <duration>`.
pub(crate) fn parse(line: &str, acls: &AclSet, tables: &TableRefs) -> Result<TcpRequest, Problem> {
    let RuleParts { words, end, cond } = RuleParts::split(line, acls)?;
    let Some((phase_word, phase_at)) = words.first() else {
        return Err((0, "expected `connection` or `content` and an action, e.g. `connection reject if { src 10.0.0.0/8 }`".into()));
    };
    let phase = match phase_word.as_str() {
        "connection" => Phase::Connection,
        "content" => Phase::Content,
        "inspect-delay" => return inspect_delay(line, &words, end, cond.is_some()),
        "session" => {
            return Err((
                *phase_at,
                "`tcp-request session` is not supported yet (supported: connection, content, inspect-delay)".into(),
            ));
        }
        other => {
            return Err((
                *phase_at,
                format!(
                    "unknown tcp-request phase `{other}` (expected connection, content or inspect-delay)"
                ),
            ));
        }
    };
    let rest = &words[1..];
    let Some((name, name_at)) = rest.first() else {
        return Err((
            end,
            format!("`{phase_word}` needs an action: accept, reject, track-sc0/1/2, sc-inc-gpc0"),
        ));
    };
    let action = match name.as_str() {
        "accept" | "reject" => {
            if let Some((extra, at)) = rest.get(1) {
                return Err((
                    *at,
                    format!(
                        "unexpected `{extra}` after `{name}` (a condition starts with `if` or `unless`)"
                    ),
                ));
            }
            if name == "accept" {
                TcpAction::Accept
            } else {
                TcpAction::Reject
            }
        }
        _ => match parse_action(rest, end, tables)? {
            Some(a) => TcpAction::Stick(a),
            None => {
                return Err((
                    *name_at,
                    format!(
                        "unknown tcp-request action `{name}` (valid: accept, reject, track-sc0, track-sc1, track-sc2, sc-inc-gpc0)"
                    ),
                ));
            }
        },
    };
    Ok(TcpRequest::Rule(TcpRule {
        phase,
        action,
        cond,
    }))
}

/// `inspect-delay <duration>`: how long content rules may wait for data.
fn inspect_delay(
    line: &str,
    words: &[(String, usize)],
    end: usize,
    has_cond: bool,
) -> Result<TcpRequest, Problem> {
    let usage = "expected `inspect-delay <duration>`, e.g. `inspect-delay 5s`";
    if has_cond {
        let at = end + line[end..].len() - line[end..].trim_start().len();
        return Err((at, format!("`inspect-delay` takes no condition: {usage}")));
    }
    let Some((text, at)) = words.get(1) else {
        return Err((end, format!("`inspect-delay` needs a duration: {usage}")));
    };
    if let Some((extra, at)) = words.get(2) {
        return Err((
            *at,
            format!("unexpected `{extra}` after the duration: {usage}"),
        ));
    }
    crate::base::units::parse_duration(text)
        .map(TcpRequest::InspectDelay)
        .map_err(|msg| (*at, msg))
}
