"""The chaos checker's verdict on synthetic histories: a clean one counts nothing, and each
kind of inventory anomaly is caught by its own counter. Also: what the fleet submits, and
how the run reads Odoo's side of the counts (against the stand-in, by move name)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.kinds import validate_payload
from shared.kinds.inventory_adjust import INVENTORY_ADJUST
from tests.chaos.checker import (
    COUNTERS,
    INVENTORY_KIND,
    SALE_KIND,
    InventoryMove,
    Observations,
    StoredTask,
    Verdict,
    check,
    move_task_id,
)
from tests.chaos.fleet import Workload
from tests.chaos.system import ChaosSystem
from tests.odoo_standin import OdooStandin
from workers.odoo_client import OdooRpcClient

HERE = "WH/Stock"
NEW_COUNTERS = (
    "succeeded_without_own_effect",
    "effect_under_wrong_reference",
    "final_stock_mismatch",
    "applied_out_of_order",
)


class History:
    """A run as the checker sees it: tasks accepted in call order, moves applied to a
    running stock in call order (so move ids are commit order), Odoo's final stock."""

    def __init__(self, **initial: float) -> None:
        self.obs = Observations(initial_stock={(HERE, code(p)): q for p, q in initial.items()})
        self.stock = dict(self.obs.initial_stock)
        self.orders = 0
        self.next_move = 100
        self.tasks: dict[str, tuple[str, dict[str, Any]]] = {}

    def accept(self, name: str, kind: str = INVENTORY_KIND, **lines: float) -> str:
        return self.accept_count(name, lines, kind)

    def accept_count(self, name: str, lines: dict[str, float], kind: str = INVENTORY_KIND) -> str:
        """Acknowledge a task (a count of ``lines``, product -> quantity); its client sees its
        end. It is ``accepted`` in the store until :meth:`end`."""
        task_id = f"{name}-{uuid.uuid4().hex[:8]}"
        key = f"key-{task_id}"
        payload: dict[str, Any] = (
            {"location": HERE, "lines": [{"product": code(p), "quantity": q} for p, q in lines.items()]}
            if kind == INVENTORY_KIND
            else {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 1}]}
        )
        self.orders += 1
        self.obs.submitted.add(key)
        self.obs.acknowledged[key] = task_id
        self.obs.sent[key] = (kind, payload)
        self.obs.seen_final[task_id] = "succeeded"
        self.obs.store[task_id] = StoredTask("accepted", None, self.orders, kind, payload)
        self.tasks[task_id] = (kind, payload)
        return task_id

    def move(self, task_id: str | None, product: str, to: float, *, name: str | None = None) -> int:
        """Odoo applies a count of ``product`` to ``to`` under ``task_id``'s name (Odoo 17
        style, with the user appended): a move of the difference."""
        key = (HERE, code(product))
        self.next_move += 1
        before = self.stock.get(key, 0.0)
        reference = name if name is not None else f"GW-{task_id} (Mitchell Admin)"
        self.obs.inventory_moves.append(InventoryMove(self.next_move, reference, HERE, code(product), to - before))
        self.stock[key] = to
        return self.next_move

    def own_moves(self, task_id: str) -> list[int]:
        return [m.id for m in self.obs.inventory_moves if m.task_id == task_id]

    def end(self, task_id: str, status: str = "succeeded", result: dict[str, Any] | None = None) -> None:
        """The store's final state; by default the result a correct worker reports."""
        kind, payload = self.tasks[task_id]
        if result is None and status == "succeeded":
            moves = self.own_moves(task_id)
            moved = {m.product for m in self.obs.inventory_moves if m.task_id == task_id and not m.empty}
            result = {
                "move_ids": moves,
                "quant_ids": [1],
                "changed": bool(moved),
                "unchanged_products": sorted(
                    line["product"] for line in payload["lines"] if line["product"] not in moved
                ),
            }
        previous = self.obs.store[task_id]
        self.obs.store[task_id] = StoredTask(status, result, previous.accept_order, kind, payload)

    def verdict(self) -> Verdict:
        self.obs.final_stock = dict(self.stock)
        return check(self.obs)


def code(product: str) -> str:
    """``p1`` -> ``DEMO-001``."""
    return f"DEMO-{int(product.lstrip('p')):03d}" if product.startswith("p") else product


def nonzero(verdict: Verdict) -> dict[str, int]:
    return {name: count for name, count in verdict.counts.items() if count}


def test_the_new_counters_are_reported() -> None:
    assert set(NEW_COUNTERS) <= set(COUNTERS)
    assert set(check(Observations()).counts) == set(COUNTERS)


def test_move_reference() -> None:
    assert move_task_id("GW-abc-123 (Mitchell Admin)") == "abc-123"
    assert move_task_id("GW-abc-123") == "abc-123"
    assert move_task_id("Product Quantity Updated") is None


def test_a_clean_history_counts_nothing() -> None:
    h = History(p1=5)
    a = h.accept("a", p1=10)
    h.move(a, "p1", 10)
    h.end(a)
    b = h.accept("b", p1=10, p2=3)  # p1 equals the stock: a no-op for p1 (an empty move)
    h.move(b, "p1", 10)
    h.move(b, "p2", 3)
    h.end(b)
    c = h.accept("c", p2=0)  # a decrease; a retry found its own effect
    m = h.move(c, "p2", 0)
    h.end(c, result={"move_ids": [m], "changed": True, "already_applied": True})
    d = h.accept("d", p1=10)  # a count equal to the stock, and no move at all (no empty move either)
    h.end(d)
    e = h.accept("e", p3=4)  # failed before writing anything
    h.end(e, "failed")
    f = h.accept("f", p3=0)  # p3 was never stocked: counting 0 is a no-op
    h.move(f, "p3", 0)
    h.end(f)
    sale = h.accept("s", kind=SALE_KIND)
    h.obs.odoo_orders[sale] = [7]
    h.end(sale, result={"sale_order_id": 7})
    verdict = h.verdict()
    assert nonzero(verdict) == {}, verdict.examples
    assert verdict.ok
    assert verdict.inventory == {"tasks": 6, "moves": 3, "empty_moves": 2, "noop_lines": 3}
    assert (verdict.succeeded, verdict.failed) == (6, 1)


@pytest.mark.parametrize("empty_move", [True, False], ids=["odoo16+", "no-empty-move"])
def test_interleaved_counts_a_move_carrying_the_next_tasks_count(empty_move: bool) -> None:
    """A sets 10, B sets 20, A applies (under A's name, B's count), B applies: no difference
    left, so B 'succeeds' with no change (an empty move), and A's own proof fails."""
    h = History()
    a = h.accept("a", p1=10)
    b = h.accept("b", p1=20)
    h.move(a, "p1", 20)
    if empty_move:
        h.move(b, "p1", 20)
    h.end(a, "failed")
    h.end(b)  # changed: false, the stock equals its count
    verdict = h.verdict()
    assert verdict.counts["effect_under_wrong_reference"] == 1
    assert verdict.counts["succeeded_without_own_effect"] == 1
    assert verdict.examples["succeeded_without_own_effect"][0].startswith(b)
    assert verdict.counts["store_odoo_disagreement"] == 1  # A failed with a move under its name
    assert nonzero(verdict) == {
        "effect_under_wrong_reference": 1,
        "succeeded_without_own_effect": 1,
        "store_odoo_disagreement": 1,
    }


def test_interleaved_counts_even_when_both_claim_success() -> None:
    h = History()
    a = h.accept("a", p1=10)
    b = h.accept("b", p1=20)
    h.move(a, "p1", 20)
    h.end(a)
    h.end(b)
    assert nonzero(h.verdict()) == {"effect_under_wrong_reference": 1, "succeeded_without_own_effect": 1}


def test_an_older_retried_count_landing_last_leaves_a_stale_stock() -> None:
    h = History(p1=1)
    a = h.accept("a", p1=10)
    b = h.accept("b", p1=20)
    h.move(b, "p1", 20)
    h.move(a, "p1", 10)  # A's retry, after B
    h.end(b)
    h.end(a)
    verdict = h.verdict()
    assert verdict.counts["final_stock_mismatch"] == 1
    assert "last succeeded count 20" in verdict.examples["final_stock_mismatch"][0]
    assert nonzero(verdict) == {"final_stock_mismatch": 1, "applied_out_of_order": 1}


def test_an_older_count_landing_between_newer_ones_is_out_of_order() -> None:
    h = History()
    a = h.accept("a", p1=10)
    b = h.accept("b", p1=20)
    c = h.accept("c", p1=30)
    h.move(b, "p1", 20)
    h.move(a, "p1", 10)
    h.move(c, "p1", 30)  # the final stock is right: only the order gives it away
    for task in (a, b, c):
        h.end(task)
    verdict = h.verdict()
    assert verdict.counts["applied_out_of_order"] == 1
    assert a in verdict.examples["applied_out_of_order"][0]
    assert nonzero(verdict) == {"applied_out_of_order": 1}


def test_a_count_applied_twice() -> None:
    """A applied, B applied, then A's redelivery applied A again: two moves under A's name."""
    h = History()
    a = h.accept("a", p1=10)
    b = h.accept("b", p1=20)
    h.move(a, "p1", 10)
    h.move(b, "p1", 20)
    h.move(a, "p1", 10)
    h.end(a)
    h.end(b)
    verdict = h.verdict()
    assert verdict.counts["duplicated_effects"] == 1
    assert verdict.examples["duplicated_effects"] == [a]
    assert nonzero(verdict) == {"duplicated_effects": 1, "applied_out_of_order": 1, "final_stock_mismatch": 1}


def test_a_no_op_count_applied_twice() -> None:
    h = History(p1=10)
    a = h.accept("a", p1=10)
    h.move(a, "p1", 10)
    h.move(a, "p1", 10)
    h.end(a)
    assert nonzero(h.verdict()) == {"duplicated_effects": 1}


def test_an_empty_move_under_a_count_that_differs_from_the_stock() -> None:
    """A's apply found nothing to change: the quant held someone else's count."""
    h = History(p1=7)
    a = h.accept("a", p1=10)
    h.move(a, "p1", 7)
    h.end(a)
    assert nonzero(h.verdict()) == {
        "effect_under_wrong_reference": 1,
        "succeeded_without_own_effect": 1,
        "final_stock_mismatch": 1,
    }


def test_a_result_claiming_a_change_where_odoo_moved_nothing() -> None:
    h = History(p1=10)
    a = h.accept("a", p1=10)
    m = h.move(a, "p1", 10)
    h.end(a, result={"move_ids": [m], "changed": True, "already_applied": True})
    assert nonzero(h.verdict()) == {"store_odoo_disagreement": 1}


def test_a_duplicate_is_per_product() -> None:
    h = History()
    a = h.accept("a", p1=10, p2=5)
    h.move(a, "p1", 10)
    h.move(a, "p2", 5)  # one move per product: not a duplicate
    h.end(a)
    assert nonzero(h.verdict()) == {}


def test_succeeded_without_a_move_while_the_count_differs_from_the_stock() -> None:
    h = History(p1=7)
    a = h.accept("a", p1=10)
    h.end(a)  # "changed": false, but the stock is 7
    verdict = h.verdict()
    assert verdict.counts["succeeded_without_own_effect"] == 1
    assert "DEMO-001 counted 10, stock before its turn 7" in verdict.examples["succeeded_without_own_effect"][0]
    assert nonzero(verdict) == {"succeeded_without_own_effect": 1, "final_stock_mismatch": 1}


def test_one_unproven_line_of_several() -> None:
    h = History(p1=7, p2=3)
    a = h.accept("a", p1=10, p2=4)
    h.move(a, "p1", 10)
    h.end(a, result={"move_ids": h.own_moves(a), "changed": True, "unchanged_products": ["DEMO-002"]})
    verdict = h.verdict()
    assert nonzero(verdict) == {"succeeded_without_own_effect": 1, "final_stock_mismatch": 1}
    assert "DEMO-002" in verdict.examples["succeeded_without_own_effect"][0]


def test_succeeded_with_a_claimed_move_odoo_does_not_have() -> None:
    h = History(p1=7)
    a = h.accept("a", p1=10)
    h.end(a, result={"move_ids": [999], "changed": True, "unchanged_products": []})
    assert nonzero(h.verdict()) == {
        "acknowledged_lost": 1,
        "store_odoo_disagreement": 1,
        "succeeded_without_own_effect": 1,
        "final_stock_mismatch": 1,
    }


def test_result_move_ids_differing_from_odoo() -> None:
    h = History()
    a = h.accept("a", p1=10)
    m = h.move(a, "p1", 10)
    h.end(a, result={"move_ids": [m, m + 1], "changed": True, "unchanged_products": []})
    assert nonzero(h.verdict()) == {"store_odoo_disagreement": 1}


def test_a_task_never_final_is_lost() -> None:
    h = History()
    h.accept("a", p1=10)
    h.obs.seen_final.clear()
    assert nonzero(h.verdict()) == {"acknowledged_lost": 1, "final_unseen": 1}


def test_a_move_for_a_product_the_task_did_not_count() -> None:
    h = History()
    a = h.accept("a", p1=10)
    h.move(a, "p1", 10)
    h.move(a, "p2", 10)
    h.end(a, result={"move_ids": h.own_moves(a), "changed": True, "unchanged_products": []})
    verdict = h.verdict()
    assert nonzero(verdict) == {"effect_under_wrong_reference": 1}
    assert "counted nothing" in verdict.examples["effect_under_wrong_reference"][0]


def test_moves_no_acknowledged_task_explains() -> None:
    h = History()
    h.move("ghost", "p1", 10)  # named after a task nobody was acknowledged for
    h.move(None, "p2", 4, name="Product Quantity Updated")  # applied without the task's reference
    h.stock[(HERE, "DEMO-003")] = 9  # the stock changed without any move
    verdict = h.verdict()
    assert nonzero(verdict) == {"unexpected_effects": 3}
    assert "ghost" in verdict.examples["unexpected_effects"]


# --------------------------------------------------------------------------- the fleet's counts


def test_the_workload_counts_hot_products_and_repeats_counts() -> None:
    workload = Workload()
    rng = random.Random(3)
    kinds: Counter[str] = Counter()
    sizes: Counter[int] = Counter()
    products: Counter[str] = Counter()
    repeats = 0
    for _ in range(2000):
        latest = dict(workload.recent)
        kind, payload = workload.next(rng)
        kinds[kind] += 1
        validate_payload(kind, payload)  # what the gateway accepts
        if kind == INVENTORY_KIND:
            assert payload["location"] == "WH/Stock"
            sizes[len(payload["lines"])] += 1
            for line in payload["lines"]:
                products[line["product"]] += 1
                assert 0 <= line["quantity"] <= 200
                repeats += latest.get(line["product"]) == line["quantity"]
    assert 0.35 < kinds[INVENTORY_KIND] / 2000 < 0.45
    assert set(products) == {f"DEMO-{n:03d}" for n in range(1, 6)}
    assert set(sizes) == {1, 2, 3} and sizes[1] > sizes[2] > sizes[3]
    assert repeats > 100


# --------------------------------------------------------------------------- Odoo's side


@pytest.fixture
def standin() -> Iterator[OdooStandin]:
    with OdooStandin(port=0).start() as s:
        yield s


def test_odoo_side_read_by_move_name_from_the_standin(standin: OdooStandin, tmp_path: Path) -> None:
    """Real counts applied by the real kind through odoorpc, read back the way the run reads
    them: the checker finds every effect under its reference, and nothing wrong."""
    system = ChaosSystem(tmp_path, worker_threads=1)
    system.standin_url = standin.url
    moves_before, initial = system.odoo_inventory()
    odoo = OdooRpcClient(Settings.model_validate({"odoo_url": standin.url, "odoo_password": "admin"}))
    h = History()
    h.obs.initial_stock = initial
    runs: list[dict[str, float]] = [{"p1": 12, "p2": 5}, {"p1": 12}, {"p1": 3, "p2": 5}]  # up, no-op, down + no-op
    for lines in runs:
        task_id = h.accept_count("t", lines)
        payload = h.tasks[task_id][1]
        result = INVENTORY_ADJUST.apply(odoo, f"GW-{task_id}", payload)
        h.end(task_id, result=result)
    moves, final = system.odoo_inventory()
    h.obs.inventory_moves = [m for m in moves if m.id not in {b.id for b in moves_before}]
    h.obs.final_stock = final
    verdict = check(h.obs)
    assert nonzero(verdict) == {}, verdict.examples
    assert verdict.inventory["tasks"] == 3 and verdict.inventory["moves"] == 3 and verdict.inventory["noop_lines"] == 2
    assert [(m.product, m.quantity) for m in h.obs.inventory_moves if not m.empty] == [
        ("DEMO-001", 12.0),
        ("DEMO-002", 5.0),
        ("DEMO-001", -9.0),
    ]
    assert all(m.name.endswith(" (Mitchell Admin)") and m.location == HERE for m in h.obs.inventory_moves)
    assert final[(HERE, "DEMO-001")] == 3.0
