#!/usr/bin/env bash
# make demo-stop: removes the demo app, and stops slipway's router and sshd.
set -uo pipefail
cd "$(dirname "$0")/.."
slipway=/usr/local/bin/slipway
data=${SLIPWAY_DATA:-/var/lib/slipway}
$slipway apps:destroy demo --force || true
$slipway ssh-keys:remove demo >/dev/null 2>&1
for pid in "$data/nginx/nginx.pid" "$data/sshd/sshd.pid"; do
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
done
echo "-----> demo stopped"
