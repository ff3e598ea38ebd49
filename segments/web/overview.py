"""Read models for the embedded admin's pages: the segment index (size, trend, revenue share,
status), what needs attention, and a segment's members, movement and versions.

Only reads; the pages and the JSON API format what these return. Every query goes through the
shop (or a segment already looked up through it).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat, TruncDate
from django.utils import timezone

from segments.engine.compiler import judges_visitors
from segments.engine.rules import parse
from segments.experiences.models import Playbook
from segments.measurement.models import SegmentKpiSnapshot
from segments.membership.models import Membership, MembershipEvent, Segment, SegmentStatus, SegmentVersion, TagChange
from segments.mirror.models import BackfillStatus, ShopSync
from segments.shops.calendar import shop_today
from segments.shops.models import Shop, ShopStatus
from segments.tags.models import BulkStatus, TagBulkOperation, TagResult
from segments.web.health import WebhookHealth

TREND_DAYS = 30
FAILED_RESULTS = (TagResult.FAILED, TagResult.INVALID)   # what POST /api/sync/retry makes due again
THROTTLED_SHARE = 0.1         # under a tenth of the bucket left: requests are waiting for points
RECENT = dt.timedelta(days=1)


# -- the segment index ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Badge:
    label: str
    tone: str        # success | attention | critical | info | neutral (Polaris badge tones)


@dataclass(frozen=True)
class SegmentRow:
    segment: Segment
    summary: str
    badges: tuple[Badge, ...]
    trend: tuple[int, ...]          # members per local day, oldest first (only days with a snapshot)
    revenue_share: float | None     # members' share of store revenue over the trend window


def segment_badges(segment: Segment, sync_error_segments: set[int] = frozenset()) -> tuple[Badge, ...]:
    badges = []
    if segment.status == SegmentStatus.PAUSED:
        badges.append(Badge("Paused", "attention"))
    elif segment.status == SegmentStatus.ARCHIVED:
        badges.append(Badge("Archived", "neutral"))
    elif segment.computing:
        badges.append(Badge("Calculating", "info"))
    if segment.compute_error:
        badges.append(Badge("Error", "critical"))
    if segment.pk in sync_error_segments:
        badges.append(Badge("Sync errors", "critical"))
    if not badges:
        badges.append(Badge("Active", "success"))
    return tuple(badges)


def sync_error_segment_ids(*, shop: Shop, now: dt.datetime | None = None) -> set[int]:
    """Segments with a tag change that failed for good in the last day."""
    now = now or timezone.now()
    return set(TagChange.objects.filter(shop=shop, result__in=FAILED_RESULTS, processed_at__gte=now - RECENT,
                                        segment__isnull=False).values_list("segment_id", flat=True).distinct())


def segment_index(*, shop: Shop, now: dt.datetime | None = None) -> list[SegmentRow]:
    """Every segment of the shop with its badges, 30-day size trend and revenue share."""
    today = shop_today(shop, now)
    since = today - dt.timedelta(days=TREND_DAYS - 1)
    segments = list(Segment.objects.filter(shop=shop).select_related("shop").order_by("status", "pk"))
    summaries = dict(SegmentVersion.objects.filter(segment__shop=shop, number=F("segment__current_version"))
                     .values_list("segment_id", "summary"))
    trends: dict[int, list[int]] = {}
    money: dict[int, tuple[Decimal, Decimal]] = {}
    for seg_id, members, revenue, store_revenue in (
            SegmentKpiSnapshot.objects.filter(shop=shop, day__gte=since, day__lte=today)
            .order_by("segment_id", "day").values_list("segment_id", "members", "revenue", "store_revenue")):
        trends.setdefault(seg_id, []).append(members)
        got, total = money.get(seg_id, (Decimal(0), Decimal(0)))
        money[seg_id] = (got + revenue, total + store_revenue)
    failing = sync_error_segment_ids(shop=shop, now=now)
    rows = []
    for segment in segments:
        trend = tuple(trends.get(segment.pk, ()))
        got, total = money.get(segment.pk, (Decimal(0), Decimal(0)))
        rows.append(SegmentRow(segment=segment, summary=summaries.get(segment.pk, ""),
                               badges=segment_badges(segment, failing), trend=trend,
                               revenue_share=float(got / total) if total else None))
    return rows


# -- progress and attention --------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """A running job the home page shows as a bar (`total` None: indeterminate)."""
    key: str
    label: str
    done: int
    total: int | None
    detail: str


def running_jobs(*, shop: Shop, sync: ShopSync | None) -> list[Progress]:
    """The backfill while it runs, and tag sync while changes are queued or a bulk operation runs."""
    jobs = []
    if sync and sync.backfill_status in (BackfillStatus.RUNNING, BackfillStatus.LOADING):
        total = sync.objects_total if sync.objects_total and sync.objects_total >= sync.lines_done else None
        jobs.append(Progress("backfill", "Importing store history", sync.lines_done, total,
                             "Shopify exports customers, products, orders and checkouts while earlier ones load; "
                             "the total grows as each export arrives."))
    pending = TagChange.objects.filter(shop=shop, processed_at__isnull=True).aggregate(
        changes=Count("pk"), customers=Count("customer", distinct=True))
    bulk = list(TagBulkOperation.objects.filter(shop=shop, status__in=(BulkStatus.QUEUED, BulkStatus.RUNNING))
                .values_list("line_count", "applied"))
    if pending["changes"] or bulk:
        lines = sum(n for n, _ in bulk)
        applied = sum(a for _, a in bulk)
        detail = (f"{pending['changes']:,} tag change{'s' if pending['changes'] != 1 else ''} for "
                  f"{pending['customers']:,} customer{'s' if pending['customers'] != 1 else ''} waiting")
        if bulk:
            detail += f"; a bulk operation has applied {applied:,} of {lines:,} lines"
        jobs.append(Progress("tags", "Writing tags to Shopify", applied if bulk else 0,
                             lines if bulk else None, detail))
    return jobs


@dataclass(frozen=True)
class Attention:
    tone: str          # critical | attention
    title: str
    detail: str
    page: str          # the admin page that deals with it (URL name)


def needs_attention(*, shop: Shop, webhooks: WebhookHealth, sync_status: dict,
                    segments: list[Segment]) -> list[Attention]:
    """What the merchant should look at, most serious first."""
    items = []
    if shop.status == ShopStatus.NEEDS_REAUTH:
        items.append(Attention("critical", "Reconnect shopseg",
                               "Open shopseg from your Shopify admin's Apps page to reconnect.", "home"))
    if webhooks.failed:
        items.append(Attention("critical", f"{webhooks.failed:,} update{_s(webhooks.failed)} from Shopify failed",
                               "They could not be applied after every retry; the next reconciliation repairs them.",
                               "sync"))
    failed = sync_status.get("failed_changes", 0)
    if failed:
        items.append(Attention("critical", f"{failed:,} tag change{_s(failed)} failed",
                               "Shopify refused them after repeated attempts. Retry them from Sync & data.", "sync"))
    broken = [s for s in segments if s.compute_error]
    if broken:
        items.append(Attention("critical", f"{len(broken)} segment{_s(len(broken))} could not be calculated",
                               ", ".join(s.name for s in broken[:5]), "home"))
    throttle = sync_status.get("throttle") or {}
    if throttle.get("maximum_available") and throttle.get("available", 0) < \
            THROTTLED_SHARE * throttle["maximum_available"]:
        items.append(Attention("attention", "Shopify is throttling tag writes",
                               f"{throttle['available']:.0f} of {throttle['maximum_available']:.0f} points left; "
                               "writes continue as points return.", "sync"))
    reported = (sync_status.get("drift") or {}).get("reported_24h", 0)
    if reported:
        items.append(Attention("attention", f"{reported:,} tag change{_s(reported)} by someone else in the last day",
                               "Your drift policy is to report them, so they were left as they are.", "sync"))
    problems = (sync_status.get("settings") or {}).get("problems") or []
    if problems:
        items.append(Attention("critical", "Tag settings need a fix", "; ".join(problems[:3]), "settings"))
    if webhooks.retrying:
        items.append(Attention("attention", f"{webhooks.retrying:,} update{_s(webhooks.retrying)} will be retried",
                               webhooks.last_error[:200], "sync"))
    return items


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def tag_queue_counts(*, shop: Shop, now: dt.datetime | None = None) -> dict:
    """The tag outbox as the sync page counts it: due now, being written (in a bulk operation or
    backing off after an error), and failed for good."""
    now = now or timezone.now()
    return TagChange.objects.filter(shop=shop).aggregate(
        due=Count("pk", filter=Q(processed_at__isnull=True, bulk__isnull=True)
                  & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))),
        processing=Count("pk", filter=Q(processed_at__isnull=True)
                         & (Q(bulk__isnull=False) | Q(next_attempt_at__gt=now))),
        failed=Count("pk", filter=Q(processed_at__isnull=False, result__in=FAILED_RESULTS)))


def failed_tag_changes(*, shop: Shop, limit: int = 20) -> list[TagChange]:
    """The newest tag changes that failed for good (the ones a retry makes due again)."""
    return list(TagChange.objects.filter(shop=shop, processed_at__isnull=False, result__in=FAILED_RESULTS)
                .select_related("segment", "customer").order_by("-processed_at", "-pk")[:limit])


def segment_playbooks(*, shop: Shop) -> list[tuple[Segment, Playbook]]:
    """Every segment that is not archived with its playbook (unsaved defaults where none was written,
    as segments.experiences.playbooks.playbook_get_or_default gives them)."""
    segments = list(Segment.objects.filter(shop=shop).exclude(status=SegmentStatus.ARCHIVED)
                    .select_related("shop").order_by("name", "pk"))
    written = {p.segment_id: p for p in Playbook.objects.filter(shop=shop, segment__in=segments)}
    return [(s, written.get(s.pk) or Playbook(shop_id=shop.pk, segment=s)) for s in segments]


# -- one segment -----------------------------------------------------------------------------------
MEMBER_PAGE = 25


def segment_member_page(*, segment: Segment, q: str = "", after: int = 0,
                        limit: int = MEMBER_PAGE) -> tuple[list[Membership], int | None]:
    """Members by customer id (keyset: `after` is the previous page's last id), optionally those whose
    full name or email contains `q` (case-insensitive; what GET /api/segments/<id>/members?q= matches).
    Returns (rows, next_after)."""
    rows = Membership.objects.filter(shop=segment.shop_id, segment=segment, customer_id__gt=after)
    q = q.strip()
    if q:
        rows = rows.alias(full_name=Concat("customer__first_name", Value(" "), "customer__last_name")).filter(
            Q(full_name__icontains=q) | Q(customer__email__icontains=q))
    page = list(rows.select_related("customer").order_by("customer_id")[:limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return page, (page[-1].customer_id if more else None)


@dataclass(frozen=True)
class DayMovement:
    day: dt.date
    entries: int
    exits: int


def segment_movement(*, segment: Segment, days: int = 30, now: dt.datetime | None = None) -> list[DayMovement]:
    """Entries and exits per shop-local day over the last `days` days, every day present (zeros too)."""
    zone = ZoneInfo(segment.shop.iana_timezone or "UTC")
    today = shop_today(segment.shop, now)
    start = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
    counted = {row["day"]: row for row in MembershipEvent.objects.filter(segment=segment, at__gte=since)
               .annotate(day=TruncDate("at", tzinfo=zone)).values("day")
               .annotate(entries=Count("pk", filter=Q(entered=True)), exits=Count("pk", filter=Q(entered=False)))
               .order_by("day")}
    return [DayMovement(day, counted.get(day, {}).get("entries", 0), counted.get(day, {}).get("exits", 0))
            for day in (start + dt.timedelta(days=i) for i in range(days))]


def segment_versions(*, segment: Segment) -> list[SegmentVersion]:
    return list(segment.versions.order_by("-number"))


def segment_takes_visitors(*, segment: Segment) -> bool:
    """Whether the segment's current rules read browsing, so anonymous visitors can be in it."""
    rules = segment.versions.filter(number=segment.current_version).values_list("rules", flat=True).first()
    return rules is not None and judges_visitors(parse(rules))


def segment_summary(*, segment: Segment) -> str:
    return (segment.versions.filter(number=segment.current_version).values_list("summary", flat=True).first()
            or "")
