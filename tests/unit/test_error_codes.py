"""The server's error classes speak the wire's codes, and a client's "retry later" reading
of each is what the class means (shared/errors.py against odoo_gateway_wire.error_codes)."""

from __future__ import annotations

from odoo_gateway_wire.error_codes import ErrorCode, is_retryable
from shared import errors


def _answer_classes() -> list[type[errors.GatewayError]]:
    """Every class whose code a client can receive (task errors travel inside events and
    configuration errors stop a component at start)."""
    found: list[type[errors.GatewayError]] = []
    pending: list[type[errors.GatewayError]] = [errors.GatewayError]
    while pending:
        cls = pending.pop()
        if not issubclass(cls, errors.TaskError | errors.ConfigurationError):
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_answer_code_is_a_wire_code() -> None:
    classes = _answer_classes()
    assert len(classes) >= 16
    assert {cls.code for cls in classes} == set(ErrorCode)


def test_retryable_exactly_when_the_gateway_could_not_take_it() -> None:
    for cls in _answer_classes():
        transient = issubclass(cls, errors.Unavailable | errors.QuotaExceeded) or cls is errors.GatewayError
        assert is_retryable(cls.code) is transient, cls.__name__
