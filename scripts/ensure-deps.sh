#!/usr/bin/env bash
# Installs and starts what building and testing slipway needs, when it is missing
# (Debian/Ubuntu, as root or with sudo): tools, the Docker engine, debootstrap, musl-tools,
# nginx, sshd, and pebble (an ACME test server).
set -euo pipefail
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

need=()
command -v git >/dev/null || need+=(git)
command -v python3 >/dev/null || need+=(python3)
command -v tar >/dev/null || need+=(tar)
command -v pigz >/dev/null || need+=(pigz)
command -v curl >/dev/null || need+=(curl)
command -v cc >/dev/null || need+=(build-essential)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v dockerd >/dev/null || need+=(docker.io)
# the local registry of a swarm (slipway daemon runs it once an app is on swarm)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v nsenter >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v openssl >/dev/null || need+=(openssl)
# The HTTPS tests' ACME server and its DNS (pebble ships pebble-challtestsrv too).
command -v pebble-challtestsrv >/dev/null || need+=(pebble)
if [ ${#need[@]} -gt 0 ]; then
  echo "-----> Installing ${need[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo " !     cargo is missing: install a Rust toolchain (rustup, or apt-get install cargo)" >&2
  exit 1
fi

# The Docker engine: start it when it does not answer.
if ! docker info >/dev/null 2>&1; then
  echo "-----> Starting the Docker engine"
  $sudo_cmd mkdir -p /var/log
  $sudo_cmd setsid dockerd >/var/log/slipway-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo " !     dockerd did not start; see /var/log/slipway-dockerd.log" >&2
    tail -n 20 /var/log/slipway-dockerd.log >&2 || true
    exit 1
  fi
fi
