"""The engine: protocol, identities, trust, storage, network I/O. Never imports textual or rich."""
