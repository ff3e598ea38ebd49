"""The JSON API's segment shapes (segments, versions, history, members, dry runs, why, exclusive
groups) as DRF serializers: the request bodies (`Body`) check what the views take and describe it in
the OpenAPI schema; the answers describe what the views return (segments.web.schema holds the shared
parts)."""
from __future__ import annotations

from rest_framework import serializers as s

from segments.engine.templates import TEMPLATE_BY_KEY
from segments.membership.models import MAX_HOLDOUT_PERCENT, SegmentStatus
from segments.web.schema import (
    MAX_DESCRIPTION, MAX_GROUP_NAME, MAX_HYSTERESIS_DAYS, MAX_ID, MAX_REASON, MAX_SEGMENT_NAME, Body, json_field,
    non_blank,
)


class GroupRefSerializer(s.Serializer):
    id = s.IntegerField()
    name = s.CharField()


class SegmentSerializer(s.Serializer):
    id = s.IntegerField()
    name = s.CharField()
    handle = s.CharField()
    tag = s.CharField(help_text="The tag members carry in Shopify: the shop's prefix and the handle.")
    description = s.CharField()
    status = s.ChoiceField(choices=SegmentStatus.values)
    template = s.CharField()
    group = GroupRefSerializer(allow_null=True)
    priority = s.IntegerField()
    holdout_percent = s.IntegerField()
    current_version = s.IntegerField()
    computed_version = s.IntegerField(allow_null=True)
    computing = s.BooleanField()
    compute_error = s.CharField()
    member_count = s.IntegerField()
    holdout_count = s.IntegerField()
    visitor_count = s.IntegerField(help_text="Anonymous visitors in it (segments whose rules read browsing).")
    visitor_holdout_count = s.IntegerField()
    last_computed_at = s.DateTimeField(allow_null=True)
    created_at = s.DateTimeField()
    summary = s.CharField(help_text="The current rules in a sentence.")


class SegmentDetailSerializer(SegmentSerializer):
    rules = json_field("the current rule document")


class SegmentListSerializer(s.Serializer):
    segments = SegmentSerializer(many=True)


def _group(**options) -> s.IntegerField:
    return s.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID, help_text=(
        "The id of one of this shop's exclusive groups; null for none."), **options)


class SegmentCreateSerializer(Body):
    name = non_blank(MAX_SEGMENT_NAME, required=False, help_text="Required with rules; defaults to the template's name.")
    rules = json_field("a rule document (docs/rules.md); or give a template", required=False)
    template = s.ChoiceField(choices=list(TEMPLATE_BY_KEY), required=False, help_text="A key of GET /api/templates.",
                             error_messages={"invalid_choice": "no such template (see GET /api/templates)"})
    overrides = s.DictField(required=False, help_text="The template's editable values by name.")
    description = s.CharField(required=False, allow_blank=True, max_length=MAX_DESCRIPTION)
    holdout_percent = s.IntegerField(required=False, min_value=0, max_value=MAX_HOLDOUT_PERCENT)
    group = _group()
    priority = s.IntegerField(required=False, min_value=-1000, max_value=1000)
    reason = s.CharField(required=False, allow_blank=True, max_length=MAX_REASON)
    handle = s.CharField(required=False, allow_blank=True, max_length=60,
                         help_text="The tag's suffix (seg:<handle>): a lower-case slug, unique in the shop; "
                                   "refused, not renamed, when taken. Derived from the name when left out or "
                                   "empty.")

    def validate(self, data):
        """Rules, or a template (with overrides of its editable values); a name, or the template's."""
        if "rules" not in data and "template" not in data:
            raise s.ValidationError({"rules": "required (or a template)"})
        if data.get("overrides") and ("template" not in data or "rules" in data):
            raise s.ValidationError({"overrides": "only with a template, and without rules"})
        if "name" not in data and "template" not in data:
            raise s.ValidationError({"name": "required"})
        return data


class SegmentUpdateSerializer(Body):
    reason = non_blank(MAX_REASON, help_text="Required: why the segment changes.",
                       blank="required: a non-blank string saying why the segment changes")
    rules = json_field("a new rule document; leave out to keep the rules", required=False)
    name = non_blank(MAX_SEGMENT_NAME, required=False)
    status = s.ChoiceField(choices=SegmentStatus.values, required=False)
    holdout_percent = s.IntegerField(required=False, min_value=0, max_value=MAX_HOLDOUT_PERCENT)
    group = _group()
    priority = s.IntegerField(required=False, min_value=-1000, max_value=1000)
    description = s.CharField(required=False, allow_blank=True, max_length=MAX_DESCRIPTION)


class VersionSerializer(s.Serializer):
    number = s.IntegerField()
    author = s.CharField()
    reason = s.CharField()
    created_at = s.DateTimeField()
    summary = s.CharField()
    diff = s.ListField(child=s.JSONField(), help_text="Readable changes from the previous version.")
    rules = json_field()


class SegmentUpdatedSerializer(s.Serializer):
    changed = s.BooleanField()
    version = VersionSerializer(required=False)
    segment = SegmentDetailSerializer(required=False)


class SegmentArchivedSerializer(s.Serializer):
    changed = s.BooleanField(help_text="False when the segment was archived already.")
    segment = SegmentDetailSerializer()


class VersionsSerializer(s.Serializer):
    versions = VersionSerializer(many=True)


class EventSerializer(s.Serializer):
    id = s.IntegerField()
    customer = s.IntegerField()
    entered = s.BooleanField()
    holdout = s.BooleanField()
    at = s.DateTimeField()
    version = s.IntegerField()
    trigger = s.CharField()
    cause = s.CharField()


class HistorySerializer(s.Serializer):
    events = EventSerializer(many=True)
    next_before = s.IntegerField(allow_null=True)


class MemberSerializer(s.Serializer):
    id = s.IntegerField()
    shopify_id = s.IntegerField()
    name = s.CharField()
    email = s.CharField()
    holdout = s.BooleanField()
    entered_at = s.DateTimeField()
    admin_url = s.URLField(help_text="The customer in the Shopify admin.")


class MembersSerializer(s.Serializer):
    members = MemberSerializer(many=True)
    next_after = s.IntegerField(allow_null=True, help_text="Pass as `after` for the next page; null at the end.")


class DryRunSerializer(Body):
    rules = json_field("the rule document being edited")
    segment = s.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID,
                             help_text="One of this shop's segments to compare with (entries and exits).")


class EditDryRunSerializer(Body):
    rules = json_field("the rule document being edited")


class CustomerCardSerializer(s.Serializer):
    id = s.IntegerField()
    shopify_id = s.IntegerField()
    name = s.CharField()
    email = s.CharField()


class DryRunSamplesSerializer(s.Serializer):
    members = CustomerCardSerializer(many=True)
    entries = CustomerCardSerializer(many=True)
    exits = CustomerCardSerializer(many=True)


class DryRunOverlapSerializer(s.Serializer):
    segment = s.IntegerField()
    name = s.CharField()
    shared = s.IntegerField(help_text="Selected customers who are members of the segment (holdouts included).")
    members = s.IntegerField()
    share = s.FloatField(help_text="shared / size: how many of the selected customers the segment already has.")
    same = s.BooleanField(help_text="The rules select exactly the segment's members.")


class DryRunResultSerializer(s.Serializer):
    size = s.IntegerField(help_text="How many customers the rules select.")
    evaluated = s.IntegerField()
    entries = s.IntegerField()
    exits = s.IntegerField()
    overlaps = DryRunOverlapSerializer(many=True, help_text=(
        "Segments (not archived, not the one being edited) already holding at least 90% of the selected "
        "customers, most shared first."))
    summary = s.CharField()
    sample = DryRunSamplesSerializer()


class WhyConditionSerializer(s.Serializer):
    text = s.CharField()
    metric = s.CharField()
    label = s.CharField()
    value = json_field("the customer's value (days and dates in the shop's calendar)")
    passed = s.BooleanField()


class WhySerializer(s.Serializer):
    segment = s.IntegerField()
    customer = s.IntegerField()
    version = s.IntegerField()
    member = s.BooleanField()
    holdout = s.BooleanField()
    qualifies = s.BooleanField()
    conditions = WhyConditionSerializer(many=True)


class GroupSegmentSerializer(s.Serializer):
    id = s.IntegerField()
    name = s.CharField()
    priority = s.IntegerField()


class GroupSerializer(s.Serializer):
    id = s.IntegerField()
    name = s.CharField()
    hysteresis_days = s.IntegerField()
    created_at = s.DateTimeField()
    segments = GroupSegmentSerializer(many=True)


class GroupsSerializer(s.Serializer):
    groups = GroupSerializer(many=True)


class GroupCreateSerializer(Body):
    name = non_blank(MAX_GROUP_NAME)
    hysteresis_days = s.IntegerField(required=False, min_value=0, max_value=MAX_HYSTERESIS_DAYS)
