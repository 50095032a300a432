#!/usr/bin/env bash
# make demo-stop: removes the demo app, and stops slipway daemon (with it the router and sshd).
set -uo pipefail
cd "$(dirname "$0")/.."
slipway=/usr/local/bin/slipway
data=${SLIPWAY_DATA:-/var/lib/slipway}
$slipway apps:destroy demo --force || true
$slipway ssh-keys:remove demo >/dev/null 2>&1
$slipway daemon --stop
# From before the daemon: a router the git user ran, an sshd install started.
# sshd's pid file is root's (slipway install keeps it in /run/slipway), nginx's the git user's.
for pid in "$data/nginx/nginx.pid" "/run/slipway/sshd-${1:-2222}.pid"; do
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
done
echo "-----> demo stopped"
