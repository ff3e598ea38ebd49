"""What tag sync decides per customer: the tags their memberships want, the plan that reaches them
from what Shopify holds (adds, removes, drops), and the outbox rows (TagChange) due for a run."""
from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db.models import Q
from django.utils import timezone

from segments.membership.models import Membership, TagChange
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.tags.models import (
    MAX_TAGS_PER_CUSTOMER, CustomerTag, DriftPolicy, LedgerState, TagBulkOperation, TagResult, TagSource,
    holdout_tag_for, tag_key, tag_problems,
)
from segments.tags.naming import segment_tag

log = logging.getLogger(__name__)
CUSTOMERS_PER_PLAN = 198        # customers whose diffs are computed together (two full requests)


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


CHANGE_FIELDS = ("id", "customer_id", "tag", "add", "segment_id", "version", "source", "attempts")


def due_filter(now: dt.datetime) -> Q:
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
        rows = list(TagChange.objects.filter(due_filter(now), shop=shop, id__gt=after).order_by("id")
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
    ids = (TagChange.objects.filter(due_filter(timezone.now()), shop=shop).values_list("customer_id", flat=True)
           .distinct()[:at_least])
    return len(list(ids))


def shops_with_due_tags() -> list[int]:
    """Installed shops with due outbox rows or a bulk tag operation to advance."""
    now = timezone.now()
    due = set(TagChange.objects.filter(due_filter(now), shop__status="installed").values_list("shop_id", flat=True)
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
