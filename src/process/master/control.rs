//! The control socket: a unix stream socket where `corral reload` asks the
//! running master to reload and learns how it went.
//!
//! One request per connection, one line: `reload PATH` (PATH: the
//! configuration to load; empty for the one in use) or `config-path`.
//! The answer is `ok` or `failed` on the first line, then human-readable
//! lines; the master closes the connection after it.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How long a client may take to send its request line.
const REQUEST_TIME: Duration = Duration::from_secs(5);
/// How long `corral reload` waits for the answer: a new generation has
/// the engine's start-up time (30 s) to become ready.
const ANSWER_TIME: Duration = Duration::from_secs(60);

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// Reload from this file (None: the file in use).
    Reload(Option<PathBuf>),
    /// Which file the running configuration came from.
    ConfigPath,
}

impl Request {
    /// The request line, without its newline.
    pub(crate) fn encode(&self) -> String {
        match self {
            Request::Reload(None) => "reload".to_string(),
            Request::Reload(Some(path)) => format!("reload {}", path.display()),
            Request::ConfigPath => "config-path".to_string(),
        }
    }

    /// The request a line (without its newline) asks; `Err`: the answer
    /// for a line that is none.
    pub(crate) fn decode(line: &str) -> Result<Request, String> {
        match line.split_once(' ').unwrap_or((line, "")) {
            ("reload", rest) => {
                let path = rest.trim_start();
                Ok(Request::Reload(
                    (!path.is_empty()).then(|| PathBuf::from(path)),
                ))
            }
            _ if line == "config-path" => Ok(Request::ConfigPath),
            _ => Err(format!(
                "unknown request `{line}` (this corral knows `reload` and `config-path`)"
            )),
        }
    }
}

/// A request and where to answer it.
pub(crate) struct Client {
    pub request: Request,
    stream: UnixStream,
}

impl Client {
    /// Answers and closes.
    pub(crate) fn answer(mut self, ok: bool, text: &str) {
        let head = if ok { "ok" } else { "failed" };
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(5)));
        let _ = write!(self.stream, "{head}\n{text}\n");
    }
}

/// The socket's path when neither `--control` nor `global.control-socket`
/// names one: `$RUNTIME_DIRECTORY/corral.sock` under systemd (with
/// `RuntimeDirectory=`), `/run/corral/corral.sock` for root,
/// `$XDG_RUNTIME_DIR/corral.sock` for other users.
pub(crate) fn default_path() -> Option<PathBuf> {
    if let Some(dirs) = std::env::var_os("RUNTIME_DIRECTORY") {
        let first = dirs
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return Some(Path::new(&first).join("corral.sock"));
        }
    }
    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } == 0 {
        return Some(PathBuf::from("/run/corral/corral.sock"));
    }
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(&d).join("corral.sock"))
}

/// The socket to use: the command line's, else the configuration's, else
/// the default.
pub(crate) fn resolve(flag: Option<&Path>, configured: Option<&Path>) -> Result<PathBuf, String> {
    flag.or(configured)
        .map(Path::to_path_buf)
        .or_else(default_path)
        .ok_or_else(|| {
            "no place for the control socket: pass --control PATH or set global.control-socket (the default, $XDG_RUNTIME_DIR/corral.sock, needs XDG_RUNTIME_DIR)".to_string()
        })
}

/// Creates the control socket (and its directory), refusing if another
/// corral answers on it; a stale file left by a dead process is replaced.
/// The socket is readable and writable by its owner and group only.
pub(crate) fn listen(path: &Path) -> Result<UnixListener, String> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the control socket's directory {}: {e} (pass --control PATH or set global.control-socket)",
                dir.display()
            )
        })?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "the control socket {shown} is in use: another corral is running with it (stop it, or give this one its own with --control PATH or global.control-socket)"
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        format!("cannot create the control socket {shown}: {e} (pass --control PATH or set global.control-socket)")
    })?;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660));
    Ok(listener)
}

/// Accepts clients for the master's main loop (on a thread of its own):
/// each request line read becomes `wrap(Client)` on `events`. Returns
/// when `events` is closed.
pub(crate) fn serve<E: Send + 'static>(
    listener: UnixListener,
    events: mpsc::Sender<E>,
    wrap: fn(Client) -> E,
) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(REQUEST_TIME));
        let mut line = String::new();
        let read = BufReader::new(&stream).take(64 << 10).read_line(&mut line);
        if read.is_err() || !line.ends_with('\n') {
            continue;
        }
        let request = match Request::decode(line.trim_end_matches('\n')) {
            Ok(r) => r,
            Err(why) => {
                let mut s = &stream;
                let _ = writeln!(s, "failed\n{why}");
                continue;
            }
        };
        if events.send(wrap(Client { request, stream })).is_err() {
            return;
        }
    }
}

/// Sends one request and returns (ok, the answer's text).
pub(crate) fn ask(socket: &Path, request: &Request) -> Result<(bool, String), String> {
    let shown = socket.display();
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                "is corral running? (`corral run` creates it; pass the same --control PATH to both)"
                    .to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: run as the user (or group) corral runs as".to_string()
            }
            _ => e.to_string(),
        };
        format!("cannot reach corral's control socket {shown}: {why}")
    })?;
    let _ = stream.set_read_timeout(Some(ANSWER_TIME));
    writeln!(stream, "{}", request.encode())
        .map_err(|e| format!("cannot write to {shown}: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("no answer from corral on {shown}: {e}"))?;
    let (head, text) = answer.split_once('\n').unwrap_or((answer.as_str(), ""));
    match head {
        "ok" => Ok((true, text.trim_end().to_string())),
        "failed" => Ok((false, text.trim_end().to_string())),
        _ => Err(format!(
            "corral closed {shown} without an answer (did it stop meanwhile?)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for (request, line) in [
            (Request::ConfigPath, "config-path"),
            (Request::Reload(None), "reload"),
            (
                Request::Reload(Some("/etc/corral/a b.toml".into())),
                "reload /etc/corral/a b.toml",
            ),
        ] {
            assert_eq!(request.encode(), line);
            assert_eq!(Request::decode(line), Ok(request));
        }
        // As `corral reload` always sent them: spaces before the path.
        assert_eq!(Request::decode("reload "), Ok(Request::Reload(None)));
        assert_eq!(
            Request::decode("reload   /x"),
            Ok(Request::Reload(Some("/x".into())))
        );
    }

    #[test]
    fn unknown_requests() {
        for line in ["", "stop", "reloadx", "config-path /x", "config-path "] {
            assert_eq!(
                Request::decode(line),
                Err(format!(
                    "unknown request `{line}` (this corral knows `reload` and `config-path`)"
                )),
                "{line:?}"
            );
        }
    }
}
