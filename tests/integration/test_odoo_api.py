"""The workers speak the Odoo API they are set to, and a key Odoo refuses ends tasks with one
clear error and no retry loop. Counted on Odoo's (the stand-in's) side."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.stack import ODOO_API_KEY, Stack, running_stack

from .conftest import LOG_DIR
from .test_faults import created_order_effects, events, submit_sale
from .test_roundtrip import orders_for


async def test_the_workers_speak_the_stacks_odoo_api(stack: Stack) -> None:
    task_id = await submit_sale(stack)
    final = await asyncio.to_thread(stack.wait_final, task_id)
    assert final["status"] == "succeeded", final
    assert created_order_effects(stack, task_id) == 1 and len(orders_for(stack, task_id)) == 1
    if stack.odoo_api == "json2":
        # Bearer key on every request, no login ever (the workers have no password).
        assert stack.standin.login_attempts == 0
        assert stack.standin.dispatcher.json2_calls > 0
    else:
        assert stack.standin.dispatcher.json2_calls == 0
        assert stack.standin.login_attempts >= 1


@pytest.fixture(scope="module")
def auto_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """ODOO_API=auto against an Odoo 19 stand-in; its own stack, because a test below revokes
    the workers' key."""
    path: Path = tmp_path_factory.mktemp("auto") / "gateway.sqlite3"
    with running_stack(f"sqlite:///{path}", LOG_DIR / "auto", gateways=1, odoo_api="auto") as stack:
        yield stack


async def test_auto_picks_json2_on_odoo_19(auto_stack: Stack) -> None:
    task_id = await submit_sale(auto_stack)
    final = await asyncio.to_thread(auto_stack.wait_final, task_id)
    assert final["status"] == "succeeded", auto_stack.logs()
    assert auto_stack.standin.login_attempts == 0 and auto_stack.standin.dispatcher.json2_calls > 0
    assert created_order_effects(auto_stack, task_id) == 1


async def test_a_revoked_key_fails_each_task_once_with_one_clear_error(auto_stack: Stack) -> None:
    auto_stack.standin.set_api_key(ODOO_API_KEY, active=False)
    try:
        first = await submit_sale(auto_stack)
        finals = [await asyncio.to_thread(auto_stack.wait_final, first)]
        # One request carried the revoked key ...
        assert auto_stack.standin.rejected_keys == 1
        later = [await submit_sale(auto_stack) for _ in range(3)]
        finals += [await asyncio.to_thread(auto_stack.wait_final, task_id) for task_id in later]
    finally:
        auto_stack.standin.set_api_key(ODOO_API_KEY, active=True)
    # ... and the workers sent nothing more with it: the later tasks failed at once.
    assert auto_stack.standin.rejected_keys == 1
    assert auto_stack.standin.login_attempts == 0
    for task_id, final in zip([first, *later], finals, strict=True):
        assert final["status"] == "failed", final
        assert final["attempts"] == 1  # permanent: no retry
        assert final["error"]["code"] == "odoo_api_key_rejected"
        assert "revoked" in final["error"]["message"] and "ODOO_API_KEY" in final["error"]["message"]
        assert [e["status"] for e in events(auto_stack, task_id)] == ["running", "failed"]
        assert orders_for(auto_stack, task_id) == []
