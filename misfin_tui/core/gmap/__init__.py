"""Mail from home: GMAP (Gemini mailbox access), as client (sync) and as server (receive).

protocol.py is pure (requests, answers, lists, tag mapping); client.py speaks TLS; sync.py
brings home's letters into the store and sends changes back; server.py serves our own store.
"""
