//! corral: a load balancer and reverse proxy in the class of HAProxy,
//! thread-per-core on io_uring (glommio). See ARCHITECTURE.md.

pub mod acl;
pub mod backend;
pub mod balance;
pub mod client_hello;
pub mod clock;
pub mod config;
pub mod hash;
pub mod local_sync;
pub mod master;
pub mod peers;
#[macro_use]
pub mod log;
pub mod demo;
pub mod engine;
pub mod health;
pub mod http;
pub mod import_haproxy;
pub mod listener;
pub mod persist;
pub mod relay;
pub mod runtime_api;
pub mod sessions;
pub mod stats;
pub mod steer;
pub mod stick;
pub mod stream;
pub mod summary;
pub mod tcp;
pub mod tcp_rules;
#[cfg(test)]
mod test_rng;
pub mod tls;
pub mod upstream;
pub mod web;
