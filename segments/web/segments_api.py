"""The segments JSON API: the metric catalog, templates, segments with their versions, members,
history, dry-run and "why", and exclusive groups.

Thin views over segments.membership.definitions: they read and check the request, look rows
up through `self.shop` (another shop's segment, customer or group is a 404, exactly like one that
does not exist) and shape the answer. Bad input is refused whole, before anything is saved or
enqueued: `{"error": {"code", "message", "problems": [{"path", "message"}]}}`.
"""
from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from segments.engine.registry import catalog
from segments.engine.rules import Problem, RuleError
from segments.engine.templates import TEMPLATE_BY_KEY, TEMPLATES, template_document
from segments.membership.definitions import membership_why, segment_create, segment_dry_run, segment_update
from segments.membership.models import ExclusiveGroup, MembershipEvent, Segment, SegmentStatus, SegmentVersion
from segments.shops import admin_api as shopify_api
from segments.web import schema, segment_schema
from segments.web.api import Refused, SegmentsAPIView, invalid_rules, invalid_settings
from segments.web.overview import segment_member_page

ARCHIVE_REASON = "Deleted (archived) through the API"


# -- shaping answers --------------------------------------------------------------------------------
def _current_summary():
    return Subquery(SegmentVersion.objects.filter(segment=OuterRef("pk"), number=OuterRef("current_version"))
                    .values("summary")[:1])


def segment_row(segment: Segment, summary: str | None = None) -> dict:
    if summary is None:
        summary = getattr(segment, "current_summary", None)
    return {
        "id": segment.pk, "name": segment.name, "handle": segment.handle, "tag": segment.tag,
        "description": segment.description, "status": segment.status, "template": segment.template,
        "group": {"id": segment.group.pk, "name": segment.group.name} if segment.group else None,
        "priority": segment.priority, "holdout_percent": segment.holdout_percent,
        "current_version": segment.current_version, "computed_version": segment.computed_version,
        "computing": segment.computing, "compute_error": segment.compute_error,
        "member_count": segment.member_count, "holdout_count": segment.holdout_count,
        "visitor_count": segment.visitor_count, "visitor_holdout_count": segment.visitor_holdout_count,
        "last_computed_at": segment.last_computed_at, "created_at": segment.created_at,
        "summary": summary or "",
    }


def segment_detail(segment: Segment) -> dict:
    version = segment.versions.get(number=segment.current_version)
    return {**segment_row(segment, version.summary), "rules": version.rules}


def version_row(version: SegmentVersion) -> dict:
    return {"number": version.number, "author": version.author, "reason": version.reason,
            "created_at": version.created_at, "summary": version.summary, "diff": version.diff,
            "rules": version.rules}


def group_row(group: ExclusiveGroup) -> dict:
    members = sorted(group.segments.all(), key=lambda s: (-s.priority, s.pk))
    return {"id": group.pk, "name": group.name, "hysteresis_days": group.hysteresis_days,
            "created_at": group.created_at,
            "segments": [{"id": s.pk, "name": s.name, "priority": s.priority} for s in members]}


def _get(document: object, path: str) -> object:
    """The value at a template's editable path ('include.all[1].value'), None if it is not there."""
    node = document
    for name, index in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
        try:
            node = node[name] if name else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def template_row(template) -> dict:
    editable: dict[str, dict] = {}
    for entry in template.editable:
        row = editable.setdefault(entry.name, {"name": entry.name, "label": entry.label, "paths": [],
                                               "value": _get(template.rules, entry.path)})
        row["paths"].append(entry.path)
    return {"key": template.key, "name": template.name, "why": template.why, "family": template.family,
            "rules": template.rules,
            "editable": list(editable.values())}


# -- the catalog and templates --------------------------------------------------------------------------
class MetricsView(SegmentsAPIView):
    """GET /api/metrics: every metric a rule may use."""

    @extend_schema(operation_id="metrics_list", responses=schema.responses(schema.MetricsSerializer, lookup=False),
                   summary="The metric catalog")
    def get(self, request):
        return Response({"metrics": catalog()})


class TemplatesView(SegmentsAPIView):
    """GET /api/templates: the rule documents a segment can start from, with the values to tweak."""

    @extend_schema(operation_id="templates_list", responses=schema.responses(schema.TemplatesSerializer, lookup=False),
                   summary="Segment templates")
    def get(self, request):
        return Response({"templates": [template_row(t) for t in TEMPLATES]})


# -- segments ---------------------------------------------------------------------------------------------
class SegmentListView(SegmentsAPIView):
    """GET /api/segments: the shop's segments; POST: a new segment from rules or a template."""

    @extend_schema(operation_id="segments_list", responses=schema.responses(segment_schema.SegmentListSerializer, lookup=False),
                   summary="The shop's segments")
    def get(self, request):
        segments = (Segment.objects.filter(shop=self.shop).select_related("group", "shop")
                    .annotate(current_summary=_current_summary()).order_by("pk"))
        return Response({"segments": [segment_row(s) for s in segments]})

    @extend_schema(operation_id="segments_create", request=segment_schema.SegmentCreateSerializer,
                   responses=schema.responses(segment_schema.SegmentDetailSerializer, status=201, body=True),
                   summary="Create a segment from rules or a template")
    def post(self, request):
        data = self.body(segment_schema.SegmentCreateSerializer)
        template = TEMPLATE_BY_KEY.get(data.get("template"))
        name = data.get("name", template.name if template is not None else None)
        rules = data["rules"] if "rules" in data else _template_rules(template, data.get("overrides", {}))
        settings = {key: data[key] for key in ("description", "holdout_percent", "priority") if key in data}
        if "group" in data:
            settings["group"] = self.group(data["group"])
        segment = segment_create(shop=self.shop, name=name, rules=rules, author=self.author,
                                 reason=data.get("reason", ""), template=template.key if template else "",
                                 handle=data.get("handle", ""), **settings)
        segment = self.segment(segment.pk)
        return Response(segment_detail(segment), status=status.HTTP_201_CREATED)


def _template_rules(template, overrides: dict) -> dict:
    names = {e.name for e in template.editable}
    unknown = sorted(set(overrides) - names)
    if unknown:
        allowed = ", ".join(sorted(names)) or "none"
        raise invalid_settings([Problem(f"overrides.{key}", f"not an editable value of this template; "
                                                            f"it has: {allowed}") for key in unknown])
    try:
        return template_document(template.key, **overrides)
    except RuleError as error:
        def rename(path: str) -> str:
            for entry in template.editable:
                if entry.name in overrides and (path == entry.path or path.startswith((entry.path + ".",
                                                                                       entry.path + "["))):
                    return f"overrides.{entry.name}{path[len(entry.path):]}"
            return path
        raise invalid_rules(error, rename) from None


class SegmentDetailView(SegmentsAPIView):
    """GET /api/segments/<id>: the segment and its current rules; PATCH: edit it (a new version);
    DELETE: archive it."""

    @extend_schema(operation_id="segments_retrieve", responses=schema.responses(segment_schema.SegmentDetailSerializer),
                   summary="A segment and its current rules")
    def get(self, request, pk: int):
        return Response(segment_detail(self.segment(pk)))

    @extend_schema(operation_id="segments_update", request=segment_schema.SegmentUpdateSerializer,
                   responses=schema.responses(segment_schema.SegmentUpdatedSerializer, body=True),
                   summary="Edit a segment (a new version)")
    def patch(self, request, pk: int):
        segment = self.segment(pk)
        data = self.body(segment_schema.SegmentUpdateSerializer)
        settings = {key: data[key] for key in ("name", "status", "holdout_percent", "priority", "description")
                    if key in data}
        if "group" in data:
            settings["group"] = self.group(data["group"])
        version = segment_update(segment=segment, rules=data.get("rules"), author=self.author,
                                 reason=data["reason"].strip(), **settings)
        if version is None:
            return Response({"changed": False})
        return Response({"changed": True, "version": version_row(version), "segment": segment_detail(
            self.segment(pk))})

    @extend_schema(operation_id="segments_archive",
                   parameters=schema.ARCHIVE_PARAMS,
                   responses=schema.responses(segment_schema.SegmentArchivedSerializer, params=True),
                   summary="Delete (archive) a segment: members leave, tags are removed, history is kept")
    def delete(self, request, pk: int):
        """Archive: a new version with status archived, so the recompute it queues lets every member
        leave (their tags removed through the outbox like any exit) and the history stays. Deleting an
        archived segment again changes nothing and answers the same."""
        segment = self.segment(pk)
        reason = self.query_text("reason", most=schema.MAX_REASON).strip() or ARCHIVE_REASON
        version = segment_update(segment=segment, author=self.author, reason=reason, status=SegmentStatus.ARCHIVED)
        return Response({"changed": version is not None, "segment": segment_detail(self.segment(pk))})


class SegmentVersionsView(SegmentsAPIView):
    """GET /api/segments/<id>/versions: every version, newest first."""

    @extend_schema(operation_id="segments_versions", responses=schema.responses(segment_schema.VersionsSerializer),
                   summary="Every version, newest first")
    def get(self, request, pk: int):
        segment = self.segment(pk)
        return Response({"versions": [version_row(v) for v in segment.versions.order_by("-number")]})


class SegmentHistoryView(SegmentsAPIView):
    """GET /api/segments/<id>/history?customer=&limit=&before=: entries and exits, newest first.

    `before` is the `next_before` of the previous page (an event id)."""

    @extend_schema(operation_id="segments_history",
                   parameters=schema.HISTORY_PARAMS,
                   responses=schema.responses(segment_schema.HistorySerializer, params=True),
                   summary="Entries and exits, newest first")
    def get(self, request, pk: int):
        segment = self.segment(pk)
        limit = self.limit()
        customer_pk = self.query_int("customer", low=1)
        before = self.query_int("before", low=1)
        events = MembershipEvent.objects.filter(shop=self.shop, segment=segment)
        if customer_pk is not None:
            events = events.filter(customer=self.customer(customer_pk))
        if before is not None:
            cursor = events.filter(pk=before).values("at").first()
            if cursor is None:
                raise Refused(400, "invalid_params", "before is not an event of this history.",
                              [Problem("before", "not an event of this history; use next_before")])
            events = events.filter(Q(at__lt=cursor["at"]) | Q(at=cursor["at"], pk__lt=before))
        page = list(events.order_by("-at", "-pk")[:limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response({
            "events": [{"id": e.pk, "customer": e.customer_id, "entered": e.entered, "holdout": e.holdout,
                        "at": e.at, "version": e.version, "trigger": e.trigger, "cause": e.cause} for e in page],
            "next_before": page[-1].pk if more else None,
        })


class SegmentMembersView(SegmentsAPIView):
    """GET /api/segments/<id>/members?q=&limit=&after=: current members by customer id (keyset pages),
    optionally only those whose name or email contains `q` (case-insensitive)."""

    @extend_schema(operation_id="segments_members",
                   parameters=schema.MEMBERS_PARAMS,
                   responses=schema.responses(segment_schema.MembersSerializer, params=True),
                   summary="Current members, searchable, in keyset pages")
    def get(self, request, pk: int):
        segment = self.segment(pk)
        limit = self.limit()
        after = self.query_int("after", 0)
        query = self.query_text("q", most=schema.MAX_SEARCH).strip()
        rows, next_after = segment_member_page(segment=segment, q=query, after=after, limit=limit)
        admin = shopify_api.admin_url(self.shop.domain, "customers/")
        return Response({
            "members": [{"id": m.customer_id, "shopify_id": m.customer.shopify_id,
                         "name": f"{m.customer.first_name} {m.customer.last_name}".strip(),
                         "email": m.customer.email, "holdout": m.holdout, "entered_at": m.entered_at,
                         "admin_url": f"{admin}{m.customer.shopify_id}"}
                        for m in rows],
            "next_after": next_after,
        })


class SegmentDryRunView(SegmentsAPIView):
    """POST /api/segments/dry-run {rules, segment?}: the builder's live preview of rules being edited —
    the size, sample members and, against `segment`'s current members, the entries and exits.
    Nothing is written or queued."""

    @extend_schema(operation_id="segments_preview", request=segment_schema.DryRunSerializer,
                   responses=schema.responses(segment_schema.DryRunResultSerializer, body=True),
                   summary="Preview rules being edited: live count and sample members; writes nothing")
    def post(self, request):
        data = self.body(segment_schema.DryRunSerializer)
        segment = self.segment(data["segment"]) if data.get("segment") is not None else None
        return Response(segment_dry_run(shop=self.shop, rules=data["rules"], segment=segment))


class SegmentEditDryRunView(SegmentsAPIView):
    """POST /api/segments/<id>/dry-run {rules}: the diff an edit of this segment would make."""

    @extend_schema(operation_id="segments_dry_run", request=segment_schema.EditDryRunSerializer,
                   responses=schema.responses(segment_schema.DryRunResultSerializer, body=True),
                   summary="The diff an edit of this segment's rules would make; writes nothing")
    def post(self, request, pk: int):
        segment = self.segment(pk)
        data = self.body(segment_schema.EditDryRunSerializer)
        return Response(segment_dry_run(shop=self.shop, rules=data["rules"], segment=segment))


class SegmentWhyView(SegmentsAPIView):
    """GET /api/segments/<id>/why/<customer_id>: the customer's value of every condition, and the verdict."""

    @extend_schema(operation_id="segments_why", responses=schema.responses(segment_schema.WhySerializer),
                   summary="Why a customer is (or is not) in the segment")
    def get(self, request, pk: int, customer_pk: int):
        segment = self.segment(pk)
        return Response(membership_why(segment=segment, customer=self.customer(customer_pk)))


# -- exclusive groups --------------------------------------------------------------------------------------
class GroupListView(SegmentsAPIView):
    """GET /api/groups: the shop's exclusive groups; POST {name, hysteresis_days?}: a new one."""

    @extend_schema(operation_id="groups_list", responses=schema.responses(segment_schema.GroupsSerializer, lookup=False),
                   summary="Exclusive groups")
    def get(self, request):
        groups = ExclusiveGroup.objects.filter(shop=self.shop).prefetch_related("segments").order_by("name", "pk")
        return Response({"groups": [group_row(g) for g in groups]})

    @extend_schema(operation_id="groups_create", request=segment_schema.GroupCreateSerializer,
                   responses=schema.responses(segment_schema.GroupSerializer, status=201, body=True, lookup=False),
                   summary="Create an exclusive group")
    def post(self, request):
        data = self.body(segment_schema.GroupCreateSerializer)
        name, days = data["name"].strip(), data.get("hysteresis_days", 0)
        try:
            with transaction.atomic():
                group = ExclusiveGroup.objects.create(shop=self.shop, name=name, hysteresis_days=days)
        except IntegrityError:
            raise invalid_settings([Problem("name", "another exclusive group of this shop has this name")]) from None
        return Response(group_row(group), status=status.HTTP_201_CREATED)
