//! The runtime API: HAProxy's stats socket, on worker 0.
//!
//! `global.stats-socket` lists unix sockets (mode 600 unless told) and
//! loopback TCP addresses, each with a level (`user`, `operator`,
//! `admin`). A client sends one line of commands separated by `;`; each
//! command's answer ends with an empty line, and the connection closes
//! after the line (HAProxy's non-interactive mode) unless `prompt` turned
//! on the interactive mode. `corral ctl` and `socat` both speak it.
//!
//! Commands that read one worker's state read worker 0's (it holds every
//! backend's health and a full replica of every stick table); those that
//! need every worker's numbers gather snapshots over the mesh
//! (`snapshot.rs`); changes are broadcast to every worker and acknowledged
//! before the answer. Connections never wait for any of it.
//!
//! On a reload the new generation takes the sockets over from the one it
//! replaces: a unix socket is bound under a temporary name and renamed
//! over the old one (clients never see the path missing), and the retiring
//! generation removes the path only while it is still its own socket; a
//! TCP address is bound as soon as the retiring generation has closed it.
//!
//! Must not touch: the data path; it reads and steers workers through
//! `worker` and `mesh`.

mod command;
mod show;
pub(crate) mod snapshot;

pub(crate) use command::set_state_from_page;

use crate::config::{ApiAddr, ApiLevel, StatsSocket};
use crate::worker::Worker;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::{TcpListener, UnixListener};
use glommio::task::JoinHandle;
use glommio::timer::Timer;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

/// How long a new generation waits for the retiring one to let go of a
/// TCP runtime API address.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(10);

/// How long a client may stay silent (HAProxy's default `stats timeout`).
const IDLE: Duration = Duration::from_secs(10);
/// The longest command line accepted.
const MAX_LINE: usize = 64 << 10;

/// Binds every configured socket and starts serving them (worker 0, before
/// the process says it is ready). A socket that cannot be bound stops the
/// start with the reason. The returned tasks end once the worker stops
/// (and have removed their unix socket files).
pub(crate) fn spawn(w: &Rc<Worker>) -> Result<Vec<JoinHandle<()>>, String> {
    let mut tasks = Vec::new();
    for (i, sock) in w.config.global.stats_sockets.iter().enumerate() {
        let fail = |e: String| format!("global.stats-socket[{i}] `{}`: {e}", sock.text);
        // A generation that replaces another (a reload): its sockets may
        // still be held by the retiring one.
        let successor = w.config.generation > 1;
        let listener = match &sock.addr {
            ApiAddr::Unix(path) => {
                let (l, id) = bind_unix(path, sock, successor).map_err(fail)?;
                Listener::Unix(l, id)
            }
            ApiAddr::Tcp(addr) => match bind_tcp(*addr) {
                Ok(l) => Listener::Tcp(l),
                Err(e) if successor && e.in_use => {
                    // The retiring generation closes it as it stops
                    // accepting, after this one says it is ready.
                    let (w, level, addr, api) = (w.clone(), sock.level, *addr, sock.addr.clone());
                    let handle = glommio::spawn_local(async move {
                        if let Some(l) = take_over_tcp(&w, addr).await {
                            crate::notice!(
                                "runtime API listening on {addr} (level {})",
                                level.name()
                            );
                            accept_loop(w, Listener::Tcp(l), level, api).await;
                        }
                    })
                    .detach();
                    tasks.push(handle);
                    continue;
                }
                Err(e) => return Err(fail(e.text)),
            },
        };
        let shown = match &listener {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| sock.addr.to_string(), |a| a.to_string()),
            Listener::Unix(..) => sock.addr.to_string(),
        };
        crate::notice!(
            "runtime API listening on {shown} (level {})",
            sock.level.name()
        );
        let (w, level) = (w.clone(), sock.level);
        let handle =
            glommio::spawn_local(accept_loop(w, listener, level, sock.addr.clone())).detach();
        tasks.push(handle);
    }
    Ok(tasks)
}

enum Listener {
    /// With the (device, inode) of the socket file it made.
    Unix(UnixListener, (u64, u64)),
    Tcp(TcpListener),
}

/// Binds `addr` once the retiring generation has closed it, trying every
/// 20 ms for up to [`TAKEOVER_LIMIT`] (or until this worker stops).
async fn take_over_tcp(w: &Worker, addr: std::net::SocketAddr) -> Option<TcpListener> {
    let step = Duration::from_millis(20);
    let tries = TAKEOVER_LIMIT.as_millis() / step.as_millis();
    for _ in 0..tries {
        if w.life.stopping.is_set() {
            return None;
        }
        match bind_tcp(addr) {
            Ok(l) => return Some(l),
            Err(e) if e.in_use => {
                Timer::new(step).await;
            }
            Err(e) => {
                crate::warning!("runtime API on {addr}: {}", e.text);
                return None;
            }
        }
    }
    crate::warning!(
        "runtime API on {addr}: still in use {}s after the reload; this generation has no runtime API there",
        TAKEOVER_LIMIT.as_secs()
    );
    None
}

/// The (device, inode) of the file at `path`, if any.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.dev(), m.ino()))
}

/// Binds a unix socket at `path` with its mode and owner set before it
/// appears (bound under a temporary name, then renamed). A stale socket
/// file (nobody listening) is replaced; a live one is an error, unless
/// this generation is a `successor` (the live one is the retiring
/// generation's, and the rename takes its place). Returns the listener
/// and the socket file's (device, inode).
fn bind_unix(
    path: &Path,
    sock: &StatsSocket,
    successor: bool,
) -> Result<(UnixListener, (u64, u64)), String> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket: remove it or choose another path",
                path.display()
            ));
        }
        let live = std::os::unix::net::UnixStream::connect(path).is_ok();
        if live && !successor {
            return Err(format!(
                "another process (another corral?) is listening on {}",
                path.display()
            ));
        }
        if !live {
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
        }
    }
    let name = path.file_name().map_or_else(
        || "corral.sock".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp: PathBuf = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| {
        let dir = path.parent().unwrap_or(Path::new("/"));
        format!(
            "cannot create a socket in {}: {}",
            dir.display(),
            std::io::Error::from(e)
        )
    })?;
    let undo = |msg: String| {
        let _ = std::fs::remove_file(&tmp);
        msg
    };
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(sock.mode))
        .map_err(|e| undo(format!("cannot set mode {:o}: {e}", sock.mode)))?;
    if sock.uid.is_some() || sock.gid.is_some() {
        std::os::unix::fs::chown(&tmp, sock.uid, sock.gid)
            .map_err(|e| undo(format!("cannot change the socket's owner: {e}")))?;
    }
    let id = file_id(&tmp).ok_or_else(|| undo("the socket file vanished as it was made".into()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| undo(format!("cannot move the socket into place: {e}")))?;
    Ok((listener, id))
}

/// Why a TCP address could not be bound.
struct BindError {
    text: String,
    /// Someone holds the address (EADDRINUSE).
    in_use: bool,
}

/// Binds a loopback TCP socket (without SO_REUSEPORT: a port someone else
/// holds is an error, not a shared port).
fn bind_tcp(addr: std::net::SocketAddr) -> Result<TcpListener, BindError> {
    use socket2::{Domain, Socket, Type};
    let fail = |e: std::io::Error, what: &str| BindError {
        in_use: e.raw_os_error() == Some(libc::EADDRINUSE),
        text: format!("{what}: {e}"),
    };
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .map_err(|e| fail(e, "cannot create a socket"))?;
    let _ = s.set_reuse_address(true);
    let what = format!("cannot listen on {addr}");
    s.bind(&addr.into()).map_err(|e| fail(e, &what))?;
    s.listen(64).map_err(|e| fail(e, &what))?;
    s.set_nonblocking(true).map_err(|e| fail(e, &what))?;
    // SAFETY: a bound, listening socket whose ownership moves to glommio.
    Ok(unsafe { TcpListener::from_raw_fd(s.into_raw_fd()) })
}

async fn accept_loop(w: Rc<Worker>, listener: Listener, level: ApiLevel, addr: ApiAddr) {
    loop {
        let next = futures_lite::future::or(
            async {
                Some(match &listener {
                    Listener::Unix(l, _) => l.accept().await.map(Client::Unix),
                    Listener::Tcp(l) => l.accept().await.map(Client::Tcp),
                })
            },
            async {
                w.life.stopping.wait().await;
                None
            },
        )
        .await;
        match next {
            None => break,
            Some(Ok(client)) => {
                let w = w.clone();
                glommio::spawn_local(async move {
                    match client {
                        Client::Unix(s) => serve(&w, s, level).await,
                        Client::Tcp(s) => serve(&w, s, level).await,
                    }
                })
                .detach();
            }
            Some(Err(e)) => {
                crate::warning!("runtime API on {addr}: accept failed: {e}");
                Timer::new(Duration::from_millis(100)).await;
            }
        }
    }
    // The path goes only while it is this generation's socket: after a
    // reload it is the new generation's.
    if let (ApiAddr::Unix(path), Listener::Unix(_, id)) = (&addr, &listener)
        && file_id(path) == Some(*id)
    {
        let _ = std::fs::remove_file(path);
    }
}

enum Client {
    Unix(glommio::net::UnixStream),
    Tcp(glommio::net::TcpStream),
}

/// One client: lines of commands until the line that ends the session
/// (the first, unless `prompt` made it interactive), `quit`, end of input
/// or `IDLE` of silence.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(w: &Rc<Worker>, mut s: S, level: ApiLevel) {
    let mut state = command::State::new(level);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(line) = read_line(&mut s, &mut buf).await else {
            return;
        };
        let mut out = match line {
            Ok(line) => command::run_line(w, &mut state, &line).await,
            Err(msg) => {
                state.quit = true;
                let mut r = command::Reply::new(state.severity);
                r.err(&msg);
                r.finish()
            }
        };
        if state.prompt && !state.quit {
            out.push_str("> ");
        }
        let written = futures_lite::future::or(
            async {
                s.write_all(out.as_bytes()).await?;
                s.flush().await
            },
            async {
                Timer::new(IDLE).await;
                Err(std::io::ErrorKind::TimedOut.into())
            },
        )
        .await;
        if written.is_err() || state.quit || !state.interactive {
            let _ = s.close().await;
            return;
        }
    }
}

/// The next line (without its end of line), or `None` at the end of input
/// or after `IDLE`; an over-long line is an error.
async fn read_line<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Option<Result<String, String>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
        }
        if buf.len() > MAX_LINE {
            return Some(Err(format!("command line longer than {MAX_LINE} bytes")));
        }
        let n = futures_lite::future::or(async { s.read(&mut chunk).await.ok() }, async {
            Timer::new(IDLE).await;
            None
        })
        .await?;
        if n == 0 {
            // End of input: a last line without its newline still counts.
            if buf.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            let line = String::from_utf8_lossy(buf).into_owned();
            buf.clear();
            return Some(Ok(line));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What `corral ctl` prints of an answer to `set severity-output
/// number;COMMAND`, and whether it holds an error: the first command's
/// empty answer and the final empty line go, message marks (`[N]: `) are
/// removed, and a mark of severity `err` or worse (0 to 3) is an error.
pub(crate) fn client_answer(answer: &str) -> (String, bool) {
    let body = answer.strip_prefix('\n').unwrap_or(answer);
    let body = body.strip_suffix('\n').unwrap_or(body);
    let mut failed = false;
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        let mark = line
            .strip_prefix('[')
            .and_then(|r| r.split_once("]: "))
            .filter(|(n, _)| n.len() == 1 && n.as_bytes()[0].is_ascii_digit());
        match mark {
            Some((n, rest)) => {
                failed |= n.as_bytes()[0] <= b'3';
                out.push_str(rest);
            }
            None => out.push_str(line),
        }
    }
    (out, failed)
}

#[cfg(test)]
mod tests {
    use super::client_answer;

    #[test]
    fn ctl_strips_marks_and_sees_errors() {
        assert_eq!(
            client_answer("\nName: corral\nPid: 1\n\n"),
            ("Name: corral\nPid: 1\n".to_string(), false)
        );
        assert_eq!(client_answer("\n\n"), (String::new(), false));
        assert_eq!(
            client_answer("\n[3]: No such server.\n\n"),
            ("No such server.\n".to_string(), true)
        );
        assert_eq!(
            client_answer("\n[4]: IP changed from 'a' to 'b'\n\n"),
            ("IP changed from 'a' to 'b'\n".to_string(), false)
        );
    }
}
