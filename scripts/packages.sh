# shellcheck shell=bash
# The Debian packages the tests install, and the one function that installs them. Sourced by
# setup-test-deps.sh, cross-test.sh and check-fresh.sh, so that what the tests install and what
# the fresh-machine check purges are one list.
#
# Every package a build or a test uses is named here, even when another package would pull it
# in as a Recommends: apt-get runs with --no-install-recommends, so a package not named is a
# package not installed. (The ARM cross compilers, for example, only *recommend* the C
# libraries they link against.)

# ARM cross builds and their tests under emulation (scripts/cross-test.sh). glibc targets link
# with Debian's cross gcc against the cross C library; qemu-user runs the binaries.
CROSS_PACKAGES=(
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
  qemu-user
)
# The browser test (tests/browser.rs): Debian's Chromium, with a font for the page's text.
BROWSER_PACKAGES=(chromium fonts-liberation)
# The multi-node tests (tests/redis.rs start their own redis-server on a free port).
REDIS_PACKAGES=(redis-server)
# The peers benches/compare.sh measures chatloop against (benches/peers/setup.sh): Qt's
# simplechat example is rebuilt from the sources Debian ships, with Debian's Qt and compiler.
BENCH_PEER_PACKAGES=(qtbase5-dev libqt5websockets5-dev qt5-qmake qt5-qmake-bin make g++)
# Node and npm (Node `ws`, playwright-core) and Python's venv (Python `websockets`) are part
# of the machine image; these are installed only where a machine lacks them (see
# ensure_node_and_venv).
NODE_PACKAGES=(nodejs npm)
VENV_PACKAGES=(python3-venv)

# Everything the fresh-machine check removes before it runs CI (scripts/check-fresh.sh).
TEST_PACKAGES=("${CROSS_PACKAGES[@]}" "${BROWSER_PACKAGES[@]}" "${REDIS_PACKAGES[@]}")

# True when dpkg has `$1` fully installed (not merely known, half-configured or removed).
package_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# Installs every named package that is not installed, without recommends, then checks again.
# Fails (exit 1) if apt-get is missing, we are not root and have no sudo, or a package is
# still missing afterwards: a test that needs it must not run without it.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    package_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the tests need ${missing[*]}, and there is no apt-get to install them" >&2
    return 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "error: the tests need ${missing[*]}; not root and no sudo to install them" >&2
      return 1
    fi
    sudo="sudo -n"
  fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  for p in "${missing[@]}"; do
    if ! package_installed "$p"; then
      echo "error: $p is still not installed after apt-get install" >&2
      return 1
    fi
  done
}

# Node with npm, and a Python 3 that can make a venv with pip in it. Checked by what the tests
# run rather than by package name: the image's Node comes from NodeSource (npm inside the
# nodejs package) and its Python from pyenv.
ensure_node_and_venv() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    ensure_packages "${NODE_PACKAGES[@]}"
  fi
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    ensure_packages "${VENV_PACKAGES[@]}"
  fi
}
