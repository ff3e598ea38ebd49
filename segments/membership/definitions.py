"""Segment definitions: create and edit (every edit a new version with author, reason and a readable
diff), pause and archive, the dry-run preview of an edit, and "why is this customer in it"."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from django.db import connection, transaction
from django.utils import timezone
from django.utils.text import slugify

from segments.engine.compiler import Compiler
from segments.engine.context import context_for
from segments.engine.diff import rules_diff, settings_diff
from segments.engine.rules import Problem, SettingsError, conditions, describe, describe_node, parse
from segments.membership.models import (
    MAX_HOLDOUT_PERCENT, ExclusiveGroup, Membership, Segment, SegmentStatus, SegmentVersion,
)
from segments.membership.overlap import segment_overlaps, shared_sql
from segments.mirror.models import Customer
from segments.shops.models import Shop
from segments.tags.naming import segment_tag_problems
from shopseg.enqueue import enqueue_on_commit

HANDLE_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")     # what slugify makes of a name, and what a tag needs
SETTINGS = ("name", "description", "status", "group", "priority", "holdout_percent")
DRY_RUN_SAMPLE = 10


def _settings_problems(shop: Shop, values: Mapping[str, object]) -> list[Problem]:
    problems = []
    if "name" in values and not (isinstance(values["name"], str) and values["name"].strip()
                                 and len(values["name"]) <= 100):
        problems.append(Problem("name", "must be a non-blank string of at most 100 characters"))
    holdout = values.get("holdout_percent", 0)
    if type(holdout) is not int or not 0 <= holdout <= MAX_HOLDOUT_PERCENT:
        problems.append(Problem("holdout_percent", f"must be a whole number from 0 to {MAX_HOLDOUT_PERCENT}"))
    priority = values.get("priority", 0)
    if type(priority) is not int or not -1000 <= priority <= 1000:
        problems.append(Problem("priority", "must be a whole number from -1000 to 1000"))
    group = values.get("group")
    if group is not None and (not isinstance(group, ExclusiveGroup) or group.shop_id != shop.pk):
        problems.append(Problem("group", "must be one of this shop's exclusive groups"))
    if "status" in values and values["status"] not in SegmentStatus.values:
        problems.append(Problem("status", f"must be one of {', '.join(SegmentStatus.values)}"))
    return problems


def _snapshot(segment: Segment) -> dict:
    return {"name": segment.name, "description": segment.description, "status": segment.status,
            "group": segment.group.name if segment.group else None, "priority": segment.priority,
            "holdout_percent": segment.holdout_percent}


def _handle_problems(shop: Shop, handle: str) -> list[Problem]:
    """A handle the merchant chose is used as it is (it is the tag a theme reads), so it must be a
    lower-case slug of at most 60 characters whose tag is valid and unique in the shop; a derived
    one is made unique instead."""
    if not handle:
        return []
    if not isinstance(handle, str) or not HANDLE_RE.fullmatch(handle) or len(handle) > 60:
        return [Problem("handle", "must be lower-case letters, digits and single hyphens, at most 60 characters")]
    return [Problem("handle", p) for p in segment_tag_problems(shop=shop, handle=handle)]


def _unique_handle(shop: Shop, name: str) -> str:
    base = slugify(name)[:50] or "segment"
    handle, n = base, 1
    while Segment.objects.filter(shop=shop, handle=handle).exists():
        n += 1
        handle = f"{base}-{n}"
    return handle


def segment_create(*, shop: Shop, name: str, rules: object, author: str = "", reason: str = "",
                   template: str = "", handle: str = "", **settings) -> Segment:
    """A new segment at version 1; its membership is computed in the background.

    Raises RuleError / SettingsError (nothing saved) when the rules or settings cannot be used.
    """
    ruleset = parse(rules)
    problems = _settings_problems(shop, {"name": name, **settings}) + _handle_problems(shop, handle)
    if problems:
        raise SettingsError(problems)
    with transaction.atomic():
        segment = Segment.objects.create(shop=shop, name=name.strip(), handle=handle or _unique_handle(shop, name),
                                         template=template, compute_requested_at=timezone.now(), **settings)
        SegmentVersion.objects.create(segment=segment, number=1, rules=ruleset.to_document(),
                                      summary=describe(ruleset), diff=rules_diff(None, ruleset),
                                      author=author[:255], reason=reason[:500])
        _recompute_on_commit(segment)
    return segment


def segment_update(*, segment: Segment, rules: object | None = None, author: str = "", reason: str = "",
                   **settings) -> SegmentVersion | None:
    """Edit a segment: a new version when anything changed (None when nothing did).

    The new version supersedes any recompute still running for an older one.
    """
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise SettingsError([Problem(key, "unknown setting") for key in sorted(unknown)])
    ruleset = parse(rules) if rules is not None else None
    problems = _settings_problems(segment.shop, settings)
    if problems:
        raise SettingsError(problems)
    with transaction.atomic():
        segment = Segment.objects.select_for_update(of=("self",)).select_related("group", "shop").get(pk=segment.pk)
        previous = segment.versions.get(number=segment.current_version)
        before_rules = parse(previous.rules)
        before = _snapshot(segment)
        for key, value in settings.items():
            setattr(segment, key, value.strip() if key == "name" else value)
        after = _snapshot(segment)
        after_rules = ruleset or before_rules
        diff = rules_diff(before_rules, after_rules) + settings_diff(before, after)
        if not diff:
            return None
        segment.current_version += 1
        segment.compute_requested_at = timezone.now()
        segment.save()
        version = SegmentVersion.objects.create(
            segment=segment, number=segment.current_version, rules=after_rules.to_document(),
            summary=describe(after_rules), diff=diff, author=author[:255], reason=reason[:500])
        _recompute_on_commit(segment)
    return version


def _recompute_on_commit(segment: Segment) -> None:

    pk, version = segment.pk, segment.current_version
    enqueue_on_commit("segments.membership.tasks.segment_recompute_task", pk, version)


def segment_dry_run(*, shop: Shop, rules: object, segment: Segment | None = None, now: dt.datetime | None = None,
                    sample: int = DRY_RUN_SAMPLE) -> dict:
    """What an edit would do, computed and not written: the size, sample members, and the entries
    and exits against the segment's current members (exclusive groups and holdouts aside)."""
    ruleset = parse(rules)
    now = now or timezone.now()
    compiler = Compiler(context_for(shop, now))
    predicate = compiler.ruleset(ruleset)
    member = "FALSE"
    if segment is not None:
        # Uncorrelated: the members are read once into a hash, not probed once per customer (an
        # EXISTS per customer doubled the dry-run of an edit on 100,000 customers).
        member = (f"m.customer_id IN (SELECT mem.customer_id FROM segments_membership mem WHERE mem.segment_id = "
                  f"{compiler.param(segment.pk)})")
    shop_param = compiler.param(shop.pk)
    sql, params = compiler.statement({"hit": f"CASE WHEN {predicate} THEN 1 ELSE 0 END",
                                      "was": f"CASE WHEN {member} THEN 1 ELSE 0 END"})
    # One evaluation for the counts, the three samples and the overlaps: the CTE is read five times,
    # computed once (evaluating it again for the overlaps doubled the time on large shops).
    picks = (("members", "hit = 1"), ("entries", "hit = 1 AND was = 0"), ("exits", "hit = 0 AND was = 1"))
    arms = "".join(f" UNION ALL SELECT * FROM (SELECT {part}, customer_id, 0, 0, 0 FROM x WHERE {where} "
                   f"ORDER BY customer_id LIMIT {int(sample)}) s{part}" for part, (_, where) in enumerate(picks, 1))
    overlap = shared_sql(candidates="(SELECT customer_id FROM x WHERE hit = 1)", shop_param=shop_param)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH x AS ({sql}) SELECT 0, sum(hit), sum(CASE WHEN hit = 1 AND was = 0 THEN 1 ELSE 0 END), "
                       f"sum(CASE WHEN hit = 0 AND was = 1 THEN 1 ELSE 0 END), count(*) FROM x{arms} "
                       f"UNION ALL SELECT 4, shared.*, 0, 0 FROM ({overlap}) shared", params)
        rows = cursor.fetchall()
    size, entries, exits, evaluated = (value or 0 for value in next(row[1:] for row in rows if row[0] == 0))
    samples = {name: [row[1] for row in rows if row[0] == part] for part, (name, _) in enumerate(picks, 1)}
    customers = {c.pk: c for c in Customer.objects.filter(shop=shop, pk__in={pk for v in samples.values() for pk in v})}
    # Segments already holding (nearly) these customers: the builder warns before a duplicate is saved.
    overlaps = segment_overlaps(shop=shop, shared={row[1]: row[2] for row in rows if row[0] == 4}, size=size,
                                exclude_segment_id=segment.pk if segment is not None else None)
    return {"size": size, "evaluated": evaluated, "entries": entries, "exits": exits,
            "overlaps": [o.to_dict() for o in overlaps],
            "summary": describe(ruleset),
            "sample": {name: [_customer_card(customers[pk]) for pk in pks if pk in customers]
                       for name, pks in samples.items()}}


def _customer_card(customer: Customer) -> dict:
    name = f"{customer.first_name} {customer.last_name}".strip()
    return {"id": customer.pk, "shopify_id": customer.shopify_id, "name": name, "email": customer.email}


def membership_why(*, segment: Segment, customer: Customer, now: dt.datetime | None = None) -> dict:
    """The customer's value of every condition's metric against the condition, and the verdict."""
    if customer.shop_id != segment.shop_id:
        raise Customer.DoesNotExist("no such customer in this shop")
    now = now or timezone.now()
    version = segment.versions.get(number=segment.current_version)
    ruleset = parse(version.rules)
    compiler = Compiler(context_for(segment.shop, now))
    listed = list(conditions(ruleset))
    columns = {"verdict": f"CASE WHEN {compiler.ruleset(ruleset)} THEN 1 ELSE 0 END"}
    for i, condition in enumerate(listed):
        columns[f"v{i}"] = _raw_value(compiler, condition)
        columns[f"h{i}"] = f"CASE WHEN {compiler.node(condition)} THEN 1 ELSE 0 END"
    sql, params = compiler.statement(columns, [customer.pk])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    membership = Membership.objects.filter(segment=segment, customer=customer).first()
    result = {"segment": segment.pk, "customer": customer.pk, "version": version.number,
              "member": membership is not None, "holdout": bool(membership and membership.holdout),
              "qualifies": bool(row and row[1]), "conditions": []}
    for i, condition in enumerate(listed):
        raw = row[2 + 2 * i] if row else None
        result["conditions"].append({
            "text": describe_node(condition), "metric": condition.metric.key,
            "label": condition.metric.label, "value": _shown(condition, raw, compiler),
            "passed": bool(row and row[3 + 2 * i])})
    return result


def _raw_value(compiler: Compiler, condition) -> str:
    metric = condition.metric
    if metric.derive == "days_since" or metric.value_type == "date":
        return compiler.timestamp(metric)
    return compiler.value(condition)


def _shown(condition, raw, compiler: Compiler):
    """A metric's value as the merchant reads it: days and dates in the shop's calendar."""
    if raw is None:
        return None
    metric = condition.metric
    if metric.derive == "days_since" or metric.value_type == "date":
        stamp = raw if isinstance(raw, dt.datetime) else dt.datetime.fromisoformat(str(raw))
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
        local = stamp.astimezone(compiler.ctx.zone).date()
        return local.isoformat() if metric.value_type == "date" else (compiler.ctx.today - local).days
    if isinstance(raw, float):
        return round(raw, 4)
    return str(raw) if not isinstance(raw, (int, bool, str)) else raw
