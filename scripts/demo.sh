#!/usr/bin/env bash
# Install misfin-tui into .venv (only when the lock file or pyproject.toml changed since the
# last install) and open it on the built-in demo profile. No server is needed: the demo
# correspondents run on 127.0.0.1 inside a throwaway folder.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.misfin-tui-installed
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/misfin-tui ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$wanted" > "$stamp"
fi
exec .venv/bin/misfin-tui --demo "$@"
