#!/usr/bin/env bash
# Independent Misfin implementations for the interop tests, each in its own venv under .peers/
# (their pins conflict with ours; see shared/reference/peers.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .peers/titlani/bin/python ]; then
  python3 -m venv .peers/titlani
  .peers/titlani/bin/pip install -q --upgrade pip
  .peers/titlani/bin/pip install -q --ignore-requires-python titlani==0.4.1 'cryptography<47'
fi
