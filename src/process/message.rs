//! The messages between the master and a generation, and their one codec.
//!
//! Each message is one record on the channel (`channel.rs`): a tag, then,
//! for the messages that have them, a space and the fields. The fields are
//! numbers separated by single spaces, or a text that runs to the end of
//! the record (it may hold spaces and newlines):
//!
//! ```text
//! master → generation                  generation → master
//! config PATH        (+ a memfd)       ready
//! sockets F B FRESH FIRST ID...        failed REASON
//!                    (+ the sockets)   retired
//! start                                state   (+ a memfd)
//! retire
//! quit
//! state              (+ a memfd)
//! ```
//!
//! `config` carries the configuration file's path (its text is in the
//! memfd); `sockets` one bind's listening sockets, in the group's order:
//! frontend and bind index, the index from which the group's sockets do
//! not listen yet, the index of this message's first socket in the group
//! (a group may take several messages) and the master's id of each socket
//! sent. `state` is a retiring generation's state, which the master passes
//! on to the serving one unchanged.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::str::FromStr;

/// A message with a wire form: what `Channel::send` and `Channel::recv`
/// carry.
pub(crate) trait Message: Sized {
    /// The record's bytes.
    fn encode(&self) -> Vec<u8>;
    /// The message a record holds.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
    /// The message's tag, its first word on the wire.
    fn tag(&self) -> &'static str;
}

/// What the master tells a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ToGeneration {
    /// The configuration (its text in the memfd sent along) and the file
    /// it came from.
    Config { path: PathBuf },
    /// Listening sockets of one bind (sent along, one per id).
    Sockets {
        frontend: usize,
        bind: usize,
        /// The group's sockets from this index on do not listen yet.
        fresh_from: usize,
        /// The index in the group of this message's first socket.
        first: usize,
        /// The master's id of each socket, in order.
        ids: Vec<u64>,
    },
    /// The handover is complete: start the workers.
    Start,
    /// A newer generation serves: stop accepting, hand the state over and
    /// drain.
    Retire,
    /// Corral stops: stop accepting and drain.
    Quit,
    /// The previous generation's state (in the memfd sent along).
    State,
}

/// What a generation tells the master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ToMaster {
    /// Every worker accepts.
    Ready,
    /// The generation cannot start, and why (one or more lines).
    Failed { reason: String },
    /// Every worker of a retiring generation stopped accepting.
    Retired,
    /// The retiring generation's state (in the memfd sent along), for
    /// the next one.
    State,
}

/// Why a record is not a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The first word is no message's tag (empty: an empty record).
    UnknownTag(String),
    /// The message ends before this field.
    MissingField {
        tag: &'static str,
        field: &'static str,
    },
    /// A number field holds something else.
    NotANumber {
        tag: &'static str,
        field: &'static str,
        value: String,
    },
    /// A text field is not UTF-8.
    NotUtf8 {
        tag: &'static str,
        field: &'static str,
    },
    /// A message without fields came with some.
    Unexpected { tag: &'static str, extra: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnknownTag(t) if t.is_empty() => write!(f, "an empty message"),
            DecodeError::UnknownTag(t) => write!(f, "unknown message `{t}`"),
            DecodeError::MissingField { tag, field } => {
                write!(f, "`{tag}` message without its {field}")
            }
            DecodeError::NotANumber { tag, field, value } => {
                write!(f, "`{tag}` message: {field} `{value}` is not a number")
            }
            DecodeError::NotUtf8 { tag, field } => {
                write!(f, "`{tag}` message: {field} is not UTF-8")
            }
            DecodeError::Unexpected { tag, extra } => {
                write!(f, "`{tag}` message takes no fields, got `{extra}`")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl Message for ToGeneration {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.tag().as_bytes().to_vec();
        match self {
            ToGeneration::Config { path } => {
                out.push(b' ');
                out.extend_from_slice(path.as_os_str().as_bytes());
            }
            ToGeneration::Sockets {
                frontend,
                bind,
                fresh_from,
                first,
                ids,
            } => {
                let numbers = [
                    *frontend as u64,
                    *bind as u64,
                    *fresh_from as u64,
                    *first as u64,
                ];
                for n in numbers.iter().chain(ids) {
                    out.extend_from_slice(format!(" {n}").as_bytes());
                }
            }
            ToGeneration::Start
            | ToGeneration::Retire
            | ToGeneration::Quit
            | ToGeneration::State => {}
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (word, rest) = split(bytes);
        let fields = |tag| Fields { tag, rest };
        match word {
            b"config" => {
                let path = fields("config").text("path")?;
                Ok(ToGeneration::Config {
                    path: PathBuf::from(OsStr::from_bytes(path)),
                })
            }
            b"sockets" => {
                let mut f = fields("sockets");
                let frontend = f.number("frontend")?;
                let bind = f.number("bind")?;
                let fresh_from = f.number("fresh_from")?;
                let first = f.number("first")?;
                let mut ids = Vec::new();
                while f.more() {
                    ids.push(f.number("socket id")?);
                }
                Ok(ToGeneration::Sockets {
                    frontend,
                    bind,
                    fresh_from,
                    first,
                    ids,
                })
            }
            b"start" => fields("start").none(ToGeneration::Start),
            b"retire" => fields("retire").none(ToGeneration::Retire),
            b"quit" => fields("quit").none(ToGeneration::Quit),
            b"state" => fields("state").none(ToGeneration::State),
            other => Err(unknown(other)),
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            ToGeneration::Config { .. } => "config",
            ToGeneration::Sockets { .. } => "sockets",
            ToGeneration::Start => "start",
            ToGeneration::Retire => "retire",
            ToGeneration::Quit => "quit",
            ToGeneration::State => "state",
        }
    }
}

impl Message for ToMaster {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.tag().as_bytes().to_vec();
        if let ToMaster::Failed { reason } = self {
            out.push(b' ');
            out.extend_from_slice(reason.as_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let (word, rest) = split(bytes);
        let fields = |tag| Fields { tag, rest };
        match word {
            b"ready" => fields("ready").none(ToMaster::Ready),
            b"failed" => {
                let reason = fields("failed").utf8("reason")?;
                Ok(ToMaster::Failed { reason })
            }
            b"retired" => fields("retired").none(ToMaster::Retired),
            b"state" => fields("state").none(ToMaster::State),
            other => Err(unknown(other)),
        }
    }

    fn tag(&self) -> &'static str {
        match self {
            ToMaster::Ready => "ready",
            ToMaster::Failed { .. } => "failed",
            ToMaster::Retired => "retired",
            ToMaster::State => "state",
        }
    }
}

/// A record's first word (its tag) and the rest after one space (None:
/// the record is its tag alone).
fn split(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
        None => (bytes, None),
    }
}

fn unknown(word: &[u8]) -> DecodeError {
    DecodeError::UnknownTag(String::from_utf8_lossy(word).into_owned())
}

/// The fields of one record, after its tag.
struct Fields<'a> {
    tag: &'static str,
    /// None: the record is its tag alone.
    rest: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// `msg`, when the record has no fields.
    fn none<M>(self, msg: M) -> Result<M, DecodeError> {
        match self.rest {
            None => Ok(msg),
            Some(extra) => Err(DecodeError::Unexpected {
                tag: self.tag,
                extra: String::from_utf8_lossy(extra).into_owned(),
            }),
        }
    }

    /// The rest of the record, as it is.
    fn text(self, field: &'static str) -> Result<&'a [u8], DecodeError> {
        self.rest.ok_or(DecodeError::MissingField {
            tag: self.tag,
            field,
        })
    }

    /// The rest of the record, as UTF-8 text.
    fn utf8(self, field: &'static str) -> Result<String, DecodeError> {
        let tag = self.tag;
        let bytes = self.text(field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { tag, field })
    }

    /// Whether a field is left.
    fn more(&self) -> bool {
        self.rest.is_some()
    }

    /// The next space-separated field, a number.
    fn number<T: FromStr>(&mut self, field: &'static str) -> Result<T, DecodeError> {
        let rest = self.rest.ok_or(DecodeError::MissingField {
            tag: self.tag,
            field,
        })?;
        let (word, next) = split(rest);
        self.rest = next;
        let parsed = std::str::from_utf8(word)
            .ok()
            .filter(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|w| w.parse().ok());
        parsed.ok_or_else(|| DecodeError::NotANumber {
            tag: self.tag,
            field,
            value: String::from_utf8_lossy(word).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `msg` encodes to exactly `wire`, and `wire` decodes to `msg`.
    fn round_trip<M: Message + PartialEq + fmt::Debug>(msg: M, wire: &[u8]) {
        assert_eq!(
            msg.encode(),
            wire,
            "encoding {msg:?}: {:?}",
            String::from_utf8_lossy(&msg.encode())
        );
        assert_eq!(M::decode(wire), Ok(msg));
    }

    #[test]
    fn messages_to_a_generation_round_trip() {
        round_trip(
            ToGeneration::Config {
                path: "/etc/corral/corral.toml".into(),
            },
            b"config /etc/corral/corral.toml",
        );
        // The path runs to the end: spaces, newlines and non-UTF-8 bytes.
        round_trip(
            ToGeneration::Config {
                path: PathBuf::from(OsStr::from_bytes(b"/tmp/a b\n\xff.toml")),
            },
            b"config /tmp/a b\n\xff.toml",
        );
        round_trip(
            ToGeneration::Config {
                path: PathBuf::new(),
            },
            b"config ",
        );
        round_trip(
            ToGeneration::Sockets {
                frontend: 2,
                bind: 0,
                fresh_from: 1,
                first: 250,
                ids: vec![7, 18446744073709551615],
            },
            b"sockets 2 0 1 250 7 18446744073709551615",
        );
        round_trip(
            ToGeneration::Sockets {
                frontend: 0,
                bind: 1,
                fresh_from: 0,
                first: 0,
                ids: vec![],
            },
            b"sockets 0 1 0 0",
        );
        round_trip(ToGeneration::Start, b"start");
        round_trip(ToGeneration::Retire, b"retire");
        round_trip(ToGeneration::Quit, b"quit");
        round_trip(ToGeneration::State, b"state");
    }

    #[test]
    fn messages_to_the_master_round_trip() {
        round_trip(ToMaster::Ready, b"ready");
        round_trip(ToMaster::Retired, b"retired");
        round_trip(ToMaster::State, b"state");
        round_trip(
            ToMaster::Failed {
                reason: "frontends.web.bind[0]: port 80: permission denied\n2 errors".into(),
            },
            b"failed frontends.web.bind[0]: port 80: permission denied\n2 errors",
        );
        round_trip(
            ToMaster::Failed {
                reason: String::new(),
            },
            b"failed ",
        );
    }

    #[test]
    fn state_is_the_same_record_both_ways() {
        // The master passes a retiring generation's `state` on as it is.
        assert_eq!(ToMaster::State.encode(), ToGeneration::State.encode());
    }

    #[test]
    fn unknown_tags() {
        assert_eq!(
            ToGeneration::decode(b"reboot now"),
            Err(DecodeError::UnknownTag("reboot".into()))
        );
        // Each direction knows only its own messages.
        assert_eq!(
            ToGeneration::decode(b"ready"),
            Err(DecodeError::UnknownTag("ready".into()))
        );
        assert_eq!(
            ToMaster::decode(b"retire"),
            Err(DecodeError::UnknownTag("retire".into()))
        );
        // Tags are exact words.
        assert_eq!(
            ToMaster::decode(b"Ready"),
            Err(DecodeError::UnknownTag("Ready".into()))
        );
        assert_eq!(
            ToMaster::decode(b"readyx"),
            Err(DecodeError::UnknownTag("readyx".into()))
        );
        assert_eq!(
            ToMaster::decode(b""),
            Err(DecodeError::UnknownTag(String::new()))
        );
        assert_eq!(
            DecodeError::UnknownTag("reboot".into()).to_string(),
            "unknown message `reboot`"
        );
        assert_eq!(
            DecodeError::UnknownTag(String::new()).to_string(),
            "an empty message"
        );
    }

    #[test]
    fn missing_fields() {
        let missing = |tag, field| Err(DecodeError::MissingField { tag, field });
        assert_eq!(ToGeneration::decode(b"config"), missing("config", "path"));
        assert_eq!(
            ToGeneration::decode(b"sockets"),
            missing("sockets", "frontend")
        );
        assert_eq!(
            ToGeneration::decode(b"sockets 1 2"),
            missing("sockets", "fresh_from")
        );
        assert_eq!(
            ToGeneration::decode(b"sockets 1 2 0"),
            missing("sockets", "first")
        );
        assert_eq!(
            ToMaster::decode(b"failed"),
            Err(DecodeError::MissingField {
                tag: "failed",
                field: "reason"
            })
        );
        assert_eq!(
            ToGeneration::decode(b"sockets 1 2")
                .unwrap_err()
                .to_string(),
            "`sockets` message without its fresh_from"
        );
    }

    #[test]
    fn non_numbers() {
        let nan = |field, value: &str| {
            Err(DecodeError::NotANumber {
                tag: "sockets",
                field,
                value: value.into(),
            })
        };
        assert_eq!(
            ToGeneration::decode(b"sockets x 0 0 0 1"),
            nan("frontend", "x")
        );
        assert_eq!(
            ToGeneration::decode(b"sockets 0 0 0 0 1 two"),
            nan("socket id", "two")
        );
        assert_eq!(
            ToGeneration::decode(b"sockets 0 0 -1 0 1"),
            nan("fresh_from", "-1")
        );
        assert_eq!(
            ToGeneration::decode(b"sockets 0 0 +1 0 1"),
            nan("fresh_from", "+1")
        );
        // Out of range is not a number of the field's type.
        assert_eq!(
            ToGeneration::decode(b"sockets 0 0 0 0 18446744073709551616"),
            nan("socket id", "18446744073709551616")
        );
        // One space between fields: two make an empty field, and so does
        // a space at the end.
        assert_eq!(ToGeneration::decode(b"sockets 0  0 0 1"), nan("bind", ""));
        assert_eq!(
            ToGeneration::decode(b"sockets 0 0 0 0 1 "),
            nan("socket id", "")
        );
        assert_eq!(
            ToGeneration::decode(b"sockets x 0 0 0 1")
                .unwrap_err()
                .to_string(),
            "`sockets` message: frontend `x` is not a number"
        );
    }

    #[test]
    fn other_malformed_records() {
        assert_eq!(
            ToGeneration::decode(b"retire now"),
            Err(DecodeError::Unexpected {
                tag: "retire",
                extra: "now".into()
            })
        );
        assert_eq!(
            ToMaster::decode(b"ready "),
            Err(DecodeError::Unexpected {
                tag: "ready",
                extra: String::new()
            })
        );
        assert_eq!(
            ToMaster::decode(b"failed \xff"),
            Err(DecodeError::NotUtf8 {
                tag: "failed",
                field: "reason"
            })
        );
        assert_eq!(
            ToGeneration::decode(b"quit 1").unwrap_err().to_string(),
            "`quit` message takes no fields, got `1`"
        );
    }
}
