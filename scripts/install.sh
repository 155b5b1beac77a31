#!/usr/bin/env bash
# Installs netwarden on a gateway from a release build of this checkout.
#
#   cargo build --release && sudo scripts/install.sh [--prefix /usr] [--no-enable]
#
# Puts in place:
#   /usr/bin/netwarden                             the binary
#   /lib/systemd/system/netwarden.service          the hardened unit (Type=notify, watchdog)
#   /etc/netwarden/netwarden.toml                  the config, only if none exists yet
#   /etc/netwarden/rules.d/*.toml                  detection rules, likewise
#   /etc/netwarden/blocklist.txt                   the blocklist (empty), likewise
#   /etc/logrotate.d/netwarden                     rotation of the alert log, likewise
#   /usr/share/netwarden/dashboards/               Grafana dashboards and provisioning,
#                                                  Prometheus rules and scrape example,
#                                                  Alertmanager example
#   /usr/share/doc/netwarden/README.md
#   /usr/share/doc/netwarden/runbooks/*.md         one runbook per alert (runbook_url)
# then reloads systemd, applies the sysctl, checks the config and enables and starts the
# service (skip that last step with --no-enable). Re-running it upgrades in place; an
# existing config or rule file is never overwritten (the shipped one is written beside
# it with a .dist suffix).
#
# Environment: DESTDIR stages into a directory instead of / (for packaging); nothing is
# started then. NETWARDEN_BINARY installs another build than target/release/netwarden.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr
enable=1
while (($#)); do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --no-enable) enable=0; shift ;;
        -h|--help) sed -n '2,/^set /{/^set /d;p}' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 64 ;;
    esac
done
dest="${DESTDIR:-}"
binary="${NETWARDEN_BINARY:-target/release/netwarden}"
if [[ ! -x "$binary" ]]; then
    echo "$binary not found: run 'cargo build --release' first" >&2
    exit 1
fi

install -D -m 0755 "$binary" "$dest$prefix/bin/netwarden"
# The unit names /usr/bin/netwarden; follow a different prefix.
install -d "$dest/lib/systemd/system"
sed "s#/usr/bin/netwarden#$prefix/bin/netwarden#g" systemd/netwarden.service \
    >"$dest/lib/systemd/system/netwarden.service"
chmod 0644 "$dest/lib/systemd/system/netwarden.service"

install -d -m 0755 "$dest/etc/netwarden"
if [[ -e "$dest/etc/netwarden/netwarden.toml" ]]; then
    install -m 0644 config/netwarden.toml "$dest/etc/netwarden/netwarden.toml.dist"
    echo "kept existing /etc/netwarden/netwarden.toml (new defaults in netwarden.toml.dist)"
else
    install -m 0644 config/netwarden.toml "$dest/etc/netwarden/netwarden.toml"
fi

# The blocklist (rules.d/blocklist.toml reads it): the operator's list, never overwritten.
if [[ -e "$dest/etc/netwarden/blocklist.txt" ]]; then
    install -m 0644 config/blocklist.txt "$dest/etc/netwarden/blocklist.txt.dist"
else
    install -m 0644 config/blocklist.txt "$dest/etc/netwarden/blocklist.txt"
fi

# Detection rules (rules_dir = "rules.d" beside the config): same rule, never overwrite.
install -d -m 0755 "$dest/etc/netwarden/rules.d"
for rules in config/rules.d/*.toml; do
    [[ -e "$rules" ]] || continue
    target="$dest/etc/netwarden/rules.d/$(basename "$rules")"
    if [[ -e "$target" ]]; then
        install -m 0644 "$rules" "$target.dist"
    else
        install -m 0644 "$rules" "$target"
    fi
done

# Rotation of the alert log ([alerting] log_file under /var/log/netwarden): same rule.
install -d -m 0755 "$dest/etc/logrotate.d"
if [[ -e "$dest/etc/logrotate.d/netwarden" ]]; then
    install -m 0644 config/logrotate.d/netwarden "$dest/etc/logrotate.d/netwarden.dist"
else
    install -m 0644 config/logrotate.d/netwarden "$dest/etc/logrotate.d/netwarden"
fi

share="$dest$prefix/share/netwarden/dashboards"
install -d "$share"
cp -r dashboards/. "$share/"
find "$share" -type d -exec chmod 0755 {} +
find "$share" -type f -exec chmod 0644 {} +
install -D -m 0644 README.md "$dest$prefix/share/doc/netwarden/README.md"
install -d "$dest$prefix/share/doc/netwarden/runbooks"
install -m 0644 docs/runbooks/*.md "$dest$prefix/share/doc/netwarden/runbooks/"

if [[ -z "$dest" ]]; then
    systemctl daemon-reload
    "$prefix/bin/netwarden" check-config --config /etc/netwarden/netwarden.toml
    if ((enable)); then
        systemctl enable --now netwarden.service
        systemctl --no-pager status netwarden.service || true
    fi
fi
echo "netwarden installed."
