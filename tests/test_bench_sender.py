"""The webhooks benchmark's HTTP/1.1 senders (``bench.webhooks._send``) against a scripted server.

The benchmark's figures are only as good as its client: it must read each answer to its end (however
the bytes arrive), reuse the connection while the server keeps it, open a new one when the server
closes it, and record a failure as a status without losing the sender.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.webhooks import HOST, Level, _request, _send

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def reply(*pieces: bytes) -> Answer:
    """Write the answer, a piece at a time when there are several."""

    async def answer(writer: asyncio.StreamWriter) -> None:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            if len(pieces) > 1:
                await asyncio.sleep(0.01)

    return answer


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()


async def stall(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(5)


OK = reply(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
OK_CLOSE = reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
OK_IN_PIECES = reply(b"HTTP/1.1 200 OK\r\nContent-", b"Length: 5\r\n\r", b"\nok", b"!!!")
OK_CHUNKED = reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
FORBIDDEN = reply(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 17\r\n\r\ninvalid signature")


def exchange(answers: list[Answer], *, timeout: float = 2.0) -> tuple[list[int | str], int, list[bytes]]:
    """One sender posts once per answer: (statuses, connections it opened, bodies the server received)."""
    return _run(_exchange(answers, timeout=timeout))


def _run(coroutine: Awaitable[Any]) -> Any:
    """``asyncio.run`` in a thread of its own: the browser tests leave an event loop running in
    the main thread (Playwright's), and asyncio.run refuses to start inside one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _exchange(answers: list[Answer], *, timeout: float) -> tuple[list[int | str], int, list[bytes]]:
    pending = iter(answers)
    opened = 0
    bodies: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal opened
        opened += 1
        try:
            while True:
                lines = (await reader.readuntil(b"\r\n\r\n")).lower().split(b"\r\n")
                length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
                bodies.append(await reader.readexactly(length))
                answer = next(pending)
                await answer(writer)
                if answer is hang_up or answer is OK_CLOSE:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    requests = [(n, _request(port, f"body {n}".encode(), "sha256=x")) for n in range(len(answers))]
    try:
        run = await _send(port, requests, Level(1, len(requests)), 10.0, timeout=timeout)
    finally:
        server.close()
    return [sent.status for sent in run.sent], opened, bodies


def test_it_keeps_the_connection_alive_and_reads_each_answer_to_its_end() -> None:
    statuses, opened, bodies = exchange([OK, FORBIDDEN, OK_IN_PIECES, OK])
    assert statuses == [200, 403, 200, 200]
    assert opened == 1
    assert bodies == [b"body 0", b"body 1", b"body 2", b"body 3"]


def test_it_opens_a_new_connection_after_connection_close() -> None:
    statuses, opened, _ = exchange([OK_CLOSE, OK, OK])
    assert statuses == [200, 200, 200] and opened == 2


def test_a_dropped_connection_is_recorded_and_the_next_request_reconnects() -> None:
    statuses, opened, _ = exchange([OK, hang_up, OK])
    assert statuses == [200, "IncompleteReadError", 200] and opened == 2


def test_an_answer_it_cannot_frame_is_recorded_and_the_next_request_reconnects() -> None:
    statuses, opened, _ = exchange([OK_CHUNKED, OK])
    assert statuses == ["BadResponse", 200] and opened == 2


def test_a_request_that_is_not_answered_in_time_is_recorded_as_a_timeout() -> None:
    statuses, opened, _ = exchange([stall, OK], timeout=0.2)
    assert statuses == ["TimeoutError", 200] and opened == 2


def test_a_refused_connection_is_recorded() -> None:
    async def post_to_nobody() -> list[int | str]:
        server = await asyncio.start_server(lambda reader, writer: None, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        run = await _send(port, [(1, _request(port, b"{}", "sha256=x"))], Level(1, 1), 10.0, timeout=1.0)
        return [sent.status for sent in run.sent]

    assert _run(post_to_nobody()) == ["ConnectionRefusedError"]
