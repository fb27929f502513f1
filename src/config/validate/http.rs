//! Validation of the HTTP parts of frontends and backends: ACLs, rules,
//! errorfiles, captures, forwardfor, connection modes.
//! An error inside a condition or rule string points at the offending
//! token's own line and column.

use super::*;
use crate::acl::{AclSet, LogFormat};
use crate::model::errors::{ErrorPages, STATUSES};
use crate::rules::http::{self as rules, Rule, Side};

/// The HTTP-only keys a frontend wrote.
pub(super) fn frontend_keys(f: &RawFrontend) -> Vec<(&'static str, bool)> {
    vec![
        ("http-request", f.http_request.is_some()),
        ("http-response", f.http_response.is_some()),
        ("errorfiles", f.errorfiles.is_some()),
        ("capture", f.capture.is_some()),
        ("unique-id-format", f.unique_id_format.is_some()),
        ("unique-id-header", f.unique_id_header.is_some()),
        ("stats", f.stats.is_some()),
    ]
}

/// The HTTP-only keys a backend wrote.
pub(super) fn backend_keys(b: &RawBackend) -> Vec<(&'static str, bool)> {
    vec![
        ("http-request", b.http_request.is_some()),
        ("http-response", b.http_response.is_some()),
        ("errorfiles", b.errorfiles.is_some()),
    ]
}

impl Validator<'_> {
    pub(super) fn http_keys_need_http_mode(&mut self, base: &str, keys: &[(&str, bool)]) {
        for (key, present) in keys {
            if *present {
                self.c.at_key(
                    &child(base, key),
                    format!("`{key}` needs `mode: http` (this section is mode tcp)"),
                );
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // one per inherited setting
    pub(super) fn http_frontend(
        &mut self,
        base: &str,
        f: &RawFrontend,
        d: &Defaults,
        options: &[(String, String)],
        timeout_client: Duration,
        table: Option<usize>,
    ) -> HttpFrontend {
        let p = |k: &str| child(base, k);
        let acls = self.acls(f.acl.as_ref(), &p("acl"));
        let request_rules = self.rules(
            f.http_request.as_ref(),
            &p("http-request"),
            &acls,
            Side::Request,
            table,
        );
        let response_rules = self.rules(
            f.http_response.as_ref(),
            &p("http-response"),
            &acls,
            Side::Response,
            table,
        );
        let mut errors = match &f.errorfiles {
            Some(v) => self.errorfiles(v, &p("errorfiles")),
            None => ErrorPages::default(),
        };
        errors.inherit(&d.errors);
        let own = f.timeout.as_ref();
        let timeout_request = self
            .timeout(own, &d.timeouts, base, "http-request")
            .unwrap_or(timeout_client);
        let timeout_keep_alive = self
            .timeout(own, &d.timeouts, base, "http-keep-alive")
            .unwrap_or(timeout_request);
        let (capture_request, capture_response) = self.captures(f.capture.as_ref(), &p("capture"));
        let unique_id_format = f.unique_id_format.as_ref().and_then(|v| {
            let path = p("unique-id-format");
            let text = self.string(v, &path, "a log-format string")?;
            LogFormat::parse(&text)
                .map_err(|e| self.c.at_offset(&path, &text, e.offset, e.message))
                .ok()
        });
        let unique_id_header = f.unique_id_header.as_ref().and_then(|v| {
            let path = p("unique-id-header");
            let name = self.string(v, &path, "a header name")?;
            self.header_name(&name, &path).then_some(name)
        });
        HttpFrontend {
            acls,
            request_rules,
            response_rules,
            errors,
            timeout_request,
            timeout_keep_alive,
            forwardfor: self.forwardfor(options),
            conn_mode: conn_mode(options),
            capture_request,
            capture_response,
            unique_id_format,
            unique_id_header,
            stats: f
                .stats
                .as_ref()
                .and_then(|v| self.stats_page(v, &p("stats"))),
        }
    }

    /// A frontend's `stats:` block.
    fn stats_page(&mut self, v: &Value, path: &str) -> Option<StatsPage> {
        const KEYS: &[&str] = &[
            "uri",
            "refresh",
            "hide-version",
            "auth",
            "admin",
            "prometheus",
        ];
        let Value::Mapping(m) = v else {
            self.c.at(
                path,
                format!(
                    "`{}` is not valid: expected a map, e.g. `stats: {{ uri: /stats }}`",
                    show(v)
                ),
            );
            return None;
        };
        let mut page = StatsPage {
            uri: "/stats".into(),
            refresh: Duration::from_secs(5),
            hide_version: false,
            auth: Vec::new(),
            admin: false,
            prometheus: false,
        };
        for (k, val) in m {
            let Some(k) = k.as_str() else { continue };
            let p = child(path, k);
            match k {
                "uri" => {
                    if let Some(u) = self.string(val, &p, "a path such as /stats") {
                        if u.starts_with('/') {
                            page.uri = u;
                        } else {
                            self.c
                                .at(&p, format!("`{u}` is not a path: it must start with `/`"));
                        }
                    }
                }
                "refresh" => page.refresh = self.duration(val, &p).unwrap_or(page.refresh),
                "hide-version" => page.hide_version = self.boolean(val, &p).unwrap_or(false),
                "admin" => page.admin = self.boolean(val, &p).unwrap_or(false),
                "prometheus" => page.prometheus = self.boolean(val, &p).unwrap_or(false),
                "auth" => {
                    for (text, ap) in self.strings_only(val, &p) {
                        let Some((user, pass)) = text.split_once(':') else {
                            self.c.at(&ap, "expected `user:password`");
                            continue;
                        };
                        match self.password(pass) {
                            Ok(pass) => page.auth.push((user.to_string(), pass)),
                            Err(msg) => self.c.at(&ap, msg),
                        }
                    }
                }
                other => self.c.at_key(
                    &p,
                    format!("unknown key `{other}` (valid keys: {})", KEYS.join(", ")),
                ),
            }
        }
        if page.admin && page.auth.is_empty() {
            self.c.at(
                &child(path, "admin"),
                "`admin: true` needs `auth`: anyone could otherwise take servers out of service",
            );
        }
        Some(page)
    }

    /// A password as written, or `{{ file /path }}`: the file's first line.
    fn password(&self, text: &str) -> Result<String, String> {
        let t = text.trim();
        let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}")) else {
            return Ok(text.to_string());
        };
        let Some(file) = inner.trim().strip_prefix("file ") else {
            return Err(format!(
                "`{t}`: the only template is `{{{{ file /path/to/password }}}}`"
            ));
        };
        let path = self.base_dir.join(file.trim());
        let content = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the password file `{}`: {e}", path.display()))?;
        Ok(content.lines().next().unwrap_or("").to_string())
    }

    pub(super) fn http_backend(
        &mut self,
        base: &str,
        b: &RawBackend,
        d: &Defaults,
        options: &[(String, String)],
        timeout_server: Duration,
        table: Option<usize>,
    ) -> HttpBackend {
        let p = |k: &str| child(base, k);
        let acls = self.acls(b.acl.as_ref(), &p("acl"));
        let request_rules = self.rules(
            b.http_request.as_ref(),
            &p("http-request"),
            &acls,
            Side::Request,
            table,
        );
        let response_rules = self.rules(
            b.http_response.as_ref(),
            &p("http-response"),
            &acls,
            Side::Response,
            table,
        );
        let mut errors = match &b.errorfiles {
            Some(v) => self.errorfiles(v, &p("errorfiles")),
            None => ErrorPages::default(),
        };
        errors.inherit(&d.errors);
        let timeout_tunnel = self
            .timeout(b.timeout.as_ref(), &d.timeouts, base, "tunnel")
            .unwrap_or(timeout_server);
        HttpBackend {
            acls,
            request_rules,
            response_rules,
            errors,
            forwardfor: self.forwardfor(options),
            conn_mode: conn_mode(options),
            timeout_tunnel,
        }
    }

    /// `acl: { name: "text" | ["text", ...] }`.
    pub(super) fn acls(&mut self, v: Option<&Value>, path: &str) -> AclSet {
        let mut set = AclSet::new();
        let Some(v) = v else { return set };
        let Value::Mapping(map) = v else {
            self.c.at(path, "expected a map of ACL names to definitions, e.g. `{ is_static: \"path_beg /static\" }`");
            return set;
        };
        for (k, def) in map {
            let Some(name) = k.as_str() else {
                self.c.at(path, "ACL names must be strings");
                continue;
            };
            let npath = child(path, name);
            let ok_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
            if !ok_name {
                self.c.at_key(&npath, format!("`{name}` is not a valid ACL name: use letters, digits, `_`, `.`, `:` and `-`"));
                continue;
            }
            for (text, tpath) in self.strings(def, &npath) {
                if let Err(e) = set.define(name, &text) {
                    self.c.at_offset(&tpath, &text, e.offset, e.message);
                }
            }
        }
        set
    }

    fn rules(
        &mut self,
        v: Option<&Value>,
        path: &str,
        acls: &AclSet,
        side: Side,
        table: Option<usize>,
    ) -> Vec<Rule> {
        let Some(v) = v else { return Vec::new() };
        let mut out = Vec::new();
        let names = std::mem::take(&mut self.table_names);
        let refs = crate::rules::stick::TableRefs {
            names: &names,
            own: table,
        };
        for (text, p) in self.strings(v, path) {
            match rules::parse_with(&text, acls, side, &refs) {
                Ok(r) => out.push(r),
                Err(e) => self.c.at_offset(&p, &text, e.offset, e.message),
            }
        }
        self.table_names = names;
        out
    }

    /// `errorfiles: { 503: /path/503.http }`; relative paths are read from
    /// the configuration file's directory.
    pub(super) fn errorfiles(&mut self, v: &Value, path: &str) -> ErrorPages {
        let mut pages = ErrorPages::default();
        let Value::Mapping(map) = v else {
            self.c.at(
                path,
                "expected a map of statuses to files, e.g. `{ 503: /etc/corral/errors/503.http }`",
            );
            return pages;
        };
        for (k, file) in map {
            let status_text = match k {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                _ => String::new(),
            };
            let spath = child(path, &status_text);
            let status = match status_text.parse::<u16>() {
                Ok(s) if STATUSES.contains(&s) => s,
                _ => {
                    let list: Vec<String> = STATUSES.iter().map(u16::to_string).collect();
                    self.c.at_key(
                        &spath,
                        format!(
                            "`{status_text}` is not a status corral answers with (one of {})",
                            list.join(", ")
                        ),
                    );
                    continue;
                }
            };
            let Some(file) = self.string(file, &spath, "the path of an errorfile") else {
                continue;
            };
            let full = self.base_dir.join(&file);
            if let Err(msg) = pages.load(status, &full) {
                self.c.at(&spath, msg);
            }
        }
        pages
    }

    /// `capture: [ "request header Host len 32", "response header Server len 20" ]`.
    fn captures(&mut self, v: Option<&Value>, path: &str) -> (Vec<Capture>, Vec<Capture>) {
        let (mut req, mut res) = (Vec::new(), Vec::new());
        let Some(v) = v else { return (req, res) };
        for (text, p) in self.strings(v, path) {
            let words: Vec<&str> = text.split_whitespace().collect();
            match words.as_slice() {
                [side @ ("request" | "response"), "header", name, "len", len] => {
                    let Ok(len) = len.parse::<usize>() else {
                        self.c.at(&p, format!("`{len}` is not a length"));
                        continue;
                    };
                    if !self.header_name(name, &p) {
                        continue;
                    }
                    let c = Capture { name: name.to_string(), len: len.clamp(1, 4096) };
                    if *side == "request" {
                        req.push(c);
                    } else {
                        res.push(c);
                    }
                }
                _ => self.c.at(&p, format!("`{text}` is not a capture: expected `request header NAME len N` or `response header NAME len N`")),
            }
        }
        (req, res)
    }

    fn header_name(&mut self, name: &str, path: &str) -> bool {
        let ok = !name.is_empty() && name.bytes().all(crate::base::tchar::is_tchar);
        if !ok {
            self.c
                .at(path, format!("`{name}` is not a valid header name"));
        }
        ok
    }

    /// `option forwardfor [except NET] [header NAME] [if-none]`; the last
    /// one written wins (a section's own over defaults).
    fn forwardfor(&mut self, options: &[(String, String)]) -> Option<ForwardFor> {
        let (text, path) = options
            .iter()
            .rev()
            .find(|(o, _)| option_name(o) == "forwardfor")?;
        let mut ff = ForwardFor {
            header: "X-Forwarded-For".into(),
            except: None,
            if_none: false,
        };
        let mut words = text.split_whitespace().skip(1);
        while let Some(w) = words.next() {
            match w {
                "except" => match words.next().map(parse_network) {
                    Some(Some(net)) => ff.except = Some(net),
                    _ => self.c.at(
                        path,
                        "`except` needs a network such as `10.0.0.0/8` or `127.0.0.1`",
                    ),
                },
                "header" => match words.next() {
                    Some(h) if self.header_name(h, path) => ff.header = h.to_string(),
                    Some(_) => {}
                    None => self.c.at(path, "`header` needs a header name"),
                },
                "if-none" => ff.if_none = true,
                other => self.c.at(
                    path,
                    format!(
                        "unknown forwardfor argument `{other}` (expected except, header, if-none)"
                    ),
                ),
            }
        }
        Some(ff)
    }
}

/// The strongest of the connection options written.
fn conn_mode(options: &[(String, String)]) -> ConnMode {
    let mut mode = ConnMode::KeepAlive;
    for (o, _) in options {
        match option_name(o) {
            "httpclose" => mode = ConnMode::Close,
            "http-server-close" if mode < ConnMode::ServerClose => mode = ConnMode::ServerClose,
            // A section's own `http-keep-alive` overrides a default mode.
            "http-keep-alive" => mode = ConnMode::KeepAlive,
            _ => {}
        }
    }
    mode
}

/// `10.0.0.0/8`, `192.168.1.1`, `::1`, `fe80::/10`.
fn parse_network(text: &str) -> Option<(std::net::IpAddr, u8)> {
    let (ip, bits) = match text.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (text, None),
    };
    let ip: std::net::IpAddr = ip.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((ip, bits))
}
