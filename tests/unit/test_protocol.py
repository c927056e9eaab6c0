"""Client frame parsing: every way a frame can be wrong gives a clear error with its ref."""

from __future__ import annotations

import json

import pytest

from shared.errors import GatewayError, InvalidRequest, UnknownFrameType, ValidationFailed
from shared.protocol import PingFrame, ResumeFrame, SubmitFrame, parse_client_frame


def test_valid_frames_parse() -> None:
    submit = parse_client_frame(
        json.dumps({"type": "submit", "ref": "s1", "idempotency_key": "k", "kind": "inventory.adjust", "payload": {}})
    )
    assert isinstance(submit, SubmitFrame) and submit.ref == "s1"
    resume = parse_client_frame(json.dumps({"type": "resume", "ref": 3, "tasks": {"a": 0, "b": 7}}))
    assert isinstance(resume, ResumeFrame) and resume.tasks == {"a": 0, "b": 7}
    assert isinstance(parse_client_frame('{"type":"ping"}'), PingFrame)


@pytest.mark.parametrize(
    ("text", "error", "ref"),
    [
        ("{", InvalidRequest, None),
        ("[1]", InvalidRequest, None),
        ('"str"', InvalidRequest, None),
        ('{"ref":"x"}', UnknownFrameType, "x"),
        ('{"type":"fly","ref":5}', UnknownFrameType, 5),
        ('{"type":"submit","ref":"s","kind":"k","payload":{}}', ValidationFailed, "s"),
        ('{"type":"submit","ref":"s","idempotency_key":"","kind":"k","payload":{}}', ValidationFailed, "s"),
        ('{"type":"submit","ref":"s","idempotency_key":"k","kind":"k","payload":[]}', ValidationFailed, "s"),
        ('{"type":"resume","ref":"r","tasks":{"a":-1}}', ValidationFailed, "r"),
        ('{"type":"ping","ref":"p","extra":1}', ValidationFailed, "p"),
        ('{"type":"ping","ref":true}', ValidationFailed, None),
        ("[" * 100_000 + "]" * 100_000, InvalidRequest, None),
    ],
)
def test_bad_frames(text: str, error: type[GatewayError], ref: object) -> None:
    with pytest.raises(error) as info:
        parse_client_frame(text)
    assert info.value.ref == ref


def test_resume_is_bounded() -> None:
    tasks = {str(i): 0 for i in range(1001)}
    with pytest.raises(ValidationFailed):
        parse_client_frame(json.dumps({"type": "resume", "tasks": tasks}))


def test_a_store_failure_answer_never_carries_the_drivers_words() -> None:
    from shared.errors import StoreUnavailable
    from shared.protocol import error_frame_of

    err = StoreUnavailable("terminating connection due to administrator command")
    answers = json.dumps([err.as_dict(), error_frame_of("r1", err)])
    assert "administrator" not in answers and "store_unavailable" in answers
    assert "administrator" in str(err)  # the logs keep it


def test_credentials_in_a_query_string_never_reach_the_log() -> None:
    import logging

    from shared.logs import RedactSecrets

    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5", "/v1/ws?token=tok-secret&x=1"), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "WebSocket /v1/ws?token=[redacted]&x=1" [accepted]'
