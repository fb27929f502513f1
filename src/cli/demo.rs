//! `corral demo`: everything a newcomer needs to see corral work, with no
//! files at all: demo HTTP backends on loopback and the proxy in front, in
//! HTTP mode.
//!
//! The demo backend is a small keep-alive HTTP/1.1 server that answers
//! `hello from backend N` followed by the request line and headers it
//! received, so a user sees both which server answered and what the proxy
//! passed on.

use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::io::Write as _;
use std::rc::Rc;

/// Largest request head the demo backend accepts.
const MAX_HEAD: usize = 16 << 10;

/// Serves `hello from {name}` on every connection of `listener`.
pub(crate) async fn serve_backend(listener: TcpListener, name: Rc<str>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let name = name.clone();
                glommio::spawn_local(async move {
                    let _ = serve_connection(stream, &name).await;
                })
                .detach();
            }
            Err(_) => glommio::timer::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection(mut stream: TcpStream, name: &str) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    let mut out = Vec::with_capacity(1024);
    loop {
        // Parse one request head out of what has arrived.
        let (head_len, keep_alive, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf[..filled]) {
                Ok(httparse::Status::Complete(len)) => {
                    let version = req.version.unwrap_or(1);
                    let conn = header(req.headers, "connection");
                    let keep_alive = match version {
                        0 => conn.is_some_and(|c| c.eq_ignore_ascii_case(b"keep-alive")),
                        _ => !conn.is_some_and(|c| c.eq_ignore_ascii_case(b"close")),
                    };
                    if header(req.headers, "transfer-encoding").is_some() {
                        stream
                            .write_all(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await?;
                        return Ok(());
                    }
                    let body_len = header(req.headers, "content-length")
                        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    out.clear();
                    write_response(&mut out, name, &req, keep_alive);
                    break (len, keep_alive, body_len);
                }
                Ok(httparse::Status::Partial) if filled < buf.len() => {
                    let n = stream.read(&mut buf[filled..]).await?;
                    if n == 0 {
                        return Ok(());
                    }
                    filled += n;
                }
                _ => {
                    stream
                        .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await?;
                    return Ok(());
                }
            }
        };
        // Skip the request body.
        let mut consumed = head_len;
        let mut body_left = body_len;
        let in_buf = body_left.min(filled - consumed);
        consumed += in_buf;
        body_left -= in_buf;
        while body_left > 0 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            body_left -= n.min(body_left);
            filled = 0;
            consumed = 0;
        }
        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        stream.write_all(&out).await?;
        if !keep_alive {
            return Ok(());
        }
    }
}

fn header<'a>(headers: &[httparse::Header<'a>], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

fn write_response(out: &mut Vec<u8>, name: &str, req: &httparse::Request, keep_alive: bool) {
    let mut body = Vec::with_capacity(512);
    let _ = writeln!(body, "hello from {name}");
    let _ = writeln!(body);
    let _ = writeln!(
        body,
        "{} {} HTTP/1.{}",
        req.method.unwrap_or(""),
        req.path.unwrap_or(""),
        req.version.unwrap_or(1)
    );
    for h in req.headers.iter() {
        let _ = write!(body, "{}: ", h.name);
        body.extend_from_slice(h.value);
        body.push(b'\n');
    }
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Served-By: {name}\r\n{}\r\n",
        body.len(),
        if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        }
    );
    out.extend_from_slice(&body);
}

/// The configuration `corral demo` runs: an HTTP frontend on `bind` in
/// front of the demo backends, round robin with HTTP health checks,
/// `/admin` denied, the client address passed on, logs on stdout.
pub(crate) fn config_text(bind: &str, backends: &[std::net::SocketAddr], workers: usize) -> String {
    let mut servers = String::new();
    for (i, addr) in backends.iter().enumerate() {
        servers.push_str(&format!(
            "      backend{n}: {{ address: \"{addr}\", check: {{ inter: 1s, http: {{ path: /health }} }} }}\n",
            n = i + 1
        ));
    }
    format!(
        "\
# The configuration `corral demo` runs (print it with `corral demo --print-config`).
global:
  workers: {workers}
  log: stdout
defaults:
  mode: http
  option: [forwardfor]
  timeout: {{ connect: 2s, client: 30s, server: 30s }}
frontends:
  demo:
    bind: [\"{bind}\"]
    http-request:
      - deny if {{ path_beg /admin }}
      - set-header X-Served-Through corral
    default_backend: demo_servers
backends:
  demo_servers:
    balance: roundrobin
    servers:
{servers}"
    )
}

/// Starts `count` demo backends on loopback in a thread of their own and
/// returns their addresses.
pub(crate) fn start_backends(count: usize) -> std::io::Result<Vec<std::net::SocketAddr>> {
    let mut listeners = Vec::with_capacity(count);
    let mut addrs = Vec::with_capacity(count);
    for _ in 0..count {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        addrs.push(l.local_addr()?);
        listeners.push(l);
    }
    std::thread::Builder::new()
        .name("corral-demo".into())
        .spawn(move || {
            let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .io_memory(64 << 10)
                .make();
            let Ok(ex) = ex else {
                crate::alert!("demo backends could not start an executor");
                return;
            };
            ex.run(async move {
                let tasks: Vec<_> = listeners
                    .into_iter()
                    .enumerate()
                    .map(|(i, l)| {
                        use std::os::fd::{FromRawFd, IntoRawFd};
                        let _ = l.set_nonblocking(true);
                        // SAFETY: the std listener's descriptor moves into glommio.
                        let l = unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) };
                        glommio::spawn_local(serve_backend(l, format!("backend {}", i + 1).into()))
                    })
                    .collect();
                for t in tasks {
                    t.await;
                }
            });
        })?;
    Ok(addrs)
}
