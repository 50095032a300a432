# shellcheck shell=bash
# The first-party buildpacks' shared helpers. slipway's engine writes this file next to the
# build and points SLIPWAY_BUILDPACK_LIB at it; every bin/ script sources it first:
#   . "${SLIPWAY_BUILDPACK_LIB:?run this buildpack with slipway}"

# Output, in Heroku's style: `-----> ` headers, 7-space detail lines, ` !     ` errors.
bp_header() { echo "-----> $*"; }
bp_detail() { echo "       $*"; }
bp_error() { echo " !     $*" >&2; }
