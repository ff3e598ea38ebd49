"""Mirror writes, with segments.mirror.orders the only code that writes mirror rows: customers here,
and the helpers both share. Every function is idempotent and set-at-a-time.

- A row is updated only by data at least as new as what it holds (Shopify's `updated_at`).
- Orders and checkouts name a customer by Shopify id; an unknown one gets a stub row that its
  own delivery fills in later. Guest activity is linked to the customer with the same email.
- Customers whose behaviour-relevant data changed get `dirty_at`, which the segment engine reads,
  and with it `dirty_cause`: what the caller said it is applying (segments.mirror.cause; "" when
  nobody said). Every statement that sets one sets both.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from segments.engine.context import OWNED_TAG_PREFIX
from segments.mirror.cause import current_dirty_cause
from segments.mirror.models import Checkout, Customer, Order
from segments.mirror.records import CheckoutRecord, CustomerRecord, OrderRecord
from segments.mirror.sql import distinct, upsert
from segments.shops.models import Shop

NEWER = "(t.updated_at IS NULL OR excluded.updated_at >= t.updated_at)"
# A change to these marks a customer dirty; our own tag writes echoing back change none of them.
CUSTOMER_SIGNALS = ("email", "state", "email_marketing", "sms_marketing")
CONSENTS = ("email_marketing", "sms_marketing")
# Per channel, when the state the mirror holds was true (see customer_consent_apply).
CONSENT_STAMPS = {"email_marketing": "email_consent_at", "sms_marketing": "sms_consent_at"}
UNKNOWN = "unknown"
# Tags the app writes start with the shop's `tag_prefix` (this is its default); changes to them are our own echo.


class OrderNotYetKnown(Exception):
    """A refund arrived before its order; retried later (the order delivery is on its way)."""


def normal_email(email: str | None) -> str:
    return (email or "").strip().lower()


def newer_or_changed(columns: Iterable[str], tie: str = "TRUE", known_only: dict[str, str] | None = None) -> str:
    """The upsert guard for rows whose delivery marks customers dirty: strictly newer data, or data
    as new that differs (two changes within Shopify's one-second resolution) and passes `tie`. A
    duplicate delivery matches neither, so it updates nothing and dirties no one. A column in
    `known_only` (see keep_known) differs only when its new value is not the "not known" one."""
    known_only = known_only or {}
    changed = " OR ".join(
        f"(excluded.{c} <> '{known_only[c]}' AND {distinct(f't.{c}', f'excluded.{c}')})" if c in known_only
        else distinct(f"t.{c}", f"excluded.{c}") for c in columns)
    return (f"(t.updated_at IS NULL OR excluded.updated_at > t.updated_at "
            f"OR (excluded.updated_at = t.updated_at AND ({changed}) AND {tie}))")


def keep_known(not_known: dict[str, str]) -> dict[str, str]:
    """SET expressions keeping the stored value when the new one is the column's "not known" value.

    Sources differ in what they know: customer webhooks carry no consent, GraphQL orders no client
    details (so no device), GraphQL abandoned checkouts no email or cart token. The poorer source
    must not erase what the richer one said.
    """
    return {c: f"CASE WHEN excluded.{c} = '{empty}' THEN t.{c} ELSE excluded.{c} END"
            for c, empty in not_known.items()}


# Within one second an order only moves forward: refunds add up and a cancellation stays, so a
# same-second delivery that would take either back is the older one.
ORDER_NOT_KNOWN = {"device": UNKNOWN}
CHECKOUT_NOT_KNOWN = {"device": UNKNOWN, "email": "", "cart_token": ""}
ORDER_TIE = ("excluded.total_refunded >= t.total_refunded "
             "AND (excluded.cancelled_at IS NOT NULL OR t.cancelled_at IS NULL)")


def dedupe(records: Iterable, key: str) -> list:
    """Keep the newest record per key within one batch (a batch may hold the same row twice)."""
    newest: dict = {}
    for record in records:
        k = getattr(record, key)
        current = newest.get(k)
        if current is None or (record.updated_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc)) >= (
                current.updated_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc)):
            newest[k] = record
    return list(newest.values())


def mark_dirty(*, shop: Shop, customer_pks: Iterable[int]) -> int:
    pks = [pk for pk in set(customer_pks) if pk]
    if not pks:
        return 0
    return Customer.objects.filter(shop=shop, pk__in=pks).update(dirty_at=timezone.now(),
                                                                 dirty_cause=current_dirty_cause())


# -- customers ---------------------------------------------------------------------------------
def _consent_from_record(column: str) -> str:
    """SQL: the record's consent replaces the stored one. It must say something ("unknown": the
    source did not) and be at least as new as the stored state, the record's consent being as old
    as the customer's updated_at (see customer_consent_apply for the whole ordering)."""
    stamp = CONSENT_STAMPS[column]
    return f"(excluded.{column} <> '{UNKNOWN}' AND (t.{stamp} IS NULL OR excluded.updated_at >= t.{stamp}))"


def customers_upsert(*, shop: Shop, records: Sequence[CustomerRecord]) -> list[int]:
    """Upsert customers; returns the pks of rows that applied. Links guest activity by email.

    A consent of "unknown" means the source did not say (customer webhooks since 2025-01 carry no
    consent; the consent topics do), so it keeps the stored state rather than erasing it; a known
    one replaces the stored state only when the record is at least as new as that state.
    """
    records = dedupe(records, "shopify_id")
    now, cause = timezone.now(), current_dirty_cause()
    with_tags = [r for r in records if r.tags is not None]
    without_tags = [r for r in records if r.tags is None]
    consents: dict[str, str] = {}
    for column, stamp in CONSENT_STAMPS.items():
        applies = _consent_from_record(column)
        consents[column] = f"CASE WHEN {applies} THEN excluded.{column} ELSE t.{column} END"
        consents[stamp] = f"CASE WHEN {applies} THEN excluded.updated_at ELSE t.{stamp} END"
    signal_changed = " OR ".join(
        [distinct(f"t.{c}", f"excluded.{c}") for c in CUSTOMER_SIGNALS if c not in CONSENTS]
        + [f"({_consent_from_record(c)} AND {distinct(f't.{c}', f'excluded.{c}')})" for c in CONSENTS])
    # a stub (never seen) or a behaviour-relevant change makes the customer dirty; anything else
    # (our own tag write echoing back) leaves both the mark and its cause as they were
    dirtied = f"t.updated_at IS NULL OR {signal_changed}"
    applied: list[tuple] = []
    for batch, tags in ((with_tags, True), (without_tags, False)):
        rows = []
        for r in batch:
            row = {"shop_id": shop.pk, "shopify_id": r.shopify_id, "email": normal_email(r.email),
                   "phone": r.phone or "", "first_name": r.first_name or "", "last_name": r.last_name or "",
                   "state": r.state or "", "email_marketing": r.email_marketing or UNKNOWN,
                   "sms_marketing": r.sms_marketing or UNKNOWN,
                   "created_at": r.created_at, "updated_at": r.updated_at, "dirty_at": now,
                   "dirty_cause": cause}
            for column, stamp in CONSENT_STAMPS.items():   # a new row's consent is as old as the record
                row[stamp] = r.updated_at if row[column] != UNKNOWN else None
            row["tags"] = list(r.tags) if tags else []
            rows.append(row)
        update = ["email", "phone", "first_name", "last_name", "state", "updated_at"] + (["tags"] if tags else [])
        applied += upsert(
            Customer, rows, conflict=("shop_id", "shopify_id"), update=update,
            guard=f"t.deleted_at IS NULL AND {NEWER}",
            extra_set={"created_at": "COALESCE(excluded.created_at, t.created_at)", **consents,
                       "dirty_at": f"CASE WHEN {dirtied} THEN excluded.dirty_at ELSE t.dirty_at END",
                       "dirty_cause": f"CASE WHEN {dirtied} THEN excluded.dirty_cause ELSE t.dirty_cause END"},
            returning=("id", "email"),
        )
    _link_guest_activity(shop=shop, customers=[(pk, email) for pk, email in applied if email])
    return [pk for pk, _ in applied]


def _link_guest_activity(*, shop: Shop, customers: list[tuple[int, str]]) -> None:
    """Guest orders and checkouts with a customer's email now belong to that customer."""
    if not customers:
        return
    by_email = dict((email, pk) for pk, email in customers)
    for model in (Order, Checkout):
        guests = (model.objects.filter(shop=shop, customer__isnull=True, email__in=list(by_email))
                  .values_list("pk", "email"))
        for pk, email in guests:
            model.objects.filter(pk=pk).update(customer_id=by_email[email])
        if guests:
            mark_dirty(shop=shop, customer_pks=[by_email[e] for _, e in guests])


# PostgreSQL: create the missing stubs and read every pk in one round trip. The outer SELECT sees
# the table as it was when the statement began, so new rows come from `made` and old ones from it.
STUBS_SQL = """
WITH made AS (
  INSERT INTO segments_customer (shop_id, shopify_id, email, phone, first_name, last_name, state,
                                 email_marketing, sms_marketing, tags, dirty_at, dirty_cause)
  SELECT %s, ids.sid, '', '', '', '', '', %s, %s, '[]'::jsonb, %s, %s FROM unnest(%s::bigint[]) AS ids(sid)
  ON CONFLICT (shop_id, shopify_id) DO NOTHING
  RETURNING shopify_id, id)
SELECT shopify_id, id FROM made
UNION ALL
SELECT shopify_id, id FROM segments_customer WHERE shop_id = %s AND shopify_id = ANY(%s::bigint[])
"""


def _customer_pks(*, shop: Shop, shopify_ids: set[int]) -> dict[int, int]:
    """Shopify id -> pk, creating stub rows for customers not seen yet."""
    if not shopify_ids:
        return {}
    ids, now, cause = sorted(shopify_ids), timezone.now(), current_dirty_cause()
    with connection.cursor() as cursor:
        cursor.execute(STUBS_SQL, [shop.pk, UNKNOWN, UNKNOWN, now, cause, ids, shop.pk, ids])
        found = dict(cursor.fetchall())
    if found.keys() != shopify_ids:  # a stub another transaction committed meanwhile
        found = dict(Customer.objects.filter(shop=shop, shopify_id__in=ids).values_list("shopify_id", "pk"))
    return found


def _customers_by_email(*, shop: Shop, emails: set[str]) -> dict[str, int]:
    if not emails:
        return {}
    return dict(Customer.objects.filter(shop=shop, email__in=emails, deleted_at__isnull=True)
                .order_by("shopify_id").values_list("email", "pk"))


def customer_resolver(*, shop: Shop, records: Sequence[OrderRecord | CheckoutRecord]):
    """The customer pk of each order or checkout: by Shopify id (stubbing unknown customers),
    else a guest's email matched to a known customer's."""
    by_id = _customer_pks(shop=shop, shopify_ids={r.customer_shopify_id for r in records if r.customer_shopify_id})
    by_email = _customers_by_email(shop=shop, emails={normal_email(r.email) for r in records
                                                      if not r.customer_shopify_id and r.email})

    def customer_of(record: OrderRecord | CheckoutRecord) -> int | None:
        if record.customer_shopify_id:
            return by_id.get(record.customer_shopify_id)
        return by_email.get(normal_email(record.email))

    return customer_of


def customer_delete(*, shop: Shop, shopify_id: int) -> bool:
    """Shopify deleted the customer: keep the row as a tombstone without personal data."""
    return bool(Customer.objects.filter(shop=shop, shopify_id=shopify_id, deleted_at__isnull=True).update(
        deleted_at=timezone.now(), email="", phone="", first_name="", last_name="", tags=[],
        dirty_at=timezone.now(), dirty_cause=current_dirty_cause()))


def customers_merge(*, shop: Shop, kept_shopify_id: int, merged_shopify_id: int) -> None:
    """Two customers became one: move the merged one's history to the kept one."""
    with transaction.atomic(savepoint=False):
        ids = _customer_pks(shop=shop, shopify_ids={kept_shopify_id, merged_shopify_id})
        kept, merged = ids[kept_shopify_id], ids[merged_shopify_id]
        Order.objects.filter(shop=shop, customer_id=merged).update(customer_id=kept)
        Checkout.objects.filter(shop=shop, customer_id=merged).update(customer_id=kept)
        Customer.objects.filter(pk=merged).update(deleted_at=timezone.now(), merged_into_id=kept_shopify_id,
                                                  email="", phone="", first_name="", last_name="")
        mark_dirty(shop=shop, customer_pks=[kept, merged])


def customer_consent_apply(*, shop: Shop, shopify_id: int, at: dt.datetime, email_marketing: str | None = None,
                           sms_marketing: str | None = None) -> bool:
    """A consent topic: set the channel it reports; True (and dirty) if the state changed.

    Consent is applied in the order the changes happened, whatever order they are delivered in.
    Each channel keeps when the state it holds was true (`email_consent_at`, `sms_consent_at`):
    - from a consent topic, `at`: the consent's own `consent_updated_at`, or, when Shopify sends it
      null (its sample does), when the delivery was triggered (X-Shopify-Triggered-At; when it was
      received if the header was missing); see webhooks.handlers;
    - from a customer record (GraphQL history import or reconciliation, a REST payload that
      carries consent), the customer's `updated_at` (customers_upsert).
    A change at least as new as that time (any change, while no time is held) replaces the state
    and the time, and one repeating the state held still moves the time on; an older one is
    ignored. A customer not seen yet gets a stub that keeps the consent when its own delivery
    fills it in.
    """
    channels = [(field, value) for field, value in (("email_marketing", email_marketing),
                                                    ("sms_marketing", sms_marketing)) if value]
    if not channels:
        return False
    pk = _customer_pks(shop=shop, shopify_ids={shopify_id})[shopify_id]
    changed = False
    for field, value in channels:
        stamp = CONSENT_STAMPS[field]
        held = Customer.objects.filter(Q(**{f"{stamp}__isnull": True}) | Q(**{f"{stamp}__lte": at}), pk=pk,
                                       deleted_at__isnull=True)
        changed |= bool(held.filter(~Q(**{field: value})).update(**{field: value, stamp: at}, dirty_at=timezone.now(),
                                                                 dirty_cause=current_dirty_cause()))
        # the same state, known as of later: an older change delivered after this one must not win
        held.filter(Q(**{f"{stamp}__isnull": True}) | Q(**{f"{stamp}__lt": at}), **{field: value}).update(**{stamp: at})
    return changed


def _owned_prefix(shop: Shop) -> str:
    """The shop's tag prefix as stored (callers often hold a Shop with only its pk loaded)."""
    prefix = Shop.objects.filter(pk=shop.pk).values_list("tag_prefix", flat=True).first()
    return prefix or OWNED_TAG_PREFIX


def customer_tags_apply(*, shop: Shop, shopify_id: int, added: Sequence[str] = (),
                        removed: Sequence[str] = (), owned_prefix: str | None = None,
                        occurred_at: dt.datetime | None = None) -> bool:
    """customer.tags_added / _removed: Shopify tags are case-insensitive sets.

    Returns whether the stored tags changed. Only a change to a tag the app does not own marks the
    customer dirty (rules may use merchant tags); our own writes (the shop's `tag_prefix`, `seg:` by
    default) echoing back do not. With `occurred_at`, a tag whose stored event is newer is left as
    it is (an add retried after a later removal does not bring the tag back).
    """
    if owned_prefix is None:
        owned_prefix = _owned_prefix(shop)
    with transaction.atomic(savepoint=False):
        _customer_pks(shop=shop, shopify_ids={shopify_id})  # a tag event may beat customers/create
        # FOR NO KEY UPDATE: only non-key columns change, and a stronger FOR UPDATE would block every
        # row that references the customer (tag sync's ledger, audit and outbox rows) until the
        # drain's batch commits, while the drain may be waiting on the tag sync: a deadlock.
        customer = (Customer.objects.select_for_update(no_key=True).filter(shop=shop, shopify_id=shopify_id,
                                                                           deleted_at__isnull=True).first())
        if customer is None:
            return False
        stamps = dict(customer.tag_events_at or {})
        if occurred_at is not None:
            added = _newest_tag_events(stamps, occurred_at, added)
            removed = _newest_tag_events(stamps, occurred_at, removed)
        gone = {t.lower() for t in removed}
        tags = [t for t in customer.tags if t.lower() not in gone]
        present = {t.lower() for t in tags}
        for tag in added:
            if tag.lower() not in present:
                tags.append(tag)
                present.add(tag.lower())
        if tags == customer.tags:
            if stamps != (customer.tag_events_at or {}):
                Customer.objects.filter(pk=customer.pk).update(tag_events_at=stamps)
            return False
        prefix = owned_prefix.lower()
        before = {t.lower() for t in customer.tags if not t.lower().startswith(prefix)}
        after = {t.lower() for t in tags if not t.lower().startswith(prefix)}
        fields: dict = {"tags": tags, "tag_events_at": stamps}
        if before != after:
            fields["dirty_at"], fields["dirty_cause"] = timezone.now(), current_dirty_cause()
        Customer.objects.filter(pk=customer.pk).update(**fields)
        return True


def _newest_tag_events(stamps: dict[str, str], occurred_at: dt.datetime, tags: Sequence[str]) -> list[str]:
    """The tags this event is the newest word on, their stamps moved to it (`stamps` is updated)."""
    kept = []
    for tag in tags:
        seen = stamps.get(tag.lower())
        if seen is not None and dt.datetime.fromisoformat(seen) > occurred_at:
            continue
        stamps[tag.lower()] = occurred_at.isoformat()
        kept.append(tag)
    return kept


