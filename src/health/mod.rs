//! Health checks. Each server with `check` is checked by exactly one
//! worker (servers are dealt out by their position in the configuration);
//! when that worker sees a server change state it applies the change and
//! sends it to every other worker over the mesh.
//!
//! A server starts UP (as in HAProxy), or in the state the previous
//! generation left it in (`process/generation/carry.rs`). `fall` consecutive failures mark it
//! DOWN; `rise` consecutive successes bring it back. A DOWN server gets no
//! new connections.
//!
//! Must not touch: sessions; it reads the worker's backends and broadcasts
//! health changes over the mesh.

use crate::config::{Check, CheckKind};
use crate::io::conn::{Deadline, until};
use crate::io::stream::Stream;
use crate::mesh::MeshMsg;
use crate::worker::Worker;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::Timer;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Starts the check loops this worker owns.
pub(crate) fn spawn_checks(w: &Rc<Worker>) {
    let mut global_index = 0usize;
    let mut owned = Vec::new();
    for (b, backend) in w.config.backends.iter().enumerate() {
        for (s, server) in backend.servers.iter().enumerate() {
            if server.check.is_some() && global_index % w.workers == w.id {
                owned.push((b, s));
            }
            global_index += 1;
        }
    }
    let count = owned.len().max(1);
    for (k, (b, s)) in owned.into_iter().enumerate() {
        let w = w.clone();
        // Spread the first checks over one interval so they do not all
        // fire at once.
        let check = w.config.backends[b].servers[s]
            .check
            .clone()
            .expect("checked above");
        let offset = check.inter.mul_f64(k as f64 / count as f64);
        glommio::spawn_local(async move {
            Timer::new(offset).await;
            check_loop(w, b, s, check).await;
        })
        .detach();
    }
}

async fn check_loop(w: Rc<Worker>, b: usize, s: usize, mut check: Check) {
    // A check port of its own (`check.port`) stays when the runtime API
    // moves the server (`set server B/S addr`); otherwise checks follow the
    // server's address and port.
    let own_port = check.addr.port() != w.config.backends[b].servers[s].addr.port();
    let mut up = w.backends[b].servers[s].up.get();
    // Consecutive results against the current state.
    let mut streak = 0u32;
    while !w.life.stopping.is_set() {
        // The state may have been set from outside (carried over from the
        // previous generation): count from there.
        let now_up = w.backends[b].servers[s].up.get();
        if now_up != up {
            up = now_up;
            streak = 0;
        }
        let addr = w.backends[b].servers[s].addr.get();
        let port = if own_port {
            check.addr.port()
        } else {
            addr.port()
        };
        check.addr = std::net::SocketAddr::new(addr.ip(), port);
        let started = Instant::now();
        let tls = w.tls_out[b][s].as_ref().map(|c| {
            let sni = w.config.backends[b].servers[s]
                .tls
                .as_ref()
                .and_then(|t| t.check_sni.as_deref());
            (c, sni)
        });
        let result = run_check(&check, tls).await;
        w.backends[b].servers[s]
            .check_status
            .set(status_code(&result, &check));
        let took = started.elapsed();
        let changed = match (&result, up) {
            (Ok(()), true) | (Err(_), false) => {
                streak = 0;
                false
            }
            (Ok(()), false) => {
                streak += 1;
                streak >= check.rise
            }
            (Err(_), true) => {
                streak += 1;
                streak >= check.fall
            }
        };
        if changed {
            up = !up;
            streak = 0;
            let acked = w
                .mesh
                .broadcast_new(|seq| MeshMsg::ServerState {
                    backend: b as u32,
                    server: s as u32,
                    up,
                    seq,
                })
                .await;
            if !acked {
                crate::warning!("a worker did not acknowledge a health change within 1s");
            }
            report(&w, b, s, up, &result, took);
        }
        let wait = check.inter.saturating_sub(took);
        futures_lite::future::or(Timer::new(wait), async {
            w.life.stopping.wait().await;
            Instant::now()
        })
        .await;
    }
}

fn report(w: &Worker, b: usize, s: usize, up: bool, result: &Result<(), String>, took: Duration) {
    let backend = &w.config.backends[b];
    let (active, backup) = w.backends[b].usable_counts(backend);
    let state = if up { "UP" } else { "DOWN" };
    let why = match result {
        Ok(()) => "check succeeded".to_string(),
        Err(e) => e.clone(),
    };
    let line = format!(
        "Server {}/{} is {state}, reason: {why}, check duration: {}ms. {active} active and {backup} backup servers online.",
        backend.name,
        backend.servers[s].name,
        took.as_millis()
    );
    if up {
        crate::notice!("{line}");
    } else {
        crate::warning!("{line}");
    }
    if !up && active == 0 && backup == 0 {
        crate::alert!("backend {} has no server available!", backend.name);
    }
}

/// HAProxy's short check status (`show stat`'s check_status column).
fn status_code(result: &Result<(), String>, check: &Check) -> &'static str {
    let Err(why) = result else {
        return match check.kind {
            CheckKind::Tcp => "L4OK",
            CheckKind::Http { .. } => "L7OK",
        };
    };
    let table: [(&str, &'static str); 7] = [
        ("Layer4 timeout", "L4TOUT"),
        ("Layer4", "L4CON"),
        ("Layer6 timeout", "L6TOUT"),
        ("Layer6", "L6RSP"),
        ("Layer7 wrong status", "L7STS"),
        ("Layer7 timeout", "L7TOUT"),
        ("Layer7", "L7RSP"),
    ];
    table
        .iter()
        .find(|(prefix, _)| why.starts_with(prefix))
        .map_or("UNK", |(_, code)| code)
}

/// Runs one check; the error says why it failed, in HAProxy's words
/// where it has them.
/// With `tls` (the server's `tls:` settings and SNI), the check connects
/// over TLS, and a failed handshake is a Layer6 failure.
pub(crate) async fn run_check(
    check: &Check,
    tls: Option<(&std::sync::Arc<rustls::ClientConfig>, Option<&str>)>,
) -> Result<(), String> {
    let deadline = Instant::now() + check.timeout;
    let stream = TcpStream::connect_timeout(check.addr, check.timeout)
        .await
        .map_err(|e| {
            let e = io::Error::from(e);
            if e.kind() == io::ErrorKind::TimedOut {
                "Layer4 timeout".to_string()
            } else {
                format!("Layer4 connection problem ({e})")
            }
        })?;
    let stream = match tls {
        None => Stream::Plain(stream),
        Some((client, sni)) => {
            let left = deadline.saturating_duration_since(Instant::now());
            let handshake =
                crate::tls::connect::connect(client.clone(), stream, sni, check.addr.ip());
            match until(Deadline::After(left), handshake).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return Err(format!(
                        "Layer6 invalid response ({})",
                        crate::tls::accept::handshake_error(&e)
                    ));
                }
                Err(_) => return Err("Layer6 timeout".to_string()),
            }
        }
    };
    match &check.kind {
        CheckKind::Tcp => Ok(()),
        CheckKind::Http {
            method,
            path,
            host,
            expect,
        } => {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = http_status(stream, method, path, host.as_deref(), check, left).await?;
            if expect.matches(status) {
                Ok(())
            } else {
                Err(format!("Layer7 wrong status ({status})"))
            }
        }
    }
}

/// Sends the check request and reads the status of the response.
async fn http_status(
    mut stream: Stream,
    method: &str,
    path: &str,
    host: Option<&str>,
    check: &Check,
    left: Duration,
) -> Result<u16, String> {
    let left = if left.is_zero() {
        Duration::from_millis(1)
    } else {
        left
    };
    let _ = stream.tcp().set_read_timeout(Some(left));
    let _ = stream.tcp().set_write_timeout(Some(left));
    let host = host.map_or_else(|| check.addr.to_string(), str::to_string);
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: corral-health-check\r\nConnection: close\r\n\r\n"
    );
    let sent = match stream.write_all(request.as_bytes()).await {
        Ok(()) => stream.flush().await,
        Err(e) => Err(e),
    };
    sent.map_err(|e| format!("Layer7 connection problem ({e})"))?;
    let mut buf = vec![0u8; 4096];
    let mut filled = 0;
    loop {
        let n = stream.read(&mut buf[filled..]).await.map_err(|e| {
            if e.kind() == io::ErrorKind::TimedOut {
                "Layer7 timeout".to_string()
            } else {
                format!("Layer7 connection problem ({e})")
            }
        })?;
        if n == 0 {
            return Err("Layer7 invalid response (connection closed before a status line)".into());
        }
        filled += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf[..filled]) {
            Ok(_) if resp.code.is_some() => return Ok(resp.code.unwrap_or(0)),
            Ok(_) if filled < buf.len() => continue,
            Err(httparse::Error::TooManyHeaders) => {
                // The status line was complete; that is all we need.
                return status_line_code(&buf[..filled])
                    .ok_or_else(|| "Layer7 invalid response".to_string());
            }
            _ => return Err("Layer7 invalid response".into()),
        }
    }
}

fn status_line_code(buf: &[u8]) -> Option<u16> {
    let line = buf.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}
