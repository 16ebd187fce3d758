#!/usr/bin/env bash
# Install misfin-tui into .venv and open it on the built-in demo profile (no server needed:
# the demo correspondents run on 127.0.0.1 inside a throwaway folder).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e .
exec .venv/bin/misfin-tui --demo "$@"
