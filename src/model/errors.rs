//! Responses corral writes itself: built-in error pages for every status
//! it emits, HAProxy-style errorfiles (a complete raw response in a file,
//! sent exactly as written), and generated responses (redirects, `return`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The reason phrase corral uses for a status.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        425 => "Too Early",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// One sentence for each error page corral produces.
fn explanation(status: u16) -> &'static str {
    match status {
        400 => "The request could not be understood: it is not valid HTTP/1.1.",
        403 => "This request is not allowed by the proxy's rules.",
        404 => "There is nothing here.",
        405 => "This method is not allowed here.",
        408 => "The request did not arrive in full within the time allowed.",
        410 => "This resource is gone.",
        413 => "The request body is larger than allowed.",
        414 => "The request target is longer than the proxy accepts.",
        421 => "This request was sent to a server that cannot answer it.",
        425 => "The request was sent too early.",
        429 => "Too many requests were sent; slow down and try again later.",
        431 => "The request headers are larger than the proxy accepts.",
        500 => "The proxy ran into an internal problem.",
        501 => "The proxy does not implement what this request needs.",
        502 => "The server sent back an invalid or incomplete response.",
        503 => "No server is available to answer this request right now.",
        504 => "The server did not answer in time.",
        _ => "The proxy could not complete this request.",
    }
}

/// Statuses with a built-in page.
pub(crate) const STATUSES: &[u16] = &[
    400, 403, 404, 405, 408, 410, 413, 414, 421, 425, 429, 431, 500, 501, 502, 503, 504,
];

/// A complete built-in error response (it closes the connection).
pub(crate) fn builtin(status: u16) -> Vec<u8> {
    let body = format!(
        "<html><body><h1>{status} {}</h1>\n{}\n</body></html>\n",
        reason(status),
        explanation(status)
    );
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Error responses by status for one section: errorfiles over built-ins.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorPages {
    files: HashMap<u16, Arc<[u8]>>,
}

impl ErrorPages {
    /// Loads an errorfile: a complete HTTP response, sent as written.
    pub(crate) fn load(&mut self, status: u16, path: &Path) -> Result<(), String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read errorfile {}: {e}", path.display()))?;
        if !bytes.starts_with(b"HTTP/") {
            return Err(format!(
                "{} is not an errorfile: it must hold a complete HTTP response starting with `HTTP/1.x {status} ...`",
                path.display()
            ));
        }
        self.files.insert(status, bytes.into());
        Ok(())
    }

    pub(crate) fn get(&self, status: u16) -> Option<&Arc<[u8]>> {
        self.files.get(&status)
    }

    /// Fills in from `other` the statuses this section does not set.
    pub(crate) fn inherit(&mut self, other: &ErrorPages) {
        for (s, b) in &other.files {
            self.files.entry(*s).or_insert_with(|| b.clone());
        }
    }
}

/// Writes a generated response (redirect, `return`, `deny` with a body).
pub(crate) fn generated(
    out: &mut Vec<u8>,
    status: u16,
    content_type: Option<&[u8]>,
    location: Option<&[u8]>,
    body: &[u8],
    close: bool,
) {
    use std::io::Write;
    let _ = write!(out, "HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(l) = location {
        out.extend_from_slice(b"Location: ");
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(t) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(t);
        out.extend_from_slice(b"\r\n");
    }
    let _ = write!(
        out,
        "Content-Length: {}\r\nCache-Control: no-cache\r\n",
        body.len()
    );
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_pages_are_complete_responses() {
        for &s in STATUSES {
            let page = builtin(s);
            let text = String::from_utf8(page).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {s} ")), "{head}");
            assert!(head.contains(&format!("Content-Length: {}", body.len())));
            assert!(head.contains("Connection: close"));
        }
    }

    #[test]
    fn errorfiles_must_be_responses() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("503.http");
        std::fs::write(
            &good,
            "HTTP/1.0 503 Service Unavailable\nContent-Type: text/html\n\n<h1>busy</h1>\n",
        )
        .unwrap();
        let bad = dir.path().join("x.http");
        std::fs::write(&bad, "<h1>busy</h1>").unwrap();
        let mut pages = ErrorPages::default();
        pages.load(503, &good).unwrap();
        assert!(pages.get(503).unwrap().starts_with(b"HTTP/1.0 503"));
        assert!(
            pages
                .load(503, &bad)
                .unwrap_err()
                .contains("not an errorfile")
        );
        assert!(
            pages
                .load(503, &dir.path().join("missing"))
                .unwrap_err()
                .contains("cannot read")
        );
    }
}
