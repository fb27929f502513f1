//! The command line: `corral run|reload|check|ctl|demo|web|probe|import-haproxy`.
//! Parses arguments, loads configurations and hands over to the process
//! layer; `import_haproxy`, `demo`, `web` and `summary` are its tools.

pub(crate) mod demo;
pub(crate) mod import_haproxy;
pub(crate) mod summary;
pub(crate) mod web;

use crate::alert;
use crate::config::Config;
use crate::process::{generation, master};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "corral",
    version,
    about = "A load balancer and reverse proxy in the class of HAProxy, thread-per-core on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy with a configuration file. SIGHUP or SIGUSR2 (or
    /// `corral reload`) reloads it without closing a listening socket.
    Run {
        /// The configuration file.
        #[arg(short, long, default_value = "corral.yaml")]
        config: PathBuf,
        /// This node's name in `peers` sections (overrides `local:` and
        /// the host name).
        #[arg(long)]
        peer_name: Option<String>,
        /// The control socket `corral reload` talks to (default:
        /// global.control-socket, else /run/corral/corral.sock for root,
        /// $XDG_RUNTIME_DIR/corral.sock otherwise).
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Validate a configuration file, then have the running corral load
    /// it: exits 0 once the new configuration serves, 1 (with the reason)
    /// if it is not valid or could not start; the running configuration
    /// then goes on serving.
    Reload {
        /// The configuration file (default: the one corral runs with).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The running corral's control socket (default: as for `run`).
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// A generation of a running corral (started by `corral run`).
    #[command(hide = true)]
    Generation {
        #[arg(long)]
        channel: i32,
        #[arg(long)]
        number: u64,
        #[arg(long)]
        peer_name: Option<String>,
    },
    /// Validate a configuration file and print a summary; exits non-zero
    /// if it is not valid.
    Check {
        #[arg(short, long, default_value = "corral.yaml")]
        config: PathBuf,
    },
    /// Send a command to a running corral's runtime API (`global.stats-socket`)
    /// and print the answer; exits 1 when the answer is an error, 2 when the
    /// socket cannot be reached.
    ///
    /// Example: `corral ctl --socket /run/corral/admin.sock disable server app/web1`.
    /// Several commands: separate them with `;` (quote it for the shell).
    Ctl {
        /// The socket: a unix socket path, or a loopback `ip:port`.
        #[arg(short, long, default_value = "/run/corral/admin.sock")]
        socket: String,
        /// The command and its arguments (`show info`, `set server b/s state drain`...).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Convert a haproxy.cfg into corral's YAML: the YAML goes to stdout,
    /// the report to stderr.
    ///
    /// Example: `corral import-haproxy /etc/haproxy/haproxy.cfg > corral.yaml`.
    /// Comments are kept. Each directive corral cannot express is reported
    /// on stderr with its line and the reason (`haproxy.cfg:12: option tcpka:
    /// not converted: ...`) and left in the YAML as a `# NOT CONVERTED`
    /// comment where it stood.
    ///
    /// Exit status: 0 when everything was converted; 3 when the YAML was
    /// written but something was not converted; 1 when the file cannot be
    /// read or parsed (nothing is written).
    ImportHaproxy {
        /// The HAProxy configuration file.
        file: PathBuf,
    },
    /// Start demo HTTP backends on loopback and the proxy in front of them,
    /// with no files at all.
    Demo {
        /// Where the demo proxy listens.
        #[arg(long, default_value = "127.0.0.1")]
        address: String,
        /// The demo proxy's port (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// How many demo backends to start.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
        backends: u8,
        /// Workers for the demo proxy.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Print the demo's configuration and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// A standalone demo web server answering every request with 200 and its
    /// name (body and `X-Served-By`), for labs and the deploy/ files.
    Web(web::WebArgs),
    /// Send HTTP requests (or, with --tcp, only connect) and print one line
    /// per answer (`200 web1`) or why it failed; for health checks and labs.
    Probe(web::ProbeArgs),
}

/// The `corral` command line: parses the arguments and runs the command.
pub fn main() -> ExitCode {
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        alert!("internal error, please report it: {info}");
    }));
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            peer_name,
            control,
        } => run(&config, peer_name, control),
        Command::Reload { config, control } => reload(config.as_deref(), control.as_deref()),
        Command::Generation {
            channel,
            number,
            peer_name,
        } => match generation::generation(channel, number, peer_name) {
            Ok(()) => ExitCode::SUCCESS,
            Err(msg) => {
                // Start-up failures were sent to the master, which
                // reports them; anything else is said here.
                if !msg.is_empty() {
                    alert!("{msg}");
                }
                ExitCode::FAILURE
            }
        },
        Command::Check { config } => check(&config),
        Command::Ctl { socket, command } => ctl(&socket, &command.join(" ")),
        Command::ImportHaproxy { file } => import_haproxy(&file),
        Command::Demo {
            address,
            port,
            backends,
            workers,
            print_config,
        } => demo(&address, port, backends.into(), workers, print_config),
        Command::Web(args) => web::web(&args),
        Command::Probe(args) => web::probe(&args),
    }
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    let config = Config::load(path).map_err(|errors| {
        report(path, &errors, "nothing was started");
        ExitCode::FAILURE
    })?;
    crate::observe::log::config_warnings(&config);
    Ok(config)
}

fn run(path: &Path, peer_name: Option<String>, control: Option<PathBuf>) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: cannot read the configuration: {e}", path.display());
            eprintln!("{}: 1 error found; nothing was started", path.display());
            return ExitCode::FAILURE;
        }
    };
    let mut config = match Config::parse(path, &text) {
        Ok(c) => {
            crate::observe::log::config_warnings(&c);
            c
        }
        Err(errors) => {
            report(path, &errors, "nothing was started");
            return ExitCode::FAILURE;
        }
    };
    if let Some(name) = &peer_name {
        for p in &mut config.peers {
            p.local = Some(name.clone());
        }
    }
    let opts = master::Options {
        config: path.to_path_buf(),
        peer_name,
        control,
    };
    match master::run(opts, config, text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            alert!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn report(path: &Path, errors: &crate::config::ConfigErrors, consequence: &str) {
    eprintln!("{errors}");
    let n = errors.errors.len();
    eprintln!(
        "{}: {n} error{} found; {consequence}",
        path.display(),
        if n == 1 { "" } else { "s" }
    );
}

/// `corral reload`: validates here first (an invalid file is never sent),
/// then asks the running corral and reports its answer.
fn reload(config: Option<&Path>, control: Option<&Path>) -> ExitCode {
    let fail = |msg: &str| {
        eprintln!("{msg}");
        ExitCode::FAILURE
    };
    let (path, socket) = match config {
        Some(path) => {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            let configured = Config::load(&path)
                .ok()
                .and_then(|c| c.global.control_socket);
            match master::control::resolve(control, configured.as_deref()) {
                Ok(s) => (path, s),
                Err(e) => return fail(&e),
            }
        }
        None => {
            let socket = match master::control::resolve(control, None) {
                Ok(s) => s,
                Err(e) => return fail(&e),
            };
            match master::control::ask(&socket, &master::control::Request::ConfigPath) {
                Ok((true, p)) => (PathBuf::from(p), socket),
                Ok((false, why)) => return fail(&why),
                Err(e) => return fail(&e),
            }
        }
    };
    match Config::load(&path) {
        Ok(config) => crate::observe::log::config_warnings(&config),
        Err(errors) => {
            report(
                &path,
                &errors,
                "reload not requested, the running configuration stays",
            );
            return ExitCode::FAILURE;
        }
    }
    match master::control::ask(&socket, &master::control::Request::Reload(Some(path))) {
        Ok((true, text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok((false, text)) => fail(&text),
        Err(e) => fail(&e),
    }
}

/// Runs a configuration without a master (`corral demo`: no file to
/// reload).
fn serve(config: Config) -> ExitCode {
    match generation::run_standalone(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            alert!("{msg}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => {
            print!("{}", summary::summary(&config));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Exit status of `import-haproxy` when the YAML lacks something.
const IMPORT_INCOMPLETE: u8 = 3;

fn import_haproxy(path: &Path) -> ExitCode {
    let shown = path.display().to_string();
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
                eprintln!("{shown}:{line}: not UTF-8 text: cannot import this file");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("{shown}: cannot read it: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match import_haproxy::convert(&text) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{shown}:{}: {}", e.line, e.message);
            eprintln!("{shown}: not converted: HAProxy could not read this file either");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", outcome.yaml);
    eprint!("{}", outcome.report(&shown));
    let n = outcome.unconverted.len();
    if n == 0 {
        eprintln!("{shown}: converted completely");
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "{shown}: converted, except {n} directive{} listed above (also marked `# NOT CONVERTED` in the YAML)",
            if n == 1 { "" } else { "s" }
        );
        ExitCode::from(IMPORT_INCOMPLETE)
    }
}

/// How long `corral ctl` waits for an answer.
const CTL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

fn ctl(socket: &str, command: &str) -> ExitCode {
    // Errors are marked (`[3]: ...`) so they can be told from data.
    let line = format!("set severity-output number;{command}\n");
    let exchange = |s: &mut dyn ReadWrite| -> std::io::Result<Vec<u8>> {
        s.write_all(line.as_bytes())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        Ok(answer)
    };
    let answer = if socket.contains('/') {
        std::os::unix::net::UnixStream::connect(socket).and_then(|mut s| {
            s.set_read_timeout(Some(CTL_WAIT))?;
            s.set_write_timeout(Some(CTL_WAIT))?;
            exchange(&mut s)
        })
    } else {
        match socket.parse::<std::net::SocketAddr>() {
            Ok(addr) => std::net::TcpStream::connect_timeout(&addr, CTL_WAIT).and_then(|mut s| {
                s.set_read_timeout(Some(CTL_WAIT))?;
                s.set_write_timeout(Some(CTL_WAIT))?;
                exchange(&mut s)
            }),
            Err(_) => {
                eprintln!(
                    "corral ctl: `{socket}` is neither a unix socket path nor an `ip:port` address"
                );
                return ExitCode::from(2);
            }
        }
    };
    let answer = match answer {
        Ok(a) => String::from_utf8_lossy(&a).into_owned(),
        Err(e) => {
            eprintln!(
                "corral ctl: cannot talk to {socket}: {e} (is corral running with this `global.stats-socket`?)"
            );
            return ExitCode::from(2);
        }
    };
    let (text, failed) = crate::control::runtime_api::client_answer(&answer);
    print!("{text}");
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A stream `corral ctl` can talk over.
trait ReadWrite: std::io::Read + std::io::Write {}
impl<T: std::io::Read + std::io::Write> ReadWrite for T {}

fn demo(address: &str, port: u16, backends: usize, workers: usize, print_config: bool) -> ExitCode {
    let bind = if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    };
    let placeholder: Vec<std::net::SocketAddr> = (0..backends)
        .map(|i| std::net::SocketAddr::from(([127, 0, 0, 1], 9001 + i as u16)))
        .collect();
    if print_config {
        print!("{}", demo::config_text(&bind, &placeholder, workers));
        return ExitCode::SUCCESS;
    }
    let addrs = match demo::start_backends(backends) {
        Ok(a) => a,
        Err(e) => {
            alert!("cannot start the demo backends: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = demo::config_text(&bind, &addrs, workers);
    let config = match Config::parse(Path::new("<demo>"), &text) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let shown = if port == 0 {
        format!("{address}:<port printed below>")
    } else {
        bind.clone()
    };
    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    println!(
        "corral demo: a proxy on {shown} in front of {backends} demo backends ({})",
        list.join(", ")
    );
    println!("Try, in another terminal:");
    println!(
        "  curl http://{shown}/                      # hello from backend 1, then 2, ... and the headers it got"
    );
    println!("  for i in 1 2 3 4; do curl -s http://{shown}/ | head -n 1; done");
    println!("  curl -i http://{shown}/admin              # 403: denied at the edge");
    println!("  corral demo --print-config                # the configuration in use");
    println!("Request logs follow (HAProxy httplog format). Stop with Ctrl-C.");
    serve(config)
}
