"""Tag sync's calls to Shopify: tagsAdd / tagsRemove mutations batched as GraphQL aliases, sized by
cost under the 1,000-point cap and the shop's bucket, sent through the shop's shared budget, and
the counts of a run (SyncReport)."""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from segments.shops.graphql import ShopSender
from segments.tags.ledger import Outcome, classify_user_errors
from segments.tags.models import TagResult
from segments.tags.plans import Plan

log = logging.getLogger(__name__)
MUTATION_COST = 10              # Shopify's price of one mutation field
MAX_QUERY_COST = 1000           # a single request may cost at most this
COST_MARGIN = 10                # stay strictly under the cap


def max_mutations_per_request(bucket_size: float | None = None) -> int:
    """Mutations in one request: at most the configured number, under the 1,000-point cap and within
    the bucket (a request costing more than the bucket holds could never run)."""
    cap = (MAX_QUERY_COST - COST_MARGIN) // MUTATION_COST
    if bucket_size:
        cap = min(cap, int(bucket_size) // MUTATION_COST)
    return max(1, min(cap, settings.SHOPSEG_TAG_SYNC_MAX_MUTATIONS))


FIELDS = "node { id } userErrors { field message }"


def mutation_document(ops: Sequence[bool]) -> str:
    """`mutation TagSync($i0: ID!, $t0: [String!]!, ...) { m0: tagsAdd(...) {...} m1: tagsRemove(...) }`."""
    variables = ", ".join(f"$i{n}: ID!, $t{n}: [String!]!" for n in range(len(ops)))
    fields = " ".join(f"m{n}: {'tagsAdd' if add else 'tagsRemove'}(id: $i{n}, tags: $t{n}) {{ {FIELDS} }}"
                      for n, add in enumerate(ops))
    return f"mutation TagSync({variables}) {{ {fields} }}"


class Sender(ShopSender):
    """The shop's sender (segments.shops.graphql), plus tag sync's aliased mutations."""

    def send(self, plans: Sequence[Plan]) -> dict[tuple[int, bool], Outcome]:
        """One request for `plans` (removes before adds, so a full customer makes room first)."""
        ops: list[tuple[Plan, bool, list[str]]] = []
        for plan in plans:
            if plan.remove:
                ops.append((plan, False, [w.tag for w in plan.remove]))
            if plan.add:
                ops.append((plan, True, [w.tag for w in plan.add]))
        if not ops:
            return {}
        variables = {}
        for n, (plan, _, tags) in enumerate(ops):
            variables[f"i{n}"], variables[f"t{n}"] = plan.gid, tags
        result = self.call(mutation_document([add for _, add, _ in ops]), variables, MUTATION_COST * len(ops))
        outcomes = {}
        for n, (plan, add, _) in enumerate(ops):
            payload = result.data.get(f"m{n}")
            if payload is None:       # the field failed (an internal error): try it again later
                outcomes[(plan.customer_id, add)] = Outcome(False, TagResult.FAILED, "no result", retry=True)
                continue
            outcomes[(plan.customer_id, add)] = classify_user_errors(payload.get("userErrors") or [],
                                                                     payload.get("node") is None)
        return outcomes


@dataclass
class SyncReport:
    customers: int = 0
    calls: int = 0                 # mutations sent
    requests: int = 0
    points: float = 0.0
    throttled: int = 0
    transient: int = 0
    results: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bulk: list[str] = field(default_factory=list)
    stopped: str = ""              # why the run ended early ("busy", "unavailable", "budget", an error)

    def add(self, counts: dict[str, int]) -> None:
        for key, value in counts.items():
            if key != "customers":
                self.results[key] += value
