"""Tag sync: membership written to Shopify as customer tags, as a diff, within the rate limit.

The outbox (TagChange rows from membership, drift and resync) says which customers need looking
at; what they should carry is decided afresh for each of them when they are synced:

- desired: the tags their memberships call for (prefix + handle; the holdout tag for holdout
  members when the shop has one), from the Membership table, so a burst of entries and exits for
  one customer is one diff;
- last known: `Customer.tags`, the tags Shopify holds as the mirror last saw them;
- ours: the customer ledger (CustomerTag). Only tags in it are ever removed; a tag that was already
  there before we wanted it is the merchant's and is never touched, even if it looks like ours.

The diff becomes `tagsAdd` / `tagsRemove` calls (never `customerUpdate(tags:)`), several customers
per request as GraphQL aliases, sized by cost (10 points a mutation, under the 1,000-point cap and
the bucket), sent through the shop's shared budget (segments.services.shop_graphql). A customer whose
diff is empty costs no call. Large diffs go to a bulk mutation (segments.services.tag_bulk).

Crash safety: before the call, the ledger rows of tags about to be added are written (pending) and
those about to be removed are stamped sent (`sent_at` after `confirmed_at`: a removal unanswered);
a customer's outbox rows, ledger, audit and `Customer.tags` are updated in one transaction only
after Shopify answered. A worker that dies in between leaves all of it as it was, and the next run
decides each customer again: a change whose echo (`customer.tags_*`) already reached the mirror is
audited as Shopify's webhook confirmed it and costs no call; any other is sent again, and since
tagsAdd and tagsRemove are set operations the replay changes nothing visible. Either way the audit
gets one row per change Shopify applied. Runs of one shop are serialised by a PostgreSQL advisory
lock held for the run's connection, which the server releases if the worker dies.

Recording never waits for one customer's row while holding another's (see `_record_in_turn`), so
it cannot deadlock with a webhook drain that locks the same customers in its own order.
"""
from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from segments.models import (
    Customer, CustomerTag, DriftPolicy, LedgerState, Membership, OwnedTag, Segment, Shop, TagAudit,
    TagBulkOperation, TagChange, TagResult, TagSource,
)
from segments.models.tags import (
    MAX_TAGS_PER_CUSTOMER, holdout_tag_for, holdout_tag_problems, tag_key, tag_prefix_problems, tag_problems,
)
from segments.services.deadlocks import retry_on_deadlock
from segments.services.shop_graphql import ShopSender, with_shop_sender
from segments.services.tokens import ShopUnavailable
from shopseg.shopify.errors import ShopifyAuthError, ShopifyQueryError, ShopifyTransientError

log = logging.getLogger(__name__)

MUTATION_COST = 10              # Shopify's price of one mutation field
MAX_QUERY_COST = 1000           # a single request may cost at most this
COST_MARGIN = 10                # stay strictly under the cap
CUSTOMERS_PER_PLAN = 198        # customers whose diffs are computed together (two full requests)
MAX_ATTEMPTS = 10               # then the change is recorded as failed
MAX_TRANSIENT_WAIT = 60.0       # seconds one request may spend on 5xx / network retries before the run stops
_LOCK_NAMESPACE = 0x7A6         # pg_try_advisory_lock(namespace, shop id): one tag sync run per shop
NOOP = "noop"                   # an outbox row whose customer needed no call


# -- settings ------------------------------------------------------------------------------------------
def max_mutations_per_request(bucket_size: float | None = None) -> int:
    """Mutations in one request: at most the configured number, under the 1,000-point cap and within
    the bucket (a request costing more than the bucket holds could never run)."""
    cap = (MAX_QUERY_COST - COST_MARGIN) // MUTATION_COST
    if bucket_size:
        cap = min(cap, int(bucket_size) // MUTATION_COST)
    return max(1, min(cap, settings.SHOPSEG_TAG_SYNC_MAX_MUTATIONS))


def shop_tag_settings_problems(*, shop: Shop) -> list[str]:
    """What is wrong with the shop's tag settings (the admin's settings page shows it)."""
    return tag_prefix_problems(shop.tag_prefix) + holdout_tag_problems(shop.holdout_tag, shop.tag_prefix) + (
        [] if shop.drift_policy in DriftPolicy.values else [f"drift policy is one of {', '.join(DriftPolicy.values)}"])


def segment_tag(*, shop: Shop, handle: str) -> str:
    return f"{shop.tag_prefix}{handle}"


def segment_tag_problems(*, shop: Shop, handle: str, exclude_segment_id: int | None = None) -> list[str]:
    """Whether a handle gives a usable tag: Shopify's characters and length, and unique in the shop
    (case-insensitively) among segment tags and holdout tags."""
    tag = segment_tag(shop=shop, handle=handle)
    problems = tag_problems(tag)
    taken = {key: name for key, name in _shop_tags(shop, exclude_segment_id=exclude_segment_id)}
    if tag_key(tag) in taken:
        problems.append(f"the tag {tag!r} is already used by {taken[tag_key(tag)]}")
    return problems


def _shop_tags(shop: Shop, exclude_segment_id: int | None = None) -> list[tuple[str, str]]:
    """(key, whose) for every tag the shop's segments write."""
    tags = []
    for pk, handle, name in Segment.objects.filter(shop=shop).values_list("pk", "handle", "name"):
        if pk == exclude_segment_id:
            continue
        tags.append((tag_key(segment_tag(shop=shop, handle=handle)), f"segment {name!r}"))
        if shop.holdout_tag:
            tags.append((tag_key(holdout_tag_for(shop.holdout_tag, handle)), f"the holdout of segment {name!r}"))
    return tags


def shop_tag_conflicts(*, shop: Shop) -> list[str]:
    """Tags two segments (or a segment and a holdout) would share: a theme could not tell them apart."""
    seen: dict[str, str] = {}
    conflicts = []
    for key, whose in _shop_tags(shop):
        if key in seen and seen[key] != whose:
            conflicts.append(f"{key!r} is written for both {seen[key]} and {whose}")
        seen.setdefault(key, whose)
    return conflicts


# -- desired state -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Want:
    tag: str
    segment_id: int | None
    version: int | None
    holdout: bool = False


def desired_tags(*, shop: Shop, customer_ids: Iterable[int]) -> dict[int, dict[str, Want]]:
    """{customer id: {tag key: Want}}: the tags the customers' memberships call for."""
    wanted: dict[int, dict[str, Want]] = defaultdict(dict)
    rows = (Membership.objects.filter(shop=shop, customer_id__in=list(customer_ids))
            .values_list("customer_id", "segment_id", "segment__handle", "holdout", "version")
            .order_by("segment_id"))
    for customer_id, segment_id, handle, holdout, version in rows:
        if holdout:
            if not shop.holdout_tag:
                continue
            tag = holdout_tag_for(shop.holdout_tag, handle)
        else:
            tag = segment_tag(shop=shop, handle=handle)
        if tag_problems(tag):
            continue
        wanted[customer_id].setdefault(tag_key(tag), Want(tag, segment_id, version, holdout))
    return wanted


def removal_unanswered(row: CustomerTag) -> bool:
    """A tagsRemove of this ledger row was sent and its answer never recorded (the worker died, or
    the recording failed): `sent_at` is stamped before the call, `confirmed_at` when an answer is."""
    return (row.state == LedgerState.ACTIVE and row.confirmed_at is not None and row.sent_at is not None
            and row.sent_at > row.confirmed_at)


# -- plans ---------------------------------------------------------------------------------------------
@dataclass
class Drop:
    """An outcome decided without calling Shopify (audited)."""
    tag: str
    add: bool
    result: str
    source: str
    segment_id: int | None = None
    version: int | None = None
    detail: str = ""
    at: dt.datetime | None = None      # when the change was sent, if it was (else: when noticed)


@dataclass
class Plan:
    """One customer's diff and what follows from it."""
    customer_id: int
    shopify_id: int
    change_ids: list[int]
    add: list[Want] = field(default_factory=list)
    remove: list[Want] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)          # tag key -> TagSource of the change
    confirm: list[str] = field(default_factory=list)               # ledger keys to mark active, no call needed
    forget: list[str] = field(default_factory=list)                # ledger keys to delete, no call needed
    suppress: list[str] = field(default_factory=list)              # ledger keys to mark suppressed (drift report)
    block: list[Want] = field(default_factory=list)                # kept off by the 250-tag limit
    audits: list[Drop] = field(default_factory=list)
    gone: bool = False
    resync: bool = False          # queued by a resync: rewrite the metafield even when no tag changes

    @property
    def mutations(self) -> int:
        return int(bool(self.add)) + int(bool(self.remove))

    @property
    def gid(self) -> str:
        return f"gid://shopify/Customer/{self.shopify_id}"


def _attribution(changes: Sequence[dict], *, add: bool | None = None) -> dict[tuple[int, str], dict]:
    """The newest outbox row per (customer, tag key), of either direction or only of `add`'s: its
    segment, version and source."""
    newest: dict[tuple[int, str], dict] = {}
    for row in changes:
        if add is None or row["add"] == add:
            newest[(row["customer_id"], tag_key(row["tag"]))] = row
    return newest


CONFIRMED_BY_ECHO = "confirmed by Shopify's webhook"


def plans_for(*, shop: Shop, customer_ids: Sequence[int], changes: Sequence[dict]) -> list[Plan]:
    """The diff of each customer: desired (memberships) against last known (mirror) and ours (ledger)."""
    customers = {pk: (sid, tags or [], deleted) for pk, sid, tags, deleted in Customer.objects.filter(
        shop=shop, pk__in=list(customer_ids)).values_list("pk", "shopify_id", "tags", "deleted_at")}
    ledger: dict[int, dict[str, CustomerTag]] = defaultdict(dict)
    for row in CustomerTag.objects.filter(customer_id__in=list(customers)):
        ledger[row.customer_id][row.key] = row
    wanted = desired_tags(shop=shop, customer_ids=list(customers))
    by_customer: dict[int, list[int]] = defaultdict(list)
    for row in changes:
        by_customer[row["customer_id"]].append(row["id"])
    attribution = _attribution(changes)
    additions, removals = _attribution(changes, add=True), _attribution(changes, add=False)
    # A row without a tag (a drift check, a resync) speaks for every tag of its customer.
    general = {row["customer_id"]: row["source"] for row in changes if not row["tag"]}
    report = shop.drift_policy == DriftPolicy.REPORT
    plans = []
    for customer_id in customer_ids:
        if customer_id not in customers:
            continue     # redacted meanwhile: its outbox rows went with it
        shopify_id, tags, deleted = customers[customer_id]
        plan = Plan(customer_id, shopify_id, by_customer.get(customer_id, []),
                    resync=general.get(customer_id) == TagSource.RESYNC)
        plans.append(plan)
        mine = ledger.get(customer_id, {})
        if deleted is not None:
            _plan_gone(plan, mine, attribution)
            continue
        present = {tag_key(t) for t in tags}
        desired = wanted.get(customer_id, {})
        for key, want in desired.items():
            row = mine.get(key)
            source = ((attribution.get((customer_id, key)) or {}).get("source") or general.get(customer_id)
                      or TagSource.MEMBERSHIP)
            # the customer left and came back while our removal of the tag went unrecorded
            returned = row is not None and removal_unanswered(row)
            if key in present:
                if row is not None and row.state == LedgerState.PENDING:
                    # our earlier call landed (a worker died before recording it; the echo told us)
                    plan.confirm.append(key)
                    plan.audits.append(Drop(want.tag, True, TagResult.APPLIED, source, want.segment_id,
                                            want.version, CONFIRMED_BY_ECHO, row.sent_at))
                elif row is not None and row.state == LedgerState.BLOCKED:
                    plan.forget.append(key)         # someone else added it meanwhile: theirs, not ours
                elif returned:
                    # whether that removal landed is not known yet (its echo may be on its way): a
                    # tagsAdd makes sure, and changes nothing if it did not
                    plan.add.append(want)
                    plan.sources[key] = source
                continue                            # already there: ours, or the merchant's to keep
            if returned:
                # that removal landed (the echo told us): it is audited, and the tag goes back on
                _removal_confirmed(plan, row, removals.get((customer_id, key)) or {}, source)
                plan.add.append(want)
                plan.sources[key] = source
            elif row is None or row.state in (LedgerState.PENDING, LedgerState.BLOCKED):
                plan.add.append(want)
                plan.sources[key] = source
            elif row.state == LedgerState.ACTIVE:   # ours, confirmed, and gone: someone removed it
                if report:
                    plan.suppress.append(key)
                    plan.audits.append(Drop(want.tag, False, TagResult.REPORTED, TagSource.DRIFT, want.segment_id,
                                            want.version, "removed outside the app; left as it is (policy report)"))
                else:
                    plan.add.append(want)
                    plan.sources[key] = TagSource.DRIFT
        for key, row in mine.items():
            if key in desired:
                continue
            source = ((attribution.get((customer_id, key)) or {}).get("source") or general.get(customer_id)
                      or TagSource.MEMBERSHIP)
            if row.state == LedgerState.PENDING and key in present:
                # our earlier add landed (its echo told us) before the customer left: audited, then removed
                change = additions.get((customer_id, key)) or {}
                plan.audits.append(Drop(row.tag, True, TagResult.APPLIED, change.get("source") or source,
                                        change.get("segment_id", row.segment_id), change.get("version"),
                                        CONFIRMED_BY_ECHO, row.sent_at))
            if row.state == LedgerState.ACTIVE and key in present or row.state == LedgerState.PENDING:
                # a pending add may have landed without its echo reaching us: removing is harmless
                change = attribution.get((customer_id, key)) or {}
                plan.remove.append(Want(row.tag, change.get("segment_id", row.segment_id), change.get("version")))
                plan.sources[key] = source
            elif removal_unanswered(row):
                # our removal landed (a worker died before recording it; the echo told us)
                plan.forget.append(key)
                _removal_confirmed(plan, row, removals.get((customer_id, key)) or {}, source)
            else:
                plan.forget.append(key)             # already gone, suppressed or blocked: nothing to call
        _fit_tag_limit(plan, present, mine)
    return plans


def _removal_confirmed(plan: Plan, row: CustomerTag, change: dict, source: str) -> None:
    # Audited as of when it was sent, as an answered call is: a tag event Shopify reports after
    # that is newer than our write (tag_drift.tag_event_observe), not a stale one.
    plan.audits.append(Drop(row.tag, False, TagResult.APPLIED, change.get("source") or source,
                            change.get("segment_id", row.segment_id), change.get("version"), CONFIRMED_BY_ECHO,
                            row.sent_at))


def _plan_gone(plan: Plan, mine: dict[str, CustomerTag], attribution: dict) -> None:
    """A customer deleted in Shopify: nothing to call; ledger rows go, the change is recorded dropped."""
    plan.gone = True
    plan.forget = list(mine)
    for key, row in mine.items():
        change = attribution.get((plan.customer_id, key)) or {}
        plan.audits.append(Drop(row.tag, False, TagResult.CUSTOMER_GONE, change.get("source") or TagSource.MEMBERSHIP,
                                row.segment_id, change.get("version"), "customer deleted in Shopify"))


def _fit_tag_limit(plan: Plan, present: set[str], mine: dict[str, CustomerTag]) -> None:
    """Shopify refuses a tagsAdd that would pass 250 tags: add what fits (segments in creation
    order, holdout tags last), keep the rest blocked and report them once."""
    removing = {tag_key(w.tag) for w in plan.remove} & present
    room = MAX_TAGS_PER_CUSTOMER - (len(present) - len(removing))
    if len(plan.add) <= room:
        return
    ordered = sorted(plan.add, key=lambda w: (w.holdout, w.segment_id or 0))
    plan.add, blocked = ordered[:max(0, room)], ordered[max(0, room):]
    for want in blocked:
        key = tag_key(want.tag)
        plan.sources.pop(key, None)
        plan.block.append(want)
        row = mine.get(key)
        if row is None or row.state != LedgerState.BLOCKED:
            plan.audits.append(Drop(want.tag, True, TagResult.TAG_LIMIT, TagSource.LIMIT, want.segment_id,
                                    want.version, f"the customer has {len(present)} tags; Shopify allows "
                                                  f"{MAX_TAGS_PER_CUSTOMER}"))


# -- the outbox --------------------------------------------------------------------------------------
CHANGE_FIELDS = ("id", "customer_id", "tag", "add", "segment_id", "version", "source", "attempts")


def _due(now: dt.datetime) -> Q:
    return Q(processed_at__isnull=True, bulk__isnull=True) & (Q(next_attempt_at__isnull=True)
                                                             | Q(next_attempt_at__lte=now))


def _bulk_claimed_customers(shop: Shop) -> set[int]:
    return set(TagChange.objects.filter(shop=shop, processed_at__isnull=True, bulk__isnull=False)
               .values_list("customer_id", flat=True).distinct())


def claim_batch(*, shop: Shop, customers: int, now: dt.datetime | None = None,
                exclude: set[int] | None = None) -> tuple[list[int], list[dict]]:
    """The next customers with due outbox rows (oldest first), and all their unprocessed rows.

    Customers a running bulk mutation holds are left to it. Only the rows read here are marked
    processed later: a change written meanwhile stays pending for the next batch.
    """
    now = now or timezone.now()
    exclude = (exclude or set()) | _bulk_claimed_customers(shop)
    picked: list[int] = []
    seen: set[int] = set()
    after = 0
    while len(picked) < customers:
        rows = list(TagChange.objects.filter(_due(now), shop=shop, id__gt=after).order_by("id")
                    .values_list("id", "customer_id")[:customers * 4])
        if not rows:
            break
        for _, customer_id in rows:
            if customer_id not in seen and customer_id not in exclude:
                seen.add(customer_id)
                picked.append(customer_id)
                if len(picked) == customers:
                    break
        after = rows[-1][0]
    if not picked:
        return [], []
    changes = list(TagChange.objects.filter(shop=shop, customer_id__in=picked, processed_at__isnull=True,
                                            bulk__isnull=True, id__lte=after).order_by("id").values(*CHANGE_FIELDS))
    return picked, changes


def due_customers(*, shop: Shop, at_least: int) -> int:
    """How many customers have due changes, counting no further than `at_least`."""
    ids = (TagChange.objects.filter(_due(timezone.now()), shop=shop).values_list("customer_id", flat=True)
           .distinct()[:at_least])
    return len(list(ids))


# -- writing before and after Shopify ---------------------------------------------------------------
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
        delay = min(5.0 * 2 ** attempts, 900.0) * random.uniform(1.0, 1.5)
        rows.filter(attempts=attempts).update(attempts=attempts + 1, last_error=error[:255],
                                              next_attempt_at=now + dt.timedelta(seconds=delay))


# -- talking to Shopify ----------------------------------------------------------------------------
FIELDS = "node { id } userErrors { field message }"


def mutation_document(ops: Sequence[bool]) -> str:
    """`mutation TagSync($i0: ID!, $t0: [String!]!, ...) { m0: tagsAdd(...) {...} m1: tagsRemove(...) }`."""
    variables = ", ".join(f"$i{n}: ID!, $t{n}: [String!]!" for n in range(len(ops)))
    fields = " ".join(f"m{n}: {'tagsAdd' if add else 'tagsRemove'}(id: $i{n}, tags: $t{n}) {{ {FIELDS} }}"
                      for n, add in enumerate(ops))
    return f"mutation TagSync({variables}) {{ {fields} }}"


class Sender(ShopSender):
    """The shop's sender (segments.services.shop_graphql), plus tag sync's aliased mutations."""

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


# -- a run -------------------------------------------------------------------------------------------
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


class _ShopLock:
    """pg_try_advisory_lock for the run's connection: released on exit, or by the server if we die."""

    def __init__(self, shop_id: int):
        self.shop_id, self.held = shop_id, False

    def __enter__(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, self.shop_id])
            self.held = bool(cursor.fetchone()[0])
        return self.held

    def __exit__(self, *exc) -> None:
        if self.held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, self.shop_id])


def shop_tags_sync(*, shop_id: int, budget_seconds: float | None = None, use_bulk: bool = True) -> SyncReport:
    """Sync a shop's due tag changes until none are left or the time budget is spent.

    Large diffs (at least SHOPSEG_TAG_BULK_THRESHOLD customers) go to a bulk mutation; running bulk
    operations are polled and their results applied. Stops quietly for an uninstalled shop.
    """
    from segments.services import tag_bulk

    report = SyncReport()
    budget = settings.SHOPSEG_TAG_SYNC_RUN_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    with _ShopLock(shop_id) as locked:
        if not locked:
            report.stopped = "busy"
            return report
        shop = Shop.objects.filter(pk=shop_id).first()
        if shop is None or not shop.is_active:
            report.stopped = "unavailable"
            return report
        def run(sender: Sender) -> None:
            try:
                if use_bulk:
                    tag_bulk.bulk_advance(shop=shop, client=sender, report=report)
                _direct(shop, sender, report, deadline, use_bulk)
            finally:
                report.requests += sender.requests
                report.points += sender.points
                report.throttled += sender.throttled
                report.transient += sender.transient

        try:
            with_shop_sender(shop_id=shop_id, call=run, sender=Sender,
                             max_transient_wait=MAX_TRANSIENT_WAIT)
        except ShopUnavailable:
            report.stopped = "unavailable"
        except (ShopifyTransientError, ShopifyAuthError, ShopifyQueryError) as exc:
            report.stopped = f"{type(exc).__name__}: {exc}"[:200]
            log.warning("tag sync for shop %s stopped: %s", shop_id, report.stopped)
    return report


def _direct(shop: Shop, sender: Sender, report: SyncReport, deadline: float, use_bulk: bool) -> None:
    from segments.services import tag_bulk, tag_metafield

    per_request = max_mutations_per_request(sender.throttle.capacity())
    while time.monotonic() < deadline:
        if use_bulk and tag_bulk.bulk_should_start(shop=shop):
            tag_bulk.bulk_start(shop=shop, client=sender, report=report)
            continue
        customers, changes = claim_batch(shop=shop, customers=CUSTOMERS_PER_PLAN)
        if not customers:
            return
        plans = plans_for(shop=shop, customer_ids=customers, changes=changes)
        quiet = [p for p in plans if not p.mutations]
        if quiet:
            report.add(confirm(shop=shop, plans=quiet, outcomes={}, at=timezone.now()))
        busy = [p for p in plans if p.mutations]
        report.customers += len(plans)
        if shop.tag_metafield:
            metafield_customers = {p.customer_id: p.shopify_id for p in plans if not p.gone and (p.mutations or p.resync)}
        if not busy:
            if shop.tag_metafield:
                report.add(tag_metafield.metafields_write(shop=shop, sender=sender, customers=metafield_customers))
            continue
        now = timezone.now()
        ledger_intend(shop=shop, plans=busy, now=now)
        for chunk in _requests(busy, per_request):
            at = timezone.now()
            try:
                outcomes = sender.send(chunk)
            except (ShopifyTransientError, ShopifyQueryError) as exc:
                # Everything not yet answered stays pending, with backoff; confirmed chunks stay done.
                done = {p.customer_id for p in busy[:busy.index(chunk[0])]}
                changes_back_off(change_ids=[i for p in busy if p.customer_id not in done for i in p.change_ids],
                                 error=f"{type(exc).__name__}: {exc}")
                raise
            report.calls += sum(p.mutations for p in chunk)
            report.add(confirm(shop=shop, plans=chunk, outcomes=outcomes, at=at))
        if shop.tag_metafield:
            report.add(tag_metafield.metafields_write(shop=shop, sender=sender, customers=metafield_customers))


def _requests(plans: Sequence[Plan], per_request: int) -> Iterable[list[Plan]]:
    chunk: list[Plan] = []
    size = 0
    for plan in plans:
        if chunk and size + plan.mutations > per_request:
            yield chunk
            chunk, size = [], 0
        chunk.append(plan)
        size += plan.mutations
    if chunk:
        yield chunk


# -- scheduling ---------------------------------------------------------------------------------------
def shops_with_due_tags() -> list[int]:
    """Installed shops with due outbox rows or a bulk tag operation to advance."""
    now = timezone.now()
    due = set(TagChange.objects.filter(_due(now), shop__status="installed").values_list("shop_id", flat=True)
              .distinct())
    due |= set(TagBulkOperation.objects.filter(status__in=["queued", "running"], shop__status="installed")
               .values_list("shop_id", flat=True).distinct())
    return sorted(due)


def shop_tags_resync(*, shop: Shop) -> int:
    """Queue every customer the app has tagged or wants tagged (after the prefix or holdout tag
    changed, or to repair anything the outbox missed); the diff decides what is actually called."""
    now = timezone.now()
    customer_ids = set(Membership.objects.filter(shop=shop).values_list("customer_id", flat=True))
    customer_ids |= set(CustomerTag.objects.filter(shop=shop).values_list("customer_id", flat=True))
    TagChange.objects.bulk_create([TagChange(shop=shop, customer_id=pk, tag="", add=True, created_at=now,
                                             source=TagSource.RESYNC) for pk in sorted(customer_ids)],
                                  batch_size=5000)
    return len(customer_ids)


def customers_tag_check(*, shop: Shop, customer_ids: Iterable[int], source: str = TagSource.DRIFT,
                        tag: str = "") -> int:
    """Queue customers for a look (drift noticed, a gap found): an outbox row each."""
    now = timezone.now()
    rows = [TagChange(shop=shop, customer_id=pk, tag=tag, add=True, created_at=now, source=source)
            for pk in sorted(set(customer_ids))]
    TagChange.objects.bulk_create(rows, batch_size=5000)
    return len(rows)
