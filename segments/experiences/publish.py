"""Writing a shop's storefront state to Shopify: its offers (segments.experiences.offers), then the
experiences the theme's "Segment experience" block shows, as one app-data metafield.

The metafield belongs to the app's installation (`currentAppInstallation`), namespace `shopseg`, key
`experiences`, type `json`; theme app extension Liquid reads it as
`app.metafields.shopseg.experiences.value` (shopify.dev: the `app` Liquid object, app-data
metafields), and only the app can change it. Its value:

    {"experiences": {"<segment tag>": {"preset": …, <the preset's fields, texts filled>,
                                       "codes": {<offer key>: <discount code>}}}}

for every segment that is not archived and has an experience, keyed by the tag its members carry.

storefront_wanted() marks a shop in the transaction of a change; the beat's sweep writes each marked
shop under a lease (LEASE), so a killed worker's shop is taken up again and two sweeps never write
the same shop at once. A burst of edits is written once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from segments.experiences.models import NativeSegment, Offer, OfferState, Playbook, StorefrontSync
from segments.experiences.offers import OfferWriteError, offers_write, segment_offer_codes, shop_offers_wanted
from segments.experiences.presets import experience_texts
from segments.membership.models import SegmentStatus
from segments.shops.graphql import ShopSender, shop_sender_run
from segments.shops.models import Shop, ShopStatus

log = logging.getLogger(__name__)

NAMESPACE, KEY, TYPE = "shopseg", "experiences", "json"
LEASE = dt.timedelta(seconds=120)
MAX_TRANSIENT_WAIT = 15.0     # seconds a run keeps retrying 5xx answers before it backs off
BACKOFF_BASE, BACKOFF_MOST = 5.0, 3600.0

INSTALLATION = """query Installation { currentAppInstallation { id } }"""
WRITE = """mutation PublishExperiences($metafields: [MetafieldsSetInput!]!) {
  metafieldsSet(metafields: $metafields) { metafields { id } userErrors { field message code } }
}"""


def storefront_wanted(*, shop_id: int) -> None:
    """Mark the shop's storefront state to be written (call inside the change's transaction)."""
    now = timezone.now()
    StorefrontSync.objects.update_or_create(shop_id=shop_id, defaults={"wanted_at": now, "next_attempt_at": now})


def experiences_document(*, shop: Shop) -> dict[str, Any]:
    codes = segment_offer_codes(shop=shop)
    books = (Playbook.objects.filter(shop=shop).exclude(experience={})
             .exclude(segment__status=SegmentStatus.ARCHIVED).select_related("segment", "segment__shop")
             .order_by("segment__handle"))
    return {"experiences": {book.segment.tag: {**experience_texts(book.experience),
                                               "codes": codes.get(book.segment_id, {})} for book in books}}


def _fingerprint(shop: Shop) -> str:
    wanted = sorted((segment_id, key, json.dumps(spec, sort_keys=True))
                    for (segment_id, key), spec in shop_offers_wanted(shop=shop).items())
    mirrored = sorted(NativeSegment.objects.filter(shop=shop).values_list("segment_id", "query", "name"))
    pending = Offer.objects.filter(shop=shop).exclude(state__in=[OfferState.LIVE, OfferState.ENDED]).count()
    text = json.dumps([wanted, [list(m) for m in mirrored], pending, experiences_document(shop=shop)],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _publish(sender: ShopSender, shop: Shop, before: str) -> str:
    """Write what changed; the fingerprint of what Shopify now holds."""
    if _fingerprint(shop) == before:
        return before
    offers_write(sender, shop)
    installation = ((sender.call(INSTALLATION).data or {}).get("currentAppInstallation") or {}).get("id")
    if not installation:
        raise OfferWriteError("Shopify did not say which installation this is")
    value = json.dumps(experiences_document(shop=shop), separators=(",", ":"), sort_keys=True)
    payload = (sender.call(WRITE, {"metafields": [{"ownerId": installation, "namespace": NAMESPACE, "key": KEY,
                                                   "type": TYPE, "value": value}]}).data or {}).get("metafieldsSet") or {}
    if payload.get("userErrors"):
        raise OfferWriteError("Shopify refused the experiences metafield: "
                              + "; ".join(e.get("message", "") for e in payload["userErrors"]))
    return _fingerprint(shop)


# Due: marked by a playbook's change, or a segment or the shop changed since the last write (a rename,
# an archive, a new tag prefix); what is written is compared with the last write first, so a change
# that alters nothing the storefront shows sends nothing.
DUE = """s.next_attempt_at <= clock_timestamp() AND (s.published_at IS NULL OR s.wanted_at > s.published_at
  OR (SELECT updated_at FROM segments_shop WHERE id = s.shop_id) > s.published_at
  OR EXISTS (SELECT 1 FROM segments_segment g WHERE g.shop_id = s.shop_id AND g.updated_at > s.published_at))"""


def _claim(shop_id: int) -> dt.datetime | None:
    """This run's start, with the shop leased to it; None when it is not due or is leased."""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE segments_storefrontsync s SET next_attempt_at = clock_timestamp() + %s "
                       f"WHERE s.shop_id = %s AND {DUE} RETURNING clock_timestamp()", [LEASE, shop_id])
        row = cursor.fetchone()
    return row[0] if row else None


def shop_storefront_publish(*, shop_id: int) -> str:
    """Write the shop's offers and experiences if they are due: "" when written (or not due), else why not."""
    started = _claim(shop_id)
    if started is None:
        return ""
    shop = Shop.objects.get(pk=shop_id)
    sync = StorefrontSync.objects.filter(shop_id=shop_id)
    written = {"fingerprint": sync.values_list("fingerprint", flat=True).first() or ""}

    def publish(sender: ShopSender) -> None:
        written["fingerprint"] = _publish(sender, shop, written["fingerprint"])
    try:
        stopped = shop_sender_run(shop_id=shop_id, call=publish, what="storefront publish",
                                  max_transient_wait=MAX_TRANSIENT_WAIT)
    except OfferWriteError as exc:
        stopped = str(exc)[:500]
        log.warning("storefront publish for shop %s stopped: %s", shop_id, stopped)
    if not stopped:    # a change made while writing is later than `started`: written by the next sweep
        sync.update(published_at=started, fingerprint=written["fingerprint"], attempts=0, error="", next_attempt_at=timezone.now())
        return ""
    row = sync.values("attempts").first() or {"attempts": 0}
    delay = min(BACKOFF_BASE * 2 ** row["attempts"], BACKOFF_MOST)
    sync.update(attempts=F("attempts") + 1, error=stopped, next_attempt_at=timezone.now() + dt.timedelta(seconds=delay))
    return stopped


def shops_with_due_storefront() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT s.shop_id FROM segments_storefrontsync s JOIN segments_shop sh ON sh.id = s.shop_id "
                       f"WHERE sh.status = %s AND {DUE}", [ShopStatus.INSTALLED])
        return [row[0] for row in cursor.fetchall()]
