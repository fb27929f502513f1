#!/usr/bin/env bash
# EC2 user data: installs corral as a systemd service on Ubuntu (22.04,
# 24.04) or Amazon Linux 2023, the instances of seeds 000 and 001. Paste it
# as the instance's user data (it runs once, as root, at first boot; output
# in /var/log/cloud-init-output.log), or run it by hand with sudo.
#
# Where the binary comes from, first match wins:
#   CORRAL_BINARY_URL   a prebuilt x86_64/aarch64 Linux binary (e.g. from S3)
#   otherwise           built from CORRAL_GIT at CORRAL_REF with rustup's
#                       toolchain (several minutes on a small instance)
# The systemd unit is the repository's deploy/systemd/corral.service
# (CORRAL_UNIT_URL to fetch it from elsewhere). The configuration below is
# a starting point: edit CONFIG, or replace /etc/corral/corral.yaml later
# and `systemctl reload corral`.
set -euo pipefail

CORRAL_BINARY_URL=${CORRAL_BINARY_URL:-}
CORRAL_UNIT_URL=${CORRAL_UNIT_URL:-}
CORRAL_GIT=${CORRAL_GIT:-https://github.com/corral-lb/corral.git}
CORRAL_REF=${CORRAL_REF:-main}

# Seed 001's layer-4 balancer: each client address stays on one server.
# Change the server addresses to your instances' private addresses.
read -r -d '' CONFIG <<'YAML' || true
global:
  log: stdout
defaults:
  mode: tcp
  timeout: { connect: 5s, client: 60m, server: 60m }
frontends:
  web:
    bind: ["*:80"]
    default_backend: app
backends:
  app:
    balance: source
    servers:
      server1: { address: 10.0.1.10:80, check: true }
      server2: { address: 10.0.1.11:80, check: true }
YAML

log() { echo "corral user-data: $*"; }
die() { log "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (EC2 user data does)"
# shellcheck source=/dev/null
. /etc/os-release
case "${ID:-}" in
ubuntu | debian)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q curl ca-certificates git build-essential
    ;;
amzn | rhel | centos | rocky | almalinux | fedora)
    # curl-minimal on Amazon Linux 2023 already provides curl.
    dnf install -y -q ca-certificates git gcc make || yum install -y -q ca-certificates git gcc make
    command -v curl >/dev/null || dnf install -y -q curl
    ;;
*) die "unsupported distribution '${ID:-unknown}' (Ubuntu and Amazon Linux are)" ;;
esac

# io_uring: kernel 5.8 or later, not disabled.
kernel=$(uname -r)
major=${kernel%%.*}
minor=${kernel#*.}
minor=${minor%%.*}
if ((major < 5 || (major == 5 && minor < 8))); then
    die "kernel $kernel has no usable io_uring (5.8 or later needed; Amazon Linux 2023 and Ubuntu 22.04+ have it)"
fi
if [[ -r /proc/sys/kernel/io_uring_disabled ]] && [[ $(cat /proc/sys/kernel/io_uring_disabled) != 0 ]]; then
    log "io_uring is disabled; enabling it (sysctl kernel.io_uring_disabled=0)"
    echo 'kernel.io_uring_disabled = 0' >/etc/sysctl.d/60-corral-io-uring.conf
    sysctl -q -w kernel.io_uring_disabled=0
fi

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT

unit_src=""
if [[ -n $CORRAL_BINARY_URL ]]; then
    log "downloading corral from $CORRAL_BINARY_URL"
    curl -fsSL --retry 3 -o "$work/corral" "$CORRAL_BINARY_URL"
else
    log "building corral from $CORRAL_GIT ($CORRAL_REF)"
    git clone --depth 1 --branch "$CORRAL_REF" "$CORRAL_GIT" "$work/src"
    export RUSTUP_HOME=$work/rustup CARGO_HOME=$work/cargo
    curl -fsSL --proto '=https' --tlsv1.2 https://sh.rustup.rs | sh -s -- -y -q --profile minimal --default-toolchain none
    # The repository's rust-toolchain.toml picks the version.
    (cd "$work/src" && "$CARGO_HOME/bin/cargo" build --release --locked --bin corral)
    cp "$work/src/target/release/corral" "$work/corral"
    unit_src=$work/src/deploy/systemd/corral.service
fi
if [[ -n $CORRAL_UNIT_URL ]]; then
    curl -fsSL --retry 3 -o "$work/corral.service" "$CORRAL_UNIT_URL"
    unit_src=$work/corral.service
elif [[ -z $unit_src ]]; then
    curl -fsSL --retry 3 -o "$work/corral.service" \
        "https://raw.githubusercontent.com/${CORRAL_GIT#https://github.com/}/$CORRAL_REF/deploy/systemd/corral.service" \
        || die "cannot fetch the systemd unit: set CORRAL_UNIT_URL"
    unit_src=$work/corral.service
fi
install -m 0755 "$work/corral" /usr/local/bin/corral
/usr/local/bin/corral --version

id corral >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin corral
install -d -m 0750 -g corral /etc/corral
if [[ ! -e /etc/corral/corral.yaml ]]; then
    printf '%s\n' "$CONFIG" >/etc/corral/corral.yaml
    chgrp corral /etc/corral/corral.yaml
    chmod 0640 /etc/corral/corral.yaml
fi
/usr/local/bin/corral check -c /etc/corral/corral.yaml

install -m 0644 "$unit_src" /etc/systemd/system/corral.service
systemctl daemon-reload
systemctl enable --now corral
systemctl --no-pager --lines=5 status corral || die "corral did not start: journalctl -u corral"
log "corral is running; configuration in /etc/corral/corral.yaml, logs in journalctl -u corral"
