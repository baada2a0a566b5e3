#!/usr/bin/env bash
# Checks systemd/slurm-usage.service: `systemd-analyze verify` on a copy whose ExecStart
# points at a built binary (verify insists that the program exists), plus the directives
# the daemon relies on. Exits non-zero on any problem.
#
#   systemd/verify.sh [path/to/slurm-usage]
#
# Needs systemd-analyze (Debian/Ubuntu: apt-get install systemd). No running systemd needed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
unit="$here/slurm-usage.service"
bin="${1:-}"
if [ -z "$bin" ]; then
    for candidate in "$here/../target/release/slurm-usage" "$here/../target/debug/slurm-usage" /usr/bin/slurm-usage; do
        if [ -x "$candidate" ]; then bin="$candidate"; break; fi
    done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "verify.sh: no slurm-usage binary found (run cargo build, or pass its path)" >&2
    exit 2
fi
if ! command -v systemd-analyze >/dev/null; then
    echo "verify.sh: systemd-analyze not found (hint: apt-get install systemd)" >&2
    exit 2
fi
bin="$(realpath "$bin")"

fail=0
# The contract of the unit (docs/daemon.md); a missing line is a failure.
for want in \
    '^Type=notify$' \
    '^ExecStart=/usr/bin/slurm-usage daemon$' \
    '^ExecReload=/bin/kill -HUP \$MAINPID$' \
    '^WatchdogSec=' \
    '^Restart=on-failure$' \
    '^User=slurm-usage$' \
    '^Group=slurm-usage$' \
    '^StateDirectory=slurm-usage$' \
    '^StateDirectoryMode=0750$' \
    '^NoNewPrivileges=yes$' \
    '^ProtectSystem=strict$' \
    '^ProtectHome=yes$' \
    '^PrivateTmp=yes$' \
    '^ReadWritePaths=/var/lib/slurm-usage$' \
    '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$'; do
    if ! grep -Eq "$want" "$unit"; then
        echo "verify.sh: $unit lacks a line matching $want" >&2
        fail=1
    fi
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=/usr/bin/slurm-usage #ExecStart=$bin #" "$unit" >"$tmp/slurm-usage.service"
status=0
out="$(systemd-analyze verify "$tmp/slurm-usage.service" 2>&1)" || status=$?
# verify exits 0 for unknown keys and unparsable values (systemd would ignore those
# lines at run time), so any message about our unit counts as a failure too.
if [ "$status" -ne 0 ] || grep -q "slurm-usage.service" <<<"$out"; then
    echo "verify.sh: systemd-analyze verify (exit $status) reports:" >&2
    echo "$out" >&2
    fail=1
elif [ -n "$out" ]; then
    # Messages about other units (munge.service missing on a build machine, ...) are noise.
    echo "verify.sh: note, not about our unit:" >&2
    echo "$out" >&2
fi

if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "systemd/slurm-usage.service: ok (systemd-analyze verify with ExecStart=$bin)"
