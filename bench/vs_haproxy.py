#!/usr/bin/env python3
"""One proxy worker, corral against HAProxy on the same backend and the
same core, in one run, alternating A B A B; TCP or HTTP mode.

    python3 bench/vs_haproxy.py [--mode tcp|http] [--seconds 10] [--rounds 3] [--connections 50]

Needs: wrk, nginx (the backend) and haproxy on PATH (Debian: apt-get
install wrk nginx-light haproxy). The proxies run pinned to core 0; nginx
and wrk share core 1. Reports the median of each figure and corral's ratio
to HAProxy. CPU time is read from /proc/<pid>/stat of the proxy process.

This is the stop-gap for the foundation issue; `bench/compare` (issue 4)
supersedes it.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PROXY_CPU = "0"
LOAD_CPU = "1"
BACKEND_PORT = 18081
CORRAL_PORT = 18082
HAPROXY_PORT = 18083
TICKS = os.sysconf("SC_CLK_TCK")


def need(tool):
    path = shutil.which(tool) or (os.path.exists(f"/usr/sbin/{tool}") and f"/usr/sbin/{tool}")
    if not path:
        sys.exit(f"{tool} not found: apt-get install wrk nginx-light haproxy")
    return path


def wait_port(port, timeout=10):
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def wrk(port, seconds, connections):
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         f"http://127.0.0.1:{port}/"],
        check=True, capture_output=True, text=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    return {
        "requests": requests, "rps": rps, "p50_ms": pct(50), "p99_ms": pct(99),
        "errors": (errors.group(1) if errors else "") + (f" non2xx {non2xx.group(1)}" if non2xx else ""),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--mode", choices=["tcp", "http"], default="tcp")
    args = ap.parse_args()
    for t in ("wrk", "nginx", "haproxy", "taskset"):
        need(t)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=root, check=True)
    corral_bin = os.path.join(root, "target", "release", "corral")
    work = tempfile.mkdtemp(prefix="corral-bench-")
    procs = []
    try:
        # Backend: nginx answering a small response, pinned with the load generator.
        with open(f"{work}/nginx.conf", "w") as f:
            f.write(f"""worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  server {{
    listen 127.0.0.1:{BACKEND_PORT} backlog=4096;
    location / {{ return 200 "hello from nginx\\n"; }}
  }}
}}
""")
        procs.append(subprocess.Popen(["taskset", "-c", LOAD_CPU, need("nginx"), "-c", f"{work}/nginx.conf",
                                       "-p", work], stderr=subprocess.DEVNULL))
        wait_port(BACKEND_PORT)

        with open(f"{work}/corral.yaml", "w") as f:
            f.write(f"""global: {{ workers: 1, maxconn: 5000 }}
defaults:
  mode: {args.mode}
  timeout: {{ connect: 5s, client: 50s, server: 50s }}
frontends:
  fe: {{ bind: "127.0.0.1:{CORRAL_PORT}", default_backend: be }}
backends:
  be:
    servers:
      nginx: {{ address: "127.0.0.1:{BACKEND_PORT}" }}
""")
        # corral pins its one worker to the first core it may use: core 0.
        corral = subprocess.Popen(["taskset", "-c", PROXY_CPU, corral_bin, "run", "-c", f"{work}/corral.yaml"],
                                  stderr=subprocess.DEVNULL)
        procs.append(corral)

        with open(f"{work}/haproxy.cfg", "w") as f:
            f.write(f"""global
    nbthread 1
    cpu-map 1/1 {PROXY_CPU}
    maxconn 5000
defaults
    mode {args.mode}
    timeout connect 5s
    timeout client 50s
    timeout server 50s
frontend fe
    bind 127.0.0.1:{HAPROXY_PORT}
    default_backend be
backend be
    server nginx 127.0.0.1:{BACKEND_PORT}
""")
        haproxy = subprocess.Popen(["taskset", "-c", PROXY_CPU, need("haproxy"), "-f", f"{work}/haproxy.cfg"],
                                   stderr=subprocess.DEVNULL)
        procs.append(haproxy)
        wait_port(CORRAL_PORT)
        wait_port(HAPROXY_PORT)

        results = {"corral": [], "haproxy": []}
        for name, port in (("corral", CORRAL_PORT), ("haproxy", HAPROXY_PORT)):
            wrk(port, 2, args.connections)  # warm-up
        for r in range(args.rounds):
            for name, proc, port in (("corral", corral, CORRAL_PORT), ("haproxy", haproxy, HAPROXY_PORT)):
                before = cpu_seconds(proc.pid)
                res = wrk(port, args.seconds, args.connections)
                res["cpu_per_100k"] = (cpu_seconds(proc.pid) - before) / res["requests"] * 100_000
                results[name].append(res)
                print(f"round {r + 1} {name:8} {res['rps']:>10.0f} req/s  cpu/100k {res['cpu_per_100k']:.3f}s  "
                      f"p50 {res['p50_ms']:.3f}ms p99 {res['p99_ms']:.3f}ms {res['errors']}", file=sys.stderr)

        def med(name, key):
            return statistics.median(x[key] for x in results[name])

        print(f"\n{args.mode.upper()} mode, 1 proxy worker on core {PROXY_CPU}; nginx backend and wrk -t1 -c{args.connections} on "
              f"core {LOAD_CPU}; {args.rounds} rounds of {args.seconds}s, alternating; medians.")
        print("| proxy | requests/s | CPU s per 100k req | p50 ms | p99 ms |")
        print("|---|---|---|---|---|")
        for name in ("corral", "haproxy"):
            print(f"| {name} | {med(name, 'rps'):.0f} | {med(name, 'cpu_per_100k'):.3f} | "
                  f"{med(name, 'p50_ms'):.3f} | {med(name, 'p99_ms'):.3f} |")
        print(f"| corral / haproxy | {med('corral', 'rps') / med('haproxy', 'rps'):.2f} | "
              f"{med('corral', 'cpu_per_100k') / med('haproxy', 'cpu_per_100k'):.2f} | "
              f"{med('corral', 'p50_ms') / med('haproxy', 'p50_ms'):.2f} | "
              f"{med('corral', 'p99_ms') / med('haproxy', 'p99_ms'):.2f} |")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
