#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, virtual environment, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v /usr/sbin/dovecot >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    echo "Installing dovecot-imapd (real IMAP server for the integration tests)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq dovecot-imapd >/dev/null
  else
    echo "dovecot-imapd is missing and we are not root: IMAP integration tests will be skipped."
  fi
fi
# systemd-analyze checks the unit in deploy/ (tests/ops/test_systemd.py); nothing is started with it.
if ! command -v systemd-analyze >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  echo "Installing systemd (systemd-analyze verify for deploy/sportello.service)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
# The Debian package starts a system-wide Dovecot we do not use: tests start their own.
if command -v systemctl >/dev/null 2>&1; then systemctl stop dovecot >/dev/null 2>&1 || true; fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v -i -E "warning|^\s*$|!!|\*\*\*" || true
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
