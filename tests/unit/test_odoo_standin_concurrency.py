"""The stand-in's model of Odoo's concurrency on ``stock.quant`` (see tests/odoo_standin/concurrency.py),
exercised through the real odoorpc 0.10.1 client: overlapping transactions, the serialization
failure and Odoo's retries, and the interleaving of two counts that the workers must prevent."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import odoorpc
import pytest

from tests.odoo_standin import ConcurrencySettings, FaultRule, OdooStandin
from tests.odoo_standin.concurrency import SERIALIZATION_FAILURE, SERIALIZATION_MESSAGE, backoff
from tests.odoo_standin.store import StoredRow, WriteConflict
from tests.unit.test_odoo_standin import control

INV_CTX = {"inventory_mode": True}
WH_STOCK, INVENTORY_LOSS = 8, 14  # stock.location ids in the demo data
PRODUCT = 4  # DEMO-004
HOLD = 0.6  # seconds a transaction is held open: long enough for the other call to commit


@pytest.fixture
def standin() -> Iterator[OdooStandin]:
    s = OdooStandin(port=0, version="17.0", concurrency_backoff_scale=0.01).start()
    try:
        yield s
    finally:
        s.stop()


def client(s: OdooStandin) -> Any:
    odoo = odoorpc.ODOO("127.0.0.1", port=s.port, version=s.version, timeout=10)
    odoo.login("odoo", "admin", "admin")
    return odoo


def count(odoo: Any, quantity: float, name: str, product: int = PRODUCT) -> int:
    """The gateway's first call: ``stock.quant.create`` in inventory mode (an upsert of the count)."""
    vals = {"product_id": product, "location_id": WH_STOCK, "inventory_quantity": quantity}
    return int(odoo.execute_kw("stock.quant", "create", [vals], {"context": {**INV_CTX, "inventory_name": name}}))


def apply(odoo: Any, quant_id: int, name: str) -> Any:
    """The gateway's second call, in its own transaction."""
    return odoo.execute_kw("stock.quant", "action_apply_inventory", [[quant_id]], {"context": {"inventory_name": name}})


def moves_named(odoo: Any, name: str) -> list[dict[str, Any]]:
    return list(
        odoo.execute_kw(
            "stock.move",
            "search_read",
            [[("is_inventory", "=", True), ("name", "=like", f"{name}%")]],
            {
                "fields": ["name", "state", "product_uom_qty", "location_id", "location_dest_id"],
                "load": "_classic_write",
            },
        )
    )


def quant_row(s: OdooStandin, quant_id: int) -> dict[str, Any]:
    [row] = [q for q in s.records("stock.quant") if q["id"] == quant_id]
    return row


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``fn`` in a thread; the dict gets ``result`` or ``error``."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def overlap_two_counts(s: OdooStandin, first: float, second: float) -> tuple[dict[str, Any], int]:
    """Call A counts ``first`` with its transaction held open (snapshot taken, then waiting);
    meanwhile call B counts ``second`` on the same quant and commits; then A runs against its
    snapshot. Returns A's outcome and the quant id."""
    odoo_a, odoo_b = client(s), client(s)
    quant_id = count(odoo_b, 1, "SETUP")  # the quant exists before both: both UPDATE one row
    s.add_fault(FaultRule(kind="delay", phase="inside", seconds=HOLD, model="stock.quant", method="create"))
    thread, out_a = in_background(lambda: count(odoo_a, first, "GW-A"))
    wait_until(lambda: s.held_open == 1)  # A's snapshot is taken
    assert count(odoo_b, second, "GW-B") == quant_id  # B is not held: it commits at once
    assert s.held_open == 1  # ... while A is still waiting
    thread.join(timeout=30)
    return out_a, quant_id


# --------------------------------------------------------------------------- serialization failure


def test_overlapping_writes_to_one_quant_fail_the_later_one_when_retries_are_zero(standin: OdooStandin) -> None:
    standin.configure(concurrency_retries=0)
    out_a, quant_id = overlap_two_counts(standin, first=10, second=20)
    exc = out_a["error"]
    assert isinstance(exc, odoorpc.error.RPCError)
    assert exc.info == {
        "code": 200,
        "message": "Odoo Server Error",
        "data": {
            "name": "psycopg2.errors.SerializationFailure",
            "debug": exc.info["data"]["debug"],
            "message": "could not serialize access due to concurrent update\n",
            "arguments": ["could not serialize access due to concurrent update\n"],
            "context": {},
        },
    }
    assert str(exc) == SERIALIZATION_MESSAGE and exc.info["data"]["name"] == SERIALIZATION_FAILURE
    assert "psycopg2.errors.SerializationFailure" in exc.info["data"]["debug"]
    # A was rolled back entirely: B's count stands, and only B's call left an effect.
    assert quant_row(standin, quant_id)["inventory_quantity"] == 20
    creates = standin.effects(model="stock.quant", method="create")
    assert [e.context.get("inventory_name") for e in creates] == ["SETUP", "GW-B"]
    assert standin.serialization_failures == 1
    assert control(standin, "GET", "/_standin/stats")[1]["serialization_failures"] == 1


def test_overlapping_writes_are_retried_transparently_with_odoos_default_retries(standin: OdooStandin) -> None:
    assert standin.settings.concurrency_retries == 4  # Odoo: MAX_TRIES_ON_CONCURRENCY_FAILURE = 5
    out_a, quant_id = overlap_two_counts(standin, first=10, second=20)
    assert out_a == {"result": quant_id}  # the client never saw the failure
    assert standin.serialization_failures == 1  # ... which happened, and was retried once
    # The retry ran after B committed, in a new transaction: A's count is the last one.
    assert quant_row(standin, quant_id)["inventory_quantity"] == 10
    creates = standin.effects(model="stock.quant", method="create")
    assert [e.context.get("inventory_name") for e in creates] == ["SETUP", "GW-B", "GW-A"]


def test_a_held_transaction_not_overtaken_commits_normally(standin: OdooStandin) -> None:
    """Holding a transaction open is not a conflict by itself: only a concurrent commit to a row
    it then writes is. Other rows and reads are free."""
    standin.configure(concurrency_retries=0)
    odoo_a, odoo_b = client(standin), client(standin)
    quant_id = count(odoo_b, 1, "SETUP")
    standin.add_fault(FaultRule(kind="delay", phase="inside", seconds=HOLD, model="stock.quant", method="create"))
    thread, out_a = in_background(lambda: count(odoo_a, 10, "GW-A"))
    wait_until(lambda: standin.held_open == 1)
    count(odoo_b, 3, "GW-OTHER", product=PRODUCT + 1)  # another quant: no conflict
    odoo_b.execute_kw("res.partner", "write", [[8], {"name": "Renamed"}])
    assert odoo_b.execute_kw("stock.quant", "read", [[quant_id]], {"fields": ["inventory_quantity"]})
    thread.join(timeout=30)
    assert out_a == {"result": quant_id}
    assert standin.serialization_failures == 0
    assert quant_row(standin, quant_id)["inventory_quantity"] == 10


def test_transaction_hold_setting_makes_every_call_overlap() -> None:
    """``transaction_hold_seconds`` holds every call's transaction (every try): two counts sent
    together take the same snapshot; the first to run commits, the other fails once and is retried."""
    with OdooStandin(port=0, concurrency_backoff_scale=0.01) as s:
        odoo_a, odoo_b = client(s), client(s)
        quant_id = count(odoo_a, 1, "SETUP")
        s.configure(transaction_hold_seconds=0.3)
        barrier = threading.Barrier(2)

        def counting(odoo: Any, quantity: float) -> int:
            barrier.wait()
            return count(odoo, quantity, f"GW-{quantity}")

        runs = [in_background(functools.partial(counting, o, q)) for o, q in ((odoo_a, 10), (odoo_b, 20))]
        for thread, _ in runs:
            thread.join(timeout=30)
        assert [out for _, out in runs] == [{"result": quant_id}, {"result": quant_id}]
        assert s.serialization_failures == 1
        last = s.effects(model="stock.quant", method="create")[-1].values["inventory_quantity"]
        assert quant_row(s, quant_id)["inventory_quantity"] == last  # the retried one wrote last


def test_without_a_held_transaction_nothing_changes() -> None:
    """No fault, no hold: snapshots are taken under the lock, so calls never conflict, however
    many clients write the same quant at once (the stand-in's behaviour before this model)."""
    with OdooStandin(port=0, concurrency_retries=0) as s:
        quant_id = count(client(s), 1, "SETUP")
        clients = [client(s) for _ in range(6)]
        runs = [in_background(functools.partial(count, o, n, f"GW-{n}")) for n, o in enumerate(clients)]
        for thread, _ in runs:
            thread.join(timeout=30)
        assert all(out == {"result": quant_id} for _, out in runs)
        assert s.serialization_failures == 0
        assert s.dispatcher.database.commit_seq >= 7


def test_backoff_is_odoos_random_wait() -> None:
    waits = [backoff(tryno, 1.0) for tryno in (1, 2, 3, 4) for _ in range(50)]
    assert all(0 <= w <= 2**4 for w in waits)
    assert all(0 <= backoff(1, 1.0) <= 2 for _ in range(50))
    assert backoff(3, 0.0) == 0.0


# --------------------------------------------------------------------------- the store's check


def test_store_checks_writes_against_the_snapshot(standin: OdooStandin) -> None:
    db = standin.dispatcher.database
    partners = cast(dict[int, StoredRow], db.tables["res.partner"])
    before = db.commit_seq
    with db.transaction():
        partners[7]["name"] = "First"
    assert db.commit_seq == before + 1 and partners[7]._stamp == before + 1
    with db.transaction():
        assert partners[8]["name"]  # read-only: no commit
    assert db.commit_seq == before + 1
    with pytest.raises(RuntimeError), db.transaction():
        partners[8]["name"] = "Rolled back"
        raise RuntimeError
    assert db.commit_seq == before + 1 and partners[8]._stamp < before + 1  # nothing stamped

    # A transaction begun before that commit: rows it did not touch are free, row 7 is not.
    with db.transaction(snapshot=before):
        partners[8]["name"] = "Free"
        db.insert("res.partner", {"name": "New"})
    with pytest.raises(WriteConflict) as conflict, db.transaction(snapshot=before):
        partners[3]["name"] = "Undone"
        partners[7]["name"] = "Second"
    assert (conflict.value.model, conflict.value.rec_id) == ("res.partner", 7)
    assert partners[7]["name"] == "First" and partners[3]["name"] != "Undone"  # rolled back
    with pytest.raises(WriteConflict), db.transaction(snapshot=before):
        partners.pop(7)  # a DELETE of a row updated meanwhile conflicts too
    assert 7 in partners
    with db.transaction(snapshot=db.commit_seq):  # up to date: the same write is fine
        partners[7]["name"] = "Second"
    assert partners[7]["name"] == "Second"


# --------------------------------------------------------------------------- settings and control API


def test_settings_validation_and_control_api(standin: OdooStandin) -> None:
    assert OdooStandin().settings == ConcurrencySettings(4, 1.0, 0.0)
    assert control(standin, "GET", "/_standin/settings") == (
        200,
        {"concurrency_retries": 4, "concurrency_backoff_scale": 0.01, "transaction_hold_seconds": 0.0},
    )
    status, body = control(standin, "POST", "/_standin/settings", {"concurrency_retries": 0})
    assert status == 200 and body["concurrency_retries"] == 0 and body["concurrency_backoff_scale"] == 0.01
    assert standin.settings.concurrency_retries == 0
    for bad in (
        {"concurrency_retrys": 1},  # a typo fails loudly
        {"concurrency_retries": -1},
        {"concurrency_retries": True},
        {"concurrency_retries": "2"},
        {"transaction_hold_seconds": -0.1},
        {"concurrency_backoff_scale": "fast"},
    ):
        status, body = control(standin, "POST", "/_standin/settings", bad)
        assert status == 400, bad
    assert standin.settings.concurrency_retries == 0  # unchanged by the refused ones
    with pytest.raises(ValueError, match="unknown stand-in settings"):
        standin.configure(retries=1)
    with pytest.raises(ValueError):
        OdooStandin(concurrency_retries=-1)
    control(standin, "POST", "/_standin/reset")
    assert standin.settings.concurrency_retries == 4  # back to the values it was started with

    # the fault phase
    rule = FaultRule(kind="delay", phase="inside", seconds=0.1)
    assert rule.to_dict()["phase"] == "inside"
    with pytest.raises(ValueError, match="phase"):
        FaultRule(kind="delay", phase="within")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="inside"):
        FaultRule(kind="error", phase="inside")
    assert control(standin, "POST", "/_standin/faults", {"kind": "delay", "phase": "insde"})[0] == 400
    status, body = control(standin, "POST", "/_standin/faults", {"kind": "delay", "phase": "inside", "seconds": 0.2})
    assert status == 201 and body["phase"] == "inside"
    started = time.monotonic()
    odoorpc.ODOO("127.0.0.1", port=standin.port, timeout=5)  # version_info: no transaction, just waits
    assert time.monotonic() - started >= 0.2


# --------------------------------------------------------------------------- the interleaving hazard


@pytest.mark.parametrize("version", ["16.0", "17.0", "18.0", "19.0"])
def test_interleaved_counts_hazard_that_per_record_ordering_in_the_workers_prevents(version: str) -> None:
    """Two counts of one quant whose create/apply calls interleave: A sets 10, B sets 20, A
    applies, B applies. Each call is its own transaction and none overlaps another, so Odoo
    raises nothing. A's move, named GW-A, carries B's count (the stock becomes 20 and the move
    is 20 - initial); B's apply finds the count already applied and cleared: in 16.0-18.0 it
    records a move of quantity 0 under GW-B (inventory moves are done even when empty), in 19.0
    ``_apply_inventory`` first marks the cleared count (0) as set and so empties the stock
    under GW-B. Guarantee 9 (one task per record at a time, in acceptance order) exists so the
    workers never produce this sequence."""
    with OdooStandin(port=0, version=version) as s:
        odoo_a, odoo_b = client(s), client(s)
        initial = 5.0
        quant_id = count(odoo_a, initial, "SETUP")
        assert apply(odoo_a, quant_id, "SETUP") is None

        assert count(odoo_a, 10, "GW-A") == quant_id  # task A: count 10
        assert count(odoo_b, 20, "GW-B") == quant_id  # task B: count 20, the same quant (upsert)
        assert apply(odoo_a, quant_id, "GW-A") is None  # task A applies ... B's count

        suffix = "" if version == "16.0" else " (Mitchell Admin)"
        [move_a] = moves_named(odoo_a, "GW-A")
        assert move_a["name"] == f"GW-A{suffix}" and move_a["state"] == "done"
        assert move_a["product_uom_qty"] == 20 - initial  # B's count, under A's name
        assert (move_a["location_id"], move_a["location_dest_id"]) == (INVENTORY_LOSS, WH_STOCK)
        assert quant_row(s, quant_id)["quantity"] == 20
        assert quant_row(s, quant_id)["inventory_quantity_set"] is False  # nothing left to apply

        assert apply(odoo_b, quant_id, "GW-B") is None  # task B applies: no error, no wizard
        [move_b] = moves_named(odoo_b, "GW-B")
        # The apply cleared the quant's user, so B's move has no " (user)" suffix.
        assert move_b["name"] == "GW-B" and move_b["state"] == "done"
        assert (move_b["location_id"], move_b["location_dest_id"]) == (WH_STOCK, INVENTORY_LOSS)
        if version == "19.0":
            assert move_b["product_uom_qty"] == 20
            assert quant_row(s, quant_id)["quantity"] == 0
        else:
            assert move_b["product_uom_qty"] == 0
            assert quant_row(s, quant_id)["quantity"] == 20
        assert s.serialization_failures == 0  # no transaction overlapped: nothing for Odoo to catch


def test_counts_applied_one_at_a_time_each_carry_their_own_count() -> None:
    """What per-record ordering gives instead: A's create and apply, then B's: one move each,
    each with its own count's difference."""
    with OdooStandin(port=0) as s:
        odoo = client(s)
        quant_id = count(odoo, 5, "SETUP")
        apply(odoo, quant_id, "SETUP")
        for name, quantity in (("GW-A", 10), ("GW-B", 20)):
            assert count(odoo, quantity, name) == quant_id
            assert apply(odoo, quant_id, name) is None
        assert [m["product_uom_qty"] for m in moves_named(odoo, "GW-A")] == [5]
        assert [m["product_uom_qty"] for m in moves_named(odoo, "GW-B")] == [10]
        assert quant_row(s, quant_id)["quantity"] == 20
        # A count equal to the stock still leaves a (zero) move under its name, as in Odoo.
        assert count(odoo, 20, "GW-SAME") == quant_id and apply(odoo, quant_id, "GW-SAME") is None
        [same] = moves_named(odoo, "GW-SAME")
        assert same["product_uom_qty"] == 0 and same["state"] == "done"
        assert quant_row(s, quant_id)["quantity"] == 20
