# shellcheck shell=bash
# The first-party buildpacks' shared helpers. slipway's engine writes this file next to the
# build and points SLIPWAY_BUILDPACK_LIB at it; every bin/ script that prints build output or
# uses the cache sources it first:
#   . "${SLIPWAY_BUILDPACK_LIB:?run this buildpack with slipway}"
# Everything here works under `set -euo pipefail` and defines functions only.

# Output, in Heroku's style: `-----> ` headers, 7-space detail lines, ` !     ` errors.
# Each helper prints its arguments joined by spaces, as one line (as `echo` would).
bp_header() { echo "-----> $*"; }
bp_detail() { echo "       $*"; }
# A command's output as detail lines, line by line as it comes: `cmd 2>&1 | bp_indent`.
bp_indent() { sed -u 's/^/       /'; }
# Errors go to stderr. The build's cause the host reports comes from the engine's result
# (the failing script and its status), not from these lines.
bp_error() { echo " !     $*" >&2; }
# The build cannot go on: one error line, then exit 1 (for a message of several lines, call
# bp_error for the first ones).
bp_fail() {
  bp_error "$@"
  exit 1
}

# A keyed cache: a directory the build made (a virtualenv, node_modules) is kept in CACHE_DIR
# as ENTRY (e.g. "$cache_dir/venv"), with ENTRY.key naming what made it. When the next build
# computes the same key, the directory is copied back instead of being made again.
#
#   key=$(bp_cache_key "$runtime_version" requirements.txt)
#   if bp_cache_hit "$cache_dir/venv" "$key"; then
#     bp_cache_restore "$cache_dir/venv" "$venv"
#   else
#     ...make "$venv"...
#     bp_cache_save "$cache_dir/venv" "$key" "$venv"
#   fi

# bp_cache_key TEXT [FILE...]: prints the sha256 of TEXT and a newline, followed by the
# contents of each FILE that exists (missing ones are skipped).
bp_cache_key() {
  local text=$1 file present=()
  shift
  for file in "$@"; do
    if [[ -f "$file" ]]; then present+=("$file"); fi
  done
  {
    printf '%s\n' "$text"
    if ((${#present[@]})); then cat "${present[@]}"; fi
  } | sha256sum | cut -d' ' -f1
}

# bp_cache_hit ENTRY KEY: whether ENTRY is a cached directory saved with KEY (never with an
# empty KEY).
bp_cache_hit() {
  local entry=$1 key=$2
  [[ -n "$key" && -d "$entry" && "$(cat "$entry.key" 2>/dev/null)" == "$key" ]]
}

# bp_cache_restore ENTRY DEST: replaces DEST with a copy of the cached ENTRY.
bp_cache_restore() {
  local entry=$1 dest=$2
  rm -rf "$dest" && cp -a "$entry" "$dest"
}

# bp_cache_save ENTRY KEY SRC: replaces ENTRY with a copy of the directory SRC, saved with KEY.
# Without SRC, the old entry is only dropped. A copy that fails (a full cache volume) leaves no
# key, so the next build misses the cache instead of failing.
bp_cache_save() {
  local entry=$1 key=$2 src=$3
  rm -rf "$entry" "$entry.key"
  [[ -d "$src" ]] || return 0
  if cp -a "$src" "$entry"; then echo "$key" > "$entry.key"; fi
}

# Other stacks: which of them has a runtime version this build's stack lacks. Every build image
# carries the table of every stack's runtimes (`NAME LANGUAGE MAJOR.MINOR` lines) at
# SLIPWAY_STACKS_FILE (default /usr/share/slipway/stacks).
#
# bp_stacks_with LANGUAGE LABEL CHECK...: prints "NAME (LABEL VERSION)" for each stack but
# $STACK whose LANGUAGE version passes `CHECK... VERSION`, joined by " or " (nothing when none).
#   py_ok() { [[ "$1" == 3.13 ]]; }; other=$(bp_stacks_with python Python py_ok)
bp_stacks_with() {
  local lang=$1 label=$2 name l v found=""
  shift 2
  [[ -r "${SLIPWAY_STACKS_FILE:-/usr/share/slipway/stacks}" ]] || return 0
  while read -r name l v; do
    [[ "$l" == "$lang" && "$name" != "${STACK:-}" ]] || continue
    if "$@" "$v"; then found+="${found:+ or }$name ($label $v)"; fi
  done <"${SLIPWAY_STACKS_FILE:-/usr/share/slipway/stacks}"
  printf '%s' "$found"
}

# bp_version_at_least WANTED VERSION: whether VERSION is at least WANTED, compared as versions
# (1.24 is at least 1.22.3; 1.19 is not at least 1.22).
bp_version_at_least() {
  [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" == "$2" ]]
}
