//! `http-request` and `http-response` rules: HAProxy's actions, each with
//! an optional `if`/`unless` condition, parsed once at load and applied in
//! order to every message.
//!
//! Request actions: `allow`, `deny [status N] [content-type T] [string S |
//! lf-string F]`, `return [status N] [content-type T] [string S |
//! lf-string F]`, `redirect location|prefix|scheme V [code N]
//! [drop-query] [append-slash]`, `set-header`, `add-header`, `del-header`,
//! `replace-header NAME REGEX REPLACEMENT`, `set-path`, `set-query`.
//! Response actions: `allow`, `deny` (502 by default), `return`,
//! `set-header`, `add-header`, `del-header`, `replace-header`.

use crate::acl::{self, AclSet, Condition, LogFormat};

/// One rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub action: Action,
    pub cond: Option<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedirectKind {
    Location,
    Prefix,
    Scheme,
}

#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Stop evaluating rules; let the message through.
    Allow,
    /// Refuse with `status` (an error page unless a body is given).
    Deny {
        status: u16,
        content_type: Option<String>,
        body: Option<LogFormat>,
    },
    /// Answer directly.
    Return {
        status: u16,
        content_type: Option<String>,
        body: Option<LogFormat>,
    },
    Redirect {
        kind: RedirectKind,
        value: LogFormat,
        code: u16,
        drop_query: bool,
        append_slash: bool,
    },
    SetHeader {
        name: String,
        value: LogFormat,
    },
    AddHeader {
        name: String,
        value: LogFormat,
    },
    DelHeader {
        name: String,
    },
    ReplaceHeader {
        name: String,
        regex: regex::bytes::Regex,
        with: String,
    },
    SetPath(LogFormat),
    SetQuery(LogFormat),
    /// `track-scN`, `sc-inc-gpc0` (request rules).
    Stick(crate::rules::stick::StickAction),
}

/// A problem in a rule: the byte offset in the rule text and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleError {
    pub offset: usize,
    pub message: String,
}

impl From<acl::ParseError> for RuleError {
    fn from(e: acl::ParseError) -> Self {
        RuleError {
            offset: e.offset,
            message: e.message,
        }
    }
}

const REQUEST_ACTIONS: &str = "allow, deny, return, redirect, set-header, add-header, del-header, replace-header, set-path, set-query, track-sc0, track-sc1, track-sc2, sc-inc-gpc0";
const RESPONSE_ACTIONS: &str =
    "allow, deny, return, set-header, add-header, del-header, replace-header";

/// Parses one rule line (no stick tables to refer to).
#[cfg(test)]
pub(crate) fn parse(line: &str, acls: &AclSet, side: Side) -> Result<Rule, RuleError> {
    parse_with(line, acls, side, &crate::rules::stick::TableRefs::NONE)
}

/// Parses one rule line; `tables` resolves `track-scN ... table NAME`.
pub(crate) fn parse_with(
    line: &str,
    acls: &AclSet,
    side: Side,
    tables: &crate::rules::stick::TableRefs,
) -> Result<Rule, RuleError> {
    let (action_text, cond_text) = acl::split_condition(line);
    let cond = match cond_text {
        Some((text, at)) => Some(Condition::parse(text, acls).map_err(|e| RuleError {
            offset: at + e.offset,
            message: e.message,
        })?),
        None => None,
    };
    let action_at = line.len() - line.trim_start().len();
    let words = acl::split_words(action_text).map_err(|e| RuleError {
        offset: action_at + e.offset,
        message: e.message,
    })?;
    let words: Vec<(String, usize)> = words.into_iter().map(|(w, o)| (w, o + action_at)).collect();
    if side == Side::Request
        && let Some(a) =
            crate::rules::stick::parse_action(&words, action_text.trim_end().len(), tables)
                .map_err(|(offset, message)| RuleError { offset, message })?
    {
        return Ok(Rule {
            action: Action::Stick(a),
            cond,
        });
    }
    let action = parse_action(&words, side, line.len())?;
    Ok(Rule { action, cond })
}

/// The words of an action and a cursor over them.
struct Words<'w> {
    words: &'w [(String, usize)],
    next: usize,
    end: usize,
}

impl<'w> Words<'w> {
    fn take(&mut self, what: &str) -> Result<(&'w str, usize), RuleError> {
        match self.words.get(self.next) {
            Some((w, at)) => {
                self.next += 1;
                Ok((w.as_str(), *at))
            }
            None => Err(RuleError {
                offset: self.end,
                message: format!("missing {what}"),
            }),
        }
    }

    fn peek(&self) -> Option<&'w (String, usize)> {
        self.words.get(self.next)
    }
}

fn parse_action(words: &[(String, usize)], side: Side, end: usize) -> Result<Action, RuleError> {
    let mut w = Words {
        words,
        next: 0,
        end,
    };
    let (name, at) = w.take("an action")?;
    let valid = match side {
        Side::Request => REQUEST_ACTIONS,
        Side::Response => RESPONSE_ACTIONS,
    };
    let request_only = matches!(name, "redirect" | "set-path" | "set-query");
    if side == Side::Response && request_only {
        return Err(RuleError {
            offset: at,
            message: format!("`{name}` is an http-request action (http-response allows: {valid})"),
        });
    }
    let action = match name {
        "allow" => Action::Allow,
        "deny" | "return" => {
            let default = match (name, side) {
                ("deny", Side::Request) => 403,
                ("deny", Side::Response) => 502,
                _ => 200,
            };
            let (status, content_type, body) = reply_options(&mut w, default)?;
            if name == "deny" {
                Action::Deny {
                    status,
                    content_type,
                    body,
                }
            } else {
                Action::Return {
                    status,
                    content_type,
                    body,
                }
            }
        }
        "redirect" => {
            let (kind_word, kind_at) = w.take("`location`, `prefix` or `scheme`")?;
            let kind = match kind_word {
                "location" => RedirectKind::Location,
                "prefix" => RedirectKind::Prefix,
                "scheme" => RedirectKind::Scheme,
                other => {
                    return Err(RuleError {
                        offset: kind_at,
                        message: format!(
                            "`{other}` is not a redirect type (expected location, prefix or scheme)"
                        ),
                    });
                }
            };
            let (v, v_at) = w.take("the redirect target")?;
            let value = log_format(v, v_at)?;
            let mut code = 302;
            let (mut drop_query, mut append_slash) = (false, false);
            while let Some((opt, opt_at)) = w.peek() {
                w.next += 1;
                match opt.as_str() {
                    "code" => {
                        let (c, c_at) = w.take("a redirect code")?;
                        code = match c.parse::<u16>() {
                            Ok(n @ (301 | 302 | 303 | 307 | 308)) => n,
                            _ => {
                                return Err(RuleError {
                                    offset: c_at,
                                    message: format!(
                                        "`{c}` is not a redirect code (expected 301, 302, 303, 307 or 308)"
                                    ),
                                });
                            }
                        };
                    }
                    "drop-query" => drop_query = true,
                    "append-slash" => append_slash = true,
                    other => {
                        return Err(RuleError {
                            offset: *opt_at,
                            message: format!(
                                "unknown redirect option `{other}` (expected code, drop-query, append-slash)"
                            ),
                        });
                    }
                }
            }
            Action::Redirect {
                kind,
                value,
                code,
                drop_query,
                append_slash,
            }
        }
        "set-header" | "add-header" => {
            let (hname, h_at) = w.take("a header name")?;
            header_name(hname, h_at)?;
            let (v, v_at) = w.take("a header value")?;
            let value = log_format(v, v_at)?;
            if name == "set-header" {
                Action::SetHeader {
                    name: hname.to_string(),
                    value,
                }
            } else {
                Action::AddHeader {
                    name: hname.to_string(),
                    value,
                }
            }
        }
        "del-header" => {
            let (hname, h_at) = w.take("a header name")?;
            header_name(hname, h_at)?;
            Action::DelHeader {
                name: hname.to_string(),
            }
        }
        "replace-header" => {
            let (hname, h_at) = w.take("a header name")?;
            header_name(hname, h_at)?;
            let (re, re_at) = w.take("a regular expression")?;
            let regex =
                regex::bytes::Regex::new(&format!("^(?:{re})$")).map_err(|e| RuleError {
                    offset: re_at,
                    message: format!("invalid regular expression: {e}"),
                })?;
            let (with, _) = w.take("a replacement")?;
            Action::ReplaceHeader {
                name: hname.to_string(),
                regex,
                with: backrefs(with),
            }
        }
        "set-path" | "set-query" => {
            let (v, v_at) = w.take("a value")?;
            let value = log_format(v, v_at)?;
            if name == "set-path" {
                Action::SetPath(value)
            } else {
                Action::SetQuery(value)
            }
        }
        other => {
            return Err(RuleError {
                offset: at,
                message: format!("unknown action `{other}` (valid here: {valid})"),
            });
        }
    };
    if let Some((extra, extra_at)) = w.peek() {
        return Err(RuleError {
            offset: *extra_at,
            message: format!(
                "unexpected `{extra}` after the action (a condition starts with `if` or `unless`)"
            ),
        });
    }
    Ok(action)
}

type ReplyOptions = (u16, Option<String>, Option<LogFormat>);

fn reply_options(w: &mut Words, default: u16) -> Result<ReplyOptions, RuleError> {
    let (mut status, mut content_type, mut body) = (default, None, None);
    while let Some((opt, opt_at)) = w.peek() {
        w.next += 1;
        match opt.as_str() {
            "status" | "deny_status" => {
                let (s, s_at) = w.take("a status")?;
                status = match s.parse::<u16>() {
                    Ok(n) if (200..=599).contains(&n) => n,
                    _ => {
                        return Err(RuleError {
                            offset: s_at,
                            message: format!("`{s}` is not a status from 200 to 599"),
                        });
                    }
                };
            }
            "content-type" => content_type = Some(w.take("a content type")?.0.to_string()),
            "string" => {
                let (s, _) = w.take("a string")?;
                body = Some(log_format(&s.replace('%', "%%"), 0)?);
            }
            "lf-string" => {
                let (s, s_at) = w.take("a log-format string")?;
                body = Some(log_format(s, s_at)?);
            }
            other => {
                return Err(RuleError {
                    offset: *opt_at,
                    message: format!(
                        "unknown option `{other}` (expected status, content-type, string, lf-string)"
                    ),
                });
            }
        }
    }
    Ok((status, content_type, body))
}

fn log_format(text: &str, at: usize) -> Result<LogFormat, RuleError> {
    LogFormat::parse(text).map_err(|e| RuleError {
        offset: at + e.offset,
        message: e.message,
    })
}

fn header_name(name: &str, at: usize) -> Result<(), RuleError> {
    if name.is_empty() || !name.bytes().all(crate::base::tchar::is_tchar) {
        return Err(RuleError {
            offset: at,
            message: format!("`{name}` is not a valid header name"),
        });
    }
    Ok(())
}

/// HAProxy writes back-references as `\1`; the regex crate as `${1}`.
pub(crate) fn backrefs(with: &str) -> String {
    let mut out = String::with_capacity(with.len());
    let mut chars = with.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str(&format!("${{{d}}}"));
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}
