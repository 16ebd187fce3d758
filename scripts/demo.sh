#!/usr/bin/env bash
# Install misfin-tui into .venv (only when the lock file or pyproject.toml changed since the
# last install, or .venv is missing) and open it on the built-in demo profile. No server is
# needed: the demo correspondents run on 127.0.0.1 inside a throwaway folder.
# The second launch runs no pip at all: it compares a hash of both files with the one stored
# in .venv after the last install that finished.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/.misfin-tui-installed
wanted=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/misfin-tui ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "demo.sh: misfin-tui needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 2
  fi
  echo "Installing misfin-tui into .venv (once; later launches skip this)…"
  rm -f "$stamp"
  "$python" -m venv .venv
  pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
  "${pip[@]}" -r requirements.lock
  "${pip[@]}" --no-deps -e .
  echo "$wanted" > "$stamp"
fi
exec .venv/bin/misfin-tui --demo "$@"
