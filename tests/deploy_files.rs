//! Every file in `deploy/` is checked by something that can fail: YAML
//! parses, corral configurations pass `corral check`, shell scripts pass
//! `shellcheck`, systemd units pass `systemd-analyze verify`, the compose
//! file passes `docker compose config` (or `docker-compose config`), and the
//! Dockerfile, containerlab topology and LXD files are checked for what the
//! deployment relies on, across files. A check whose tool is missing says
//! `SKIPPED <test>: <tool> not installed`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_corral");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    root().join("deploy")
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn with_ext(exts: &[&str]) -> Vec<PathBuf> {
    files(&deploy())
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

fn yaml(p: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", rel(p)))
}

/// Whether `tool` runs here (`tool ARGS` exits 0).
fn have(tool: &str, args: &[&str]) -> bool {
    Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Run {
    ok: bool,
    out: String,
}

fn run(cmd: &mut Command) -> Run {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run {
        ok: o.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// `corral check` on a configuration text; the error text when invalid.
fn corral_check(name: &str, text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join(name);
    std::fs::write(&p, text).expect("write config");
    let r = run(Command::new(BIN).args(["check", "-c"]).arg(&p));
    if r.ok { Ok(()) } else { Err(r.out) }
}

/// Text between `<<'MARK'` and a line `MARK` in a shell script or YAML.
fn heredocs(text: &str, mark: &str) -> Vec<String> {
    let open = format!("<<'{mark}'");
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains(&open) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != mark).collect();
            out.push(body.join("\n") + "\n");
        }
    }
    out
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let found = with_ext(&["yml", "yaml"]);
    assert!(
        found.len() >= 8,
        "the deploy YAML files are there: {found:?}"
    );
    for p in &found {
        let v = yaml(p);
        assert!(v.is_mapping(), "{} is a YAML mapping", rel(p));
        let name = p.file_name().unwrap().to_string_lossy();
        if name.starts_with("cloud-init") {
            assert!(
                read(p).starts_with("#cloud-config\n"),
                "{}: cloud-init only reads user data starting with #cloud-config",
                rel(p)
            );
        }
    }
}

#[test]
fn corral_configurations_under_deploy_pass_corral_check() {
    let mut checked = 0;
    for p in files(&deploy()) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name != "corral.yaml" {
            continue;
        }
        let mut text = read(&p);
        if p.ends_with("compose/corral.yaml") {
            // The compose service names resolve only on compose's network;
            // here they stand for loopback.
            for i in 1..=4 {
                text = text.replace(&format!("\"server{i}:8000\""), "\"127.0.0.1:8000\"");
            }
            assert_eq!(
                text.matches("\"127.0.0.1:8000\"").count(),
                8,
                "the eight server entries of seed 004"
            );
        }
        if let Err(e) = corral_check(&name, &text) {
            panic!("{} is not a valid corral configuration:\n{e}", rel(&p));
        }
        checked += 1;
    }
    assert_eq!(
        checked, 4,
        "docker, compose, containerlab and lxd configurations"
    );
    // The configuration the EC2 user data writes.
    let ud = read(&deploy().join("ec2/user-data.sh"));
    let configs = heredocs(&ud, "YAML");
    assert_eq!(configs.len(), 1, "user-data.sh embeds one configuration");
    if let Err(e) = corral_check("user-data.yaml", &configs[0]) {
        panic!("the configuration in ec2/user-data.sh is not valid:\n{e}");
    }
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let name = "shell_scripts_pass_shellcheck";
    let scripts = with_ext(&["sh"]);
    assert!(
        scripts.len() >= 3,
        "netns-lab.sh, lxd/launch.sh, ec2/user-data.sh"
    );
    for p in &scripts {
        let r = run(Command::new("bash").arg("-n").arg(p));
        assert!(r.ok, "{}: bash -n: {}", rel(p), r.out);
    }
    if !have("shellcheck", &["--version"]) {
        println!("SKIPPED {name}: shellcheck not installed (bash -n passed)");
        return;
    }
    let r = run(Command::new("shellcheck")
        .args(["--severity=style", "--external-sources"])
        .args(&scripts));
    assert!(r.ok, "shellcheck:\n{}", r.out);
}

/// Verifies a unit file with `systemd-analyze verify`, its
/// `/usr/local/bin/corral` pointing at the binary under test (verify
/// requires executables to exist). Fails on warnings about the file too.
fn verify_unit(file_name: &str, text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join(file_name);
    std::fs::write(&p, text.replace("/usr/local/bin/corral", BIN)).expect("write unit");
    let r = run(Command::new("systemd-analyze").arg("verify").arg(&p));
    let complaints: Vec<&str> = r
        .out
        .lines()
        .filter(|l| {
            l.contains(file_name)
                && ["Unknown", "Failed", "Invalid", "not executable", "bad"]
                    .iter()
                    .any(|w| l.contains(w))
        })
        .collect();
    if r.ok && complaints.is_empty() {
        Ok(())
    } else {
        Err(r.out)
    }
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let name = "systemd_units_pass_systemd_analyze_verify";
    // Unit files, and the unit cloud-init writes for the LXD web servers.
    let mut units: Vec<(String, String)> = with_ext(&["service"])
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read(p),
            )
        })
        .collect();
    let ci = yaml(&deploy().join("lxd/cloud-init-web.yaml"));
    for f in ci["write_files"].as_sequence().expect("write_files") {
        let path = f["path"].as_str().expect("path");
        if let Some(unit) = path.strip_suffix(".service") {
            let file = format!("{}.service", unit.rsplit('/').next().unwrap());
            units.push((file, f["content"].as_str().expect("content").to_string()));
        }
    }
    assert!(!units.is_empty());
    // The sanity of the check itself: a broken unit is refused.
    if !have("systemd-analyze", &["--version"]) {
        println!("SKIPPED {name}: systemd-analyze not installed");
        return;
    }
    assert!(
        verify_unit(
            "broken.service",
            "[Service]\nExecStart=/usr/local/bin/corral run\nNoSuchKey=1\n"
        )
        .is_err(),
        "systemd-analyze verify must refuse an unknown key"
    );
    for (file, text) in &units {
        if let Err(e) = verify_unit(file, text) {
            panic!("{file}: systemd-analyze verify:\n{e}");
        }
    }
    if !units.iter().any(|(f, _)| f == "corral.service") {
        println!(
            "SKIPPED {name} (deploy/systemd/corral.service part): the unit is not on this branch yet; {} other unit(s) verified",
            units.len()
        );
    }
}

#[test]
fn compose_file_is_valid_and_is_seed_004() {
    let name = "compose_file_is_valid_and_is_seed_004";
    let file = deploy().join("docker-compose.yml");
    let c = yaml(&file);
    let services = c["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        ["server1", "server2", "server3", "server4", "corral"]
    );
    // Merge keys (`<<: *corral`) are not applied by serde_yaml: check the
    // anchor itself, and each service's own keys.
    let base = &c["x-corral"];
    assert_eq!(
        base["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
    assert!(deploy().join("Dockerfile").is_file());
    assert!(
        base["security_opt"]
            .as_sequence()
            .is_some_and(|s| s.iter().any(|o| o.as_str() == Some("seccomp:unconfined"))),
        "io_uring needs a seccomp profile that allows it"
    );
    assert_eq!(base["ulimits"]["memlock"].as_i64(), Some(-1));
    for i in 1..=4 {
        let s = &services[format!("server{i}").as_str()];
        let cmd: Vec<&str> = s["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(
            cmd,
            [
                "web",
                "--bind",
                "0.0.0.0:8000",
                "--name",
                &format!("server{i}")
            ]
        );
        assert_eq!(
            s["ports"][0].as_str(),
            Some(format!("800{i}:8000").as_str()),
            "seed 004's host ports"
        );
        assert_eq!(
            c["services"]["corral"]["depends_on"][format!("server{i}").as_str()]["condition"]
                .as_str(),
            Some("service_healthy"),
            "corral resolves server{i} at load: it must be up first"
        );
    }
    let volume = c["services"]["corral"]["volumes"][0]
        .as_str()
        .expect("volume");
    let (src, dst) = volume.split_once(':').expect("src:dst");
    assert!(deploy().join(src).is_file(), "{src} exists");
    assert!(dst.starts_with("/etc/corral/corral.yaml"));

    // The compose tool's own validation, when one is installed.
    let tool: Option<Vec<&str>> = if have("docker", &["compose", "version"]) {
        Some(vec!["docker", "compose"])
    } else if have("docker-compose", &["version"]) {
        Some(vec!["docker-compose"])
    } else {
        None
    };
    let Some(tool) = tool else {
        println!(
            "SKIPPED {name} (compose validation): neither `docker compose` nor docker-compose installed"
        );
        return;
    };
    let r = run(Command::new(tool[0])
        .args(&tool[1..])
        .arg("-f")
        .arg(&file)
        .args(["config", "-q"]));
    assert!(r.ok, "{} config: {}", tool.join(" "), r.out);
    // ... and it does refuse a broken file.
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("docker-compose.yml");
    std::fs::write(&bad, "services:\n  a:\n    image: x\n    ports: 12\n").expect("write");
    let r = run(Command::new(tool[0])
        .args(&tool[1..])
        .arg("-f")
        .arg(&bad)
        .args(["config", "-q"]));
    assert!(!r.ok, "{} config accepts a broken file", tool.join(" "));
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_healthcheck() {
    let name = "dockerfile_is_multi_stage_non_root_with_healthcheck";
    let path = deploy().join("Dockerfile");
    let text = read(&path);
    // Instructions, with continuation lines joined.
    let joined = text.replace("\\\n", " ");
    let instr: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let from: Vec<&&str> = instr.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(from.len() >= 2, "multi-stage: {from:?}");
    let last_from = instr.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = &instr[last_from..];
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap().trim();
    assert!(uid != "0" && uid != "root", "non-root user, not {uid}");
    let health = runtime
        .iter()
        .find(|l| l.starts_with("HEALTHCHECK "))
        .expect("HEALTHCHECK");
    assert!(health.contains("\"corral\", \"probe\""), "{health}");
    assert!(
        runtime
            .iter()
            .any(|l| l.starts_with("COPY ") && l.ends_with(" /etc/corral/corral.yaml")),
        "configuration at /etc/corral/corral.yaml"
    );
    assert!(
        text.contains("seccomp") && text.contains("memlock"),
        "documents io_uring's needs"
    );
    // COPY sources from the context exist and are not excluded by the
    // Dockerfile's .dockerignore (which allows by `!path`).
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    for l in runtime.iter().chain(instr[..last_from].iter()) {
        let Some(args) = l.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = args.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            if *src == "." {
                continue;
            }
            assert!(root().join(src).exists(), "COPY source {src} exists");
            assert!(
                ignore.lines().any(|i| i.trim() == format!("!{src}")),
                "{src} is let through Dockerfile.dockerignore"
            );
        }
    }
    // Everything cargo needs to build is let through.
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "rust-toolchain.toml",
        "src",
        "bench",
    ] {
        assert!(
            ignore.lines().any(|i| i.trim() == format!("!{needed}")),
            "{needed} is in the build context"
        );
    }
    if have("hadolint", &["--version"]) {
        let r = run(Command::new("hadolint").arg(&path));
        assert!(r.ok, "hadolint:\n{}", r.out);
    } else {
        println!("SKIPPED {name} (lint): hadolint not installed");
    }
}

#[test]
fn containerlab_topology_matches_seed_000_and_its_config() {
    let dir = deploy().join("containerlab");
    let topo = yaml(&dir.join("corral.clab.yml"));
    let nodes = topo["topology"]["nodes"].as_mapping().expect("nodes");
    let addr = |n: &str| {
        topo["topology"]["nodes"][n]["mgmt-ipv4"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        addr("lb").as_deref(),
        Some("172.20.20.3"),
        "seed 000's balancer address"
    );
    // The servers in corral.yaml are the topology's web nodes.
    let config = yaml(&dir.join("corral.yaml"));
    let servers = config["backends"]["apache"]["servers"]
        .as_mapping()
        .expect("servers");
    assert_eq!(servers.len(), 2);
    for (k, v) in servers {
        let name = k.as_str().unwrap();
        let a = v["address"].as_str().unwrap();
        assert_eq!(
            Some(a.trim_end_matches(":80").to_string()),
            addr(name),
            "{name}"
        );
        let cmd = nodes[name]["cmd"].as_str().expect("cmd");
        assert_eq!(cmd, format!("web --bind 0.0.0.0:80 --name {name}"));
    }
    // Bound files exist next to the topology.
    for b in topo["topology"]["nodes"]["lb"]["binds"]
        .as_sequence()
        .expect("binds")
    {
        let src = b.as_str().unwrap().split(':').next().unwrap();
        assert!(dir.join(src).is_file(), "bind source {src}");
    }
    // The host part of the routing is applied, and the README explains it.
    let host = &topo["topology"]["nodes"]["lab-host"];
    assert_eq!(host["kind"].as_str(), Some("host"));
    let exec: Vec<&str> = host["exec"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(exec.iter().any(|e| e.contains("ip_forward=1")));
    assert!(exec.iter().any(|e| e.contains("DOCKER-USER")));
    let readme = read(&dir.join("README.md"));
    for topic in [
        "route",
        "source/destination check",
        "DOCKER-USER",
        "rp_filter",
        "netns-lab.sh",
    ] {
        assert!(readme.contains(topic), "README explains {topic}");
    }
}

#[test]
fn lxd_files_agree_on_seed_002s_containers() {
    let dir = deploy().join("lxd");
    let profile = yaml(&dir.join("profile.yaml"));
    assert_eq!(
        profile["devices"]["eth0"]["nictype"].as_str(),
        Some("macvlan")
    );
    assert_eq!(
        profile["config"]["limits.kernel.memlock"].as_str(),
        Some("unlimited")
    );
    let launch = read(&dir.join("launch.sh"));
    assert!(launch.contains("corral-lan") && profile["name"].as_str() == Some("corral-lan"));
    // The addresses launch.sh gives the web containers are corral.yaml's servers.
    let config = yaml(&dir.join("corral.yaml"));
    for (var, server) in [("WEB1_ADDR", "site1"), ("WEB2_ADDR", "site2")] {
        let default = launch
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=${{{var}:-")))
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or_else(|| panic!("launch.sh sets {var}"));
        for b in ["subdomain1", "subdomain2"] {
            assert_eq!(
                config["backends"][b]["servers"][server]["address"].as_str(),
                Some(format!("{default}:80").as_str()),
                "{b}/{server} is {var}"
            );
        }
    }
    // Files launch.sh pushes exist.
    for f in [
        "cloud-init-web.yaml",
        "cloud-init-proxy.yaml",
        "corral.yaml",
        "profile.yaml",
    ] {
        assert!(launch.contains(f), "launch.sh uses {f}");
        assert!(dir.join(f).is_file());
    }
    assert!(launch.contains("deploy/systemd/corral.service"));
}
