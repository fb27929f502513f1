//! HTTP/1.1 mode (layer 7): strict head parsing, streamed bodies,
//! keep-alive on both sides with a per-worker pool of server connections,
//! ACL routing, request and response rules, error pages, upgrades.
//!
//! Must not touch: `proxy::tcp` and the accept loop (which calls in here);
//! it calls down into `upstream`, `balance`, `stick`, `control::stats` (the
//! stats page) and `io`.

pub(crate) mod body;
pub(crate) mod chunked;
pub(crate) mod context;
pub(crate) mod head;
pub(crate) mod rules;
pub(crate) mod session;
