#!/usr/bin/env bash
# make demo: builds fixtures/python/flask in a build-image container (dependencies from PyPI),
# makes its release image, runs it with its port published on 127.0.0.1:PORT, waits until it
# answers, and prints its URL. `make demo-stop` stops it.
set -euo pipefail
port=${1:-5055}
cd "$(dirname "$0")/.."
slipway=./target/release/slipway
docker rm -f $(docker ps -aq --filter label=io.slipway.app=demo) >/dev/null 2>&1 || true
mkdir -p .demo
$slipway build fixtures/python/flask --app demo -o .demo/demo.slug.tgz
$slipway slug inspect .demo/demo.slug.tgz
$slipway run-image slipway-app/demo:latest web --port "$port" --detach >/dev/null
for _ in $(seq 1 100); do
  if body=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null); then
    echo "-----> demo (fixtures/python/flask) is up at http://127.0.0.1:$port/ (it answers: $body)"
    echo "       Stop it with: make demo-stop"
    exit 0
  fi
  sleep 0.1
done
echo " !     the app did not answer on port $port; see: docker logs \$(docker ps -q --filter label=io.slipway.app=demo)" >&2
exit 1
