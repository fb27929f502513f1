//! The stats page: HTML (self-contained: inline style and script, no
//! external requests), and its `;csv` and `;json` forms.
//!
//! The page carries its first numbers as JSON and draws itself with a
//! small script, which also fetches `<uri>;json` every `refresh` and
//! redraws: one renderer, in the browser.
//!
//! With `admin: true` (which needs `auth`), every server row has buttons
//! that set its administrative state: `POST <uri>;admin?b=BACKEND&s=SERVER
//! &action=ready|drain|maint`, the same change as the runtime API's `set
//! server B/S state`, on every worker. The request must carry an
//! `X-Corral-Admin` header: a page on another site cannot add one without
//! the browser asking first (CORS), and corral never says yes, so a
//! browser holding the password cannot be made to press the buttons by
//! another site.

use super::{Row, Snapshot};
use crate::balance::backend::AdminState;
use crate::config::StatsPage;
use std::fmt::Write;

/// What a request to a stats frontend asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Html,
    Csv,
    Json,
    Metrics,
    /// An admin button (`admin: true` only).
    Admin,
}

/// The view `path` names on page `p`, if any.
pub(crate) fn view(p: &StatsPage, path: &[u8]) -> Option<View> {
    let uri = p.uri.as_bytes();
    if path == uri || (path.len() == uri.len() + 1 && path.starts_with(uri) && path.ends_with(b"/"))
    {
        return Some(View::Html);
    }
    if let Some(rest) = path.strip_prefix(uri) {
        match rest {
            b";csv" => return Some(View::Csv),
            b";json" => return Some(View::Json),
            b";admin" if p.admin => return Some(View::Admin),
            _ => {}
        }
    }
    (p.prometheus && path == b"/metrics").then_some(View::Metrics)
}

/// An admin button's request, from its query string: (`backend/server`,
/// the state asked for), or what is wrong with it.
pub(crate) fn admin_request(query: Option<&[u8]>) -> Result<(String, AdminState), String> {
    let (mut b, mut s, mut action) = (None, None, None);
    for pair in query.unwrap_or_default().split(|&c| c == b'&') {
        let (k, v) = match pair.iter().position(|&c| c == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let v = percent_decode(v).ok_or("a parameter is not valid percent-encoded UTF-8")?;
        match k {
            b"b" => b = Some(v),
            b"s" => s = Some(v),
            b"action" => action = Some(v),
            _ => {}
        }
    }
    let (Some(b), Some(s), Some(action)) = (b, s, action) else {
        return Err("expected b=BACKEND&s=SERVER&action=ready|drain|maint".into());
    };
    let state = match action.as_str() {
        "ready" => AdminState::Ready,
        "drain" => AdminState::Drain,
        "maint" => AdminState::Maint,
        other => {
            return Err(format!(
                "unknown action `{other}` (valid: ready, drain, maint)"
            ));
        }
    };
    Ok((format!("{b}/{s}"), state))
}

/// `%XX` and `+` decoding of a query value.
fn percent_decode(v: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' => {
                let hex = std::str::from_utf8(v.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Whether an `Authorization` header value grants access.
pub(crate) fn authorized(p: &StatsPage, header: Option<&[u8]>) -> bool {
    if p.auth.is_empty() {
        return true;
    }
    use base64::Engine;
    let Some(h) = header else { return false };
    let Some(b64) = h
        .strip_prefix(b"Basic ")
        .or_else(|| h.strip_prefix(b"basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim_ascii()) else {
        return false;
    };
    p.auth.iter().any(|(u, pw)| {
        decoded.len() == u.len() + 1 + pw.len()
            && decoded.starts_with(u.as_bytes())
            && decoded[u.len()] == b':'
            && decoded.ends_with(pw.as_bytes())
    })
}

/// A complete response: head and body.
pub(crate) fn response(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    extra: &str,
    body: &[u8],
    close: bool,
) {
    use std::io::Write as _;
    let reason = crate::model::errors::reason(status);
    let _ = write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n{extra}{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    out.extend_from_slice(body);
}

/// HAProxy's `show stat` columns corral fills (the first 49, in order).
const CSV_HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,";

/// The CSV form (`;csv`, and `show stat` of the runtime API).
pub(crate) fn csv(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str(CSV_HEADER);
    out.push('\n');
    let mut line = |px: &str, sv: &str, r: &Row, kind: u8, iid: usize, sid: usize| {
        let server = kind == 2;
        let _ = write!(
            out,
            "{px},{sv},{},{},{},{},,{},{},{},{},,{},{},{},{},{},{},{},{},",
            if kind == 0 {
                String::new()
            } else {
                r.queue_cur.to_string()
            },
            if kind == 0 {
                String::new()
            } else {
                r.queue_max.to_string()
            },
            r.cur,
            r.max,
            r.total,
            r.bytes_in,
            r.bytes_out,
            r.denied,
            r.bad_requests,
            if kind == 0 {
                String::new()
            } else {
                r.connect_errors.to_string()
            },
            if kind == 0 {
                String::new()
            } else {
                r.response_errors.to_string()
            },
            if kind == 0 {
                String::new()
            } else {
                r.retries.to_string()
            },
            if kind == 0 {
                String::new()
            } else {
                r.redispatches.to_string()
            },
            r.status,
            if server {
                r.weight.to_string()
            } else {
                String::new()
            },
            if server {
                u8::from(!r.backup).to_string()
            } else {
                String::new()
            },
        );
        let _ = write!(
            out,
            "{},,,{},{},,{},{iid},{sid},,{},,{kind},{},,,{},,,",
            if server {
                u8::from(r.backup).to_string()
            } else {
                String::new()
            },
            if server {
                r.last_change_s.to_string()
            } else {
                String::new()
            },
            if server {
                r.downtime_s.to_string()
            } else {
                String::new()
            },
            std::process::id(),
            if kind == 0 {
                String::new()
            } else {
                r.total.to_string()
            },
            r.rate.round() as u64,
            r.check,
        );
        for n in r.responses {
            let _ = write!(out, "{n},");
        }
        let _ = writeln!(out, ",,,{},", r.requests);
    };
    for (i, f) in s.frontends.iter().enumerate() {
        line(&f.name, "FRONTEND", f, 0, i + 1, 0);
    }
    for (i, b) in s.backends.iter().enumerate() {
        for (k, srv) in b.servers.iter().enumerate() {
            line(&b.row.name, &srv.name, srv, 2, i + 1, k + 1);
        }
        line(&b.row.name, "BACKEND", &b.row, 1, i + 1, 0);
    }
    out
}

/// The HTML page.
pub(crate) fn html(s: &Snapshot, p: &StatsPage) -> String {
    let data = serde_json::to_string(s)
        .unwrap_or_else(|_| "{}".into())
        .replace("</", "<\\/");
    let version = if p.hide_version {
        String::new()
    } else {
        format!(" {}", s.info.version)
    };
    let mut out = String::with_capacity(16 << 10);
    out.push_str(HEAD);
    let _ = write!(
        out,
        "<title>corral statistics</title></head><body>\n<h1>corral{version} statistics</h1>\n<p id=\"info\"></p>\n<p id=\"msg\"></p>\n<div id=\"stats\"></div>\n<script>\nconst REFRESH_MS = {};\nconst JSON_URI = {};\nconst ADMIN_URI = {};\nlet DATA = {data};\n",
        p.refresh.as_millis(),
        serde_json::to_string(&format!("{};json", p.uri)).unwrap_or_default(),
        if p.admin {
            serde_json::to_string(&format!("{};admin", p.uri)).unwrap_or_default()
        } else {
            "null".to_string()
        },
    );
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body></html>\n");
    out
}

const HEAD: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 13px system-ui, sans-serif; margin: 1em; color: #222; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin: 1.2em 0 .3em; }
table { border-collapse: collapse; margin-bottom: .5em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #dde; } td.name { text-align: left; font-weight: 600; }
tr.total td { background: #eef; font-weight: 600; }
tr.up td.status { background: #9e9; } tr.down td.status { background: #f88; }
tr.nocheck td.status { background: #ddd; } tr.open td.status { background: #9e9; }
tr.maint td.status { background: #c9f; } tr.drain td.status { background: #fc6; }
td.admin { white-space: nowrap; } td.admin button { font-size: 11px; margin: 0 1px; } #msg { min-height: 1em; color: #135; }
.charts { display: flex; gap: 1.5em; } .chart { font-size: 11px; }
svg { background: #f7f7fb; border: 1px solid #ccd; }
</style>
"##;

const SCRIPT: &str = r##"
const COLS = ["Name", "Status", "Cur", "Max", "Total", "Rate/s", "Bytes in", "Bytes out",
  "Req", "2xx", "3xx", "4xx", "5xx", "Denied", "Err conn", "Err resp", "Retries",
  "Queue", "Resp ms", "Weight", "Check", "Last change", "Downtime"];
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function dur(s) {
  if (s === undefined || s === null) return "";
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
  return (h ? h + "h" : "") + (h || m ? m + "m" : "") + (s % 60) + "s";
}
function press(backend, server, action) {
  const q = "?b=" + encodeURIComponent(backend) + "&s=" + encodeURIComponent(server) +
    "&action=" + encodeURIComponent(action);
  fetch(ADMIN_URI + q, {method: "POST", credentials: "same-origin", headers: {"X-Corral-Admin": "1"}})
    .then(r => r.text().then(t => {
      document.getElementById("msg").textContent = (r.ok ? "" : "failed: ") + t;
      return fetch(JSON_URI, {credentials: "same-origin", cache: "no-store"});
    }))
    .then(r => r.ok ? r.json() : Promise.reject(r.status))
    .then(d => { DATA = d; render(d); })
    .catch(e => { document.getElementById("msg").textContent = "failed: " + e; });
}
function buttons(backend, server) {
  const td = el("td", {"class": "admin"});
  [["ready", "Ready"], ["drain", "Drain"], ["maint", "Maint"]].forEach(([a, label]) => {
    const b = el("button", {"type": "button", "data-action": a, "data-server": backend + "/" + server}, label);
    b.addEventListener("click", () => press(backend, server, a));
    td.appendChild(b);
  });
  return td;
}
function row(r, kind, cls) {
  const tr = el("tr", {"class": cls, "data-name": r.name});
  const status = r.status;
  const cells = [r.name, status, r.cur, r.max, r.total, r.rate.toFixed(1), r.bytes_in, r.bytes_out,
    r.requests, r.responses[1], r.responses[2], r.responses[3], r.responses[4], r.denied,
    kind === "fe" ? "" : r.connect_errors, kind === "fe" ? "" : r.response_errors,
    kind === "fe" ? "" : r.retries, kind === "fe" ? "" : r.queue_cur + "/" + r.queue_max,
    kind === "fe" ? "" : r.response_ms, kind === "srv" ? r.weight : "",
    kind === "srv" ? r.check : "", kind === "srv" ? dur(r.last_change_s) : "",
    kind === "srv" ? dur(r.downtime_s) : ""];
  cells.forEach((c, i) => tr.appendChild(el("td", {"class": i === 0 ? "name" : i === 1 ? "status" : ""}, String(c))));
  return tr;
}
function chart(values, label) {
  const w = 240, h = 48, box = el("div", {"class": "chart"});
  const max = Math.max(1, ...values);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  const step = values.length > 1 ? w / (values.length - 1) : w;
  line.setAttribute("points", values.map((v, i) => (i * step).toFixed(1) + "," + (h - 2 - v / max * (h - 4)).toFixed(1)).join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#36c"); line.setAttribute("stroke-width", "1.5");
  svg.appendChild(line);
  box.appendChild(el("div", {}, label + " (last " + values.length + " samples, max " + max.toFixed(1) + ")"));
  box.appendChild(svg);
  return box;
}
function header(table, admin) {
  const tr = el("tr");
  COLS.forEach(c => tr.appendChild(el("th", {}, c)));
  if (admin) tr.appendChild(el("th", {}, "Admin"));
  table.appendChild(tr);
}
function render(d) {
  const root = document.getElementById("stats");
  root.textContent = "";
  document.getElementById("info").textContent = "pid " + d.info.pid + ", " + d.info.workers +
    " worker(s), up " + dur(d.info.uptime_s) + ", " + d.info.conns + " connection(s) open";
  d.frontends.forEach(f => {
    root.appendChild(el("h2", {}, "Frontend " + f.name));
    const t = el("table", {"class": "frontend", "id": "fe-" + f.name});
    header(t, false);
    t.appendChild(row(f, "fe", "total open"));
    root.appendChild(t);
  });
  d.backends.forEach((b, i) => {
    root.appendChild(el("h2", {}, "Backend " + b.name + " (" + b.mode + ")"));
    const t = el("table", {"class": "backend", "id": "be-" + b.name});
    header(t, ADMIN_URI !== null);
    b.servers.forEach(s => {
      const cls = "server " + ({"UP": "up", "DOWN": "down", "MAINT": "maint", "DRAIN": "drain"}[s.status] || "nocheck");
      const tr = row(s, "srv", cls);
      if (ADMIN_URI !== null) tr.appendChild(buttons(b.name, s.name));
      t.appendChild(tr);
    });
    const total = row(b, "be", "total " + (b.status === "UP" ? "up" : "down"));
    if (ADMIN_URI !== null) total.appendChild(el("td"));
    t.appendChild(total);
    root.appendChild(t);
    const h = d.history || {};
    if (h.rate && h.rate[i] && h.rate[i].length) {
      const c = el("div", {"class": "charts"});
      c.appendChild(chart(h.rate[i], "sessions/s"));
      c.appendChild(chart(h.response_ms[i], "response ms"));
      root.appendChild(c);
    }
  });
}
render(DATA);
if (REFRESH_MS > 0) {
  setInterval(() => {
    fetch(JSON_URI, {credentials: "same-origin", cache: "no-store"})
      .then(r => r.ok ? r.json() : Promise.reject(r.status))
      .then(d => { DATA = d; render(d); })
      .catch(() => {});
  }, REFRESH_MS);
}
"##;
