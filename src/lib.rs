//! corral: a load balancer and reverse proxy in the class of HAProxy,
//! thread-per-core on io_uring (glommio). See ARCHITECTURE.md for the
//! layers; each folder below imports only the folders listed after it.

pub mod balance;
pub mod cli;
pub mod control;
pub mod health;
pub mod mesh;
pub mod peers;
pub mod process;
pub mod proxy;
pub mod stick;
pub mod worker;
#[macro_use]
pub mod observe;
pub mod acl;
pub mod base;
pub mod config;
pub mod io;
pub mod model;
pub mod rules;
pub mod tls;
