"""Writes joined per turn of the event loop: log lines (shared/logs.py) and an HTTP
answer's head and body (gateway/transport.py). Each must keep every byte, in order, and
must not hold anything past the next turn."""

from __future__ import annotations

import asyncio
import logging
import threading

from gateway.transport import OneWriteAnswers
from shared.logs import TurnFlushedHandler


class CountingStream:
    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def _logger(stream: CountingStream) -> logging.Logger:
    logger = logging.getLogger(f"test-turn-{id(stream)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers[:] = [TurnFlushedHandler(stream)]  # type: ignore[arg-type]
    return logger


async def test_lines_of_one_turn_leave_in_one_write_at_the_next_turn() -> None:
    stream = CountingStream()
    log = _logger(stream)
    for n in range(3):
        log.info("task %d accepted", n)
    assert stream.writes == []  # not yet: at the start of the next turn
    await asyncio.sleep(0)
    assert stream.writes == ["task 0 accepted\ntask 1 accepted\ntask 2 accepted\n"]
    log.info("next turn")
    await asyncio.sleep(0)
    assert stream.writes[1:] == ["next turn\n"]


async def test_a_line_from_another_thread_goes_at_once_after_what_is_pending() -> None:
    stream = CountingStream()
    log = _logger(stream)
    log.info("from the loop")
    thread = threading.Thread(target=log.info, args=("from a thread",))
    thread.start()
    thread.join()
    assert stream.writes == ["from the loop\nfrom a thread\n"]  # order kept
    await asyncio.sleep(0)
    assert stream.writes == ["from the loop\nfrom a thread\n"]  # nothing written twice


def test_without_a_loop_each_line_is_written_at_once() -> None:
    stream = CountingStream()
    log = _logger(stream)
    log.info("one")
    log.info("two")
    assert stream.writes == ["one\n", "two\n"]


def test_a_flush_scheduled_on_a_loop_that_closed_is_not_waited_for() -> None:
    stream = CountingStream()
    log = _logger(stream)
    loop = asyncio.new_event_loop()

    async def log_and_leave() -> None:
        log.info("logged in the last turn")

    loop.run_until_complete(log_and_leave())
    loop.close()  # the scheduled flush never runs
    asyncio.run(asyncio.sleep(0))
    log.info("later")
    assert "".join(stream.writes) == "logged in the last turn\nlater\n"


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_an_answer_head_and_body_leave_in_one_write() -> None:
    transport = FakeTransport()
    answers = OneWriteAnswers(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    answers.write(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n")
    answers.write(b"{}")
    assert transport.writes == []
    await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}"]


async def test_close_sends_what_is_pending_first_and_nothing_after() -> None:
    transport = FakeTransport()
    answers = OneWriteAnswers(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    answers.write(b"head")
    answers.write(b"body")
    answers.close()
    assert transport.writes == [b"headbody"] and answers.is_closing()
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert transport.writes == [b"headbody"]
