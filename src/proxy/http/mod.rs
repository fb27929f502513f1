//! HTTP/1.1 mode (layer 7): strict head parsing, streamed bodies,
//! keep-alive on both sides with a per-worker pool of server connections,
//! ACL routing, request and response rules, error pages, upgrades.

pub mod body;
pub mod chunked;
pub mod context;
pub mod head;
pub mod rules;
pub mod session;
