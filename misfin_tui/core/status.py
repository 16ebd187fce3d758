"""Misfin status codes and the protocol error that carries one (shared by wire and address)."""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    """Every Misfin status code; `description` says what it means in plain words."""

    DELIVERED = 20
    SEND_HERE_INSTEAD = 30
    SEND_HERE_FOREVER = 31
    TEMPORARY_ERROR = 40
    SERVER_UNAVAILABLE = 41
    CGI_ERROR = 42
    PROXY_ERROR = 43
    SLOW_DOWN = 44
    MAILBOX_FULL = 45
    PERMANENT_ERROR = 50
    MAILBOX_NOT_FOUND = 51
    MAILBOX_GONE = 52
    DOMAIN_NOT_SERVICED = 53
    BAD_REQUEST = 59
    CERTIFICATE_REQUIRED = 60
    UNAUTHORIZED_SENDER = 61
    CERTIFICATE_INVALID = 62
    FINGERPRINT_MISMATCH = 63
    PROVE_IT = 64

    @property
    def category(self) -> int:
        return self.value // 10

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @classmethod
    def for_code(cls, code: int) -> Status:
        """The named status for `code`; an unknown code in a known category means its x0."""
        try:
            return cls(code)
        except ValueError:
            pass
        try:
            return cls((code // 10) * 10)
        except ValueError:
            raise ProtocolError(f"status {code} is not a Misfin status") from None


_DESCRIPTIONS = {
    Status.DELIVERED: "the message was delivered",
    Status.SEND_HERE_INSTEAD: "the mailbox has moved for now: send to the new address this time",
    Status.SEND_HERE_FOREVER: "the mailbox has moved for good: send to the new address from now on",
    Status.TEMPORARY_ERROR: "the server had a temporary problem: try again later",
    Status.SERVER_UNAVAILABLE: "the server is unavailable right now: try again later",
    Status.CGI_ERROR: "a program on the server failed: try again later",
    Status.PROXY_ERROR: "the server could not pass the message on for that domain: try again later",
    Status.SLOW_DOWN: "the server asks you to slow down: wait before sending again",
    Status.MAILBOX_FULL: "that mailbox is full: it may work later",
    Status.PERMANENT_ERROR: "the server refused the message for good",
    Status.MAILBOX_NOT_FOUND: "that mailbox does not exist on the server",
    Status.MAILBOX_GONE: "that mailbox used to exist but has been removed",
    Status.DOMAIN_NOT_SERVICED: "that server does not handle mail for that domain",
    Status.BAD_REQUEST: "the server could not understand the request",
    Status.CERTIFICATE_REQUIRED: "the server needs a certificate to accept the message",
    Status.UNAUTHORIZED_SENDER: "the server does not accept mail from you for that mailbox",
    Status.CERTIFICATE_INVALID: "the server refused your certificate (expired or incomplete)",
    Status.FINGERPRINT_MISMATCH: "the server knows your address under a different certificate",
    Status.PROVE_IT: "the server asked for a proof of work, which is not supported",
}


class ProtocolError(Exception):
    """Malformed protocol input; `status` is what a server should answer (59 unless stated)."""

    def __init__(self, message: str, status: Status | int = Status.BAD_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.status = Status(status)


class NotMisfinRequest(ProtocolError):
    """The bytes do not start with misfin://, e.g. a gemini:// request for another service."""
