#!/usr/bin/env bash
# The main job: install carpctl and run the embedded-engine lab demo — a
# two-node CARP cluster built from network namespaces on this machine:
# election, a crash of the master, the takeover, the return, a graceful stop.
# Needs root (namespaces, raw sockets). Everything it creates is removed.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tools/setup.sh
. tools/setup.sh
setup_debian_packages python3-venv iproute2
setup_venv

exec .venv/bin/carpctl lab demo
