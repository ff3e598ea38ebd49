"""The OpenAPI description of the JSON API (drf-spectacular): the session-token security scheme, the
request bodies (`Body` serializers, which the views also check bodies with) and the answers the views
build by hand (serializers that only describe).

The views stay plain APIViews returning dicts; their `@extend_schema` decorators name these shapes.
What the views check, the schema states (tests/segments/web/api/test_schema_conformance.py holds the two
together): a body is checked by the serializer that describes it, and the bounds of query parameters
come from the constants the views check against.
"""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiViewExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers as s

from segments.experiences.models import Channel, PlaybookKpi
from segments.experiences.playbooks import FREQUENCY_CAP_RANGE, MAX_CAMPAIGN_IDEAS, MAX_IDEA_LENGTH, OFFER_PERCENT_RANGE
from segments.experiences.presets import PRESETS, ExperienceError, experience_clean
from segments.experiences.playbooks import TEXT_FIELDS as PLAYBOOK_TEXT
from segments.membership.models import Segment, SegmentStatus
from segments.shops.preferences import NUMBERS as SETTING_NUMBERS
from segments.shops.preferences import OFF_OR_AT_LEAST
from segments.tags.models import MAX_PREFIX_LENGTH, PREFIX_RE, PREFIX_RULE, DriftPolicy
from segments.tags.retry import MAX_IDS
from segments.web.bodies import Body, refuse_nul


class SessionTokenScheme(OpenApiAuthenticationExtension):
    """App Bridge's session token (a JWT signed with the app's secret) as a bearer token."""

    target_class = "segments.shops.auth.SessionTokenAuthentication"
    name = "sessionToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "The App Bridge session token of the shop's admin session."}


# What str.strip() removes (str.isspace), spelled out: JSON Schema's \\s is not Python's.
WHITESPACE = "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NON_BLANK = f"^[^\\u0000]*[^\\u0000{WHITESPACE}][^\\u0000]*$"    # text a view .strip()s and requires
MAX_SEGMENT_NAME = Segment._meta.get_field("name").max_length


def non_blank(most: int, *, blank: str = "must be non-blank text", **options) -> s.RegexField:
    """Text that must hold more than whitespace (`blank` says so), of at most `most` characters."""
    return s.RegexField(NON_BLANK, max_length=most, error_messages={"invalid": blank, "blank": blank}, **options)


def json_field(help_text: str = "", *, required: bool = True) -> s.JSONField:
    return s.JSONField(help_text=help_text, required=required)


# -- errors ----------------------------------------------------------------------------------------
class ProblemSerializer(s.Serializer):
    path = s.CharField(help_text="Where in the body or query the problem is: `rules.include.all[1].value`, `name`.")
    message = s.CharField()


class ErrorBodySerializer(s.Serializer):
    code = s.CharField(help_text="not_authenticated, authentication_failed, not_found, invalid_json, invalid_rules, "
                                 "invalid_settings, invalid_params, payload_too_large, method_not_allowed, ...")
    message = s.CharField()
    problems = ProblemSerializer(many=True, required=False)
    fields = json_field("DRF's own field errors, when it refused the request itself.", required=False)


class ErrorSerializer(s.Serializer):
    error = ErrorBodySerializer()


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="The request cannot be used; nothing was saved."),
    401: OpenApiResponse(ErrorSerializer, description="No valid session token."),
    404: OpenApiResponse(ErrorSerializer, description="No such object in this shop (another shop's is the same)."),
}
BODY_ERRORS = {**ERRORS, 413: OpenApiResponse(ErrorSerializer, description="The body is over 256 KB.")}
READ_ERRORS = {401: ERRORS[401]}


def responses(ok, *, status: int = 200, body: bool = False, lookup: bool = True, params: bool = False) -> dict:
    """The answer `ok` plus the errors the view can give."""
    errors = BODY_ERRORS if body else {401: ERRORS[401]}
    if lookup:
        errors = {**errors, 404: ERRORS[404]}
    if params:
        errors = {**errors, 400: ERRORS[400]}
    return {status: ok, **errors}


# The limits the API states and its views enforce (one number each, read by both).
MAX_ID = 2**63 - 1          # ids are bigints
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_SEARCH = 100
MAX_REASON = 500
MAX_DESCRIPTION = 500
MAX_GROUP_NAME = 100
MAX_HYSTERESIS_DAYS = 365


def query(name: str, description: str, type_=int, **constraints) -> OpenApiParameter:
    """An optional query parameter; `constraints` are the JSON Schema keywords its view enforces
    (minimum, maximum, pattern, enum, maxLength, format). Left out, it takes its default; given
    empty, it is refused like any other value the schema does not allow."""
    if type_ is int:
        constraints = {"minimum": 0, "maximum": MAX_ID, **constraints}
    return OpenApiParameter(name, refuse_nul({**build_basic_type(type_), **constraints}), OpenApiParameter.QUERY,
                            required=False, description=description)


def pattern(regex: str) -> str:
    """A regex the views `re.fullmatch`, anchored as JSON Schema needs it to be."""
    return f"^(?:{regex})$"


LIMIT = query("limit", f"Page size (default {DEFAULT_LIMIT}).", minimum=1, maximum=MAX_LIMIT)
BEFORE = query("before", "The previous page's next_before.", minimum=1)
HISTORY_PARAMS = [LIMIT, query("customer", "Only this customer's entries and exits.", minimum=1), BEFORE]
AUDIT_PARAMS = [LIMIT, query("customer", "Only this customer's tag changes.", minimum=1), BEFORE]
MEMBERS_PARAMS = [LIMIT, query("after", "The previous page's next_after (default 0: the first page)."),
                  query("q", "Only members whose name or email contains this (case-insensitive).", str,
                        maxLength=MAX_SEARCH)]
ARCHIVE_PARAMS = [query("reason", "Why (kept in the version); a default is written when left out or blank.", str,
                        maxLength=MAX_REASON)]


# -- the shop, catalog and templates ------------------------------------------------------------------
class ShopSerializer(s.Serializer):
    domain = s.CharField()
    name = s.CharField()
    currency = s.CharField()
    timezone = s.CharField()
    plan = s.CharField()
    status = s.CharField()
    status_reason = s.CharField()
    scopes = s.ListField(child=s.CharField())
    installed_at = s.DateTimeField(allow_null=True)


class MetricParamSerializer(s.Serializer):
    name = s.CharField()
    type = s.CharField()
    required = s.BooleanField()
    description = s.CharField()


class MetricSerializer(s.Serializer):
    key = s.CharField()
    family = s.CharField()
    label = s.CharField()
    description = s.CharField()
    value_type = s.CharField()
    operators = s.ListField(child=s.CharField())
    windowed = s.BooleanField()
    params = MetricParamSerializer(many=True)
    choices = s.ListField(child=s.CharField())
    bounds = json_field("min and max for the value type, or null")
    source = s.CharField()
    column = s.CharField(allow_null=True, help_text="The metrics-table column of a `table` metric; null for "
                                                    "a `query` metric.")


class MetricsSerializer(s.Serializer):
    metrics = MetricSerializer(many=True)


class TemplateEditableSerializer(s.Serializer):
    name = s.CharField()
    label = s.CharField()
    paths = s.ListField(child=s.CharField())
    value = json_field("the template's value")


class TemplateSerializer(s.Serializer):
    key = s.CharField()
    name = s.CharField()
    why = s.CharField()
    family = s.ChoiceField(choices=["purchase", "browsing", "predictions"],
                           help_text="browsing: the web pixel's data; predictions: the shop's fitted models")
    rules = json_field("the rule document (docs/rules.md)")
    editable = TemplateEditableSerializer(many=True)


class TemplatesSerializer(s.Serializer):
    templates = TemplateSerializer(many=True)


# -- segments -------------------------------------------------------------------------------------------
# -- playbooks ----------------------------------------------------------------------------------------
class ExperienceField(s.DictField):
    """A playbook's on-site experience: {} for none, or a preset and its fields (presets.PRESETS)."""

    def to_internal_value(self, data):
        try:
            return experience_clean(data)
        except ExperienceError as error:
            raise s.ValidationError(error.problems) from error

    def to_representation(self, value):
        return value


class PlaybookFieldsSerializer(Body):
    goal = s.CharField(max_length=PLAYBOOK_TEXT["goal"], required=False, allow_blank=True)
    message = s.CharField(max_length=PLAYBOOK_TEXT["message"], required=False, allow_blank=True)
    channels = s.ListField(child=s.ChoiceField(choices=Channel.values), required=False)
    offer = s.CharField(max_length=PLAYBOOK_TEXT["offer"], required=False, allow_blank=True)
    campaign_ideas = s.ListField(child=non_blank(MAX_IDEA_LENGTH),
                                 max_length=MAX_CAMPAIGN_IDEAS, required=False)
    cadence = s.CharField(max_length=PLAYBOOK_TEXT["cadence"], required=False, allow_blank=True)
    frequency_cap = s.IntegerField(min_value=FREQUENCY_CAP_RANGE[0], max_value=FREQUENCY_CAP_RANGE[1],
                                   allow_null=True, required=False,
                                   help_text="Messages per member per week; null for no cap.")
    owner = s.CharField(max_length=PLAYBOOK_TEXT["owner"], required=False, allow_blank=True)
    kpi = s.ChoiceField(choices=PlaybookKpi.values, required=False)
    experience = ExperienceField(required=False, help_text="{} for none, or {\"preset\": one of "
                                 + ", ".join(PRESETS) + ", and the preset's fields}; fields left out take their defaults.")
    offer_percent = s.IntegerField(min_value=OFFER_PERCENT_RANGE[0], max_value=OFFER_PERCENT_RANGE[1], allow_null=True,
                                   required=False, help_text="A real discount code for the members, this % off; null for none.")


class PlaybookSerializer(PlaybookFieldsSerializer):
    segment = s.IntegerField()
    saved = s.BooleanField(help_text="False: nothing written yet, these are the defaults.")
    updated_by = s.CharField()
    updated_at = s.DateTimeField(allow_null=True)


class PlaybookListRowSerializer(PlaybookSerializer):
    segment_name = s.CharField()
    segment_status = s.ChoiceField(choices=SegmentStatus.values)
    tag = s.CharField()


class PlaybooksSerializer(s.Serializer):
    playbooks = PlaybookListRowSerializer(many=True)


# -- tag sync ---------------------------------------------------------------------------------------------
class SnippetSerializer(s.Serializer):
    segment = s.IntegerField()
    tag = s.CharField()
    liquid = s.CharField()
    holdout_tag = s.CharField(allow_null=True)
    holdout_liquid = s.CharField(allow_null=True)


class SyncQueueSerializer(s.Serializer):
    changes = s.IntegerField()
    customers = s.IntegerField()
    backing_off = s.IntegerField()
    in_bulk = s.IntegerField()
    oldest_age_seconds = s.FloatField(allow_null=True)


class AuditSerializer(s.Serializer):
    id = s.IntegerField()
    customer = s.IntegerField()
    shopify_id = s.IntegerField()
    tag = s.CharField()
    action = s.ChoiceField(choices=["add", "remove"])
    segment = s.IntegerField(allow_null=True)
    segment_version = s.IntegerField(allow_null=True)
    source = s.CharField()
    result = s.CharField()
    detail = s.CharField()
    bulk = s.IntegerField(allow_null=True)
    at = s.DateTimeField()


class RetryingSerializer(s.Serializer):
    change = s.IntegerField()
    customer = s.IntegerField()
    tag = s.CharField()
    attempts = s.IntegerField()
    error = s.CharField()
    next_attempt_at = s.DateTimeField(allow_null=True)


class SyncStatusSerializer(s.Serializer):
    queue = SyncQueueSerializer()
    throttle = json_field("Shopify's cost bucket as last observed: maximum_available, available, restore_rate")
    bulk = s.ListField(child=s.JSONField(), help_text="The latest bulk tag operations.")
    last_errors = AuditSerializer(many=True)
    retrying = RetryingSerializer(many=True)
    last_24h = s.DictField(child=s.IntegerField(), help_text="Audit rows of the last day by result.")
    tag_limit = json_field("customers kept from a tag by Shopify's 250-tag limit")
    drift = json_field("policy, drift reported in the last day, tags left off")
    settings = json_field("tag_prefix, holdout_tag, drift_policy, tag_metafield, problems")


class AuditPageSerializer(s.Serializer):
    changes = AuditSerializer(many=True)
    next_before = s.IntegerField(allow_null=True)


class RetryRequestSerializer(Body):
    ids = s.ListField(child=s.IntegerField(min_value=1, max_value=MAX_ID), max_length=MAX_IDS, required=False,
                      help_text="Tag change ids; leave out to retry every failed change of the shop.")


class RetryResultSerializer(s.Serializer):
    retried = s.IntegerField()
    not_found = s.ListField(child=s.IntegerField(), help_text="Ids that are no change of this shop.")
    not_failed = s.ListField(child=s.IntegerField(), help_text="Ids of this shop that had not failed.")


# -- settings and compliance -----------------------------------------------------------------------------
def _number_setting(name: str) -> s.IntegerField:
    """A number setting with the range shop_settings checks."""
    low, high = SETTING_NUMBERS[name]
    return s.IntegerField(required=False, min_value=low, max_value=high)


@extend_schema_field({"type": "integer", "anyOf": [
    {"enum": [0]},
    {"minimum": OFF_OR_AT_LEAST["inactive_customer_days"], "maximum": SETTING_NUMBERS["inactive_customer_days"][1]}]})
class InactiveDaysField(s.IntegerField):
    """0 turns the anonymisation off; otherwise it waits at least a month (preferences.OFF_OR_AT_LEAST)."""

    floor, high = OFF_OR_AT_LEAST["inactive_customer_days"], SETTING_NUMBERS["inactive_customer_days"][1]
    message = f"must be 0 (never) or a whole number from {floor} to {high}"
    default_error_messages = {"type": message, "null": message, "off_or_at_least": message}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not (value == 0 or self.floor <= value <= self.high):
            self.fail("off_or_at_least")
        return value


class SettingsFieldsSerializer(Body):
    tag_prefix = s.RegexField(pattern(PREFIX_RE.pattern), required=False, max_length=MAX_PREFIX_LENGTH,
                              error_messages={"invalid": PREFIX_RULE})
    holdout_tag = s.CharField(required=False, allow_blank=True)
    drift_policy = s.ChoiceField(choices=DriftPolicy.values, required=False)
    tag_metafield = s.BooleanField(required=False)
    recompute_hour = _number_setting("recompute_hour")
    checkout_abandon_minutes = _number_setting("checkout_abandon_minutes")
    payload_retention_days = _number_setting("payload_retention_days")
    default_margin_percent = _number_setting("default_margin_percent")
    inactive_customer_days = InactiveDaysField(
        required=False,
        help_text="Customers with no order, checkout or profile change for this many days are anonymised in "
                  "the store copy; 0 (never) or from 30 to 3650.")


class SettingsSerializer(SettingsFieldsSerializer):
    choices = json_field("allowed values of the choice settings")
    ranges = json_field("min and max of the number settings")
    timezone = s.CharField()


class ComplianceRowSerializer(s.Serializer):
    id = s.IntegerField()
    kind = s.CharField()
    customer_id = s.IntegerField(allow_null=True)
    request_id = s.CharField()
    received_at = s.DateTimeField()
    completed_at = s.DateTimeField(allow_null=True)
    counts = s.DictField(child=s.IntegerField())
    export_url = s.CharField(allow_null=True)


class ComplianceListSerializer(s.Serializer):
    requests = ComplianceRowSerializer(many=True)


def downloads(ok, media: list[str], *, lookup: bool) -> dict:
    """A measurement GET's answers: `ok` as JSON or, as `export` asks, a download in one of `media`; 400
    for bad parameters."""
    answers = responses(ok, lookup=lookup, params=True)
    return {**{(code, "application/json"): answer for code, answer in answers.items()},
            **{(200, kind): OpenApiResponse(OpenApiTypes.STR, description="A download") for kind in media}}


EXPORT_RESPONSES = responses(OpenApiResponse(OpenApiTypes.OBJECT, description="The customer data export "
                                             "(format shopseg.customer-data/1), as an attachment"))
MARKDOWN_RESPONSES = {(200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="A Markdown download"),
                      **{(code, "application/json"): error for code, error in ERRORS.items() if code != 400}}


class ComplianceListSchema(OpenApiViewExtension):
    """The compliance list view lives with the privacy page; its schema is described here."""

    target_class = "segments.web.compliance.ComplianceListView"

    def view_replacement(self):
        class Described(self.target_class):
            @extend_schema(operation_id="compliance_list", responses=responses(ComplianceListSerializer,
                                                                                lookup=False),
                           summary="The shop's compliance requests (counts; exports via the export endpoint)")
            def get(self, request):
                return super().get(request)

        return Described

