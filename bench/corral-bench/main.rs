//! corral-bench: corral's latency benchmarking tool.
//!
//! - `run`: a thread-per-core load generator (glommio, one executor per
//!   thread) for HTTP/1.1 keep-alive, HTTP with a connection per request
//!   (both also over TLS, with a benchmark-only rustls client: see `tls`),
//!   raw TCP request/response, and bulk streaming; closed loop, or open
//!   loop at a fixed rate with latency measured from each request's due
//!   time (coordinated-omission correction); HdrHistogram percentiles,
//!   JSON and .hgrm output.
//! - `serve`: a minimal, fast backend (HTTP, fixed-size TCP, echo).
//! - `plot`: latency-by-percentile charts of saved runs (SVG or HTML).
//!
//! Efficiency bar (checked by hand with `bench/corral-bench/vs_wrk.sh`,
//! not by a test): on the project's 2-core machine, `corral-bench run
//! --threads 1 -c 50 -d 10s` against `corral-bench serve http`, each pinned
//! to its own core, reaches at least the request rate of `wrk -t1 -c50
//! -d10s` against the same server in the same session (median of 3
//! alternating runs). Measured 2026-11-21, a quiet machine (both cores
//! busy only with the test): wrk 133333 req/s (rounds 133333, 152294,
//! 119168), corral-bench 149434 req/s (151627, 149434, 149295). The
//! plain request path allocates nothing, writes each request with one
//! write, and reads into a 64 KiB buffer so that one read takes a whole
//! response (over TLS, rustls's record buffers allocate; see `tls`).

mod bulk;
mod chunked;
mod cli;
mod connection;
mod executors;
mod hgrm;
mod http_client;
mod pacing;
mod plan;
mod plot;
mod report;
mod run;
mod rxbuf;
mod server;
mod server_http;
mod stats;
mod tcp_client;
mod tls;
mod worker;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    // A panic is a bug; one line says so, instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("corral-bench: internal error, please report it: {info}");
    }));
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Run(args) => run::command(args),
        Command::Serve(args) => server::command(args),
        Command::Plot(args) => plot::command(args),
    };
    // Exit at once: executor threads still winding down need no join.
    match result {
        Ok(()) => std::process::exit(0),
        Err(message) => {
            eprintln!("corral-bench: {message}");
            std::process::exit(1);
        }
    }
}
