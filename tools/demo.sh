#!/usr/bin/env bash
# The main job, for now: install carpctl and let it decode and verify real
# CARP captures from ucarp (the golden vectors), then show what a wrong
# password looks like. It becomes the embedded-engine lab demo later.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=tools/setup.sh
. tools/setup.sh
setup_debian_packages python3-venv
setup_venv

carpctl=.venv/bin/carpctl
vectors=tests/vectors
step() { printf '\n\033[1m== %s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}" || echo "(exit $?)"; }

step "A ucarp pair: B master alone, A preempts, A stops, B takes over" \
    "$carpctl" inspect "$vectors/s4_pair_preempt_failover.pcap" --pass pairpass --addr 192.0.2.107
step "The same capture with the wrong password: every HMAC fails, exit 1" \
    "$carpctl" inspect "$vectors/s4_pair_preempt_failover.pcap" --pass wrong --addr 192.0.2.107
step "One advertisement as JSON" \
    bash -c "$carpctl inspect --json $vectors/s1_vhid1_secret.pcap --pass secret --addr 192.0.2.100 | head -n 1"
