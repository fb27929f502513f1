//! Unit tests of the conversion (the seeds are tested end to end in
//! tests/import_haproxy.rs).

use super::*;
use std::path::Path;

fn conv(text: &str) -> Outcome {
    convert(text).unwrap()
}

/// The YAML must be what corral accepts.
fn valid(o: &Outcome) -> crate::config::Config {
    match crate::config::Config::parse(Path::new("t.yaml"), &o.yaml) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n---\n{}", o.yaml),
    }
}

fn lines(o: &Outcome) -> Vec<usize> {
    o.unconverted.iter().map(|u| u.line).collect()
}

#[test]
fn listen_becomes_a_frontend_and_a_backend_of_the_same_name() {
    let o = conv(
        "listen app\n  bind 127.0.0.1:0\n  mode http\n  balance leastconn\n  timeout client 5s\n  timeout server 7s\n  option forwardfor\n  option redispatch\n  server a 127.0.0.1:9001 check inter 3s\n",
    );
    assert!(o.unconverted.is_empty(), "{:?}", o.unconverted);
    let c = valid(&o);
    assert_eq!(c.frontends[0].name, "app");
    assert_eq!(c.backends[0].name, "app");
    assert_eq!(c.frontends[0].default_backend, Some(0));
    assert_eq!(
        c.frontends[0].timeout_client,
        std::time::Duration::from_secs(5)
    );
    assert_eq!(
        c.backends[0].timeout_server,
        std::time::Duration::from_secs(7)
    );
    assert!(
        o.yaml
            .contains("a: { address: 127.0.0.1:9001, check: { inter: 3s } }"),
        "{}",
        o.yaml
    );
}

#[test]
fn a_listen_without_servers_is_only_a_frontend() {
    let o = conv(
        "listen stats\n  bind 127.0.0.1:0\n  mode http\n  stats enable\n  stats uri /s\n  stats refresh 10s\n  stats auth admin:pw\n  stats auth ops:pw2\n  stats admin if TRUE\n",
    );
    assert!(o.unconverted.is_empty(), "{:?}", o.unconverted);
    let c = valid(&o);
    assert!(c.backends.is_empty());
    assert!(o.yaml.contains("auth: [ admin:pw, ops:pw2 ]"), "{}", o.yaml);
    assert!(o.yaml.contains("uri: /s"), "{}", o.yaml);
}

#[test]
fn default_server_and_httpchk_reach_every_server() {
    let o = conv(
        "defaults\n  mode http\n  default-server inter 3s fall 2\nfrontend f\n  bind :80\n  default_backend b\nbackend b\n  option httpchk GET /health\n  http-check expect status 200-399\n  server s1 10.0.0.1:80 check weight 5 backup\n  server s2 10.0.0.2:80 maxconn 10 cookie s2 slowstart 10s\n",
    );
    assert!(o.yaml.contains(
        "s1: { address: 10.0.0.1:80, weight: 5, backup: true, check: { inter: 3s, fall: 2, http: { method: GET, path: /health, expect: 200-399 } } }"
    ), "{}", o.yaml);
    // s2 has no `check`: its inter/fall do nothing, and cookie/slowstart
    // are reported with their values.
    assert_eq!(lines(&o), [11]);
    let r = &o.unconverted[0].reason;
    assert!(
        r.contains("`cookie s2`") && r.contains("`slowstart 10s`") && r.contains("inter, fall"),
        "{r}"
    );
    valid(&o);
}

#[test]
fn bind_ssl_crt_moves_to_the_tls_block() {
    let o = conv(
        "global\n  ssl-default-bind-options no-sslv3 no-tls-tickets\nfrontend f\n  bind :443,:8443 ssl crt /etc/c.pem alpn h2,http/1.1 ssl-min-ver TLSv1.2\n  bind :80\n  default_backend b\nbackend b\n  server s 10.0.0.1:80\n",
    );
    assert!(o.yaml.contains("- \":443 ssl\""), "{}", o.yaml);
    assert!(o.yaml.contains("- \":8443 ssl\""), "{}", o.yaml);
    assert!(o.yaml.contains("certs: [ /etc/c.pem ]"), "{}", o.yaml);
    assert!(o.yaml.contains("min_version: \"1.2\""), "{}", o.yaml);
    assert!(o.yaml.contains("alpn: [ http/1.1 ]"), "{}", o.yaml);
    assert!(o.yaml.contains("tls-tickets: false"), "{}", o.yaml);
    // h2 cannot be offered: reported.
    assert_eq!(lines(&o), [4]);
    assert!(o.unconverted[0].reason.contains("alpn h2"));
}

#[test]
fn acls_rules_and_routing_are_checked_by_corrals_parsers() {
    let o = conv(
        "frontend f\n  bind :80\n  mode http\n  acl api path_beg /api\n  acl api hdr(host) -i api.example.com\n  acl bad nosuchfetch x\n  http-request deny if { path_beg /admin } !{ src 10.0.0.0/8 }\n  http-request set-var(txn.x) str(1)\n  http-response del-header Server\n  redirect scheme https code 301 if !{ ssl_fc }\n  use_backend b if api\n  use_backend b%[req.hdr(x)]\n  default_backend b\nbackend b\n  mode http\n  server s 10.0.0.1:80\n",
    );
    assert_eq!(lines(&o), [6, 8, 12], "{:?}", o.unconverted);
    assert!(
        o.yaml
            .contains("api: [ path_beg /api, hdr(host) -i api.example.com ]"),
        "{}",
        o.yaml
    );
    assert!(
        o.yaml
            .contains("- \"redirect scheme https code 301 if !{ ssl_fc }\""),
        "{}",
        o.yaml
    );
    assert!(o.yaml.contains("# NOT CONVERTED (line 8): http-request set-var(txn.x) str(1): corral cannot do this rule"), "{}", o.yaml);
    valid(&o);
}

#[test]
fn settings_in_the_wrong_section_are_reported_as_haproxy_ignores_them() {
    let o = conv(
        "frontend f\n  bind :80\n  timeout server 5s\n  option redispatch\n  default_backend b\n  http-request deny\nbackend b\n  timeout client 5s\n  option tcplog\n  server s 10.0.0.1:80\n",
    );
    assert_eq!(lines(&o), [3, 4, 6, 8, 9], "{:?}", o.unconverted);
    assert!(o.unconverted[2].reason.contains("mode http"));
    valid(&o);
}

#[test]
fn stick_tables_peers_and_tcp_rules() {
    let o = conv(
        "peers mesh\n  peer lb1 10.0.0.1:1024\n  peer lb2 10.0.0.2:1024\nfrontend f\n  bind :80\n  stick-table type ip size 100k expire 30s store http_req_rate(10s),conn_cur\n  tcp-request connection track-sc0 src\n  tcp-request connection reject if { sc0_conn_cur gt 20 }\n  default_backend b\nbackend b\n  stick-table type ip size 20k expire 8h peers mesh nopurge\n  stick on src\n  server s 10.0.0.1:80\n",
    );
    assert!(o.yaml.contains("stick-table: { type: ip, size: 100k, expire: 30s, store: [ http_req_rate(10s), conn_cur ] }"), "{}", o.yaml);
    assert!(
        o.yaml
            .contains("stick-table: { type: ip, size: 20k, expire: 8h, peers: mesh }"),
        "{}",
        o.yaml
    );
    assert!(
        o.yaml
            .contains("peer:\n      lb1: 10.0.0.1:1024\n      lb2: 10.0.0.2:1024"),
        "{}",
        o.yaml
    );
    assert_eq!(lines(&o), [11]);
    assert!(o.unconverted[0].reason.contains("nopurge"));
    valid(&o);
}

#[test]
fn comments_stay_beside_what_they_describe() {
    let o = conv(
        "# file header\nglobal\n  maxconn 100 # limit\n\n# about the frontend\nfrontend f # the edge\n  # where to listen\n  bind 127.0.0.1:0\n  default_backend b\nbackend b\n  server s 10.0.0.1:80 # one\n# trailing\n",
    );
    assert_eq!(
        o.yaml,
        "global:\n  # file header\n  maxconn: 100  # limit\nfrontends:\n  f:  # the edge\n    # about the frontend\n    # where to listen\n    bind:\n      - 127.0.0.1:0\n    default_backend: b\nbackends:\n  b:\n    servers:\n      s: { address: 10.0.0.1:80 }  # one\n    # trailing\n"
    );
    assert!(o.unconverted.is_empty());
}

#[test]
fn every_skipped_line_is_reported_and_noted_once() {
    let o = conv(
        "global\n  daemon\n  nbthread 4\n  tune.ssl.default-dh-param 2048\nuserlist u\n  user a password x\nfrontend f\n  bind :80\n  default_backend b\nbackend b\n  balance uri\n  server s 10.0.0.1\n  server t unix@/run/x.sock\n  reqadd X-A:\\ b\n",
    );
    assert_eq!(
        lines(&o),
        [2, 4, 5, 6, 11, 12, 13, 14],
        "{:?}",
        o.unconverted
    );
    for u in &o.unconverted {
        let note = format!("NOT CONVERTED (line {}): {}", u.line, u.directive);
        assert_eq!(o.yaml.matches(&note).count(), 1, "{note}\n{}", o.yaml);
    }
    assert!(o.yaml.contains("workers: 4"));
    assert!(
        o.report("h.cfg")
            .starts_with("h.cfg:2: daemon: not converted: ")
    );
    valid(&o);
}

#[test]
fn a_second_defaults_section_is_reported_not_merged() {
    let o = conv(
        "defaults\n  mode http\ndefaults\n  mode tcp\n  # c\nfrontend f\n  bind :80\n  default_backend b\nbackend b\n  server s 10.0.0.1:80\n",
    );
    assert_eq!(lines(&o), [3, 4]);
    let c = valid(&o);
    assert_eq!(c.frontends[0].mode, crate::config::Mode::Http);
}

#[test]
fn unusual_names_and_values_are_quoted() {
    let o = conv(
        "frontend \"yes\"\n  bind :80\n  default_backend 123\nbackend 123\n  server true 10.0.0.1:80\n",
    );
    let v: serde_yaml::Value = serde_yaml::from_str(&o.yaml).unwrap();
    assert!(
        v["frontends"]["yes"]["default_backend"].as_str() == Some("123"),
        "{}",
        o.yaml
    );
    assert!(
        v["backends"]["123"]["servers"]["true"].is_mapping(),
        "{}",
        o.yaml
    );
}

#[test]
fn an_unclosed_quote_is_an_error_naming_the_line() {
    let e = convert("global\n  log \"/dev/log\n").unwrap_err();
    assert_eq!(e.line, 2);
}

#[test]
fn lines_using_environment_variables_are_reported() {
    let o = conv(
        "global\n  maxconn \"$MAXCONN\"\nfrontend f\n  bind \"${ADDR}:80\"\n  bind :81\n  default_backend b\nbackend b\n  server s 10.0.0.1:80\n",
    );
    assert_eq!(lines(&o), [2, 4]);
    assert!(o.unconverted[1].reason.contains("`ADDR`"));
    valid(&o);
}

#[test]
fn an_ssl_bind_without_certificates_is_reported() {
    let o = conv(
        "frontend f\n  bind :443 ssl\n  default_backend b\nbackend b\n  server s 10.0.0.1:80\n",
    );
    assert_eq!(lines(&o), [2]);
    assert!(o.unconverted[0].reason.contains("without `crt`"));
}

#[test]
fn stats_enable_alone_serves_haproxys_default_address() {
    let o = conv("frontend st\n  bind 127.0.0.1:0\n  mode http\n  stats enable\n");
    assert!(o.unconverted.is_empty(), "{:?}", o.unconverted);
    let c = valid(&o);
    let page = c.frontends[0]
        .http
        .as_ref()
        .unwrap()
        .stats
        .as_ref()
        .unwrap();
    assert_eq!(
        crate::control::stats::page::view(page, b"/haproxy"),
        Some(crate::control::stats::page::View::Html)
    );
}
