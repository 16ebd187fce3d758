"""Run by titlani's own interpreter (.peers/titlani/bin/python), never by ours: send a letter or
a blank request with titlani's client library and print the answer as JSON.

    titlani_peer.py PORT CERT KEY TO {send SUBJECT BODY CLAIMED_SENDER | blank | b MESSAGE}

`b` sends MESSAGE as titlani's client sends a Misfin(B) request when it falls back (its
MisfinRequest.to_bytes_b: whitespace runs collapsed to one space).

The recipient's hostname is sent in the request line and SNI as usual; only the TCP connection
is pointed at 127.0.0.1:PORT (titlani has no --connect-to of its own).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from titlani.client.session import MisfinClient
from titlani.content.gemmail import MisfinAddress
from titlani.protocol.request import MisfinRequest


async def run(argv: list[str]) -> dict:
    local_port, cert, key, to, mode = int(argv[0]), argv[1], argv[2], argv[3], argv[4]
    loop = asyncio.get_running_loop()
    original = loop.create_connection

    async def to_localhost(factory, host=None, port=None, **kwargs):
        return await original(factory, "127.0.0.1", local_port, **kwargs)

    loop.create_connection = to_localhost  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        client = MisfinClient(
            timeout=15,
            port=local_port,
            client_cert=cert,
            client_key=key,
            tofu_db_path=Path(tmp) / "tofu.db",
        )
        if mode == "blank":
            response = await client.send_raw(to, b"")
        elif mode == "b":
            mailbox, hostname = to.rsplit("@", 1)
            raw = argv[5].encode()
            request = MisfinRequest(mailbox, hostname, len(raw), raw_message=raw)
            response = await client._send_request_b(request, hostname)
        else:
            subject, body, claimed = argv[5], argv[6], argv[7]
            response = await client.send(
                to,
                body,
                subject=subject,
                sender=MisfinAddress.parse(claimed) if claimed else None,
            )
    return {"status": int(response.status), "meta": response.meta}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1:]))))
