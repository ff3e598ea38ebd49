"""The playbooks JSON API: a segment's playbook (read, edit, download as Markdown) and the shop's
playbooks. Thin views over segments.experiences.playbooks, scoped like the segments API."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from segments.experiences.models import Playbook
from segments.experiences.playbooks import (
    playbook_get_or_default, playbook_markdown, playbook_row, playbook_update,
)
from segments.web import schema
from segments.web.api import SegmentsAPIView


class SegmentPlaybookView(SegmentsAPIView):
    """GET /api/segments/<id>/playbook: the playbook (the defaults when none is written yet);
    PUT: set the fields given (the others keep their values; no body reads as {})."""

    @extend_schema(operation_id="playbook_retrieve", responses=schema.responses(schema.PlaybookSerializer),
                   summary="The segment's playbook (defaults when none is written)")
    def get(self, request, pk: int):
        return Response(playbook_row(playbook=playbook_get_or_default(segment=self.segment(pk))))

    @extend_schema(operation_id="playbook_update", request=schema.PlaybookFieldsSerializer,
                   responses=schema.responses(schema.PlaybookSerializer, body=True),
                   summary="Set playbook fields (those left out keep their values)")
    def put(self, request, pk: int):
        segment = self.segment(pk)
        changes = self.body(schema.PlaybookFieldsSerializer, optional=True)
        playbook = playbook_update(segment=segment, changes=changes, author=self.author)
        return Response(playbook_row(playbook=playbook))


class SegmentPlaybookMarkdownView(SegmentsAPIView):
    """GET /api/segments/<id>/playbook.md: the playbook as a Markdown file to print or share."""

    @extend_schema(operation_id="playbook_markdown",
                   responses=schema.MARKDOWN_RESPONSES,
                   summary="The playbook as a Markdown document")
    def get(self, request, pk: int):
        segment = self.segment(pk)
        document = playbook_markdown(playbook=playbook_get_or_default(segment=segment))
        response = HttpResponse(document, content_type="text/markdown; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="playbook-{segment.handle}.md"'  # a slug: header-safe
        return response


class PlaybookListView(SegmentsAPIView):
    """GET /api/playbooks: every playbook the shop has written, with its segment."""

    @extend_schema(operation_id="playbooks_list", responses=schema.responses(schema.PlaybooksSerializer, lookup=False),
                   summary="The shop's playbooks")
    def get(self, request):
        playbooks = (Playbook.objects.filter(shop=self.shop).select_related("segment", "segment__shop")
                     .order_by("segment__name", "segment_id"))
        return Response({"playbooks": [
            {**playbook_row(playbook=p), "segment_name": p.segment.name, "segment_status": p.segment.status,
             "tag": p.segment.tag} for p in playbooks]})
