#!/usr/bin/env bash
# Installs what the tests need beyond Rust, idempotently; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
