"""Plain helpers the tests import (certificates, raw TLS, servers, profiles, UI driving).

The fixtures built from them live in tests/conftest.py. This is a package beside that conftest
(tests/ is on sys.path because the root conftest is there), so tests write
`from helpers.certs import forged`.
"""
