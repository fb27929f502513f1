#!/usr/bin/env bash
# Seed 002 in LXD with corral: creates web1, web2 (corral web) and proxyha
# (corral, routing by Host header) on the LAN through the corral-lan profile
# (macvlan), with the seed's static addresses, then checks the balancer
# answers. Run on the LXD host from anywhere in the repository checkout,
# after `cargo build --release`:
#
#   PARENT=eno1 GATEWAY=192.168.1.1 deploy/lxd/launch.sh
#   deploy/lxd/launch.sh delete        # remove the three containers
#
# Files pushed before the first boot (nothing is downloaded inside the
# containers): the corral binary, and on proxyha deploy/systemd/corral.service
# and deploy/lxd/corral.yaml (edit the server addresses there if you change
# them here).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
IMAGE=${IMAGE:-images:debian/12/cloud}
PARENT=${PARENT:-eno1}
PREFIX_LEN=${PREFIX_LEN:-24}
GATEWAY=${GATEWAY:-192.168.1.1}
DNS=${DNS:-$GATEWAY}
WEB1_ADDR=${WEB1_ADDR:-192.168.1.150}
WEB2_ADDR=${WEB2_ADDR:-192.168.1.101}
PROXY_ADDR=${PROXY_ADDR:-192.168.1.149}
# The seed also exposes proxyha's port 80 on the LXD host's own addresses
# (an LXD proxy device): with macvlan, the host itself cannot reach its
# containers otherwise. Empty: no proxy device.
HOST_PORT=${HOST_PORT-80}
CORRAL_BIN=${CORRAL_BIN:-$root/target/release/corral}
UNIT=$root/deploy/systemd/corral.service
CONTAINERS=(web1 web2 proxyha)

die() { echo "lxd/launch.sh: $*" >&2; exit 1; }

network_config() { # address
    cat <<NET
version: 2
ethernets:
  eth0:
    addresses: [$1/$PREFIX_LEN]
    routes: [{ to: default, via: $GATEWAY }]
    nameservers: { addresses: [$DNS] }
NET
}

if [[ ${1:-} == delete ]]; then
    for c in "${CONTAINERS[@]}"; do lxc delete --force "$c" 2>/dev/null || true; done
    exit 0
fi

command -v lxc >/dev/null || die "lxc not found (install LXD first)"
[[ -x $CORRAL_BIN ]] || die "no corral binary at $CORRAL_BIN (cargo build --release, or set CORRAL_BIN)"
[[ -f $UNIT ]] || die "no systemd unit at $UNIT"
"$CORRAL_BIN" check -c "$here/corral.yaml" >/dev/null || die "deploy/lxd/corral.yaml is not valid"

lxc profile show corral-lan >/dev/null 2>&1 || lxc profile create corral-lan
sed "s/^    parent: .*/    parent: $PARENT/" "$here/profile.yaml" | lxc profile edit corral-lan

create() { # name address user-data
    lxc init "$IMAGE" "$1" --profile default --profile corral-lan \
        --config cloud-init.user-data="$(cat "$3")" \
        --config cloud-init.network-config="$(network_config "$2")"
    lxc file push --mode 0755 --create-dirs "$CORRAL_BIN" "$1/usr/local/bin/corral"
}
create web1 "$WEB1_ADDR" "$here/cloud-init-web.yaml"
create web2 "$WEB2_ADDR" "$here/cloud-init-web.yaml"
create proxyha "$PROXY_ADDR" "$here/cloud-init-proxy.yaml"
lxc file push --mode 0644 "$UNIT" proxyha/etc/systemd/system/corral.service
lxc file push --mode 0640 --create-dirs "$here/corral.yaml" proxyha/etc/corral/corral.yaml
if [[ -n $HOST_PORT ]]; then
    lxc config device add proxyha http proxy "listen=tcp:0.0.0.0:$HOST_PORT" connect=tcp:127.0.0.1:80
fi

for c in "${CONTAINERS[@]}"; do lxc start "$c"; done
for c in "${CONTAINERS[@]}"; do
    timeout 300 lxc exec "$c" -- cloud-init status --wait >/dev/null \
        || die "$c: cloud-init did not finish (lxc exec $c -- cloud-init status --long)"
done

# The balancer answers for both sites, alternating between the servers.
for site in site1 site2; do
    ok=0
    for _ in $(seq 1 30); do
        if lxc exec proxyha -- corral probe --count 2 --host "$site.testdomain.com" 127.0.0.1:80/; then
            ok=1
            break
        fi
        sleep 1
    done
    ((ok)) || die "proxyha does not answer for $site (lxc exec proxyha -- journalctl -u corral)"
done
echo "lxd/launch.sh: web1 $WEB1_ADDR, web2 $WEB2_ADDR, proxyha $PROXY_ADDR are up; try"
echo "  curl -H 'Host: site1.testdomain.com' http://$PROXY_ADDR/"
