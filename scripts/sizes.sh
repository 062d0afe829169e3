#!/usr/bin/env bash
# Measures chatloop's binary size, printed as Markdown tables (docs/small-boards.md quotes them
# through scripts/figures.sh sizes). Needs the targets and linkers that scripts/cross-test.sh
# installs.
#
#   ./scripts/sizes.sh             per target: release and release-small, server-only and
#                                  with the default features (client, bench, timestamps)
#   ./scripts/sizes.sh --ablation  the server-only aarch64 musl binary under each profile
#                                  setting alone and combined: what each one pays
#
# `release` is measured with `strip = true` added, so the rows compare code, not debug info.
# Builds go to their own target directory and take several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=target/sizes

TARGETS=${CHATLOOP_SIZE_TARGETS:-"aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf aarch64-unknown-linux-gnu x86_64-unknown-linux-musl"}

# size TARGET FEATURE-ARGS CARGO-CONFIG... : builds profile `sizes` (release plus the given
# settings) and prints the stripped size in bytes.
size() {
  local target=$1 features=$2
  shift 2
  local config=(--config 'profile.sizes.inherits="release"' --config 'profile.sizes.debug=false'
    --config 'profile.sizes.strip=true')
  for c in "$@"; do config+=(--config "profile.sizes.$c"); done
  # shellcheck disable=SC2086 # $features is zero or one word
  # A failed build must not print the previous build's size (this runs inside $(…), where
  # set -e does not reach).
  rm -f "$CARGO_TARGET_DIR/$target/sizes/chatloop"
  cargo build -q --profile sizes --bin chatloop --target "$target" $features "${config[@]}" >&2 ||
    { echo "build failed"; return 1; }
  stat -c %s "$CARGO_TARGET_DIR/$target/sizes/chatloop"
}

# The settings of [profile.release-small] in Cargo.toml, as --config overrides.
SMALL=('opt-level="z"' 'lto=true' 'codegen-units=1' 'panic="abort"')

if [ "${1:-}" = "--ablation" ]; then
  t=aarch64-unknown-linux-musl
  echo "| settings (all with strip = true) | bytes | vs release |"
  echo "|---|---:|---:|"
  base=
  row() {
    local name=$1 bytes
    shift
    bytes=$(size "$t" --no-default-features "$@")
    base=${base:-$bytes}
    awk -v n="$name" -v b="$bytes" -v r="$base" 'BEGIN { printf "| %s | %s | %+.1f%% |\n", n, b, (b - r) * 100 / r }'
  }
  row 'release (opt-level 3)'
  row 'opt-level "s"' 'opt-level="s"'
  row 'opt-level "z"' 'opt-level="z"'
  row 'lto = "thin"' 'lto="thin"'
  row 'lto = true (fat)' 'lto=true'
  row 'codegen-units = 1' 'codegen-units=1'
  row 'panic = "abort"' 'panic="abort"'
  row 'lto + codegen-units 1' 'lto=true' 'codegen-units=1'
  row 'lto + codegen-units 1 + abort' 'lto=true' 'codegen-units=1' 'panic="abort"'
  row '"s" + lto + codegen-units 1 + abort' 'opt-level="s"' 'lto=true' 'codegen-units=1' 'panic="abort"'
  row '"z" + lto' 'opt-level="z"' 'lto=true'
  row '"z" + lto + codegen-units 1' 'opt-level="z"' 'lto=true' 'codegen-units=1'
  row '"z" + lto + abort' 'opt-level="z"' 'lto=true' 'panic="abort"'
  row '"z" + lto + codegen-units 1 + abort (release-small)' "${SMALL[@]}"
  exit 0
fi

echo "| target | release, server-only | release-small, server-only | release, default features | release-small, default features |"
echo "|---|---:|---:|---:|---:|"
for t in $TARGETS; do
  printf '| %s | %s | %s | %s | %s |\n' "$t" \
    "$(size "$t" --no-default-features)" \
    "$(size "$t" --no-default-features "${SMALL[@]}")" \
    "$(size "$t" "")" \
    "$(size "$t" "" "${SMALL[@]}")"
done
