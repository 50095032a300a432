#!/usr/bin/env bash
# Checks buildpack.sh (the first-party buildpacks' shared helpers) under `set -euo pipefail`,
# as the buildpacks use it: bash buildpacks/lib/test-buildpack-lib.sh. Exits 1 on any failure.
set -euo pipefail
# shellcheck source=SCRIPTDIR/buildpack.sh
. "$(dirname "$0")/buildpack.sh"

failures=0
check() { # check WHAT EXPECTED ACTUAL
  if [[ "$2" != "$3" ]]; then
    printf 'FAIL: %s\n  expected: %q\n  actual:   %q\n' "$1" "$2" "$3"
    failures=$((failures + 1))
  fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Output: exact bytes, and errors on stderr only.
check "bp_header" "-----> Using Go 1.22" "$(bp_header Using Go 1.22)"
check "bp_detail" "       3 files" "$(bp_detail "3 files")"
check "bp_indent" $'       a\n       \n         b' "$(printf 'a\n\n  b\n' | bp_indent)"
check "bp_error's stdout" "" "$(bp_error "Error: x" 2>/dev/null)"
check "bp_error's stderr" " !     Error: x y" "$(bp_error "Error: x" y 2>&1 >/dev/null)"
# shellcheck disable=SC2317 # the echo must not be reached: bp_fail exits
out=$( (bp_fail "Error: nope"; echo "not reached") 2>"$tmp/err") && status=0 || status=$?
check "bp_fail's status" 1 "$status"
check "bp_fail's stdout" "" "$out"
check "bp_fail's stderr" " !     Error: nope" "$(cat "$tmp/err")"

# Keys: the bytes the buildpacks hashed before (so their caches stay warm): TEXT's line, then
# each existing file; missing files are skipped.
printf 'flask==3.0\n' > "$tmp/requirements.txt"
printf '{"name":"x"}\n' > "$tmp/package.json"
check "bp_cache_key, one file" "$(cat <(echo "3.11.2") "$tmp/requirements.txt" | sha256sum | cut -d' ' -f1)" \
  "$(bp_cache_key "3.11.2" "$tmp/requirements.txt")"
check "bp_cache_key, missing files" \
  "$({ echo "v20.1.0 10.2.0"; cat "$tmp/package.json"; cat "$tmp/package-lock.json" "$tmp/npm-shrinkwrap.json" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)" \
  "$(bp_cache_key "v20.1.0 10.2.0" "$tmp/package.json" "$tmp/package-lock.json" "$tmp/npm-shrinkwrap.json")"
check "bp_cache_key, no file" "$(echo "t" | sha256sum | cut -d' ' -f1)" "$(bp_cache_key t)"
key=$(bp_cache_key "3.11.2" "$tmp/requirements.txt")
check "bp_cache_key, another text" no "$([[ "$(bp_cache_key "3.12.0" "$tmp/requirements.txt")" == "$key" ]] && echo yes || echo no)"

# Hit, save, restore.
hit() { if bp_cache_hit "$@"; then echo hit; else echo miss; fi; }
entry="$tmp/cache/venv"
mkdir -p "$tmp/cache" "$tmp/venv/bin"
echo "python" > "$tmp/venv/bin/python"
chmod 755 "$tmp/venv/bin/python"
ln -s python "$tmp/venv/bin/python3"
check "nothing cached" miss "$(hit "$entry" "$key")"
bp_cache_save "$entry" "$key" "$tmp/venv"
check "saved key" "$key" "$(cat "$entry.key")"
check "saved with KEY" hit "$(hit "$entry" "$key")"
check "another key" miss "$(hit "$entry" "other")"
check "an empty key" miss "$(hit "$entry" "")"
mkdir -p "$tmp/app/venv" && echo stale > "$tmp/app/venv/stale"
bp_cache_restore "$entry" "$tmp/app/venv"
check "restore replaces DEST" "bin" "$(ls "$tmp/app/venv")"
check "restore keeps modes" "-rwxr-xr-x" "$(stat -c %A "$tmp/app/venv/bin/python")"
check "restore keeps symlinks" "python" "$(readlink "$tmp/app/venv/bin/python3")"
bp_cache_restore "$entry" "$tmp/app/fresh"
check "restore into a new DEST" "python" "$(cat "$tmp/app/fresh/bin/python")"
echo "changed" > "$tmp/venv/new"
bp_cache_save "$entry" "key2" "$tmp/venv"
check "save replaces the entry" "hit miss changed" \
  "$(hit "$entry" key2) $(hit "$entry" "$key") $(cat "$entry/new")"
bp_cache_save "$entry" "key3" "$tmp/missing"
check "save without SRC drops the entry" "miss no no" \
  "$(hit "$entry" key3) $([[ -e "$entry" ]] && echo yes || echo no) $([[ -e "$entry.key" ]] && echo yes || echo no)"
rm -rf "$entry" && echo "$key" > "$entry.key"
check "a key without its directory" miss "$(hit "$entry" "$key")"

# Other stacks' runtimes, from the table the build images carry.
printf 'slipway-trixie python 3.13\nslipway-trixie go 1.24\nslipway-bookworm python 3.11\nslipway-other python 3.13\n' \
  > "$tmp/stacks"
py313() { [[ "$1" == 3.13 ]]; }
check "stacks with a version" "slipway-trixie (Python 3.13) or slipway-other (Python 3.13)" \
  "$(SLIPWAY_STACKS_FILE=$tmp/stacks STACK=slipway-bookworm bp_stacks_with python Python py313)"
check "this stack is not named" "slipway-other (Python 3.13)" \
  "$(SLIPWAY_STACKS_FILE=$tmp/stacks STACK=slipway-trixie bp_stacks_with python Python py313)"
check "no stack has it" "" "$(SLIPWAY_STACKS_FILE=$tmp/stacks bp_stacks_with go Go py313)"
check "no table" "" "$(SLIPWAY_STACKS_FILE=$tmp/missing bp_stacks_with go Go py313)"
check "versions" "yes no yes" "$(bp_version_at_least 1.22.3 1.24 && echo yes || echo no) \
$(bp_version_at_least 1.22 1.19 && echo yes || echo no) $(bp_version_at_least 1.24 1.24 && echo yes || echo no)"

if ((failures)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "buildpack.sh: all checks passed"
