#!/usr/bin/env bash
# make demo: the whole workflow on this machine. Sets up the git user `slipway`, an sshd of
# slipway's own on 127.0.0.1:SSH_PORT (throwaway host key) and `slipway daemon` (which runs the
# router and sshd, restores apps and runs cron tasks), adds a generated key, pushes
# fixtures/python/flask with real git, and prints the URL that answers. `make demo-stop` undoes it.
set -euo pipefail
router_port=${1:-8080}
ssh_port=${2:-2222}
cd "$(dirname "$0")/.."
root=$PWD
if [ "$(id -u)" -ne 0 ]; then
  echo " !     make demo sets up a system user and sshd: run it as root" >&2
  exit 1
fi
# Installed where the git user (and sshd's forced command) can run it.
install -m 0755 target/release/slipway /usr/local/bin/slipway
slipway=/usr/local/bin/slipway
mkdir -p .demo
# A daemon of an earlier build makes way for this one (the apps keep running meanwhile).
"$slipway" daemon --stop >/dev/null
"$slipway" install --sshd-port "$ssh_port"
"$slipway" --router-listen "127.0.0.1:$router_port" domains:set-global slipway.localhost >/dev/null
[ -f .demo/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -C demo -f .demo/id_ed25519
"$slipway" ssh-keys:remove demo >/dev/null 2>&1 || true
"$slipway" ssh-keys:add demo .demo/id_ed25519.pub

rm -rf .demo/app && cp -r fixtures/python/flask .demo/app
cd .demo/app
git init -q -b main
git add -A
git -c user.name=demo -c user.email=demo@example.test commit -qm "demo app"
git remote add slipway "slipway@127.0.0.1:demo"
export GIT_SSH_COMMAND="ssh -i $root/.demo/id_ed25519 -p $ssh_port -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
git push --force slipway main  # a fresh repo each run
body=$(curl -fsS -H "Host: demo.slipway.localhost" "http://127.0.0.1:$router_port/")
echo "-----> demo is up at http://demo.slipway.localhost:$router_port/ (it answers: $body)"
echo "       curl -H 'Host: demo.slipway.localhost' http://127.0.0.1:$router_port/"
echo "       Push changes from .demo/app with: GIT_SSH_COMMAND=\"$GIT_SSH_COMMAND\" git push slipway main"
echo "       What runs (daemon, router, sshd, apps, cron tasks): $slipway report"
echo "       Stop it with: make demo-stop"
