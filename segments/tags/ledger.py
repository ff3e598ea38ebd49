"""Writing before and after Shopify: the customer ledger (CustomerTag) marked before a call, and
what Shopify answered recorded customer by customer (outbox rows, ledger, audit, Customer.tags) in
an order that cannot deadlock with a webhook drain."""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from segments.membership.models import TagChange
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.tags.models import (
    CustomerTag, LedgerState, OwnedTag, TagAudit, TagBulkOperation, TagResult, TagSource, tag_key,
)
from segments.tags.plans import Plan
from shopseg.deadlocks import retry_on_deadlock
from shopseg.retries import backoff

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10               # then the change is recorded as failed
NOOP = "noop"                   # an outbox row whose customer needed no call


def ledger_intend(*, shop: Shop, plans: Sequence[Plan], now: dt.datetime) -> None:
    """Before the calls: the tags about to be added become pending ledger rows (and owned tags); the
    rows of tags about to be removed are stamped sent (see `removal_unanswered`)."""
    rows, owned = [], {}
    removing: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for plan in plans:
        for want in plan.add:
            key = tag_key(want.tag)
            rows.append(CustomerTag(shop=shop, customer_id=plan.customer_id, key=key, tag=want.tag,
                                    segment_id=want.segment_id, state=LedgerState.PENDING, sent_at=now))
            owned[key] = OwnedTag(shop=shop, key=key, tag=want.tag, segment_id=want.segment_id, holdout=want.holdout,
                                  first_written_at=now)
        if plan.remove:
            removing[tuple(sorted({tag_key(w.tag) for w in plan.remove}))].append(plan.customer_id)
    if not rows and not removing:
        return
    with transaction.atomic():
        if rows:
            CustomerTag.objects.bulk_create(rows, update_conflicts=True, unique_fields=["customer", "key"],
                                            update_fields=["tag", "segment", "state", "sent_at"])
            OwnedTag.objects.bulk_create(list(owned.values()), ignore_conflicts=True)
        for keys, customers in removing.items():
            for start in range(0, len(customers), 5000):
                CustomerTag.objects.filter(customer_id__in=customers[start:start + 5000], key__in=keys).update(
                    sent_at=now)


@dataclass
class Outcome:
    """What Shopify said about one mutation of one customer."""
    ok: bool
    result: str = TagResult.APPLIED
    detail: str = ""
    retry: bool = False        # a transient failure of this field: try again later


APPLIED = Outcome(True)


def classify_user_errors(errors: list[dict], node_missing: bool) -> Outcome:
    """Shopify's userErrors (and a null node) for one tagsAdd / tagsRemove."""
    if not errors:
        if node_missing:
            return Outcome(False, TagResult.CUSTOMER_GONE, "customer not found")
        return APPLIED
    message = "; ".join(str(e.get("message", "")) for e in errors)[:255]
    lowered = message.lower()
    if "maximum number of tags" in lowered or "exceeded" in lowered and "tag" in lowered:
        return Outcome(False, TagResult.TAG_LIMIT, message)
    if any(list(e.get("field") or []) == ["id"] for e in errors) or "does not exist" in lowered \
            or "not found" in lowered:
        return Outcome(False, TagResult.CUSTOMER_GONE, message)
    return Outcome(False, TagResult.INVALID, message)


@dataclass
class _Answer:
    """What recording one customer's answer writes (all of it in one transaction)."""
    audits: list[TagAudit] = field(default_factory=list)
    active: list[str] = field(default_factory=list)               # ledger keys -> active
    forget: list[str] = field(default_factory=list)               # ledger keys -> deleted
    forget_all: bool = False                                      # the customer is gone: every ledger row
    answered: list[str] = field(default_factory=list)             # ledger keys whose removal was refused
    states: list[tuple[str, list[str]]] = field(default_factory=list)   # (suppressed / blocked, keys)
    added: list[str] = field(default_factory=list)                # into Customer.tags
    removed: list[str] = field(default_factory=list)
    processed: tuple[str, list[int]] | None = None                # (result, outbox ids)
    retry: list[int] = field(default_factory=list)                # outbox ids to back off


def confirm(*, shop: Shop, plans: Sequence[Plan], outcomes: dict[tuple[int, bool], Outcome],
            at: dt.datetime, finish: Callable[[Plan], bool] = lambda plan: True,
            bulk: TagBulkOperation | None = None) -> dict[str, int]:
    """After Shopify answered: ledger, mirror tags, audit and outbox rows, each customer's in one
    transaction (see `_record_in_turn`). Call it outside any transaction of the caller's.

    `outcomes` maps (customer id, add?) to what Shopify said; a plan with no outcome for a mutation
    it has was not answered (its rows stay pending, with backoff). `finish(plan)` says whether the
    plan's outbox rows may be marked processed (a bulk remove with an add still to come says no).
    """
    now = timezone.now()
    counts: dict[str, int] = defaultdict(int)
    answers: dict[int, _Answer] = {}
    retry_error = ""

    for plan in plans:
        answer = answers.setdefault(plan.customer_id, _Answer())
        results: set[str] = set()

        def audit(tag: str, add: bool, result: str, source: str, segment_id, version, detail="", when=None) -> None:
            answer.audits.append(TagAudit(shop=shop, customer_id=plan.customer_id, customer_shopify_id=plan.shopify_id,
                                          tag=tag, add=add, segment_id=segment_id, segment_version=version,
                                          source=source, result=result, detail=detail[:255], bulk=bulk,
                                          at=when or at))
            counts[result] += 1
            results.add(result)

        for drop in plan.audits:
            audit(drop.tag, drop.add, drop.result, drop.source, drop.segment_id, drop.version, drop.detail, drop.at)
        answer.active += plan.confirm
        answer.forget += plan.forget
        answer.states += [(LedgerState.SUPPRESSED, list(plan.suppress)),
                          (LedgerState.BLOCKED, [tag_key(w.tag) for w in plan.block])]
        unanswered, gone = False, plan.gone
        for add, wants in ((False, plan.remove), (True, plan.add)):
            if not wants:
                continue
            outcome = outcomes.get((plan.customer_id, add))
            if outcome is None or outcome.retry:
                unanswered = True
                retry_error = outcome.detail if outcome is not None else retry_error or "no answer"
                continue
            keys = [tag_key(w.tag) for w in wants]
            if outcome.ok:
                (answer.added if add else answer.removed).extend(w.tag for w in wants)
                (answer.active if add else answer.forget).extend(keys)
            elif outcome.result == TagResult.CUSTOMER_GONE:
                gone = True
            elif outcome.result == TagResult.TAG_LIMIT and add:
                answer.states.append((LedgerState.BLOCKED, keys))
            elif add:
                answer.forget += keys
            else:
                answer.answered += keys             # refused: the tag stays ours, the removal is answered
            for want in wants:
                source = TagSource.LIMIT if outcome.result == TagResult.TAG_LIMIT else plan.sources.get(
                    tag_key(want.tag), TagSource.MEMBERSHIP)
                audit(want.tag, add, outcome.result, source, want.segment_id, want.version, outcome.detail)
        answer.forget_all = answer.forget_all or gone
        if unanswered:
            answer.retry += plan.change_ids
        elif finish(plan):
            result = (TagResult.CUSTOMER_GONE if gone else NOOP if not results else next(iter(results))
                      if len(results) == 1 else TagResult.APPLIED if TagResult.APPLIED in results else min(results))
            answer.processed = (result, plan.change_ids)

    def record(customer_ids: Sequence[int]) -> None:
        chosen = [(pk, answers[pk]) for pk in customer_ids]
        audits = [audit for _, answer in chosen for audit in answer.audits]
        for audit in audits:     # a rolled-back attempt may have numbered them
            audit.pk = None
        _ledger_apply(shop, active=[(pk, a.active) for pk, a in chosen],
                      forget=[(pk, None if a.forget_all else a.forget) for pk, a in chosen],
                      answered=[(pk, a.answered) for pk, a in chosen],
                      states=[(pk, state, keys) for pk, a in chosen for state, keys in a.states], now=now,
                      plans={plan.customer_id: plan for plan in plans})
        customers_tags_apply(shop=shop, added={pk: a.added for pk, a in chosen if a.added},
                             removed={pk: a.removed for pk, a in chosen if a.removed})
        TagAudit.objects.bulk_create(audits, batch_size=2000)
        processed: dict[str, list[int]] = defaultdict(list)
        for _, answer in chosen:
            if answer.processed:
                processed[answer.processed[0]] += answer.processed[1]
        for result, ids in processed.items():
            for start in range(0, len(ids), 5000):
                TagChange.objects.filter(pk__in=ids[start:start + 5000]).update(processed_at=now, result=result,
                                                                                bulk=None)
        retry = [pk for _, answer in chosen for pk in answer.retry]
        if retry:
            changes_back_off(change_ids=retry, error=retry_error, now=now)

    _record_in_turn(shop=shop, customer_ids=list(answers), record=record)
    counts["customers"] = len(plans)
    return dict(counts)


def _customers_lock(shop: Shop, customer_ids: Sequence[int], *, wait: bool) -> list[int]:
    """Lock customers' rows FOR NO KEY UPDATE, in id order: all that are free now (SKIP LOCKED), or,
    with `wait`, the ones asked for however long that takes. Returns the ids locked."""
    rows = Customer.objects.select_for_update(no_key=True, skip_locked=not wait).filter(
        shop=shop, pk__in=list(customer_ids)).order_by("pk")
    return list(rows.values_list("pk", flat=True))


def _record_in_turn(*, shop: Shop, customer_ids: Sequence[int], record: Callable[[list[int]], None]) -> None:
    """Run `record(ids)` for every customer once, each customer's writes in one transaction, such
    that no transaction ever waits for a customer's row while holding another's.

    A webhook drain locks customers in delivery order and keeps them until its batch commits; a
    transaction that locked some customers and then waited for one the drain holds, while the
    drain waited for one of ours, was a deadlock (PostgreSQL aborted one side, again and again on
    a busy shop). Instead each transaction first takes the customers that are free (SKIP LOCKED)
    and records them; when none is free, it waits for the first one alone, holding nothing else.
    Shopify has answered by now, so the recording must not be lost: a deadlock with anything else
    is still retried.
    """
    waiting = sorted(set(customer_ids))
    while waiting:
        def body() -> list[int]:
            with transaction.atomic():
                locked = _customers_lock(shop, waiting, wait=False)
                if not locked:
                    locked = _customers_lock(shop, waiting[:1], wait=True)
                    if not locked:      # deleted meanwhile (redacted): its ledger and outbox rows went with it
                        return waiting[:1]
                record(locked)
                return locked
        done = set(retry_on_deadlock(body, what=f"recording tag changes of shop {shop.pk}"))
        waiting = [pk for pk in waiting if pk not in done]


def _ledger_apply(shop: Shop, *, active, forget, answered, states, now: dt.datetime,
                  plans: dict[int, Plan]) -> None:
    """The ledger after an answer: confirmed adds active, removed tags deleted, refused removals
    answered, drift and limit states."""
    for pairs, fields in ((active, {"state": LedgerState.ACTIVE, "confirmed_at": now}),
                          (answered, {"confirmed_at": now})):
        by_keys: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for customer_id, keys in pairs:
            if keys:
                by_keys[tuple(sorted(set(keys)))].append(customer_id)
        for keys, customers in by_keys.items():     # most batches add the same tag to many customers
            for start in range(0, len(customers), 5000):
                CustomerTag.objects.filter(customer_id__in=customers[start:start + 5000], key__in=keys).update(
                    **fields)
    everything = [c for c, keys in forget if keys is None]
    if everything:
        CustomerTag.objects.filter(customer_id__in=everything).delete()
    by_keys = defaultdict(list)
    for customer_id, keys in forget:
        if keys:
            by_keys[tuple(sorted(keys))].append(customer_id)
    for keys, customers in by_keys.items():
        for start in range(0, len(customers), 5000):
            CustomerTag.objects.filter(customer_id__in=customers[start:start + 5000], key__in=keys).delete()
    for customer_id, state, keys in states:
        if not keys:
            continue
        plan = plans[customer_id]
        wants = {tag_key(w.tag): w for w in plan.block + plan.add}
        existing = set(CustomerTag.objects.filter(customer_id=plan.customer_id, key__in=keys)
                       .values_list("key", flat=True))
        CustomerTag.objects.filter(customer_id=plan.customer_id, key__in=keys).update(state=state)
        CustomerTag.objects.bulk_create([
            CustomerTag(shop=shop, customer_id=plan.customer_id, key=key, tag=wants[key].tag,
                        segment_id=wants[key].segment_id, state=state, sent_at=now)
            for key in keys if key not in existing and key in wants])


def customers_tags_apply(*, shop: Shop, added: dict[int, list[str]], removed: dict[int, list[str]]) -> int:
    """Our confirmed writes into `Customer.tags` (last known), without waiting for the echo.

    Tags are case-insensitive sets (an existing spelling wins). Our own tags change nothing rules
    read, so nobody is marked dirty, exactly as the writer treats their echo. Called by the
    recording, which holds these customers' rows already.
    """
    ids = sorted(set(added) | set(removed))
    if not ids:
        return 0
    changed = []
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for customer in (Customer.objects.select_for_update(no_key=True).filter(shop=shop, pk__in=chunk)
                         .order_by("pk").only("pk", "tags")):
            gone = {tag_key(t) for t in removed.get(customer.pk, [])}
            tags = [t for t in (customer.tags or []) if tag_key(t) not in gone]
            have = {tag_key(t) for t in tags}
            for tag in added.get(customer.pk, []):
                if tag_key(tag) not in have:
                    tags.append(tag)
                    have.add(tag_key(tag))
            if tags != customer.tags:
                customer.tags = tags
                changed.append(customer)
    Customer.objects.bulk_update(changed, ["tags"], batch_size=1000)
    return len(changed)


def changes_back_off(*, change_ids: Sequence[int], error: str, now: dt.datetime | None = None) -> None:
    """A transient failure: try again later (exponential, with jitter); after MAX_ATTEMPTS, failed."""
    now = now or timezone.now()
    rows = TagChange.objects.filter(pk__in=list(change_ids), processed_at__isnull=True)
    for attempts in set(rows.values_list("attempts", flat=True)):
        if attempts + 1 >= MAX_ATTEMPTS:
            rows.filter(attempts=attempts).update(attempts=attempts + 1, processed_at=now, result=TagResult.FAILED,
                                                  last_error=error[:255])
            continue
        delay = backoff(attempts, base=5.0, cap=900.0)
        rows.filter(attempts=attempts).update(attempts=attempts + 1, last_error=error[:255],
                                              next_attempt_at=now + dt.timedelta(seconds=delay))
