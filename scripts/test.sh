#!/usr/bin/env bash
# Install exactly what CI tested (requirements-test.lock, then the project itself) and the
# independent Misfin peers the interop tests talk to (each in a venv of its own), then run the
# checks (ruff, mypy --strict, import-linter contracts) and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -r requirements-test.lock
.venv/bin/pip install -q --no-deps -e .
bash scripts/install-peers.sh
.venv/bin/ruff check misfin_tui tests bench scripts
.venv/bin/ruff format --check misfin_tui tests bench scripts
.venv/bin/mypy --strict misfin_tui
.venv/bin/lint-imports
.venv/bin/python -m pytest -q "$@"
