"""Request bodies: one serializer per endpoint both checks a body and describes it in the OpenAPI
schema, so the two cannot drift apart.

A `Body` is a DRF serializer made strict the way JSON Schema is: a value of the wrong JSON type is
refused rather than coerced (`"5"` is no integer, `1` no boolean, `7` no string), a field it does not
declare is refused, and its messages are short phrases that follow the field's path
(`campaign_ideas[1]: must be at most 200 characters`). `problems` turns its errors into the API's
`Problem`s; `BodySchema` gives the schema the same closed shape.
"""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers as s
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

from segments.engine.rules import Problem

# Text the API stores goes to PostgreSQL, whose text cannot hold NUL: a body or a query parameter with
# one is refused, and every plain string the schema describes says so.
NO_NUL = "^[^\\u0000]*$"


def _kind(field: s.Field) -> tuple[tuple[type, ...], str] | None:
    """The JSON types `field` takes and how to say so; None for any (a JSONField)."""
    if isinstance(field, s.BooleanField):
        return (bool,), "true or false"
    if isinstance(field, s.IntegerField):
        low, high = field.min_value, field.max_value
        bounds = f" from {low} to {high}" if low is not None and high is not None else ""
        return (int,), f"a whole number{bounds}"
    if isinstance(field, s.FloatField):
        return (int, float), "a number"
    if isinstance(field, (s.CharField, s.ChoiceField)):
        return (str,), "a string"
    if isinstance(field, s.ListField):
        return (list,), "a list"
    if isinstance(field, (s.DictField, s.Serializer)):
        return (dict,), "an object"
    return None


def _type_errors(field: s.Field, value: object):
    """The error (a message, or per-item messages of a list) when `value` is not of `field`'s JSON type;
    None when it is (null is left to the field, which knows whether it may be null)."""
    if value is None:
        return None
    kind = _kind(field)
    if kind is None:
        return None
    types, words = kind
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        return [ErrorDetail(field.error_messages.get("type", f"must be {words}"), code="type")]
    if isinstance(field, s.ListField):
        items = {i: errors for i, item in enumerate(value) if (errors := _type_errors(field.child, item))}
        return items or None
    return None


def _messages(field: s.Field) -> dict[str, str]:
    """Short messages for DRF's error codes, filled in from the field's own limits."""
    messages = {"required": "required", "null": "must not be null", "blank": "must not be blank",
                "min_value": "must be at least {min_value}", "max_value": "must be at most {max_value}"}
    if isinstance(field, s.ListField):
        messages |= {"max_length": "must hold at most {max_length} items",
                     "min_length": "must hold at least {min_length} items", "empty": "must not be empty"}
    else:
        messages |= {"max_length": "must be at most {max_length} characters",
                     "min_length": "must be at least {min_length} characters"}
    if isinstance(field, s.IntegerField) and field.min_value is not None and field.max_value is not None:
        messages["min_value"] = messages["max_value"] = f"must be a whole number from {field.min_value} to " \
                                                        f"{field.max_value}"
    if isinstance(field, s.ChoiceField):
        messages["invalid_choice"] = "must be one of " + ", ".join(map(str, field.choices))
    if isinstance(field, s.RegexField):
        messages["invalid"] = "must be text of the documented pattern"
    own = [vars(kind).get("default_error_messages", {}) for kind in reversed(type(field).__mro__)
           if not kind.__module__.startswith("rest_framework")]
    return {**messages, **{k: v for found in own for k, v in found.items()},     # a field's own messages win
            **field._kwargs.get("error_messages", {})}


def _with_messages(field: s.Field) -> s.Field:
    """`field` made anew with the short messages (DRF bakes them into its validators when a field is
    made) and text kept as sent (a view strips where it means to)."""
    if isinstance(field, s.Serializer):
        return field
    options = dict(field._kwargs)
    if isinstance(options.get("child"), s.Field):
        options["child"] = _with_messages(options["child"])
    if isinstance(field, s.CharField):
        options.setdefault("trim_whitespace", False)
    return type(field)(*field._args, **{**options, "error_messages": _messages(field)})


class Body(s.Serializer):
    """A request body (see the module's docstring). Subclasses declare the fields; cross-field rules go
    in `validate`, raising `ValidationError({field: message})` so the problem keeps its path."""

    def get_fields(self):
        return {name: _with_messages(field) for name, field in super().get_fields().items()}

    def to_internal_value(self, data):
        errors: dict = {name: [ErrorDetail(f"unknown field; the fields are {', '.join(self.fields)}",
                                           code="unknown")] for name in sorted(set(data) - set(self.fields))}
        wrong = {name: problem for name, value in data.items() if name in self.fields
                 and (problem := _type_errors(self.fields[name], value))}
        internal = None
        try:   # the fields whose values are of the right type; a wrong one's "required" yields to `wrong`
            internal = super().to_internal_value({k: v for k, v in data.items() if k in self.fields and k not in wrong})
        except s.ValidationError as refused:
            errors |= refused.detail
        errors |= wrong
        if errors:
            raise s.ValidationError(errors)
        return internal


def problems(errors, path: str = "") -> list[Problem]:
    """A serializer's nested errors as the API's problems, each at its path (`ids[2]`, `name`)."""
    if isinstance(errors, dict):
        found = []
        for key, value in errors.items():
            where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
            found += problems(value, "" if key == api_settings.NON_FIELD_ERRORS_KEY and not path else where)
        return found
    if isinstance(errors, list):
        return [p for item in errors for p in problems(item, path)]
    return [Problem(path, str(errors))]


def refuse_nul(node: dict) -> dict:
    """`node` with NO_NUL on each plain string in it (one with no pattern, enum or format of its own)."""
    if node.get("type") == "string" and not {"pattern", "enum", "format"} & set(node):
        return {**node, "pattern": NO_NUL}
    if isinstance(node.get("items"), dict):
        node = {**node, "items": refuse_nul(node["items"])}
    if isinstance(node.get("properties"), dict):
        node = {**node, "properties": {name: refuse_nul(p) for name, p in node["properties"].items()}}
    return node


class BodySchema(OpenApiSerializerExtension):
    """A request body as `Body` takes it: a field the body does not name is refused, so its schema is
    closed (`additionalProperties: false`); a required field is required with every method (a PATCH is
    no partial update: its `reason` is required); no string may hold NUL. The same fields in an answer
    (SettingsSerializer, PlaybookSerializer extend these bodies) are described as DRF maps them."""

    target_class = Body
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        mapped = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return mapped
        required = [name for name, field in self.target.fields.items() if field.required]
        return {**refuse_nul(mapped), "additionalProperties": False, **({"required": required} if required else {}),
                "description": "Fields not listed are refused, and so are strings holding NUL (U+0000)."}
