"""The verdict of a chaos run, in Jepsen's categories. Pure: it only compares what the
clients saw, what the task store holds and what Odoo holds. Odoo's side is read by
reference (``client_order_ref``, stock move names ``GW-<task id>...``), never from what
the workers reported.

All kinds:

- acknowledged_lost: the gateway acknowledged a task, and it never reached a final state
  in the store; or the store says succeeded but Odoo has no trace of it (a sale order
  task without its order; a count whose result claims a change, with no move under its
  reference);
- duplicated_effects: a task applied more than once in Odoo (more than one order; more
  than one inventory move for one product under one reference);
- final_unseen: an acknowledged task whose final state its client never saw;
- store_odoo_disagreement: the store's final state contradicts Odoo: failed with an
  effect under its reference (an order, a move); succeeded with a result pointing at
  another order, or whose ``move_ids`` differ from the moves found under its reference
  (or whose ``changed`` / ``unchanged_products`` contradict them);
- unexpected_effects: an effect in Odoo for a task no client was ever acknowledged for:
  an order or a move named after an unacknowledged task, an inventory move named after no
  task at all, or a stock that the initial stock plus the moves do not explain (a change
  made without a move);
- never_acknowledged: a submission still unacknowledged after the system healed;
- duplicate_submission_mismatch: a replayed submission (same key, same body) that got a
  different task id.

Inventory counts (``inventory.adjust``; each line sets the absolute quantity of one
product at one location). The stock of each (location, product) is *replayed*: the
initial stock (read from Odoo before the run), then every done inventory move of that
product into or out of that location, in move id order (the stand-in serialises its
transactions, so id order is commit order). ``stock after m`` is the replayed stock once
move ``m`` is applied. Odoo 16+ leaves a done move of quantity 0 under the count's name
for a count equal to the stock: such an empty move is under its task's reference (it is
in ``move_ids``, it is a duplicate if there are two, it must agree with the count like
any other move) but it is no change: it does not prove a line, and ``changed`` /
``unchanged_products`` in a result only count moves that moved something.

- effect_under_wrong_reference (per move): a move named after an acknowledged task X,
  whose (location, product) is not one of X's lines, or whose ``stock after`` is not X's
  counted quantity for that product: the move carries someone else's count (two counts
  interleaved between Odoo calls, or a stale write landed);
- succeeded_without_own_effect (per task): the store says succeeded, but for some line
  (P, c) there is neither a (non-empty) move under the task's own reference for P, nor a
  justified no-op. The no-op is justified when the stock just before the task's turn equals c: the
  task's turn on (location, P) comes after every move there by a task accepted before it
  (store ``accept_order``), so that stock is ``stock after m*`` for the last such move
  m* in id order (the initial stock if there is none), and m* must not itself be an
  effect_under_wrong_reference (a stock that only equals c because another task's move
  carried this task's count is not this task's no-op);
- final_stock_mismatch (per location and product): the final quant quantity in Odoo
  differs from the count of the succeeded task with the highest ``accept_order`` that
  counted it (when any succeeded task counted it);
- applied_out_of_order (per move): walking the moves of one (location, product) in id
  order, a move by a task accepted before the task of an earlier move: an older count
  took effect after a newer one (guarantee 9), even where a later count hid it from the
  final stock.

Every rule holds in a correct history (tasks on one record run one at a time, in
acceptance order, each move setting its own task's count), so any non-zero counter is an
anomaly.
Quantities compare within half a unit of Odoo's default precision.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COUNTERS",
    "INVENTORY_KIND",
    "SALE_KIND",
    "InventoryMove",
    "Observations",
    "StockKey",
    "StoredTask",
    "Verdict",
    "check",
    "move_task_id",
]

SALE_KIND = "sale.order.create"
INVENTORY_KIND = "inventory.adjust"
#: Half a unit of Odoo's default 'Product Unit of Measure' precision (2 digits).
TOLERANCE = 0.005 + 1e-9

COUNTERS = (
    "acknowledged_lost",
    "duplicated_effects",
    "final_unseen",
    "store_odoo_disagreement",
    "unexpected_effects",
    "never_acknowledged",
    "duplicate_submission_mismatch",
    "succeeded_without_own_effect",
    "effect_under_wrong_reference",
    "final_stock_mismatch",
    "applied_out_of_order",
)

StockKey = tuple[str, str]  # (location complete name, product internal reference)

_REFERENCE = re.compile(r"^GW-(\S+)")


def move_task_id(name: str) -> str | None:
    """The task a move is named after: ``GW-<id>``, Odoo 17+ appends `` (<user>)``."""
    match = _REFERENCE.match(name or "")
    return match.group(1) if match else None


@dataclass(frozen=True)
class StoredTask:
    """A task as the task store holds it at the end of the run."""

    status: str
    result: dict[str, Any] | None = None
    accept_order: int = 0
    kind: str = SALE_KIND
    payload: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # a failed task's reason


@dataclass(frozen=True)
class InventoryMove:
    """A done inventory ``stock.move`` as Odoo holds it."""

    id: int
    name: str
    location: str  # the counted (internal) location's complete name
    product: str  # default_code
    quantity: float  # signed: > 0 into ``location`` (a count above the stock), < 0 out of it

    @property
    def empty(self) -> bool:
        """Odoo 16+ leaves a done move of quantity 0 for a count equal to the stock."""
        return abs(self.quantity) <= TOLERANCE

    @property
    def task_id(self) -> str | None:
        return move_task_id(self.name)

    @property
    def key(self) -> StockKey:
        return (self.location, self.product)


@dataclass
class Observations:
    submitted: set[str] = field(default_factory=set)  # idempotency keys
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> task id
    sent: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # key -> (kind, payload) sent
    seen_final: dict[str, str] = field(default_factory=dict)  # task id -> status the client saw
    replay_mismatches: list[tuple[str, str, str]] = field(default_factory=list)  # key, first, replayed
    store: dict[str, StoredTask] = field(default_factory=dict)  # task id -> the store's record
    odoo_orders: dict[str, list[int]] = field(default_factory=dict)  # task id -> sale.order ids
    initial_stock: dict[StockKey, float] = field(default_factory=dict)  # Odoo's quants before the run
    inventory_moves: list[InventoryMove] = field(default_factory=list)  # done inventory moves made in the run
    final_stock: dict[StockKey, float] = field(default_factory=dict)  # Odoo's quants at the end


@dataclass
class Verdict:
    counts: dict[str, int]
    examples: dict[str, list[str]]
    acknowledged: int
    succeeded: int
    failed: int
    inventory: dict[str, int] = field(default_factory=dict)
    #: Why tasks failed (a failure is a final state, not a violation): the first few.
    failed_reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(count == 0 for count in self.counts.values())


_MISSING = StoredTask("missing")
_FINAL = ("succeeded", "failed")


def _count_of(payload: dict[str, Any] | None) -> tuple[str, dict[str, float]]:
    """(location, product -> counted quantity) of an inventory.adjust payload."""
    payload = payload or {}
    lines: dict[str, float] = {}
    for line in payload.get("lines") or []:
        try:
            lines[str(line["product"])] = float(line["quantity"])
        except (KeyError, TypeError, ValueError):
            continue
    return str(payload.get("location", "")), lines


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE


class _Inventory:
    """The replayed stock history of every (location, product) touched in the run."""

    def __init__(self, obs: Observations, acked: set[str], sent_by_task: dict[str, tuple[str, dict[str, Any]]]):
        self.obs = obs
        self.acked = acked
        # What each task counted: as its client sent it, else as the store holds it.
        self.counts: dict[str, tuple[str, dict[str, float]]] = {}
        for task_id, stored in obs.store.items():
            if stored.kind == INVENTORY_KIND:
                self.counts[task_id] = _count_of(stored.payload)
        for task_id, (kind, payload) in sent_by_task.items():
            if kind == INVENTORY_KIND:
                self.counts[task_id] = _count_of(payload)
        self.by_key: dict[StockKey, list[InventoryMove]] = defaultdict(list)
        self.by_task: dict[str, list[InventoryMove]] = defaultdict(list)
        for move in sorted(obs.inventory_moves, key=lambda m: m.id):
            self.by_key[move.key].append(move)
            if move.task_id is not None:
                self.by_task[move.task_id].append(move)
        self.after: dict[int, float] = {}
        for key, moves in self.by_key.items():
            stock = obs.initial_stock.get(key, 0.0)
            for move in moves:
                stock += move.quantity
                self.after[move.id] = stock
        self.wrong: set[int] = set()
        self.noop_lines = 0

    def order(self, task_id: str | None) -> int | None:
        stored = self.obs.store.get(task_id or "")
        return None if stored is None else stored.accept_order

    def check_moves(self, found: dict[str, list[str]]) -> set[str]:
        """Per move: wrong reference, out of order; returns the unexpected effects."""
        unexpected: set[str] = set()
        for key, moves in self.by_key.items():
            newest: tuple[int, str] | None = None  # (accept order, task) of the newest task moved so far
            for move in moves:
                task_id = move.task_id
                if task_id is None or task_id not in self.acked:
                    unexpected.add(task_id or f"move {move.id} (no task reference)")
                else:
                    self._check_reference(move, task_id, found)
                order = self.order(task_id)
                if order is None:
                    continue
                if newest is not None and order < newest[0]:
                    found["applied_out_of_order"].append(
                        f"move {move.id} under {task_id} (accepted #{order}) after a move under "
                        f"{newest[1]} (accepted #{newest[0]}) on {key[1]} at {key[0]}"
                    )
                if newest is None or order > newest[0]:
                    newest = (order, str(task_id))
        # Every stock change goes through a move: one the moves do not explain is an effect
        # no task reference accounts for.
        for key in sorted(set(self.by_key) | set(self.obs.initial_stock) | set(self.obs.final_stock)):
            moves = self.by_key.get(key, [])
            replayed = self.after[moves[-1].id] if moves else self.obs.initial_stock.get(key, 0.0)
            final = self.obs.final_stock.get(key, 0.0)
            if not _close(replayed, final):
                unexpected.add(f"{key[1]} at {key[0]}: stock {final:g}, initial stock + moves = {replayed:g}")
        return unexpected

    def _check_reference(self, move: InventoryMove, task_id: str, found: dict[str, list[str]]) -> None:
        location, lines = self.counts.get(task_id, ("", {}))
        counted = lines.get(move.product) if location == move.location else None
        if counted is None or not _close(self.after[move.id], counted):
            self.wrong.add(move.id)
            found["effect_under_wrong_reference"].append(
                f"move {move.id} under {task_id}: {move.product} at {move.location} -> {self.after[move.id]:g}, "
                f"counted {'nothing' if counted is None else f'{counted:g}'}"
            )

    def stock_before_turn(self, task_id: str, key: StockKey) -> tuple[float, InventoryMove | None]:
        """The stock just before ``task_id``'s turn on ``key``, and the move that made it."""
        mine = self.order(task_id)
        last: InventoryMove | None = None
        for move in self.by_key.get(key, []):
            order = self.order(move.task_id)
            if mine is not None and order is not None and order < mine:
                last = move
        stock = self.after[last.id] if last is not None else self.obs.initial_stock.get(key, 0.0)
        return stock, last

    def check_task(self, task_id: str, stored: StoredTask, found: dict[str, list[str]]) -> None:
        location, lines = self.counts.get(task_id, ("", {}))
        own = self.by_task.get(task_id, [])
        result = stored.result or {}
        if stored.status not in _FINAL or (
            stored.status == "succeeded" and not own and (result.get("changed") or result.get("move_ids"))
        ):
            found["acknowledged_lost"].append(task_id)
        per_product: dict[str, int] = defaultdict(int)
        for move in own:
            per_product[move.product] += 1
        if any(n > 1 for n in per_product.values()):
            found["duplicated_effects"].append(task_id)
        if stored.status == "failed" and own:
            found["store_odoo_disagreement"].append(task_id)
        if stored.status != "succeeded":
            return
        moved = {m.product for m in own if m.location == location and not m.empty}
        if self._result_disagrees(result, own, moved, lines):
            found["store_odoo_disagreement"].append(task_id)
        unproven = []
        for product, counted in sorted(lines.items()):
            if product in moved:
                continue
            stock, made_by = self.stock_before_turn(task_id, (location, product))
            if _close(stock, counted) and (made_by is None or made_by.id not in self.wrong):
                self.noop_lines += 1
            else:
                unproven.append(f"{product} counted {counted:g}, stock before its turn {stock:g}")
        if unproven:
            found["succeeded_without_own_effect"].append(f"{task_id}: {'; '.join(unproven)}")

    @staticmethod
    def _result_disagrees(
        result: dict[str, Any], own: list[InventoryMove], moved: set[str], lines: dict[str, float]
    ) -> bool:
        if sorted(result.get("move_ids") or []) != sorted(m.id for m in own):
            return True
        if "changed" in result and bool(result["changed"]) != bool(moved):
            return True
        unchanged = result.get("unchanged_products")
        return unchanged is not None and set(unchanged) != set(lines) - moved

    def check_final_stock(self, found: dict[str, list[str]]) -> None:
        latest: dict[StockKey, tuple[int, str, float]] = {}
        for task_id, (location, lines) in self.counts.items():
            stored = self.obs.store.get(task_id, _MISSING)
            if stored.status != "succeeded":
                continue
            for product, counted in lines.items():
                key = (location, product)
                if key not in latest or stored.accept_order > latest[key][0]:
                    latest[key] = (stored.accept_order, task_id, counted)
        for key, (_, task_id, counted) in sorted(latest.items()):
            final = self.obs.final_stock.get(key, 0.0)
            if not _close(final, counted):
                found["final_stock_mismatch"].append(
                    f"{key[1]} at {key[0]}: stock {final:g}, last succeeded count {counted:g} by {task_id}"
                )


def check(obs: Observations) -> Verdict:
    found: dict[str, list[str]] = {name: [] for name in COUNTERS}
    acked = set(obs.acknowledged.values())
    sent_by_task = {task_id: obs.sent[key] for key, task_id in obs.acknowledged.items() if key in obs.sent}
    inventory = _Inventory(obs, acked, sent_by_task)
    unexpected = inventory.check_moves(found)
    inventory_tasks = 0
    for task_id in sorted(acked):
        stored = obs.store.get(task_id, _MISSING)
        kind = sent_by_task[task_id][0] if task_id in sent_by_task else stored.kind
        if task_id not in obs.seen_final:
            found["final_unseen"].append(task_id)
        if kind == INVENTORY_KIND:
            inventory_tasks += 1
            inventory.check_task(task_id, stored, found)
            continue
        orders = obs.odoo_orders.get(task_id, [])
        if stored.status not in _FINAL or (stored.status == "succeeded" and not orders):
            found["acknowledged_lost"].append(task_id)
        if len(orders) > 1:
            found["duplicated_effects"].append(task_id)
        if stored.status == "failed" and orders:
            found["store_odoo_disagreement"].append(task_id)
        if stored.status == "succeeded" and orders and (stored.result or {}).get("sale_order_id") not in orders:
            found["store_odoo_disagreement"].append(task_id)
    inventory.check_final_stock(found)
    found["unexpected_effects"] = sorted((set(obs.odoo_orders) - acked) | unexpected)
    found["never_acknowledged"] = sorted(obs.submitted - set(obs.acknowledged))
    found["duplicate_submission_mismatch"] = [key for key, _, _ in obs.replay_mismatches]
    statuses = [obs.store.get(t, _MISSING).status for t in acked]
    return Verdict(
        counts={name: len(items) for name, items in found.items()},
        examples={name: items[:5] for name, items in found.items() if items},
        acknowledged=len(acked),
        succeeded=statuses.count("succeeded"),
        failed=statuses.count("failed"),
        failed_reasons=[
            f"{t} {stored.kind}: {(stored.error or {}).get('code')}: {(stored.error or {}).get('message')}"
            for t in acked
            if (stored := obs.store.get(t, _MISSING)).status == "failed"
        ][:5],
        inventory={
            "tasks": inventory_tasks,
            "moves": sum(1 for move in obs.inventory_moves if not move.empty),
            "empty_moves": sum(1 for move in obs.inventory_moves if move.empty),
            "noop_lines": inventory.noop_lines,
        },
    )
