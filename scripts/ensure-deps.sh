#!/usr/bin/env bash
# Installs what building and testing slipway needs, when it is missing (Debian/Ubuntu, as root).
set -euo pipefail
need=()
command -v git >/dev/null || need+=(git)
command -v python3 >/dev/null || need+=(python3)
command -v bash >/dev/null || need+=(bash)
command -v tar >/dev/null || need+=(tar)
command -v pigz >/dev/null || need+=(pigz)
command -v curl >/dev/null || need+=(curl)
command -v cc >/dev/null || need+=(build-essential)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  echo "-----> Installing ${need[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo " !     cargo is missing: install a Rust toolchain (rustup, or apt-get install cargo)" >&2
  exit 1
fi
