//! corral: a load balancer and reverse proxy in the class of HAProxy,
//! thread-per-core on io_uring (glommio). See ARCHITECTURE.md for the
//! layers (each folder imports only the layers below it, checked by
//! tests/layers.rs). The library's surface is what the binary, the
//! integration tests and the load generator use, re-exported here.

pub(crate) mod balance;
pub(crate) mod cli;
pub(crate) mod control;
pub(crate) mod health;
pub(crate) mod mesh;
pub(crate) mod peers;
pub(crate) mod process;
pub(crate) mod proxy;
pub(crate) mod stick;
pub(crate) mod worker;
#[macro_use]
pub(crate) mod observe;
pub(crate) mod acl;
pub(crate) mod base;
pub(crate) mod config;
pub(crate) mod io;
pub(crate) mod model;
pub(crate) mod rules;
pub(crate) mod tls;

pub use cli::main;
/// How many io_uring rings this process has set up (read by corral-bench).
pub use io::ring_setup::ring_counts;
/// The peers protocol codec (tests/peers_haproxy_wire.rs speaks it to HAProxy).
pub use peers::wire;
/// TLS client settings as corral builds them for servers (the tests' clients).
pub use tls::connect::client_config;
