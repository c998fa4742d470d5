#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine (root),
# then lint, type-check and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tools/setup.sh
. tools/setup.sh
setup_debian_packages ucarp tcpdump tshark iproute2 python3-venv procps util-linux systemd
setup_venv test

.venv/bin/ruff check carpctl tests tools
.venv/bin/ruff format --check carpctl tests tools
.venv/bin/mypy carpctl
.venv/bin/python -m pytest "$@"
