"""History replay: bring a freshly installed devstore shop forward through its last N shop-local
days, so that KPIs, migration and holdout lift read observed history on the merchant's first day.

The install is moved back to the last second before the window (T0): membership is derived again
as of T0, from a mirror whose orders all come before T0 (the shop's history must end there). Then,
for each day d of the window: d's orders (one segment's treated members buying more than its
holdout: the planted playbook effect) are placed in devstore at times within d and reach the app
through devstore's webhooks; the customers they touched are refreshed as of the end of d (trigger
"event"); the nightly pass runs as of the end of d (metrics rebuild, full recompute: windows that
passed); and d's snapshot is written as observed by the nightly snapshot service. Finally the shop
catches up to the real now. The app's clock is never faked: every service is handed its `now`.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from random import Random

from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from devstore.replay_traffic import DevstoreOrders, day_orders, shop_variants, shoppers
from segments.engine.context import OWNED_TAG_PREFIX, context_for
from segments.engine.triggers import Trigger
from segments.measurement.lift import segment_lift
from segments.measurement.models import SegmentKpiSnapshot
from segments.measurement.snapshots import kpi_snapshot_day
from segments.membership import clock as segment_clock
from segments.membership import recompute as membership_service
from segments.membership.clock import segments_time_sweep
from segments.membership.definitions import segment_update
from segments.membership.models import Membership, MembershipEvent, Segment, SegmentClock, SegmentStatus
from segments.membership.recompute import segment_rules, segments_recompute
from segments.metrics import refresh as metrics_service
from segments.metrics.refresh import customer_metrics_rebuild, dirty_customers_refresh
from segments.mirror.models import BackfillStatus, Order, ShopSync
from segments.shops.calendar import shop_day_bounds, shop_today
from segments.shops.models import Shop, ShopStatus
from shopseg.deadlocks import retry_on_deadlock

MAX_DAYS = 90
NIGHTLY_EVERY = 7       # replayed days between full nightly passes (metrics rebuilt, every segment recomputed)
REPLAY_CAUSE = "history replay"


class _Phases(dict):
    """Seconds per phase, summed: `with phases("ingest"): ...`."""

    def __call__(self, name: str):
        return _Timed(self, name)


class _Timed:
    def __init__(self, phases: _Phases, name: str):
        self._phases, self._name = phases, name

    def __enter__(self):
        self._started = time.monotonic()

    def __exit__(self, *exc):
        self._phases[self._name] = self._phases.get(self._name, 0.0) + time.monotonic() - self._started


class ReplayRefused(ValueError):
    """The shop cannot be replayed as it is (said in words a developer can act on)."""


@dataclass
class ReplayResult:
    shop: str
    days: int
    first_day: str
    last_day: str
    seed: int
    effect: float
    segment: dict
    orders_placed: int = 0
    orders_by_group: dict = field(default_factory=lambda: {"treated": 0, "holdout": 0, "others": 0})
    snapshots_written: int = 0
    membership_events: int = 0
    lift: dict = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict = field(default_factory=dict)    # seconds spent per phase, over all days

    def to_dict(self) -> dict:
        return asdict(self)


def history_replay(*, shop: Shop, days: int, seed: int = 1, template: str | None = None, effect: float = 0.5,
                   holdout: int | None = None, orders: DevstoreOrders | None = None,
                   progress: Callable[[int, int], None] | None = None, full_nightly: bool = False) -> ReplayResult:
    """Replay the `days` complete shop-local days before today (see the module's note).

    Refuses (ReplayRefused), writing nothing, unless the shop is freshly installed: backfill done,
    no observed snapshot yet, no order and no membership event before the window's start that the
    replay would contradict. So a second run refuses rather than doubling the history.
    """
    started = time.monotonic()
    report = progress or (lambda done, total: None)
    real_now = timezone.now()
    last = shop_today(shop, real_now) - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    t0 = shop_day_bounds(shop, first)[0] - dt.timedelta(seconds=1)
    segment = _checked(shop=shop, days=days, template=template, effect=effect, holdout=holdout, t0=t0)
    orders = orders or DevstoreOrders(shop=shop)
    result = ReplayResult(shop=shop.domain, days=days, first_day=first.isoformat(), last_day=last.isoformat(),
                          seed=seed, effect=effect, segment={})
    report(0, days)
    with _shop_locks(shop):
        if holdout is not None and holdout != segment.holdout_percent:
            # A real edit, versioned, so the segment's history says when the holdout came in.
            segment_update(segment=segment, holdout_percent=holdout, author=REPLAY_CAUSE,
                           reason="a holdout to measure the replayed playbook against")
            segment.refresh_from_db()
        phases = _Phases()
        with phases("rewind"):
            _rewind(shop=shop, t0=t0)
        rng = Random(seed)
        variants = shop_variants(shop=shop)
        for index in range(days):
            day = first + dt.timedelta(days=index)
            # The nightly pass (full rebuild and recompute) weekly and on the last day; between, the
            # time sweep and the dirty refresh, as the app keeps segments current during a day.
            nightly = full_nightly or (index + 1) % NIGHTLY_EVERY == 0 or index == days - 1
            placed, counts = _live_day(shop=shop, day=day, segment=segment, effect=effect, rng=rng,
                                       variants=variants, orders=orders, phases=phases, full_nightly=nightly)
            result.orders_placed += placed
            for group, n in counts.items():
                result.orders_by_group[group] += n
            # The nightly snapshot of d, taken once d has ended, through the service the beat uses.
            with phases("snapshot"):
                result.snapshots_written += kpi_snapshot_day(shop=shop, day=day, now=shop_day_bounds(shop, day)[1])
            report(index + 1, days)
        with phases("catch_up"):
            _catch_up(shop=shop, now=timezone.now())
        result.phases = {name: round(seconds, 2) for name, seconds in phases.items()}
    orders.close()
    segment.refresh_from_db()
    result.segment = {"id": segment.pk, "name": segment.name, "template": segment.template,
                      "holdout_percent": segment.holdout_percent}
    result.membership_events = MembershipEvent.objects.filter(
        shop=shop, at__gte=t0, at__lt=shop_day_bounds(shop, last)[1]).count()
    result.lift = _lift_summary(segment=segment, start=first, end=last)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _checked(*, shop: Shop, days: int, template: str | None, effect: float, holdout: int | None,
             t0: dt.datetime) -> Segment:
    """The planted segment, once everything that would make the replay wrong has been ruled out."""
    if not 1 <= days <= MAX_DAYS:
        raise ReplayRefused(f"--days must be between 1 and {MAX_DAYS}.")
    if not -0.9 <= effect <= 5:
        raise ReplayRefused("--effect is a relative change in the treated members' daily chance to buy, "
                            "between -0.9 and 5 (0.5: half again as likely).")
    if holdout is not None and not 1 <= holdout <= 50:
        raise ReplayRefused("--holdout is a percentage between 1 and 50.")
    sync = ShopSync.objects.filter(shop=shop).first()
    if shop.status != ShopStatus.INSTALLED or sync is None or sync.backfill_status != BackfillStatus.DONE:
        raise ReplayRefused(f"{shop.domain} is not installed with its history imported yet; wait for the backfill.")
    observed = SegmentKpiSnapshot.objects.filter(shop=shop, backfilled=False).aggregate(a=Min("day"), b=Max("day"))
    if observed["a"] is not None:
        raise ReplayRefused(f"{shop.domain} already has observed KPI days ({observed['a']} to {observed['b']}): "
                            f"a replay runs once, on a freshly installed shop. Install a fresh shop to replay again.")
    newest = Order.objects.filter(shop=shop).aggregate(at=Max("created_at"))["at"]
    if newest is not None and newest > t0:
        fits = (shop_today(shop) - shop_today(shop, newest)).days - 2
        room = f"at most {fits} days fit" if fits >= 1 else "no day fits"
        raise ReplayRefused(f"{shop.domain} has orders up to {newest:%Y-%m-%d %H:%M} UTC, inside the {days} days to "
                            f"replay ({room}). Seed devstore with history ending earlier "
                            f"(`manage.py devstore --seed-history-days-ago {days + 2}`).")
    if MembershipEvent.objects.filter(shop=shop, at__lt=t0).exists():
        raise ReplayRefused(f"{shop.domain} has membership history from before the replay's first day; "
                            f"a replay only rewrites a fresh install's.")
    active = Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE)
    if template:
        segment = active.filter(template=template).order_by("pk").first()
        if segment is None:
            known = ", ".join(sorted(set(active.exclude(template="").values_list("template", flat=True)))) or "none"
            raise ReplayRefused(f"No active segment from the template {template!r} (the shop has: {known}).")
    else:
        segment = active.order_by("-holdout_percent", "-member_count", "pk").first()
        if segment is None:
            raise ReplayRefused(f"{shop.domain} has no active segment to plant an effect on.")
    if holdout is None and not segment.holdout_percent:
        raise ReplayRefused(f"“{segment.name}” has no holdout, so no lift could be measured: pass --holdout.")
    return segment


class _shop_locks:
    """The shop's membership and dirty-refresh locks, held by this session for the whole replay.

    Without them the beat's dirty refresh (every second) or a queued recompute would decide the
    replayed customers as of the wall clock, writing today's events into days being replayed.
    This session takes the same locks again inside the services (advisory locks are re-entrant per
    session); other sessions skip the shop (refresh) or wait (recompute) until the replay ends.
    """

    def __init__(self, shop: Shop):
        self._keys = [(membership_service._LOCK_NAMESPACE, shop.pk),
                      (metrics_service._REFRESH_LOCK_NAMESPACE, shop.pk)]

    def __enter__(self):
        with connection.cursor() as cursor:
            for key in self._keys:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", key)
        return self

    def __exit__(self, *exc):
        with connection.cursor() as cursor:
            for key in reversed(self._keys):
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _rewind(*, shop: Shop, t0: dt.datetime) -> None:
    """Membership as it was at T0, with its history starting there.

    The install's memberships were decided at the wall clock; its events would read as arrivals
    after every replayed day. They go, and membership is decided again as of T0. Each customer who
    carried a tag is put in the tag outbox, so tag sync compares Shopify with membership at its end.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO segments_tagchange (shop_id, customer_id, tag, \"add\", created_at, segment_id, version) "
            "SELECT m.shop_id, m.customer_id, COALESCE(NULLIF(sh.tag_prefix, ''), %s) || s.handle, FALSE, now(), "
            "m.segment_id, m.version FROM segments_membership m JOIN segments_segment s ON s.id = m.segment_id "
            "JOIN segments_shop sh ON sh.id = m.shop_id WHERE m.shop_id = %s AND NOT m.holdout",
            [OWNED_TAG_PREFIX, shop.pk])
        MembershipEvent.objects.filter(shop=shop).delete()
        Membership.objects.filter(shop=shop).delete()
    _rebuild_and_recompute(shop=shop, now=t0, trigger=Trigger.DEFINITION, cause=REPLAY_CAUSE)
    metrics_service.dirty_marks_clear(shop=shop, before=timezone.now())   # decided just now, as of T0
    SegmentClock.objects.update_or_create(shop=shop, defaults={"swept_until": t0})   # the sweep starts at T0


def _live_day(*, shop: Shop, day: dt.date, segment: Segment, effect: float, rng: Random, variants: list[int],
              orders: DevstoreOrders, phases: _Phases, full_nightly: bool) -> tuple[int, dict]:
    """Day d as the app would live it: orders in, touched customers refreshed, the nightly pass."""
    end = shop_day_bounds(shop, day)[1]
    moment = end - dt.timedelta(seconds=1)     # the last second of d: after every order of d
    with phases("draw"):
        planned, counts = day_orders(shop=shop, day=day, people=shoppers(shop=shop), segment=segment,
                                     effect=effect, variants=variants, rng=rng)
    with phases("place"):
        placed = orders.place(planned)
    with phases("ingest"):
        orders.ingest(placed)
    full = full_nightly or _calendar_moves(shop=shop, now=moment)
    if not full:
        with phases("sweep"):
            # Time passing within d: customers whose windows, abandonment delays or tier holds ran out.
            segments_time_sweep(shop=shop, now=moment)
    with phases("refresh"):
        while dirty_customers_refresh(shop=shop, now=moment, limit=5000):
            pass
    if full:
        with phases("nightly"):
            _nightly(shop=shop, now=moment)
    return len(placed), counts


def _calendar_moves(*, shop: Shop, now: dt.datetime) -> bool:
    """Whether a month or holiday window of an active segment moved since the last sweep. The sweep
    would queue those segments' recompute, which runs as of the wall clock: the replay instead runs
    the nightly pass as of `now`, which covers them (and every other time flip)."""
    since = SegmentClock.objects.filter(shop=shop).values_list("swept_until", flat=True).first()
    if since is None or since >= now:
        return False
    rules = segment_rules(Segment.objects.filter(shop=shop, status=SegmentStatus.ACTIVE))
    before, after = context_for(shop, since), context_for(shop, now)
    return any(segment_clock._calendar_moved(ruleset, before, after) for ruleset in rules.values())


def _nightly(*, shop: Shop, now: dt.datetime) -> None:
    """The nightly pass as of `now`: metrics rebuilt (re-ranked: percentiles, RFM), every segment
    recomputed for every customer, the time sweep's clock moved to `now` (it covered every flip)."""
    _rebuild_and_recompute(shop=shop, now=now, trigger=Trigger.NIGHTLY, cause="nightly")
    SegmentClock.objects.update_or_create(shop=shop, defaults={"swept_until": now})


def _rebuild_and_recompute(*, shop: Shop, now: dt.datetime, trigger: str, cause: str) -> None:
    # Each is one transaction: one that a worker writing the same customers (a webhook drain, tag
    # sync recording Shopify's answers) made PostgreSQL abort is simply run again, patiently: these
    # take seconds, and the worker's short transactions come in bursts.
    retry_on_deadlock(lambda: customer_metrics_rebuild(shop=shop, now=now), what="replay's metrics rebuild",
                      attempts=12, pause=1.0)
    retry_on_deadlock(lambda: segments_recompute(shop=shop, now=now, trigger=trigger, cause=cause),
                      what="replay's recompute", attempts=12, pause=1.0)


def _catch_up(*, shop: Shop, now: dt.datetime) -> None:
    """From the end of yesterday to the real now, as the nightly pass and the time sweep would."""
    while dirty_customers_refresh(shop=shop, now=now, limit=5000):
        pass
    _nightly(shop=shop, now=now)


def _lift_summary(*, segment: Segment, start: dt.date, end: dt.date) -> dict:
    lift = segment_lift(segment=segment, start=start, end=end)
    conversion, revenue = lift.conversion, lift.revenue_per_member
    return {"start": start.isoformat(), "end": end.isoformat(), "treated_members": lift.treatment_members,
            "holdout_members": lift.control_members, "treated_rate": conversion.treatment,
            "holdout_rate": conversion.control, "diff": conversion.diff, "ci_low": conversion.ci_low,
            "ci_high": conversion.ci_high, "p_value": conversion.p_value, "significant": conversion.significant,
            "revenue_per_member": {"treated": revenue.treatment, "holdout": revenue.control, "diff": revenue.diff,
                                   "p_value": revenue.p_value}, "warnings": lift.warnings}
