"""Fixtures of the send tests (the receivers live in send_fixtures.py so tests can import them)."""

from send_fixtures import network_env, receiver_factory, sender

__all__ = ["network_env", "receiver_factory", "sender"]
