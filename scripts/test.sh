#!/usr/bin/env bash
# Install the project with its test extras (and the independent Misfin peers the interop tests
# talk to, each in a venv of its own), then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
bash scripts/install-peers.sh
.venv/bin/ruff check misfin_tui tests bench scripts
.venv/bin/python -m pytest -q "$@"
