#!/usr/bin/env bash
# Independent Misfin implementations for the interop tests (titlani, GmCapsule), each in its own venv under .peers/
# (their pins conflict with ours; see shared/reference/peers.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .peers/titlani/bin/python ]; then
  python3 -m venv .peers/titlani
  .peers/titlani/bin/pip install -q --upgrade pip
  .peers/titlani/bin/pip install -q --ignore-requires-python titlani==0.4.1 'cryptography<47'
fi
if [ ! -x .peers/gmcapsule/bin/gmcapsuled ]; then
  python3 -m venv .peers/gmcapsule
  .peers/gmcapsule/bin/pip install -q --upgrade pip
  # its misfin module calls X509.get_extension, which pyOpenSSL 26.4 removed
  .peers/gmcapsule/bin/pip install -q gmcapsule==0.10.0 pyopenssl==26.0.0
fi
