//! `/metrics`: the Prometheus text exposition format (version 0.0.4),
//! with names in the style of HAProxy's own exporter
//! (`corral_backend_http_responses_total{backend,code}`).

use super::{Row, Snapshot};
use std::fmt::Write;

/// Which rows a family covers, and their label.
#[derive(Clone, Copy)]
enum Scope {
    Frontend,
    Backend,
    Server,
}

impl Scope {
    fn prefix(self) -> &'static str {
        match self {
            Scope::Frontend => "frontend",
            Scope::Backend => "backend",
            Scope::Server => "server",
        }
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Every (labels, row) of a scope.
fn rows(s: &Snapshot, scope: Scope) -> Vec<(String, &Row)> {
    match scope {
        Scope::Frontend => s
            .frontends
            .iter()
            .map(|r| (format!("frontend=\"{}\"", label(&r.name)), r))
            .collect(),
        Scope::Backend => s
            .backends
            .iter()
            .map(|b| (format!("backend=\"{}\"", label(&b.row.name)), &b.row))
            .collect(),
        Scope::Server => s
            .backends
            .iter()
            .flat_map(|b| {
                b.servers.iter().map(move |r| {
                    (
                        format!(
                            "backend=\"{}\",server=\"{}\"",
                            label(&b.row.name),
                            label(&r.name)
                        ),
                        r,
                    )
                })
            })
            .collect(),
    }
}

/// One metric family over the rows of `scope`.
fn family(
    out: &mut String,
    s: &Snapshot,
    scope: Scope,
    (name, kind, help): (&str, &str, &str),
    value: impl Fn(&Row) -> f64,
) {
    let full = format!("corral_{}_{name}", scope.prefix());
    let _ = writeln!(out, "# HELP {full} {help}");
    let _ = writeln!(out, "# TYPE {full} {kind}");
    for (labels, r) in rows(s, scope) {
        let _ = writeln!(out, "{full}{{{labels}}} {}", value(r));
    }
}

/// The whole exposition.
pub(crate) fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8 << 10);
    let _ = writeln!(out, "# HELP corral_process_info corral's version and pid.");
    let _ = writeln!(out, "# TYPE corral_process_info gauge");
    let _ = writeln!(
        out,
        "corral_process_info{{version=\"{}\",pid=\"{}\"}} 1",
        s.info.version, s.info.pid
    );
    let _ = writeln!(
        out,
        "# HELP corral_process_uptime_seconds Seconds since corral started."
    );
    let _ = writeln!(out, "# TYPE corral_process_uptime_seconds gauge");
    let _ = writeln!(out, "corral_process_uptime_seconds {}", s.info.uptime_s);
    let _ = writeln!(
        out,
        "# HELP corral_process_current_connections Client connections open now."
    );
    let _ = writeln!(out, "# TYPE corral_process_current_connections gauge");
    let _ = writeln!(out, "corral_process_current_connections {}", s.info.conns);
    for scope in [Scope::Frontend, Scope::Backend, Scope::Server] {
        family(
            &mut out,
            s,
            scope,
            ("current_sessions", "gauge", "Sessions open now."),
            |r| r.cur as f64,
        );
        family(
            &mut out,
            s,
            scope,
            (
                "max_sessions",
                "gauge",
                "Most sessions open at once (summed over workers).",
            ),
            |r| r.max as f64,
        );
        family(
            &mut out,
            s,
            scope,
            ("sessions_total", "counter", "Sessions since start."),
            |r| r.total as f64,
        );
        family(
            &mut out,
            s,
            scope,
            (
                "current_session_rate",
                "gauge",
                "Sessions per second over the last 10 seconds.",
            ),
            |r| r.rate,
        );
        family(
            &mut out,
            s,
            scope,
            ("bytes_in_total", "counter", "Bytes received from clients."),
            |r| r.bytes_in as f64,
        );
        family(
            &mut out,
            s,
            scope,
            ("bytes_out_total", "counter", "Bytes sent to clients."),
            |r| r.bytes_out as f64,
        );
        let full = format!("corral_{}_http_responses_total", scope.prefix());
        let _ = writeln!(out, "# HELP {full} HTTP responses by status class.");
        let _ = writeln!(out, "# TYPE {full} counter");
        for (labels, r) in rows(s, scope) {
            for (i, code) in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
                .iter()
                .enumerate()
            {
                let _ = writeln!(out, "{full}{{{labels},code=\"{code}\"}} {}", r.responses[i]);
            }
        }
    }
    family(
        &mut out,
        s,
        Scope::Frontend,
        ("http_requests_total", "counter", "HTTP requests received."),
        |r| r.requests as f64,
    );
    family(
        &mut out,
        s,
        Scope::Frontend,
        (
            "requests_denied_total",
            "counter",
            "Requests denied by rules.",
        ),
        |r| r.denied as f64,
    );
    family(
        &mut out,
        s,
        Scope::Frontend,
        ("request_errors_total", "counter", "Bad requests."),
        |r| r.bad_requests as f64,
    );
    for scope in [Scope::Backend, Scope::Server] {
        family(
            &mut out,
            s,
            scope,
            (
                "connection_errors_total",
                "counter",
                "Failed connections to servers.",
            ),
            |r| r.connect_errors as f64,
        );
        family(
            &mut out,
            s,
            scope,
            ("response_errors_total", "counter", "Responses that failed."),
            |r| r.response_errors as f64,
        );
        family(
            &mut out,
            s,
            scope,
            ("retry_warnings_total", "counter", "Connection retries."),
            |r| r.retries as f64,
        );
        family(
            &mut out,
            s,
            scope,
            (
                "response_time_average_seconds",
                "gauge",
                "Average response time.",
            ),
            |r| r.response_ms as f64 / 1000.0,
        );
    }
    family(
        &mut out,
        s,
        Scope::Backend,
        (
            "current_queue",
            "gauge",
            "Connections waiting for a server slot.",
        ),
        |r| r.queue_cur as f64,
    );
    family(
        &mut out,
        s,
        Scope::Backend,
        (
            "max_queue",
            "gauge",
            "Longest queue seen (summed over workers).",
        ),
        |r| r.queue_max as f64,
    );
    family(
        &mut out,
        s,
        Scope::Backend,
        ("status", "gauge", "1 while at least one server is usable."),
        |r| f64::from(u8::from(r.status == "UP")),
    );
    let _ = writeln!(
        out,
        "# HELP corral_server_status Server state (1 for the current one)."
    );
    let _ = writeln!(out, "# TYPE corral_server_status gauge");
    for (labels, r) in rows(s, Scope::Server) {
        for state in ["UP", "DOWN", "no check"] {
            let _ = writeln!(
                out,
                "corral_server_status{{{labels},state=\"{state}\"}} {}",
                u8::from(r.status == state)
            );
        }
    }
    family(
        &mut out,
        s,
        Scope::Server,
        ("weight", "gauge", "Configured weight."),
        |r| r.weight as f64,
    );
    family(
        &mut out,
        s,
        Scope::Server,
        ("downtime_seconds_total", "counter", "Seconds spent DOWN."),
        |r| r.downtime_s as f64,
    );
    family(
        &mut out,
        s,
        Scope::Server,
        (
            "last_status_change_seconds",
            "gauge",
            "Seconds since the status last changed.",
        ),
        |r| r.last_change_s as f64,
    );
    out
}
