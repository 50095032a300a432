#!/usr/bin/env bash
# make demo: builds fixtures/static/static-site into a slug, starts it on 127.0.0.1:PORT in the
# background, waits until it answers, and prints its URL. `make demo-stop` stops it.
set -euo pipefail
port=${1:-5055}
cd "$(dirname "$0")/.."
mkdir -p .demo
if [ -f .demo/pid ] && kill -0 "$(cat .demo/pid)" 2>/dev/null; then
  kill "$(cat .demo/pid)"; sleep 0.5
fi
./target/release/slipway build fixtures/static/static-site -o .demo/static-site.slug.tgz
./target/release/slipway slug inspect .demo/static-site.slug.tgz
setsid ./target/release/slipway start .demo/static-site.slug.tgz web --port "$port" >.demo/app.log 2>&1 < /dev/null &
echo $! > .demo/pid
for _ in $(seq 1 100); do
  if body=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null); then
    echo "-----> static-site is up at http://127.0.0.1:$port/ (it answers: $body)"
    echo "       Logs: .demo/app.log. Stop it with: make demo-stop"
    exit 0
  fi
  sleep 0.1
done
echo " !     the app did not answer on port $port; see .demo/app.log" >&2
exit 1
