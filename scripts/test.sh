#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine, as root (the live-capture tests create
# network namespaces). Installs what the tests need when it is missing, then runs
# formatting, lints, unit/integration/property tests and doctests of every workspace member.
#
#   scripts/test.sh
#
# Environment: NETWARDEN_PCAPS (default ../shared/pcaps) points at the public captures.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v capinfos >/dev/null 2>&1 || need+=(wireshark-common)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# Operations tests: systemd-analyze, promtool + prometheus, amtool.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v amtool >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[[ -x /usr/bin/prometheus-alertmanager ]] || need+=(prometheus-alertmanager)
# Live tests send captures with tcpreplay (several capture workers judged as one).
command -v tcpreplay >/dev/null 2>&1 || need+=(tcpreplay)
# The alert log's rotation test runs the shipped logrotate snippet.
command -v logrotate >/dev/null 2>&1 || need+=(logrotate)
if ((${#need[@]})); then
    echo "Installing test dependencies: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo nextest run --workspace --no-fail-fast --release
cargo test --workspace --doc --release
