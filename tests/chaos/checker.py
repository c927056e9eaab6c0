"""The verdict of a chaos run, in Jepsen's categories. Pure: it only compares what the
clients saw, what the task store holds and what Odoo holds.

- acknowledged_lost: the gateway acknowledged a task, and it never reached a final state
  in the store, or the store says succeeded but Odoo has no trace of it;
- duplicated_effects: a task applied more than once in Odoo;
- final_unseen: an acknowledged task whose final state its client never saw;
- store_odoo_disagreement: the store's final state contradicts Odoo (succeeded without
  the order, failed with it, or a result pointing at another order);
- unexpected_effects: an effect in Odoo for a task no client was ever acknowledged for;
- never_acknowledged: a submission still unacknowledged after the system healed;
- duplicate_submission_mismatch: a replayed submission (same key, same body) that got a
  different task id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["COUNTERS", "Observations", "Verdict", "check"]

COUNTERS = (
    "acknowledged_lost",
    "duplicated_effects",
    "final_unseen",
    "store_odoo_disagreement",
    "unexpected_effects",
    "never_acknowledged",
    "duplicate_submission_mismatch",
)


@dataclass
class Observations:
    submitted: set[str] = field(default_factory=set)  # idempotency keys
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> task id
    seen_final: dict[str, str] = field(default_factory=dict)  # task id -> status the client saw
    replay_mismatches: list[tuple[str, str, str]] = field(default_factory=list)  # key, first, replayed
    store: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)  # id -> (status, result)
    odoo_orders: dict[str, list[int]] = field(default_factory=dict)  # task id -> sale.order ids


@dataclass
class Verdict:
    counts: dict[str, int]
    examples: dict[str, list[str]]
    acknowledged: int
    succeeded: int
    failed: int

    @property
    def ok(self) -> bool:
        return all(count == 0 for count in self.counts.values())


def check(obs: Observations) -> Verdict:
    found: dict[str, list[str]] = {name: [] for name in COUNTERS}
    acked = set(obs.acknowledged.values())
    for task_id in sorted(acked):
        status, result = obs.store.get(task_id, ("missing", None))
        orders = obs.odoo_orders.get(task_id, [])
        if status not in ("succeeded", "failed") or (status == "succeeded" and not orders):
            found["acknowledged_lost"].append(task_id)
        if len(orders) > 1:
            found["duplicated_effects"].append(task_id)
        if task_id not in obs.seen_final:
            found["final_unseen"].append(task_id)
        if status == "failed" and orders:
            found["store_odoo_disagreement"].append(task_id)
        if status == "succeeded" and orders and (result or {}).get("sale_order_id") not in orders:
            found["store_odoo_disagreement"].append(task_id)
    for task_id in sorted(set(obs.odoo_orders) - acked):
        found["unexpected_effects"].append(task_id)
    found["never_acknowledged"] = sorted(obs.submitted - set(obs.acknowledged))
    found["duplicate_submission_mismatch"] = [key for key, _, _ in obs.replay_mismatches]
    statuses = [obs.store.get(t, ("missing", None))[0] for t in acked]
    return Verdict(
        counts={name: len(items) for name, items in found.items()},
        examples={name: items[:5] for name, items in found.items() if items},
        acknowledged=len(acked),
        succeeded=statuses.count("succeeded"),
        failed=statuses.count("failed"),
    )
