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

/// What a family's samples are.
enum Sample {
    /// One sample per row.
    Value(fn(&Row) -> f64),
    /// One sample per row and HTTP status class (`code` label).
    ByCode,
    /// One sample per server and state (`state` label), 1 for its state.
    ByState,
}

/// A metric family: name (after `corral_<scope>_`), type, help, samples.
struct Family(&'static str, &'static str, &'static str, Sample);

use Sample::{ByCode, ByState, Value};

/// Families of every scope (frontends, backends, servers).
const EVERY_SCOPE: &[Family] = &[
    Family(
        "current_sessions",
        "gauge",
        "Sessions open now.",
        Value(|r| r.cur as f64),
    ),
    Family(
        "max_sessions",
        "gauge",
        "Most sessions open at once (summed over workers).",
        Value(|r| r.max as f64),
    ),
    Family(
        "sessions_total",
        "counter",
        "Sessions since start.",
        Value(|r| r.total as f64),
    ),
    Family(
        "current_session_rate",
        "gauge",
        "Sessions per second over the last 10 seconds.",
        Value(|r| r.rate),
    ),
    Family(
        "bytes_in_total",
        "counter",
        "Bytes received from clients.",
        Value(|r| r.bytes_in as f64),
    ),
    Family(
        "bytes_out_total",
        "counter",
        "Bytes sent to clients.",
        Value(|r| r.bytes_out as f64),
    ),
    Family(
        "http_responses_total",
        "counter",
        "HTTP responses by status class.",
        ByCode,
    ),
];

/// Frontends only.
const FRONTEND: &[Family] = &[
    Family(
        "http_requests_total",
        "counter",
        "HTTP requests received.",
        Value(|r| r.requests as f64),
    ),
    Family(
        "requests_denied_total",
        "counter",
        "Requests denied by rules.",
        Value(|r| r.denied as f64),
    ),
    Family(
        "request_errors_total",
        "counter",
        "Bad requests.",
        Value(|r| r.bad_requests as f64),
    ),
];

/// Backends and servers.
const UPSTREAM: &[Family] = &[
    Family(
        "connection_errors_total",
        "counter",
        "Failed connections to servers.",
        Value(|r| r.connect_errors as f64),
    ),
    Family(
        "response_errors_total",
        "counter",
        "Responses that failed.",
        Value(|r| r.response_errors as f64),
    ),
    Family(
        "retry_warnings_total",
        "counter",
        "Connection retries.",
        Value(|r| r.retries as f64),
    ),
    Family(
        "response_time_average_seconds",
        "gauge",
        "Average response time.",
        Value(|r| r.response_ms as f64 / 1000.0),
    ),
];

/// Backends only.
const BACKEND: &[Family] = &[
    Family(
        "current_queue",
        "gauge",
        "Connections waiting for a server slot.",
        Value(|r| r.queue_cur as f64),
    ),
    Family(
        "max_queue",
        "gauge",
        "Longest queue seen (summed over workers).",
        Value(|r| r.queue_max as f64),
    ),
    Family(
        "status",
        "gauge",
        "1 while at least one server is usable.",
        Value(|r| f64::from(u8::from(r.status == "UP"))),
    ),
];

/// Servers only.
const SERVER: &[Family] = &[
    Family(
        "status",
        "gauge",
        "Server state (1 for the current one).",
        ByState,
    ),
    Family(
        "weight",
        "gauge",
        "Configured weight.",
        Value(|r| r.weight as f64),
    ),
    Family(
        "downtime_seconds_total",
        "counter",
        "Seconds spent DOWN.",
        Value(|r| r.downtime_s as f64),
    ),
    Family(
        "last_status_change_seconds",
        "gauge",
        "Seconds since the status last changed.",
        Value(|r| r.last_change_s as f64),
    ),
];

/// A family's `# HELP` and `# TYPE` lines.
fn header(out: &mut String, full: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {full} {help}");
    let _ = writeln!(out, "# TYPE {full} {kind}");
}

/// One family over the rows of `scope`.
fn family(out: &mut String, s: &Snapshot, scope: Scope, Family(name, kind, help, sample): &Family) {
    let full = format!("corral_{}_{name}", scope.prefix());
    header(out, &full, kind, help);
    for (labels, r) in rows(s, scope) {
        match sample {
            Value(value) => {
                let _ = writeln!(out, "{full}{{{labels}}} {}", value(r));
            }
            ByCode => {
                for (code, n) in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
                    .iter()
                    .zip(r.responses)
                {
                    let _ = writeln!(out, "{full}{{{labels},code=\"{code}\"}} {n}");
                }
            }
            ByState => {
                for state in ["UP", "DOWN", "no check"] {
                    let on = u8::from(r.status == state);
                    let _ = writeln!(out, "{full}{{{labels},state=\"{state}\"}} {on}");
                }
            }
        }
    }
}

/// The whole exposition.
pub(crate) fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(8 << 10);
    let process = |out: &mut String, name: &str, kind: &str, help: &str| {
        header(out, &format!("corral_process_{name}"), kind, help);
    };
    process(&mut out, "info", "gauge", "corral's version and pid.");
    let _ = writeln!(
        out,
        "corral_process_info{{version=\"{}\",pid=\"{}\"}} 1",
        s.info.version, s.info.pid
    );
    process(
        &mut out,
        "uptime_seconds",
        "gauge",
        "Seconds since corral started.",
    );
    let _ = writeln!(out, "corral_process_uptime_seconds {}", s.info.uptime_s);
    process(
        &mut out,
        "current_connections",
        "gauge",
        "Client connections open now.",
    );
    let _ = writeln!(out, "corral_process_current_connections {}", s.info.conns);
    let groups: [(&[Scope], &[Family]); 5] = [
        (
            &[Scope::Frontend, Scope::Backend, Scope::Server],
            EVERY_SCOPE,
        ),
        (&[Scope::Frontend], FRONTEND),
        (&[Scope::Backend, Scope::Server], UPSTREAM),
        (&[Scope::Backend], BACKEND),
        (&[Scope::Server], SERVER),
    ];
    for (scopes, families) in groups {
        for &scope in scopes {
            for f in families {
                family(&mut out, s, scope, f);
            }
        }
    }
    out
}
