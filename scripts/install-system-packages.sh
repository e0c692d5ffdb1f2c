#!/usr/bin/env bash
# Install the Debian packages the test suite needs, if any is missing (idempotent, quiet when all are present).
#
#   chromium            /usr/bin/chromium, driven by Playwright in tests/browser (never `playwright install`)
#   fonts-dejavu-core   readable text in browser screenshots
#   fonts-liberation    metric-compatible Arial/Times/Courier for the browser's default faces
#   postgresql          server binaries in /usr/lib/postgresql/<ver>/bin, for the throwaway test cluster
#                       (tests/support/postgres.py) and the `postgres` OS user it runs as when we are root
#   make                `make test` is the entry point of CI
#
# Works as root with no standard input; as another user it uses sudo when it can, else says what to install.
set -euo pipefail

PACKAGES=(chromium fonts-dejavu-core fonts-liberation postgresql make)

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-system-packages: missing Debian packages: ${missing[*]}" >&2
    echo "install them as root:  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

echo "install-system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package lists may be absent or stale on a fresh machine: refresh them once, before installing.
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" </dev/null >/dev/null

still_missing=()
for package in "${missing[@]}"; do
    installed "$package" || still_missing+=("$package")
done
if [ "${#still_missing[@]}" -ne 0 ]; then
    echo "install-system-packages: failed to install: ${still_missing[*]}" >&2
    exit 1
fi
echo "install-system-packages: done" >&2
